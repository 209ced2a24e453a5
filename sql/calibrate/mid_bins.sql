-- Calibration of σ (quoting-math §1.5, §3.2; mmcore.quoting.calibrate): the book mid prevailing
-- at each $sample_ns boundary, per worker and market, from the book tops journaled in
-- [$since_ns, $until_ns) with both sides present. at_ns = the boundary b (ns) whose bin
-- (b − $sample_ns, b] holds the update; mid = the last mid in that bin (price units, a half
-- possible). Boundaries without an update are filled by the sampler (the mid carries forward).
SELECT worker_id, market,
       -floor_div(-t_ns, $sample_ns) * $sample_ns AS at_ns,
       arg_max(mid, t_ns) AS mid
FROM book_tops
WHERE mid IS NOT NULL AND t_ns >= $since_ns AND t_ns < $until_ns
GROUP BY worker_id, market, at_ns
ORDER BY worker_id, market, at_ns;
