"""The per-game quoting engine, sans I/O: events in → order actions, requests and a deadline out.

One :class:`GameWorker` quotes one game (two or three mutually exclusive markets) from one signed
inventory. It owns no sockets and reads no clock: every call takes ``now_ns``. The async driver
(:mod:`mmcore.worker.driver`) turns WebSocket messages, REST replies and timers into the events
below, executes what comes back, and calls :meth:`GameWorker.on_timer` at the returned deadline.
Live trading, the local exchange and the backtest all run this same object.

Rules of this file:

- **Slots and locks.** A slot is (market, side). An action sent for a slot locks it until its
  acknowledgement (or ``ack_timeout_ns``) arrives; a locked slot is left out of the next
  reconcile, so no two operations on one order overlap and inventory cannot run away.
- **Acks are not truth.** A cancel ack moves the order to ``cancelling``: it no longer occupies
  its slot, but it still counts as resting for exposure until the exchange confirms it (a
  ``user_orders`` update, or a REST order list without it). If a later REST list still shows it
  resting, the cancel lied: the order returns to ``live`` and is cancelled again.
- **Fills are truth for positions**; REST positions may lag. A position drift must be seen on two
  consecutive reconciles before it counts (then the exchange's position is adopted and the kill
  switch sees the drift: REDUCING, or HALTED when large). A reconcile whose REST data is older
  (``user_data_timestamp``) than the newest fill applied is not evidence either way.
- **Every decision passes the risk gate**, whose refusals are journaled, never raised. A decision
  refused in full exactly as the last journaled one (same reasons, same orders) is not journaled
  again; the next decision that is journaled carries the count (``repeated_refusals``).
- **HALTED** (kill switch, game start, stop request) cancels every order and asks the driver to
  verify on the exchange that nothing rests (:class:`CancelAllVerified`).

Units: prices int price units ($0.0001, YES terms), counts int centi-contracts, money int price
units (YES-terms cash), probabilities float, times int ns.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

from mmcore.book import BookTop, MarketBook, window_of
from mmcore.orders import (Amend, Cancel, LiveOrder, OrderAction, Place, Quote, ReconcileParams, Side, Slot,
                           reconcile)
from mmcore.quoting.config import DEFAULT_QUOTE_PARAMS
from mmcore.game import GameSpec, directional_inventory
from mmcore.quoting.memo import Memo
from mmcore.quoting.quotes import GameState, QuoteParams, desired_quotes
from mmcore.risk.gate import GateConfig, GateResult, GateState, RecentPlace, check
from mmcore.strategies.base import Strategy, StrategyInput
from mmcore.risk.barrier import URGENT, BarrierConfig, Lot
from mmcore.risk.barrier import update as barrier_update
from mmcore.risk.jumps import (JumpConfig, JumpMonitor, combined, depth_mid, observe_stream,
                               observe_trade)
from mmcore.quoting.guards import AdverseGuards, GuardConfig
from mmcore.risk.killswitch import DEFAULT_CONFIG, KillSwitch, KillSwitchConfig, RiskMetrics, Trigger, evaluate, trip
from mmcore.risk.limits import DEFAULT_LIMIT_CONFIG, GameLimit, LimitConfig, game_limit
from mmcore.risk.limits import OtherGames, cap_quotes, cap_quotes_ranged
from mmcore.risk.exposure import GamePosition
from mmcore.risk.account import AccountView
from mmcore.units import CONTRACT, PRICE_ONE

NS = 1_000_000_000


# --- events in --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookEv:
    """A market's book changed (or was rebuilt). ``book`` is the venue adapter's live book."""

    market: str
    book: MarketBook
    exchange_ns: int | None
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class BookStaleEv:
    markets: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class FillEv:
    trade_id: str
    order_id: str
    market: str
    side: Side
    price: int
    count: int
    fee: int
    is_taker: bool
    post_position: int | None
    exchange_ns: int | None
    receipt_ns: int
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderEv:
    """An order update from the exchange (WS ``user_orders``)."""

    order_id: str
    client_order_id: str | None
    market: str
    side: Side
    price: int
    remaining: int
    filled: int
    status: str
    exchange_ns: int | None
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class AckEv:
    """The REST reply to an action this worker sent (``action_seq`` as returned by the worker)."""

    action_seq: int
    ok: bool
    order_id: str | None = None
    remaining: int | None = None
    filled: int | None = None
    error: str | None = None
    retryable: bool = False
    rate_limited: bool = False
    latency_ns: int = 0
    receipt_ns: int = 0


@dataclass(frozen=True, slots=True)
class TheoEv:
    probs: tuple[float, ...]
    uncertainty: tuple[float, ...] | None
    as_of_ns: int
    source: str = ""
    confidence: float | None = None
    """The snapshot's confidence in [0, 1] (widens quotes when low); None = not known."""


@dataclass(frozen=True, slots=True)
class ReconcileEv:
    """The exchange's own view (REST): positions and resting orders for this game.

    ``initial`` adopts everything without treating differences as drift (start-up, restart).
    ``data_as_of_ns``: the exchange's ``user_data_timestamp`` read before these reads (exchange
    time, ns) — the REST data reflects fills up to then at least; None when unknown.
    """

    positions: Mapping[str, int]
    resting: tuple[LiveOrder, ...]
    as_of_ns: int
    initial: bool = False
    cash: int | None = None
    data_as_of_ns: int | None = None
    reads_from_ns: int | None = None
    """Worker time (the driver's clock) when these reads were started; None: ``as_of_ns``. An
    order this worker learned of (ack, ``user_orders``) after it can be missing from the lists
    without being gone: the list may have been read before the order reached the exchange."""


@dataclass(frozen=True, slots=True)
class ConnEv:
    ws_connected: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LifecycleEv:
    market: str
    event_type: str


@dataclass(frozen=True, slots=True)
class StopEv:
    reason: str


@dataclass(frozen=True, slots=True)
class OrderGroupEv:
    """The game's order group (the venue's fill-velocity backstop) changed.

    ``kind``: ``ready`` (created, reset or recreated: quoting may go on), ``create_failed`` (no
    group after the driver's retries), ``triggered`` or ``deleted`` (the venue cancelled every
    order in the group; a triggered group refuses new orders until reset). Anything but
    ``ready`` stops new orders (cancels still go) until a ``ready`` arrives."""

    kind: str
    group_id: str | None
    reason: str
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class AccountEv:
    """The account as the other worker processes published it (:mod:`mmcore.risk.account`):
    the other games' exposure, against the aggregate and per-sport caps, and the day's P&L of
    every other run, for the daily loss limit and this game's drawdown peak."""

    view: AccountView
    receipt_ns: int = 0


@dataclass(frozen=True, slots=True)
class TradeEv:
    """A public trade print in one of the game's markets (WS ``trade``; ours included): YES
    ``price`` in price units, ``count`` centi-contracts, ``taker_side`` "bid" = the taker bought
    YES. Feeds the jump detector's trade stream and the order-flow guard."""

    market: str
    price: int
    count: int
    taker_side: Side
    exchange_ns: int | None
    receipt_ns: int


Event = Union[BookEv, BookStaleEv, FillEv, OrderEv, AckEv, TheoEv, ReconcileEv,
              ConnEv, LifecycleEv, StopEv, AccountEv, OrderGroupEv, TradeEv]


# --- requests out -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CancelAllVerified:
    """Cancel everything for the game and keep cancelling until the exchange's order list shows
    nothing resting (bounded); ``then_exit`` when the worker is done with the game."""

    reason: str
    then_exit: bool


@dataclass(frozen=True, slots=True)
class ReconcileNow:
    reason: str


@dataclass(frozen=True, slots=True)
class ResyncBooks:
    markets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RefreshTheo:
    reason: str


@dataclass(frozen=True, slots=True)
class RestoreOrderGroup:
    """Reset the triggered order group, or create a new one when ``recreate`` (it was deleted);
    the driver answers with an :class:`OrderGroupEv`."""

    recreate: bool
    reason: str


Request = Union[CancelAllVerified, ReconcileNow, ResyncBooks, RefreshTheo, RestoreOrderGroup]


@dataclass(slots=True)
class Output:
    actions: list[tuple[int, OrderAction]] = field(default_factory=list)
    """(action_seq, action) to send now; the slot stays locked until ``AckEv(action_seq)``."""
    requests: list[Request] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    next_deadline_ns: int = 0


# --- configuration ----------------------------------------------------------------------------

