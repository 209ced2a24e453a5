"""Benchmark: game workers on one account share its rate budget — the share each got, the orders
it sent and had refused, and the 429s (issue 10 item 1: 0 × 429 with 10 game workers at Basic
for 5 minutes).

Run: ``.venv/bin/python bench/account_budget.py [--workers 10 --minutes 5 --tier basic]``

The local exchange (:class:`~mmcore.sim.server.SimStack`: ``--workers`` games, simulated
participants on, the scenario's ``rate_tier`` = ``--tier``) runs in this process on 127.0.0.1,
with theo snapshots pulled from its odds server. Each game gets a real ``mm quote EVENT --venue
sim --until T`` in its own OS process, all on the local exchange's one API key, started
together, T = start + ``--minutes``. Each worker reads the tier from ``GET /account/limits`` and
draws on the account's shared budget (``<data_dir>/account/``, :mod:`mmcore.venues.kalshi.
account_budget`). Every second this process reads the budget record (without joining it) and
keeps each worker's last counters; after the workers exit it reads their journals.

Per worker: **share** = its write tokens ÷ the account's write budget over the run (exchange
tier rate × wall time + bucket capacity); **of used** = its write tokens ÷ all workers' write
tokens; write/read tokens and requests as granted by the shared limiter; **wait** = mean time a
request queued for tokens; **orders sent** = order actions (place/amend/cancel) in its journal;
**refused** = acks the venue refused (``ok: false``), of which **429** were rate limits (the
limiter never refuses: it delays); **gate** = actions the risk gate refused (``mm quote``'s
summary line). Exchange side: 429s answered (``GET /sim/state`` → ``rest.rate_limited``). The
record's counters are as of the last poll (≤ 1 s before a worker exits). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchkit import load_line, print_table

NS = 1_000_000_000
SUMMARY = re.compile(r"^(\S+): exit=.*?actions=(\d+) fills=(\d+) refusals=(\d+)", re.M)


def _env(data_dir: Path, port: int, odds_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MM_", "KALSHI_", "ODDS_API"))}
    env.update(MM_DATA_DIR=str(data_dir), MM_SIM_EXCHANGE_PORT=str(port),
               MM_SIM_ODDS_PORT=str(odds_port), MM_SIM_HOST="127.0.0.1", MM_VENUE="sim",
               MM_RATE_TIER="basic")
    return env


def _journal_counts(root: Path, event: str) -> dict[str, int]:
    from mmcore.worker.journal import published_segments, read_records, recover_all

    recover_all(root)
    out = {"orders": 0, "refused": 0, "r429": 0}
    paths = [p for p in published_segments(root) if p.parent.name == event]
    for rec in read_records(paths):
        if rec.get("kind") == "order_action":
            out["orders"] += 1
        elif rec.get("kind") == "ack" and rec.get("ok") is False:
            out["refused"] += 1
            if "429" in str(rec.get("error")) or "too many" in str(rec.get("error")):
                out["r429"] += 1
    return out


async def run(args: argparse.Namespace) -> None:
    import httpx

    from mmcore.odds.teams import game_from_markets
    from mmcore.sim.scenario import default_scenario_dict, load_scenario
    from mmcore.sim.server import SIM_KEY_ID, SimStack
    from mmcore.theo.pull import pull_theos
    from mmcore.venues.kalshi.account_file import budget_path, read_record
    from mmcore.settings import DEFAULT_BOOKMAKERS
    from mmcore.venues.oddsapi import OddsApiClient

    quote_s = args.minutes * 60
    d = default_scenario_dict(args.seed, args.workers)
    d["rate_tier"] = args.tier
    for g in d["games"]:
        g["start_in_s"] = quote_s + 180  # quoting ends at --until, well before any start
    sc = load_scenario(d, time.time_ns())
    tmp = Path(tempfile.mkdtemp(prefix="mm-bench-acct-"))
    data_dir = tmp / "data"
    async with SimStack(sc, data_dir, heartbeat_s=1.0) as stack:
        port, odds_port = urlsplit(stack.rest_url).port, urlsplit(stack.odds_url).port
        async with OddsApiClient(stack.odds_url, stack.odds_api_key,
                                 bookmakers=DEFAULT_BOOKMAKERS) as odds:
            await pull_theos(odds, sorted({g.sim.sport_key for g in sc.games}),
                             [game_from_markets(g.event_ticker, g.markets, g.start_ns)
                              for g in sc.games], data_dir / "theo")
        until_s = int(time.time() + quote_s) + 1
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until_s))
        env = _env(data_dir, port, odds_port)
        logs = {g.event_ticker: tmp / f"{g.event_ticker}.log" for g in sc.games}
        procs = {}
        for g in sc.games:
            with open(logs[g.event_ticker], "wb") as out:
                procs[g.event_ticker] = subprocess.Popen(
                    [sys.executable, "-m", "mmcore.cli", "quote", g.event_ticker, "--venue", "sim",
                     "--until", until], env=env, cwd=data_dir, stdout=out,
                    stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        path = budget_path(data_dir, "sim", SIM_KEY_ID)
        last: dict[str, Any] = {}
        tier_seen = None
        try:
            while any(p.poll() is None for p in procs.values()):
                rec = read_record(path)
                if rec is not None:
                    tier_seen = (rec.tier, rec.source, rec.buckets[1].rate_per_s / rec.safety,
                                 rec.buckets[1].capacity / rec.safety)
                    for s in rec.slots:
                        if not s.free and s.label.startswith("quote "):
                            last[s.label.split(" ", 1)[1]] = s
                if time.monotonic() - t0 > quote_s + 240:
                    raise TimeoutError("workers still running 4 minutes after --until")
                await asyncio.sleep(1.0)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
        wall_s = time.monotonic() - t0
        async with httpx.AsyncClient() as http:
            state = (await http.get(stack.control_url + "/state")).json()
    report(args, sc, last, logs, data_dir / "journal", tier_seen, state, wall_s, procs)


def report(args: argparse.Namespace, sc: Any, last: dict[str, Any], logs: dict[str, Path],
           journal: Path, tier_seen: Any, state: dict[str, Any], wall_s: float,
           procs: dict[str, Any]) -> None:
    print(f"account_budget: {args.workers} `mm quote` workers on one key, {args.minutes:g} min "
          f"of quoting, scenario tier {args.tier}; {load_line()}")
    if tier_seen is None:
        print("no budget record was seen")
        return
    tier, source, rate, cap = tier_seen
    budget = rate * wall_s + cap
    print(f"budget record: tier {tier} (from the {source}), write {rate:g} tokens/s, capacity "
          f"{cap:g}; wall {wall_s:.1f} s → account write budget {budget:,.0f} tokens")
    used = sum(s.tokens_used[1] for s in last.values()) or 1.0
    rows = []
    totals = {"w": 0.0, "r": 0.0, "orders": 0, "refused": 0, "r429": 0, "gate": 0, "pen": 0}
    for g in sc.games:
        ev = g.event_ticker
        s = last.get(ev)
        text = logs[ev].read_text(errors="replace")
        m = SUMMARY.search(text)
        gate = int(m.group(4)) if m else 0
        j = _journal_counts(journal, ev)
        if s is None:
            rows.append([ev, "-", "-", "-", "-", "-", "-", str(j["orders"]), str(j["refused"]),
                         str(j["r429"]), str(gate), f"exit {procs[ev].returncode}"])
            continue
        wreq = s.granted[1]
        wait_ms = (sum(s.waited_ns) / max(1, sum(s.granted))) / 1e6
        rows.append([ev, f"{100 * s.tokens_used[1] / budget:.1f} %",
                     f"{100 * s.tokens_used[1] / used:.1f} %", f"{s.tokens_used[1]:,.0f}",
                     f"{wreq:,}", f"{s.tokens_used[0]:,.0f}", f"{wait_ms:.1f}",
                     str(j["orders"]), str(j["refused"]), str(j["r429"] + s.penalties), str(gate),
                     f"exit {procs[ev].returncode}"])
        totals["w"] += s.tokens_used[1]
        totals["r"] += s.tokens_used[0]
        for k in ("orders", "refused", "r429"):
            totals[k] += j[k]
        totals["gate"] += gate
        totals["pen"] += s.penalties
    print_table(["worker", "share", "of used", "write tok", "write req", "read tok", "wait ms",
                 "orders sent", "refused", "429", "gate", "end"], rows)
    rest = state.get("rest", {})
    print(f"  all workers  write tokens {totals['w']:,.0f} = {100 * totals['w'] / budget:.1f} % of "
          f"the account's write budget; read tokens {totals['r']:,.0f}")
    print(f"  all workers  orders sent {totals['orders']:,}, refused by the venue "
          f"{totals['refused']:,}, gate refusals {totals['gate']:,}")
    print(f"  429 answered by the exchange  {rest.get('rate_limited', 0)}"
          f" (storm: {rest.get('rate_limit_storm', 0)}); 429 seen by workers "
          f"{totals['r429'] + totals['pen']}")
    verdict = "MEETS" if rest.get("rate_limited", 0) == 0 else "MISSES"
    print(f"verdict: {verdict} 0 × 429 with {args.workers} workers on the {tier} tier for "
          f"{args.minutes:g} min")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=10, help="game workers (one game each)")
    ap.add_argument("--minutes", type=float, default=5.0, help="quoting time")
    ap.add_argument("--tier", default="basic", help="the scenario's rate tier")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
