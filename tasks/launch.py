"""Tasks of the launcher: gather what the decision needs, recover dead runs, start new ones.

The decision itself is :func:`mmcore.ops.launch.plan` (pure). Here: the calendar file, the theo
snapshots' ages, the halt flags, the run leases, and the quote-game runs the Prefect server knows
(none without a server: ``mm run launch-quoting`` prints the plan and launches nothing).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

from prefect import task

from mmcore.ops.launch import GameInfo, LaunchParams, LaunchPlan, RunInfo, plan
from mmcore.ops.lease import read_leases
from mmcore.theo.snapshot import read_snapshot
from tasks.quoting import cancel_verified
from tasks.runtime import in_flow_run, logger, settings

NS = 1_000_000_000
QUOTE_DEPLOYMENT = "quote-game/quote-game"


def _ns(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * NS)


async def quote_game_runs(since_s: float = 2 * 86400) -> list[RunInfo]:
    """quote-game runs created in the last ``since_s`` seconds, as the server reports them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterExpectedStartTime,
    )

    after = datetime.now(timezone.utc) - timedelta(seconds=since_s)
    out: list[RunInfo] = []
    async with get_client() as client:
        offset = 0
        while True:
            page = await client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["quote-game"])),
                flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=after)),
                limit=200, offset=offset)
            for r in page:
                ev = (r.parameters or {}).get("event_ticker")
                if ev and r.state is not None:
                    out.append(RunInfo(str(r.id), str(ev), r.state.type.value, _ns(r.start_time)))
            if len(page) < 200:
                return out
            offset += 200


@task(name="plan-launches")
async def plan_launches(window_s: float | None = None) -> LaunchPlan:
    from mmcore.calendar import read_calendar

    s = settings()
    now = time.time_ns()
    cal = read_calendar(s.data_dir)
    games = [GameInfo(g.event_ticker, g.start_ns) for g in (cal.games if cal else [])]
    theo_as_of = {}
    for g in games:
        snap = read_snapshot(s.theo_dir, g.event_ticker)
        if snap is not None:
            theo_as_of[g.event_ticker] = snap.as_of_ns
    halted = [p.name for p in s.halt_dir.iterdir()] if s.halt_dir.is_dir() else []
    runs = await quote_game_runs() if in_flow_run() else []
    params = LaunchParams(int((window_s or s.launch_window_s) * NS), int(s.launch_max_theo_age_s * NS),
                          int(s.quote_lease_timeout_s * NS),
                          stop_before_ns=int(s.quote_stop_before_start_s * NS), max_attempts=s.quote_max_attempts,
                          deployment=QUOTE_DEPLOYMENT)
    if cal is None:
        logger().warning("no calendar yet (%s): refresh-calendar writes it", s.calendar_path)
    missing = [g.event_ticker for g in games if g.event_ticker not in theo_as_of]
    if missing:
        logger().info("no theo snapshot in %s for %s", s.theo_dir, ", ".join(missing))
    return plan(games, now, params, theo_as_of=theo_as_of, halted=halted, runs=runs,
                leases=read_leases(s.runs_dir))


@task(name="recover-dead-run")
async def recover_run(run_id: str, event_ticker: str, reason: str) -> dict[str, Any]:
    """A run left RUNNING by a hard kill: cancel its game's orders (verified), then mark the
    run Crashed so the launcher may start the game again."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    out = await cancel_verified(event_ticker, halt=False, reason=f"recovery of run {run_id}")
    async with get_client() as client:
        await client.set_flow_run_state(run_id, Crashed(message=f"recovered by launch-quoting: {reason}; "
                                                                f"orders cancelled (verified)"), force=True)
    return {"run_id": run_id, "event_ticker": event_ticker, "reason": reason, **out}


@task(name="start-quote-game")
async def start_run(event_ticker: str, attempt: int, key: str) -> str:
    """``run_deployment`` that returns at once and outlives the launcher (design §5)."""
    from prefect.deployments import run_deployment

    run = await run_deployment(QUOTE_DEPLOYMENT, parameters={"event_ticker": event_ticker},
                               as_subflow=False, timeout=0, idempotency_key=key,
                               flow_run_name=f"{event_ticker}#{attempt}")
    return str(run.id)
