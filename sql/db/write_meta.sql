-- The database file's own description (mm.duckdb, written by db.ensure_database_file; also
-- created in every in-memory connection). Parameters: $schema_version (digest of the schema
-- files and the record root), $record_root (path), $built_ns (ns since the epoch).
CREATE OR REPLACE TABLE mm_meta AS
SELECT CAST($schema_version AS VARCHAR) AS schema_version,
       CAST($record_root AS VARCHAR) AS record_root,
       CAST($built_ns AS BIGINT) AS built_ns;
