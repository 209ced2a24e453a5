-- bench/audit.py: synthetic Kalshi book tops, deterministic in $seed (DuckDB's hash, no RNG
-- state). $n rows over $markets markets, each market's updates spread evenly over $span_ns from
-- $t0 (ns) with up to 1 µs of jitter; bid in whole cents 0.20–0.79 (price units), changing every
-- 20 updates of a market; ask 1–3 ¢ above.
SELECT
    'KXBENCH-' || lpad(CAST(i % $markets AS VARCHAR), 5, '0') AS market,
    CAST($t0 + (i // $markets) * ($span_ns * $markets // $n) + hash(i, $seed, 't') % 1000 AS BIGINT) AS t_ns,
    CAST(100 * (20 + hash(i // ($markets * 20), i % $markets, $seed) % 60) AS BIGINT) AS bid,
    CAST(100 * (20 + hash(i // ($markets * 20), i % $markets, $seed) % 60)
         + 100 * (1 + hash(i, $seed, 'a') % 3) AS BIGINT) AS ask
FROM range($n) r(i);
