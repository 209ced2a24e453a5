-- Audit step 0, engine "polars", input 2 of 4: the Kalshi mid series of the markets of
-- audit_markout_fills, by market_id (book_mids: t_ns = exchange time, else receipt, ns;
-- mid = (bid + ask) / 2 and spread = ask − bid in price units, NULL unless both sides). Rows
-- without a time can never be an as-of match and are left out.
SELECT k.market_id, b.t_ns, b.mid, b.spread
FROM book_mids b
JOIN (SELECT DISTINCT market, market_id FROM audit_markout_fills) k USING (market)
WHERE b.t_ns IS NOT NULL;
