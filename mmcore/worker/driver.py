"""The async driver of one game worker: sockets, timers, REST calls and the journal around the
sans-I/O :class:`~mmcore.worker.engine.GameWorker`.

Lifecycle of :meth:`WorkerDriver.run`:

1. load the game from REST (markets and tick grids, series fee schedule, start time from
   milestones), create an order group as a server-side backstop, reconcile positions and resting
   orders (a restarted worker adopts what the exchange shows; our fills are backfilled into the
   journal), read the latest per-game theo snapshot;
2. subscribe over WebSocket and loop: every book change, fill and order update goes to the
   worker; its order actions run as REST calls (one in flight per slot), their acks come back as
   events; positions and resting orders are reconciled from REST every 10 s; when the REST
   client pre-signs, its pools are topped up once a second off the hot path (per-order amend
   and cancel pools follow the worker's live orders: registered by create acks and for orders
   adopted at reconcile, dropped when ``user_orders`` reports an order done);
3. at game start, on any kill trigger, on SIGTERM/cancellation, or on a crash: cancel everything
   for the game and verify on the exchange that nothing rests (:mod:`mmcore.worker.killall`) — the
   ``finally`` clause does this whatever happened.

Everything the worker saw and did goes to its own journal (:mod:`mmcore.worker.journal`); the driver
never opens the DuckDB file.

:meth:`WorkerDriver.status` says, cheaply and at any time, what the worker is doing and what it is
waiting for (a theo snapshot, order books, ``mm resume`` after ``mm kill``, a fresh theo); each
change of ``waiting_for`` is logged at INFO, so a silent ``mm quote`` explains itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcore.errors import MMError, RateLimitedError
from mmcore.fees import FeeSchedule
from mmcore.game import GameSpec, extra_outcomes_from_rules
from mmcore.odds.teams import TIE_CODE, sport_for_series
from mmcore.orders import Amend, Cancel, OrderAction, Place
from mmcore.risk.gate import reduces_exposure
from mmcore.risk.killswitch import Trigger
from mmcore.theo.refresh import Refresher, write_request
from mmcore.theo.snapshot import TheoSnapshot, path_for, read_snapshot
from mmcore.units import CONTRACT
from mmcore.venues.kalshi import ws as kws
from mmcore.venues.kalshi.ratelimit import Priority
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.worker.account_ledger import AccountLedger, entry_for
from mmcore.worker.engine import (
    AccountEv,
    AckEv,
    BookEv,
    BookStaleEv,
    CancelAllVerified,
    ConnEv,
    FillEv,
    GameWorker,
    LifecycleEv,
    OrderEv,
    Output,
    ReconcileEv,
    ReconcileNow,
    OrderGroupEv,
    RefreshTheo,
    RestoreOrderGroup,
    ResyncBooks,
    StopEv,
    TheoEv,
    TradeEv,
    WorkerConfig,
)
from mmcore.worker.journal import Journal, JournalError
from mmcore.worker.killall import KillReport, cancel_until_flat
from mmcore.worker.latency_hist import LatencyHistogram
from mmcore.worker.startup import StartupTimer

log = logging.getLogger(__name__)
NS = 1_000_000_000


async def load_game(rest: KalshiRest, event_ticker: str, *, start_ns: int | None = None) -> GameSpec:
    """A game as the worker needs it, read from the venue (never guessed); ``start_ns`` when
    the caller has just read it (:meth:`KalshiRest.game_start_ns`), saving that read."""
    event = await rest.get_event(event_ticker, with_nested_markets=True)
    markets = sorted(event.markets or [], key=lambda m: (m.ticker.endswith(f"-{TIE_CODE}"), m.ticker))
    if len(markets) < 2:
        raise MMError(f"{event_ticker} has {len(markets)} market(s); a game needs 2 or 3")
    series = await rest.get_series(event.series_ticker)
    fee_type = event.fee_type_override or series.fee_type
    fee_mult = event.fee_multiplier_override if event.fee_multiplier_override is not None else series.fee_multiplier
    if start_ns is None:
        start_ns = await rest.game_start_ns(event_ticker)
    sport = sport_for_series(event.series_ticker) or "default"
    tickers = tuple(m.ticker for m in markets)
    # a draw that settles every listed market NO, or a void at a set value (issue 10 item 8)
    extra = extra_outcomes_from_rules(
        sport, tickers, [t for m in markets for t in (m.rules_primary, m.rules_secondary)])
    return GameSpec(event_ticker, sport, tickers,
                    tuple(m.tick_grid() for m in markets), FeeSchedule.from_series(fee_type, fee_mult),
                    start_ns, extra)


PUBLISH_HINT = ("the odds pull (`mm run refresh-calendar` then `mm run pull-odds`, or the pull-odds "
                "deployment under `mm serve`; `mm demo` runs both itself)")
"""How a newcomer gets a theo snapshot published, for the waiting message."""


class FileTheoSource:
    """The latest per-game snapshot the odds pull published (atomic files in ``directory``).

    :meth:`refresh` (on ``RefreshTheo``) drops a request file ``<directory>/requests/<event>.json``
    when ``request_files`` is set (an orchestrator serves it, :mod:`mmcore.theo.refresh`), then
    awaits ``refresh`` — e.g. :func:`~mmcore.theo.refresh.make_local_refresher`, which pulls
    in-process — when one is given."""

    def __init__(self, directory: Path, event_ticker: str, refresh: Refresher | None = None, *,
                 request_files: bool = False, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.directory, self.event_ticker, self._refresh = directory, event_ticker, refresh
        self.request_files, self._clock_ns = request_files, clock_ns

    @property
    def path(self) -> Path:
        """Where this game's snapshot is published."""
        return path_for(self.directory, self.event_ticker)

    def latest(self) -> TheoSnapshot | None:
        return read_snapshot(self.directory, self.event_ticker)

    async def refresh(self, reason: str = "") -> None:
        """Ask for a fresh pull of this game (news risk): request file and/or in-process pull."""
        if self.request_files:
            write_request(self.directory, self.event_ticker, self._clock_ns(), reason)
        if self._refresh is not None:
            await self._refresh()


