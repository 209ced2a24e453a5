-- Audit step 0: every fill (v_markouts) of the games traded on the audited UTC day $day (DATE;
-- NULL = every day), materialised once as the temp table audit_game_fills. P&L is per game, so a
-- game traded that day counts with all its fills.
CREATE OR REPLACE TEMP TABLE audit_game_fills AS
SELECT * FROM v_markouts
WHERE CAST($day AS DATE) IS NULL
   OR event_ticker IN (
       SELECT COALESCE(m.event_ticker, event_of_market(f.market))
       FROM fills f LEFT JOIN markets m USING (market)
       WHERE CAST(ns_to_ts(f.fill_ns) AS DATE) = CAST($day AS DATE));
