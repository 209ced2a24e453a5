"""The quoting worker against the local exchange with one fault at a time, asserting what the
EXCHANGE shows (its order book, mm's resting orders and positions), not what the worker believes.

Every test runs a real :class:`~mmcore.worker.driver.WorkerDriver` over loopback (see
:mod:`tests.workerkit`), switches a fault on with :func:`mmcore.sim.rest.apply_fault`, and
synchronises on the worker's state (the driver's ``on_output`` hook, its event queue) or on the
exchange's state by polling with a deadline — never on a fixed sleep. pytest-timeout is not
installed, so every await is bounded by :func:`asyncio.wait_for` or a polling deadline.

Invariants checked in every test by :class:`Run` (a test fails if any is broken):

- the worker never sends a place or an amend for a market whose book it holds stale, or that it
  knows closed/paused, or while its WebSocket is down;
- on the exchange, no order of mm's was created inside a window where the worker held that
  market stale, unless its create was sent before the window opened (in flight);
- on the exchange, mm never has two resting orders in one slot (market, side): sampled every
  20 ms;
- no two of mm's exchange orders share a ``client_order_id`` (retries are idempotent);
- when the test ends (``driver.stop``), nothing of mm's rests on the exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from mmcore.game import directional_inventory
from mmcore.orders import Amend, Cancel, Place
from mmcore.sim.engine import OrderRequest
from mmcore.sim.exchange import MM_USER
from mmcore.sim.rest import apply_fault
from mmcore.units import CONTRACT, PRICE_ONE
from mmcore.worker.driver import WorkerDriver, WorkerReport
from mmcore.worker.engine import (
    AckEv,
    BookStaleEv,
    ConnEv,
    FillEv,
    GameWorker,
    Output,
    ReconcileEv,
)
from tests.workerkit import Rig, rig

NS = 1_000_000_000
NOISE = "noise-0-0"
"""A participant user of the default scenario (funded): our stand-in for "another trader" who
adds resting orders (book traffic)."""
HITTER = "noise-0-1"
"""Another funded participant, for IOCs: never the owner of a resting order we added (self-trade
prevention would cancel its IOC instead of filling mm)."""
FAR = 600.0
"""Start the game this far in the future when the test is not about game start."""


TEST_BUDGET_S = 90.0
"""Hard cap on one test, teardown included (each test takes 2–16 s when it passes)."""


def bounded(fn: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """pytest-timeout is not installed: run the whole test under :func:`asyncio.wait_for`, so a
    hang (as when a HALTED driver never exited) fails the test instead of the whole run."""
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> None:
        await asyncio.wait_for(fn(*args, **kwargs), timeout=TEST_BUDGET_S)
    return wrapper


# --- the harness --------------------------------------------------------------------------------


class Run:
    """A running worker driver, what it did (recorded from ``on_output`` and its event queue),
    and a sampler of the exchange's view of mm (resting orders per slot, positions, limit)."""

    def __init__(self, r: Rig, driver: WorkerDriver) -> None:
        self.r, self.driver = r, driver
        self.ex = r.stack.exchange
        self.event_ticker = r.event_ticker
        self.markets: tuple[str, ...] = driver.game.markets
        self.events: list[tuple[int, Any]] = []
        """(clock ns, worker event) as the driver queued them."""
        self.actions: list[tuple[int, Any]] = []
        """(clock ns, order action) as the worker emitted them."""
        self.place_sent: dict[str, int] = {}
        """client_order_id → when the worker emitted the place."""
        self.stale_windows: dict[str, list[list[int | None]]] = {m: [] for m in self.markets}
        """Per market, [opened, closed] clock ns of each span the worker held its book stale."""
        self.states: list[tuple[int, str, tuple[str, ...]]] = []
        """(clock ns, kill-switch state, active triggers) at every change."""
        self.violations: list[str] = []
        self.max_per_slot = 0
        self.resting_samples: list[tuple[int, int]] = []
        """(clock ns, how many of mm's orders rest on the exchange)."""
        self.inventory_samples: list[tuple[int, int, int]] = []
        """(clock ns, worst |directional inventory| on the exchange, worker's hard limit then)."""
        self.outputs = 0
        self.journal: list[tuple[int, dict[str, Any]]] = []
        """(clock ns, journal record) of the kinds worth reading when a test fails."""
        self._stale_prev: set[str] = set()
        self._changed = asyncio.Event()
        self.task: asyncio.Task[WorkerReport] | None = None
        self._sampler: asyncio.Task[None] | None = None
        driver.on_output = self._on_output
        put = driver._put

        def recording_put(ev: Any) -> None:
            self.events.append((self.now(), ev))
            put(ev)

        driver._put = recording_put  # type: ignore[method-assign]

    # --- clocks and exchange views ---

    def now(self) -> int:
        return self.driver.clock_ns()

    @property
    def worker(self) -> GameWorker:
        assert self.driver.worker is not None
        return self.driver.worker

    def resting(self, market: str | None = None) -> list[Any]:
        orders = self.ex.engine.orders(MM_USER, event_ticker=self.event_ticker, status="resting")
        return [o for o in orders if market is None or o.ticker == market]

    def all_orders(self) -> list[Any]:
        return self.ex.engine.orders(MM_USER, event_ticker=self.event_ticker)

    def positions(self) -> dict[str, int]:
        return {m: self.ex.engine.position(MM_USER, m) for m in self.markets}

    # --- recording ---

    def _on_output(self, worker: GameWorker, out: Output) -> None:
        now = self.now()
        self.outputs += 1
        stale = set(worker.stale)
        for m in stale - self._stale_prev:
            self.stale_windows[m].append([now, None])
        for m in self._stale_prev - stale:
            self.stale_windows[m][-1][1] = now
        self._stale_prev = stale
        triggers = tuple(sorted(t.value for t in worker.ks.active_triggers))
        if not self.states or self.states[-1][1:] != (worker.ks.state, triggers):
            self.states.append((now, worker.ks.state, triggers))
        self.journal += [(now, rec) for rec in out.journal
                         if rec["kind"] in ("refusal", "quote_decision", "state_change", "reconcile")]
        for _seq, action in out.actions:
            self.actions.append((now, action))
            if isinstance(action, Place):
                self.place_sent[action.client_order_id] = now
            if isinstance(action, (Place, Amend)):
                m = action.slot[0]
                why = [w for w, bad in (("book stale", m in worker.stale),
                                        ("market not open", not worker.market_open[m]),
                                        ("ws down", not worker.ws_connected)) if bad]
                if why:
                    self.violations.append(f"{type(action).__name__} on {m} while {', '.join(why)}: "
                                           f"{action}")
        self._changed.set()

    async def _sample(self) -> None:
        while True:
            now = self.now()
            per_slot = Counter((o.ticker, o.side) for o in self.resting())
            worst = max(per_slot.values(), default=0)
            self.resting_samples.append((now, sum(per_slot.values())))
            self.max_per_slot = max(self.max_per_slot, worst)
            if worst > 1:
                self.violations.append(f"two orders in one slot on the exchange: {dict(per_slot)}")
            if self.driver.worker is not None:
                pos = self.positions()
                limit = self.worker.limit().hard_contracts
                inv = max(map(abs, directional_inventory(self.driver.game.book, pos)))
                self.inventory_samples.append((now, inv, limit))
            await asyncio.sleep(0.02)  # ok: poll interval inside a bounded wait

    # --- waiting ---

    async def until(self, pred: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait (bounded) until ``pred()`` holds, re-checking on every worker output and at least
        every 50 ms (exchange-side predicates change without a worker output)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred():
            if self.task is not None and self.task.done():
                self.task.result()  # surface a crash
                raise AssertionError(f"worker exited while waiting for: {what}")
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout:g}s waiting for: {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(0.05, left))

    async def quoting(self, timeout: float = 30.0, *, per_market: int = 1) -> None:
        """Until the worker is ACTIVE, its books fresh, and the exchange shows at least
        ``per_market`` of mm's orders resting in every market."""
        def ok() -> bool:
            w = self.driver.worker
            return (w is not None and w.ks.state == "ACTIVE" and not w.stale
                    and all(len(self.resting(m)) >= per_market for m in self.markets))
        await self.until(ok, timeout, f"worker quoting {per_market}+ order(s) per market")

    async def settled(self, timeout: float = 10.0, quiet_s: float = 0.3) -> None:
        """Until nothing is in flight, the worker's orders and positions are the exchange's, and
        no action went out for ``quiet_s`` (past the gate's 250 ms duplicate-order window, so a
        slot emptied now is placed again at once)."""
        def ok() -> bool:
            last = self.actions[-1][0] if self.actions else 0
            return worker_matches_exchange(self) and self.now() - last >= quiet_s * NS
        await self.until(ok, timeout, "worker view == exchange view, nothing in flight, quiet")

    # --- checks ---

    def places_in_stale_windows(self) -> list[str]:
        """Exchange orders of mm created while the worker held their market stale whose create
        was decided inside that window (not merely in flight when it opened)."""
        bad = []
        for o in self.all_orders():
            sent = self.place_sent.get(o.client_order_id or "")
            for start, end in self.stale_windows.get(o.ticker, []):
                inside = start < o.created_ns and (end is None or o.created_ns < end)
                if inside and (sent is None or sent >= start):
                    bad.append(f"{o.order_id} ({o.client_order_id}) {o.ticker} {o.side} created "
                               f"{(o.created_ns - start) / 1e6:.0f} ms into a stale window")
        return bad

    def check_invariants(self) -> None:
        assert self.violations == [], self.violations[:10]
        assert self.places_in_stale_windows() == []
        cids = Counter(o.client_order_id for o in self.all_orders() if o.client_order_id)
        assert [c for c, n in cids.items() if n > 1] == [], "a create was executed twice"
        assert self.max_per_slot <= 1

    def state_reasons(self) -> list[str]:
        return [f"{s}{list(t)}" for _, s, t in self.states]

    # --- lifecycle ---

    def start(self) -> None:
        self.task = asyncio.create_task(self.driver.run())
        self._sampler = asyncio.create_task(self._sample())

    async def stop(self, timeout: float = 30.0) -> WorkerReport:
        assert self.task is not None
        self.driver.stop("test end")
        report = await asyncio.wait_for(self.task, timeout=timeout)
        await self._stop_sampler()
        return report

    async def _stop_sampler(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler

    async def close(self) -> None:
        """After a failure: stop (or at worst cancel) the driver before the exchange goes."""
        await self._stop_sampler()
        if self.task is None or self.task.done():
            return
        self.driver.stop("test teardown")
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=25)
        except BaseException:  # noqa: BLE001 - teardown after a failure: never mask it
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self.task, timeout=25)


