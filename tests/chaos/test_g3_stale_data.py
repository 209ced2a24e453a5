"""G3 — stale data: quotes pulled within 1 s of the book going stale, and no order sent from a
stale book, judged by the exchange's own times.

One real :class:`~mmcore.worker.driver.WorkerDriver` quotes one game of the local exchange over
loopback (the harness of :mod:`tests.test_worker_faults`); each round switches on, one at a time:

=============  ===============================================  ====================================
fault          how (``mmcore.sim.rest_faults.apply_fault``)     when the book is stale ("bite")
=============  ===============================================  ====================================
ws drop        ``ws_disconnect`` (the next frame closes 1011)   the exchange closes the socket
               — the exchange's ``faults.log`` time
silent feed    ``ws_silence`` on every market, socket up and    the last frame + the staleness
               pinging; a delta is sent just before, so the     limit (``stale_market_data_ns``,
               last frame is known                              2 s here; 30 s by default; orders
                                                                judged from 20 ms later: the last
                                                                frame's delivery)
seq gap        ``seq_gap`` (one seq skipped)                    the gapped frame is sent (log time)
reordered      ``reorder_delta`` (seq n+1 sent before n)        n+1 is sent (log time)
duplicated     ``duplicate_delta`` × 3 (same seq twice)         never: a re-sent seq is dropped, so
                                                                the book must stay the exchange's
                                                                and nothing is pulled
=============  ===============================================  ====================================

Figures, per fault: **pull** = from the bite to the moment the exchange applied the last cancel of
the mm orders that rested in the stale markets when the fault came (``Order.updated_ns``,
exchange clock; an order filled meanwhile is not one to pull); **stale-book orders** = places and
amends the worker emitted for a market between the bite (exchange time) and the end of that
market's resync, plus exchange orders created in that window from a place emitted after the bite.
Rounds: ``MM_CHAOS_SIZE_G3_ROUNDS`` (CI 1, full 10).
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from mmcore.orders import Amend, Place
from mmcore.sim.exchange import MM_USER
from mmcore.sim.rest import apply_fault
from mmcore.worker.engine import BookStaleEv, ConnEv
from tests.chaos import figures
from tests.test_worker_faults import (
    FAR,
    Run,
    book_traffic,
    finish,
    first_event_after,
    tops_match,
)
from tests.workerkit import rig

NS = 1_000_000_000
MS = 1_000_000
PULL_BOUND_MS = 1000
STALE_LIMIT_S = 2.0
"""The worker's staleness limit for a silent market in this test (default 30 s)."""
SILENCE_S = STALE_LIMIT_S + 2.0
DELIVERY_SLACK_NS = 20 * MS
"""Silent feed: the last frame (sent after ``t0`` on the hub's next flush) reaches the worker a
few ms after ``t0``, and the worker's staleness clock starts at its receipt. Orders are judged
from ``t0`` + limit + this slack; the pull is timed from ``t0`` + limit (the larger figure)."""
ROUND_BUDGET_S = 60.0


@dataclass
class Episode:
    kind: str
    bite_ns: int | None = None
    pull_ms: float | None = None
    """None: nothing to pull (no order rested), or the fault needs no pull (duplicates)."""
    stale_book_orders: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _log_after(run: Run, t0: int, kind: str, pred: Callable[[dict[str, Any]], bool] = lambda f: True
               ) -> dict[str, Any] | None:
    return next((f for f in run.ex.faults.log
                 if f["at_ns"] >= t0 and f["kind"] == kind and pred(f)), None)


def _pull_ms(run: Run, before: list[Any], bite_ns: int) -> tuple[float | None, list[str]]:
    """From the bite to the last cancel the exchange applied among ``before`` (mm's resting
    orders when the fault came), and the orders that were neither cancelled nor filled."""
    done, problems = [], []
    for o in before:
        now = run.ex.engine.order(MM_USER, o.order_id)
        if now.is_resting:
            problems.append(f"{o.order_id} still resting")
        elif now.last_update_reason == "canceled":
            done.append(now.updated_ns)
        # filled (or expired) away: nothing left to pull
    return ((max(done) - bite_ns) / MS if done else None), problems


