"""G4 — nothing lost, the orchestration half: SIGKILL ``mm serve`` and the Prefect server while a
quote-game run quotes; restart each; the exchange's fills and DuckDB's fills agree (lost 0,
doubled 0) and the killed run's resting orders are off the book, with the time it took and by what.

Each run (seeded, ``MM_CHAOS_SIZE_G4_SERVE_RUNS``: CI 1, full 4) is the demo's own machinery
(:class:`flows.demo.DemoStack`: a real ``prefect server``, ``mm sim``, ``mm serve``; one busy game):

1. refresh-calendar, pull-odds and launch-quoting run through the server; from then on ingest runs
   are kept in flight back to back (each PENDING/RUNNING a few seconds: ingest's one slot taken);
2. a drawn 0–2 s after the quote-game run first rests orders, at the first moment orders rest
   while an ingest run is in flight (a burst of fills holds some seeds' quotes for a minute at a
   time: the kill must find orders resting), ``mm serve`` is SIGKILLed with every process it
   started (its flow-run subprocesses: what a container kill or ``systemctl kill -s KILL`` does):
   no hook runs, the run's orders stay resting (the orphans) and the server keeps both runs
   RUNNING/PENDING, each holding its slot;
3. ``mm serve`` restarts; once the run's lease is older than ``MM_QUOTE_LEASE_TIMEOUT_S`` (4 s
   here) launch-quoting runs (triggered here rather than waiting for its 2-min schedule): it
   cancels the game's orders with verification, marks the run Crashed and launches attempt 1;
4. once attempt 1 rests orders, the Prefect server is SIGKILLed at a drawn point and restarted
   (same port, same database) a drawn 1–3 s later; the run quotes on and must end Completed with
   nothing resting at the game's stop-before-start;
5. the killed ingest run is marked Crashed by the zombie automation ``mm serve`` installs
   (``flows/serve.py``; ``MM_ZOMBIE_AFTER_S`` = 45 s here), which frees ingest's slot — without
   it the slot stays taken until Prefect's lease lapses (300 s) and every ingest waits SCHEDULED;
   ingest then runs through the server; DuckDB's ``fills`` against the exchange's fills (by trade
   id, and the signed count per market against the exchange's position).

Figures: **lost**, **doubled** as in ``test_g4_nothing_lost``; **serve orphans**: the orders
resting at the serve kill, how long after it each was off the book (the exchange's
``last_update_time``) and by what (its status); **server**: the orders resting at the server
kill, each off the book (by the run itself) and the run's end state; **slots**: how long after
the serve kill the killed ingest run was Crashed (its slot free) and how long the next ingest
waited.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from flows.demo import (
    FINAL,
    DemoConfig,
    DemoStack,
    _with_env,
    trigger,
    wait_deployments,
    wait_run,
)
from mmcore.record.db import connect
from tests.chaos import figures

NS = 1_000_000_000
RUNS = figures.size("g4_serve_runs", ci=1, full=4)
LEASE_S = 4.0
ZOMBIE_S = 45.0
"""``MM_ZOMBIE_AFTER_S`` here (default 90): a served run silent this long is marked Crashed."""
SLOT_BOUND_S = ZOMBIE_S + 30.0
"""The SIGKILLed ingest run Crashed (its deployment's slot free) within this long of the kill:
the silence window, one heartbeat it may have sent just before, the server's 5 s evaluation and
a server outage in between. Without the zombie automation: 300 s (Prefect's lease)."""
FIRST_START_S = float(figures.size("g4_serve_first_start_s", ci=80, full=130))
"""The game starts this long after the local exchange: the whole kill/restart sequence fits
before it (stack up, flows, quoting, serve kill + restart + recovery, server kill + restart).
CI keeps it short (one seed); the full runs leave room for seeds whose worker rests rarely (an
inventory limit reached early): the kill waits for orders resting."""
ORPHAN_BOUND_S = 60.0
"""Every orphan of the killed serve off the book within this long of the kill (restart, lease
timeout, one launcher run)."""
DEPLOYMENTS = ["refresh-calendar/refresh-calendar", "pull-odds/pull-odds",
               "launch-quoting/launch-quoting", "quote-game/quote-game", "ingest/ingest"]


@dataclass
class Outcome:
    rep: int
    exchange_fills: int = 0
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    orphans: int = 0
    orphan_s: list[float] = field(default_factory=list)
    orphan_by: Counter = field(default_factory=Counter)
    fills_at_kill: int = 0
    zombie: str | None = None
    zombie_s: float | None = None
    zombie_end: str = "?"
    ingest_wait_s: float | None = None
    at_server_kill: int = 0
    server_s: list[float] = field(default_factory=list)
    run_end: str = "?"
    notes: list[str] = field(default_factory=list)
    phases: list[str] = field(default_factory=list)


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (from /proc), children first seen first."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _sigkill_tree(stack: DemoStack, name: str) -> None:
    """SIGKILL the process named ``name`` and everything it started; forget it in ``stack``."""
    proc = next(p for p in stack.procs if p.name == name)
    pids = [proc.popen.pid, *_descendants(proc.popen.pid)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.popen.wait(10)
    stack.procs.remove(proc)


async def _until(pred: Any, timeout_s: float, what: str, stack: DemoStack,
                 poll_s: float = 0.25) -> Any:
    """Poll ``pred`` (an async callable) with a deadline; the processes must stay up."""
    end = time.monotonic() + timeout_s
    while True:
        stack.check_alive()
        got = await pred()
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(poll_s)  # ok: polling the exchange over REST with a deadline


def _ts_ns(rfc: str | None) -> int | None:
    if not rfc:
        return None
    return int(datetime.fromisoformat(rfc.replace("Z", "+00:00")).timestamp() * NS)


async def _off_book(stack: DemoStack, ids: list[str], since_ns: int) -> tuple[list[float],
                                                                              Counter, list[str]]:
    times, by, notes = [], Counter(), []
    async with await stack.rest_client() as rest:
        for oid in ids:
            o = await rest.get_order(oid)
            st = str(getattr(o.status, "value", o.status))
            if st == "resting":
                notes.append(f"order {oid} still resting")
                continue
            t = _ts_ns(o.last_update_time)
            times.append(max(0, (t or time.time_ns()) - since_ns) / NS)
            by[st] += 1
    return times, by, notes


async def _state(run_id: str) -> Any:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return (await client.read_flow_run(run_id)).state


async def _quote_runs() -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async with get_client() as client:
        return await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["quote-game"])))


