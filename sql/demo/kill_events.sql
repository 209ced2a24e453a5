-- Demo summary: kill-switch and trading-state events, newest first.
SELECT strftime(ts, '%H:%M:%S') AS at, event_ticker AS game, kind,
       from_state, to_state, reason
FROM v_kill_events
ORDER BY ts_ns DESC
LIMIT 20;
