"""G4 — nothing lost: SIGKILL the worker and the ingest at random points; after restarts the
exchange's fills and DuckDB's fills agree (lost 0, doubled 0), and the orders the killed worker
left resting are off the book, with the time it took and by what.

Each run (seeded, ``MM_CHAOS_SIZE_G4_RUNS``: CI 1, full 10) holds the local exchange
(:class:`~mmcore.sim.server.SimStack`, busy noise takers) in this process and the real programs in
child processes, as in :mod:`tests.test_worker_sigkill`:

1. ``mm quote EVENT --venue sim`` quotes until ``k`` of its orders filled (k drawn 1–3) and a
   drawn 0–2 s more, then is SIGKILLed: no cleanup runs, its orders stay resting (the orphans);
2. the ingest (:func:`mmcore.record.ingest.ingest`, what the ``ingest`` flow's task runs, in its
   own process) starts and is SIGKILLed after a drawn 0.05–1.5 s;
3. ``mm quote`` restarts with ``--until`` 8 s ahead: it adopts the orphans (start-up reconcile),
   quotes on, and ends with nothing resting;
4. the ingest runs again, is SIGKILLed again at a drawn point, and then runs to completion.

Figures, from the exchange's own records: **lost** = exchange fills of mm (trade ids) missing from
DuckDB's ``fills``; **doubled** = ``fills`` rows beyond one per trade id, plus trade ids DuckDB has
that the exchange does not, plus any market whose DuckDB signed count differs from the exchange's
position; **orphans** = the killed run's resting orders: how long until each was off the book
(``Order.updated_ns`` − the kill) and by what (``last_update_reason``: canceled by the restarted
worker's recovery, expired at game start, filled). SIGKILL of ``mm serve`` and of the Prefect
server (launcher recovery of orphaned flow runs): ``test_g4_serve_and_server.py``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mmcore.record.db import connect
from mmcore.sim.exchange import MM_USER
from mmcore.sim.scenario import load_scenario
from mmcore.sim.server import SimStack
from tests.chaos import figures
from tests.test_worker_sigkill import (
    BUSY_TAKERS,
    _kill,
    _mm_env,
    _spawn_quote,
    _until,
    _wait_exit,
)
from tests.workerkit import publish_theos, scenario_dict

NS = 1_000_000_000
RUNS = figures.size("g4_runs", ci=1, full=10)
ORPHAN_BOUND_S = 30.0
"""Every orphan off the book within this long of the kill (the restart comes at once here)."""
INGEST = ("import sys; from pathlib import Path; from mmcore.record.ingest import ingest; "
          "print(ingest(Path(sys.argv[1])).summary())")


@dataclass
class Outcome:
    rep: int
    exchange_fills: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    orphans: int = 0
    orphan_s: list[float] = field(default_factory=list)
    orphan_by: Counter = field(default_factory=Counter)
    ingest_kills: int = 0
    notes: list[str] = field(default_factory=list)


def _spawn_ingest(data_dir: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-c", INGEST, str(data_dir)], env=env,
                                cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)


async def _ingest_killed_at(data_dir: Path, env: dict[str, str], log: Path, after_s: float) -> bool:
    """Start an ingest and SIGKILL it ``after_s`` in (True) unless it finished first."""
    proc = _spawn_ingest(data_dir, env, log)
    try:
        loop = asyncio.get_running_loop()
        end = loop.time() + after_s
        while proc.poll() is None and loop.time() < end:
            await asyncio.sleep(0.01)  # ok: the drawn kill point, not a synchronisation
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            return True
        assert proc.returncode == 0, log.read_text(errors="replace")[-2000:]
        return False
    finally:
        _kill(proc)


async def _ingest_to_end(data_dir: Path, env: dict[str, str], log: Path) -> None:
    proc = _spawn_ingest(data_dir, env, log)
    try:
        rc = await _wait_exit(proc, 120.0)
        assert rc == 0, log.read_text(errors="replace")[-3000:]
    finally:
        _kill(proc)


async def _one_run(tmp_path: Path, rep: int) -> Outcome:
    rng = random.Random(f"g4-{rep}")
    out = Outcome(rep)
    sc = load_scenario(scenario_dict(40 + rep, start_in_s=150.0, noise_takers=BUSY_TAKERS),
                       time.time_ns())
    g = sc.games[0]
    data_dir = tmp_path / "data"
    logs = tmp_path / "procs.log"
    procs: list[subprocess.Popen] = []
    async with SimStack(sc, data_dir, heartbeat_s=1.0) as stack:
        eng = stack.exchange.engine
        port = urlsplit(stack.rest_url).port
        assert port is not None
        env = _mm_env(data_dir, port)
        await publish_theos(stack, [g], data_dir / "theo")

        def resting() -> list:
            return eng.orders(MM_USER, event_ticker=g.event_ticker, status="resting")

        def fills() -> list:
            return [f for m in g.markets for f in eng.fills(MM_USER, ticker=m)]

        try:
            # 1. quote, SIGKILL at a drawn point after k fills
            k = rng.randint(1, 3)
            first = _spawn_quote(g.event_ticker, time.time_ns() + 80 * NS, data_dir, port, logs)
            procs.append(first)
            await _until(lambda: len(resting()) >= 2 and len(fills()) >= k, 60.0,
                         f"resting orders and {k} fill(s)", first, logs)
            await asyncio.sleep(rng.uniform(0.0, 2.0))  # ok: the drawn kill point
            if first.poll() is not None:
                raise AssertionError(f"mm quote exited early: {logs.read_text()[-2000:]}")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
            kill_ns = time.time_ns()
            orphans = [o.order_id for o in resting()]
            out.orphans = len(orphans)
            # 2. an ingest killed at a drawn point
            out.ingest_kills += await _ingest_killed_at(data_dir, env, logs, rng.uniform(0.05, 1.5))
            # 3. restart: adopt, carry on, stop with nothing resting
            second = _spawn_quote(g.event_ticker, time.time_ns() + 8 * NS, data_dir, port, logs)
            procs.append(second)
            rc = await _wait_exit(second, 60.0)
            if rc != 0:
                out.notes.append(f"restarted mm quote exit {rc}: {logs.read_text()[-1500:]}")
            if resting():
                out.notes.append(f"{len(resting())} resting after the restarted run ended")
            for oid in orphans:
                o = eng.order(MM_USER, oid)
                if o.is_resting:
                    out.notes.append(f"orphan {oid} still resting")
                    continue
                out.orphan_s.append(max(0, o.updated_ns - kill_ns) / NS)
                out.orphan_by[o.last_update_reason or "?"] += 1
            # 4. ingest killed again, then to the end
            out.ingest_kills += await _ingest_killed_at(data_dir, env, logs, rng.uniform(0.05, 1.5))
            await _ingest_to_end(data_dir, env, logs)
            # the record against the exchange
            ex_fills = {f.trade_id: f for f in fills()}
            out.exchange_fills = len(ex_fills)
            con = connect(data_dir)
            rows = con.execute("SELECT trade_id, market, side, count FROM fills").fetchall()
            ids = Counter(r[0] for r in rows)
            out.lost = sorted(set(ex_fills) - set(ids))
            out.doubled = [f"{t} x{n}" for t, n in ids.items() if n > 1]
            out.doubled += [f"{t} not on the exchange" for t in set(ids) - set(ex_fills)]
            for m in g.markets:
                signed = sum(c if s == "bid" else -c for _, mk, s, c in rows if mk == m)
                if signed != eng.position(MM_USER, m):
                    out.doubled.append(f"{m}: DuckDB {signed} vs exchange {eng.position(MM_USER, m)}")
        finally:
            for p in procs:
                _kill(p)
    return out


async def test_g4_sigkilled_worker_and_ingest_lose_and_double_nothing(tmp_path):
    outs = []
    for rep in range(RUNS):
        outs.append(await asyncio.wait_for(_one_run(tmp_path / f"run{rep}", rep), timeout=240))
    lost = sum(len(o.lost) for o in outs)
    doubled = sum(len(o.doubled) for o in outs)
    n_fills = sum(o.exchange_fills for o in outs)
    ok_fills = lost == 0 and doubled == 0 and n_fills > 0
    figures.report(4, "fills", f"lost {lost}, doubled {doubled} of {n_fills} exchange fills over "
                   f"{len(outs)} run(s) ({len(outs)} worker and {sum(o.ingest_kills for o in outs)} "
                   f"ingest SIGKILLs)", "0, 0", ok_fills,
                   lost=[x for o in outs for x in o.lost][:20],
                   doubled=[x for o in outs for x in o.doubled][:20])
    times = [t for o in outs for t in o.orphan_s]
    by = sum((o.orphan_by for o in outs), Counter())
    notes = [n for o in outs for n in o.notes]
    n_orphans = sum(o.orphans for o in outs)
    worst = max(times) if times else None
    ok_orphans = (not notes and n_orphans > 0 and len(times) == n_orphans
                  and worst is not None and worst <= ORPHAN_BOUND_S)
    how = ", ".join(f"{n} {why}" for why, n in sorted(by.items()))
    figures.report(4, "orphans", (f"{len(times)}/{n_orphans} off the book, max {worst:.1f} s after "
                                  f"the kill ({how}; by the restarted worker's recovery)")
                   if worst is not None else f"0/{n_orphans} off the book",
                   f"all, ≤ {ORPHAN_BOUND_S:g} s", ok_orphans, times=times, notes=notes[:10])
    assert ok_fills, [(o.lost[:5], o.doubled[:5]) for o in outs]
    assert ok_orphans, (times, notes)