@contextlib.asynccontextmanager
async def running(tmp_path: Any, *, seed: int, start_in_s: float = FAR, worker_id: str = "w-fault",
                  **participants: Any) -> AsyncIterator[Run]:
    async with rig(tmp_path, seed=seed, start_in_s=start_in_s, **participants) as r:
        driver = await asyncio.wait_for(r.driver(worker_id=worker_id), timeout=15)
        run = Run(r, driver)
        run.start()
        try:
            yield run
        finally:
            await run.close()


async def finish(run: Run) -> WorkerReport:
    """Stop the worker; the exchange must show nothing of mm's resting, and every invariant held."""
    report = await run.stop()
    assert run.resting() == [], "orders left resting after stop"
    assert report.kill is not None and report.kill.after == []
    run.check_invariants()
    return report


# --- other traders ------------------------------------------------------------------------------


def join_best_bid(run: Run, market: str, contracts: int = 1) -> None:
    """Another trader adds a resting bid at the best bid (book traffic: one delta, no trade)."""
    bid = run.ex.engine.best(market)[0]
    assert bid is not None, f"{market} has no bid to join"
    run.ex.mutate(lambda eng, now: eng.place(OrderRequest(
        user_id=NOISE, ticker=market, side="bid", price=bid, count=contracts * CONTRACT), now))


