"""Guarantee 7 — rate limits: a 429 storm across every game worker of one account.

Real OS processes (``tests/accountkit.py``: spawn, each a real ``KalshiRest`` from
``rest_for`` — the client ``mm quote`` and the quote-game flow use — sharing the account's
rate budget under ``<data_dir>/account/``) on one API key against the local exchange
(:class:`~mmcore.sim.server.SimStack`) at the Basic tier: :data:`WORKERS` processes flood
create+cancel pairs with several concurrent tasks each; one more process holds resting orders.
Mid-flood ``POST /sim/faults rate_limit_storm`` makes every request answer 429 for
:data:`STORM_S`; as soon as it ends the holder cancels its orders one at a time while the
floods' creates queue behind the emptied budget.

Figures, from the exchange's own records (the engine's orders and their times; the 429 log):

- write tokens per second the exchange accepted from the account (creates × 10 + cancels × 2,
  kalshi.md §5) vs the account budget (Basic: 100 tokens/s, 100 burst): over the whole flood
  ≤ rate × window + burst, and no 429 from the exchange's own bucket (only the storm's);
- cancels kept priority: the holder's cancels' limiter waits (max) vs the floods' create call
  times (median) after the storm: max cancel wait < 0.25 s and below the median create.
"""

from __future__ import annotations

import queue
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from mmcore.sim.exchange import MM_USER
from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SimStack
from mmcore.venues.kalshi.ratelimit import COST_CANCEL, DEFAULT_COST, TIERS
from tests.accountkit import CTX, spawn, wait_until
from tests.chaos import figures

NS = 1_000_000_000
BASIC = TIERS["basic"]
STORM_S = 2.0
CANCELS = 8


async def _results(q: Any, n: int, procs: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def drained() -> bool:
        try:
            while True:
                out.append(q.get_nowait())
        except queue.Empty:
            return len(out) >= n

    await wait_until(drained, 120, f"{n} results", procs)
    for p in procs:
        p.join(10)
    return out


async def test_429_storm_across_the_account_keeps_the_budget_and_cancels_first(tmp_path: Path) -> None:
    workers = figures.size("g7_workers", ci=3, full=8)
    seconds = float(figures.size("g7_flood_s", ci=6, full=20))
    d = default_scenario_dict(7, 1)
    d["games"][0]["start_in_s"] = 3600
    d["rate_tier"] = "basic"
    sc = load_scenario(d, time.time_ns())
    async with SimStack(sc, tmp_path, run_participants=False) as stack:
        eng = stack.exchange.engine
        base = {"data_dir": str(tmp_path), "port": urlsplit(stack.rest_url).port,
                "market": sc.games[0].markets[0], "max_retries": 100}
        q, go, after_storm = CTX.Queue(), CTX.Event(), CTX.Event()
        readies = [CTX.Event() for _ in range(workers + 1)]
        procs = [spawn("flood", {**base, "label": f"game-{i}", "seconds": seconds,
                                 "concurrency": 4}, q, readies[i], go)
                 for i in range(workers)]
        procs.append(spawn("cancel_later", {**base, "label": "holder", "n": CANCELS}, q,
                           readies[-1], go, after_storm))
        try:
            await wait_until(lambda: all(r.is_set() for r in readies), 90, "children ready", procs)
            held = {o.order_id for o in eng.orders(MM_USER, status="resting")}
            go.set()
            await wait_until(lambda: len(eng.orders(MM_USER)) >= len(held) + 20, 30,
                             "the floods under way", procs)
            async with httpx.AsyncClient() as http:
                resp = await http.post(stack.control_url + "/faults", json={
                    "kind": "rate_limit_storm", "params": {"seconds": STORM_S}})
                assert resp.status_code == 200, resp.text
                storm_at = resp.json()["applied"]["at_ns"]
                storm_end = storm_at + int(STORM_S * NS)
                await wait_until(lambda: time.time_ns() > storm_end, STORM_S + 10, "the storm's end")
                after_storm.set()
                res = {r["label"]: r for r in await _results(q, workers + 1, procs)}
                state = (await http.get(stack.control_url + "/state")).json()
        finally:
            for p in procs:
                p.kill()
        orders = eng.orders(MM_USER)

    # the exchange's records: accepted writes of the account in time
    writes = [(o.created_ns, DEFAULT_COST) for o in orders if o.order_id not in held]
    writes += [(o.updated_ns, COST_CANCEL) for o in orders
               if o.status == "canceled" and o.last_update_reason == "canceled"]
    writes.sort()
    t_first, t_last = writes[0][0], writes[-1][0]
    window_s = max(1e-9, (t_last - t_first) / NS)
    tokens = sum(c for _, c in writes)
    allowed = BASIC.write_per_s * window_s + BASIC.write_capacity
    bins: dict[int, int] = {}
    for t, c in writes:
        bins[(t - t_first) // NS] = bins.get((t - t_first) // NS, 0) + c
    peak = max(bins.values())
    in_storm = sum(1 for t, _ in writes if storm_at <= t < storm_end)
    causes: dict[str, int] = {}
    for e in state["rate_limited_log"]:
        causes[e["cause"]] = causes.get(e["cause"], 0) + 1
    creates = sum(1 for o in orders if o.order_id not in held)

    cancel_waits = res["holder"]["cancel_waits_ns"]
    create_calls = [c for r in res.values() for c in r.get("create_calls_ns", [])]
    med_create = statistics.median(create_calls) if create_calls else 0
    budget_ok = tokens <= allowed + 1e-6 and causes.get("bucket", 0) == 0 and in_storm == 0
    prio_ok = bool(cancel_waits) and max(cancel_waits) < 0.25 * NS and max(cancel_waits) < med_create
    storm_hit = causes.get("storm", 0) > 0
    figures.report(
        7, "budget",
        f"{workers} workers, {window_s:.1f} s: accepted {tokens / window_s:.0f} write tokens/s "
        f"({creates / window_s:.1f} creates/s) vs the account budget {BASIC.write_per_s:g}/s "
        f"({BASIC.write_per_s / DEFAULT_COST:g} creates/s) + burst {BASIC.write_capacity:g}; "
        f"total {tokens} of {allowed:.0f} allowed, peak 1 s {peak}; 429s storm {causes.get('storm', 0)}"
        f", bucket {causes.get('bucket', 0)}; accepted in the storm {in_storm}",
        "≤ budget, 0 bucket 429s", budget_ok and storm_hit, causes=causes)
    figures.report(
        7, "cancel priority",
        f"after the storm, max cancel wait {max(cancel_waits, default=0) / 1e6:.0f} ms over "
        f"{len(cancel_waits)} cancels vs median create call {med_create / 1e6:.0f} ms",
        "max cancel < 250 ms and < median create", prio_ok,
        cancel_waits_ms=[w / 1e6 for w in cancel_waits])
    assert storm_hit, "the storm answered no request: it tested nothing"
    assert budget_ok, (tokens, allowed, causes, in_storm)
    assert prio_ok, ([w / 1e6 for w in cancel_waits], med_create / 1e6)
