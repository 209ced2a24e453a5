-- Markouts by game, market, side and UTC hour: contract-weighted means in cents per contract
-- (quoting-math §5.3), against the Kalshi mid and against the workers' theo, at the fill
-- (edge) and +1 / +5 / +30 s; flagged_fills = markout worse than half the quoted spread.
SELECT CAST($run_id AS VARCHAR) AS run_id, CAST($run_ns AS BIGINT) AS run_ns,
       CAST($day AS DATE) AS audit_day,
       event_ticker, market, side, hour,
       count(*) AS fills,
       sum(contracts) AS contracts,
       weighted_avg(edge_mid_c, contracts) AS edge_mid_c,
       weighted_avg(markout_mid_1s_c, contracts) AS markout_mid_1s_c,
       weighted_avg(markout_mid_5s_c, contracts) AS markout_mid_5s_c,
       weighted_avg(markout_mid_30s_c, contracts) AS markout_mid_30s_c,
       weighted_avg(edge_theo_c, contracts) AS edge_theo_c,
       weighted_avg(markout_theo_1s_c, contracts) AS markout_theo_1s_c,
       weighted_avg(markout_theo_5s_c, contracts) AS markout_theo_5s_c,
       weighted_avg(markout_theo_30s_c, contracts) AS markout_theo_30s_c,
       count(*) FILTER (WHERE flagged) AS flagged_fills
FROM audit_fills
GROUP BY event_ticker, market, side, hour
ORDER BY event_ticker, market, side, hour;
