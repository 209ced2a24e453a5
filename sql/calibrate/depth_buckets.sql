-- Calibration of the fill intensity λ(δ) = A·e^(−kδ) (quoting-math §1.5, mmcore.quoting.calibrate):
-- our quotes' resting time and maker fills per depth from theo, over the decisions and fills
-- journaled in [$since_ns, $until_ns).
--
-- Quotes: each quote decision's desired quotes rest from that decision until the next decision
-- of the same worker run (run = the decision id without its ':seq'); the last decision of a run
-- counts no time (it is the stop, or the run ended unseen). Theo: the worker's own theo for the
-- market (theos view), from when it took it until its next one. Each quote interval is cut at
-- theo changes. Depth δ in dollars (= probability) from theo: theo − price for a bid,
-- price − theo for an ask (negative = priced through theo). Fills: our maker fills, at the
-- depth of their price from the worker's theo at the fill (ASOF on journal time).
--
-- Buckets of $bucket_dollars by δ (|δ| <= $max_abs_delta): delta_dollars = the exposure-
-- weighted mean depth (the bucket's centre when only fills fell there), exposure_s = quote-
-- seconds, fills = number of maker fills, contracts = their size in contracts.
WITH d AS (
    SELECT decision_id, worker_id, decided_ns AS from_ns,
           COALESCE(lead(decided_ns) OVER (
               PARTITION BY worker_id, regexp_replace(decision_id, ':[0-9]+$', '')
               ORDER BY decided_ns, decision_seq), decided_ns) AS to_ns
    FROM decisions
    WHERE decided_ns >= $since_ns AND decided_ns < $until_ns
), q AS (
    SELECT dq.worker_id, dq.market, dq.side, dq.price, d.from_ns, d.to_ns
    FROM decision_quotes dq JOIN d USING (decision_id)
    WHERE d.to_ns > d.from_ns AND dq.side IN ('bid', 'ask')
), t AS (
    SELECT worker_id, market, prob, used_ns AS from_ns,
           COALESCE(lead(used_ns) OVER (PARTITION BY worker_id, market ORDER BY used_ns, theo_id),
                    9223372036854775807) AS to_ns
    FROM theos
    WHERE market IS NOT NULL AND prob > 0 AND prob < 1
), exposure AS (
    SELECT CASE q.side WHEN 'bid' THEN t.prob - q.price / 10000.0
                       ELSE q.price / 10000.0 - t.prob END AS delta,
           (least(q.to_ns, t.to_ns) - greatest(q.from_ns, t.from_ns)) / 1e9 AS seconds
    FROM q JOIN t ON q.worker_id = t.worker_id AND q.market = t.market
                 AND t.from_ns < q.to_ns AND q.from_ns < t.to_ns
), fills_at AS (
    SELECT CASE f.side WHEN 'bid' THEN t.prob - f.price / 10000.0
                       ELSE f.price / 10000.0 - t.prob END AS delta,
           f.count
    FROM fills f ASOF JOIN t ON f.worker_id = t.worker_id AND f.market = t.market
                             AND f.ts_ns >= t.from_ns
    WHERE NOT f.is_taker AND f.ts_ns >= $since_ns AND f.ts_ns < $until_ns
), e AS (
    SELECT CAST(floor(delta / $bucket_dollars) AS BIGINT) AS bucket,
           sum(delta * seconds) / sum(seconds) AS delta_dollars, sum(seconds) AS exposure_s
    FROM exposure WHERE abs(delta) <= $max_abs_delta GROUP BY bucket
), f AS (
    SELECT CAST(floor(delta / $bucket_dollars) AS BIGINT) AS bucket,
           count(*) AS fills, sum(count) / 100.0 AS contracts
    FROM fills_at WHERE abs(delta) <= $max_abs_delta GROUP BY bucket
)
SELECT bucket,
       COALESCE(e.delta_dollars, (bucket + 0.5) * $bucket_dollars) AS delta_dollars,
       COALESCE(e.exposure_s, 0.0) AS exposure_s,
       CAST(COALESCE(f.fills, 0) AS BIGINT) AS fills,
       COALESCE(f.contracts, 0.0) AS contracts
FROM e FULL OUTER JOIN f USING (bucket)
ORDER BY bucket;
