-- Journal kind fill → table j_fill (= store.JOURNAL_TABLES["fill"]). side 'bid' = we bought YES,
-- 'ask' = we sold YES; price and fee in price units ($0.0001); count and post_position in
-- centi-contracts; times in ns. A fill's id is its trade_id (Kalshi: fill_id = trade_id), so a
-- backfilled copy (backfill = true, written by the driver from GET /portfolio/fills) and the live
-- copy share the id; trade_id defaults to the id, backfill to false.
SELECT r.id, r.worker_id, r.ts_ns, segment,
       COALESCE(r.trade_id, r.id) AS trade_id, r.order_id, r.market, r.side, r.price, r.count,
       r.fee, r.is_taker, r.post_position, r.exchange_ns, r.receipt_ns,
       COALESCE(r.backfill, false) AS backfill
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "trade_id": "VARCHAR", "order_id": "VARCHAR", "market": "VARCHAR",
        "side": "VARCHAR", "price": "BIGINT", "count": "BIGINT", "fee": "BIGINT",
        "is_taker": "BOOLEAN", "post_position": "BIGINT", "exchange_ns": "BIGINT",
        "receipt_ns": "BIGINT", "backfill": "BOOLEAN"}') AS r
    FROM seg_lines WHERE kind = 'fill'
)
ORDER BY line_no;
