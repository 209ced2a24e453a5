-- Audit step 0, engine "polars", input 4 of 4: the theo the workers used on the markets of
-- audit_markout_fills, as v_markouts reads it: theo = round(prob × 10000, 6) in price units at
-- used_ns (the time the worker took it, ns).
SELECT market, used_ns, round(prob * 10000, 6) AS theo
FROM theos
WHERE market IS NOT NULL AND prob IS NOT NULL AND used_ns IS NOT NULL
  AND market IN (SELECT market FROM audit_markout_fills);