WORKER_KILLSWITCH = dataclasses.replace(
    DEFAULT_CONFIG,
    # Theo comes from a 30-minute odds pull (plus on-demand pulls), not a streaming feed: it is
    # stale when a pull was missed, not after the trigger table's 60 s for streamed odds. In the
    # last 10 minutes (lineups, scratches) it must be at most 5 minutes old: the worker asks for
    # per-game pulls itself (``near_start_refresh_fraction``) to stay inside that.
    stale_theo_ns=45 * 60 * NS,
    stale_theo_near_start_ns=5 * 60 * NS,
    near_start_window_ns=10 * 60 * NS,
)


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    worker_id: str
    quote: QuoteParams = DEFAULT_QUOTE_PARAMS
    killswitch: KillSwitchConfig = WORKER_KILLSWITCH
    gate: GateConfig = GateConfig()
    limits: LimitConfig = DEFAULT_LIMIT_CONFIG
    jump: JumpConfig = JumpConfig()
    barrier: BarrierConfig = BarrierConfig()
    """Triple barrier per market position (take-profit, stop-loss, time): a touched barrier
    quotes that market reduce-only (:meth:`GameWorker._apply_barriers`)."""
    guard: GuardConfig = GuardConfig()
    """Adverse-selection guards: per-side widen and stale-quote holds (:mod:`mmcore.quoting.guards`)."""
    reconcile: ReconcileParams = ReconcileParams()
    tick_ns: int = 1 * NS
    reconcile_interval_ns: int = 10 * NS
    ack_timeout_ns: int = 5 * NS
    cancel_confirm_ns: int = 1 * NS
    """A cancel acknowledged this long ago and not yet confirmed (no ``user_orders`` update, no
    order list without it) asks the exchange's order list again, and again each period: a lying
    ack is then found in ~1 s, not at the next periodic reconcile (tests/chaos G2, stale data)."""
    liquidity_window_price: int = 500
    """Others' size within this distance of the top counts as available liquidity (price units)."""
    theo_refresh_fraction: float = 0.6
    """Ask for a fresh odds pull when |inventory| passes this fraction of the hard limit."""
    theo_refresh_cooldown_ns: int = 300 * NS
    connectivity_grace_ns: int = 15 * NS
    """A WebSocket outage shorter than this only pulls quotes (books are stale); longer trips
    CONNECTIVITY (HALTED)."""
    limit_memory_ns: int = 60 * NS
    """INVENTORY_BREACH compares filled inventory with the largest hard limit of this window."""
    drift_confirm_ns: int = 10 * NS
    """A position drift counts only once it has lasted this long (and two reconciles): REST
    positions may lag fills by seconds, and reconciles asked for on demand can come ms apart."""
    latency_window_ns: int = 120 * NS
    """LATENCY judges the order-to-ack samples of this window (at most the last 200)."""
    soft_trigger_fraction: float = 1.0
    """INVENTORY_SOFT (REDUCING: cancel the adding side, alert) fires when filled inventory is
    over this fraction of the *current* hard bound Q (quoting-math §6.2: "beyond Q: cancel the
    adding side, alert"); INVENTORY_BREACH (HALTED) only past the bound it held in the last
    ``limit_memory_ns`` and past inherited inventory. Q_soft = Q/2 is the quoting's R3 bound."""
    near_start_refresh_fraction: float = 0.5
    """Inside the kill switch's near-start window, ask for a fresh theo once theo is older than
    this fraction of ``stale_theo_near_start_ns`` (so the tighter limit is met, not tripped)."""


# --- the engine -------------------------------------------------------------------------------


