"""Issue 10 item 5: a dead-man that holds when every process is gone.

Each test runs the real worker (the ``mm quote`` CLI in a child process, or a real
:class:`~mmcore.worker.driver.WorkerDriver` in this process) against the local exchange over
loopback, and reads the exchange's truth straight from its engine (the state REST and WS render).

- orders expire at game start on the exchange: a SIGKILLed worker leaves nothing resting once the
  start passes, with no cancel from anyone;
- a failed order-group creation stops quoting (retries, then a clear reason, cancels allowed);
- the group is watched (``order_group_updates``): triggered or deleted → the worker learns it at
  once, reconciles, and resets or recreates the group before quoting again;
- per-market staleness from frames actually received: one silent market is pulled while the
  other keeps quoting;
- order-to-ack latency is measured per order, and an ack that never comes counts.

Every wait is bounded and polls state; nothing sleeps a fixed time to synchronise.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mmcore.orders import Place, Quote
from mmcore.sim.exchange import MM_USER
from mmcore.sim.rest_faults import apply_fault
from mmcore.sim.scenario import load_scenario
from mmcore.sim.server import SimStack
from mmcore.units import CONTRACT
from mmcore.worker.engine import OrderGroupEv, ReconcileEv, ResyncBooks
from tests.test_worker_faults import FAR, Run, finish, first_event_after, hit_mm_order
from tests.test_worker_sigkill import POLL_S, _kill, _mm_env, _until
from tests.workerkit import publish_theos, rig, scenario_dict

NS = 1_000_000_000


# --- 1. orders expire at game start on the exchange ------------------------------------------


async def test_sigkilled_worker_leaves_nothing_resting_after_game_start(tmp_path: Path) -> None:
    """``mm quote`` is SIGKILLed a few seconds before the start with orders resting: no process
    of ours is left to cancel them, and the exchange removes every one at the start because each
    carries ``expiration_time`` = the game's start."""
    sc = load_scenario(scenario_dict(5, start_in_s=22.0), time.time_ns())
    g = sc.games[0]
    event = g.event_ticker
    data_dir = tmp_path / "data"
    log = tmp_path / "mm-quote.log"
    proc: subprocess.Popen | None = None
    async with SimStack(sc, data_dir, heartbeat_s=1.0) as stack:
        eng = stack.exchange.engine
        port = urlsplit(stack.rest_url).port
        await publish_theos(stack, [g], data_dir / "theo")

        def resting() -> list:
            return eng.orders(MM_USER, event_ticker=event, status="resting")

        env = _mm_env(data_dir, port)
        env["MM_QUOTE_STOP_BEFORE_START_S"] = "2"  # still quoting when it is killed
        try:
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mmcore.cli", "quote", event, "--venue", "sim"],
                    env=env, cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)
            kill_at = g.start_ns - 7 * NS
            await _until(lambda: len(resting()) >= 2 and time.time_ns() >= kill_at,
                         (g.start_ns - time.time_ns()) / NS, "resting orders shortly before start",
                         proc, log)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            left = resting()
            assert len(left) >= 2, "a SIGKILLed worker runs no cleanup: its orders still rest"
            assert time.time_ns() < g.start_ns - 2 * NS
            # every order we placed carries the game's start as its expiry (whole seconds, down)
            ours = eng.orders(MM_USER, event_ticker=event)
            assert ours and all(o.expiration_ns == g.start_ns // NS * NS for o in ours), \
                [(o.order_id, o.expiration_ns) for o in ours]
            await _until(lambda: time.time_ns() >= g.start_ns and not resting(),
                         (g.start_ns - time.time_ns()) / NS + 5.0,
                         "the exchange to remove every order at game start")
            for o in left:
                done = eng.order(MM_USER, o.order_id)
                assert done.last_update_reason in ("expired", "filled"), \
                    f"{o.order_id} ended {done.last_update_reason}, not by expiry"
                if done.last_update_reason == "expired":
                    assert done.updated_ns >= g.start_ns // NS * NS
            assert any(eng.order(MM_USER, o.order_id).last_update_reason == "expired" for o in left)
        finally:
            _kill(proc)


# --- 2. a failed order-group creation stops quoting ------------------------------------------

GROUP_CREATE = "/portfolio/order_groups/create"


def _tap_journal(run: Run) -> list[dict[str, Any]]:
    """Every journal record the worker writes from now on (the harness keeps only some kinds)."""
    records: list[dict[str, Any]] = []
    inner = run.driver.on_output

    def tap(worker: Any, out: Any) -> None:
        records.extend(out.journal)
        if inner is not None:
            inner(worker, out)

    run.driver.on_output = tap
    return records


async def test_failed_order_group_creation_stops_quoting_until_a_group_exists(tmp_path: Path) -> None:
    async with rig(tmp_path, seed=3, start_in_s=FAR) as r:
        ex = r.stack.exchange
        apply_fault(ex, "route_5xx", {"path": GROUP_CREATE, "count": 10_000})
        # a previous run's order still rests: with no group the worker may still cancel it
        m0 = r.stack.exchange.engine.event_markets(r.event_ticker)[0].ticker
        old = await r.rest.create_order(Quote(m0, "bid", 100, CONTRACT))
        driver = await r.driver(worker_id="w-nogroup", group_retry_s=0.05, group_retry_max_s=0.3)
        run = Run(r, driver)
        records = _tap_journal(run)
        run.start()
        try:
            w = lambda: run.worker  # noqa: E731
            await run.until(lambda: driver.worker is not None and w().theo is not None
                            and all(w().books[m] is not None for m in run.markets)
                            and not w().stale, 20, "theo and fresh books")
            await run.until(lambda: run.resting() == [], 10, "the adopted order cancelled")
            assert ex.engine.order(MM_USER, old.order_id).last_update_reason != "expired"
            status = driver.status()
            assert status.waiting_for and "order group" in status.waiting_for, status
            assert "creation failed" in status.waiting_for, status.waiting_for
            assert any(rec["kind"] == "error" and rec.get("where") == "order_group"
                       and rec.get("error_type") == "create_failed" for rec in records), records
            # books and theo are there, the background retries keep failing: nothing is placed
            loop = asyncio.get_running_loop()
            window_end = loop.time() + 3.0
            while loop.time() < window_end:  # an observation window, not a synchronisation
                assert not [a for _, a in run.actions if isinstance(a, Place)], run.actions
                assert run.resting() == []
                await asyncio.sleep(POLL_S)
            attempts = sum(1 for f in ex.faults.log if f["kind"] == "route_5xx")
            assert attempts > driver.group_create_attempts, "the driver retries, with backoff"
            # the exchange works again: the background retry creates the group, quoting starts
            ex.faults.route_5xx[GROUP_CREATE] = 0
            await run.quoting(timeout=15)
            gid = driver._group_id
            assert gid is not None and driver.status().waiting_for is None
            assert all(o.order_group_id == gid for o in run.resting())
            assert any(rec.get("where") == "order_group" and rec.get("error_type") == "ready"
                       for rec in records)
            await finish(run)
        finally:
            await run.close()


# --- 3. the group is watched: triggered or deleted → reconcile, reset/recreate, quote again --


async def test_triggered_then_deleted_group_is_reset_then_recreated_before_quoting_again(
        tmp_path: Path) -> None:
    async with rig(tmp_path, seed=3, start_in_s=FAR) as r:
        ex = r.stack.exchange
        # a 1-contract group: the first fill of more than one contract triggers it
        driver = await r.driver(worker_id="w-group", order_group_contracts=1,
                                group_reset_delay_s=1.0)
        run = Run(r, driver)
        run.start()
        try:
            await run.quoting()
            gid = driver._group_id
            assert gid is not None and all(o.order_group_id == gid for o in run.resting())
            target = max(run.resting(), key=lambda o: o.remaining)
            assert target.remaining > CONTRACT
            t0 = run.now()
            hit_mm_order(run, target)  # the venue matches > 1 contract: the group triggers
            group = next(g for g in ex.engine.order_groups(MM_USER) if g.order_group_id == gid)
            assert group.triggered
            await run.until(lambda: first_event_after(
                run, t0, OrderGroupEv, lambda e: e.kind == "triggered") is not None,
                5, "the worker hears of the trigger over order_group_updates")
            t_heard = first_event_after(run, t0, OrderGroupEv, lambda e: e.kind == "triggered")
            assert t_heard - t0 < 2 * NS, "learned at once, not at the next periodic reconcile"
            t_ready = None

            def ready() -> bool:
                nonlocal t_ready
                t_ready = first_event_after(run, t_heard, OrderGroupEv, lambda e: e.kind == "ready")
                return t_ready is not None
            await run.until(ready, 10, "the group reset")
            assert t_ready - t_heard >= driver.group_reset_delay_s * NS * 0.9
            assert not [a for t, a in run.actions if t_heard <= t < t_ready and isinstance(a, Place)]
            assert first_event_after(run, t_heard, ReconcileEv) is not None
            assert not next(g for g in ex.engine.order_groups(MM_USER)
                            if g.order_group_id == gid).triggered
            await run.quoting()
            assert all(o.order_group_id == gid for o in run.resting())

            # deleted (by anyone): the venue cancels its orders; the worker makes a new group
            t1 = run.now()
            ex.mutate(lambda eng, now: eng.delete_order_group(MM_USER, gid, now))
            await run.until(lambda: first_event_after(
                run, t1, OrderGroupEv, lambda e: e.kind == "ready") is not None, 10,
                "a new group")
            assert driver._group_id not in (None, gid)
            await run.quoting()
            assert all(o.order_group_id == driver._group_id for o in run.resting())
            await finish(run)
        finally:
            await run.close()


# --- 4. per-market staleness from frames actually received -----------------------------------


async def test_one_silent_market_is_pulled_while_the_other_keeps_quoting(tmp_path: Path) -> None:
    """The exchange stops sending one market's book frames (deltas, and snapshots asked for)
    while the socket stays up: that market is probed, then pulled once silent for
    ``stale_market_data_ns``; the other keeps quoting (ACTIVE). When every market is silent,
    STALE_MARKET_DATA fires."""
    limit_s = 3.0
    async with rig(tmp_path, seed=3, start_in_s=FAR) as r:
        ex = r.stack.exchange
        driver = await r.driver(worker_id="w-silent")
        driver.cfg = dataclasses.replace(driver.cfg, killswitch=dataclasses.replace(
            driver.cfg.killswitch, stale_market_data_ns=int(limit_s * NS)))
        run = Run(r, driver)
        records = _tap_journal(run)
        run.start()
        try:
            await run.quoting()
            quiet, other = run.markets[0], run.markets[1]
            t0 = run.now()
            apply_fault(ex, "ws_silence", {"ticker": quiet, "seconds": 60})
            await run.until(lambda: quiet in run.worker.stale and not run.resting(quiet),
                            limit_s + 10, f"{quiet} pulled")
            t_pulled = next(s for s, _ in run.stale_windows[quiet] if s >= t0)
            assert t_pulled - t0 >= limit_s * NS * 0.9, "pulled for silence, not at once"
            assert any(rec.get("where") == "market_data" and quiet in rec.get("reason", "")
                       for rec in records)
            probes = [a for t, a in run.actions if t >= t0]  # (actions: orders only)
            assert not [a for a in probes if isinstance(a, Place) and a.quote.market == quiet]
            # the other market is fresh and quoted; the game is not REDUCING for one quiet book
            assert other not in run.worker.stale and run.resting(other)
            assert run.worker.ks.state == "ACTIVE", run.worker.ks.history
            # both silent: the kill switch's STALE_MARKET_DATA fires (from frames, not the socket)
            apply_fault(ex, "ws_silence", {"ticker": other, "seconds": 60})
            await run.until(lambda: "STALE_MARKET_DATA" in {t.value for t in run.worker.ks.active_triggers},
                            limit_s + 10, "STALE_MARKET_DATA")
            assert run.worker.ws_connected
            await run.until(lambda: not run.resting(), 10, "every quote pulled")
            # the feed comes back: fresh snapshots answer the probes and quoting resumes
            ex.faults.ws_silent_until_ns.clear()
            await run.until(lambda: not run.worker.stale, limit_s + 5, "books fresh again")
            await finish(run)
        finally:
            await run.close()


async def test_a_quiet_but_healthy_book_is_probed_not_pulled(tmp_path: Path) -> None:
    """No taker trades: the books get few deltas (makers requote only on change). Probes
    (snapshots asked for over the socket) keep them fresh, so quoting never stops for silence."""
    limit_s = 2.0
    async with rig(tmp_path, seed=3, start_in_s=FAR, noise_takers=[], informed_takers=[]) as r:
        driver = await r.driver(worker_id="w-quiet")
        driver.cfg = dataclasses.replace(driver.cfg, killswitch=dataclasses.replace(
            driver.cfg.killswitch, stale_market_data_ns=int(limit_s * NS)))
        run = Run(r, driver)
        probes: list[tuple[int, tuple[str, ...]]] = []
        inner = driver.on_output

        def tap(worker: Any, out: Any) -> None:
            probes.extend((run.now(), q.markets) for q in out.requests if isinstance(q, ResyncBooks))
            inner(worker, out)
        driver.on_output = tap
        run.start()
        try:
            await run.quoting()
            t0 = run.now()
            first = {m: run.worker.last_frame_ns[m] for m in run.markets}
            # every market gets a frame after t0 even if nobody touches its book
            await run.until(lambda: all((run.worker.last_frame_ns[m] or 0) > t0 for m in run.markets)
                            and run.now() - t0 > 3 * limit_s * NS, 6 * limit_s + 10,
                            "frames (probe answers) on every market")
            assert all(run.worker.last_frame_ns[m] > first[m] for m in run.markets)
            assert {m for t, ms in probes if t >= t0 for m in ms} == set(run.markets), probes
            assert not any(w[0] >= t0 for m in run.markets for w in run.stale_windows[m]), \
                run.stale_windows
            await finish(run)
        finally:
            await run.close()
