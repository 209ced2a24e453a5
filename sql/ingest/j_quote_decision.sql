-- Journal kind quote_decision → table j_quote_decision (= store.JOURNAL_TABLES["quote_decision"]).
-- quotes: JSON array of {market, side, price (price units), count (centi-contracts)}.
-- decision_seq defaults to the last ":"-part of the id (the engine's id is "<run_id>:<seq>").
SELECT r.id, r.worker_id, r.ts_ns, segment,
       COALESCE(r.decision_seq, TRY_CAST(string_split(r.id, ':')[-1] AS BIGINT)) AS decision_seq,
       r.quotes, r.notes
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "decision_seq": "BIGINT", "quotes": "JSON", "notes": "JSON"}') AS r
    FROM seg_lines WHERE kind = 'quote_decision'
)
ORDER BY line_no;
