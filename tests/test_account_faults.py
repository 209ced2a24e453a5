"""Issue 10 "Done when": 10 game workers on one account at the Basic tier through a 429 storm
and a restart of half of them — 0 limit breaches, 0 halts caused by the restart, 0 × 429 outside
the storm.

The real thing, over loopback: the local exchange (:class:`~mmcore.sim.server.SimStack`, ten
games, participants on, the scenario's ``rate_tier`` basic) in this process, and one real
``mm quote EVENT --venue sim`` OS process per game on the exchange's one API key, sharing the
account's rate budget (``<data_dir>/account/``) and risk ledger, as ``bench/account_budget.py``
runs them. Phases, each a condition awaited with a deadline (nothing sleeps to synchronise):

1. every worker prints a trading status line (ACTIVE or REDUCING, not waiting);
2. ``POST /sim/faults rate_limit_storm``: every REST request answers 429 for :data:`STORM_S`;
   the storm must hit someone (the exchange logs its 429s);
3. after the storm every worker prints a trading line again; then half of them are SIGKILLed
   and started again on the same data dir (same journal, ledger and budget files), and each
   restarted worker must trade again (:data:`TRADING_LINES` status lines);
4. every worker prints an ACTIVE line again: neither the storm nor the restart leaves a worker
   REDUCING for good (the storm's late acks once held LATENCY's p95 at the ack timeout);
5. SIGTERM to every worker (the final stop, ``stop: signal SIGTERM``; a game start, should a slow
   machine get there first, ends them as GAME_START).

Then, from the exchange and the workers' journals:

- no INVENTORY_BREACH anywhere; and, sampled all along from the exchange's own state, each
  game's positions never past the hard limit the exchange's book gives (others' liquidity near
  the top through the workers' own limit config, :func:`exchange_hard_limit`; the largest in
  force over ``limit_memory_ns``, the bound INVENTORY_BREACH holds filled inventory to), and
  positions with resting orders at their worst never past the sport's ceiling;
- no HALTED but by the final stop or the game start; every run that was not killed ends
  ACTIVE or REDUCING just before its stop and exits 0;
- every 429 the exchange answered (``GET /sim/state`` → ``rate_limited_log``, with arrival times)
  and every rate-limited ack or error in a journal falls inside the storm window + :data:`GRACE_NS`.

With ``-s`` it prints each run's share of the account's write budget and its orders sent and
refused, as the bench does, and each run's trading states. About 1 minute of wall time on
this 2-core machine (65 s with a busy-loop process beside it); every phase has its own deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from mmcore.orders import Quote
from mmcore.risk.exposure import GamePosition
from mmcore.risk.limits import available_liquidity, game_limit, game_usage
from mmcore.sim.exchange import MM_USER
from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SIM_KEY_ID, SimStack
from mmcore.units import CONTRACT, PRICE_ONE
from mmcore.venues.kalshi.account_file import budget_path, read_record
from mmcore.worker.driver import load_game
from mmcore.worker.engine import WorkerConfig
from mmcore.worker.journal import published_segments, read_records, recover_all
from mmcore.worker.venue import default_worker_config, rest_for, sync_account_tier
from tests.accountkit import sim_settings
from tests.workerkit import publish_theos

NS = 1_000_000_000
N_GAMES = 10
START_IN_S = 240.0
"""Game start; the test stops the workers itself long before (the start is the fallback end)."""
STORM_S = 8.0
GRACE_NS = 5 * NS
"""After the storm window, the time a 429 may still show (a reply in flight, an ack written)."""
TRADING_LINES = 3
"""Status lines (one per ~5 s) a restarted worker prints trading before the final stop."""
POLL_S = 0.25
STATUS = re.compile(r"^(\S+) (ACTIVE|REDUCING) starts in -?\d+s \| quotes ", re.MULTILINE)
RUN_PREFIX = re.compile(r"(?:^|:)([0-9a-f]{8}\d{12})(?::|$)")
"""A run's ``client_id_prefix`` inside a journal id (``EVENT:<prefix>:…``, ``ack:EVENT:<prefix>:…``)."""
HALT_OK = ("stop: ", "GAME_START")
TRADING = ("ACTIVE", "REDUCING")
ACTIVE = ("ACTIVE",)


@dataclass
class Run:
    """One ``mm quote`` process."""

    event: str
    proc: subprocess.Popen[bytes]
    log: Path
    spawned_ns: int
    restart: bool = False
    killed: bool = False
    exited_ns: int | None = None

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def trading_lines(self, after: int = 0, states: tuple[str, ...] = TRADING) -> int:
        """Status lines in one of ``states`` (quoting, not waiting) past byte ``after``."""
        return sum(1 for st in STATUS.findall(self.text()[after:]) if st[1] in states)