def book_traffic(run: Run, n: int = 1) -> None:
    """``n`` book changes in each market."""
    for _ in range(n):
        for m in run.markets:
            join_best_bid(run, m)


def hit_mm_order(run: Run, order: Any) -> int:
    """Another trader's IOC sweeps the book down (bid) / up (ask) to mm's order, so that it fills
    whole. Returns the mm position change the exchange reports."""
    m = order.ticker
    before = run.ex.engine.position(MM_USER, m)
    yes_bids, no_bids = run.ex.engine.orderbook(m)
    if order.side == "bid":  # sell YES into every bid at or above mm's price
        size = sum(n for p, n in yes_bids if p >= order.price)
        side = "ask"
    else:  # buy YES from every ask at or below mm's price (asks are NO bids mirrored)
        size = sum(n for p, n in no_bids if PRICE_ONE - p <= order.price)
        side = "bid"
    run.ex.mutate(lambda eng, now: eng.place(OrderRequest(
        user_id=HITTER, ticker=m, side=side, price=order.price, count=size,
        time_in_force="immediate_or_cancel"), now))
    return run.ex.engine.position(MM_USER, m) - before


def book_levels(run: Run, market: str) -> tuple[dict[int, int], dict[int, int]]:
    """The exchange's full book for ``market`` in YES terms: (bids, asks)."""
    yes_bids, no_bids = run.ex.engine.orderbook(market)
    return dict(yes_bids), {PRICE_ONE - p: n for p, n in no_bids}


