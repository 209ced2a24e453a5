-- Audit step 0, engine "polars", input 4 of 4: the theo the workers used on the markets of
-- audit_markout_fills, by market_id, as v_markouts reads it: theo = round(prob × 10000, 6) in
-- price units at used_ns (the time the worker took it, ns).
SELECT k.market_id, t.used_ns, round(t.prob * 10000, 6) AS theo
FROM theos t
JOIN (SELECT DISTINCT market, market_id FROM audit_markout_fills) k USING (market)
WHERE t.prob IS NOT NULL AND t.used_ns IS NOT NULL;