async def _body(stack: DemoStack, rng: random.Random, out: Outcome) -> None:
    t0 = time.monotonic()
    mark = out.phases.append
    await stack.up()
    await wait_deployments(DEPLOYMENTS, stack)
    mark(f"up {time.monotonic() - t0:.0f}s")
    for name in ("refresh-calendar/refresh-calendar", "pull-odds/pull-odds",  # odds need the calendar
                 "launch-quoting/launch-quoting"):
        state = await wait_run(await trigger(name), stack, 120, poll_s=0.5)
        assert state == "COMPLETED", f"{name}: {state}"
    mark(f"launched {time.monotonic() - t0:.0f}s")
    from mmcore.calendar import read_calendar

    cal = read_calendar(stack.data_dir)
    assert cal is not None and len(cal.games) == 1
    ev = cal.games[0].event_ticker

    async def resting() -> list[Any]:
        async with await stack.rest_client() as rest:
            return await rest.get_orders(event_ticker=ev, status="resting")

    async def n_fills() -> int:
        async with await stack.rest_client() as rest:
            return len(await rest.get_fills())

    # 1-2. quote; SIGKILL mm serve and its flow runs at a drawn point while orders rest and an
    # ingest run is in flight (it dies with serve and, PENDING/RUNNING on the server, holds
    # ingest's one slot: the zombie automation must free it). A burst of fills holds some seeds'
    # quotes for a minute at a time: the kill point is the first moment, a drawn 0-2 s after the
    # first rest, when both hold — ingest runs are kept in flight from before the worker starts
    delay = rng.uniform(0.0, 2.0)
    pump = _IngestPump()
    pump_task = asyncio.create_task(pump.run())
    first_rest: list[float] = []

    async def kill_point() -> bool:
        n = len(await resting())
        if n and not first_rest:
            first_rest.append(time.monotonic())
        return (bool(n) and time.monotonic() - first_rest[0] >= delay
                and pump.state in ("PENDING", "RUNNING"))

    try:
        await _until(kill_point, 100, "orders resting with an ingest run in flight", stack,
                     poll_s=0.05)
        zombie, zombie_was = str(pump.rid), pump.state
    finally:
        pump_task.cancel()
    _sigkill_tree(stack, "serve")
    kill_ns = time.time_ns()
    out.fills_at_kill = await n_fills()
    mark(f"serve killed {time.monotonic() - t0:.0f}s")
    out.zombie = f"{zombie} ({zombie_was} at the kill)"
    orphans = [o.order_id for o in await resting()]
    out.orphans = len(orphans)
    # 3. restart; launcher recovery once the lease is stale
    stack.start("serve", [str(Path(sys.executable).with_name("mm")), "serve"])
    await wait_deployments(DEPLOYMENTS, stack)
    await asyncio.sleep(max(0.0, LEASE_S + 1.0 - (time.time_ns() - kill_ns) / NS))  # ok: the lease must age
    state = await wait_run(await trigger("launch-quoting/launch-quoting"), stack, 120, poll_s=0.5)
    assert state == "COMPLETED", f"launch-quoting after the serve kill: {state}"
    mark(f"recovered {time.monotonic() - t0:.0f}s")
    from prefect.client.orchestration import get_client

    from flows.serve import ZOMBIE_AUTOMATION

    async with get_client() as client:  # installed by the first serve, kept by the restarted one
        n_auto = len(await client.read_automations_by_name(ZOMBIE_AUTOMATION))
    if n_auto != 1:
        out.notes.append(f"{n_auto} zombie automations after a serve restart (want 1)")
    t, by, notes = await _off_book(stack, orphans, kill_ns)
    out.orphan_s, out.orphan_by, out.notes = t, by, notes
    runs = await _quote_runs()
    states = sorted(r.state.type.value for r in runs if r.state)
    if "CRASHED" not in states:
        out.notes.append(f"killed run not marked Crashed: {states}")
    live = [r for r in runs if r.state and r.state.type.value not in FINAL]
    if len(live) != 1:
        out.notes.append(f"{len(live)} live quote-game run(s) after recovery: {states}")
        return
    second = str(live[0].id)

    # 4. SIGKILL the Prefect server while attempt 1 quotes; restart it
    await _until(lambda: _n(resting), 90, "attempt 1 resting orders", stack)
    await asyncio.sleep(rng.uniform(0.0, 2.0))  # ok: the drawn kill point
    await _until(lambda: _n(resting), 60, "attempt 1 resting orders at the server kill", stack)
    server_args = next(p for p in stack.procs if p.name == "prefect-server").popen.args
    _sigkill_tree(stack, "prefect-server")
    skill_ns = time.time_ns()
    at_kill = [o.order_id for o in await resting()]
    out.at_server_kill = len(at_kill)
    await asyncio.sleep(rng.uniform(1.0, 3.0))  # ok: the drawn outage
    stack.start("prefect-server", list(server_args))
    await stack.wait_http(f"{stack.api_url}/health", "Prefect server (restarted)", timeout_s=120)
    mark(f"server back {time.monotonic() - t0:.0f}s")
    out.run_end = await wait_run(second, stack, 180, poll_s=0.5)
    mark(f"run ended {time.monotonic() - t0:.0f}s")
    if out.run_end != "COMPLETED":
        out.notes.append(f"attempt 1 ended {out.run_end} after the server kill")
    t, _by, notes = await _off_book(stack, at_kill, skill_ns)
    out.server_s = t
    out.notes += notes
    if await resting():
        out.notes.append(f"{len(await resting())} resting after attempt 1 ended")

    # 5. the ingest run killed with serve (PENDING or RUNNING): Crashed by the zombie automation
    # (its slot free)
    async def zombie_end() -> Any:
        st = await _state(zombie)
        return st if st and st.type.value in FINAL else None

    zst = await _until(zombie_end, SLOT_BOUND_S + 60, "the SIGKILLed ingest run to end", stack)
    out.zombie_end = zst.type.value
    out.zombie_s = (zst.timestamp.timestamp() * NS - kill_ns) / NS
    out.zombie = f"{out.zombie}: {zst.name}, {zst.message}"
    if out.zombie_end != "CRASHED" or "zombie automation" not in (zst.message or ""):
        out.notes.append(f"the ingest run killed with serve ended {out.zombie}")
    # ingest through the server (its one slot must be free); the record against the exchange
    t_ing = time.monotonic()
    state = await wait_run(await trigger("ingest/ingest"), stack, 120, poll_s=0.5)
    out.ingest_wait_s = time.monotonic() - t_ing
    assert state == "COMPLETED", f"ingest: {state}"
    mark(f"ingested {time.monotonic() - t0:.0f}s")
    async with await stack.rest_client() as rest:
        ex = {f.fill_id: f for f in await rest.get_fills()}
        pos = {m: 0 for m in {f.market for f in ex.values()}}
        for f in ex.values():
            pos[f.market] += f.count if str(getattr(f.side, "value", f.side)) == "bid" else -f.count
    out.exchange_fills = len(ex)
    rows = connect(stack.data_dir).execute("SELECT trade_id, market, side, count FROM fills").fetchall()
    ids = Counter(r[0] for r in rows)
    out.lost = sorted(set(ex) - set(ids))
    out.doubled = [f"{t} x{n}" for t, n in ids.items() if n > 1]
    out.doubled += [f"{t} not on the exchange" for t in set(ids) - set(ex)]
    for m, p in pos.items():
        signed = sum(c if s == "bid" else -c for _, mk, s, c in rows if mk == m)
        if signed != p:
            out.doubled.append(f"{m}: DuckDB {signed} vs exchange fills {p}")


