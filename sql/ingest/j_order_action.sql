-- Journal kind order_action → table j_order_action (= store.JOURNAL_TABLES["order_action"]).
-- price in price units, count in centi-contracts (an amend's count is the new total).
-- action_seq defaults to the last ":"-part of the id (the engine's id is "<run_id>:<seq>").
SELECT r.id, r.worker_id, r.ts_ns, segment,
       COALESCE(r.action_seq, TRY_CAST(string_split(r.id, ':')[-1] AS BIGINT)) AS action_seq,
       r.action, r.market, r.side, r.price, r.count, r.client_order_id, r.order_id, r.reason
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "action_seq": "BIGINT", "action": "VARCHAR", "market": "VARCHAR",
        "side": "VARCHAR", "price": "BIGINT", "count": "BIGINT", "client_order_id": "VARCHAR",
        "order_id": "VARCHAR", "reason": "VARCHAR"}') AS r
    FROM seg_lines WHERE kind = 'order_action'
)
ORDER BY line_no;
