-- bench/audit.py, DuckDB engine: load the synthetic Parquet (${RECORD} = the bench's data
-- directory) into memory tables, as polars and pandas load it into data frames.
CREATE OR REPLACE TABLE bench_fills AS SELECT * FROM read_parquet('${RECORD}/fills.parquet');
CREATE OR REPLACE TABLE bench_tops AS SELECT * FROM read_parquet('${RECORD}/tops.parquet');
