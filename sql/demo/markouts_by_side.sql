-- Demo summary: mean markout per fill against the Kalshi mid and against theo, by side
-- (cents per contract; positive = good for us), and the share of fills flagged (worse than half
-- the quoted spread at some horizon).
SELECT side, count(*) AS fills,
       round(avg(edge_mid_c), 2) AS edge_c,
       round(avg(markout_mid_1s_c), 2) AS mid_1s_c,
       round(avg(markout_mid_5s_c), 2) AS mid_5s_c,
       round(avg(markout_mid_30s_c), 2) AS mid_30s_c,
       round(avg(markout_theo_30s_c), 2) AS theo_30s_c,
       round(avg(CASE WHEN flagged THEN 1 ELSE 0 END), 2) AS flagged_share
FROM v_markouts
GROUP BY side
ORDER BY side;
