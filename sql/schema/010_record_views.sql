-- Base views over the record tables written outside the journal (odds pull, calendar refresh,
-- settlements): record/<table>/*.parquet, every file of a table (union by column name), one row
-- per natural key — the latest observation wins.

-- Kalshi events (games): latest per event_ticker by observed_ns. start_ns: game start (ns);
-- fee_type / fee_multiplier: the series fee schedule (mmcore.fees).
CREATE OR REPLACE VIEW events AS
SELECT * FROM read_parquet('${RECORD}/events/*.parquet', union_by_name = true)
WHERE event_ticker IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY event_ticker ORDER BY observed_ns DESC, refresh_id DESC) = 1;

-- Kalshi markets: latest per market by observed_ns. tick_grid JSON [[start, end, tick], …] and
-- min_tick in price units; result 'yes' / 'no' once determined.
CREATE OR REPLACE VIEW markets AS
SELECT * FROM read_parquet('${RECORD}/markets/*.parquet', union_by_name = true)
WHERE market IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY market ORDER BY observed_ns DESC, refresh_id DESC) = 1;

-- Our settlements as the exchange reports them: latest per market. yes_count / no_count in
-- centi-contracts; revenue and fee in price units.
CREATE OR REPLACE VIEW settlements AS
SELECT * FROM read_parquet('${RECORD}/settlements/*.parquet', union_by_name = true)
WHERE market IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY market ORDER BY observed_ns DESC NULLS LAST,
                                                         settled_ns DESC NULLS LAST) = 1;

-- One row per Odds API request (status says whether it was made, and why not): per pull_id.
CREATE OR REPLACE VIEW odds_pulls AS
SELECT * FROM read_parquet('${RECORD}/odds_pulls/*.parquet', union_by_name = true)
WHERE pull_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY pull_id ORDER BY fetched_ns DESC NULLS LAST) = 1;

-- Each book's price and de-vigged fair probability per outcome and pull:
-- per (pull_id, event_id, book, outcome). decimal_odds; fair_prob in [0, 1]; used = in consensus.
CREATE OR REPLACE VIEW book_prices AS
SELECT * FROM read_parquet('${RECORD}/book_prices/*.parquet', union_by_name = true)
WHERE pull_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY pull_id, event_id, book, outcome
                           ORDER BY last_update_ns DESC NULLS LAST) = 1;

-- The sportsbook odds as pulled: book_prices with the pull's fetch time and status.
CREATE OR REPLACE VIEW odds_snapshots AS
SELECT b.*, p.fetched_ns, p.status AS pull_status, p.scope AS pull_scope
FROM book_prices b LEFT JOIN odds_pulls p USING (pull_id);

-- The consensus theo per pull, event and outcome (record table "theos"; NULL theo with a reason
-- when unpriced): per (pull_id, event_id, outcome). theo and uncertainty are probabilities.
CREATE OR REPLACE VIEW consensus_theos AS
SELECT * FROM read_parquet('${RECORD}/theos/*.parquet', union_by_name = true)
WHERE pull_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY pull_id, event_id, outcome
                           ORDER BY as_of_ns DESC NULLS LAST) = 1;

-- What each pull published to the workers, per Kalshi market: per (pull_id, market).
CREATE OR REPLACE VIEW theo_snapshots AS
SELECT * FROM read_parquet('${RECORD}/theo_snapshots/*.parquet', union_by_name = true)
WHERE pull_id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY pull_id, market ORDER BY as_of_ns DESC NULLS LAST) = 1;
