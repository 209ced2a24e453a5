"""Tasks around one game's quoting process: run the worker, cancel with verification.

Thin: the worker, its driver and the verified cancel-all are :mod:`mmcore.worker`; this adds the
run's lease (so the launcher can tell a live run from a hard-killed one), its share of the
account's rate budget, and a live status the flow shows as an artifact.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import task

from mmcore.errors import MMError
from mmcore.ops.lease import drop_lease, write_lease
from mmcore.units import CONTRACT, PRICE_ONE
from mmcore.worker.driver import WorkerStatus
from mmcore.worker.killall import CancelAllFailed, cancel_until_flat
from mmcore.worker.startup import StartupTimer
from tasks.runtime import logger, settings

NS = 1_000_000_000
STATUS_EVERY_S = 3.0
READS_PER_RECONCILE = 3
"""REST reads of one periodic reconcile (the driver's ``_reconcile``: user data timestamp,
positions, resting orders)."""
RECONCILE_READ_SHARE = 0.5
"""At most this share of the account's read budget goes to the periodic reconciles of
``MM_MAX_CONCURRENT_GAMES`` workers; the rest is for start-ups, fill backfills and cancel-alls."""
STOP_GRACE_S = 2.0
"""After its stop time (``until``, else game start − ``MM_QUOTE_STOP_BEFORE_START_S``) a worker
whose run loop has not begun stopping by itself within this long is cancelled: whatever it was awaiting
(start-up REST calls, a slow reply, a starved loop) it goes straight to the verified cancel-all
(:func:`_stop_watchdog`)."""


@dataclass
class GameRunResult:
    event_ticker: str
    exit_reason: str
    final_state: str = ""
    actions: int = 0
    fills: int = 0
    refusals: int = 0
    positions: dict[str, float] = field(default_factory=dict)
    """Contracts per market at the end."""
    pnl_dollars: float = 0.0
    """P&L marked at theo ($)."""
    resting_after: int | None = None
    """Our resting orders on the exchange after the verified cancel-all (must be 0)."""
    error: str | None = None
    decision: dict[str, Any] = field(default_factory=dict)
    """Book event received → decision handed to the senders: count, p50/p99/max/mean ms
    (:class:`~mmcore.worker.latency_hist.LatencyHistogram`; bench/scale.py reads it)."""
    reconcile_every_s: float | None = None
    """The periodic reconcile interval this run used (:func:`reconcile_interval_ns`)."""
    budget_lock: dict[str, Any] = field(default_factory=dict)
    """The account budget record's lock as this process saw it: operations, total and longest
    wait (ms) — the event loop is blocked while it waits (bench/scale.py reads it)."""
    startup: dict[str, Any] = field(default_factory=dict)
    """Start-up stages: wall and rate-budget wait per stage (ms), the stage it was in if it
    never finished (:meth:`~mmcore.worker.startup.StartupTimer.summary`; bench/scale.py)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt_status(event_ticker: str, status: WorkerStatus | None, start_ns: int, now_ns: int) -> str:
    """Markdown for the live status artifact (prices in cents, inventory in contracts)."""
    if status is None:
        return f"### {event_ticker}\nstarting…"
    lines = [f"### {event_ticker} · {status.state}" + (f" · waiting for {status.waiting_for}"
                                                        if getattr(status, "waiting_for", None) else ""),
             f"starts in {max(0, start_ns - now_ns) / NS / 60:.1f} min · fills {status.fills} · "
             f"P&L at {getattr(status, 'marked_at', 'theo')} ${status.pnl_money / PRICE_ONE:+.2f}", "",
             "| market | theo | our bid | our ask | inventory |", "|---|---|---|---|---|"]

    def px(price: int | None, size: int) -> str:
        return "—" if price is None else f"{price / 100:g}¢ × {size / CONTRACT:g}"

    for m, q in status.quotes.items():
        theo = status.theo.get(m) if status.theo else None
        lines.append(f"| {m} | {'—' if theo is None else f'{theo:.3f}'} | {px(q.bid, q.bid_size)} | "
                     f"{px(q.ask, q.ask_size)} | {status.inventory.get(m, 0) / CONTRACT:+.0f} |")
    if status.kill_reasons:
        lines += ["", "kill switch: " + ", ".join(status.kill_reasons)]
    return "\n".join(lines)


async def _keep_alive(driver: Any, event_ticker: str, run_id: str,
                      show: Callable[[str], Awaitable[None]] | None) -> None:
    s = settings()
    while True:
        now = time.time_ns()
        write_lease(s.runs_dir, event_ticker, run_id, now)
        if show is not None:
            status = driver.status() if driver.worker is not None else None
            await show(_fmt_status(event_ticker, status, driver.game.start_ns, now))
        await asyncio.sleep(STATUS_EVERY_S)


