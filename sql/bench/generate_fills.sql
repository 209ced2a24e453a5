-- bench/audit.py: synthetic fills, deterministic in $seed. $n fills uniformly over $span_ns from
-- $t0 across $markets markets (the same tickers as generate_tops.sql); sign +1 (bought YES) or
-- -1; price in whole cents 0.20–0.79 (price units).
SELECT
    'T' || CAST(j AS VARCHAR) AS trade_id,
    'KXBENCH-' || lpad(CAST(hash(j, $seed, 'm') % $markets AS VARCHAR), 5, '0') AS market,
    CAST(CASE WHEN hash(j, $seed, 's') % 2 = 0 THEN 1 ELSE -1 END AS INTEGER) AS sign,
    CAST(100 * (20 + hash(j, $seed, 'p') % 60) AS BIGINT) AS price,
    CAST($t0 + hash(j, $seed, 'f') % $span_ns AS BIGINT) AS fill_ns
FROM range($n) r(j);
