-- Cumulative P&L of the audited day's fills per UTC minute, in price units: pnl_cum marks every
-- fill to its market's final mark (v_pnl: settlement, else theo, else mid) after fees;
-- net_markout_cum is Σ C·markout_mid_30s − fees (the viability figure) over the same fills.
WITH marks AS (
    SELECT market, mark FROM pnl_of('audit_game_fills')
), per_minute AS (
    SELECT time_bucket(INTERVAL 1 MINUTE, f.fill_ts) AS minute,
           count(*) AS fills,
           sum(f.sign * (k.mark - f.price) * f.count / 100.0) - sum(f.fee) AS pnl,
           COALESCE(sum(f.markout_mid_30s * f.count / 100.0), 0) - sum(f.fee) AS net_markout
    FROM audit_fills f LEFT JOIN marks k USING (market)
    GROUP BY 1
)
SELECT CAST($run_id AS VARCHAR) AS run_id, CAST($run_ns AS BIGINT) AS run_ns,
       CAST($day AS DATE) AS audit_day,
       minute, fills,
       sum(pnl) OVER (ORDER BY minute) AS pnl_cum,
       sum(net_markout) OVER (ORDER BY minute) AS net_markout_cum
FROM per_minute
ORDER BY minute;