def first_event_after(run: Run, t0: int, kind: type, pred: Callable[[Any], bool] = lambda e: True
                      ) -> int | None:
    for t, ev in run.events:
        if t >= t0 and isinstance(ev, kind) and pred(ev):
            return t
    return None


# --- 1. WebSocket drop ---------------------------------------------------------------------------


@bounded
async def test_ws_drop_pulls_quotes_reconnects_and_quotes_again(tmp_path):
    async with running(tmp_path, seed=11) as run:
        await run.quoting(per_market=2)
        await run.settled()  # no slot locked by an action in flight when the drop comes
        before = run.resting()
        t_fault = run.now()
        apply_fault(run.ex, "ws_disconnect", {"count": 1})
        book_traffic(run)  # the next frame written closes the connection
        # the worker learns of the drop: disconnected, every book stale
        await run.until(lambda: first_event_after(run, t_fault, ConnEv, lambda e: not e.ws_connected)
                        is not None, 10, "ConnEv(disconnected)")
        t_down = first_event_after(run, t_fault, ConnEv, lambda e: not e.ws_connected)
        # ... and reconnects, resyncs and quotes again: fresh orders resting in every market,
        # well before the periodic reconcile (10 s) would have confirmed the cancels whose
        # user_orders updates the outage swallowed
        await run.until(lambda: first_event_after(run, t_down, ConnEv, lambda e: e.ws_connected)
                        is not None, 10, "ConnEv(connected)")
        await run.until(lambda: all(any(o.created_ns > t_down for o in run.resting(m))
                                    for m in run.markets) and not run.worker.stale,
                        5, "new orders resting in every market after the reconnect")
        # every market went stale at the drop and was resynced: the window the worker held it
        # stale; its quotes were pulled inside that window, and the exchange cancelled them
        window = {}
        for m in run.markets:
            windows = [w for w in run.stale_windows[m] if w[0] >= t_fault]
            assert windows and windows[0][1] is not None, f"{m} was never stale / never resynced"
            window[m] = windows[0]
        pulled = {a.order_id: t for t, a in run.actions if isinstance(a, Cancel) and t >= t_fault}
        for o in before:
            start, end = window[o.ticker]
            assert o.order_id in pulled and start <= pulled[o.order_id] <= end, \
                f"{o.order_id} was not pulled while {o.ticker} was stale"
            now = run.ex.engine.order(MM_USER, o.order_id)
            assert not now.is_resting and now.last_update_reason == "canceled"
        await finish(run)


# --- 2. sequence gap ----------------------------------------------------------------------------


@bounded
async def test_seq_gap_marks_books_stale_resyncs_and_places_nothing_meanwhile(tmp_path):
    async with running(tmp_path, seed=12) as run:
        await run.quoting(per_market=2)
        await run.settled()
        t_fault = run.now()
        apply_fault(run.ex, "seq_gap", {"count": 1})
        book_traffic(run)  # the next orderbook_delta frame skips a seq
        await run.until(lambda: first_event_after(run, t_fault, BookStaleEv) is not None, 10,
                        "BookStaleEv after the gap")
        stale_ev = next(ev for t, ev in run.events if t >= t_fault and isinstance(ev, BookStaleEv))
        assert stale_ev.reason == "seq_gap" and set(stale_ev.markets) == set(run.markets)
        assert any(f["kind"] == "seq_gap" and "skipped_seq" in f.get("params", {})
                   for f in run.ex.faults.log), run.ex.faults.log
        # the worker held every market stale, then resynced (fresh snapshots) without a
        # reconnect, and quotes in every market again
        def resynced() -> bool:
            windows = [[w for w in run.stale_windows[m] if w[0] >= t_fault] for m in run.markets]
            return (all(ws and ws[-1][1] is not None for ws in windows) and not run.worker.stale
                    and all(run.resting(m) for m in run.markets))
        await run.until(resynced, 10, "books stale, then resynced, and quotes in every market")
        assert first_event_after(run, t_fault, ConnEv) is None, "a seq gap must not need a reconnect"
        for m in run.markets:
            windows = [w for w in run.stale_windows[m] if w[0] >= t_fault]
            assert windows, f"the worker never held {m} stale after the gap"
            start, end = windows[0]
            # worker side: nothing but cancels for that market between BookStale and resync
            sent = [a for t, a in run.actions if start <= t < end and a.slot[0] == m]
            assert all(isinstance(a, Cancel) for a in sent), sent
        # exchange side: no order of mm's created in a stale window from a decision taken in it
        assert run.places_in_stale_windows() == []
        # and the resynced books are the exchange's
        await run.until(lambda: all(book_levels(run, m) == (dict(run.worker.books[m].bids),
                                                             dict(run.worker.books[m].asks))
                                    for m in run.markets), 5, "worker books equal the exchange's")
        await finish(run)


