-- Fills whose markout is worse than half the quoted spread (price units per contract).
SELECT CAST($run_id AS VARCHAR) AS run_id, CAST($run_ns AS BIGINT) AS run_ns,
       CAST($day AS DATE) AS audit_day,
       trade_id, worker_id, event_ticker, market, side, price, count, fill_ns,
       quoted_spread, quoted_spread_source,
       markout_mid_1s, markout_mid_5s, markout_mid_30s, flag_1s, flag_5s, flag_30s
FROM audit_fills
WHERE flagged
ORDER BY fill_ns, trade_id;