@dataclass(frozen=True, slots=True)
class MarketQuotes:
    """Our resting quote on one market: best bid and ask (price units, YES terms) with the size
    resting at that price (centi-contracts); None/0 when that side has nothing."""

    bid: int | None = None
    bid_size: int = 0
    ask: int | None = None
    ask_size: int = 0


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A snapshot of one worker for progress displays (``mm quote``, the Prefect live artifact).

    ``state``: ``STARTING`` before the first reconcile, then the kill switch state (``ACTIVE``,
    ``REDUCING``, ``HALTED``), ``STOPPED`` once the run ended. ``waiting_for`` is None while the
    worker quotes normally, else what it needs, in words a newcomer can act on."""

    event_ticker: str
    state: str
    waiting_for: str | None
    theo: dict[str, float] | None
    """Probability per market, as the worker uses it."""
    theo_as_of_ns: int | None
    quotes: dict[str, MarketQuotes]
    inventory: dict[str, int]
    """Position per market, centi-contracts (YES positive)."""
    fills: int
    pnl_money: int
    """Cash plus positions at their marks, price units ($0.0001)."""
    kill_reasons: tuple[str, ...]
    """Kill-switch triggers in force, and the reason of the last transition out of ACTIVE."""
    start_ns: int
    now_ns: int
    exit_reason: str = ""
    marked_at: str = "theo"
    """What ``pnl_money`` marks positions at: ``theo``; without one the book's ``mid``, else
    the position's own ``cost`` (:meth:`GameWorker.marks`)."""


def describe_waiting(event_ticker: str, worker: GameWorker | None, now_ns: int, *,
                     theo_path: Path, halt_flag: Path | None = None,
                     theo_problem: str | None = None, finished: bool = False) -> str | None:
    """What a worker waits for, most blocking first (None: quoting normally). Pure: the paths
    are only named, never touched; O(markets)."""
    event = event_ticker
    if halt_flag is not None:
        return (f"`mm resume {event if halt_flag.name != 'ALL' else '--all'}`: halted by "
                f"`mm kill` (flag {halt_flag})")
    if finished:
        return None
    if worker is None:
        return "start-up: loading the game and reconciling with the exchange"
    if worker.stopping is not None:
        return f"shutdown ({worker.stopping}): cancelling every order and verifying"
    if worker.group_problem is not None:
        return (f"an order group (the exchange-side backstop; no new orders without one): "
                f"{worker.group_problem}")
    if worker.theo is None:
        if theo_problem:
            return f"a usable theo snapshot: {theo_problem}"
        return (f"a theo snapshot: none yet at {theo_path}; publish one with {PUBLISH_HINT}")
    limit = worker.cfg.killswitch.stale_theo_ns
    age = now_ns - (worker.last_theo_ns or now_ns)
    if Trigger.STALE_THEO in worker.ks.active_triggers or age > limit:
        return (f"a fresh theo: the snapshot at {theo_path} is {age / NS / 60:.0f} min old "
                f"(limit {limit / NS / 60:.0f} min); is {PUBLISH_HINT} running?")
    missing = [m for m in worker.game.markets if worker.books.get(m) is None or m in worker.stale]
    if missing:
        why = "WebSocket connecting" if not worker.ws_connected else "waiting for the snapshot"
        return f"order books of {', '.join(missing)} ({why})"
    if worker.ks.state == "HALTED":
        last = worker.ks.history[-1].reason if worker.ks.history else "halted"
        return f"nothing more: the kill switch HALTED this game ({last})"
    return None


def _quotes(worker: GameWorker) -> dict[str, MarketQuotes]:
    out: dict[str, MarketQuotes] = {}
    for m in worker.game.markets:
        bids = [o for o in worker.live.values() if o.market == m and o.side == "bid"]
        asks = [o for o in worker.live.values() if o.market == m and o.side == "ask"]
        bid = max((o.price for o in bids), default=None)
        ask = min((o.price for o in asks), default=None)
        out[m] = MarketQuotes(bid, sum(o.remaining for o in bids if o.price == bid),
                              ask, sum(o.remaining for o in asks if o.price == ask))
    return out


