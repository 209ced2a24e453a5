"""Value types of the local exchange's matching engine (:mod:`mmcore.sim.engine`).

Everything the engine hands out is one of these: requests in, order records, fills, trades,
reference data, position and settlement records, and the events the WebSocket layer renders.

Units (see :mod:`mmcore.units`): every ``price`` is an ``int`` in $0.0001 ("price units",
``PRICE_ONE`` = $1.00) and, unless a field says ``no_price``, a **YES** price; every money field
(costs, fees, balances, P&L) is an ``int`` in the same $0.0001 units; every count, position,
volume or limit is an ``int`` in centi-contracts (``CONTRACT`` = 1 contract); every time is an
``int`` of nanoseconds since the epoch (``*_ns``).

Book sides are V2 / YES-denominated: ``"bid"`` buys YES at ``price``; ``"ask"`` sells YES at
``price``, which is the same as buying NO at ``PRICE_ONE − price``. Positions are one signed YES
number per user and market: positive holds YES, negative holds NO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, Union

from mmcore.fees import FeeSchedule
from mmcore.orders import Side
from mmcore.ticks import TickGrid
from mmcore.units import CONTRACT

TimeInForce = Literal["good_till_canceled", "immediate_or_cancel", "fill_or_kill"]
SelfTradePrevention = Literal["taker_at_cross", "maker"]
MarketStatus = Literal["unopened", "active", "paused", "closed", "determined", "settled"]
OrderStatus = Literal["resting", "canceled", "executed"]
MarketResult = Literal["yes", "no"]
BookSideName = Literal["yes", "no"]
LifecycleType = Literal[
    "created", "activated", "deactivated", "close_date_updated", "determined", "settled"
]
OrderGroupEventType = Literal["created", "triggered", "reset", "deleted", "limit_updated"]

TIME_IN_FORCE: tuple[str, ...] = ("good_till_canceled", "immediate_or_cancel", "fill_or_kill")
SELF_TRADE_PREVENTION: tuple[str, ...] = ("taker_at_cross", "maker")


class EngineError(Exception):
    """A refusal by the simulated exchange, which the REST layer turns into an HTTP error body.

    ``status`` is the HTTP status (400, 404, 409…), ``code`` a Kalshi-like error code
    (``invalid_order``, ``available_balance_too_low``, ``MARKET_INACTIVE``…), ``details`` the
    optional sub-reason (``"post only cross"``). Nothing changed in the engine when one is raised.
    """

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, str]:
        """Kalshi's ``ErrorResponse`` shape: ``{"code", "message", "details"}``."""
        return {"code": self.code, "message": self.message, "details": self.details or ""}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EngineError):
            return NotImplemented
        return (self.status, self.code, self.message, self.details) == (
            other.status, other.code, other.message, other.details)

    def __hash__(self) -> int:
        return hash((self.status, self.code, self.message, self.details))

    def __repr__(self) -> str:
        extra = f", details={self.details!r}" if self.details else ""
        return f"EngineError({self.status}, {self.code!r}, {self.message!r}{extra})"

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}" + (
            f" ({self.details})" if self.details else "")


# --- reference data ------------------------------------------------------------------------------


@dataclass
class Series:
    """A series (e.g. ``KXNBAGAME``); its fee schedule applies to every market under it."""

    ticker: str
    title: str = ""
    fee_type: str = "quadratic_with_maker_fees"
    fee_multiplier: float = 1.0
    category: str = "Sports"
    tags: tuple[str, ...] = ()

    @property
    def fee_schedule(self) -> FeeSchedule:
        return FeeSchedule.from_series(self.fee_type, self.fee_multiplier)


@dataclass
class Event:
    """An event (one game); a two-team game holds two mutually exclusive markets."""

    event_ticker: str
    series_ticker: str
    title: str = ""
    sub_title: str = ""
    start_ns: int | None = None
    mutually_exclusive: bool = True


@dataclass
class Market:
    """One binary market and its running statistics (prices YES, counts centi-contracts)."""

    ticker: str
    event_ticker: str
    title: str
    yes_sub_title: str
    grid: TickGrid
    open_ns: int
    close_ns: int
    status: MarketStatus
    created_ns: int = 0
    last_price: int | None = None
    """YES price of the latest trade."""
    volume: int = 0
    """Centi-contracts traded since creation."""
    open_interest: int = 0
    """Centi-contracts of YES outstanding (= of NO outstanding)."""
    result: MarketResult | None = None
    determined_ns: int | None = None
    settled_ns: int | None = None
    rules_secondary: str = ""
    """Settlement rules beyond "this team wins" (tie, cancellation); empty: the generic text."""


