-- The backtest's tables (mm backtest --db): one row per run, per game of a run, per fill of ours.
-- Written by mmcore/backtest/store.py: append; a run re-written (same run_id) replaces its rows in
-- one transaction. Units: times BIGINT ns since the epoch; prices and money BIGINT price units
-- ($0.0001); counts BIGINT centi-contracts (100 = one contract); markouts DOUBLE price units per
-- contract, positive = good for us, vs the book mid (mo_mid_*) and the hidden truth (mo_truth_*)
-- at +1/+5/+30 s; ratios and shares DOUBLE in [0, 1].
CREATE TABLE IF NOT EXISTS bt_runs (
    run_id VARCHAR PRIMARY KEY,     -- digest of scenario_hash, seed, strategy, games, latency
    scenario_hash VARCHAR NOT NULL, -- sha256 (16 hex) of the scenario file or canonical JSON
    seed BIGINT NOT NULL,
    strategy VARCHAR NOT NULL,
    toxicity VARCHAR,               -- the scenario's toxicity level when it has one
    started_at TIMESTAMPTZ NOT NULL,
    git_rev VARCHAR,
    games BIGINT NOT NULL,
    fills BIGINT NOT NULL,
    volume BIGINT NOT NULL,
    fees BIGINT NOT NULL,
    net_pnl BIGINT NOT NULL,
    pnl_per_contract DOUBLE,
    mo_mid_1s DOUBLE, mo_mid_5s DOUBLE, mo_mid_30s DOUBLE,
    mo_truth_1s DOUBLE, mo_truth_5s DOUBLE, mo_truth_30s DOUBLE,
    time_at_best_bid DOUBLE,
    time_at_best_ask DOUBLE,
    max_drawdown BIGINT NOT NULL,   -- summed mark-to-mid equity of all games
    max_inventory_ratio DOUBLE,
    queue_ahead_placed_mean DOUBLE, -- centi-contracts
    nobody_ahead_share DOUBLE,
    order_fixed_ns BIGINT NOT NULL,
    order_jitter_ns BIGINT NOT NULL,
    market_data_ns BIGINT NOT NULL,
    end_ns BIGINT NOT NULL,
    steps BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS bt_games (
    run_id VARCHAR NOT NULL,
    event_ticker VARCHAR NOT NULL,
    start_ns BIGINT NOT NULL,
    winner VARCHAR,
    fills BIGINT NOT NULL,
    volume BIGINT NOT NULL,
    fees BIGINT NOT NULL,
    cash BIGINT NOT NULL,
    settlement BIGINT NOT NULL,
    net_pnl BIGINT NOT NULL,
    pnl_per_contract DOUBLE,
    max_inventory BIGINT NOT NULL,
    max_inventory_ratio DOUBLE,
    max_drawdown BIGINT NOT NULL,   -- mark-to-mid over the quoting window
    mo_mid_1s DOUBLE, mo_mid_5s DOUBLE, mo_mid_30s DOUBLE,
    mo_truth_1s DOUBLE, mo_truth_5s DOUBLE, mo_truth_30s DOUBLE,
    time_at_best_bid DOUBLE NOT NULL,
    time_at_best_ask DOUBLE NOT NULL,
    window_from_ns BIGINT NOT NULL,
    window_to_ns BIGINT NOT NULL,
    actions BIGINT NOT NULL,
    stop_reason VARCHAR,
    stopped_ns BIGINT,
    resting_after_stop BIGINT NOT NULL,
    PRIMARY KEY (run_id, event_ticker)
);
CREATE TABLE IF NOT EXISTS bt_fills (
    run_id VARCHAR NOT NULL,
    event_ticker VARCHAR NOT NULL,
    trade_id VARCHAR NOT NULL,
    order_id VARCHAR NOT NULL,
    ts_ns BIGINT NOT NULL,
    market VARCHAR NOT NULL,
    side VARCHAR NOT NULL,          -- YES book side of our order: bid | ask
    price BIGINT NOT NULL,
    count BIGINT NOT NULL,
    fee BIGINT NOT NULL,
    is_taker BOOLEAN NOT NULL,
    mo_mid_1s DOUBLE, mo_mid_5s DOUBLE, mo_mid_30s DOUBLE,
    mo_truth_1s DOUBLE, mo_truth_5s DOUBLE, mo_truth_30s DOUBLE,
    queue_ahead_placed BIGINT,      -- centi-contracts ahead when the order took its place
    queue_ahead_filled BIGINT,      -- centi-contracts the filling order took before us
    hard_limit BIGINT,              -- the worker's hard bound when the fill happened
    PRIMARY KEY (run_id, trade_id)
);
