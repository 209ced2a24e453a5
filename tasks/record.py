"""Tasks of the record: ingest journals into Parquet, fetch settlements, run the audit."""

from __future__ import annotations

import time
from typing import Any

from prefect import task

from tasks.runtime import settings


@task(name="ingest-journals")
def ingest_task() -> Any:
    from mmcore.record.ingest import ingest

    return ingest(settings().data_dir)  # also refreshes <data_dir>/mm.duckdb (views only)


@task(name="fetch-settlements")
async def settlements_task() -> int:
    """Our settlements from the exchange → the record (one file per day seen; idempotent)."""
    from mmcore.record.settlements import settlement_rows
    from mmcore.record.store import record_root, write_rows
    from mmcore.worker.venue import rest_for

    s = settings()
    now = time.time_ns()
    async with rest_for(s) as rest:
        rows = settlement_rows(await rest.get_settlements(), now)
    if rows:
        write_rows(record_root(s.data_dir), "settlements", f"settlements-{now}", rows)
    return len(rows)


@task(name="audit")
def audit_task(day: str | None = None) -> Any:
    from mmcore.record.audit import run_audit

    return run_audit(settings().data_dir, day=day, now_ns=time.time_ns())
