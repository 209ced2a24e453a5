-- Journal kind refusal → table j_refusal (= store.JOURNAL_TABLES["refusal"]). action: JSON of
-- the refused order action (action, market, side, price in price units, count centi-contracts).
SELECT r.id, r.worker_id, r.ts_ns, segment,
       r.n, r.action, r.reason
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "n": "BIGINT", "action": "JSON", "reason": "VARCHAR"}') AS r
    FROM seg_lines WHERE kind = 'refusal'
)
ORDER BY line_no;
