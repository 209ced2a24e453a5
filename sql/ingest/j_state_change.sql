-- Journal kind state_change → table j_state_change (= store.JOURNAL_TABLES["state_change"]).
-- Trading-state transitions (ACTIVE | REDUCING | HALTED); triggers is a JSON array of names.
SELECT r.id, r.worker_id, r.ts_ns, segment,
       r.n, r.from_state, r.to_state, r.triggers, r.reason
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "n": "BIGINT", "from_state": "VARCHAR", "to_state": "VARCHAR",
        "triggers": "JSON", "reason": "VARCHAR"}') AS r
    FROM seg_lines WHERE kind = 'state_change'
)
ORDER BY line_no;