def reconcile_interval_ns(base_ns: int, games: int, reads_per_s: float) -> int:
    """The periodic reconcile interval for one of ``games`` workers sharing ``reads_per_s``
    (the account's metered read requests per second): ``base_ns`` unless the reconciles of all
    of them would take more than :data:`RECONCILE_READ_SHARE` of the budget. At Basic (20
    reads/s, 18 metered) 50 workers reconciling every 10 s need 15 reads/s — and only ~3/s
    were left to start the others: in bench/scale.py N=50 48 of 50 never got through start-up
    (~13 reads each) in 150 s. There: every 16.7 s."""
    if reads_per_s <= 0:
        return base_ns
    need_s = games * READS_PER_RECONCILE / (RECONCILE_READ_SHARE * reads_per_s)
    return max(base_ns, round(need_s * NS))


def _reads_per_s(rest: Any) -> float:
    """Metered read requests per second of the account's budget as recorded now (the tier the
    last worker read from the exchange, else ``MM_RATE_TIER``); 0 when unmetered."""
    from mmcore.venues.kalshi.ratelimit import endpoint_cost

    acct = getattr(getattr(rest, "limiter", None), "account", None)
    if acct is None:
        return 0.0
    rate = acct.snapshot().buckets[0].rate_per_s
    return rate / endpoint_cost("GET", "/portfolio/orders")[1]


def _lock_stats(rest: Any) -> dict[str, Any]:
    acct = getattr(getattr(rest, "limiter", None), "account", None)
    if acct is None or not hasattr(acct, "lock_ops"):
        return {}
    return {"ops": acct.lock_ops, "wait_ms": round(acct.lock_wait_ns / 1e6, 1),
            "max_wait_ms": round(acct.lock_wait_max_ns / 1e6, 2)}


async def _stop_watchdog(work: asyncio.Task[Any], stop_ns: int, driver: Callable[[], Any],
                         log: Any, event_ticker: str, startup: StartupTimer | None = None) -> bool:
    """Wait for ``work`` (start-up + run loop); if it has not begun stopping by itself
    :data:`STOP_GRACE_S` after ``stop_ns``, cancel it. True when it had to.

    Why: the run loop checks the stop time only between its awaits. Before it runs (start-up:
    ~12 REST calls, each behind the account's shared budget) or while one await is blocked, a
    stop time could pass unseen; with 48 workers starving two cores none had stopped 400 s
    after its stop time. Cancellation lands in :meth:`WorkerDriver.run`'s ``finally`` (cancel
    everything, verified on the exchange) or, during start-up, in the caller's own cancel-all."""
    while not work.done():
        left_s = (stop_ns - time.time_ns()) / NS + STOP_GRACE_S
        if left_s <= 0:
            break
        await asyncio.wait({work}, timeout=min(left_s, 60.0))
    if work.done():
        return False
    d = driver()
    if d is not None and d.worker is not None and d.worker.stopping is not None:
        # the loop saw a stop and is in its verified cancel-all (bounded by its own deadline):
        # cancelling now would cut the verification short
        await asyncio.wait({work})
        return False
    stage = startup.current if startup is not None else None
    log.warning("%s: still %s %.1f s after its stop time: cancelling it (verified cancel-all "
                "follows)", event_ticker,
                ("running" if d is not None and d.worker is not None and stage is None
                 else f"starting (in {stage or 'start-up'})"),
                (time.time_ns() - stop_ns) / NS)
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    return True