# --- 3. duplicate deltas ------------------------------------------------------------------------


def tops_match(run: Run) -> bool:
    for m in run.markets:
        book = run.worker.books[m]
        if book is None or book.stale:
            return False
        top = book.top()
        if (top.bid, top.bid_size, top.ask, top.ask_size) != run.ex.engine.best(m):
            return False
        if book_levels(run, m) != (dict(book.bids), dict(book.asks)):
            return False
    return True


@bounded
async def test_duplicate_deltas_are_not_applied_twice(tmp_path):
    async with running(tmp_path, seed=15) as run:
        await run.quoting(per_market=2)
        await run.settled()
        t_fault = run.now()
        apply_fault(run.ex, "duplicate_delta", {"count": 3})
        book_traffic(run, n=2)  # four deltas at the best bids; the first three are sent twice
        assert run.ex.faults.ws_duplicate_pending == 0
        assert sum(1 for f in run.ex.faults.log if f["kind"] == "duplicate_delta"
                   and "seq" in f.get("params", {})) == 3
        # the worker's book converges to the exchange's (top and every level): a delta applied
        # twice would leave a level wrong until the next snapshot, and no resync happens here
        await run.until(lambda: tops_match(run), 5, "worker book tops equal engine.best()")
        assert first_event_after(run, t_fault, BookStaleEv) is None, "duplicates forced a resync"
        assert first_event_after(run, t_fault, ConnEv) is None
        await finish(run)


# --- 4. 429 storm -------------------------------------------------------------------------------


def cancel_on_exchange(run: Run, orders: list[Any]) -> None:
    """The venue cancels mm's orders by itself (as on a self-trade or order-group trigger):
    the worker learns it from user_orders and must place those slots again."""
    for o in orders:
        run.ex.mutate(lambda eng, now, oid=o.order_id: eng.cancel(MM_USER, oid, now))


def worker_matches_exchange(run: Run) -> bool:
    """The worker's live orders and positions are the exchange's, with nothing in flight."""
    w = run.worker
    return (not w.pending and not w.unknown and not w.cancelling
            and set(w.live) == {o.order_id for o in run.resting()}
            and w.positions == run.positions())


@bounded
async def test_rate_limit_storm_no_runaway_then_quotes_again(tmp_path):
    async with running(tmp_path, seed=13) as run:
        await run.quoting(per_market=2)
        await run.settled()
        slots = {(o.ticker, o.side) for o in run.resting()}
        rl0, retries0 = run.r.rest.rate_limited, run.r.rest.retries
        t_fault = run.now()
        apply_fault(run.ex, "rate_limit_storm", {"seconds": 3})
        storm_end = run.ex.faults.rate_limit_storm_until_ns
        cancel_on_exchange(run, run.resting())  # every slot needs a new order, in the storm
        await run.until(lambda: run.ex.now_ns() >= storm_end, 10, "the storm to end")
        in_storm = [a for t, a in run.actions if t_fault <= t < storm_end]
        # a place, or an amend the worker decided before the exchange's cancel reached it (the
        # book showed our orders gone first) — either way the storm was met with a request
        assert any(isinstance(a, (Place, Amend)) for a in in_storm), "nothing was tried during the storm"
        assert run.r.rest.rate_limited > rl0 and run.r.rest.retries > retries0
        per_slot = Counter(a.slot for a in in_storm)
        assert max(per_slot.values()) <= 4, f"requote runaway in the storm: {per_slot}"
        # after the storm: quoting normally — every slot quoted before rests again, and the
        # worker's view is the exchange's
        await run.until(lambda: {(o.ticker, o.side) for o in run.resting()} >= slots
                        and worker_matches_exchange(run), 10,
                        f"all of {sorted(slots)} resting again after the storm")
        assert run.worker.ks.state == "ACTIVE", run.state_reasons()
        assert "HALTED" not in {s for _, s, _ in run.states}, run.state_reasons()
        assert run.max_per_slot <= 1
        await finish(run)


