"""``nightly-audit`` (04:00 America/New_York): markouts of every fill at +1/+5/+30 s against the
Kalshi mid and against theo, the fee audit, the viability inequality per market and day, and P&L
with its attribution — published as keyed table and markdown artifacts."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.record import audit_task, ingest_task, settlements_task
from tasks.runtime import acall, artifact_key, call, logger, markdown_artifact, table_artifact


@flow(name="nightly-audit")
async def nightly_audit(day: str | None = None) -> dict[str, Any]:
    """``day`` (YYYY-MM-DD, America/New_York) limits the audit to one day; default: everything."""
    log = logger()
    try:
        n = await acall(settlements_task)
        log.info("settlements fetched: %d", n)
    except Exception as exc:  # noqa: BLE001 - the audit still runs on what the record has
        log.warning("settlements not fetched: %r", exc)
    call(ingest_task)  # the audit reads the freshest record
    result = call(audit_task, day)
    for name, rows in result.tables.items():
        table_artifact(artifact_key("audit", name), rows, f"nightly audit: {name}")
    markdown_artifact("audit-summary", result.markdown, "nightly audit summary")
    return result.summary()
