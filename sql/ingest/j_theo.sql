-- Journal kind theo → table j_theo (columns and types = store.JOURNAL_TABLES["theo"]).
-- probs: fair probability per market, floats in [0, 1] — a JSON object {market: p} from
-- journal.theo(), or a JSON array in the game's market order from the worker engine.
-- The engine's record carries neither event_ticker nor as_of_ns: both come from its id
-- "<event_ticker>:<as_of_ns>" (journal.theo's id is "<event_ticker>:<source>:<as_of_ns>").
SELECT r.id, r.worker_id, r.ts_ns, segment,
       COALESCE(r.event_ticker, split_part(r.id, ':', 1)) AS event_ticker,
       r.probs, r.uncertainty, r.source,
       COALESCE(r.as_of_ns, TRY_CAST(string_split(r.id, ':')[-1] AS BIGINT)) AS as_of_ns
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "event_ticker": "VARCHAR", "probs": "JSON", "uncertainty": "JSON",
        "source": "VARCHAR", "as_of_ns": "BIGINT"}') AS r
    FROM seg_lines WHERE kind = 'theo'
)
ORDER BY line_no;