@bounded
async def test_rate_limit_storm_while_pulling_quotes_never_doubles_a_slot(tmp_path):
    """The storm meets a WebSocket drop: every book goes stale, so the worker must cancel
    everything while each cancel is answered 429 until the client gives up. A failed cancel
    leaves the order resting: its slot must stay taken (no second order placed beside it), and
    rate-limit failures are not a connectivity loss (no HALT)."""
    async with running(tmp_path, seed=13) as run:
        await run.quoting(per_market=2)
        await run.settled()
        slots = {(o.ticker, o.side) for o in run.resting()}
        t_fault = run.now()
        apply_fault(run.ex, "rate_limit_storm", {"seconds": 3})
        storm_end = run.ex.faults.rate_limit_storm_until_ns
        apply_fault(run.ex, "ws_disconnect", {"count": 1})
        book_traffic(run)
        # the worker pulls its quotes, and the venue refuses the cancels with 429s
        await run.until(lambda: any(isinstance(ev, AckEv) and ev.rate_limited and not ev.ok
                                    for t, ev in run.events if t >= t_fault), 10,
                        "a cancel failed on 429s")
        assert any(isinstance(a, Cancel) for t, a in run.actions if t_fault <= t < storm_end)
        await run.until(lambda: run.ex.now_ns() >= storm_end, 10, "the storm to end")
        # after the storm: quoting normally in every slot, the worker's view is the exchange's
        await run.until(lambda: {(o.ticker, o.side) for o in run.resting()} >= slots
                        and not run.worker.stale and worker_matches_exchange(run), 10,
                        "quoting in every slot after the storm")
        assert run.max_per_slot <= 1, "a failed cancel's slot got a second order"
        assert run.worker.ks.state == "ACTIVE", run.state_reasons()
        assert "HALTED" not in {s for _, s, _ in run.states}, run.state_reasons()
        await finish(run)


# --- 5. 5xx -------------------------------------------------------------------------------------


@bounded
async def test_http_5xx_creates_retried_idempotently_one_order_per_slot(tmp_path):
    async with running(tmp_path, seed=16) as run:
        await run.quoting(per_market=2)
        await run.settled()
        before = run.resting()
        slots = {(o.ticker, o.side) for o in before}
        retries0 = run.r.rest.retries
        t_fault = run.now()
        # switch the fault on the moment the worker decides its first create (its REST call is
        # spawned but not yet sent), so the next three requests include that create
        recording = run.driver.on_output
        armed = [True]

        def arm(worker: GameWorker, out: Output) -> None:
            assert recording is not None
            recording(worker, out)
            if armed[0] and any(isinstance(a, Place) for _, a in out.actions):
                armed[0] = False
                apply_fault(run.ex, "http_5xx", {"count": 3})

        run.driver.on_output = arm
        cancel_on_exchange(run, before)  # every slot needs a create again
        await run.until(lambda: {(o.ticker, o.side) for o in run.resting()} >= slots
                        and worker_matches_exchange(run), 10, "every slot quoted again")
        assert not armed[0] and run.ex.faults.http_5xx_remaining == 0
        hit = [f["effect"] for f in run.ex.faults.log if f["kind"] == "http_5xx" and "effect" in f]
        assert len(hit) == 3 and any(e.endswith("/portfolio/events/orders") for e in hit), hit
        assert run.r.rest.retries >= retries0 + 3
        # exchange truth: one order per slot, one per client_order_id (a retried create
        # reuses its id and is never executed twice)
        new = [o for o in run.all_orders() if o.created_ns >= t_fault]
        assert max(Counter((o.ticker, o.side) for o in new if o.is_resting).values()) == 1
        assert len({o.client_order_id for o in new}) == len(new)
        assert run.max_per_slot <= 1
        assert run.worker.ks.state == "ACTIVE", run.state_reasons()
        await finish(run)


@bounded
async def test_http_5xx_outage_halts_cancels_and_still_exits_on_stop(tmp_path):
    """A longer 5xx outage trips CONNECTIVITY (HALTED) mid-game: everything is cancelled and
    verified; a later stop must still end the driver (it used to wait forever)."""
    async with running(tmp_path, seed=17) as run:
        await run.quoting(per_market=2)
        apply_fault(run.ex, "http_5xx", {"count": 40})
        cancel_on_exchange(run, run.resting())
        await run.until(lambda: run.worker.ks.state == "HALTED", 15, "HALTED by the 5xx streak")
        assert "CONNECTIVITY" in run.states[-1][2], run.state_reasons()
        await run.until(lambda: run.ex.faults.http_5xx_remaining == 0 and not run.resting(), 20,
                        "nothing resting once the outage is over")
        assert not run.task.done(), "HALTED mid-game is not the end of the game"
        report = await finish(run)
        assert report.final_state == "HALTED"


