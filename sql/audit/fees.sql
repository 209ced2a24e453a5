-- Fee audit per UTC day, game and market (price units): charged against the schedule
-- recomputed in v_fees; fills_mismatched = fills whose fee differs from schedule_fee;
-- orders_alert = orders whose fees differ by more than 1¢ in total (quoting-math §5.4);
-- fills_fee_unknown = fills on 'flat' or unrecorded fee schedules (not compared).
SELECT CAST($run_id AS VARCHAR) AS run_id, CAST($run_ns AS BIGINT) AS run_ns,
       CAST($day AS DATE) AS audit_day,
       day, event_ticker, market, any_value(fee_type) AS fee_type,
       count(*) AS fills,
       count(DISTINCT order_id) AS orders,
       CAST(sum(fee) AS BIGINT) AS fee_charged,
       CAST(sum(schedule_fee) AS BIGINT) AS fee_schedule,
       CAST(sum(fee) FILTER (WHERE fee_known) - sum(schedule_fee) AS BIGINT) AS fee_diff,
       count(*) FILTER (WHERE fee_diff <> 0) AS fills_mismatched,
       count(DISTINCT order_id) FILTER (WHERE order_alert) AS orders_alert,
       count(*) FILTER (WHERE NOT fee_known) AS fills_fee_unknown
FROM audit_fee_fills
GROUP BY day, event_ticker, market
ORDER BY day, event_ticker, market;