# --- orders --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderRequest:
    """A V2 create-order request (``POST /portfolio/events/orders``), already parsed to units.

    ``price`` is the YES price in price units on the market's grid; ``count`` centi-contracts
    (> 0); ``expiration_ns`` only with ``good_till_canceled`` and in the future.
    """

    user_id: str
    ticker: str
    side: Side
    price: int
    count: int
    time_in_force: TimeInForce = "good_till_canceled"
    client_order_id: str | None = None
    post_only: bool = False
    reduce_only: bool = False
    self_trade_prevention: SelfTradePrevention = "taker_at_cross"
    order_group_id: str | None = None
    cancel_order_on_pause: bool = False
    expiration_ns: int | None = None


@dataclass
class Order:
    """The engine's record of one order; everything outside the engine sees snapshot copies.

    ``initial_count`` is the size asked for (after a reduce-only cap; an amend sets it to the new
    total), ``filled + remaining <= initial_count`` (the difference was canceled). Fill costs are
    in the order's own leg: a bid pays ``price × count`` for YES, an ask ``(1 − price) × count``
    for NO (money, price units, floored per fill). ``reduced_by`` (centi-contracts): on the value
    a cancel or decrease returns, what that call took off the book (0 when nothing was left); on
    other snapshots, the latest such reduction or the canceled rest of an IOC/FoK.
    ``last_update_reason``: ``filled``, ``partially_filled``, ``amended``, ``decreased``,
    ``canceled`` (by the user), ``immediate_or_cancel``, ``fill_or_kill``,
    ``self_trade_prevention``, ``reduce_only``, ``order_group_triggered``,
    ``order_group_deleted``, ``market_paused``, ``market_reactivated``, ``market_closed`` or
    ``expired``.
    """

    order_id: str
    user_id: str
    ticker: str
    side: Side
    price: int
    initial_count: int
    remaining: int
    filled: int
    status: OrderStatus
    client_order_id: str | None
    created_ns: int
    updated_ns: int
    time_in_force: TimeInForce
    post_only: bool
    reduce_only: bool
    self_trade_prevention: SelfTradePrevention
    order_group_id: str | None
    cancel_order_on_pause: bool
    expiration_ns: int | None
    taker_fill_cost: int = 0
    maker_fill_cost: int = 0
    taker_fees: int = 0
    maker_fees: int = 0
    last_update_reason: str | None = None
    reduced_by: int = 0

    @property
    def is_resting(self) -> bool:
        return self.status == "resting"

    def __copy__(self) -> Order:
        """A snapshot (every field is immutable, so shallow is whole); ~5x faster than the
        generic ``copy.copy`` path, which the engine takes for every order event."""
        snap = object.__new__(Order)
        snap.__dict__.update(self.__dict__)
        return snap


@dataclass(frozen=True)
class Fill:
    """One side of one trade, as its owner sees it (``GET /portfolio/fills``, WS ``fill``).

    ``side`` is the book side of THIS order; ``price`` the YES price; ``fee`` the net fee of this
    fill (trade fee + rounding − rebate, price units); ``post_position`` the owner's signed
    position after the fill (centi-contracts). ``fill_id`` equals ``trade_id`` as on Kalshi.
    The balance moves by the exact amount; only when a fractional count at a sub-cent price makes
    the exact fee finer than $0.0001 is ``fee`` that amount rounded up.
    """

    trade_id: str
    order_id: str
    user_id: str
    ticker: str
    side: Side
    price: int
    count: int
    is_taker: bool
    fee: int
    ts_ns: int
    post_position: int
    client_order_id: str | None

    @property
    def fill_id(self) -> str:
        return self.trade_id


@dataclass(frozen=True)
class Trade:
    """A public trade (``GET /markets/trades``, WS ``trade``); ``taker_side`` is a book side."""

    trade_id: str
    ticker: str
    price: int
    count: int
    taker_side: Side
    ts_ns: int