# --- 6. game start while cancels lie ------------------------------------------------------------


@bounded
async def test_game_start_with_lying_cancel_acks_leaves_nothing_resting_within_10s(tmp_path):
    async with running(tmp_path, seed=18, start_in_s=14.0) as run:
        await run.quoting(per_market=2)
        start_ns = run.driver.game.start_ns
        assert run.now() < start_ns - 4 * NS, "quoting began too late for this test"
        # every cancel from now on is acknowledged at once and applied 3 s later
        apply_fault(run.ex, "cancel_ack_not_applied", {"seconds": 20, "delay_s": 3.0})
        # the worker runs into game start by itself: pull quotes, HALT, verified cancel-all, exit
        report = await asyncio.wait_for(asyncio.shield(run.task), timeout=30)
        await run._stop_sampler()
        assert run.resting() == []
        lied = [f for f in run.ex.faults.log if f["kind"] == "cancel_ack_not_applied"
                and f.get("effect") == "acknowledged, not applied"]
        assert lied, "no cancel was deferred: the fault did not bite"
        last_resting = max((t for t, n in run.resting_samples if n), default=0)
        assert last_resting < start_ns + 10 * NS, \
            f"orders rested {(last_resting - start_ns) / 1e9:.1f}s past game start"
        assert run.resting_samples[-1][1] == 0
        assert report.final_state == "HALTED"
        assert report.kill is not None and report.kill.after == []
        assert any("GAME_START" in t for _, _, t in run.states), run.state_reasons()
        run.check_invariants()


# --- 7. lagging positions -----------------------------------------------------------------------


def reconciles(run: Run, since: int = 0) -> list[tuple[int, ReconcileEv]]:
    return [(t, ev) for t, ev in run.events if t >= since and isinstance(ev, ReconcileEv)]


async def reconnect_once(run: Run) -> None:
    """Drop the WebSocket once and wait until the worker has reconciled after reconnecting
    (each reconnect asks the exchange's lists for what the outage hid)."""
    t0 = run.now()
    apply_fault(run.ex, "ws_disconnect", {"count": 1})
    book_traffic(run)
    await run.until(lambda: first_event_after(run, t0, ConnEv, lambda e: e.ws_connected) is not None
                    and any(t > first_event_after(run, t0, ConnEv, lambda e: e.ws_connected)
                            for t, _ in reconciles(run, t0)), 5, "reconnect and reconcile")


@bounded
async def test_lagging_positions_fill_is_truth_and_no_false_drift_halt(tmp_path):
    async with running(tmp_path, seed=19) as run:
        await run.quoting(per_market=2)
        await run.settled()
        apply_fault(run.ex, "positions_lag", {"seconds": 20, "lag_s": 5})
        order = run.resting()[0]
        m = order.ticker
        before = run.positions()[m]
        t_fill = run.now()
        moved = hit_mm_order(run, order)
        assert moved != 0
        after = before + moved
        # the worker's position comes from the fill at once (REST shows it only 5 s later)
        await run.until(lambda: run.worker.positions[m] == after, 2, "position from the fill")
        assert first_event_after(run, t_fill, FillEv, lambda e: e.order_id == order.order_id) \
            is not None
        # two reconciles well inside the lag window, both answering the pre-fill position
        await reconnect_once(run)
        await reconnect_once(run)
        lagged = [ev for t, ev in reconciles(run, t_fill)
                  if t < t_fill + 5 * NS and ev.positions.get(m, 0) == before]
        assert len(lagged) >= 2, "REST did not lag: the test proves nothing"
        # the driver read how stale they were: older than the fill, so no evidence of drift
        assert all(ev.data_as_of_ns is not None and ev.data_as_of_ns < t_fill for ev in lagged)
        assert run.worker.positions[m] == after, "a lagging REST position was adopted"
        assert run.worker.ks.state != "HALTED", run.state_reasons()
        # once REST has caught up, a (periodic) reconcile agrees and nothing was confirmed
        lag_over = t_fill + 5 * NS
        await run.until(lambda: any(ev.positions.get(m, 0) == after for t, ev in reconciles(run, lag_over)),
                        15, "a reconcile showing the fill")
        await run.until(lambda: run.worker.positions == run.positions(), 5,
                        "worker positions == exchange positions")
        assert run.worker.position_drift == 0
        assert not any("RECONCILE_DRIFT" in " ".join(t) for _, _, t in run.states), run.state_reasons()
        assert "HALTED" not in {s for _, s, _ in run.states}, run.state_reasons()
        await finish(run)