@dataclass
class Exposure:
    """One game as the exchange itself shows it, sampled (centi-contracts)."""

    positions: int = 0
    """Largest |d_o| of the positions."""
    with_resting: int = 0
    """Largest |d_o| of the positions with every resting order filled."""
    limits: deque[tuple[int, int]] = field(default_factory=deque)
    """(time, hard limit) over the last ``limit_memory_ns``: see :func:`exchange_hard_limit`."""
    lowest_limit: int | None = None
    breaches: list[tuple[int, int, int]] = field(default_factory=list)
    """(time, |d_o| of the positions, the largest hard limit in force) past that limit."""


def exchange_hard_limit(eng: Any, ev: str, game: Any, cfg: WorkerConfig) -> int:
    """The game's hard limit from the exchange's own book, as :meth:`GameWorker.limit` computes
    it from its copy: others' resting size within ``liquidity_window_price`` of each top (ours
    taken out), through :func:`~mmcore.risk.limits.game_limit`."""
    own: dict[tuple[str, str, int], int] = {}
    for o in eng.orders(MM_USER, event_ticker=ev, status="resting"):
        own[(o.ticker, o.side, o.price)] = own.get((o.ticker, o.side, o.price), 0) + o.remaining
    w, sizes = cfg.liquidity_window_price, []
    for m in game.markets:
        yes, no = eng.orderbook(m)
        asks = [(PRICE_ONE - p, n) for p, n in no]
        if yes:
            top = max(p for p, _ in yes)
            sizes += [max(0, n - own.get((m, "bid", p), 0)) for p, n in yes if p >= top - w]
        if asks:
            top = min(p for p, _ in asks)
            sizes += [max(0, n - own.get((m, "ask", p), 0)) for p, n in asks if p <= top + w]
    return game_limit(game.sport_key, available_liquidity(sizes), cfg.limits).hard_contracts


@dataclass
class Fault:
    """What the test watches while it waits: the processes, the exchange's exposures, the budget."""

    stack: SimStack
    data_dir: Path
    games: dict[str, Any]
    cfg: WorkerConfig
    """The workers' configuration (the same settings): limits, liquidity window, limit memory."""
    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)
    exposure: dict[str, Exposure] = field(default_factory=dict)
    slots: dict[int, Any] = field(default_factory=dict)
    budget: tuple[float, float, str, str] | None = None
    """(write tokens/s, write capacity, tier, source) from the record."""
    samples: int = 0
    _last_budget: float = 0.0

    def spawn(self, event: str, restart: bool = False) -> Run:
        log = self.data_dir.parent / f"{event}{'.restart' if restart else ''}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mmcore.cli", "quote", event, "--venue", "sim"],
                env=self.env, cwd=self.data_dir, stdout=out, stderr=subprocess.STDOUT)
        run = Run(event, proc, log, time.time_ns(), restart=restart)
        self.runs.append(run)
        return run

    def live(self) -> list[Run]:
        return [r for r in self.runs if not r.killed]

    def sample(self) -> None:
        """The exchange's positions and resting orders per game, and the budget record."""
        eng = self.stack.exchange.engine
        now = time.time_ns()
        for ev, game in self.games.items():
            pos = GamePosition({m: eng.position(MM_USER, m) for m in game.markets})
            resting = [Quote(o.ticker, o.side, o.price, o.remaining)
                       for o in eng.orders(MM_USER, event_ticker=ev, status="resting")]
            x = self.exposure.setdefault(ev, Exposure())
            held = game_usage(game.book, pos, [])[1]
            x.positions = max(x.positions, held)
            x.with_resting = max(x.with_resting, game_usage(game.book, pos, resting)[1])
            # the bound INVENTORY_BREACH holds positions to: the largest limit in force lately
            hard = exchange_hard_limit(eng, ev, game, self.cfg)
            x.lowest_limit = hard if x.lowest_limit is None else min(x.lowest_limit, hard)
            x.limits.append((now, hard))
            while now - x.limits[0][0] > self.cfg.limit_memory_ns:
                x.limits.popleft()
            bound = max(h for _, h in x.limits)
            if held > bound:
                x.breaches.append((now, held, bound))
        self.samples += 1
        now = time.monotonic()
        if now - self._last_budget >= 1.0:
            self._last_budget = now
            rec = read_record(budget_path(self.data_dir, "sim", SIM_KEY_ID))
            if rec is not None:
                b = rec.buckets[1]
                self.budget = (b.rate_per_s / rec.safety, b.capacity / rec.safety, rec.tier,
                               rec.source)
                for s in rec.slots:
                    if not s.free and s.label.startswith("quote "):
                        self.slots[s.pid] = s

    def check_alive(self, what: str) -> None:
        for r in self.live():
            if r.proc.poll() is not None and r.exited_ns is None:
                raise AssertionError(f"{r.event} (pid {r.proc.pid}) exited {r.proc.returncode} "
                                     f"before {what}:\n{r.text()[-3000:]}")

    async def until(self, cond: Callable[[], bool], timeout_s: float, what: str,
                    *, alive: bool = True, detail: Callable[[], str] = str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            self.sample()
            if cond():
                return
            if alive:
                self.check_alive(what)
            if loop.time() > deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}"
                                     f"{detail()}")
            await asyncio.sleep(POLL_S)


