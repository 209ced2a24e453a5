"""Kalshi WebSocket client, part 1 of 3: the typed events (and the wire → event conversions).

What :class:`~mmcore.venues.kalshi.ws_session.WsSession` hands to its consumer — :data:`WsEvent`
(book changes, our fills / orders / positions, lifecycle, connection changes), the live read-only
:class:`BookView` of a book, and :data:`SessionOutput` (an event or a command to send with
:func:`encode_command`). Pure: no I/O, no clock, no randomness. The session's rules (staleness,
seq, time stamps) are in :mod:`~mmcore.venues.kalshi.ws_session`; the driver that owns the socket
is :mod:`~mmcore.venues.kalshi.ws`, which re-exports every public name of this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal, Union

from mmcore.book import BookTop, MarketBook
from mmcore.models import iso_to_ns
from mmcore.units import parse_count_fp, parse_dollars
from mmcore.venues.kalshi import schema as ks

__all__ = [
    "BookView", "BookUpdated", "BookStale", "BookResynced", "Fill", "OrderUpdate",
    "PositionUpdate", "Lifecycle", "OrderGroupUpdate", "Trade", "Connected", "Disconnected", "WsEvent",
    "SessionOutput", "StaleReason", "encode_command",
]

_MS = 1_000_000
_S = 1_000_000_000


# --- events ---------------------------------------------------------------------------------


class BookView:
    """Read-only, **live** view of one :class:`~mmcore.book.MarketBook` (YES terms).

    It reflects later updates; copy what must not change (``dict(view.bids)``).
    """

    __slots__ = ("_book",)

    def __init__(self, book: MarketBook) -> None:
        self._book = book

    @property
    def ticker(self) -> str:
        return self._book.ticker

    @property
    def stale(self) -> bool:
        return self._book.stale

    @property
    def bids(self) -> Mapping[int, int]:
        """YES bids: price units → centi-contracts."""
        return MappingProxyType(self._book.bids)

    @property
    def asks(self) -> Mapping[int, int]:
        """YES asks (NO bids mirrored): price units → centi-contracts."""
        return MappingProxyType(self._book.asks)

    @property
    def version(self) -> int:
        """:attr:`~mmcore.book.MarketBook.version`: changes whenever the levels do."""
        return self._book.version

    @property
    def exchange_ns(self) -> int | None:
        return self._book.exchange_ns

    @property
    def receipt_ns(self) -> int | None:
        return self._book.receipt_ns

    def top(self, *, exclude: Iterable[tuple[str, int, int]] = (), min_size: int = 0) -> BookTop:
        return self._book.top(exclude=exclude, min_size=min_size)

    def depth_mid(self, depth: int, exclude: Iterable[tuple[str, int, int]] = ()) -> float | None:
        """:meth:`~mmcore.book.MarketBook.depth_mid` (kept between changes that cannot move it)."""
        return self._book.depth_mid(depth, exclude)

    def window(self, side: Literal["bid", "ask"], width: int) -> tuple[int | None, int]:
        """:meth:`~mmcore.book.MarketBook.window` (kept between changes that cannot move it)."""
        return self._book.window(side, width)

    def yes_levels(self) -> list[tuple[int, int]]:
        return self._book.yes_levels()

    def no_levels(self) -> list[tuple[int, int]]:
        return self._book.no_levels()

    def __repr__(self) -> str:
        return f"BookView({self.ticker!r}, stale={self.stale}, top={self.top()})"


StaleReason = Literal[
    "seq_gap", "duplicate_beyond_tolerance", "negative_level", "terminal_error", "resubscribe",
    "malformed", "disconnected",
]


@dataclass(frozen=True, slots=True)
class BookUpdated:
    """A fresh book changed (snapshot or delta). ``top`` is taken at this message; ``book`` is live."""

    market: str
    top: BookTop
    book: BookView
    exchange_ns: int | None
    receipt_ns: int
    sid: int
    seq: int


@dataclass(frozen=True, slots=True)
class BookStale:
    """These books just became unusable (quote nothing on them until :class:`BookResynced`)."""

    markets: tuple[str, ...]
    reason: StaleReason
    receipt_ns: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BookResynced:
    """A snapshot made these stale books fresh again (also after the first connect)."""

    markets: tuple[str, ...]
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class Fill:
    """One of our executions (channel ``fill``). ``side`` is the YES book side of *our* order
    (``bid`` bought YES); ``price`` YES price units; ``count``/``post_position`` centi-contracts
    (``post_position`` signed, after this fill); ``fee`` price units (rounded up)."""

    trade_id: str
    order_id: str
    client_order_id: str | None
    market: str
    side: ks.BookSide
    price: int
    count: int
    fee: int
    is_taker: bool
    post_position: int
    exchange_ns: int
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """One of our orders changed (channel ``user_orders``). Counts in centi-contracts
    (``count`` = initial size), ``price`` YES price units."""

    order_id: str
    client_order_id: str | None
    market: str
    side: ks.BookSide
    price: int
    remaining: int
    filled: int
    count: int
    status: ks.OrderStatus
    exchange_ns: int
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class PositionUpdate:
    """Our position in one market (channel ``market_positions``): ``position``/``volume`` signed
    centi-contracts, money fields price units (rounded to the nearest $0.0001)."""

    market: str
    position: int
    position_cost: int
    realized_pnl: int
    fees_paid: int
    volume: int
    exchange_ns: int | None
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """A ``market_lifecycle_v2`` event; ``details`` holds the type-specific wire fields."""

    market: str
    event_type: str
    result: str | None
    details: Mapping[str, Any]
    exchange_ns: int | None
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class OrderGroupUpdate:
    """One of our order groups changed (channel ``order_group_updates``): ``event_type`` is
    ``created``, ``triggered`` (the venue cancelled the group's orders and refuses new ones until
    a reset), ``reset``, ``deleted`` (its orders cancelled) or ``limit_updated``;
    ``contracts_limit`` centi-contracts when the message carries it."""

    order_group_id: str
    event_type: str
    contracts_limit: int | None
    exchange_ns: int | None
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade print in a watched market (channel ``trade``): anyone's, ours included.
    ``price`` YES price units, ``count`` centi-contracts, ``taker_side`` the YES book side of the
    taker's order ("bid" = the taker bought YES, lifting the ask)."""

    trade_id: str
    market: str
    price: int
    count: int
    taker_side: ks.BookSide
    exchange_ns: int | None
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class Connected:
    """Connection ``attempt`` (1-based, counting failed attempts too) is up; subscribing."""

    attempt: int
    receipt_ns: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    reason: str
    receipt_ns: int


