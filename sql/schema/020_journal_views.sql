-- Base views over the worker journals (record/j_<kind>/*.parquet, one file per segment and
-- kind, written by mmcore.record.ingest): one row per natural id (journal.natural_key = (kind,
-- id)), so a segment ingested twice, or a record journaled twice, counts once.

-- Our fills, one per trade_id (a fill's id is the trade_id). The live copy (from the WS fill
-- channel) wins over a backfilled one (GET /portfolio/fills after a restart): it carries
-- post_position and the real receipt time. side 'bid' = bought YES, 'ask' = sold YES; sign +1 /
-- -1. price and fee in price units; count, post_position in centi-contracts. fill_ns: exchange
-- time when known, else local receipt (ns) — the time markouts are measured from.
CREATE OR REPLACE VIEW fills AS
SELECT
    id AS trade_id, worker_id, order_id, market, side, side_sign(side) AS sign,
    price, count, fee, is_taker, post_position, exchange_ns, receipt_ns,
    COALESCE(exchange_ns, receipt_ns) AS fill_ns,
    COALESCE(backfill, false) AS backfill, ts_ns, segment
FROM read_parquet('${RECORD}/j_fill/*.parquet', union_by_name = true)
WHERE id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY id ORDER BY COALESCE(backfill, false), receipt_ns,
                                                    ts_ns, worker_id, segment) = 1;

-- Best bid/ask per book update, one per id (market:sid:seq or market:receipt_ns). Prices in
-- price units (YES terms, NULL = empty side); mid = (bid + ask) / 2 and spread = ask - bid in
-- price units (NULL unless both sides); t_ns = exchange time when known, else receipt.
CREATE OR REPLACE VIEW book_tops AS
SELECT
    id, worker_id, market, bid, bid_size, ask, ask_size, sid, seq, exchange_ns, receipt_ns,
    COALESCE(exchange_ns, receipt_ns) AS t_ns,
    (bid + ask) / 2.0 AS mid, ask - bid AS spread, ts_ns, segment
FROM read_parquet('${RECORD}/j_book_top/*.parquet', union_by_name = true)
WHERE id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1;

-- The mid series the markouts read: book_tops' time, mid and spread without the dedupe. Two rows
-- with one id are one record ingested twice (same market, time and prices), so an as-of lookup
-- finds the same mid with or without the copy, and skipping the dedupe of every book update
-- (tens of millions a day) makes v_markouts ~2.5× faster (bench/README.md).
CREATE OR REPLACE VIEW book_mids AS
SELECT market, COALESCE(exchange_ns, receipt_ns) AS t_ns, (bid + ask) / 2.0 AS mid,
       ask - bid AS spread
FROM read_parquet('${RECORD}/j_book_top/*.parquet', union_by_name = true)
WHERE market IS NOT NULL;

-- The theo each worker used, one row per theo record and market: prob in [0, 1], uncertainty
-- (probability) when recorded, used_ns = when the worker took it (journal time), as_of_ns = when
-- the consensus was computed. probs is an object {market: p} (journal.theo) or an array in the
-- worker's market order (the engine): the array's i-th entry is the event's i-th market with
-- the tie market last, then by ticker (as mmcore.worker.driver.load_game orders them) — from the
-- markets view, else from the markets whose books that worker recorded; NULL market when
-- neither has as many markets as the array.
CREATE OR REPLACE VIEW theos AS
WITH t AS (
    SELECT * FROM read_parquet('${RECORD}/j_theo/*.parquet', union_by_name = true)
    WHERE id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1
), event_markets AS (
    SELECT event_ticker, list(market ORDER BY market LIKE '%-TIE', market) AS mkts
    FROM markets GROUP BY event_ticker
), worker_markets AS (
    SELECT worker_id, list(market ORDER BY market LIKE '%-TIE', market) AS mkts
    FROM (SELECT DISTINCT worker_id, market
          FROM read_parquet('${RECORD}/j_book_top/*.parquet', union_by_name = true)
          WHERE worker_id IN (SELECT worker_id FROM t) AND market IS NOT NULL)
    GROUP BY worker_id
), shaped AS (
    SELECT t.*, json_type(t.probs) AS probs_type,
           CASE WHEN len(em.mkts) = json_array_length(t.probs) THEN em.mkts
                WHEN len(wm.mkts) = json_array_length(t.probs) THEN wm.mkts END AS array_mkts,
           COALESCE(em.mkts, wm.mkts) AS order_mkts
    FROM t
    LEFT JOIN event_markets em USING (event_ticker)
    LEFT JOIN worker_markets wm USING (worker_id)
), by_key AS (
    SELECT s.*, unnest(json_keys(s.probs)) AS market FROM shaped s WHERE probs_type = 'OBJECT'
), by_index AS (
    SELECT s.*, unnest(range(CAST(json_array_length(s.probs) AS BIGINT))) AS i
    FROM shaped s WHERE probs_type = 'ARRAY'
)
SELECT id AS theo_id, worker_id, event_ticker, market,
       CAST(list_position(order_mkts, market) - 1 AS INTEGER) AS outcome_index,
       CAST(json_extract_string(probs, '$."' || market || '"') AS DOUBLE) AS prob,
       CASE json_type(uncertainty)
           WHEN 'OBJECT' THEN CAST(json_extract_string(uncertainty, '$."' || market || '"') AS DOUBLE)
           WHEN 'ARRAY' THEN NULL
           ELSE TRY_CAST(json_extract_string(uncertainty, '$') AS DOUBLE) END AS uncertainty,
       source, as_of_ns, ts_ns AS used_ns, segment
FROM by_key
UNION ALL
SELECT id, worker_id, event_ticker, array_mkts[i + 1] AS market, CAST(i AS INTEGER),
       CAST(json_extract_string(probs, '$[' || i || ']') AS DOUBLE),
       CASE json_type(uncertainty)
           WHEN 'ARRAY' THEN TRY_CAST(json_extract_string(uncertainty, '$[' || i || ']') AS DOUBLE)
           WHEN 'OBJECT' THEN NULL
           ELSE TRY_CAST(json_extract_string(uncertainty, '$') AS DOUBLE) END,
       source, as_of_ns, ts_ns, segment
FROM by_index;

-- Quote decisions, one per id: the desired quotes (JSON array of {market, side, price, count})
-- at decided_ns (journal time).
CREATE OR REPLACE VIEW decisions AS
SELECT id AS decision_id, worker_id, decision_seq, ts_ns AS decided_ns, quotes,
       CAST(json_array_length(quotes) AS INTEGER) AS n_quotes, notes, segment
FROM read_parquet('${RECORD}/j_quote_decision/*.parquet', union_by_name = true)
WHERE id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1;

-- One row per desired quote of a decision: price in price units, count in centi-contracts.
CREATE OR REPLACE VIEW decision_quotes AS
SELECT decision_id, worker_id, decision_seq, decided_ns, q.market, q.side, q.price, q.count
FROM (SELECT *, unnest(from_json(quotes, '[{"market": "VARCHAR", "side": "VARCHAR",
                                           "price": "BIGINT", "count": "BIGINT"}]')) AS q
      FROM decisions);

-- Order actions sent to the venue (place / amend / cancel), one per id, with the venue's ack
-- (ack id = 'ack:' || action id) and the venue refusal the engine journals for a failed ack
-- (refusal id = 'venue:' || action id). ok: NULL while unacknowledged; false on a refusal, an
-- 'error' status or an HTTP 4xx/5xx status. price in price units; count in centi-contracts
-- (an amend's new total); sent_ns / ack_ns journal times; latency_ns from the venue client.
CREATE OR REPLACE VIEW orders AS
WITH a AS (
    SELECT * FROM read_parquet('${RECORD}/j_order_action/*.parquet', union_by_name = true)
    WHERE id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1
), k AS (
    SELECT * FROM read_parquet('${RECORD}/j_ack/*.parquet', union_by_name = true)
    WHERE id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1
), v AS (
    SELECT * FROM read_parquet('${RECORD}/j_refusal/*.parquet', union_by_name = true)
    WHERE id LIKE 'venue:%'
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1
)
SELECT a.id AS action_id, a.worker_id, a.action_seq, a.action, a.market, a.side, a.price,
       a.count, a.client_order_id, COALESCE(a.order_id, k.order_id) AS order_id, a.reason,
       a.ts_ns AS sent_ns, k.id IS NOT NULL AS acked, k.ts_ns AS ack_ns, k.status AS ack_status,
       k.latency_ns, k.body AS ack_body,
       CASE WHEN k.id IS NULL THEN NULL
            WHEN v.id IS NOT NULL OR k.status = 'error'
                 OR regexp_full_match(COALESCE(k.status, ''), '[45][0-9][0-9]') THEN false
            ELSE true END AS ok,
       v.reason AS refused_reason
FROM a
LEFT JOIN k ON k.id = 'ack:' || a.id
LEFT JOIN v ON v.id = 'venue:' || a.id;

-- Actions refused by the risk gate (id 'gate:…') or by the venue ('venue:…'), one per id:
-- action JSON with market, side, price (price units), count (centi-contracts).
CREATE OR REPLACE VIEW refusals AS
SELECT id AS refusal_id, worker_id, ts_ns, n, split_part(id, ':', 1) AS source, action,
       action ->> 'action' AS action_kind, action ->> 'market' AS market,
       action ->> 'side' AS side, TRY_CAST(action ->> 'price' AS BIGINT) AS price,
       TRY_CAST(action ->> 'count' AS BIGINT) AS count, reason, segment
FROM read_parquet('${RECORD}/j_refusal/*.parquet', union_by_name = true)
WHERE id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1;

-- Kill-switch and trading-state events: state changes (ACTIVE | REDUCING | HALTED, triggers a
-- JSON array) and errors the worker handled or halted on, one per id, in time order.
CREATE OR REPLACE VIEW kill_events AS
WITH sc AS (
    SELECT * FROM read_parquet('${RECORD}/j_state_change/*.parquet', union_by_name = true)
    WHERE id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1
), er AS (
    SELECT * FROM read_parquet('${RECORD}/j_error/*.parquet', union_by_name = true)
    WHERE id IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1
)
SELECT id AS event_id, worker_id, ts_ns, 'state_change' AS kind, from_state, to_state,
       triggers, reason, CAST(NULL AS VARCHAR) AS "where", CAST(NULL AS VARCHAR) AS error_type
FROM sc
UNION ALL
SELECT id, worker_id, ts_ns, 'error', NULL, NULL, NULL, message, "where", error_type
FROM er;

-- Reconciles against the exchange, one per id (drift in centi-contracts).
CREATE OR REPLACE VIEW reconciles AS
SELECT id AS reconcile_id, worker_id, ts_ns, n, position_drift, resting_drift, notes, segment
FROM read_parquet('${RECORD}/j_reconcile/*.parquet', union_by_name = true)
WHERE id IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts_ns, segment) = 1;
