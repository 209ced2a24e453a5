-- bench/audit.py, DuckDB engine: each fill's markout at +1 / +5 / +30 s against the mid of the
-- last book top at or before (ASOF JOIN per market), as v_markouts computes it, reduced to a
-- checksum per horizon that every engine must match exactly: matched = probes with a top,
-- markout2_sum = Σ sign × (bid + ask − 2 × price) (twice the markout, an exact integer).
WITH probes AS (
    SELECT f.market, f.sign, f.price, h.h_s, f.fill_ns + h.h_s * 1000000000 AS probe_ns
    FROM bench_fills f CROSS JOIN (VALUES (1::BIGINT), (5), (30)) h(h_s)
), joined AS (
    SELECT p.h_s, p.sign * (t.bid + t.ask - 2 * p.price) AS markout2
    FROM probes p ASOF LEFT JOIN bench_tops t ON p.market = t.market AND p.probe_ns >= t.t_ns
)
SELECT CAST(h_s AS INTEGER) AS h_s, count(markout2) AS matched,
       CAST(sum(markout2) AS BIGINT) AS markout2_sum
FROM joined GROUP BY h_s ORDER BY h_s;