def _last_lines(runs: list[Run]) -> str:
    """Each run's last status line (what it is doing and why), for a failure message."""
    lines = []
    for r in runs:
        last = [x for x in r.text().splitlines() if x.startswith(r.event + " ")]
        lines.append(f"\n  {'restart' if r.restart else 'first'}: {last[-1] if last else '-'}")
    return "".join(lines)


def _env(data_dir: Path, port: int, odds_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MM_", "KALSHI_", "ODDS_API"))}
    env.update(MM_DATA_DIR=str(data_dir), MM_SIM_EXCHANGE_PORT=str(port),
               MM_SIM_ODDS_PORT=str(odds_port), MM_SIM_HOST="127.0.0.1", MM_VENUE="sim",
               MM_RATE_TIER="basic", MM_QUOTE_STOP_BEFORE_START_S="10", PYTHONUNBUFFERED="1")
    return env


def _run_of(rec: dict[str, Any]) -> str | None:
    m = RUN_PREFIX.search(str(rec.get("id", "")))
    return m.group(1) if m else None


def _rate_limited(rec: dict[str, Any]) -> bool:
    if rec.get("kind") == "ack" and rec.get("ok") is False:
        text = str(rec.get("error"))
    elif rec.get("kind") == "error":
        text = str(rec.get("message"))
    else:
        return False
    return "status=429" in text or "too many requests" in text


def _states(recs: list[dict[str, Any]]) -> str:
    """A run's trading states in order, e.g. ``A>R(RATE_LIMIT)>A>H(stop)``."""
    path = ""
    for x in recs:
        if x["kind"] != "state_change":
            continue
        if not path:
            path = str(x.get("from_state", "?"))[0]
        why = ",".join(x.get("triggers") or ()) or str(x.get("reason", "")).split(":")[0]
        path += f">{str(x.get('to_state', '?'))[0]}({why})"
    return path or "A"


def _report(k: Fault, by_run: dict[tuple[str, str], list[dict[str, Any]]],
            run_of_proc: dict[int, tuple[str, str] | None], wall_s: float,
            state: dict[str, Any]) -> None:
    """The bench's table (bench/account_budget.py) per run: share = its write tokens ÷ the
    account's write budget over the test (tier rate × wall time + capacity); sent = order
    actions journaled; refused = acks the venue refused; 429 = answers the process got (its
    budget slot's penalties) / rate-limited acks and errors journaled; gate = risk-gate
    refusals; then the exchange's view of the game: largest |d| of positions / of positions
    with resting orders, the lowest hard limit its book gave (contracts)."""
    rate, cap, tier, source = k.budget or (0.0, 0.0, "?", "?")
    account = rate * wall_s + cap
    print(f"\naccount fault test: {N_GAMES} `mm quote` workers on one key, tier {tier} (from the "
          f"{source}), write {rate:g} tokens/s, capacity {cap:g}; wall {wall_s:.1f} s → account "
          f"write budget {account:,.0f} tokens; storm {STORM_S:g} s; {k.samples} exchange samples")
    print(f"{'worker':<26} {'run':<7} {'share':>6} {'w tok':>5} {'req':>4} {'wait ms':>7} "
          f"{'sent':>4} {'refused':>7} {'429':>6} {'gate':>4} {'|d| pos/rest':>12} {'limit':>5} "
          f"end     states")
    for r in k.runs:
        s = k.slots.get(r.proc.pid)
        recs = by_run.get(run_of_proc.get(r.proc.pid) or ("", ""), [])
        sent = sum(1 for x in recs if x["kind"] == "order_action")
        refused = sum(1 for x in recs if x["kind"] == "ack" and x.get("ok") is False)
        r429 = sum(1 for x in recs if _rate_limited(x))
        gate = sum(1 for x in recs if x["kind"] == "refusal" and str(x["id"]).startswith("gate:"))
        gate += sum(int(x.get("repeated_refusals") or 0) for x in recs
                    if x["kind"] == "quote_decision")
        what = "restart" if r.restart else ("killed" if r.killed else "first")
        x = k.exposure.get(r.event, Exposure())
        share = tok = req = wait = pen = "-"
        if s is not None:
            share = f"{100 * s.tokens_used[1] / account:.1f}%" if account else "-"
            tok, req, pen = f"{s.tokens_used[1]:.0f}", f"{s.granted[1]}", str(s.penalties)
            wait = f"{sum(s.waited_ns) / max(1, sum(s.granted)) / 1e6:.0f}"
        dims = f"{x.positions / CONTRACT:g}/{x.with_resting / CONTRACT:g}"
        low = "-" if x.lowest_limit is None else f"{x.lowest_limit / CONTRACT:g}"
        print(f"{r.event.split('-', 1)[1]:<26} {what:<7} {share:>6} {tok:>5} {req:>4} {wait:>7} "
              f"{sent:>4} {refused:>7} {pen + '/' + str(r429):>6} {gate:>4} {dims:>12} {low:>5} "
              f"exit {r.proc.returncode!s:<3} {_states(recs)}")
    causes: dict[str, int] = {}
    for e in state.get("rate_limited_log", []):
        causes[e["cause"]] = causes.get(e["cause"], 0) + 1
    print(f"429 answered by the exchange: {state.get('rest', {}).get('answered_429', 0)} "
          f"{causes or ''}")


async def test_ten_workers_through_a_429_storm_and_a_restart_of_half(tmp_path: Path) -> None:
    d = default_scenario_dict(31, N_GAMES)  # NBA, NHL, EPL in turn
    d["rate_tier"] = "basic"
    for g in d["games"]:
        g["start_in_s"] = START_IN_S
    sc = load_scenario(d, time.time_ns())
    data_dir = tmp_path / "data"
    async with SimStack(sc, data_dir, heartbeat_s=1.0) as stack:
        port, odds_port = urlsplit(stack.rest_url).port, urlsplit(stack.odds_url).port
        assert port is not None and odds_port is not None
        await publish_theos(stack, sc.games, data_dir / "theo")
        settings = sim_settings(data_dir, port)
        # the games as the workers read them (on the account's shared budget, like them)
        async with rest_for(settings, label="test account-faults") as rest:
            assert await sync_account_tier(rest, settings) == "basic"
            games = {g.event_ticker: await load_game(rest, g.event_ticker) for g in sc.games}
        cfg = default_worker_config(settings, "probe")
        k = Fault(stack, data_dir, games, cfg, _env(data_dir, port, odds_port))
        events = list(games)
        t0 = time.monotonic()
        try:
            for ev in events:
                k.spawn(ev)
            # 1. everyone trading (past the start-up burst)
            await k.until(lambda: all(r.trading_lines() >= 2 for r in k.runs), 150,
                          "every worker trading (ACTIVE/REDUCING status lines)")
            # 2. the storm
            async with httpx.AsyncClient() as http:
                resp = await http.post(stack.control_url + "/faults", json={
                    "kind": "rate_limit_storm", "params": {"seconds": STORM_S}})
                assert resp.status_code == 200, resp.text
                storm_at = resp.json()["applied"]["at_ns"]
                storm_end = storm_at + int(STORM_S * NS)
                await k.until(lambda: time.time_ns() > storm_end, STORM_S + 30, "the storm's end")
                storm_hits = [e for e in (await http.get(stack.control_url + "/state")).json()[
                    "rate_limited_log"] if e["cause"] == "storm"]
            assert storm_hits, "the storm answered no request: it tested nothing"
            # 3. everyone trading again after the storm; then restart half of them
            marks = {r.event: len(r.text()) for r in k.runs}
            await k.until(lambda: all(r.trading_lines(marks[r.event]) for r in k.runs), 90,
                          "every worker trading after the storm")
            victims = [r for i, r in enumerate(list(k.runs)) if i % 2 == 0]
            for r in victims:
                r.killed = True
                os.kill(r.proc.pid, signal.SIGKILL)
            await k.until(lambda: all(r.proc.poll() is not None for r in victims), 30,
                          "the killed workers gone", alive=False)
            restarted = [k.spawn(r.event, restart=True) for r in victims]
            await k.until(lambda: all(r.trading_lines() >= TRADING_LINES for r in restarted), 150,
                          f"every restarted worker trading ({TRADING_LINES} status lines)")
            # 4. the storm and the restart behind them: every worker quoting ACTIVE again
            # (REDUCING clears 30 s after its last trigger; RATE_LIMIT counts 429s for a minute)
            marks = {id(r): len(r.text()) for r in k.live()}
            await k.until(lambda: all(r.trading_lines(marks[id(r)], ACTIVE) for r in k.live()),
                          150, "every worker ACTIVE again after the storm and the restart",
                          detail=lambda: _last_lines(k.live()))
            # 5. the final stop
            for r in k.live():
                if r.proc.poll() is None:
                    r.proc.send_signal(signal.SIGTERM)
            await k.until(lambda: all(r.proc.poll() is not None for r in k.live()), 90,
                          "every worker's clean exit", alive=False)
        finally:
            for r in k.runs:
                if r.proc.poll() is None:
                    r.proc.kill()
                    r.proc.wait(timeout=10)
        wall_s = time.monotonic() - t0
        k.sample()
        async with httpx.AsyncClient() as http:
            state = (await http.get(stack.control_url + "/state")).json()
        resting_after = stack.exchange.engine.orders(MM_USER, status="resting")

    # --- the record ---------------------------------------------------------------------------
    journal = data_dir / "journal"
    recover_all(journal)
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in read_records(published_segments(journal)):
        run_id = _run_of(rec)
        if run_id is not None:
            by_run.setdefault((str(rec.get("worker_id")), run_id), []).append(rec)
    # a process's run: the worker's runs in start order, matched to its processes in spawn order
    run_of_proc: dict[int, tuple[str, str] | None] = {}
    for ev in events:
        procs = [r for r in k.runs if r.event == ev]
        runs = sorted((key for key in by_run if key[0] == ev),
                      key=lambda key: min(x["ts_ns"] for x in by_run[key]))
        assert len(runs) == len(procs), f"{ev}: {len(procs)} processes but journal runs {runs}"
        for r, key in zip(procs, runs):
            run_of_proc[r.proc.pid] = key
    _report(k, by_run, run_of_proc, wall_s, state)

    # 0 limit breaches: none journaled, none on the exchange
    breaches = [rec for recs in by_run.values() for rec in recs
                if rec["kind"] == "state_change" and "INVENTORY_BREACH" in json.dumps(rec)]
    assert not breaches, breaches
    for ev, x in k.exposure.items():
        assert not x.breaches, (ev, x.breaches[:5])
        sport = k.cfg.limits.sports.get(games[ev].sport_key, k.cfg.limits.default)
        assert x.with_resting <= sport.max_contracts, (ev, x.with_resting)
    # 0 halts but the final stop; every run not killed ends trading, then stops, and exits 0
    halts = [rec for recs in by_run.values() for rec in recs
             if rec["kind"] == "state_change" and rec.get("to_state") == "HALTED"
             and not (str(rec.get("reason", "")).startswith(HALT_OK[0])
                      or HALT_OK[1] in rec.get("triggers", ()))]
    assert not halts, halts
    for r in k.live():
        key = run_of_proc[r.proc.pid]
        assert key is not None
        stops = [x for x in by_run[key] if x["kind"] == "state_change"
                 and x.get("to_state") == "HALTED"]
        assert stops, f"{r.event}: no final stop record"
        assert stops[0]["from_state"] in ("ACTIVE", "REDUCING"), (r.event, r.restart, stops[0])
        assert r.proc.returncode == 0, (r.event, r.text()[-3000:])
    assert not resting_after, f"orders left resting: {resting_after}"
    # 0 × 429 outside the storm: the exchange's answers and the workers' records
    window = (storm_at, storm_end + GRACE_NS)
    log = state["rate_limited_log"]
    assert state["rest"]["answered_429"] == len(log), "the exchange's 429 log overflowed"
    outside = [e for e in log if not window[0] <= e["at_ns"] <= window[1]]
    assert not outside, f"429 answered outside the storm {window}: {outside[:10]}"
    seen = [rec for recs in by_run.values() for rec in recs if _rate_limited(rec)]
    outside = [rec for rec in seen if not window[0] <= rec["ts_ns"] <= window[1]]
    assert not outside, f"rate-limited records outside the storm {window}: {outside[:10]}"
    assert len(k.runs) == N_GAMES + N_GAMES // 2