def _resync_end(run: Run, m: str, t0: int) -> int | None:
    """End of the worker's first stale window of ``m`` opened at or after ``t0``."""
    for start, end in run.stale_windows[m]:
        if start >= t0:
            return end
    return None


def _stale_book_orders(run: Run, markets: list[str], start_ns: int, t0: int) -> list[str]:
    """Orders sent from a stale book: worker places/amends for ``m`` emitted inside
    [``start_ns`` (exchange time of the bite), resync end), and exchange orders created in that
    window whose place was emitted after the bite."""
    bad = []
    for m in markets:
        end = _resync_end(run, m, t0)
        if end is None:
            bad.append(f"{m}: never resynced")
            continue
        bad += [f"{type(a).__name__} {m} emitted {(t - start_ns) / MS:.1f} ms after the bite"
                for t, a in run.actions
                if isinstance(a, (Place, Amend)) and a.slot[0] == m and start_ns <= t < end]
        for o in run.all_orders():
            sent = run.place_sent.get(o.client_order_id or "")
            if (o.ticker == m and start_ns <= o.created_ns < end
                    and (sent is None or sent >= start_ns)):
                bad.append(f"{o.order_id} {m} created {(o.created_ns - start_ns) / MS:.1f} ms "
                           f"after the bite")
    return bad


async def _fresh_again(run: Run, t0: int) -> None:
    """Until every market was stale after ``t0`` and is fresh (resynced) again, quoting."""
    def ok() -> bool:
        return (all(_resync_end(run, m, t0) is not None for m in run.markets)
                and not run.worker.stale)
    await run.until(ok, 15, "stale after the fault, then resynced")


async def _ws_drop(run: Run, ep: Episode) -> None:
    before, t0 = run.resting(), run.now()
    apply_fault(run.ex, "ws_disconnect", {"count": 1})
    book_traffic(run)  # the next frame written closes the connection
    await run.until(lambda: _log_after(run, t0, "ws_disconnect") is not None, 10, "the drop")
    await _fresh_again(run, t0)
    assert first_event_after(run, t0, ConnEv) is not None
    ep.bite_ns = _log_after(run, t0, "ws_disconnect")["at_ns"]
    await _judge(run, ep, before, t0, ep.bite_ns)


async def _silence(run: Run, ep: Episode) -> None:
    before, t0 = run.resting(), run.now()
    book_traffic(run)  # a frame in every market now: the last one before the silence
    apply_fault(run.ex, "ws_silence", {"ticker": run.event_ticker, "seconds": SILENCE_S})
    ep.bite_ns = t0 + round(STALE_LIMIT_S * NS)
    await _fresh_again(run, t0)
    await _judge(run, ep, before, t0, ep.bite_ns, orders_from_ns=ep.bite_ns + DELIVERY_SLACK_NS)


async def _seq_gap(run: Run, ep: Episode) -> None:
    before, t0 = run.resting(), run.now()
    apply_fault(run.ex, "seq_gap", {"count": 1})
    book_traffic(run)
    await _fresh_again(run, t0)
    assert first_event_after(run, t0, ConnEv) is None, "a seq gap must not need a reconnect"
    bite = _log_after(run, t0, "seq_gap", lambda f: "skipped_seq" in f["params"])
    assert bite is not None
    ep.bite_ns = bite["at_ns"]
    await _judge(run, ep, before, t0, ep.bite_ns)


async def _reorder(run: Run, ep: Episode) -> None:
    before, t0 = run.resting(), run.now()
    apply_fault(run.ex, "reorder_delta", {"count": 1})
    book_traffic(run)  # one delta per market: the first is held, the second releases it
    bite = _log_after(run, t0, "reorder_delta", lambda f: "released_after_seq" in f["params"])
    assert bite is not None, run.ex.faults.log[-3:]
    await _fresh_again(run, t0)
    ep.bite_ns = bite["at_ns"]
    await _judge(run, ep, before, t0, ep.bite_ns)


