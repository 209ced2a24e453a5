-- Audit step 0, engine "polars", input 2 of 4: the Kalshi mid series of the markets of
-- audit_markout_fills (book_mids: t_ns = exchange time, else receipt, ns; mid = (bid + ask) / 2
-- and spread = ask − bid in price units, NULL unless both sides). Rows without a time can never
-- be an as-of match and are left out.
SELECT market, t_ns, mid, spread
FROM book_mids
WHERE t_ns IS NOT NULL AND market IN (SELECT market FROM audit_markout_fills);
