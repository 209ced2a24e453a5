-- Audit step 0, engine "polars", input 3 of 4: our desired quotes on the markets of
-- audit_markout_fills, by market_id (decision_quotes: price in price units, decided_ns = journal
-- time). Rows without a worker or a time can never be an as-of match and are left out.
SELECT q.worker_id, k.market_id, q.decision_id, q.decided_ns, q.side, q.price
FROM decision_quotes q
JOIN (SELECT DISTINCT market, market_id FROM audit_markout_fills) k USING (market)
WHERE q.worker_id IS NOT NULL AND q.decided_ns IS NOT NULL;
