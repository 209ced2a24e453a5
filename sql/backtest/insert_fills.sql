-- Append the staged rows (bt_fills_in, registered by mmcore/backtest/store.py) to bt_fills.
INSERT INTO bt_fills BY NAME SELECT * FROM bt_fills_in;
