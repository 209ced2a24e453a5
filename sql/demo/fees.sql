-- Demo summary: fees charged against the schedule ($), maker vs taker.
SELECT CASE WHEN is_taker THEN 'taker' ELSE 'maker' END AS role, count(*) AS fills,
       round(sum(fee) / 10000, 4) AS charged_usd,
       round(sum(schedule_fee) / 10000, 4) AS schedule_usd,
       count(*) FILTER (WHERE fee_diff <> 0) AS fills_differing
FROM v_fees
GROUP BY role
ORDER BY role;