# --- 8. pause and reactivation ------------------------------------------------------------------


@bounded
async def test_pause_pulls_market_and_reactivation_requotes(tmp_path):
    async with running(tmp_path, seed=20) as run:
        await run.quoting(per_market=2)
        await run.settled()
        m, other = run.markets
        # pause: the exchange cancels mm's orders there (all created with cancel_order_on_pause)
        t_pause = run.now()
        apply_fault(run.ex, "pause", {"ticker": m})
        assert run.resting(m) == [], "cancel_order_on_pause orders must vanish on pause"
        assert run.ex.engine.get_market(m).status == "paused"
        await run.until(lambda: not run.worker.market_open[m], 5, "worker sees the pause")
        # the worker quotes the other market, and nothing in the paused one: over a few of its
        # requote cycles (book traffic in both markets, timer ticks), nothing appears there
        n = run.outputs
        join_best_bid(run, other)  # (a paused market takes no new orders)
        join_best_bid(run, other)
        await run.until(lambda: run.outputs >= n + 10 and run.now() >= t_pause + 2 * NS, 10,
                        "a few worker cycles while paused")
        assert run.resting(m) == [] and run.resting(other)
        assert not [a for t, a in run.actions if t > t_pause and isinstance(a, (Place, Amend))
                    and a.slot[0] == m]
        # reactivate: the exchange cancels every resting order in the market; the worker quotes it
        t_react = run.now()
        apply_fault(run.ex, "reactivate", {"ticker": m})
        assert run.ex.engine.orders(NOISE, ticker=m, status="resting") == []
        assert run.ex.engine.get_market(m).status == "active"
        await run.until(lambda: run.worker.market_open[m] and run.resting(m)
                        and all(o.created_ns > t_react for o in run.resting(m)), 10,
                        "mm quoting the reactivated market")
        paused_orders = [o for o in run.all_orders()
                         if o.ticker == m and t_pause <= o.created_ns <= t_react]
        assert paused_orders == [], "an order was sent into a paused market"
        await run.settled()
        assert run.worker.ks.state == "ACTIVE", run.state_reasons()
        await finish(run)


# --- 9. inventory under aggressive flow -----------------------------------------------------------


@bounded
async def test_inventory_never_past_the_hard_limit_under_aggressive_flow(tmp_path):
    """Heavy noise and informed flow against the worker for 15 s; mm's exchange positions are
    sampled every 20 ms with the worker's hard limit at that moment. The limit follows the
    book's liquidity, so it can shrink *below* inventory that was legitimately reached (a sweep
    takes liquidity away right after a fill); what must never happen is a fill taking |pos_A −
    pos_B| past the limit in force when it happened (the largest limit of the last second:
    orders sized under it may still be resting when a sweep shrinks it)."""
    flow = {
        "noise_takers": [{"count": 3, "rate_per_s": 2.0, "size_contracts_min": 5,
                          "size_contracts_max": 30}],
        "informed_takers": [{"edge_threshold_price": 100, "rate_per_s": 1.0, "noise_sd_prob": 0.02}],
    }
    async with running(tmp_path, seed=21, **flow) as run:
        await run.quoting()
        t0 = run.now()
        await run.until(lambda: run.now() >= t0 + 15 * NS, 20, "15 s of aggressive flow")
        samples = [s for s in run.inventory_samples if s[0] >= t0]
        assert len(samples) > 200
        fills = [ev for t, ev in run.events if t >= t0 and isinstance(ev, FillEv)]
        assert len(fills) >= 3, "the flow never traded with mm: the test proves nothing"
        assert max(inv for _, inv, _ in samples) > 0
        over = []
        for i in range(1, len(samples)):
            t, inv, _ = samples[i]
            if inv <= samples[i - 1][1]:
                continue  # no fill took inventory further out here
            in_force = max(lim for ts, _, lim in samples[:i + 1] if ts >= t - NS)
            if inv > in_force:
                over.append((round((t - t0) / 1e9, 2), inv, in_force))
        assert over == [], f"(s, |inventory|, limit in force): {over[:10]}"
        await finish(run)
