-- P&L per market of the audited games, with its attribution (v_pnl's columns; price units).
SELECT CAST($run_id AS VARCHAR) AS run_id, CAST($run_ns AS BIGINT) AS run_ns,
       CAST($day AS DATE) AS audit_day, p.*
FROM pnl_of('audit_game_fills') p
ORDER BY event_ticker, market;
