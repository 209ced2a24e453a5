-- bench/audit.py, product path: the same checksum from v_markouts (sql/schema), which reads the
-- record's Parquet directly, deduplicates, and also computes theo markouts and quoted spreads.
SELECT CAST(h.h_s AS INTEGER) AS h_s,
       count(CASE h.h_s WHEN 1 THEN markout_mid_1s WHEN 5 THEN markout_mid_5s
                        ELSE markout_mid_30s END) AS matched,
       CAST(sum(round(2 * CASE h.h_s WHEN 1 THEN markout_mid_1s WHEN 5 THEN markout_mid_5s
                                     ELSE markout_mid_30s END)) AS BIGINT) AS markout2_sum
FROM v_markouts CROSS JOIN (VALUES (1), (5), (30)) h(h_s)
GROUP BY h.h_s ORDER BY h.h_s;
