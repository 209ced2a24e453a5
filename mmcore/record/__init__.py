"""The analytics record: immutable Parquet files per table (:mod:`.store`), filled by the ingest
of worker journals, the odds pull, the calendar refresh and the audit; DuckDB views over them
(``sql/``)."""
