-- Audit step 1: every fill of the games traded on the audited UTC day $day (DATE; NULL = every
-- day), with its markouts, materialised once as the temp table audit_game_fills. P&L is per game,
-- so a game traded that day counts with all its fills. audit_markouts_input is the per-fill
-- markout table the audit set on the connection (mmcore.record.audit): the polars result
-- (mmcore.record.markouts_polars, columns shaped like v_markouts) or, for engine "duckdb",
-- 000_markouts_duckdb.sql's view of v_markouts.
CREATE OR REPLACE TEMP TABLE audit_game_fills AS
SELECT * FROM audit_markouts_input
WHERE CAST($day AS DATE) IS NULL
   OR event_ticker IN (
       SELECT COALESCE(m.event_ticker, event_of_market(f.market))
       FROM fills f LEFT JOIN markets m USING (market)
       WHERE CAST(ns_to_ts(f.fill_ns) AS DATE) = CAST($day AS DATE));