@task(name="quote-game-worker", retries=0)
async def run_game_worker(event_ticker: str, run_id: str, *, until_ns: int | None = None,
                          show: Callable[[str], Awaitable[None]] | None = None,
                          refresh: Callable[[], Awaitable[None]] | None = None,
                          config: str | None = None) -> GameRunResult:
    """Run the game's worker until its start (or ``until_ns``); raise :class:`CancelAllFailed`
    when the verified cancel-all did not end with nothing resting. ``config``: a worker config
    file (:mod:`mmcore.worker.config`) in place of ``MM_WORKER_CONFIG``."""
    from mmcore.worker.venue import build_worker, default_worker_config, rest_for, signer_for

    s, log = settings(), logger()
    if config:
        s = s.model_copy(update={"worker_config": Path(config)})
    if s.worker_config is not None:  # a bad file fails the run here, before any connection
        default_worker_config(s, event_ticker)
    signer = signer_for(s)
    async with rest_for(s, signer, label=event_ticker) as rest:
        startup = StartupTimer(event_ticker, rest.limiter)
        with startup.stage("game start"):
            start_ns = await rest.game_start_ns(event_ticker)
        stop_before_ns = int(s.quote_stop_before_start_s * NS)
        now = time.time_ns()
        if now >= start_ns - stop_before_ns:
            log.warning("%s starts in %.0fs, within MM_QUOTE_STOP_BEFORE_START_S (%.0fs): not "
                        "quoting; verifying nothing rests", event_ticker, (start_ns - now) / NS,
                        s.quote_stop_before_start_s)
            kill = await cancel_until_flat(rest, event_ticker)
            return GameRunResult(event_ticker, "game already started", resting_after=len(kill.after))
        stop_ns = start_ns - stop_before_ns if until_ns is None else min(until_ns,
                                                                         start_ns - stop_before_ns)
        box: dict[str, Any] = {}
        wid = f"{event_ticker}--{run_id[:8]}"
        cfg = default_worker_config(s, wid)
        reads_per_s = _reads_per_s(rest)
        every_ns = reconcile_interval_ns(cfg.reconcile_interval_ns, s.max_concurrent_games,
                                         reads_per_s)
        if every_ns != cfg.reconcile_interval_ns:
            log.info("%s: reconciling every %.1f s (%d games on %.0f reads/s)", event_ticker,
                     every_ns / NS, s.max_concurrent_games, reads_per_s)
            cfg = dataclasses.replace(cfg, reconcile_interval_ns=every_ns)

        async def work() -> Any:
            box["driver"] = await build_worker(
                s, rest, signer, event_ticker, until_ns=until_ns, refresh=refresh,
                worker_id=wid, cfg=cfg, start_ns=start_ns, startup=startup)
            driver = box["driver"]
            log.info("quoting %s (%s) until %s; rate budget: the account's %s tier, shared",
                     event_ticker, " ".join(driver.game.markets),
                     time.strftime("%H:%M:%S", time.localtime(start_ns / NS)),
                     rest.limiter.tier if rest.limiter else s.rate_tier)
            keeper = asyncio.create_task(_keep_alive(driver, event_ticker, run_id, show))
            try:
                return await driver.run()
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

        task_ = asyncio.create_task(work())
        try:
            forced = await _stop_watchdog(task_, stop_ns, lambda: box.get("driver"), log,
                                          event_ticker, startup)
        except BaseException:  # this run cancelled (SIGTERM, Prefect): the driver's own
            task_.cancel()     # shutdown (verified cancel-all) runs to its end first
            await asyncio.wait({task_})
            raise
        finally:
            drop_lease(s.runs_dir, event_ticker, run_id)
        driver = box.get("driver")
        if driver is None or driver.worker is None:  # stopped during start-up: nothing to run
            kill = await cancel_until_flat(rest, event_ticker)
            return GameRunResult(event_ticker, "stop time reached during start-up",
                                 resting_after=len(kill.after), startup=startup.summary(),
                                 budget_lock=_lock_stats(rest))
        report = driver.report if forced else task_.result()
        if forced:
            report.exit_reason = f"stop time reached (cancelled after {STOP_GRACE_S:g} s)"
    result = GameRunResult(
        event_ticker, report.exit_reason, report.final_state, report.actions, report.fills,
        report.refusals, {m: q / CONTRACT for m, q in report.positions.items()},
        report.pnl_money / PRICE_ONE, None if report.kill is None else len(report.kill.after),
        report.error, report.decision.summary_ms(), every_ns / NS, _lock_stats(rest),
        startup.summary())
    if show is not None:
        await show(_fmt_status(event_ticker, driver.status(), start_ns, time.time_ns())
                   + f"\n\n**ended**: {result.exit_reason} · resting after: {result.resting_after}")
    if report.kill is None or report.kill.after:
        raise CancelAllFailed(f"{event_ticker}: the verified cancel-all did not end flat "
                              f"({result.resting_after} resting)", list(report.kill.after) if report.kill else [])
    return result


async def cancel_verified(event_ticker: str | None, *, halt: bool, reason: str) -> dict[str, Any]:
    """Cancel every resting order of the game (all games when None) until the exchange lists
    none; with ``halt``, first drop the halt flag ``mm kill`` uses so no worker quotes again."""
    from mmcore.worker.venue import rest_for

    s = settings()
    if halt:
        s.halt_dir.mkdir(parents=True, exist_ok=True)
        (s.halt_dir / (event_ticker or "ALL")).write_text(f"halted: {reason}\n")
    async with rest_for(s) as rest:
        report = await cancel_until_flat(rest, event_ticker)
    return {"scope": report.scope, "resting_before": len(report.before),
            "resting_after": len(report.after), "rounds": report.rounds,
            "cancels_sent": report.cancels_sent, "elapsed_s": round(report.elapsed_s, 3),
            "halted": halt, "reason": reason}


@task(name="cancel-all-verified", retries=0)
async def cancel_all_task(event_ticker: str | None, halt: bool, reason: str) -> dict[str, Any]:
    return await cancel_verified(event_ticker, halt=halt, reason=reason)


def cancel_game_blocking(event_ticker: str, reason: str) -> dict[str, Any] | str:
    """The verified cancel-all from any thread (hooks may run inside a running loop): runs in
    a fresh thread with its own loop and waits for it. Returns the report or the error text."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["out"] = asyncio.run(cancel_verified(event_ticker, halt=False, reason=reason))
        except (MMError, OSError) as exc:
            box["out"] = f"{type(exc).__name__}: {exc}"

    t = threading.Thread(target=work, name=f"cancel-{event_ticker}", daemon=True)
    t.start()
    t.join()
    return box.get("out", "no result")
