-- Journal kind error → table j_error (= store.JOURNAL_TABLES["error"]). The engine writes its
-- text as "reason" rather than "message": message defaults to it.
SELECT r.id, r.worker_id, r.ts_ns, segment,
       r.n, r."where", r.error_type, COALESCE(r.message, r.reason) AS message
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "n": "BIGINT", "where": "VARCHAR", "error_type": "VARCHAR",
        "message": "VARCHAR", "reason": "VARCHAR"}') AS r
    FROM seg_lines WHERE kind = 'error'
)
ORDER BY line_no;
