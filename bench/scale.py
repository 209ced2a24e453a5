"""Benchmark: N game workers, each a real ``quote-game`` process, on one box at a given delta rate.

Question (issue 11 items 5–6 ``scale``): with N = 10, 25, 50 concurrent game workers against one
local exchange on 127.0.0.1, at an aggregate book-delta rate (default 2,000/s), what decision
latency does each worker see, and how much CPU and memory does each take; does the exchange
answer 429? Goals: decision p99 ≤ 5 ms, ≤ 150 MB RSS per worker.

Run: ``.venv/bin/python bench/scale.py`` (N = 10 for 30 s, ≈ 1.5 min) —
``[--n 10,25,50 --rate 2000 --seconds 30 --tier advanced --seed 7]``; the issue's table is
``--n 10,25,50``; ``--tier basic`` is the account a newcomer starts with.

Per N, from scratch:

- **Exchange** (this process): a :class:`~mmcore.sim.server.SimStack` with N games
  (``world_scenario``'s slate, else the default scenario's; the games starting a minute
  apart from 30 min after the run ends, so no near-start rule applies), simulated participants
  off, the scenario's rate tier ``--tier``; theo snapshots pulled from its odds server as the
  odds pull publishes them (pulled again, up to 4 times, for games a simulated book skipped). A non-mm user, ``bench-flow``,
  rests a ladder on every market (bids 2–11¢ under the hidden truth, asks 2–11¢ over it, 20
  contracts a level), so each worker has a two-sided book and liquidity to size against.
- **Workers**: N processes ``python -m mmcore.cli run quote-game event_ticker=EV until=T`` — the
  quote-game flow's own code (``mm run``: no Prefect server), each with its journal (one fsync
  per decision), all on the local exchange's one key sharing the account's rate budget.
- **Ready**: when every game with a theo snapshot has an order of ours resting (or after a
  start-up allowance of 20 s + 1.8 s per worker; late workers are listed). Each worker's start-up
  stages (wall, rate-budget wait, requests: ``GameRunResult.startup``) and its CPU from exec to
  its first resting order are printed under the table.
- **Window** (``--seconds``): ``bench-flow`` changes the books at ``--rate`` deltas/s in total,
  round-robin over every market, through :meth:`LocalExchange.mutate`: a 1-contract order at
  one of its ladder's five best levels on alternating sides, or a cancel of its oldest such
  order (at most 10 per market) — each one ``orderbook_delta`` to that market's worker, never a
  trade. Only the top's size changes, not its price, as most real deltas do.
- **Stop**: at ``T`` every worker halts, cancels with verification and prints its result.

Figures (printed, none asserted):

- **decision p50 / p99** per worker: its own record (``WorkerReport.decision``, reported by
  quote-game): a book frame's receipt → that event's orders handed to the send tasks and its
  records journaled — queue wait, parse, worker, gate, journal fsync. It covers the whole run
  (a handful of start-up and shutdown events besides the window's); the table gives the median
  worker's p50 and p99 and the worst worker's p99;
- **CPU per worker**: its CPU time over the window (``/proc/<pid>/stat``) ÷ window length, as %
  of one core (mean and max); the exchange process's own CPU over the window;
- **RSS per worker** at the end of the window (``VmRSS``; mean and max) and the peak (``VmHWM``);
- **deltas/s** the generator achieved (it falls behind when the box is saturated);
- **429s** the exchange answered (``GET /sim/state``);
- **last exit s after until**: when the last worker process was seen gone, after the ``until``
  they were given (each must stop itself then, cancelling everything with verification).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchkit import load_line, print_table  # noqa: E402

NS = 1_000_000_000
FLOW_USER = "bench-flow"
FLOW_BALANCE = 10**15
TICK = 100
"""1¢ in price units (the default scenario's games are on the linear cent grid)."""
LADDER_LEVELS = 10
LADDER_COUNT = 2_000
"""Centi-contracts per ladder level (20 contracts)."""
WINDOW = 10
"""The generator's own 1-contract orders kept resting per market before it cancels the oldest."""
GOAL_P99_MS = 5.0
GOAL_RSS_MB = 150.0
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_line() -> str:
    return (f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, {load_line()}")


def proc_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_mem_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MB (None once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = {ln.split(":")[0]: int(ln.split()[1]) for ln in text.splitlines()
          if ln.startswith(("VmRSS:", "VmHWM:"))}
    return kb.get("VmRSS", 0) / 1024, kb.get("VmHWM", 0) / 1024


def _env(data_dir: Path, port: int, odds_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MM_", "KALSHI_", "ODDS_API", "PREFECT_API_URL"))}
    env.update(MM_DATA_DIR=str(data_dir), MM_SIM_EXCHANGE_PORT=str(port),
               MM_SIM_ODDS_PORT=str(odds_port), MM_SIM_HOST="127.0.0.1", MM_VENUE="sim",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    return env


class Flow:
    """``bench-flow``'s ladders and its delta generator on the local exchange."""

    def __init__(self, ex: Any, markets: list[str], truth: dict[str, float]) -> None:
        from mmcore.sim.engine import OrderRequest

        self.ex, self.markets, self.Req = ex, markets, OrderRequest
        self.top: dict[str, tuple[int, int]] = {}
        self.own: dict[str, collections.deque[str]] = {m: collections.deque() for m in markets}
        self.step = 0
        ex.engine.add_user(FLOW_USER, balance=FLOW_BALANCE)
        for m in markets:
            mid = min(max(round(truth[m] * 100), 14), 86) * TICK
            bid, ask = mid - 2 * TICK, mid + 2 * TICK
            self.top[m] = (bid, ask)
            for k in range(LADDER_LEVELS):
                self._place(m, "bid", bid - k * TICK, LADDER_COUNT)
                self._place(m, "ask", ask + k * TICK, LADDER_COUNT)

    def _place(self, market: str, side: str, price: int, count: int) -> str:
        req = self.Req(FLOW_USER, market, side, price, count)
        return self.ex.mutate(lambda eng, now, r=req: eng.place(r, now)).order.order_id

    def one(self) -> None:
        """One book change: the next market, a cancel of the oldest own order or a new one."""
        i = self.step
        self.step += 1
        m = self.markets[i % len(self.markets)]
        q = self.own[m]
        if len(q) >= WINDOW:
            oid = q.popleft()
            self.ex.mutate(lambda eng, now, o=oid: eng.cancel(FLOW_USER, o, now))
            return
        rnd = i // len(self.markets)
        bid, ask = self.top[m]
        k = rnd % 5
        if rnd % 2:
            q.append(self._place(m, "bid", bid - k * TICK, 100))
        else:
            q.append(self._place(m, "ask", ask + k * TICK, 100))

    async def run(self, rate: float, seconds: float, counted: list[int]) -> tuple[int, float]:
        """Book changes at ``rate`` per second for ``seconds``: (deltas, wall seconds)."""
        t0 = time.perf_counter()
        d0 = counted[0]
        done = 0
        while True:
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
            due = int(rate * elapsed) - done
            for _ in range(min(due, 500)):
                self.one()
                done += 1
            await asyncio.sleep(0.002)
        return counted[0] - d0, time.perf_counter() - t0


async def run_n(n: int, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    from mmcore.odds.teams import game_from_markets
    from mmcore.sim.engine_types import BookDelta
    from mmcore.sim.exchange import MM_USER
    from mmcore.sim.scenario import default_scenario_dict, load_scenario
    from mmcore.sim.server import SimStack
    from mmcore.theo.pull import pull_theos
    from mmcore.settings import DEFAULT_BOOKMAKERS
    from mmcore.venues.oddsapi import OddsApiClient

    startup_s = args.startup_s if args.startup_s is not None else 20 + 1.8 * n
    life_s = startup_s + args.seconds + 10
    try:  # enough distinct pairings for 50 games (the default slate runs out of teams at ~21)
        from mmcore.sim.worlds import world_scenario

        d = world_scenario("default", n, args.seed)
    except ImportError:
        d = default_scenario_dict(args.seed, n)
    d["rate_tier"] = args.tier
    for i, g in enumerate(d["games"]):
        # outside every near-start rule during the run; a minute apart, as a real slate is:
        # the world can pair the same two teams twice (LA-SF and SF-LA at N=10), and two such
        # games starting together are ones the odds matching rightly refuses to tell apart
        # (no theo: those workers never quoted)
        g["start_in_s"] = life_s + 1800 + 60 * i
    now = time.time_ns()
    sc = load_scenario(d, now)
    tmp = Path(tempfile.mkdtemp(prefix="mm-bench-scale-"))
    data_dir = tmp / "data"
    async with SimStack(sc, data_dir, heartbeat_s=5.0, run_participants=False) as stack:
        ex = stack.exchange
        deltas = [0]
        ex.subscribe(lambda evs: deltas.__setitem__(0, deltas[0] + sum(
            1 for e in evs if isinstance(e, BookDelta))))
        markets = [m for g in sc.games for m in g.markets]
        flow = Flow(ex, markets, {m: g.yes_prob(m, now) for g in sc.games for m in g.markets})
        async with OddsApiClient(stack.odds_url, stack.odds_api_key,
                                 bookmakers=DEFAULT_BOOKMAKERS) as odds:
            # a simulated book can skip a game in one pull (then fewer than 3 usable books: no
            # consensus, no theo, a worker that never quotes); the live pull runs every 30 min
            # and on the worker's request — here, pull again for the games still without one
            for _attempt in range(4):
                missing = [g for g in sc.games
                           if not (data_dir / "theo" / f"{g.event_ticker}.json").exists()]
                if not missing:
                    break
                await pull_theos(odds, sorted({g.sim.sport_key for g in missing}),
                                 [game_from_markets(g.event_ticker, g.markets, g.start_ns)
                                  for g in missing], data_dir / "theo")
                await asyncio.sleep(1.0)
        no_theo = sorted(g.event_ticker for g in sc.games
                         if not (data_dir / "theo" / f"{g.event_ticker}.json").exists())
        port, odds_port = urlsplit(stack.rest_url).port, urlsplit(stack.odds_url).port
        until_s = int(time.time() + life_s) + 1
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until_s))
        env = _env(data_dir, port, odds_port)
        env["MM_MAX_CONCURRENT_GAMES"] = str(n)  # as the launcher's cap would be for N games
        procs: dict[str, subprocess.Popen[bytes]] = {}
        logs = {g.event_ticker: tmp / f"{g.event_ticker}.log" for g in sc.games}
        t_launch = time.perf_counter()
        for g in sc.games:
            with open(logs[g.event_ticker], "wb") as out:
                procs[g.event_ticker] = subprocess.Popen(
                    [sys.executable, "-m", "mmcore.cli", "run", "quote-game",
                     f"event_ticker={g.event_ticker}", f"until={until}"],
                    env=env, cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)
        try:
            ready: set[str] = set()
            ready_cpu: dict[str, float] = {}  # CPU s of the worker when first seen quoting
            can_quote = n - len(no_theo)  # a game without a theo snapshot never quotes
            while len(ready) < can_quote and time.perf_counter() - t_launch < startup_s:
                for g in sc.games:
                    if g.event_ticker not in ready and ex.engine.orders(
                            MM_USER, event_ticker=g.event_ticker, status="resting"):
                        ready.add(g.event_ticker)
                        if (c := proc_cpu_s(procs[g.event_ticker].pid)) is not None:
                            ready_cpu[g.event_ticker] = c
                await asyncio.sleep(0.1 if n <= 2 else 0.5)  # (N=1,2: start CPU to ±0.1 s)
                if len(ready) >= can_quote:
                    break
                if all(p.poll() is not None for p in procs.values()):
                    break
            ready_s = time.perf_counter() - t_launch
            late = sorted(set(procs) - ready)
            await asyncio.sleep(1.0)  # the last worker's first placements settle
            cpu0 = {ev: proc_cpu_s(p.pid) for ev, p in procs.items()}
            ex_cpu0 = time.process_time()
            made, window_s = await flow.run(args.rate, args.seconds, deltas)
            ex_cpu = (time.process_time() - ex_cpu0) / window_s
            cpu = {ev: (None if cpu0[ev] is None or (c := proc_cpu_s(p.pid)) is None
                        else (c - cpu0[ev]) / window_s) for ev, p in procs.items()}
            mem = {ev: proc_mem_mb(p.pid) for ev, p in procs.items()}
            deadline = time.perf_counter() + life_s + 120
            hung = 0
            exited: dict[str, float] = {}  # wall time each worker was seen gone (±0.25 s)
            while any(p.poll() is None for p in procs.values()):
                now_s = time.time()
                exited.update({ev: now_s for ev, p in procs.items()
                               if ev not in exited and p.poll() is not None})
                if time.perf_counter() > deadline:  # report what was measured; kill below
                    hung = sum(1 for p in procs.values() if p.poll() is None)
                    break
                await asyncio.sleep(0.25)
            exited.update({ev: time.time() for ev, p in procs.items()
                           if ev not in exited and p.poll() is not None})
            stop_s = max((t - until_s for t in exited.values()), default=None)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
        async with httpx.AsyncClient() as http:
            state = (await http.get(stack.control_url + "/state")).json()
    results = {}
    for ev, path in logs.items():
        text = path.read_text(errors="replace")
        try:
            results[ev] = json.loads(("\n" + text)[("\n" + text).rindex("\n{") + 1:])
        except ValueError:
            results[ev] = {"error": f"no result (exit {procs[ev].returncode}); see {path}"}
    rest = state.get("rest", {})
    return {"n": n, "ready_s": ready_s, "late": late, "made": made, "window_s": window_s,
            "ex_cpu": ex_cpu, "cpu": cpu, "mem": mem, "results": results,
            "r429": rest.get("rate_limited", 0), "exit": {ev: p.returncode for ev, p in procs.items()},
            "hung": hung, "no_theo": no_theo, "stop_s": stop_s, "ready_cpu": ready_cpu,
            "tmp": tmp}


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def summarize(r: dict[str, Any]) -> list[str]:
    dec = [x.get("decision") or {} for x in r["results"].values()]
    p50 = [x["p50_ms"] for x in dec if x.get("p50_ms") is not None]
    p99 = [x["p99_ms"] for x in dec if x.get("p99_ms") is not None]
    cpu = [c for c in r["cpu"].values() if c is not None]
    rss = [m[0] for m in r["mem"].values() if m is not None]
    hwm = [m[1] for m in r["mem"].values() if m is not None]
    return [str(r["n"]), f"{r['made'] / r['window_s']:,.0f}",
            f"{statistics.median([x.get('count', 0) for x in dec]):,.0f}",
            _fmt(statistics.median(p50) if p50 else None), _fmt(statistics.median(p99) if p99 else None),
            _fmt(max(p99) if p99 else None),
            f"{100 * statistics.mean(cpu):.1f} / {100 * max(cpu):.1f}" if cpu else "-",
            f"{100 * r['ex_cpu']:.0f}",
            f"{statistics.mean(rss):.0f} / {max(rss):.0f}" if rss else "-",
            f"{max(hwm):.0f}" if hwm else "-", str(r["r429"]),
            f"{r['ready_s']:.0f}", _fmt(r["stop_s"], ".1f"),
            f"{sum(1 for c in r['exit'].values() if c == 0)}/{r['n']}"]


def print_startup(n: int, results: dict[str, Any]) -> None:
    """Start-up stages over the workers (``GameRunResult.startup``): median and max wall ms, and
    the max of it spent queued for the account's rate budget; where unfinished ones were."""
    ups = [x.get("startup") or {} for x in results.values()]
    ups = [u for u in ups if u.get("stages") is not None]
    if not ups:
        return
    names: list[str] = []
    for u in ups:
        names += [k for k in u["stages"] if k not in names]
    parts = []
    for k in names:
        w = [u["stages"][k][0] for u in ups if k in u["stages"]]
        b = [u["stages"][k][1] for u in ups if k in u["stages"]]
        q = [u["stages"][k][2] for u in ups if k in u["stages"] and len(u["stages"][k]) > 2]
        parts.append(f"{k} {statistics.median(w):,.0f}/{max(w):,.0f} (budget ≤{max(b):,.0f}"
                     + (f", {statistics.median(q):g} req" if q else "") + ")")
    done = [u["total_ms"] for u in ups if u.get("done")]
    stuck = collections.Counter(u.get("in") or "between stages" for u in ups if not u.get("done"))
    print(f"  N={n}: start-up ms median/max per stage: {'; '.join(parts)}")
    print(f"  N={n}: start-up done by {len(done)}/{len(ups)} workers"
          + (f", total median {statistics.median(done) / 1000:.1f} s, max {max(done) / 1000:.1f} s"
             if done else "")
          + (f"; unfinished, by stage: {dict(stuck)}" if stuck else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="10", help="comma-separated worker counts (the issue: 10,25,50)")
    ap.add_argument("--rate", type=float, default=2000.0, help="aggregate book deltas per second")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the measured window")
    ap.add_argument("--tier", default="advanced",
                    help="the scenario's rate tier (the account's). Default advanced: the tier an "
                         "operator quoting many games holds (self-serve; 50 games' reconciles "
                         "and requotes do not fit Basic, bench/RESULTS.md)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--startup-s", type=float, default=None,
                    help="start-up allowance before the window opens (default 20 + 1.8 × N s)")
    ap.add_argument("--per-worker", action="store_true", help="also print one line per worker")
    args = ap.parse_args(argv)
    ns = [int(x) for x in args.n.split(",") if x]

    print(f"scale bench: {machine_line()}")
    print(f"{args.rate:,.0f} deltas/s in total for {args.seconds:g} s per N; tier {args.tier}; "
          f"workers = `python -m mmcore.cli run quote-game` processes")
    rows = []
    for n in ns:
        r = asyncio.run(run_n(n, args))
        rows.append(summarize(r))
        print("  " + "  ".join(rows[-1]), flush=True)  # each N as it ends (the table follows)
        if r["hung"]:
            print(f"  N={n}: {r['hung']} worker(s) still running 2 min after their --until: killed")
        if r["late"]:
            print(f"  N={n}: not quoting when the window opened: {', '.join(r['late'])}")
        locks = [x.get("budget_lock") or {} for x in r["results"].values()]
        locks = [lk for lk in locks if lk.get("ops")]
        if locks:
            print(f"  N={n}: account budget lock: {statistics.median(lk['ops'] for lk in locks):,.0f} "
                  f"operations/worker (median), waited {max(lk['wait_ms'] for lk in locks):,.1f} ms "
                  f"in all at most, longest single wait "
                  f"{max(lk['max_wait_ms'] for lk in locks):,.2f} ms (the worker's loop is blocked)")
        print_startup(n, r["results"])
        if r["ready_cpu"]:
            rc = sorted(r["ready_cpu"].values())
            print(f"  N={n}: CPU s per worker from exec to its first resting order: median "
                  f"{statistics.median(rc):.2f}, min {rc[0]:.2f}, max {rc[-1]:.2f} "
                  f"({len(rc)} workers; polled every {0.1 if n <= 2 else 0.5:g} s)")
        if r["no_theo"]:
            print(f"  N={n}: no theo snapshot after 4 pulls (never quote): {', '.join(r['no_theo'])}")
        bad = {ev: x.get("error") or x.get("exit_reason") for ev, x in r["results"].items()
               if x.get("error") or r["exit"][ev] != 0}
        if bad:
            print(f"  N={n}: workers that failed: {bad} (logs in {r['tmp']})")
        if args.per_worker:
            for ev, x in r["results"].items():
                dd = x.get("decision") or {}
                m = r["mem"].get(ev)
                print(f"    {ev}: decisions {dd.get('count')}, p50 {dd.get('p50_ms')} ms, p99 "
                      f"{dd.get('p99_ms')} ms, max {dd.get('max_ms')} ms, CPU "
                      f"{_fmt(100 * r['cpu'][ev] if r['cpu'][ev] is not None else None, '.1f')} %, "
                      f"RSS {_fmt(m[0] if m else None, '.0f')} MB, actions {x.get('actions')}")
    print_table(["N", "deltas/s", "decisions/worker", "p50 ms (median)", "p99 ms (median)",
                 "p99 ms (worst)", "CPU %/worker mean/max", "exchange CPU %",
                 "RSS MB mean/max", "peak RSS MB", "429", "ready s", "last exit s after until",
                 "exit 0"], rows)
    worst = [float(r[5]) for r in rows if r[5] != "-"]
    rss = [float(r[8].split(" / ")[1]) for r in rows if r[8] != "-"]
    ok = worst and rss and max(worst) <= GOAL_P99_MS and max(rss) <= GOAL_RSS_MB
    print(f"verdict: {'MEETS' if ok else 'MISSES'} decision p99 ≤ {GOAL_P99_MS:g} ms and RSS ≤ "
          f"{GOAL_RSS_MB:g} MB per worker (worst p99 {max(worst) if worst else '-'} ms, max RSS "
          f"{max(rss) if rss else '-'} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
