-- The schema version a database file was built with (see write_meta.sql).
SELECT schema_version FROM mm_meta;