async def _n(resting: Any) -> bool:
    return len(await resting()) >= 1


class _IngestPump:
    """Keeps an ingest run in flight: triggers the next as soon as the last one ended, and polls
    the current one's state every 50 ms (``rid``, ``state``)."""

    def __init__(self) -> None:
        self.rid: str | None = None
        self.state = "?"

    async def run(self) -> None:
        from prefect.client.orchestration import get_client

        async with get_client() as client:
            while True:
                if self.rid is None or self.state in FINAL:
                    self.rid, self.state = await trigger("ingest/ingest"), "SCHEDULED"
                run = await client.read_flow_run(self.rid)
                self.state = run.state.type.value if run.state else "?"
                await asyncio.sleep(0.05)  # ok: polling a few-second window


async def _one_run(tmp_path: Path, rep: int) -> Outcome:
    rng = random.Random(f"g4-serve-{rep}")
    out = Outcome(rep)
    cfg = DemoConfig(games=1, seed=70 + rep, exit_after=True, data_dir=tmp_path / "demo",
                     first_start_s=FIRST_START_S, noise_rate_per_s=1.5,
                     env={"MM_QUOTE_STOP_BEFORE_START_S": "5", "MM_LAUNCH_WINDOW_S": "3600",
                          "MM_QUOTE_LEASE_TIMEOUT_S": str(LEASE_S),
                          "MM_ZOMBIE_AFTER_S": str(ZOMBIE_S)})
    stack = DemoStack(cfg, Console(file=io.StringIO(), width=200))
    try:
        await _with_env(stack, _body(stack, rng, out))
    except BaseException as exc:
        logs = stack.data_dir / "logs"
        tails = {p.name: p.read_text(errors="replace")[-1500:] for p in logs.glob("*.log")}
        raise AssertionError(f"{exc!r}; logs {logs}: {tails}") from exc
    finally:
        for p in list(stack.procs):  # SIGKILL what is left, with its children
            if p.popen.poll() is None:
                _sigkill_tree(stack, p.name)
    return out


