-- Audit step 0, engine "polars", input 3 of 4: our desired quotes on the markets of
-- audit_markout_fills (decision_quotes: price in price units, decided_ns = journal time). Rows
-- without a worker, market or time can never be an as-of match and are left out.
SELECT worker_id, market, decision_id, decided_ns, side, price
FROM decision_quotes
WHERE worker_id IS NOT NULL AND market IS NOT NULL AND decided_ns IS NOT NULL
  AND market IN (SELECT market FROM audit_markout_fills);
