"""``nightly-audit`` (04:00 America/New_York): markouts of every fill at +1/+5/+30 s against the
Kalshi mid and against theo, the fee audit, the viability inequality per market and day, and P&L
with its attribution — published as keyed table and markdown artifacts."""

from __future__ import annotations

import base64
from pathlib import Path
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
    markdown_artifact("audit-summary", result.markdown + plot_markdown(result.plot),
                      "nightly audit summary")
    return {"run_id": result.run_id, "day": result.day,
            "rows": {name: len(rows) for name, rows in result.tables.items()},
            "plot": str(result.plot) if result.plot else None, "elapsed_s": round(result.elapsed_s, 3)}


def plot_markdown(plot: Path | None) -> str:
    """The markout-curve and cumulative-P&L plot inline (a data URI: the UI shows images by URL
    only, and the file lives on this machine), with its path."""
    if plot is None or not plot.is_file():
        return ""
    mime = {".png": "image/png", ".svg": "image/svg+xml"}.get(plot.suffix)
    if mime is None:
        return f"\n\nplot: `{plot}`\n"
    data = base64.b64encode(plot.read_bytes()).decode()
    return f"\n\n![markouts and P&L](data:{mime};base64,{data})\n\nplot: `{plot}`\n"
