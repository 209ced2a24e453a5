"""Market data is journaled without an fsync per book delta: a ``book_top``-only decision's
records are written at once but fsync'd with the next record of ours (here a fill) or within
``JOURNAL_LAZY_SYNC_NS`` — through the real driver, KalshiWs and KalshiRest against the local
exchange over loopback (bench/RESULTS.md ``scale.py``: the per-delta fsync was ~25 % of a quoting
worker's CPU at 40 deltas/s)."""

from __future__ import annotations

import asyncio
import time

from mmcore.sim.engine_types import OrderRequest
from mmcore.sim.exchange import MM_USER
from mmcore.sim.scenario import load_scenario
from mmcore.sim.server import SimStack
from mmcore.venues.kalshi.ratelimit import RateLimiter
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.kalshi.ws import KalshiWs
from mmcore.worker import driver as driver_mod
from mmcore.worker.driver import FileTheoSource, WorkerDriver, load_game
from mmcore.worker.journal import (
    Journal,
    JournalConfig,
    published_segments,
    read_records,
)
from tests.accountkit import wait_until
from tests.workerkit import publish_theos, scenario_dict, worker_config

OTHER = "other-user"


async def test_book_tops_ride_the_next_fsync_and_a_record_of_ours_is_fsyncd_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(driver_mod, "JOURNAL_LAZY_SYNC_NS", 60 * driver_mod.NS)
    d = scenario_dict(6, 600.0)
    d["participants"] = {}
    d["users"][OTHER] = {"balance_dollars": 100_000.0}
    sc = load_scenario(d, time.time_ns())
    g = sc.games[0]
    async with SimStack(sc, tmp_path / "data", run_participants=False) as stack:
        signer = stack.signer()
        ex = stack.exchange
        await publish_theos(stack, [g], tmp_path / "theo")
        # another user's deep bids, so the deltas below change neither side's top
        ex.mutate(lambda e, now: [e.place(OrderRequest(OTHER, m, "bid", p, 100, post_only=True), now)
                                  for m in g.markets for p in (300, 200)])
        async with KalshiRest(stack.rest_url, signer, limiter=RateLimiter.for_tier("advanced")) as rest:
            game = await load_game(rest, g.event_ticker)
            journal = Journal.open(JournalConfig(tmp_path / "journal", "w-jsync"), time.time_ns())
            driver = WorkerDriver(rest, lambda markets: KalshiWs(stack.ws_url, signer, markets=markets),
                                  game, worker_config("w-jsync"), FileTheoSource(tmp_path / "theo", g.event_ticker),
                                  journal=journal, cancel_deadline_s=20.0)
            task = asyncio.create_task(driver.run())
            await wait_until(lambda: driver.worker is not None and driver.worker.books_ready
                         and not driver.worker.pending and driver._queue.empty()
                         and ex.engine.orders(MM_USER, event_ticker=g.event_ticker, status="resting"), 20.0, "the worker quoting with fresh books")
            # our start-up records (decisions, orders, acks) were fsync'd as they came; wait for
            # the journal to be quiet (no record for 0.5 s)
            quiet = [journal.appended_records, time.monotonic()]

            def settled() -> bool:
                if journal.appended_records != quiet[0] or driver._journal_buf:
                    quiet[:] = [journal.appended_records, time.monotonic()]
                return (journal.synced_records == journal.appended_records
                        and time.monotonic() - quiet[1] > 0.5)

            await wait_until(settled, 10.0, "the journal quiet")
            ours = ex.engine.orders(MM_USER, event_ticker=g.event_ticker, status="resting")
            mine = next(o for o in ours if o.side == "ask")
            market = mine.ticker

            # a book delta under the top: one book_top record, written, its fsync left to the
            # timer (the writer's deferral is the event: an fsync per delta never defers)
            assert driver._journal_lazy_since is None
            a0 = journal.appended_records
            ex.mutate(lambda e, now: [e.place(OrderRequest(OTHER, market, "bid", 100, 100,
                                                           post_only=True), now)])
            await wait_until(lambda: journal.appended_records > a0, 20.0, "a book_top record")
            await wait_until(lambda: driver._journal_lazy_since is not None, 10.0,
                             "the writer leaving the book_top's fsync to the timer")
            assert journal.synced_records < journal.appended_records, "book delta fsync'd at once"

            # a fill of ours: its records are fsync'd at once, the waiting book tops with them
            ex.mutate(lambda e, now: [e.place(OrderRequest(OTHER, market, "bid", mine.price, 100), now)])
            await wait_until(lambda: journal.synced_records == journal.appended_records, 10.0,
                             "the fill's records fsync'd")

            # and market data alone is fsync'd within the bound
            monkeypatch.setattr(driver_mod, "JOURNAL_LAZY_SYNC_NS", driver_mod.NS // 5)
            a1 = journal.appended_records
            ex.mutate(lambda e, now: [e.place(OrderRequest(OTHER, market, "bid", 200, 200,
                                                           post_only=True), now)])
            await wait_until(lambda: journal.appended_records > a1, 20.0, "a new record")
            await wait_until(lambda: journal.synced_records == journal.appended_records, 5.0,
                             "every record fsync'd")
            driver.stop("test done")
            await asyncio.wait_for(task, timeout=40)
    recs = list(read_records(published_segments(tmp_path / "journal")))
    assert any(r["kind"] == "fill" for r in recs)
    assert sum(1 for r in recs if r["kind"] == "book_top" and r["market"] == market) >= 3
