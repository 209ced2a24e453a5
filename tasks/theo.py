"""Tasks of the theo path: the Kalshi calendar and the odds pull (both in ``mmcore``)."""

from __future__ import annotations

import time
from typing import Any

from prefect import task

from mmcore.errors import MMError
from tasks.runtime import settings


@task(name="refresh-calendar")
async def refresh_calendar_task(horizon_s: float | None = None) -> Any:
    from mmcore.calendar import refresh_calendar
    from mmcore.venues.oddsapi import OddsApiClient
    from mmcore.worker.venue import rest_for

    s = settings()
    async with rest_for(s) as rest, OddsApiClient.from_settings(s) as odds:
        kw: dict[str, Any] = {"sports": list(s.odds_sports)}
        if horizon_s is not None:
            kw["horizon_s"] = horizon_s
        return await refresh_calendar(rest, odds, s.data_dir, time.time_ns(), **kw)


@task(name="pull-odds")
async def pull_odds_task(event_ticker: str | None = None) -> Any:
    from mmcore.calendar import read_calendar
    from mmcore.theo.pull import pull_odds
    from mmcore.theo.refresh import clear_request
    from mmcore.venues.oddsapi import OddsApiClient

    s = settings()
    cal = read_calendar(s.data_dir)
    if cal is None:
        raise MMError(f"no calendar at {s.calendar_path}: run refresh-calendar first")
    now = time.time_ns()
    async with OddsApiClient.from_settings(s) as odds:
        report = await pull_odds(odds, cal, s.data_dir, now, event_ticker=event_ticker,
                                 min_quota_remaining=s.odds_min_quota_remaining)
    # a worker's refresh request (theo/requests/) is served by any pull that published its game
    for snap in report.snapshots:
        clear_request(s.data_dir, snap.event_ticker, served_up_to_ns=now)
    return report
