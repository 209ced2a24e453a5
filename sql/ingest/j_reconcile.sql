-- Journal kind reconcile → table j_reconcile (= store.JOURNAL_TABLES["reconcile"]).
-- position_drift: JSON {market: drift in centi-contracts}. The engine writes a summary
-- {drift, confirmed, resting, initial, lagging} instead: kept as JSON text in notes.
SELECT r.id, r.worker_id, r.ts_ns, segment,
       r.n, r.position_drift, r.resting_drift,
       COALESCE(r.notes, CASE WHEN json_exists(line, '$.drift') THEN json_object(
           'drift', line -> 'drift', 'confirmed', line -> 'confirmed',
           'resting', line -> 'resting', 'initial', line -> 'initial',
           'lagging', line -> 'lagging')::VARCHAR END) AS notes
FROM (
    SELECT line_no, segment, line, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "n": "BIGINT", "position_drift": "JSON", "resting_drift": "JSON",
        "notes": "VARCHAR"}') AS r
    FROM seg_lines WHERE kind = 'reconcile'
)
ORDER BY line_no;
