-- Journal kind book_top → table j_book_top (columns and types = store.JOURNAL_TABLES["book_top"]).
-- Best bid/ask in price units ($0.0001, YES terms; NULL = empty side), sizes in centi-contracts,
-- times in ns. Reads the temp table seg_lines (000_segment_lines.sql).
SELECT r.id, r.worker_id, r.ts_ns, segment,
       r.market, r.bid, r.bid_size, r.ask, r.ask_size, r.sid, r.seq, r.exchange_ns, r.receipt_ns
FROM (
    SELECT line_no, segment, json_transform(line, '{"id": "VARCHAR", "worker_id": "VARCHAR",
        "ts_ns": "BIGINT", "market": "VARCHAR", "bid": "BIGINT", "bid_size": "BIGINT",
        "ask": "BIGINT", "ask_size": "BIGINT", "sid": "BIGINT", "seq": "BIGINT",
        "exchange_ns": "BIGINT", "receipt_ns": "BIGINT"}') AS r
    FROM seg_lines WHERE kind = 'book_top'
)
ORDER BY line_no;
