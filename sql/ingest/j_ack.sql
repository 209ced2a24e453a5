-- Journal kind ack → table j_ack (= store.JOURNAL_TABLES["ack"]). latency_ns in ns.
-- The engine writes {ok, error} instead of {status, body} and no action_seq: status becomes
-- 'ok' / 'error', body the error text, action_seq the last ":"-part of the id
-- ("ack:<run_id>:<seq>"). journal.ack() status (HTTP code or text) is kept as text.
SELECT r.id, r.worker_id, r.ts_ns, segment,
       COALESCE(r.action_seq, TRY_CAST(string_split(r.id, ':')[-1] AS BIGINT)) AS action_seq,
       r.request_id, r.order_id,
       COALESCE(r.status, CASE r.ok WHEN true THEN 'ok' WHEN false THEN 'error' END) AS status,
       r.latency_ns,
       COALESCE(r.body, r.error) AS body
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "action_seq": "BIGINT", "request_id": "VARCHAR",
        "order_id": "VARCHAR", "status": "VARCHAR", "latency_ns": "BIGINT", "body": "VARCHAR",
        "ok": "BOOLEAN", "error": "VARCHAR"}') AS r
    FROM seg_lines WHERE kind = 'ack'
)
ORDER BY line_no;
