-- Forget the run being written (the staged bt_runs_in row's run_id): its fills, games and run
-- row, so that writing the same run again replaces it.
DELETE FROM bt_fills WHERE run_id IN (SELECT run_id FROM bt_runs_in);
DELETE FROM bt_games WHERE run_id IN (SELECT run_id FROM bt_runs_in);
DELETE FROM bt_runs WHERE run_id IN (SELECT run_id FROM bt_runs_in);