class GameWorker:
    """One game's quoting engine. Feed it with :meth:`handle` and :meth:`on_timer`."""

    def __init__(self, game: GameSpec, cfg: WorkerConfig, now_ns: int, *,
                 strategy: Strategy | None = None) -> None:
        self.game = game
        self.cfg = cfg
        self.strategy = strategy
        """Who decides the desired quotes: None is ours (:func:`desired_quotes`); a baseline of
        :mod:`mmcore.strategies` (for the backtest's comparisons) is called with the same inputs.
        Everything after the decision — barriers, gate, reconcile, locks — is the same."""
        self.books: dict[str, MarketBook | None] = {m: None for m in game.markets}
        self.stale: set[str] = set(game.markets)
        self.market_open: dict[str, bool] = {m: True for m in game.markets}
        self.theo: tuple[float, ...] | None = None
        self.uncertainty: tuple[float, ...] | None = None
        self.confidence: float | None = None
        self.last_theo_ns: int | None = None
        self.positions: dict[str, int] = {m: 0 for m in game.markets}
        self.cash = 0
        self.cost: dict[str, int] = {m: 0 for m in game.markets}
        """YES-terms money paid for each market's open position (for average cost)."""
        self.fees_paid = 0
        self.live: dict[str, LiveOrder] = {}
        self.cancelling: dict[str, LiveOrder] = {}
        self.live_since_ns: dict[str, int] = {}
        """Order in ``live`` → when this worker learned it rests (place ack, ``user_orders``):
        a reconcile whose reads began before that must not drop it (:class:`ReconcileEv`)."""
        self.cancel_check_ns: dict[str, int] = {}
        """Order in ``cancelling`` → when to ask the exchange's list if it is still there."""
        self.pending: dict[int, tuple[OrderAction, int]] = {}
        self.unknown: dict[int, OrderAction] = {}
        """Actions whose ack timed out: slot stays locked until the next REST reconcile."""
        self.locks: dict[Slot, int] = {}
        self.seen_fills: set[str] = set()
        self.ks = KillSwitch.start(now_ns)
        self.jumps: dict[str, JumpMonitor] = {m: JumpMonitor() for m in game.markets}
        self.lots: dict[str, Lot | None] = {m: None for m in game.markets}
        """Each market's open position under the triple barrier (None when flat)."""
        self.guards = AdverseGuards(game.markets, cfg.guard)
        self.order_ack_ns: deque[tuple[int, int]] = deque(maxlen=200)
        """(when, order-to-ack latency) (quoting-math §6.2): per place/amend, the venue's ack time
        for the attempt that landed; an ack that never came counts at ``ack_timeout_ns`` ("any
        ack missing"). 429s are RATE_LIMIT's, not latency. Samples older than
        ``latency_window_ns`` drop out: a worker REDUCING on LATENCY sends no adding orders, so
        without ageing no new ack could ever clear it."""
        self.last_frame_ns: dict[str, int | None] = {m: None for m in game.markets}
        """Receipt time of the last book frame (snapshot or delta) per market: per-market
        staleness comes from frames actually received, not from the socket being up."""
        self.probed_ns: dict[str, int] = {}
        """When each silent market was last probed (a snapshot asked for)."""
        self.rate_limited: deque[int] = deque(maxlen=100)
        self.recent_places: deque[RecentPlace] = deque(maxlen=64)
        self.limit_history: deque[tuple[int, int]] = deque()
        """(time, hard limit) with strictly decreasing limits: the window's maximum is first."""
        self.ws_connected = False
        self.ws_down_since_ns: int | None = now_ns
        self.rest_failures = 0
        self.last_reconcile_ns = now_ns
        self.drift_seen = 0
        self.drift_since_ns = now_ns
        self.position_drift = 0
        self.last_fill_ns: int | None = None
        """Exchange time (receipt time when absent) of the newest fill applied."""
        self.last_theo_refresh_ns: int | None = None
        self.last_near_start_refresh_ns: int | None = None
        self.inherited = 0
        """Directional inventory adopted at start (restart) beyond what this run traded: it
        cannot trip INVENTORY_BREACH (this run did not breach anything); it only ratchets down
        as the position is reduced (centi-contracts)."""
        self.adopted_unmarked = False
        """Positions were adopted before any theo: re-mark their cost at the first theo."""
        self.adopted_positions: dict[str, int] = {}
        self.adopted_cost: dict[str, int] = {}
        self.adopted_cash_known = False
        self.action_seq = 0
        self.decision_seq = 0
        self.last_refused: tuple[tuple[Any, ...], ...] = ()
        """What the last journaled decision had refused (see :meth:`_requote`)."""
        self.refusals_repeated = 0
        """Decisions since then that were refused the same way in full, and not journaled."""
        self.stopping: str | None = None
        self.group_problem: str | None = None
        """Why the game's order group cannot back our orders (None: it can, or none is used):
        while set, no new order goes out (see :class:`OrderGroupEv`)."""
        self.group_events = 0
        self.cancel_all_requested = False
        self.exit_requested = False
        """A CancelAllVerified with ``then_exit`` has been asked for."""
        self.started_ns = now_ns
        self.client_id_prefix = f"{zlib.crc32(cfg.worker_id.encode()):08x}{now_ns % 10**12:012d}"
        """Unique per worker start, so client_order_ids never repeat across restarts."""
        self.run_id = f"{cfg.worker_id}:{self.client_id_prefix}"
        """Prefix of counter-based journal ids: a restarted worker never reuses an id, so the
        idempotent ingest (natural ids) cannot drop its records as duplicates."""
        self.account: AccountView | None = None
        """The other runs of the account (None until the driver's ledger reports)."""
        self.day_base_pnl = 0
        """``pnl_money()`` when the current trading day began during this run (0 before)."""
        self.dirty = True
        self.quote_memo: Memo | None = Memo()
        self.jump_levels_memo: tuple[int, tuple[JumpMonitor, ...], dict[str, str]] | None = None
        """(now_ns and each jump monitor, their combined levels): see :meth:`_jump_levels`."""
        self.limit_kept: tuple[int, WorkerConfig, GameLimit] | None = None
        self.latency_kept: tuple[tuple[tuple[int, int], ...], list[int]] | None = None
        """(``order_ack_ns`` as a tuple, its latencies sorted) of the last risk evaluation."""
        """(others' liquidity, config, limit) of the last :meth:`limit` (``game_limit`` is pure)."""
        """Recent results of the quoting's pure steps (model, fees, sizing) by their inputs: a
        book event that moves none of them reuses them (:mod:`mmcore.quoting.memo`)."""

    # --- entry points ------------------------------------------------------------------------

    def handle(self, ev: Event, now_ns: int) -> Output:
        """Apply one event, then requote if anything relevant changed."""
        return self.handle_batch((ev,), now_ns)

    def handle_batch(self, events: Sequence[Event], now_ns: int) -> Output:
        """Apply events that arrived together (a burst the driver drained from its queue) in
        order, each with its risk evaluation as in :meth:`handle`, then requote **once**: orders
        decided for a book the next delta already replaced would only be sent to be amended again.
        ``handle_batch((ev,), t)`` is ``handle(ev, t)``."""
        out = Output()
        limit: GameLimit | None = None
        for ev in events:
            getattr(self, f"_on_{type(ev).__name__}")(ev, now_ns, out)
            limit = self._evaluate_risk(now_ns, out)
        if self.dirty and limit is not None:
            self._requote(now_ns, out, limit)
        out.next_deadline_ns = self._deadline(now_ns)
        return out

    def on_timer(self, now_ns: int) -> Output:
        """Timers: ack timeouts, periodic reconcile, kill-switch clocks, game start."""
        out = Output()
        for seq, (action, sent_ns) in list(self.pending.items()):
            if now_ns - sent_ns >= self.cfg.ack_timeout_ns:
                # The order may or may not exist: keep its slot locked (and count a place as
                # resting for risk) until the exchange's own list answers.
                del self.pending[seq]
                self.unknown[seq] = action
                if isinstance(action, (Place, Amend)):
                    self.order_ack_ns.append((now_ns, self.cfg.ack_timeout_ns))  # "any ack missing"
                out.journal.append(self._rec("error", f"ack-timeout:{self.run_id}:{seq}", now_ns,
                                             reason=f"no ack for action {seq} in time"))
                out.requests.append(ReconcileNow(f"ack timeout for action {seq}"))
                self.dirty = True
        if now_ns - self.last_reconcile_ns >= self.cfg.reconcile_interval_ns:
            self.last_reconcile_ns = now_ns
            out.requests.append(ReconcileNow("periodic"))
        elif self.cancel_check_ns:
            due = [oid for oid, t in self.cancel_check_ns.items()
                   if oid in self.cancelling and now_ns >= t]
            for oid in [oid for oid in self.cancel_check_ns if oid not in self.cancelling]:
                del self.cancel_check_ns[oid]
            if due:
                for oid in due:
                    self.cancel_check_ns[oid] = now_ns + self.cfg.cancel_confirm_ns
                out.requests.append(ReconcileNow(f"cancel of {due[0]} acknowledged, unconfirmed"))
        self._requote(now_ns, out, self._evaluate_risk(now_ns, out))
        out.next_deadline_ns = self._deadline(now_ns)
        return out

    @property
    def done(self) -> bool:
        """True once the worker has stopped and nothing of ours is known to rest."""
        return (self.stopping is not None and not self.live and not self.cancelling
                and not self.pending and not self.unknown)

    # --- event handlers ----------------------------------------------------------------------

    def _on_BookEv(self, ev: BookEv, now_ns: int, out: Output) -> None:
        if ev.market not in self.books:
            return
        self.books[ev.market] = ev.book
        if ev.book.stale:
            self.stale.add(ev.market)
        else:
            self.stale.discard(ev.market)
        self.last_frame_ns[ev.market] = max(self.last_frame_ns[ev.market] or 0, ev.receipt_ns)
        self.probed_ns.pop(ev.market, None)
        top = ev.book.top()
        # the jump detector and the guards watch the depth mid of *others'* orders: a 1-lot top
        # level or our own requote is not a move (issue 11: 23 of 24 trips were flicker)
        depth = int(self.cfg.jump.mid_depth_contracts * CONTRACT)
        mine = [(o.side, o.price, o.remaining) for o in self.live.values() if o.market == ev.market]
        kept = getattr(ev.book, "depth_mid", None)  # (the book keeps it between changes)
        fair = kept(depth, mine) if kept is not None else depth_mid(ev.book.bids, ev.book.asks, depth, mine)
        if fair is not None:
            self.jumps[ev.market], jv = observe_stream(
                self.jumps[ev.market], "mid", fair / PRICE_ONE, now_ns, self.cfg.jump)
            jump = self.guards.jump_refresh(ev.market, "mid", jv, now_ns)
            if jump is not None:  # a jump: re-pull this game's odds (guards rate-limit it)
                out.requests.append(RefreshTheo(jump))
        self.guards.observe_mid(ev.market, fair, now_ns)
        out.journal.append(self._rec(
            "book_top", f"{ev.market}:{ev.receipt_ns}", now_ns, market=ev.market, bid=top.bid,
            bid_size=top.bid_size, ask=top.ask, ask_size=top.ask_size, exchange_ns=ev.exchange_ns,
            receipt_ns=ev.receipt_ns))
        self.dirty = True

    def _on_BookStaleEv(self, ev: BookStaleEv, now_ns: int, out: Output) -> None:
        self.stale.update(m for m in ev.markets if m in self.books)
        out.requests.append(ResyncBooks(tuple(m for m in ev.markets if m in self.books)))
        self.dirty = True

    def _on_TradeEv(self, ev: TradeEv, now_ns: int, out: Output) -> None:
        if ev.market not in self.jumps:
            return
        sweep = self.guards.observe_trade(ev.market, ev.count, ev.taker_side, now_ns, ev.price)
        if sweep is not None:  # a sweep holds that side at once; the odds may know already
            out.requests.append(RefreshTheo(sweep))
        self.jumps[ev.market], jv = observe_trade(self.jumps[ev.market], ev.taker_side,
                                                  ev.price / PRICE_ONE, now_ns, self.cfg.jump)
        jump = self.guards.jump_refresh(ev.market, "trade", jv, now_ns)
        if jump is not None:
            out.requests.append(RefreshTheo(jump))
        self.dirty = True

    def _on_OrderGroupEv(self, ev: OrderGroupEv, now_ns: int, out: Output) -> None:
        self.group_events += 1
        was = self.group_problem
        if ev.kind == "ready":
            self.group_problem = None
            if was is None:
                return  # the normal start: nothing to record
        else:
            self.group_problem = f"order group {ev.group_id or '-'} {ev.kind}: {ev.reason}"
        if ev.kind in ("triggered", "deleted"):
            # the venue cancelled every order in the group: none of ours counts as live now; the
            # reconcile puts back any the exchange still shows (e.g. adopted from another group)
            for oid in list(self.live):
                self.cancelling[oid] = self.live.pop(oid)
            out.requests.append(ReconcileNow(f"order group {ev.kind}"))
            out.requests.append(RestoreOrderGroup(ev.kind == "deleted", self.group_problem))
        out.journal.append(self._rec("error", f"group:{self.run_id}:{self.group_events}", now_ns,
                                     where="order_group", error_type=ev.kind,
                                     reason=self.group_problem
                                     or f"order group {ev.group_id} ready ({ev.reason}) after: {was}"))
        self.dirty = True

    def _on_FillEv(self, ev: FillEv, now_ns: int, out: Output) -> None:
        if ev.trade_id in self.seen_fills or ev.market not in self.positions:
            return
        self.seen_fills.add(ev.trade_id)
        at = ev.exchange_ns if ev.exchange_ns is not None else ev.receipt_ns
        self.last_fill_ns = at if self.last_fill_ns is None else max(self.last_fill_ns, at)
        signed = ev.count if ev.side == "bid" else -ev.count
        before = self.positions[ev.market]
        after = before + signed
        if ev.post_position is not None and ev.post_position != after:
            after = ev.post_position  # the exchange's number after this fill wins
        money = ev.price * ev.count // CONTRACT
        self.cash += -money if ev.side == "bid" else money
        self.cash -= ev.fee
        self.fees_paid += ev.fee
        self.cost[ev.market] = _updated_cost(self.cost[ev.market], before, after, signed, money)
        self.positions[ev.market] = after
        order = self.live.get(ev.order_id) or self.cancelling.get(ev.order_id)
        if order is not None:
            rest = order.remaining - ev.count
            book = self.live if ev.order_id in self.live else self.cancelling
            if rest <= 0:
                book.pop(ev.order_id)
            else:
                book[ev.order_id] = dataclasses.replace(order, remaining=rest, filled=order.filled + ev.count)
        out.journal.append(self._rec(
            "fill", ev.trade_id, now_ns, order_id=ev.order_id, market=ev.market, side=ev.side,
            price=ev.price, count=ev.count, fee=ev.fee, is_taker=ev.is_taker,
            post_position=after, exchange_ns=ev.exchange_ns, receipt_ns=ev.receipt_ns))
        self.guards.observe_fill(ev.market, ev.side, ev.price, ev.count, now_ns)
        self.dirty = True

    def _on_OrderEv(self, ev: OrderEv, now_ns: int, out: Output) -> None:
        if ev.market not in self.positions:
            return
        if ev.status != "resting" or ev.remaining <= 0:
            self.live.pop(ev.order_id, None)
            self.cancelling.pop(ev.order_id, None)
        elif ev.order_id in self.cancelling:
            self.cancelling[ev.order_id] = _as_live(ev, self.cancelling[ev.order_id].placed_ns)
        else:
            prev = self.live.get(ev.order_id)
            placed = prev.placed_ns if prev and prev.price == ev.price else (ev.exchange_ns or now_ns)
            self.live[ev.order_id] = _as_live(ev, placed)
            if prev is None:
                self.live_since_ns[ev.order_id] = now_ns
        self.dirty = True

    def _on_AckEv(self, ev: AckEv, now_ns: int, out: Output) -> None:
        entry = self.pending.get(ev.action_seq)
        if entry is None:
            late = self.unknown.pop(ev.action_seq, None)
            if late is None:
                return
            entry = (late, now_ns)  # a late ack still tells us what happened
            self.pending[ev.action_seq] = entry
            # Fix (found by tests/test_account_faults.py): the ack_timeout_ns that stood in for
            # this missing ack is replaced by what the ack says — the venue's round trip of the
            # attempt that landed (appended below), or a 429 (RATE_LIMIT's, not latency). In an
            # 8 s storm our own retry backoff and limiter queue held acks past the timeout; the
            # stand-ins kept the p95 at 5 s for the next 200 acks, so the worker stayed
            # REDUCING, quoting nothing, long after the storm. A late failure without a venue
            # latency (timeout, 5xx) keeps its stand-in.
            if isinstance(late, (Place, Amend)) and (ev.rate_limited or (ev.ok and ev.latency_ns)):
                stand_in = next((x for x in self.order_ack_ns if x[1] == self.cfg.ack_timeout_ns), None)
                if stand_in is not None:
                    self.order_ack_ns.remove(stand_in)
        action, sent_ns = entry
        self._release(ev.action_seq)
        if ev.rate_limited:
            self.rate_limited.append(now_ns)
        else:
            # Fix (found by tests/test_worker_faults.py::test_rate_limit_storm_*): a call that
            # failed on 429s has no venue latency (latency_ns 0); send→ack time is then our own
            # retry backoff and limiter wait (~3 s in a 3 s storm), which pushed the p95 over
            # the LATENCY limit and kept the worker REDUCING (not quoting) long after the storm.
            # 429s are measured by RATE_LIMIT instead.
            if isinstance(action, (Place, Amend)):
                self.order_ack_ns.append((now_ns, ev.latency_ns or max(0, now_ns - sent_ns)))
        # Fix (found by tests/test_worker_faults.py::test_rate_limit_storm_*): a 429 is the
        # venue answering "slow down", not a connectivity failure; counting it into the REST
        # failure streak (CONNECTIVITY, HALTED for good) let a 3 s 429 storm with four actions
        # in flight stop quoting for the rest of the game. 429s have their own trigger
        # (RATE_LIMIT, via ``rate_limited``, quoting-math §6.2 "message rate"); a rate-limited
        # failure leaves the 5xx/timeout streak as it was.
        if not ev.rate_limited:
            self.rest_failures = self.rest_failures + 1 if (ev.retryable and not ev.ok) else 0
        out.journal.append(self._rec(
            "ack", f"ack:{self.run_id}:{ev.action_seq}", now_ns, ok=ev.ok,
            order_id=ev.order_id, error=ev.error, latency_ns=ev.latency_ns))
        if isinstance(action, Place) and ev.ok and ev.order_id:
            remaining = action.quote.count if ev.remaining is None else ev.remaining
            if remaining > 0:
                q = action.quote
                self.live[ev.order_id] = LiveOrder(ev.order_id, action.client_order_id, q.market, q.side,
                                                   q.price, remaining, ev.filled or 0, now_ns)
                self.live_since_ns.setdefault(ev.order_id, now_ns)
        elif isinstance(action, Amend):
            old = self.live.get(action.order_id)
            if ev.ok and old is not None:
                # An amend reply's fill_count counts only fills caused by that call, not the
                # order's total; those fills also arrive as FillEv, which keeps ``filled``.
                filled = old.filled
                # the reply's remaining is as of the amend; a fill after it that reached us
                # first is already in ``filled`` (chaos G1 seed 1033: the stale 10 over 6 made
                # the next amend's +4 look like no change)
                remaining = action.count - filled if ev.remaining is None else min(
                    ev.remaining, action.count - filled)
                self.live[action.order_id] = dataclasses.replace(
                    old, price=action.price, remaining=remaining, filled=filled,
                    placed_ns=now_ns if action.price != old.price else old.placed_ns)
                if remaining <= 0:
                    self.live.pop(action.order_id)
            elif not ev.ok and old is not None and _filled_past(ev):
                # A fill raced the amend: the order has filled at least ``action.count`` (the
                # total we sent). Learn that now and let the next decision amend from it (or
                # find nothing left); the fills and user_orders updates on the wire correct
                # the rest. No REST round trip (issue 10 item 10).
                filled = max(old.filled, action.count)
                remaining = old.filled + old.remaining - filled
                if remaining > 0:
                    self.live[action.order_id] = dataclasses.replace(old, filled=filled,
                                                                     remaining=remaining)
                else:
                    self.live.pop(action.order_id)
            elif not ev.ok:
                out.requests.append(ReconcileNow(f"amend of {action.order_id} failed: {ev.error}"))
        elif isinstance(action, Cancel):
            # Fix (found by tests/test_worker_faults.py::test_rate_limit_storm_while_pulling_*):
            # only a successful cancel moves the order to ``cancelling`` (out of its slot). A
            # failed one (429 after retries, 5xx, timeout) left the order resting, yet it was
            # moved too, so the slot looked free and the next requote placed a second order
            # in it: two resting orders per slot on the exchange. It stays live now; the
            # reconcile below settles what really happened.
            order = self.live.pop(action.order_id, None) if ev.ok else None
            if order is not None:
                self.cancelling[action.order_id] = order  # an ack is not proof
                self.cancel_check_ns[action.order_id] = now_ns + self.cfg.cancel_confirm_ns
            if not ev.ok:
                out.requests.append(ReconcileNow(f"cancel of {action.order_id} failed: {ev.error}"))
        if not ev.ok:
            out.journal.append(self._rec("refusal", f"venue:{self.run_id}:{ev.action_seq}",
                                         now_ns, action=_action_dict(action), reason=ev.error))
        self.dirty = True

    def _on_TheoEv(self, ev: TheoEv, now_ns: int, out: Output) -> None:
        if len(ev.probs) != len(self.game.markets):
            out.journal.append(self._rec("error", f"theo:{ev.as_of_ns}", now_ns,
                                         reason=f"theo has {len(ev.probs)} outcomes"))
            return
        self.theo, self.uncertainty, self.last_theo_ns = ev.probs, ev.uncertainty, ev.as_of_ns
        self.confidence = ev.confidence
        if self.adopted_unmarked:
            self._mark_adopted(ev.probs)
        for m, p in zip(self.game.markets, ev.probs):
            self.jumps[m], _ = observe_stream(self.jumps[m], "theo", p, now_ns, self.cfg.jump)
            self.guards.observe_theo(m, p * PRICE_ONE, now_ns)  # releases caught-up sweeps
        out.journal.append(self._rec("theo", f"{self.game.event_ticker}:{ev.as_of_ns}", now_ns,
                                     probs=list(ev.probs), source=ev.source,
                                     uncertainty=list(ev.uncertainty or ())))
        self.dirty = True

    def _on_ReconcileEv(self, ev: ReconcileEv, now_ns: int, out: Output) -> None:
        self.last_reconcile_ns = now_ns
        for seq, action in list(self.unknown.items()):  # the exchange's list now answers
            del self.unknown[seq]
            if self.locks.get(action.slot) == seq:
                del self.locks[action.slot]
        exchange = {o.order_id: o for o in ev.resting if o.market in self.positions}
        for oid, order in exchange.items():
            if oid in self.cancelling:  # the cancel was acknowledged but not applied
                self.live[oid] = self.cancelling.pop(oid)
            elif oid not in self.live and not self._slot_locked(order.slot):
                self.live[oid] = order  # adopt (restart, or an order we lost track of)
        # Fix (found by tests/chaos G1, CHIPHI seed 1054): an order acknowledged while these
        # reads travelled may be missing from a list read before it reached the exchange.
        # Dropping it freed its slot while it rested: the next decision placed a second order
        # there and the gate, not knowing the first, let the worst case pass the hard limit.
        # Only an order known before the reads began is gone when the list lacks it.
        reads_from = ev.as_of_ns if ev.reads_from_ns is None else ev.reads_from_ns
        for oid in list(self.live):
            if (oid not in exchange and not self._slot_locked(self.live[oid].slot)
                    and self.live_since_ns.get(oid, -1) < reads_from):
                self.live.pop(oid)
        for oid in list(self.cancelling):
            if oid not in exchange and self.live_since_ns.get(oid, -1) < reads_from:
                self.cancelling.pop(oid)
        self.live_since_ns = {o: t for o, t in self.live_since_ns.items()
                              if o in self.live or o in self.cancelling}
        drift = max((abs(ev.positions.get(m, 0) - q) for m, q in self.positions.items()), default=0)
        # REST data older than a fill we applied says nothing about drift (Kalshi's portfolio
        # reads lag the engine): neither counted nor cleared
        lagging = (drift != 0 and not ev.initial and ev.data_as_of_ns is not None
                   and self.last_fill_ns is not None and ev.data_as_of_ns < self.last_fill_ns)
        if ev.initial or drift == 0:
            self.drift_seen = 0
            self.position_drift = 0
            if ev.initial:
                self._adopt_positions(ev)
        elif lagging:
            pass
        else:
            if self.drift_seen == 0:
                self.drift_since_ns = now_ns
            self.drift_seen += 1
            # Fix (found by tests/test_worker_faults.py::test_lagging_positions_*): "two
            # consecutive reconciles" alone let two on-demand reconciles (reconnect, failed
            # amend/cancel, ack timeout) a few ms apart inside the REST lag confirm a drift that
            # was only lag: the worker adopted the stale position and halted on
            # RECONCILE_DRIFT_LARGE. The drift must also have lasted drift_confirm_ns.
            if self.drift_seen >= 2 and now_ns - self.drift_since_ns >= self.cfg.drift_confirm_ns:
                self.position_drift = drift
                self.positions.update({m: ev.positions.get(m, 0) for m in self.positions})
        out.journal.append(self._rec(
            "reconcile", f"{self.cfg.worker_id}:rec:{now_ns}", now_ns, drift=drift,
            confirmed=self.position_drift, resting=len(exchange), initial=ev.initial,
            lagging=lagging))
        self.dirty = True

    def _adopt_positions(self, ev: ReconcileEv) -> None:
        """Start-up/restart: take the exchange's positions. Without a known cash figure the book
        is marked flat at theo (cost = position × theo) so drawdown counts from here; adopted
        before any theo, the cost is set at the first theo (:meth:`_mark_adopted`) and until
        then P&L marks the positions at that cost (flat). The adopted directional inventory is
        ``inherited``: above the limit it makes the worker REDUCING, never HALTED."""
        self.positions.update({m: ev.positions.get(m, 0) for m in self.positions})
        self.inherited = max(map(abs, directional_inventory(self.game.book, self.positions)))
        self.adopted_positions = dict(self.positions)
        marks = self.theo or tuple(0.5 for _ in self.game.markets)  # 0.5: provisional
        self.adopted_cost = {m: int(self.positions[m] * p * PRICE_ONE) // CONTRACT
                             for m, p in zip(self.game.markets, marks)}
        self.cost.update(self.adopted_cost)
        self.adopted_cash_known = ev.cash is not None
        self.cash = ev.cash if ev.cash is not None else -sum(self.cost.values())
        self.adopted_unmarked = self.theo is None and any(self.positions.values())

    def _mark_adopted(self, theo: tuple[float, ...]) -> None:
        """The first theo after positions were adopted without one: move their provisional
        0.5 cost (and the matching cash) to theo, so adoption is flat at theo, as it would
        have been with theo at hand, and P&L/drawdown count from there."""
        self.adopted_unmarked = False
        for m, p in zip(self.game.markets, theo):
            prov = self.adopted_cost.get(m, 0)
            new = int(self.adopted_positions.get(m, 0) * p * PRICE_ONE) // CONTRACT
            self.cost[m] += new - prov
            if not self.adopted_cash_known:
                self.cash -= new - prov

    def _on_ConnEv(self, ev: ConnEv, now_ns: int, out: Output) -> None:
        self.ws_connected = ev.ws_connected
        if ev.ws_connected:
            self.ws_down_since_ns = None
            # Fix (found by tests/test_worker_faults.py::test_ws_drop_*): user_orders and fill
            # messages sent while the socket was down are lost for good, so a cancel applied
            # during the outage was never confirmed: the order stayed in ``cancelling``, counted
            # as resting exposure, and the gate refused every new quote until the next periodic
            # reconcile (up to reconcile_interval_ns of no quotes after each reconnect). Ask the
            # exchange's own lists now instead.
            out.requests.append(ReconcileNow("ws connected: catch up on what the outage hid"))
        else:
            self.stale.update(self.game.markets)
            if self.ws_down_since_ns is None:
                self.ws_down_since_ns = now_ns
        self.dirty = True

    def _on_LifecycleEv(self, ev: LifecycleEv, now_ns: int, out: Output) -> None:
        if ev.market not in self.market_open:
            return
        if ev.event_type in ("deactivated", "closed", "determined", "settled", "close_date_updated"):
            self.market_open[ev.market] = False
        elif ev.event_type == "activated":
            self.market_open[ev.market] = True
            # reactivation cancels every resting order on Kalshi: forget ours, verify via REST
            for oid in [o for o, lo in self.live.items() if lo.market == ev.market]:
                self.cancelling[oid] = self.live.pop(oid)
            out.requests.append(ReconcileNow(f"{ev.market} reactivated"))
        if ev.event_type in ("determined", "settled", "close_date_updated") and self.stopping is None:
            self._stop(f"{ev.market} {ev.event_type}", now_ns, out)
        self.dirty = True

    def _on_StopEv(self, ev: StopEv, now_ns: int, out: Output) -> None:
        self._stop(ev.reason, now_ns, out)

    def _on_AccountEv(self, ev: AccountEv, now_ns: int, out: Output) -> None:
        prev, self.account = self.account, ev.view
        if prev is not None and prev.day != ev.view.day:
            # a new trading day during this run: its P&L and this game's peak start from here
            self.day_base_pnl = self.pnl_money()
            self.ks = dataclasses.replace(self.ks, peak_pnl_money=ev.view.game_peak_money)
        elif ev.view.game_peak_money > self.ks.peak_pnl_money:
            # a restarted worker's drawdown continues from the peak its earlier runs published
            self.ks = dataclasses.replace(self.ks, peak_pnl_money=ev.view.game_peak_money)
        if prev is None or prev.others != ev.view.others:
            self.dirty = True

    def day_pnl_money(self) -> int:
        """This run's P&L within the current trading day (money)."""
        return self.pnl_money() - self.day_base_pnl

    def game_day_pnl_money(self) -> int:
        """This game's P&L for the day: its earlier runs (from the ledger) plus this one."""
        before = self.account.game_day_pnl_before_money if self.account is not None else 0
        return before + self.day_pnl_money()

    # --- risk --------------------------------------------------------------------------------

    def _stop(self, reason: str, now_ns: int, out: Output) -> None:
        if self.stopping is None:
            self.stopping = reason
            before = self.ks.state
            self.ks = trip(self.ks, Trigger.MANUAL, now_ns, f"stop: {reason}", self.cfg.killswitch)
            out.journal.append(self._rec("state_change", f"{self.run_id}:stop", now_ns,
                                         from_state=before, to_state=self.ks.state,
                                         reason=f"stop: {reason}"))
        self.dirty = True

    @property
    def books_ready(self) -> bool:
        """Every market's book has arrived at least once: until then the liquidity-dependent
        limit is not known (it would read as the sport's floor) and judges nothing."""
        return all(b is not None for b in self.books.values())

    def limit(self) -> GameLimit:
        """The game's limits from *others'* liquidity near the top: our own resting orders are
        taken out of the book sizes (we cannot exit into ourselves, and quoting more must not
        raise the limit that sizes the quotes: issue 10 item 4)."""
        own: dict[tuple[str, str], dict[int, int]] = {}
        for orders in (self.live, self.cancelling):
            for o in orders.values():
                at = own.setdefault((o.market, o.side), {})
                at[o.price] = at.get(o.price, 0) + o.remaining
        # others' size within the window (runs on every event): each level counts max(0, n −
        # ours); summed as every positive level in the window (the book keeps that sum until a
        # change inside the window: MarketBook.window), then corrected at the few prices we rest
        # at (max(0, n − ours) − max(0, n)): the same sum without a lookup per level
        total = 0
        w = self.cfg.liquidity_window_price
        for m, book in self.books.items():
            if book is None or book.stale:
                continue
            kept = getattr(book, "window", None)
            for side in ("bid", "ask"):
                best, size = kept(side, w) if kept is not None else window_of(book, side, w)
                if best is None:
                    continue
                total += size
                mine = own.get((m, side))
                if mine:
                    levels = book.bids if side == "bid" else book.asks
                    for p, k in mine.items():
                        n = levels.get(p)
                        if n is not None and (p >= best - w if side == "bid" else p <= best + w):
                            total += max(0, n - k) - max(0, n)
        last = self.limit_kept  # the same liquidity (most events): the same limit
        if last is not None and last[0] == total and last[1] is self.cfg:
            return last[2]
        result = game_limit(self.game.sport_key, total, self.cfg.limits)
        self.limit_kept = (total, self.cfg, result)
        return result

    def marks(self) -> tuple[tuple[float, ...], str]:
        """Per-market marks (probability) for P&L and where they come from: theo; without theo,
        the book's mid; without either, the position's own average cost (a position then
        counts at what it cost, neither profit nor loss). Issue 10 item 11."""
        if self.theo is not None:
            return self.theo, "theo"
        marks: list[float] = []
        sources: set[str] = set()
        costs = self._avg_costs()
        for m in self.game.markets:
            book = self.books.get(m)
            mid = book.top().mid if book is not None and not book.stale else None
            if self.adopted_unmarked:
                mid = None  # adopted without theo: flat at cost until theo marks it
            if mid is not None:
                marks.append(mid / PRICE_ONE)
                sources.add("mid")
            else:
                marks.append(costs.get(m, 0.0) / PRICE_ONE)
                sources.add("cost")
        return tuple(marks), "+".join(sorted(sources))

    def pnl_money(self) -> int:
        """Cash plus positions at :meth:`marks` (money, price units)."""
        marks, _ = self.marks()
        return self.cash + sum(int(q * p * PRICE_ONE) // CONTRACT
                               for q, p in zip((self.positions[m] for m in self.game.markets), marks))

    def _evaluate_risk(self, now_ns: int, out: Output) -> GameLimit:
        """Measure, evaluate the kill switch, ask for what it needs; returns the game's limit
        (books and our orders do not change before the requote that follows: computed once)."""
        limit = self.limit()
        # INVENTORY_BREACH looks at filled inventory: resting orders are already kept inside the
        # (liquidity-dependent, so moving) limit by sizing and the gate; a shrinking limit must
        # pull quotes, not halt the game.
        inv = directional_inventory(self.game.book, self.positions)
        worst = max(map(abs, inv))
        self.inherited = min(self.inherited, worst)
        hard = soft = None
        if self.books_ready:  # limits wait for the books (a restart must not judge by the floor)
            hard = max(self._breach_limit(limit.hard_contracts, now_ns), self.inherited)
            soft = int(self.cfg.soft_trigger_fraction * limit.hard_contracts)
        while self.order_ack_ns and now_ns - self.order_ack_ns[0][0] > self.cfg.latency_window_ns:
            self.order_ack_ns.popleft()
        window = tuple(self.order_ack_ns)  # (sorted once per change of the window: up to 200
        kept = self.latency_kept          # acks, ~9 µs a sort, and most events bring none)
        if kept is not None and kept[0] == window:
            lat = kept[1]
        else:
            lat = sorted([v for _, v in window])
            self.latency_kept = (window, lat)
        freshest = self._check_silence(now_ns, out)
        metrics = RiskMetrics(
            pnl_money=self.game_day_pnl_money(),
            worst_case_exposure=worst,
            hard_limit=hard,
            soft_limit=soft,
            last_market_data_ns=freshest,
            last_theo_ns=self.last_theo_ns if self.last_theo_ns is not None else self.started_ns,
            latency_p95_ns=lat[int(0.95 * (len(lat) - 1))] if len(lat) >= 20 else None,
            latency_max_ns=lat[-1] if lat else None,
            ws_connected=self.ws_down_since_ns is None
            or now_ns - self.ws_down_since_ns < self.cfg.connectivity_grace_ns,
            rest_failure_streak=self.rest_failures,
            rate_limited_last_min=sum(1 for t in self.rate_limited if now_ns - t <= 60 * NS),
            position_drift=self.position_drift,
            jump=any(level == "pull" for level in self._jump_levels(now_ns).values()),
            game_start_ns=self.game.start_ns,
            day_pnl_money=(self.account.day_pnl_others_money + self.day_pnl_money()
                           if self.account is not None else None),
        )
        before = self.ks.state
        self.ks = evaluate(self.ks, metrics, now_ns, self.cfg.killswitch)
        if self.ks.state != before:
            last = self.ks.history[-1] if self.ks.history else None
            out.journal.append(self._rec(
                "state_change", f"{self.run_id}:ks:{len(self.ks.history)}:{now_ns}", now_ns,
                from_state=before, to_state=self.ks.state, reason=last.reason if last else "",
                triggers=sorted(t.value for t in self.ks.active_triggers)))
            self.dirty = True
        game_over = now_ns >= self.game.start_ns or self.stopping is not None
        # Fix (found by tests/test_worker_faults.py::test_http_5xx_outage_halts_*, and by a 429
        # storm before the rate-limit fix in _on_AckEv): a mid-game HALT (kill switch) asks for a
        # cancel-all without exit; a later stop request or the game start must still ask for
        # one *with* exit, else the driver never leaves its loop (it hung on SIGTERM/mm kill and
        # ran past game start). So ask again once, when the game is over.
        if self.ks.state == "HALTED" and (not self.cancel_all_requested
                                          or (game_over and not self.exit_requested)):
            self.cancel_all_requested = True
            self.exit_requested = game_over
            out.requests.append(CancelAllVerified(self.ks.history[-1].reason if self.ks.history else "halted",
                                                  then_exit=game_over))
            if now_ns >= self.game.start_ns and self.stopping is None:
                self.stopping = "game start"
        self._maybe_refresh_theo(limit, now_ns, out, inv)  # (positions unchanged since ``inv``)
        return limit

    def _check_silence(self, now_ns: int, out: Output) -> int:
        """Per-market staleness from frames received (Kalshi sends no per-market heartbeat, so a
        quiet book is probed): a market silent for a third of ``stale_market_data_ns`` gets a
        snapshot asked for (:class:`ResyncBooks`; again each third while silent); silent for
        the whole of it, it is stale (pulled) until a frame arrives. Returns the receipt time of
        the freshest market's last frame (the worker's start before any): STALE_MARKET_DATA
        fires when *every* market is silent, one silent market only pulls that market."""
        limit = self.cfg.killswitch.stale_market_data_ns
        probe = max(1, limit // 3)
        frames = [t for t in self.last_frame_ns.values() if t is not None]
        if self.ws_connected and self.stopping is None:
            for m, last in self.last_frame_ns.items():
                if last is None or self.books[m] is None:
                    continue  # no snapshot yet: the subscription asks for it
                age = now_ns - last
                if age > limit and m not in self.stale:
                    self.stale.add(m)
                    self.dirty = True
                    out.journal.append(self._rec("error", f"silent:{self.run_id}:{m}:{now_ns}",
                                                 now_ns, where="market_data", error_type="silent",
                                                 reason=f"{m}: no book frame for {age} ns"))
                if age > probe and now_ns - self.probed_ns.get(m, last) > probe:
                    self.probed_ns[m] = now_ns
                    out.requests.append(ResyncBooks((m,)))
        return max(frames) if frames else self.started_ns

    def _breach_limit(self, hard: int, now_ns: int) -> int:
        """The bound INVENTORY_BREACH checks filled inventory against: the largest hard limit in
        force over the last ``limit_memory_ns``. The limit follows book liquidity, so a sweep can
        shrink it under inventory that was acquired inside it; that must pull the adding side
        (sizing and the gate do), not halt the game."""
        history = self.limit_history  # a sliding-window maximum, O(1) amortised per event
        while history and history[-1][1] <= hard:
            history.pop()  # never the maximum again: ``hard`` is as large and newer
        history.append((now_ns, hard))
        while now_ns - history[0][0] > self.cfg.limit_memory_ns:
            history.popleft()
        return history[0][1]

    def _maybe_refresh_theo(self, limit: GameLimit, now_ns: int, out: Output,
                            inv: tuple[int, ...] | None = None) -> None:
        """``inv``: the game's directional inventory if the caller has it (else computed)."""
        self._maybe_refresh_near_start(now_ns, out)
        if inv is None:
            inv = directional_inventory(self.game.book, self.positions)
        if max(map(abs, inv)) <= self.cfg.theo_refresh_fraction * limit.hard_contracts:
            return
        if (self.last_theo_refresh_ns is not None
                and now_ns - self.last_theo_refresh_ns < self.cfg.theo_refresh_cooldown_ns):
            return
        self.last_theo_refresh_ns = now_ns
        out.requests.append(RefreshTheo(f"inventory {max(map(abs, inv)) / CONTRACT:.0f} contracts "
                                        f"past {self.cfg.theo_refresh_fraction:.0%} of the limit"))

    def _maybe_refresh_near_start(self, now_ns: int, out: Output) -> None:
        """Near the start the kill switch wants theo at most ``stale_theo_near_start_ns`` old;
        the scheduled pulls are 30 minutes apart, so ask for per-game pulls before it gets there."""
        ks = self.cfg.killswitch
        if (self.stopping is not None or self.last_theo_ns is None
                or not self.game.start_ns - ks.near_start_window_ns <= now_ns < self.game.start_ns):
            return
        every = int(self.cfg.near_start_refresh_fraction * ks.stale_theo_near_start_ns)
        age = now_ns - self.last_theo_ns
        if age < every:
            return
        if self.last_near_start_refresh_ns is not None and now_ns - self.last_near_start_refresh_ns < every:
            return
        self.last_near_start_refresh_ns = now_ns
        out.requests.append(RefreshTheo(f"theo {age / NS:.0f}s old, {(self.game.start_ns - now_ns) / NS:.0f}s "
                                        f"before the start (limit {ks.stale_theo_near_start_ns / NS:.0f}s)"))

    # --- quoting -----------------------------------------------------------------------------

    def _requote(self, now_ns: int, out: Output, limit: GameLimit) -> None:
        self.dirty = False
        trading = "HALTED" if self.stopping or self.group_problem else self.ks.state
        own = {m: [(o.side, o.price, o.remaining) for o in self.live.values() if o.market == m]
               for m in self.game.markets}
        tops: dict[str, BookTop] = {}
        for m, book in self.books.items():
            if book is not None and m not in self.stale:
                tops[m] = book.top(exclude=own[m])
        closed = frozenset(m for m, ok in self.market_open.items() if not ok)
        state = GameState(self.positions, self.cash, self._avg_costs(), tuple(self.live.values()))
        guard = self.guards.decide(now_ns, self.live.values(), self._jump_levels(now_ns))
        if self.strategy is None:
            dq = desired_quotes(self.game, tops, self.theo, state, limit, self.cfg.quote, now_ns,
                                uncertainty=self.uncertainty, trading=trading,
                                stale=frozenset(self.stale) | closed,
                                limit_config=self.cfg.limits, others=self._others(),
                                guard_widen=guard.widen, hold=guard.hold, confidence=self.confidence,
                                size_scale=guard.size, memo=self.quote_memo)
        else:
            dq = self.strategy.quote(StrategyInput(
                self.game, tops, self.theo, state, now_ns, limit=limit, trading=trading,
                stale=frozenset(self.stale) | closed, uncertainty=self.uncertainty,
                confidence=self.confidence, guard_widen=guard.widen, hold=guard.hold,
                limit_config=self.cfg.limits, others=self._others()))
        quotes, barrier_notes = self._apply_barriers(dq.quotes, tops, trading, now_ns)
        locks = self.locks  # (``_slot_locked``, inline: per event)
        free_quotes = [q for q in quotes if q.slot not in locks]
        # The sizing cap after any strategy (a baseline's quotes included), counting what is in
        # flight: a strategy cannot send an adding order the gate would refuse, nor spend headroom
        # an unacknowledged place or amend already holds (issue 11 task H).
        pinned = (*self.cancelling.values(), *self._in_flight())
        # a pure function of these inputs: memoised by them (a book event that moves none of them
        # reuses the cut), keyed on every field cap_size reads of each order
        # (of the limit only the max loss is in the key; the hard bound is the range the result
        # holds over: limits.cap_quotes_ranged, Memo.get_ranged)
        cap_key = (tuple(self.positions.items()), self.cash, _orders_key(self.live.values()),
                   tuple(free_quotes), limit.max_loss_money, self.cfg.quote.min_size,
                   _orders_key(pinned), self.cfg.limits, self._others(), self.game)
        cap_kw = {"min_size": self.cfg.quote.min_size, "pinned": pinned, "cfg": self.cfg.limits,
                  "others": self._others(), "sport": self.game.sport_key}

        def cap_args() -> tuple[Any, ...]:  # built on a miss only
            return (self.game.book, GamePosition(dict(self.positions), self.cash),
                    self.live.values(), free_quotes, limit)

        capped, cap_notes = (cap_quotes(*cap_args(), **cap_kw) if self.quote_memo is None else
                             self.quote_memo.get_ranged("cap", cap_key, limit.hard_contracts,
                                                        lambda: cap_quotes_ranged(*cap_args(), **cap_kw)))
        free_quotes = list(capped)
        free_live = [o for o in self.live.values() if o.slot not in locks]
        plan = reconcile(free_quotes, free_live, now_ns, self.cfg.reconcile,
                         id_prefix=self.client_id_prefix, id_seq=self.action_seq)
        guard_news = self.guards.changed(guard)  # a new guard verdict is journaled, orders or not
        if not plan.actions and not guard_news:
            return
        gate_state = GateState(self.game, self.ks, limit, self.theo, self.positions, self.cash,
                               (*self._risk_resting(), *self._in_flight()), self.market_open,
                               tuple(self.recent_places),
                               limit_config=self.cfg.limits, others=self._others())
        verdict = check(gate_state, plan.actions, now_ns, self.cfg.gate)
        verdict = _cancel_refused_amends(verdict)
        refused = tuple(_refusal_key(r.action, r.reason) for r in verdict.refused)
        if refused and not verdict.approved and refused == self.last_refused:
            # the same refusal as last time (e.g. on every book event while a limit binds):
            # counted, and written with the next decision that differs, not once per event
            self.refusals_repeated += 1
            self.action_seq = max(self.action_seq, plan.next_id_seq)
            return
        self.last_refused = refused
        repeated, self.refusals_repeated = self.refusals_repeated, 0
        self.decision_seq += 1
        out.journal.append(self._rec(
            "quote_decision", f"{self.run_id}:{self.decision_seq}", now_ns,
            quotes=[_quote_dict(q) for q in quotes], notes=[*dq.notes, *guard.notes, *barrier_notes],
            state=trading,
            theo=list(self.theo) if self.theo else None, repeated_refusals=repeated))
        for refusal in verdict.refused:
            out.journal.append(self._rec("refusal", f"gate:{self.run_id}:{self.decision_seq}:"
                                         f"{len(out.journal)}", now_ns, action=_action_dict(refusal.action),
                                         reason=refusal.reason))
        self.action_seq = max(self.action_seq, plan.next_id_seq)
        for action in verdict.approved:
            self.action_seq += 1
            seq = self.action_seq
            self.pending[seq] = (action, now_ns)
            self.locks[action.slot] = seq
            if isinstance(action, Place):
                q = action.quote
                self.recent_places.append(RecentPlace(now_ns, q.market, q.side, q.price, q.count))
            out.actions.append((seq, action))
            out.journal.append(self._rec("order_action", f"{self.run_id}:{seq}", now_ns,
                                         **_action_dict(action)))

    def _jump_levels(self, now_ns: int) -> dict[str, str]:
        """``combined`` jump level per market at ``now_ns``. The risk evaluation and the requote
        that follows it ask at the same instant with the same (immutable) monitors: kept by
        (``now_ns``, each monitor object) and reused. The caller must not change the dict."""
        monitors = tuple(self.jumps.values())
        kept = self.jump_levels_memo
        if (kept is not None and kept[0] == now_ns and len(kept[1]) == len(monitors)
                and all(a is b for a, b in zip(kept[1], monitors))):
            return kept[2]  # type: ignore[no-any-return]
        levels = {m: combined(self.jumps[m], now_ns, self.cfg.jump) for m in self.game.markets}
        self.jump_levels_memo = (now_ns, monitors, levels)
        return levels

    def _others(self) -> OtherGames:
        """The other games' use of the account's caps (nothing known: none)."""
        return self.account.others if self.account is not None else _NO_OTHERS

    def _apply_barriers(self, quotes: tuple[Quote, ...], tops: Mapping[str, BookTop], trading: str,
                        now_ns: int) -> tuple[list[Quote], list[str]]:
        """Triple barrier (quoting-math §6.3) on each market's position, marked at theo. A
        market whose lot touched a barrier is quoted reduce-only: its adding side goes, its
        reducing side is sized at most to the position; after a stop-loss or the time barrier
        the reducing side is also priced at theo or better for the taker (never crossing the
        book: post-only). Take-profit exits passively at the price quoting chose."""
        out = list(quotes)
        notes: list[str] = []
        for i, m in enumerate(self.game.markets):
            pos = self.positions[m]
            mark = self.theo[i] * PRICE_ONE if self.theo is not None else None
            before = self.lots[m]
            lot = self.lots[m] = barrier_update(before, pos, mark, now_ns, self.game.start_ns,
                                                self.cfg.barrier)
            if lot is None or lot.hit is None:
                continue
            if before is None or before.hit is None:
                notes.append(f"barrier {m} {lot.hit}: {lot.detail}")
            reducing: Side = "ask" if lot.sign > 0 else "bid"
            adding: Side = "bid" if lot.sign > 0 else "ask"
            out = [q for q in out if q.slot != (m, adding)]
            if trading == "HALTED" or self.theo is None or m in self.stale or not self.market_open[m]:
                continue
            have = next((q for q in out if q.slot == (m, reducing)), None)
            size = min(abs(pos), have.count if have else self.cfg.quote.clip)
            price = have.price if have else None
            if lot.hit in URGENT and mark is not None:
                price = _urgent_exit_price(self.game.grids[i], reducing, mark, tops.get(m), price)
            out = [q for q in out if q.slot != (m, reducing)]
            if price is not None and size >= self.cfg.quote.min_size:
                out.append(Quote(m, reducing, price, size))
                notes.append(f"barrier {m} {lot.hit}: reduce-only {reducing} {size} @ {price}")
        return out, notes

    def _risk_resting(self) -> tuple[LiveOrder, ...]:
        """Everything that could still fill: live, unconfirmed cancels, and places whose ack
        timed out (as pseudo-orders)."""
        maybe = tuple(LiveOrder(f"unknown:{seq}", a.client_order_id, a.quote.market, a.quote.side,
                                a.quote.price, a.quote.count, 0, 0)
                      for seq, a in self.unknown.items() if isinstance(a, Place))
        return (*self.live.values(), *self.cancelling.values(), *maybe)

    def _memo(self, step: str, key: Any, compute: Any) -> Any:
        """``compute()``, through :attr:`quote_memo` unless that is None (off)."""
        return compute() if self.quote_memo is None else self.quote_memo.get(step, key, compute)

    def _in_flight(self) -> tuple[LiveOrder, ...]:
        """What sent, unacknowledged actions may already rest on the exchange, as pseudo-orders:
        a pending place whole, and a pending (or timed-out) amend's increase over the order's
        known remainder, at the new price. The gate and the post-strategy cap count them: a
        decision on another slot while they travel must not spend the same headroom (before,
        9 % of a fixed-spread quoter's approved adding orders on the busy slate passed the hard
        limit that way; tests/test_strategy_limits.py)."""
        if not self.pending and not self.unknown:
            return ()  # (the usual book event: nothing in flight)
        out: list[LiveOrder] = []
        known = {o.client_order_id for o in (*self.live.values(), *self.cancelling.values())}
        for seq, a in (*((s, a) for s, (a, _) in self.pending.items()), *self.unknown.items()):
            if isinstance(a, Place) and seq in self.pending and a.client_order_id not in known:
                # (a place whose user_orders update came before its ack is live already)
                q = a.quote
                out.append(LiveOrder(f"pending:{seq}", a.client_order_id, q.market, q.side,
                                     q.price, q.count, 0, 0))
            elif isinstance(a, Amend):
                old = self.live.get(a.order_id)
                extra = a.count - old.filled - old.remaining if old is not None else 0
                if extra > 0:
                    out.append(LiveOrder(f"amend:{seq}", None, a.market, a.side, a.price, extra,
                                         0, 0))
        return tuple(out)

    def _avg_costs(self) -> dict[str, float]:
        return {m: abs(self.cost[m]) * CONTRACT / abs(q) for m, q in self.positions.items() if q}

    def _slot_locked(self, slot: Slot) -> bool:
        return slot in self.locks

    def _release(self, seq: int) -> None:
        action, _ = self.pending.pop(seq)
        if self.locks.get(action.slot) == seq:
            del self.locks[action.slot]

    def _deadline(self, now_ns: int) -> int:
        cfg = self.cfg  # (the earliest of these; one running minimum, no lists: every event)
        first = min(now_ns + cfg.tick_ns, self.last_reconcile_ns + cfg.reconcile_interval_ns)
        if self.pending:
            first = min(first, min(sent for _, sent in self.pending.values()) + cfg.ack_timeout_ns)
        for oid, t in self.cancel_check_ns.items():
            if t < first and oid in self.cancelling:
                first = t
        if self.ws_connected and self.stopping is None:
            # a silent market is pulled the moment it passes the staleness limit, not at the
            # next tick (up to tick_ns late: tests/chaos/test_g3_stale_data.py, silent feed)
            limit = cfg.killswitch.stale_market_data_ns
            for m, last in self.last_frame_ns.items():
                if last is not None and m not in self.stale and self.books[m] is not None:
                    first = min(first, last + limit + 1)
        if now_ns < self.game.start_ns:
            first = min(first, self.game.start_ns)
        return max(now_ns + 1, first)

    def _rec(self, kind: str, rec_id: str, now_ns: int, **fields: Any) -> dict[str, Any]:
        return {"kind": kind, "id": rec_id, "worker_id": self.cfg.worker_id, "ts_ns": now_ns, **fields}


# --- helpers ----------------------------------------------------------------------------------


_NO_OTHERS = OtherGames()
"""No other game known (one immutable value: asked for several times per requote)."""


def _updated_cost(cost: int, before: int, after: int, signed: int, money: int) -> int:
    """YES-terms cost basis of a market's position after a fill (average-cost accounting)."""
    if before == 0 or (before > 0) == (signed > 0):
        return cost + (money if signed > 0 else -money)  # opening or adding
    if after == 0 or (after > 0) != (before > 0):
        # closed (and maybe flipped): the remainder is opened at this fill's price
        return (money * abs(after) // abs(signed)) * (1 if after > 0 else -1) if after else 0
    return cost * abs(after) // abs(before)  # reducing keeps the average


def _orders_key(orders: Any) -> tuple[tuple[str, str, int, int], ...]:
    """(market, side, price, open count) of each order, in order: what sizing reads of them."""
    return tuple((o.market, o.side, o.price, o.remaining) for o in orders)


def _as_live(ev: OrderEv, placed_ns: int) -> LiveOrder:
    return LiveOrder(ev.order_id, ev.client_order_id, ev.market, ev.side, ev.price, ev.remaining,
                     ev.filled, placed_ns)


def _urgent_exit_price(grid: Any, side: Side, mark: float, top: BookTop | None,
                       quoted: int | None) -> int | None:
    """An exit priced at theo (``mark``, price units) or better for the taker, or the quoted
    price when that is already more aggressive; never crossing the other side (post-only)."""
    if side == "ask":
        at = grid.round_up(int(math.ceil(mark)))
        floor = grid.next_above(top.bid) if top is not None and top.bid is not None else None
        if at is not None and floor is not None:
            at = max(at, floor)
        at = at if at is not None else floor
        return at if quoted is None or at is None else min(quoted, at)
    at = grid.round_down(int(mark))
    cap = grid.next_below(top.ask) if top is not None and top.ask is not None else None
    if at is not None and cap is not None:
        at = min(at, cap)
    at = at if at is not None else cap
    return at if quoted is None or at is None else max(quoted, at)


def _filled_past(ev: AckEv) -> bool:
    """The venue refused an amend because the order's fills reached the total it was sent."""
    return "filled count" in (ev.error or "").lower()


def _cancel_refused_amends(verdict: GateResult) -> GateResult:
    """A refused amend must not leave the order it would have changed resting as it was: that
    order was sized for an older state (a bigger size, a price further from theo), which is why
    the quoting wanted to change it. Cancel it instead (cancels always pass the gate); the slot
    is quoted afresh on a later decision if the gate then allows it (issue 10 item 9)."""
    extra = [Cancel(r.action.order_id, r.action.market, r.action.side,
                    f"amend refused: {r.reason}")
             for r in verdict.refused if isinstance(r.action, Amend)]
    if not extra:
        return verdict
    return GateResult((*extra, *verdict.approved), verdict.refused)


def _quote_dict(q: Any) -> dict[str, Any]:
    return {"market": q.market, "side": q.side, "price": q.price, "count": q.count}


def _refusal_key(a: OrderAction, reason: str) -> tuple[Any, ...]:
    """What makes two refusals the same decision: the reason and the order it would have left,
    not the fresh ``client_order_id`` each attempt gets."""
    return (reason, *(v for k, v in _action_dict(a).items() if k != "client_order_id"))


def _action_dict(a: OrderAction) -> dict[str, Any]:
    if isinstance(a, Place):
        return {"action": "place", "client_order_id": a.client_order_id, **_quote_dict(a.quote)}
    if isinstance(a, Amend):
        return {"action": "amend", "order_id": a.order_id, "market": a.market, "side": a.side,
                "price": a.price, "count": a.count}
    return {"action": "cancel", "order_id": a.order_id, "market": a.market, "side": a.side,
            "reason": a.reason}
