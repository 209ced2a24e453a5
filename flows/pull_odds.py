"""``pull-odds`` (every 30 min; one game on demand): sportsbook odds → de-vigged fair
probabilities per book → Pinnacle-anchored consensus → per-game theo snapshots for the workers.
Raw payloads, book prices, theos, snapshots and quota are recorded for DuckDB."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.runtime import acall, artifact_key, logger, table_artifact
from tasks.theo import pull_odds_task


@flow(name="pull-odds")
async def pull_odds(event_ticker: str | None = None) -> dict[str, Any]:
    """Every sport with games ahead (one request each), or ``event_ticker``'s game only."""
    report = await acall(pull_odds_task, event_ticker)
    log = logger()
    for line in report.lines():
        log.info(line)
    rows = report.snapshot_rows()
    table_artifact(artifact_key("theo", event_ticker or "all"), rows,
                   "theo per Kalshi market from the latest pull")
    return report.summary()