@dataclass(frozen=True)
class PlaceResult:
    """What a create or amend did: the order after it (a snapshot) and the fills it made now."""

    order: Order
    fills: tuple[Fill, ...]

    @property
    def fill_count(self) -> int:
        """Centi-contracts filled by this call."""
        return sum(f.count for f in self.fills)

    @property
    def remaining(self) -> int:
        return self.order.remaining

    @property
    def average_fill_price(self) -> Fraction | None:
        """Exact count-weighted YES price of this call's fills (price units); None if no fill."""
        n = self.fill_count
        return Fraction(sum(f.price * f.count for f in self.fills), n) if n else None

    @property
    def fees_paid(self) -> int:
        """Net fees of this call's fills (price units)."""
        return sum(f.fee for f in self.fills)

    @property
    def average_fee_paid(self) -> Fraction | None:
        """Fee per contract of this call's fills (price units per contract); None if no fill."""
        n = self.fill_count
        return Fraction(self.fees_paid * CONTRACT, n) if n else None


@dataclass
class OrderGroup:
    """An order group: a rolling 15-second cap on matched contracts (centi-contracts).

    When more than ``contracts_limit`` centi-contracts of its orders match within 15 s (or the
    limit is lowered below the current window), the group triggers: its resting orders are
    canceled and new orders naming it are refused until :meth:`Engine.reset_order_group`.
    ``order_ids`` lists the group's orders that still rest; ``matched_in_window`` is the window's
    sum as of the group's latest fill (centi-contracts).
    """

    order_group_id: str
    user_id: str
    contracts_limit: int
    created_ns: int
    triggered: bool = False
    order_ids: tuple[str, ...] = ()
    matched_in_window: int = 0


# --- accounts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PositionRecord:
    """A user's position in one unsettled market (``GET /portfolio/positions``).

    ``position`` signed centi-contracts (+YES / −NO); ``cost`` what the open position cost in its
    own leg (average-cost basis, price units); ``realized_pnl`` closed profit excluding fees;
    ``fees_paid`` net fees; ``volume`` centi-contracts traded.
    """

    ticker: str
    position: int
    cost: int
    realized_pnl: int
    fees_paid: int
    volume: int
    last_updated_ns: int


@dataclass(frozen=True)
class Settlement:
    """A user's settlement of one market (``GET /portfolio/settlements``); money in price units."""

    ticker: str
    event_ticker: str
    market_result: MarketResult
    yes_count: int
    yes_total_cost: int
    no_count: int
    no_total_cost: int
    revenue: int
    """Payout: $1 per winning contract."""
    settled_ns: int
    fee_cost: int = 0


# --- events (outbox for the WebSocket layer) -----------------------------------------------------


@dataclass(frozen=True)
class BookDelta:
    """A change of one aggregated level (WS ``orderbook_delta``).

    ``side="yes"``: the YES-bid level at YES ``price``; ``side="no"``: the NO-bid level at NO
    ``price`` (our ask at ``PRICE_ONE − price``). ``delta`` signed centi-contracts. ``user_id`` and
    ``client_order_id`` name the owner of the resting order that changed (Kalshi shows
    ``client_order_id`` only to that owner).
    """

    ticker: str
    side: BookSideName
    price: int
    delta: int
    ts_ns: int
    user_id: str | None = None
    client_order_id: str | None = None


@dataclass(frozen=True)
class TradeEvent:
    trade: Trade


@dataclass(frozen=True)
class FillEvent:
    fill: Fill


@dataclass(frozen=True)
class OrderEvent:
    """An order changed (WS ``user_orders``): created, filled, amended, decreased or canceled."""

    order: Order


@dataclass(frozen=True)
class PositionEvent:
    """WS ``market_positions``: the user's position after a fill or settlement."""

    user_id: str
    ticker: str
    position: int
    position_cost: int
    realized_pnl: int
    fees_paid: int
    volume: int


@dataclass(frozen=True)
class LifecycleEvent:
    """WS ``market_lifecycle_v2``; ``extra`` holds type-specific fields (``open_ns``…)."""

    ticker: str
    event_type: LifecycleType
    ts_ns: int
    result: MarketResult | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderGroupEvent:
    """WS ``order_group_updates``; ``contracts_limit`` (centi) on created / limit_updated."""

    user_id: str
    order_group_id: str
    event_type: OrderGroupEventType
    contracts_limit: int | None
    ts_ns: int


EngineEvent = Union[
    BookDelta, TradeEvent, FillEvent, OrderEvent, PositionEvent, LifecycleEvent, OrderGroupEvent
]
"""Anything :meth:`Engine.drain_events` returns (``Event`` is the game-event reference record)."""
