-- Append the staged rows (bt_games_in, registered by mmcore/backtest/store.py) to bt_games.
INSERT INTO bt_games BY NAME SELECT * FROM bt_games_in;
