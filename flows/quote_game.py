"""``quote-game(event_ticker)``: one game's quoting worker, until the game starts.

Ends Completed with nothing resting on the exchange, Failed when the verified cancel-all did not
end flat. A run that starts after its game began exits at once (after verifying nothing rests).
When the run is cancelled or crashes, the hooks below cancel the game's orders with verification;
they may run in another process (the serving process), so they read everything they need from
the flow run's parameters and the environment, and running them twice is harmless.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow
from prefect.runtime import flow_run as current_run

from tasks.quoting import cancel_game_blocking, run_game_worker
from tasks.runtime import LiveArtifact, acall, artifact_key, logger


def cancel_game_on_exit(flow: Any, flow_run: Any, state: Any) -> None:
    """on_crashed / on_cancellation: verified cancel-all for the run's game (self-contained,
    idempotent). The signature must be exactly ``(flow, flow_run, state)`` (design §5)."""
    import logging

    log = logging.getLogger("mm.flows.quote_game")
    event = (getattr(flow_run, "parameters", None) or {}).get("event_ticker")
    if not event:
        log.error("quote-game hook: run %s has no event_ticker parameter", getattr(flow_run, "id", "?"))
        return
    name = getattr(state, "name", "?")
    out = cancel_game_blocking(str(event), f"quote-game run {getattr(flow_run, 'id', '?')} {name}")
    if isinstance(out, dict) and out.get("resting_after") == 0:
        log.warning("quote-game %s %s: cancel-all verified, %s were resting", event, name,
                    out.get("resting_before"))
    else:
        log.critical("quote-game %s %s: CANCEL-ALL NOT VERIFIED: %s", event, name, out)


async def _refresh_via_deployment(event_ticker: str) -> str:
    """The worker asks for a fresh theo (news risk): run the per-game pull-odds now; the
    pull's flow run id."""
    from prefect.deployments import run_deployment

    bucket = time.time_ns() // (60 * 1_000_000_000)  # at most one per game per minute
    run = await run_deployment("pull-odds/pull-odds", parameters={"event_ticker": event_ticker},
                               as_subflow=False, timeout=0,
                               idempotency_key=f"refresh/{event_ticker}/{bucket}",
                               flow_run_name=f"refresh-{event_ticker}")
    return str(run.id)


@flow(name="quote-game", on_crashed=[cancel_game_on_exit], on_cancellation=[cancel_game_on_exit],
      log_prints=True)
async def quote_game(event_ticker: str, until: str | None = None,
                     config: str | None = None) -> dict[str, Any]:
    """Quote one game (all four sides) until it starts; ``until`` (ISO time) stops earlier.
    ``config``: a worker config file (quoting, limits, kill switch, gate; JSON/TOML/YAML) in
    place of ``MM_WORKER_CONFIG``."""
    from mmcore.models import iso_to_ns

    run_id = str(current_run.id or f"local-{time.time_ns()}")
    live = LiveArtifact(artifact_key("status", event_ticker),
                        f"live status of {event_ticker} (updated in place)")

    async def refresh() -> None:
        try:
            await _refresh_via_deployment(event_ticker)
        except Exception as exc:  # noqa: BLE001 - no server (mm run): the request file stays
            logger().info("theo refresh for %s not sent to Prefect: %r", event_ticker, exc)

    result = await acall(run_game_worker, event_ticker, run_id,
                         until_ns=iso_to_ns(until) if until else None, show=live.show,
                         refresh=refresh if current_run.id else None, config=config)
    logger().info("quote-game %s ended: %s", event_ticker, result.to_dict())
    return result.to_dict()
