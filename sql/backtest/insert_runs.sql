-- Append the staged rows (bt_runs_in, registered by mmcore/backtest/store.py) to bt_runs.
INSERT INTO bt_runs BY NAME SELECT * FROM bt_runs_in;
