"""Bursts decided once: the driver drains what has already arrived and the worker applies it in
order, then requotes on the latest state (GameWorker.handle_batch) — through the real driver,
KalshiWs and KalshiRest against the local exchange over loopback; and the journal is written
after the sends, fsync'd off the loop, with every record still there in decision order."""

from __future__ import annotations

import asyncio
import time

from mmcore.orders import Place
from mmcore.sim.engine_types import OrderRequest
from mmcore.sim.scenario import load_scenario
from mmcore.sim.server import SimStack
from mmcore.venues.kalshi.ratelimit import RateLimiter
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.kalshi.ws import KalshiWs
from mmcore.worker.driver import FileTheoSource, WorkerDriver, load_game
from mmcore.worker.engine import AckEv, BookEv
from mmcore.worker.journal import Journal, JournalConfig, published_segments, read_records
from tests.test_worker import A, S, T0, book, started
from tests.workerkit import publish_theos, scenario_dict, worker_config

BURSTER = "burster"


def test_a_batch_applies_every_event_and_decides_once_on_the_last_book():
    w, out = started()
    for seq, a in out.actions:  # quotes acknowledged: every slot free
        w.handle(AckEv(seq, True, order_id=f"o{seq}", remaining=a.quote.count, filled=0,
                       latency_ns=1_000_000), T0)
    # three books of market A arrive together; only the last one is decided on
    evs = [BookEv(A, book(A, 5700 + 100 * k, 6300 + 100 * k), T0 + S + k, T0 + S + k) for k in range(3)]
    one = w.handle_batch(evs, T0 + S)
    tops = [r for r in one.journal if r["kind"] == "book_top"]
    decisions = [r for r in one.journal if r["kind"] == "quote_decision"]
    assert [t["bid"] for t in tops] == [5700, 5800, 5900]  # each event applied and recorded
    assert len(decisions) <= 1
    w2, out2 = started()
    for seq, a in out2.actions:
        w2.handle(AckEv(seq, True, order_id=f"o{seq}", remaining=a.quote.count, filled=0,
                        latency_ns=1_000_000), T0)
    last = w2.handle(evs[-1], T0 + S)  # the same decision as deciding the last book alone
    assert one.actions == last.actions


async def test_a_burst_of_deltas_is_decided_in_fewer_decisions_than_deltas(tmp_path):
    d = scenario_dict(6, 600.0)
    d["participants"] = {}
    d["users"][BURSTER] = {"balance_dollars": 100_000.0}
    sc = load_scenario(d, time.time_ns())
    g = sc.games[0]
    async with SimStack(sc, tmp_path / "data", run_participants=False) as stack:
        signer = stack.signer()
        await publish_theos(stack, [g], tmp_path / "theo")
        async with KalshiRest(stack.rest_url, signer, limiter=RateLimiter.for_tier("advanced")) as rest:
            game = await load_game(rest, g.event_ticker)
            journal = Journal.open(JournalConfig(tmp_path / "journal", "w-burst"), time.time_ns())
            driver = WorkerDriver(rest, lambda markets: KalshiWs(stack.ws_url, signer, markets=markets),
                                  game, worker_config("w-burst"), FileTheoSource(tmp_path / "theo", g.event_ticker),
                                  journal=journal, cancel_deadline_s=20.0)
            sent: list[int] = []
            driver.on_output = lambda w, out: sent.extend(seq for seq, a in out.actions if isinstance(a, Place))
            task = asyncio.create_task(driver.run())

            async def until(cond, timeout_s: float = 20.0) -> None:
                end = time.monotonic() + timeout_s
                while not cond():
                    assert time.monotonic() < end, "timed out"
                    await asyncio.sleep(0.02)

            await until(lambda: driver.worker is not None and driver.worker.books_ready
                        and not driver.worker.pending and driver._queue.empty())
            # the cheaper market: asks far above its top cannot cross
            market = min(g.markets, key=lambda m: driver.worker.books[m].top().mid or 1.0)
            prices = [9_900 - 100 * k for k in range(20)]
            events0, batches0 = driver.report.events, driver.report.batches
            n = len(prices)  # one mutate: 20 asks far over the top, published together
            stack.exchange.mutate(lambda e, now: [
                e.place(OrderRequest(BURSTER, market, "ask", p, 100, post_only=True), now) for p in prices])
            await until(lambda: all(p in driver.worker.books[market].asks for p in prices))
            await until(lambda: driver._queue.empty())
            events, batches = driver.report.events - events0, driver.report.batches - batches0
            assert events >= n
            assert batches < n // 2, f"{events} events in {batches} decisions: the burst was not coalesced"
            driver.stop("test done")
            report = await asyncio.wait_for(task, timeout=40)
            assert report.final_state == "HALTED"
    # everything decided reached the journal, in order, although it was written after the sends
    recs = list(read_records(published_segments(tmp_path / "journal")))
    actions = [r for r in recs if r["kind"] == "order_action"]
    assert len(actions) == report.actions
    ts = [r["ts_ns"] for r in recs if r["kind"] in ("quote_decision", "order_action", "ack")]
    assert ts == sorted(ts)
