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
    logger().info("ingest: %s", report.summary() if hasattr(report, "summary") else report)
    return report.summary() if hasattr(report, "summary") else dict(vars(report))