LAZY_SYNC_KINDS = frozenset({"book_top"})
"""Journal records that are market data, not ours: written after each decision like every
record, but fsync'd with the next record that is ours (decision, order, ack, fill, ...) or within
:data:`JOURNAL_LAZY_SYNC_NS`, not one fsync per book delta (bench/RESULTS.md ``scale.py``: the
per-delta fsync was ~20 % of a quoting worker's CPU). A crash can lose up to that much of the book
tops, never a record of ours that an fsync would have kept."""
JOURNAL_LAZY_SYNC_NS = 1 * NS

_TIMER = object()
"""The run loop's stand-in for "the worker's deadline came" (``Output.next_deadline_ns``)."""
_WAKE = object()
"""Queued to make the run loop look at ``_exit`` now."""


@dataclass(frozen=True, slots=True)
class _JournalFailed:
    """Queued by the journal writer task: the run loop raises ``error`` (a crash: cancel all)."""

    error: JournalError


@dataclass
class WorkerReport:
    event_ticker: str
    exit_reason: str = ""
    fills: int = 0
    actions: int = 0
    refusals: int = 0
    final_state: str = ""
    positions: dict[str, int] = field(default_factory=dict)
    pnl_money: int = 0
    kill: KillReport | None = None
    error: str | None = None
    decision: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Per book event: the frame's ``receipt_ns`` → the decision's orders handed to the send
    tasks (ns; queue wait, worker and gate included; the journal is written after the sends)."""
    events: int = 0
    """Events handed to the worker."""
    batches: int = 0
    """Decisions they made: events that arrived together are decided once (:meth:`GameWorker.handle_batch`)."""


class WorkerDriver:
    """Runs one :class:`GameWorker` against a venue until its game starts (or it is stopped)."""

    def __init__(
        self,
        rest: KalshiRest,
        ws_factory: Callable[[list[str]], kws.KalshiWs],
        game: GameSpec,
        cfg: WorkerConfig,
        theo: FileTheoSource,
        *,
        journal: Journal | None = None,
        order_group_contracts: int | None = 200,
        until_ns: int | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        cancel_deadline_s: float = 60.0,
        theo_poll_s: float = 2.0,
        on_output: Callable[[GameWorker, Output], None] | None = None,
        halt_dir: Path | None = None,
        presign_refill_s: float = 1.0,
        group_create_attempts: int = 4,
        group_retry_s: float = 0.5,
        group_retry_max_s: float = 30.0,
        group_reset_delay_s: float = 15.0,
        account: AccountLedger | None = None,
        account_poll_s: float = 1.0,
        startup: StartupTimer | None = None,
    ) -> None:
        self.rest, self.ws_factory, self.game, self.cfg, self.theo = rest, ws_factory, game, cfg, theo
        self.journal, self.clock_ns, self.until_ns = journal, clock_ns, until_ns
        self.order_group_contracts = order_group_contracts
        self.cancel_deadline_s, self.theo_poll_s = cancel_deadline_s, theo_poll_s
        self.on_output = on_output
        self.halt_dir = halt_dir
        self.presign_refill_s = presign_refill_s
        self.group_create_attempts, self.group_retry_s = group_create_attempts, group_retry_s
        self.group_retry_max_s, self.group_reset_delay_s = group_retry_max_s, group_reset_delay_s
        self._group_restoring = False
        self.account, self.account_poll_s = account, account_poll_s
        self.startup = startup or StartupTimer(game.event_ticker, getattr(rest, "limiter", None))
        """Start-up stages and their durations (logged; ``mmcore.worker.startup``)."""
        self._account_wake = asyncio.Event()
        self._account_view: Any = None
        self.worker: GameWorker | None = None
        self.report = WorkerReport(game.event_ticker)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slot_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._group_id: str | None = None
        self._exit = asyncio.Event()
        self._ws: kws.KalshiWs | None = None
        self._theo_seen: int | None = None
        self._theo_problem: str | None = None
        self._waiting: str | None = None
        self._waiting_known = False
        self._finished = False
        self._journal_buf: list[tuple[dict[str, Any], int]] = []
        """Records decided and not yet written (with their decision time), in order."""
        self._journal_wake = asyncio.Event()
        self._journal_urgent = False
        """A record other than market data was decided since the writer last ran: fsync now."""
        self._journal_lazy_since: int | None = None
        """Monotonic ns since only market-data records (``book_top``) wait unsynced."""
        self._journal_timer: asyncio.TimerHandle | None = None

    # --- main loop ---------------------------------------------------------------------------

    async def run(self) -> WorkerReport:
        try:
            await self._start(self.clock_ns())
            now = deadline = self.clock_ns()
            while not self._exit.is_set():
                now = self.clock_ns()
                if self.until_ns is not None and now >= self.until_ns and self.worker.stopping is None:
                    self._put(StopEv("--until reached"))
                try:
                    first = await asyncio.wait_for(self._queue.get(),
                                                   timeout=max(0.0, (deadline - now) / NS))
                except TimeoutError:
                    first = _TIMER  # the worker's deadline came with nothing queued
                # a burst (deltas read together, a fill with its order update) is decided once,
                # on the latest state: drain what has already arrived
                batch = [first]
                while not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                events = [item for item in batch if item is not _TIMER and item is not _WAKE]
                for item in events:
                    if isinstance(item, _JournalFailed):
                        raise item.error
                if events:
                    self.report.events += len(events)
                    self.report.batches += 1
                    out = self.worker.handle_batch(events, self.clock_ns())
                    if any(isinstance(item, ReconcileEv) for item in events):
                        self._presign_live()
                    deadline = out.next_deadline_ns
                    self._process(out)
                    for item in events:  # frame read → decision handed to the senders (bench/scale.py)
                        if isinstance(item, BookEv):
                            self.report.decision.record(self.clock_ns() - item.receipt_ns)
                if first is _TIMER:
                    out = self.worker.on_timer(self.clock_ns())
                    deadline = out.next_deadline_ns
                    self._process(out)
        except asyncio.CancelledError:
            self.report.exit_reason = self.report.exit_reason or "cancelled"
            raise
        except Exception as exc:  # a crash: still cancel everything below
            self.report.error = f"{type(exc).__name__}: {exc}"
            self.report.exit_reason = "crash"
            log.exception("worker %s crashed", self.game.event_ticker)
            raise
        finally:
            await self._shutdown()
            self._finished = True
            self.status()  # logs the final waiting_for (e.g. the halt flag)
        return self.report

    async def _start(self, now: int) -> None:
        """Start-up: the REST calls first (order group, the exchange's positions and resting
        orders), then the :class:`GameWorker` is born and handles them, then the sockets.

        Why the worker is created only after the REST calls: its clocks start at its birth —
        the WebSocket's ``connectivity_grace_ns`` (15 s) among them — and the socket is opened
        only at the end of start-up. With 50 workers on one Basic account those calls waited
        ~15–20 s for the shared read budget, and the 7 workers whose wait passed the grace
        were HALTED on CONNECTIVITY ("websocket down") before their socket was even opened:
        they never quoted (bench/scale.py N = 50, tests/test_worker_startup.py)."""
        st = self.startup
        gid, why = None, ""
        if self.order_group_contracts:
            with st.stage("order group"):
                gid, why = await self._create_group()
        with st.stage("reconcile"):
            initial = await self._reconcile_event(initial=True)
            assert initial is not None  # initial: a failure raises
        self.worker = GameWorker(self.game, self.cfg, self.clock_ns())
        if self.order_group_contracts:
            self._group_id = gid
            ev = (OrderGroupEv("ready", gid, "created", self.clock_ns()) if gid is not None else
                  OrderGroupEv("create_failed", None, why, self.clock_ns()))
            self._process(self.worker.handle(ev, self.clock_ns()))  # before anything can quote
            if gid is None:  # keep trying in the background; no new orders until then
                self._spawn(self._restore_group(RestoreOrderGroup(True, why), delay_s=0.0))
        if self.account is not None:  # the day's P&L and peak, before anything is judged
            with st.stage("account ledger"):
                with contextlib.suppress(OSError):  # earlier days' entries nobody counts any more
                    await asyncio.to_thread(self.account.prune, self.clock_ns())
                await self._account_sync(direct=True)
        self._process(self.worker.handle(initial, self.clock_ns()))  # before anything else
        self._presign_live()
        self._read_theo()
        st.done()
        self.status()  # logs what the worker waits for, if anything
        self._ws = self.ws_factory(list(self.game.markets))
        self._spawn(self._pump_ws())
        if self.journal is not None:
            self._spawn(self._backfill_later())
            self._spawn(self._journal_writer())
        self._spawn(self._poll_theo())
        if self.rest.has_presign_pools:
            self._spawn(self._refill_presigned())
        if self.account is not None:
            self._spawn(self._account_loop())

    def stop(self, reason: str = "stop requested") -> None:
        """Thread-safe enough for signal handlers on the loop: the worker halts and cancels."""
        self._put(StopEv(reason))

    # --- outputs -----------------------------------------------------------------------------

    def _process(self, out: Output) -> None:
        assert self.worker is not None
        now = self.clock_ns()
        # Orders first, then the records: the send tasks start on the next loop turn, before
        # the journal writer (woken after them), which writes the records in decision order and
        # fsyncs in a thread (group commit: one fsync for whatever accumulated meanwhile) — the
        # journal is off the tick-to-wire path. A crash can lose the records of the last
        # decisions; the exchange's own lists (reconcile, fill backfill) are the truth after one.
        for seq, action in out.actions:
            self.report.actions += 1
            self._spawn(self._execute(seq, action))
        if self.journal is not None:
            if out.journal:
                self._journal_buf.extend((rec, now) for rec in out.journal)
                if not self._journal_urgent and any(
                        rec["kind"] not in LAZY_SYNC_KINDS for rec in out.journal):
                    self._journal_urgent = True
            self._journal_wake.set()
        if out.actions or any(rec["kind"] == "fill" for rec in out.journal):
            self._account_wake.set()  # our exposure changed: tell the other games soon
        for rec in out.journal:
            if rec["kind"] == "fill":
                self.report.fills += 1
            elif rec["kind"] == "refusal":
                self.report.refusals += 1
        for req in out.requests:
            if isinstance(req, CancelAllVerified):
                self._spawn(self._cancel_all(req))
            elif isinstance(req, ReconcileNow):
                self._spawn(self._reconcile())
            elif isinstance(req, RefreshTheo):
                self._spawn(self._refresh_theo(req.reason))
            elif isinstance(req, RestoreOrderGroup):
                self._spawn(self._restore_group(req))
            elif isinstance(req, ResyncBooks) and self._ws is not None:
                self._spawn(self._ws.probe(req.markets))  # snapshots come back as BookEv
        if self.on_output is not None:
            self.on_output(self.worker, out)

    async def _execute(self, seq: int, action: OrderAction) -> None:
        lock = self._slot_locks.setdefault(action.slot, asyncio.Lock())
        # cancels and risk-reducing orders first: they spend the account budget's reserve
        priority: Priority = "cancel" if self._reduces(action) else "normal"
        async with lock:
            try:
                if isinstance(action, Place):
                    # expiration_time = game start (whole seconds, rounded down): the exchange
                    # itself removes the order then, even if every process of ours is gone
                    ack = await self.rest.create_order(action, order_group_id=self._group_id,
                                                       cancel_order_on_pause=True,
                                                       expiration_ns=self.game.start_ns,
                                                       priority=priority)
                    ev = AckEv(seq, True, order_id=ack.order_id, remaining=ack.remaining_count,
                               filled=ack.fill_count, latency_ns=ack.latency_ns,
                               receipt_ns=ack.received_ns)
                elif isinstance(action, Amend):
                    amend = await self.rest.amend_order(action.order_id, action.market, action.side,
                                                        action.price, action.count, priority=priority)
                    ev = AckEv(seq, True, order_id=amend.order_id, remaining=amend.remaining_count,
                               filled=amend.fill_count, latency_ns=amend.latency_ns,
                               receipt_ns=amend.received_ns)
                else:
                    assert isinstance(action, Cancel)
                    cancel = await self.rest.cancel_order(action.order_id)
                    ev = AckEv(seq, True, order_id=action.order_id, latency_ns=cancel.latency_ns,
                               receipt_ns=cancel.received_ns)
            except MMError as exc:
                ev = AckEv(seq, False, error=str(exc), retryable=exc.retryable,
                           rate_limited=isinstance(exc, RateLimitedError), receipt_ns=self.clock_ns())
        self._put(ev)

    def _reduces(self, action: OrderAction) -> bool:
        """A cancel, or a place/amend whose fill moves the game's exposure toward flat."""
        if isinstance(action, Cancel):
            return True
        if self.worker is None:
            return False
        return reduces_exposure(self.game, self.worker.positions, *action.slot)

    async def _reconcile(self) -> None:
        """The exchange's view, queued for the worker (a failed read is logged and skipped)."""
        ev = await self._reconcile_event()
        if ev is not None:
            self._put(ev)

    async def _reconcile_event(self, *, initial: bool = False) -> ReconcileEv | None:
        """Read positions and resting orders: the event (None when a read failed; raised when
        ``initial``)."""
        reads_from = self.clock_ns()  # an order acked after this may be missing from the lists
        try:
            data_as_of = await self._user_data_as_of()  # first: the reads below are at least this fresh
            positions = await self.rest.get_positions(event_ticker=self.game.event_ticker)
            resting = await self.rest.get_orders(event_ticker=self.game.event_ticker, status="resting")
        except MMError as exc:
            log.warning("reconcile of %s failed: %s", self.game.event_ticker, exc)
            if initial:
                raise
            return None
        # no fill backfill here: :meth:`_backfill_later` (after the first quote, once the fill
        # channel is up) and the shutdown's cover the same fills, and on a shared read budget two GET /fills
        # before the first quote cost every other starting worker (bench/scale.py N = 50)
        return ReconcileEv({m: p.position for m, p in positions.items()}, tuple(resting),
                           self.clock_ns(), initial=initial, data_as_of_ns=data_as_of,
                           reads_from_ns=reads_from)

    async def _user_data_as_of(self) -> int | None:
        """The exchange's ``user_data_timestamp`` (ns), or None when it cannot be read (the
        worker then judges drift by persistence alone)."""
        try:
            return await self.rest.get_user_data_timestamp()
        except MMError as exc:
            log.debug("user_data_timestamp of %s unavailable: %s", self.game.event_ticker, exc)
            return None

    async def _backfill_fills(self) -> None:
        """Fills the exchange reports that a previous run may not have journaled (natural ids:
        the ingest keeps one copy)."""
        assert self.journal is not None
        now = self.clock_ns()
        for market in self.game.markets:
            for f in await self.rest.get_fills(ticker=market):
                self.journal.append({"kind": "fill", "id": f.fill_id, "worker_id": self.cfg.worker_id,
                                     "order_id": f.order_id, "market": f.market, "side": f.side,
                                     "price": f.price, "count": f.count, "fee": f.fee,
                                     "is_taker": f.is_taker, "exchange_ns": f.ts_ns,
                                     "receipt_ns": now, "backfill": True}, now)

    async def _backfill_later(self) -> None:
        """Once the fill channel is up, backfill the fills a previous run may not have journaled
        and any between the start-up reconcile and the subscription (natural ids dedupe; the
        shutdown backfills once more). Half a reconcile interval in (≥ 2 s): the journal can
        wait, and its reads then no longer queue ahead of other workers' start-up reads on a
        shared budget (50 workers starting together on Basic: 100 reads, ~6 s of the budget)."""
        await asyncio.sleep(max(2.0, self.cfg.reconcile_interval_ns / 2 / NS))
        with contextlib.suppress(MMError):
            await self._backfill_fills()

    async def _cancel_all(self, req: CancelAllVerified) -> None:
        try:
            self.report.kill = await cancel_until_flat(self.rest, self.game.event_ticker,
                                                       deadline_s=self.cancel_deadline_s)
        finally:
            await self._reconcile()
            if req.then_exit:
                self.report.exit_reason = self.report.exit_reason or req.reason
                self._exit.set()
                self._put(_WAKE)

    # --- the order group ---------------------------------------------------------------------

    async def _create_group(self) -> tuple[str | None, str]:
        """A new order group, tried ``group_create_attempts`` times with doubling waits from
        ``group_retry_s``: (its id, "") or (None, why it failed)."""
        assert self.order_group_contracts
        delay, why = self.group_retry_s, ""
        for attempt in range(1, self.group_create_attempts + 1):
            try:
                return await self.rest.create_order_group(self.order_group_contracts * CONTRACT), ""
            except MMError as exc:
                why = f"creation failed {attempt} time(s): {exc}"
                log.warning("%s: order group %s", self.game.event_ticker, why)
            if attempt < self.group_create_attempts:
                await asyncio.sleep(delay)
                delay *= 2
        return None, why

    async def _restore_group(self, req: RestoreOrderGroup, *, delay_s: float | None = None) -> None:
        """Reset the triggered group (or create a new one) after ``group_reset_delay_s`` (the
        venue's 15-s fill window; the reconcile the worker asked for runs meanwhile), retrying
        every ``group_retry_max_s`` until it works; then the worker may quote again."""
        if self._group_restoring:
            return
        self._group_restoring = True
        recreate = req.recreate or self._group_id is None
        try:
            await asyncio.sleep(self.group_reset_delay_s if delay_s is None else delay_s)
            while True:
                if recreate:
                    gid, why = await self._create_group()
                    if gid is not None:
                        self._group_id = gid
                        self._put(OrderGroupEv("ready", gid, "recreated", self.clock_ns()))
                        return
                else:
                    try:
                        assert self._group_id is not None
                        await self.rest.reset_order_group(self._group_id)
                    except MMError as exc:
                        why = f"reset failed: {exc}"
                        recreate = True  # e.g. the group is gone: make a new one
                    else:
                        self._put(OrderGroupEv("ready", self._group_id, "reset", self.clock_ns()))
                        return
                log.warning("%s: order group still missing (%s); retrying in %.0f s",
                            self.game.event_ticker, why, self.group_retry_max_s)
                await asyncio.sleep(self.group_retry_max_s)
        finally:
            self._group_restoring = False

    def _on_group_update(self, ev: kws.OrderGroupUpdate) -> None:
        """The venue triggered or deleted *our* group: it cancelled the group's orders."""
        if ev.order_group_id != self._group_id or ev.event_type not in ("triggered", "deleted"):
            return
        log.warning("%s: order group %s %s by the exchange", self.game.event_ticker,
                    ev.order_group_id, ev.event_type)
        self._put(OrderGroupEv(ev.event_type, ev.order_group_id,
                               f"the exchange reports it {ev.event_type}", ev.receipt_ns))

    async def _refresh_theo(self, reason: str) -> None:
        log.info("%s: asking for a fresh theo (%s)", self.game.event_ticker, reason)
        try:
            await self.theo.refresh(reason)
        except MMError as exc:
            log.warning("%s: theo refresh request failed: %s", self.game.event_ticker, exc)

    # --- feeds -------------------------------------------------------------------------------

    async def _pump_ws(self) -> None:
        assert self._ws is not None
        async for ev in self._ws.events():
            if isinstance(ev, kws.OrderUpdate) and (ev.status != "resting" or ev.remaining <= 0):
                self.rest.forget_order(ev.order_id)  # done: its pre-signed pools go
            if isinstance(ev, kws.OrderGroupUpdate):
                self._on_group_update(ev)
                continue
            mapped = _map_ws(ev)
            if mapped is not None:
                self._put(mapped)

    async def _poll_theo(self) -> None:
        """New theo snapshots, and ``mm kill``'s halt flags (``<halt_dir>/<event>`` or ``ALL``),
        checked at once and then every ``theo_poll_s``; logs changes of what the worker waits for."""
        while True:
            if self._halt_flag() is not None:
                self._put(StopEv("halt flag set by mm kill"))
            self._read_theo()
            self.status()
            await asyncio.sleep(self.theo_poll_s)

    def _read_theo(self) -> None:
        """Queue the published snapshot when it is new; remember why it is unusable if it is."""
        try:
            snap = self.theo.latest()
            if snap is not None and snap.as_of_ns != self._theo_seen:
                ev = self._theo_event(snap)
                self._theo_seen = snap.as_of_ns
                self._put(ev)
            self._theo_problem = None
        except MMError as exc:
            self._theo_problem = str(exc)

    def _halt_flag(self) -> Path | None:
        if self.halt_dir is None:
            return None
        for name in (self.game.event_ticker, "ALL"):
            if (self.halt_dir / name).exists():
                return self.halt_dir / name
        return None

    # --- the account ledger ------------------------------------------------------------------

    async def _account_sync(self, *, direct: bool = False, final: bool = False,
                            nothing_resting: bool = False) -> None:
        """Publish this run's entry, read the others' and hand a changed view to the worker
        (``direct``: handled at once, as at start-up; else queued)."""
        assert self.account is not None and self.worker is not None
        now = self.clock_ns()
        entry = entry_for(self.worker, now, pid=self.account.pid, host=self.account.host,
                          final=final, nothing_resting=nothing_resting)
        view = await asyncio.to_thread(self.account.exchange, entry, now)
        if view.stale and (self._account_view is None or view.stale != self._account_view.stale):
            log.warning("%s: counting the last exposure of stale ledger entries (worker gone?): %s",
                        self.game.event_ticker, ", ".join(view.stale))
        if view == self._account_view or final:
            return
        self._account_view = view
        if direct:
            self._process(self.worker.handle(AccountEv(view, now), self.clock_ns()))
        else:
            self._put(AccountEv(view, now))

    async def _account_loop(self) -> None:
        """Every ``account_poll_s``, and soon after a decision that sent orders or a fill."""
        failures = 0
        while True:
            self._account_wake.clear()
            try:
                await self._account_sync()
            except Exception as exc:  # noqa: BLE001 - logged; the last view stays in force
                failures += 1
                if failures % 60 == 1:
                    log.warning("account ledger sync failed (%d in a row): %r", failures, exc)
            else:
                failures = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._account_wake.wait(), timeout=self.account_poll_s)
            await asyncio.sleep(0.05)  # at most ~20 publishes a second

    # --- status ------------------------------------------------------------------------------

    def status(self) -> WorkerStatus:
        """What the worker is doing and waiting for (cheap: O(markets + live orders), two
        ``stat`` calls). Logs at INFO when ``waiting_for`` changed since the last call."""
        now = self.clock_ns()
        w = self.worker
        waiting = describe_waiting(self.game.event_ticker, w, now, theo_path=self.theo.path,
                                   halt_flag=self._halt_flag(), theo_problem=self._theo_problem,
                                   finished=self._finished)
        if not self._waiting_known or self._waiting != waiting:
            self._waiting, self._waiting_known = waiting, True
            if waiting is None:
                log.info("%s: %s", self.game.event_ticker,
                         "run ended" if self._finished else "quoting (nothing to wait for)")
            else:
                log.info("%s: waiting for %s", self.game.event_ticker, waiting)
        if w is None:
            return WorkerStatus(self.game.event_ticker, "STOPPED" if self._finished else "STARTING",
                                waiting, None, None, {}, {}, self.report.fills, 0, (),
                                self.game.start_ns, now, self.report.exit_reason)
        reasons = tuple(sorted(t.value for t in w.ks.active_triggers))
        if w.ks.state != "ACTIVE" and w.ks.history:
            last = w.ks.history[-1].reason  # "TRIGGER: why" replaces the bare trigger name
            reasons = tuple(r for r in reasons if not last.startswith(f"{r}:")) + (last,)
        theo = dict(zip(self.game.markets, w.theo, strict=True)) if w.theo is not None else None
        return WorkerStatus(self.game.event_ticker, "STOPPED" if self._finished else w.ks.state,
                            waiting, theo, w.last_theo_ns if theo else None, _quotes(w),
                            dict(w.positions), self.report.fills, w.pnl_money(), reasons,
                            self.game.start_ns, now, self.report.exit_reason, w.marks()[1])

    async def _refill_presigned(self) -> None:
        """Idle-time RSA work keeps the hot path free: top up the REST client's pre-signed
        pools every ``presign_refill_s`` (the signing runs in the presigner's thread; headers
        taken by writes are also replaced by a background refill shortly after each take).
        A failure is logged (the first of a streak, then every 60th) and never ends the task:
        requests then sign live."""
        failures = 0
        while True:
            await asyncio.sleep(self.presign_refill_s)
            try:
                await self.rest.refill_presigned()
            except Exception as exc:  # noqa: BLE001 - logged; live signing still works
                failures += 1
                if failures % 60 == 1:
                    log.warning("refill of pre-signed headers failed (%d in a row): %r",
                                failures, exc)
            else:
                failures = 0

    def _presign_live(self) -> None:
        """Pre-signed amend/cancel pools for every order the worker holds live — after a
        reconcile, which may have adopted orders the REST client never saw acked."""
        if self.worker is None:
            return
        for oid in list(self.worker.live):
            try:
                self.rest.presign_order(oid)
            except MMError as exc:
                log.debug("no pre-signed pools for %s: %s", oid, exc)

    def _theo_event(self, snap: TheoSnapshot) -> TheoEv:
        return TheoEv(snap.probs_for(self.game.markets), snap.uncertainty_for(self.game.markets),
                      snap.as_of_ns, snap.source, confidence=snap.confidence)

    # --- plumbing ----------------------------------------------------------------------------

    def _drain(self) -> None:
        """Hand every event still queued (late fills, acks) to the worker and the journal."""
        if self.worker is None:
            return
        while not self._queue.empty():
            ev = self._queue.get_nowait()
            if ev is _TIMER or ev is _WAKE or isinstance(ev, _JournalFailed):
                continue
            with contextlib.suppress(Exception):
                out = self.worker.handle(ev, self.clock_ns())
                out.actions.clear()  # shutting down: the verified cancel-all follows
                out.requests.clear()
                self._process(out)

    def _put(self, ev: Any) -> None:
        self._queue.put_nowait(ev)

    def _write_journal(self) -> None:
        """Write the buffered records (no fsync) and rotate a segment that is old enough."""
        assert self.journal is not None
        buf, self._journal_buf = self._journal_buf, []
        for rec, at in buf:
            self.journal.append_batch((rec,), at, sync=False)
        self.journal.maybe_rotate(self.clock_ns())

    def _journal_due(self) -> None:
        """The market-data records' fsync bound came: the writer fsyncs what waits."""
        self._journal_timer = None
        self._journal_urgent = True
        self._journal_wake.set()

    async def _journal_writer(self) -> None:
        """After each decision's sends: its records written, then one fsync in a thread for all
        written so far. A journal failure stops the run as it did when journaling was inline
        (the run loop raises it: the worker halts and cancels everything)."""
        assert self.journal is not None
        try:
            while True:
                # a plain wait (no wait_for: 3.11's can swallow the shutdown's cancel when the
                # wake lands in the same turn, and the shutdown then waits for this task forever)
                await self._journal_wake.wait()
                self._journal_wake.clear()
                self._write_journal()
                urgent, self._journal_urgent = self._journal_urgent, False
                unsynced = self.journal.synced_records != self.journal.appended_records
                if unsynced and not urgent:
                    if self._journal_lazy_since is None:  # market data only: fsync'd by the timer
                        self._journal_lazy_since = time.monotonic_ns()
                        self._journal_timer = asyncio.get_running_loop().call_later(
                            JOURNAL_LAZY_SYNC_NS / NS, self._journal_due)
                    continue
                self._journal_lazy_since = None
                if self._journal_timer is not None:
                    self._journal_timer.cancel()
                    self._journal_timer = None
                if not unsynced:
                    continue
                handle = self.journal.start_sync()
                if handle is None:
                    continue
                fd, count = handle
                error: OSError | None = None
                try:
                    await asyncio.to_thread(_fsync_and_close, fd)
                except OSError as exc:
                    error = exc
                self.journal.finish_sync(count, error)
        except JournalError as exc:
            self._put(_JournalFailed(exc))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("worker task failed: %r", task.exception())

    async def _shutdown(self) -> None:
        """Whatever ended the run: stop feeds, cancel everything and verify, close the journal."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._drain()
        if self.journal is not None:
            with contextlib.suppress(JournalError):  # a broken journal: the crash said so
                self._write_journal()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            kill = await cancel_until_flat(self.rest, self.game.event_ticker,
                                           deadline_s=self.cancel_deadline_s)
            self.report.kill = self.report.kill or kill
            if self.journal is not None:
                with contextlib.suppress(MMError):
                    await self._backfill_fills()  # the last fills, if any raced the stop
        finally:
            if self.account is not None and self.worker is not None:
                with contextlib.suppress(Exception):  # the last word: nothing of ours rests
                    await self._account_sync(final=True, nothing_resting=bool(
                        self.report.kill is not None and not self.report.kill.after))
            if self.worker is not None:
                self.report.final_state = self.worker.ks.state
                self.report.positions = dict(self.worker.positions)
                self.report.pnl_money = self.worker.pnl_money()
            if self.journal is not None:
                with contextlib.suppress(JournalError):
                    self._write_journal()
                self.journal.close(self.clock_ns())


def _fsync_and_close(fd: int) -> None:
    """In a thread: the thread owns the duplicate descriptor, so a cancelled waiter cannot
    close it (or let its number be reused) before the fsync ran."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _map_ws(ev: Any) -> Any:
    """Venue adapter events → worker events."""
    if isinstance(ev, kws.BookUpdated):
        return BookEv(ev.market, ev.book, ev.exchange_ns, ev.receipt_ns)  # type: ignore[arg-type]
    if isinstance(ev, kws.BookStale):
        return BookStaleEv(tuple(ev.markets), str(ev.reason))
    if isinstance(ev, kws.Fill):
        return FillEv(ev.trade_id, ev.order_id, ev.market, ev.side, ev.price, ev.count, ev.fee,
                      ev.is_taker, ev.post_position, ev.exchange_ns, ev.receipt_ns, ev.client_order_id)
    if isinstance(ev, kws.OrderUpdate):
        return OrderEv(ev.order_id, ev.client_order_id, ev.market, ev.side, ev.price, ev.remaining,
                       ev.filled, ev.status, ev.exchange_ns, ev.receipt_ns)
    if isinstance(ev, kws.Lifecycle):
        return LifecycleEv(ev.market, ev.event_type)
    if isinstance(ev, kws.Trade):
        return TradeEv(ev.market, ev.price, ev.count, ev.taker_side, ev.exchange_ns, ev.receipt_ns)
    if isinstance(ev, kws.Connected):
        return ConnEv(True)
    if isinstance(ev, kws.Disconnected):
        return ConnEv(False, str(ev.reason))
    return None
