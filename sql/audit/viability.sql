-- Viability per UTC day and market at h* = 30 s (v_viability's columns; money in price units).
SELECT CAST($run_id AS VARCHAR) AS run_id, CAST($run_ns AS BIGINT) AS run_ns,
       CAST($day AS DATE) AS audit_day, v.*
FROM viability_of('audit_fills') v
ORDER BY day, event_ticker, market;
