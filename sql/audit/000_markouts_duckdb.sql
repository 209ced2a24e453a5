-- Audit step 0, engine "duckdb": the audit's per-fill markouts are the v_markouts view itself
-- (DuckDB ASOF JOIN). Engine "polars" (the default) registers its own result under this name
-- instead (mmcore.record.markouts_polars, from the 000_markouts_polars_*.sql inputs).
CREATE OR REPLACE TEMP VIEW audit_markouts_input AS
SELECT * FROM v_markouts;