WsEvent = Union[
    BookUpdated, BookStale, BookResynced, Fill, OrderUpdate, PositionUpdate, Lifecycle,
    OrderGroupUpdate, Trade, Connected, Disconnected,
]
SessionOutput = Union[WsEvent, ks.AnyWsCommand]


def encode_command(cmd: ks.AnyWsCommand) -> str:
    """The JSON text frame of a command (``None`` fields omitted)."""
    return cmd.model_dump_json(exclude_none=True)


# --- helpers ----------------------------------------------------------------------------------


def _int_ns(value: Any, unit_ns: int) -> int | None:
    """A wire time (int/float/numeric string in ``unit_ns`` units, or RFC 3339) → int ns."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        try:
            return iso_to_ns(value)
        except (ValueError, TypeError):
            return None
    try:
        return int(Decimal(str(value)) * unit_ns)
    except (InvalidOperation, ValueError):
        return None


def _exchange_ns(msg: Any, *fields: tuple[str, int]) -> int | None:
    """First present time among ``fields`` (name, unit in ns) of a wire model, extras included."""
    for name, unit in fields:
        ns = _int_ns(getattr(msg, name, None), unit)
        if ns is not None:
            return ns
    return None


def _money(value: str | None) -> int:
    return 0 if value is None else parse_dollars(value, rounding="nearest")


# --- private channels and lifecycle: wire model → event (may raise MalformedPayloadError) ---


def _fill_event(m: ks.FillMsg, receipt_ns: int) -> Fill:
    return Fill(
        trade_id=m.trade_id, order_id=m.order_id, client_order_id=m.client_order_id,
        market=m.market_ticker, side=m.book_side, price=m.price(), count=m.count(),
        fee=m.fee(), is_taker=m.is_taker, post_position=m.post_position(),
        exchange_ns=_exchange_ns(m, ("ts_ms", _MS), ("ts", _S)) or receipt_ns,
        receipt_ns=receipt_ns,
    )

def _order_event(m: ks.UserOrderMsg, receipt_ns: int) -> OrderUpdate:
    return OrderUpdate(
        order_id=m.order_id, client_order_id=m.client_order_id or None, market=m.ticker,
        side=m.book_side, price=m.price(), remaining=m.remaining_count(),
        filled=m.fill_count(), count=m.count(), status=m.status,
        exchange_ns=_exchange_ns(m, ("last_updated_ts_ms", _MS), ("created_ts_ms", _MS))
        or receipt_ns,
        receipt_ns=receipt_ns,
    )

def _position_event(m: ks.MarketPositionMsg, receipt_ns: int) -> PositionUpdate:
    return PositionUpdate(
        market=m.market_ticker, position=m.position(),
        position_cost=_money(m.position_cost_dollars),
        realized_pnl=_money(m.realized_pnl_dollars), fees_paid=_money(m.fees_paid_dollars),
        volume=parse_count_fp(m.volume_fp, rounding="nearest"),
        exchange_ns=_exchange_ns(m, ("ts_ms", _MS), ("ts", _S)), receipt_ns=receipt_ns,
    )

def _lifecycle_event(m: ks.MarketLifecycleV2Msg, receipt_ns: int) -> Lifecycle:
    details = m.model_dump(exclude_none=True, exclude={"market_ticker", "event_type", "result"})
    by_type = {"determined": "determination_ts", "settled": "settled_ts", "created": "open_ts"}
    fields: list[tuple[str, int]] = [("ts_ms", _MS)]
    if m.event_type in by_type:
        fields.append((by_type[m.event_type], _S))
    return Lifecycle(
        market=m.market_ticker, event_type=m.event_type, result=m.result or None,
        details=MappingProxyType(details), exchange_ns=_exchange_ns(m, *fields),
        receipt_ns=receipt_ns,
    )


def _order_group_event(m: ks.OrderGroupUpdateMsg, receipt_ns: int) -> OrderGroupUpdate:
    limit = m.contracts_limit_fp
    return OrderGroupUpdate(
        order_group_id=m.order_group_id, event_type=m.event_type,
        contracts_limit=None if limit is None else parse_count_fp(limit, rounding="nearest"),
        exchange_ns=_exchange_ns(m, ("ts_ms", _MS)), receipt_ns=receipt_ns,
    )


def _trade_event(m: ks.TradeMsg, receipt_ns: int) -> Trade:
    return Trade(
        trade_id=m.trade_id, market=m.market_ticker, price=m.price(), count=m.count(),
        taker_side=m.taker_book_side, exchange_ns=_exchange_ns(m, ("ts_ms", _MS), ("ts", _S)),
        receipt_ns=receipt_ns,
    )


_CONVERTERS: dict[type, Callable[[Any, int], WsEvent]] = {
    ks.FillMessage: _fill_event,
    ks.UserOrderMessage: _order_event,
    ks.MarketPositionMessage: _position_event,
    ks.MarketLifecycleV2Message: _lifecycle_event,
    ks.OrderGroupUpdatesMessage: _order_group_event,
    ks.TradeMessage: _trade_event,
}
