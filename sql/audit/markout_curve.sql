-- The markout curve per side: contract-weighted mean markout in cents per contract at each
-- horizon h_s (0 = the edge at the fill), against the mid and against the theo.
WITH long AS (
    SELECT side, contracts, h.h_s,
           CASE h.h_s WHEN 0 THEN edge_mid_c WHEN 1 THEN markout_mid_1s_c
                      WHEN 5 THEN markout_mid_5s_c WHEN 30 THEN markout_mid_30s_c END AS mid_c,
           CASE h.h_s WHEN 0 THEN edge_theo_c WHEN 1 THEN markout_theo_1s_c
                      WHEN 5 THEN markout_theo_5s_c WHEN 30 THEN markout_theo_30s_c END AS theo_c
    FROM audit_fills CROSS JOIN markout_horizons h
)
SELECT CAST($run_id AS VARCHAR) AS run_id, CAST($run_ns AS BIGINT) AS run_ns,
       CAST($day AS DATE) AS audit_day,
       side, CAST(h_s AS INTEGER) AS h_s, count(*) AS fills, sum(contracts) AS contracts,
       weighted_avg(mid_c, contracts) AS markout_mid_c,
       weighted_avg(theo_c, contracts) AS markout_theo_c
FROM long
GROUP BY side, h_s
ORDER BY side, h_s;
