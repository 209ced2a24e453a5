"""``ingest`` (every minute): published worker journal segments → Parquet files of the record
(one per segment and kind; idempotent, lock-free, safe while workers write and users read)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.record import ingest_task
from tasks.runtime import call, logger


@flow(name="ingest")
def ingest() -> dict[str, Any]:
    report = call(ingest_task)
    logger().info(report.summary())
    return {"segments_ingested": report.segments_ingested, "segments_seen": report.segments_seen,
            "rows": dict(report.rows), "invalid_lines": report.invalid_lines,
            "database": report.database, "elapsed_s": round(report.elapsed_s, 3)}
