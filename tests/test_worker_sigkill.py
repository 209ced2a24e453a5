"""``mm quote`` SIGKILLed mid-session, then restarted: it adopts what rests, carries on, leaves
nothing resting at ``--until``, and the journal holds every fill the exchange reports.

The local exchange (:class:`~mmcore.sim.server.SimStack`, with noise takers busy enough to fill
our quotes) runs in this process; the worker is the real CLI in a child process
(``python -m mmcore.cli quote EVENT --venue sim``), pointed at the stack by environment
(``MM_DATA_DIR``, ``MM_SIM_EXCHANGE_PORT``, ``MM_SIM_HOST``). The test reads the exchange's truth
straight from the engine (``exchange.engine``) — the same state ``GET /portfolio/orders`` and
``GET /portfolio/fills`` render.

1. first run: wait (bounded) until ``mm`` has resting orders *and* at least one fill, then
   SIGKILL. No cleanup can run, so its orders stay resting on the exchange (what order groups,
   ``cancel_order_on_pause`` and restart reconciliation exist for).
2. second run with ``--until`` ~10 s ahead: it must take over the orders left resting (its
   start-up reconcile finds them; each is then amended or cancelled by its own order actions —
   never orphaned, and never two resting orders in one (market, side) slot), keep quoting, and
   exit at ``--until`` with zero resting orders on the exchange.
3. journal: after :func:`~mmcore.worker.journal.recover_all`, every fill of ``mm`` on the exchange is a
   ``fill`` record (id = trade id) in the published segments — written live by the first run
   (a ``.part`` the second run's ``Journal.open`` or ``recover_all`` published) or backfilled by
   the second run's start-up.

Every wait is bounded and polls state; nothing sleeps a fixed time to synchronise.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from mmcore.models import ns_to_iso
from mmcore.sim.exchange import MM_USER
from mmcore.sim.scenario import load_scenario
from mmcore.sim.server import SimStack
from mmcore.worker.journal import published_segments, read_records, recover_all
from tests.workerkit import publish_theos, scenario_dict

NS = 1_000_000_000
POLL_S = 0.05
BUSY_TAKERS = [{"count": 2, "rate_per_s": 1.0, "size_contracts_min": 1, "size_contracts_max": 5}]


def _mm_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_", "KALSHI_", "ODDS_API"))}
    env.update(MM_DATA_DIR=str(data_dir), MM_SIM_EXCHANGE_PORT=str(port), MM_SIM_HOST="127.0.0.1",
               MM_VENUE="sim")
    return env


def _spawn_quote(event: str, until_ns: int, data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    # --until is whole seconds (ns_to_iso); round up so the run is never shorter than asked
    until = ns_to_iso(-(-until_ns // NS) * NS)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mmcore.cli", "quote", event, "--venue", "sim", "--until", until],
            env=_mm_env(data_dir, port), cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)


async def _until(cond: Callable[[], bool], timeout_s: float, what: str,
                 proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"mm quote exited ({proc.returncode}) before {what}:\n{tail}")
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)


async def _wait_exit(proc: subprocess.Popen, timeout_s: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while proc.poll() is None:
        if loop.time() > deadline:
            raise AssertionError(f"mm quote still running {timeout_s:g} s after --until")
        await asyncio.sleep(POLL_S)
    return proc.returncode


def _kill(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


async def test_sigkill_then_restart_adopts_reconciles_and_journals_every_fill(tmp_path: Path) -> None:
    now = time.time_ns()
    sc = load_scenario(scenario_dict(11, start_in_s=120.0, noise_takers=BUSY_TAKERS), now)
    g = sc.games[0]
    event = g.event_ticker
    data_dir = tmp_path / "data"
    journal_root = data_dir / "journal"
    logs = tmp_path / "mm-quote.log"
    procs: list[subprocess.Popen] = []
    async with SimStack(sc, data_dir, heartbeat_s=1.0) as stack:
        eng = stack.exchange.engine
        port = urlsplit(stack.rest_url).port
        await publish_theos(stack, [g], data_dir / "theo")

        def resting() -> list:
            return eng.orders(MM_USER, event_ticker=event, status="resting")

        def fills() -> list:
            return [f for m in g.markets for f in eng.fills(MM_USER, ticker=m)]

        try:
            # --- run 1: quote until something rests and something filled, then SIGKILL ------
            first = _spawn_quote(event, time.time_ns() + 50 * NS, data_dir, port, logs)
            procs.append(first)
            await _until(lambda: len(resting()) >= 2 and fills(), 35.0,
                         "resting orders and a fill", first, logs)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            assert first.returncode == -signal.SIGKILL
            left = resting()
            assert left, "a SIGKILLed worker runs no cleanup: its orders must still rest"
            fills_at_kill = len(fills())

            # --- run 2: restart; adopt, carry on, stop at --until with nothing resting ------
            orphans = {o.order_id for o in resting()}
            restart_ns = time.time_ns()
            until_ns = restart_ns + 10 * NS
            second = _spawn_quote(event, until_ns, data_dir, port, logs)
            procs.append(second)
            loop = asyncio.get_running_loop()
            duplicates: list[list[tuple[str, str, str, int]]] = []
            new_resting: set[str] = set()
            deadline = loop.time() + (until_ns - time.time_ns()) / NS + 20.0
            while second.poll() is None and loop.time() < deadline:
                now_resting = resting()
                if len({(o.ticker, o.side) for o in now_resting}) != len(now_resting):
                    duplicates.append([(o.order_id, o.ticker, o.side, o.price) for o in now_resting])
                new_resting |= {o.order_id for o in now_resting} - orphans
                await asyncio.sleep(POLL_S)
            rc = await _wait_exit(second, 1.0)
            out = logs.read_text(errors="replace")
            assert rc == 0, out[-3000:]
            assert time.time_ns() >= until_ns, "the second run must run until --until"
            assert not duplicates, f"two resting orders in one slot after restart: {duplicates[:3]}"
            assert new_resting, "the restarted worker must carry on quoting (new resting orders)"
            assert resting() == [], "the second run must leave nothing resting (exchange truth)"
            assert "resting_after=0" in out, out[-2000:]

            # --- journal: every exchange fill is a fill record; run 2 owned the orphans -----
            recover_all(journal_root)
            assert not list(journal_root.rglob("*.part"))
            recs = list(read_records(published_segments(journal_root)))
            journaled = {r["id"] for r in recs if r["kind"] == "fill"}
            exchange = {f.trade_id for f in fills()}
            assert len(exchange) >= fills_at_kill >= 1
            missing = exchange - journaled
            assert not missing, (f"{len(missing)} of {len(exchange)} exchange fills have no fill "
                                 f"record in the journal: {sorted(missing)[:5]}")
            starts = [r for r in recs if r["kind"] == "reconcile" and r.get("initial")]
            assert len(starts) == 2 and starts[-1]["ts_ns"] >= restart_ns
            assert starts[-1]["resting"] >= 1, "run 2 must find run 1's orders resting"
            # adopted: each orphan still resting at restart was acted on (amend/cancel) by run 2,
            # or filled away by takers before it could be
            acted = {r.get("order_id") for r in recs
                     if r["kind"] == "order_action" and r["ts_ns"] >= restart_ns}
            for oid in orphans:
                o = eng.order(MM_USER, oid)
                assert oid in acted or o.remaining == 0 and o.last_update_reason == "filled", \
                    f"run 2 never took over orphan {oid} ({o.status}, {o.last_update_reason})"
        finally:
            for p in procs:
                _kill(p)
