-- bench/audit.py: the synthetic fills (load.sql's bench_fills) shaped as the record table j_fill
-- (store.JOURNAL_TABLES["fill"]) for the product path (v_markouts over Parquet).
SELECT trade_id AS id, 'bench' AS worker_id, fill_ns AS ts_ns, 'bench' AS segment, trade_id,
       'O' || trade_id AS order_id, market, CASE sign WHEN 1 THEN 'bid' ELSE 'ask' END AS side,
       price, CAST(100 AS BIGINT) AS count, CAST(0 AS BIGINT) AS fee, false AS is_taker,
       CAST(NULL AS BIGINT) AS post_position, fill_ns AS exchange_ns, fill_ns AS receipt_ns,
       false AS backfill
FROM bench_fills;
