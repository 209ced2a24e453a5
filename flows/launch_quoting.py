"""``launch-quoting`` (every 2 min): one quote-game run per game about to start.

Recovers runs a hard kill left RUNNING (orders cancelled with verification, run marked Crashed),
then starts a run for every game the plan allows, each with an idempotency key built from
deployment, game, start time and attempt (so a second launcher on the same state starts nothing).
The plan — every game with its decision — is the run's table artifact.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.launch import plan_launches, recover_run, start_run
from tasks.runtime import acall, in_flow_run, logger, table_artifact


@flow(name="launch-quoting")
async def launch_quoting(window_s: float | None = None) -> dict[str, Any]:
    """``window_s`` overrides ``MM_LAUNCH_WINDOW_S`` for this run."""
    log = logger()
    plan = await acall(plan_launches, window_s)
    for line in plan.lines():
        log.info(line)
    recovered, started = [], []
    if not in_flow_run():
        log.warning("no Prefect server: printing the plan only (mm serve runs the launcher for real)")
    else:
        for r in plan.recover:
            recovered.append(await acall(recover_run, r.run_id, r.event_ticker, r.reason))
        for x in plan.launch:
            started.append({"event_ticker": x.event_ticker, "attempt": x.attempt,
                            "run_id": await acall(start_run, x.event_ticker, x.attempt, x.idempotency_key)})
    rows = ([{"game": x.event_ticker, "decision": f"launch (attempt {x.attempt})"} for x in plan.launch]
            + [{"game": x.event_ticker, "decision": f"recovered dead run {x.run_id}: {x.reason}"}
               for x in plan.recover]
            + [{"game": e, "decision": f"skip: {why}"} for e, why in plan.skipped])
    table_artifact("launch-plan", rows, "launch-quoting: every game in the calendar and its decision")
    return {"launched": started, "recovered": recovered,
            "skipped": [{"game": e, "reason": why} for e, why in plan.skipped]}