async def test_g4_sigkilled_serve_and_prefect_server_lose_and_double_nothing(tmp_path):
    outs = [await _one_run(tmp_path / f"run{rep}", rep) for rep in range(RUNS)]
    lost = sum(len(o.lost) for o in outs)
    doubled = sum(len(o.doubled) for o in outs)
    n_fills = sum(o.exchange_fills for o in outs)
    ok_fills = lost == 0 and doubled == 0 and n_fills > 0
    figures.report(4, "fills (serve, server)",
                   f"lost {lost}, doubled {doubled} of {n_fills} exchange fills over {len(outs)} "
                   f"run(s) ({len(outs)} mm serve and {len(outs)} Prefect server SIGKILLs; "
                   f"{sum(o.fills_at_kill for o in outs)} fills before the serve kills)", "0, 0",
                   ok_fills, lost=[x for o in outs for x in o.lost][:20],
                   doubled=[x for o in outs for x in o.doubled][:20])
    times = [t for o in outs for t in o.orphan_s]
    by = sum((o.orphan_by for o in outs), Counter())
    n_orphans = sum(o.orphans for o in outs)
    notes = [n for o in outs for n in o.notes]
    worst = max(times) if times else None
    ok_orphans = (not notes and n_orphans > 0 and len(times) == n_orphans
                  and worst is not None and worst <= ORPHAN_BOUND_S)
    how = ", ".join(f"{n} {why}" for why, n in sorted(by.items()))
    figures.report(4, "orphans (serve)",
                   (f"{len(times)}/{n_orphans} off the book, max {worst:.1f} s after the kill "
                    f"({how}; by launcher recovery after restart + {LEASE_S:g} s lease)")
                   if worst is not None else f"0/{n_orphans} off the book",
                   f"all, ≤ {ORPHAN_BOUND_S:g} s", ok_orphans, times=times, notes=notes[:10])
    zs = [o.zombie_s for o in outs if o.zombie_s is not None]
    zends = Counter(o.zombie_end for o in outs)
    waits = [o.ingest_wait_s for o in outs if o.ingest_wait_s is not None]
    ok_slots = (len(zs) == len(outs) and all(e == "CRASHED" for e in zends.elements())
                and max(zs) <= SLOT_BOUND_S and len(waits) == len(outs))
    figures.report(4, "slots (serve kill)",
                   (f"the ingest run killed with serve: {dict(zends)} max {max(zs):.0f} s after the "
                    f"kill (zombie automation, {ZOMBIE_S:g} s silence), ingest's slot free: the next "
                    f"ingest ran within {max(waits):.0f} s of its trigger") if zs and waits
                   else f"{len(zs)}/{len(outs)} killed ingest runs ended",
                   f"≤ {SLOT_BOUND_S:g} s (Prefect's lease alone: 300 s)", ok_slots, zombie_s=zs,
                   ingest_wait_s=waits, zombies=[o.zombie for o in outs],
                   phases=[o.phases for o in outs])
    stimes = [t for o in outs for t in o.server_s]
    n_at = sum(o.at_server_kill for o in outs)
    ends = Counter(o.run_end for o in outs)
    ok_server = (not notes and len(stimes) == n_at and all(e == "COMPLETED" for e in ends.elements()))
    figures.report(4, "server kill",
                   f"run quoted on: {dict(ends)}; {len(stimes)}/{n_at} orders resting at the kill off "
                   f"the book, max {max(stimes, default=0):.1f} s after (by the run itself)",
                   "run Completed, 0 resting", ok_server, times=stimes, notes=notes[:10])
    assert ok_fills, [(o.lost[:5], o.doubled[:5]) for o in outs]
    assert ok_orphans, (times, notes)
    assert ok_server, (ends, notes)
    assert ok_slots, (zs, dict(zends), waits)
