-- Audit step 0, engine "polars", input 1 of 4: the fills to mark out, as the temp table
-- audit_markout_fills: every fill of the games traded on UTC day $day (DATE; NULL = every fill),
-- the same set 001_game_fills.sql keeps, with v_markouts' per-fill columns that need no join
-- (event from markets, else from the ticker; fill_ts / hour / day in UTC), ordered by fill time.
-- sign +1 bought YES ('bid') / -1 sold; price, fee in price units; count in centi-contracts;
-- fill_ns = exchange time, else receipt (ns). market_id numbers the markets (1, 2, …; NULL for
-- a NULL market) so the other inputs carry a small integer instead of the ticker.
CREATE OR REPLACE TEMP TABLE audit_markout_fills AS
WITH f AS (
    SELECT f.trade_id, f.worker_id, COALESCE(m.event_ticker, event_of_market(f.market)) AS event_ticker,
           f.market, f.side, f.sign, f.price, f.count, f.fee, f.fill_ns
    FROM fills f LEFT JOIN markets m USING (market)
)
SELECT f.*, ns_to_ts(fill_ns) AS fill_ts, date_trunc('hour', ns_to_ts(fill_ns)) AS hour,
       CAST(ns_to_ts(fill_ns) AS DATE) AS day,
       CASE WHEN market IS NOT NULL THEN CAST(dense_rank() OVER (ORDER BY market) AS INTEGER)
       END AS market_id
FROM f
WHERE CAST($day AS DATE) IS NULL
   OR event_ticker IN (SELECT event_ticker FROM f
                       WHERE CAST(ns_to_ts(fill_ns) AS DATE) = CAST($day AS DATE))
ORDER BY fill_ns, trade_id;
