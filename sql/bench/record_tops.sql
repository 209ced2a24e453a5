-- bench/audit.py: the synthetic book tops (load.sql's bench_tops) shaped as the record table
-- j_book_top (store.JOURNAL_TABLES["book_top"]); id market:t_ns as the engine writes it.
SELECT market || ':' || CAST(t_ns AS VARCHAR) AS id, 'bench' AS worker_id, t_ns AS ts_ns,
       'bench' AS segment, market, bid, CAST(100 AS BIGINT) AS bid_size, ask,
       CAST(100 AS BIGINT) AS ask_size, CAST(NULL AS BIGINT) AS sid, CAST(NULL AS BIGINT) AS seq,
       t_ns AS exchange_ns, t_ns AS receipt_ns
FROM bench_tops;
