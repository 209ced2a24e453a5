-- The nightly audit's own outputs (mmcore.record.audit writes record/audit_<name>/<run_id>.parquet,
-- columns = store.AUDIT_TABLES): the rows of every run. Filter on run_id for one run.
CREATE OR REPLACE VIEW audit_markouts AS
SELECT * FROM read_parquet('${RECORD}/audit_markouts/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW audit_markout_curve AS
SELECT * FROM read_parquet('${RECORD}/audit_markout_curve/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW audit_flags AS
SELECT * FROM read_parquet('${RECORD}/audit_flags/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW audit_fees AS
SELECT * FROM read_parquet('${RECORD}/audit_fees/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW audit_viability AS
SELECT * FROM read_parquet('${RECORD}/audit_viability/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW audit_pnl AS
SELECT * FROM read_parquet('${RECORD}/audit_pnl/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW audit_pnl_curve AS
SELECT * FROM read_parquet('${RECORD}/audit_pnl_curve/*.parquet', union_by_name = true);

-- One row per audit run (newest first) with its viability totals (net in price units).
CREATE OR REPLACE VIEW audit_runs AS
SELECT run_id, any_value(run_ns) AS run_ns, any_value(audit_day) AS audit_day,
       count(*) AS markets, sum(fills) AS fills, sum(net) AS net,
       count(*) FILTER (WHERE NOT viable) AS markets_not_viable
FROM audit_viability
GROUP BY run_id
ORDER BY run_ns DESC;