async def _duplicate(run: Run, ep: Episode) -> None:
    t0 = run.now()
    apply_fault(run.ex, "duplicate_delta", {"count": 3})
    book_traffic(run, n=2)
    await run.until(lambda: tops_match(run), 5, "worker books equal the exchange's")
    if first_event_after(run, t0, BookStaleEv) is not None:
        ep.problems.append("duplicates made the book stale (a resync)")
    if run.ex.faults.ws_duplicate_pending:
        ep.problems.append("the fault did not bite")


async def _judge(run: Run, ep: Episode, before: list[Any], t0: int, bite_ns: int, *,
                 orders_from_ns: int | None = None) -> None:
    ep.pull_ms, problems = _pull_ms(run, before, bite_ns)
    ep.problems += problems
    ep.stale_book_orders = _stale_book_orders(run, list(run.markets), orders_from_ns or bite_ns, t0)


FAULTS: dict[str, Callable[[Run, Episode], Awaitable[None]]] = {
    "ws drop": _ws_drop, "silent feed": _silence, "seq gap": _seq_gap,
    "reordered deltas": _reorder, "duplicated deltas": _duplicate,
}


async def test_g3_stale_data_pulls_quotes_within_1s_and_sends_nothing_from_a_stale_book(tmp_path):
    rounds = figures.size("g3_rounds", ci=1, full=10)
    episodes: list[Episode] = []
    async with rig(tmp_path, seed=12, start_in_s=FAR + 60 * rounds) as r:
        driver = await asyncio.wait_for(r.driver(worker_id="w-g3"), timeout=15)
        driver.cfg = dataclasses.replace(driver.cfg, killswitch=dataclasses.replace(
            driver.cfg.killswitch, stale_market_data_ns=round(STALE_LIMIT_S * NS),
            reducing_cooldown_ns=NS))  # back to ACTIVE 1 s after a silent feed (30 s by default)
        run = Run(r, driver)
        run.start()
        try:
            for _ in range(rounds):
                for kind, fn in FAULTS.items():
                    try:
                        await run.quoting(per_market=2)
                        await run.settled()
                    except AssertionError as exc:
                        raise AssertionError(f"before {kind} (after {[e.kind for e in episodes]}): "
                                             f"{exc}; states {run.state_reasons()[-3:]}") from exc
                    ep = Episode(kind)
                    await asyncio.wait_for(fn(run, ep), timeout=ROUND_BUDGET_S)
                    episodes.append(ep)
            await finish(run)
        finally:
            await run.close()
    _report(episodes, rounds)


def _report(episodes: list[Episode], rounds: int) -> None:
    failures = []
    for kind in FAULTS:
        eps = [e for e in episodes if e.kind == kind]
        pulls = [e.pull_ms for e in eps if e.pull_ms is not None]
        stale = [s for e in eps for s in e.stale_book_orders]
        problems = [p for e in eps for p in e.problems]
        if kind == "duplicated deltas":
            ok = not problems and not stale
            figure = (f"book = exchange's after every duplicate, {len(problems)} resync(s) "
                      f"over {len(eps)} run(s)")
            bound = "no pull needed, 0 resyncs"
        else:
            worst = max(pulls) if pulls else None
            ok = (len(pulls) == len(eps) and worst is not None and worst <= PULL_BOUND_MS
                  and not stale and not problems)
            figure = (f"pulled in max {worst:.0f} ms (p50 {statistics.median(pulls):.0f} ms, "
                      f"{len(pulls)}/{len(eps)} runs), {len(stale)} order(s) from a stale book"
                      if pulls else f"nothing pulled in {len(eps)} run(s)")
            bound = f"≤ {PULL_BOUND_MS} ms, 0"
        figures.report(3, kind, figure, bound, ok, rounds=rounds, pulls_ms=pulls,
                       stale_book_orders=stale[:20], problems=problems[:20])
        if not ok:
            failures.append(f"{kind}: {figure}; {stale[:5]} {problems[:5]}")
    assert not failures, failures
