"""``refresh-calendar`` (hourly): Kalshi sports events, markets, start times (milestones), fee
types and tick grids → the calendar the launcher and the odds pull read, and the record; each
game matched to its Odds API event, the unmatched listed with reasons."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.runtime import acall, logger, table_artifact
from tasks.theo import refresh_calendar_task


@flow(name="refresh-calendar")
async def refresh_calendar(horizon_s: float | None = None) -> dict[str, Any]:
    report = await acall(refresh_calendar_task, horizon_s)
    log = logger()
    for line in report.lines():
        log.info(line)
    table_artifact("calendar", report.game_rows(), "Kalshi games ahead and their Odds API match")
    return report.summary()
