-- Helpers used by the views (sql/schema files are applied in name order; ${RECORD} is the record
-- root). Units everywhere: price units = $0.0001 (PRICE_ONE = 10000 = $1); counts and positions
-- in centi-contracts (100 = 1 contract); probabilities in [0, 1]; times ns since the epoch (UTC).

-- Floor division of integers (DuckDB's // truncates toward zero); b > 0.
CREATE OR REPLACE MACRO floor_div(a, b) AS
    CASE WHEN a >= 0 THEN a // b ELSE -((-a + b - 1) // b) END;

-- Kalshi event ticker of a market ticker (the market's last "-" part is its outcome code), for
-- markets the calendar refresh has not recorded.
CREATE OR REPLACE MACRO event_of_market(market) AS regexp_replace(market, '-[^-]*$', '');

-- ns since the epoch → TIMESTAMP (UTC, µs).
CREATE OR REPLACE MACRO ns_to_ts(ns) AS make_timestamp(CAST(floor_div(ns, 1000) AS BIGINT));

-- +1 for a YES buy (side 'bid'), -1 for a YES sell (side 'ask').
CREATE OR REPLACE MACRO side_sign(side) AS CASE side WHEN 'bid' THEN 1 WHEN 'ask' THEN -1 END;

-- Markout horizons in seconds (0 = at the fill itself).
CREATE OR REPLACE VIEW markout_horizons AS
SELECT CAST(h_s AS BIGINT) AS h_s FROM (VALUES (0), (1), (5), (30)) h(h_s);
