"""Kalshi WebSocket client: a sans-I/O session (:class:`WsSession`) and its driver (:class:`KalshiWs`).

Layers (style items 2 and 11): :mod:`~mmcore.venues.kalshi.schema` parses frames,
:class:`WsSession` is the state machine — frames and connection changes in, typed events and
commands out, no awaits, no clock reads — and :class:`KalshiWs` owns the socket, signing, sleeps
and reconnects. The local exchange and Kalshi differ only in the URL handed to the driver.

Calling order::

    ws = KalshiWs(url, signer, markets=[...])
    async for event in ws.events():      # connects, subscribes, reconnects until close()
        ...                              # BookUpdated / BookStale / Fill / OrderUpdate / ...
    await ws.close()                     # from anywhere: events() then ends cleanly

Driving :class:`WsSession` by hand (tests, replay)::

    out = session.on_connected(attempt, now_ns)       # Connected + subscribe commands
    out = session.on_message(raw_frame, receipt_ns)   # events + commands to send
    out = session.on_disconnected(reason, now_ns)     # Disconnected + BookStale

Every returned list holds, in order, events (:data:`WsEvent`) to hand to the consumer and
commands (:data:`~mmcore.venues.kalshi.schema.AnyWsCommand`) to send with
:func:`encode_command`; the driver sends a batch's commands before yielding its events.

Rules of this file:

- **Books** are kept in YES terms (:class:`~mmcore.book.MarketBook`), one per market asked for,
  and start *stale*. Only an ``orderbook_snapshot`` makes a book fresh; a stale book takes no
  deltas and never produces :class:`BookUpdated`. :class:`BookStale` lists the books that just
  went stale (and the reason); :class:`BookResynced` the books a snapshot just made fresh
  (the first snapshot after connecting included).
- **seq** is checked per subscription id (kalshi.md §3.5) for every sequenced message of the
  ``orderbook_delta`` subscription (snapshots, deltas, ``ok``) with :class:`~mmcore.book.SeqTracker`:

  ==========================  ==================================================================
  verdict                     action
  ==========================  ==================================================================
  ok                          apply
  duplicate (≤ tolerance)     drop (never applied twice)
  duplicate (> tolerance)     the stream restarted or is broken: re-base the tracker, books of
                              the sid stale, ``get_snapshot``
  gap                         books of the sid stale, ``update_subscription get_snapshot`` for
                              them; a snapshot then still applies, a delta does not
  ==========================  ==================================================================

  A delta that would take a level below zero makes that one book stale and asks for its
  snapshot. ``get_snapshot`` answered with an ``error`` falls back to unsubscribe + subscribe
  (new sid, new snapshots). Error codes 10/17/25 (terminal) kill the named subscription (or all
  of them when the error names none): unsubscribe (its error, if any, is ignored) + subscribe.
  More than :data:`MAX_RESUBSCRIBES` resubscriptions of a channel on one connection raise
  :class:`~mmcore.errors.VenueProtocolError`: the driver then drops the connection and reconnects
  with backoff instead of looping.
- **Connections**: every sid belongs to one connection. ``on_connected`` forgets all sids and
  subscribes each channel with its own command (so an error names its channel);
  ``on_disconnected`` makes every book stale. ``orderbook_delta``, ``ticker`` and ``trade``
  are filtered to ``markets``; the private channels (``fill``, ``user_orders``,
  ``market_positions``) and ``market_lifecycle_v2`` are not: our fills in a market we do not
  watch must still reach position keeping.
- **Parsing** is lenient (unknown types logged at DEBUG and ignored; numbers as JSON numbers
  accepted by the schema). A frame that does not validate is logged at WARNING and dropped; if
  it was a book message of the book subscription, it is treated as lost (books stale,
  snapshot asked for).
- **Time**: every event carries ``receipt_ns`` (integer ns, the driver's clock when the frame
  was read) and, when the venue stamped it, ``exchange_ns`` (integer ns; ``None`` when the
  message carries no time, e.g. Kalshi snapshots and positions).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Literal, Union
from urllib.parse import urlsplit

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.client import process_exception
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from mmcore.book import BookTop, MarketBook, SeqTracker
from mmcore.errors import (
    AuthError, InputError, MalformedPayloadError, VenueProtocolError, VenueRefusalError,
)
from mmcore.models import iso_to_ns
from mmcore.units import parse_count_fp, parse_dollars
from mmcore.venues.kalshi import schema as ks
from mmcore.venues.kalshi.auth import Signer

__all__ = [
    "DEFAULT_CHANNELS", "MARKET_FILTERED_CHANNELS", "DUPLICATE_TOLERANCE", "MAX_RESUBSCRIBES",
    "BookView", "BookUpdated", "BookStale", "BookResynced", "Fill", "OrderUpdate",
    "PositionUpdate", "Lifecycle", "Connected", "Disconnected", "WsEvent", "SessionOutput",
    "StaleReason", "WsSession", "encode_command", "backoff_delay_s", "KalshiWs",
]

log = logging.getLogger(__name__)

DEFAULT_CHANNELS = ("orderbook_delta", "fill", "user_orders", "market_positions", "market_lifecycle_v2")
MARKET_FILTERED_CHANNELS = frozenset({"orderbook_delta", "ticker", "trade"})
"""Channels subscribed with ``market_tickers``; every other channel is subscribed unfiltered."""
DUPLICATE_TOLERANCE = 16
"""A seq at most this far behind the last one is a re-send and is dropped; further back means
the sid's stream restarted or broke, and its books are resynced."""
MAX_RESUBSCRIBES = 5
"""Resubscriptions of one channel per connection before giving up on the connection."""

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
    def exchange_ns(self) -> int | None:
        return self._book.exchange_ns

    @property
    def receipt_ns(self) -> int | None:
        return self._book.receipt_ns

    def top(self, *, exclude: Iterable[tuple[str, int, int]] = (), min_size: int = 0) -> BookTop:
        return self._book.top(exclude=exclude, min_size=min_size)

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
    Connected, Disconnected,
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


@dataclass(slots=True)
class _Pending:
    """What a command id was sent for (this connection only)."""

    kind: Literal["subscribe", "unsubscribe", "get_snapshot"]
    channel: str
    sid: int | None = None
    markets: tuple[str, ...] = ()


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


_CONVERTERS: dict[type, Callable[[Any, int], WsEvent]] = {
    ks.FillMessage: _fill_event,
    ks.UserOrderMessage: _order_event,
    ks.MarketPositionMessage: _position_event,
    ks.MarketLifecycleV2Message: _lifecycle_event,
}


# --- the session ------------------------------------------------------------------------------


@dataclass
class WsSession:
    """Sans-I/O Kalshi WS state machine for one set of markets (see the module rules).

    Not thread-safe; one driver feeds it. ``markets`` are de-duplicated in order.
    """

    markets: tuple[str, ...]
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    use_yes_price: bool = True
    duplicate_tolerance: int = DUPLICATE_TOLERANCE
    _books: dict[str, MarketBook] = field(init=False, repr=False)
    _views: dict[str, BookView] = field(init=False, repr=False)
    _seq: SeqTracker = field(init=False, repr=False, default_factory=SeqTracker)
    _next_id: int = field(init=False, repr=False, default=1)
    _pending: dict[int, _Pending] = field(init=False, repr=False, default_factory=dict)
    _sub_ids: dict[int, str] = field(init=False, repr=False, default_factory=dict)
    _sid_channel: dict[int, str] = field(init=False, repr=False, default_factory=dict)
    _channel_sid: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    _resubscribes: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    connected: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.markets = tuple(dict.fromkeys(self.markets))
        self.channels = tuple(dict.fromkeys(self.channels))
        unknown = set(self.channels) - set(ks.WsChannel.__args__)  # type: ignore[attr-defined]
        if unknown:
            raise InputError(f"unknown Kalshi WS channel(s): {sorted(unknown)}")
        if self.duplicate_tolerance < 0:
            raise InputError("duplicate_tolerance must be >= 0")
        self._books = {m: MarketBook(m) for m in self.markets}
        self._views = {m: BookView(b) for m, b in self._books.items()}

    # --- read side ---

    @property
    def books(self) -> Mapping[str, BookView]:
        """Market → live read-only view of its book."""
        return MappingProxyType(self._views)

    def sid_of(self, channel: str) -> int | None:
        """The current sid of ``channel`` on this connection, if subscribed."""
        return self._channel_sid.get(channel)

    # --- connection changes ---

    def on_connected(self, attempt: int, now_ns: int) -> list[SessionOutput]:
        """A new connection is up: forget every sid, subscribe every channel."""
        self._forget_connection()
        self.connected = True
        out: list[SessionOutput] = [Connected(attempt, now_ns)]
        stale = self._mark_stale(self.markets)
        if stale:  # normally already stale from on_disconnected
            out.append(BookStale(stale, "disconnected", now_ns))
        for channel in self.channels:
            cmd = self._subscribe(channel)
            if cmd is not None:
                out.append(cmd)
        return out

    def on_disconnected(self, reason: str, now_ns: int) -> list[SessionOutput]:
        """The connection is gone: every book is stale until the next connection's snapshots."""
        self._forget_connection()
        self.connected = False
        out: list[SessionOutput] = [Disconnected(reason, now_ns)]
        stale = self._mark_stale(self.markets)
        if stale:
            out.append(BookStale(stale, "disconnected", now_ns, reason))
        return out

    # --- frames ---

    def on_message(self, raw: ks.RawBody, receipt_ns: int) -> list[SessionOutput]:
        """One server frame → events and commands. Raises :class:`VenueProtocolError` only when
        the connection should be dropped (resubscription loop)."""
        try:
            msg = ks.parse_ws_message(raw)
        except MalformedPayloadError as exc:
            return self._on_malformed(raw, str(exc), receipt_ns)
        if isinstance(msg, ks.OrderbookSnapshotMessage):
            return self._on_book_message(msg, receipt_ns)
        if isinstance(msg, ks.OrderbookDeltaMessage):
            return self._on_book_message(msg, receipt_ns)
        convert = _CONVERTERS.get(type(msg))
        if convert is not None:
            try:
                return [convert(msg.msg, receipt_ns)]  # type: ignore[union-attr]
            except (MalformedPayloadError, InputError) as exc:  # e.g. a price finer than $0.0001
                log.warning("kalshi ws: dropping unreadable %s: %s", msg.type, exc)
                return []
        if isinstance(msg, ks.SubscribedMessage):
            return self._on_subscribed(msg)
        if isinstance(msg, ks.OkMessage):
            return self._on_ok(msg, receipt_ns)
        if isinstance(msg, ks.UnsubscribedMessage):
            if msg.id is not None:
                self._pending.pop(msg.id, None)
            self._retire(msg.sid)
            return []
        if isinstance(msg, ks.ErrorMessage):
            return self._on_error(msg, receipt_ns)
        log.debug("kalshi ws: ignoring message type %r", msg.type)
        return []

    # --- books ---

    def _book_sid(self) -> int | None:
        return self._channel_sid.get("orderbook_delta")

    def _on_book_message(
        self, msg: ks.OrderbookSnapshotMessage | ks.OrderbookDeltaMessage, receipt_ns: int
    ) -> list[SessionOutput]:
        sid = msg.sid
        if sid != self._book_sid():
            log.debug("kalshi ws: %s for sid %s that is not our book subscription", msg.type, sid)
            return []
        out, proceed = self._check_seq(sid, msg.seq, receipt_ns)
        if not proceed:
            return out
        market = msg.msg.market_ticker
        book = self._books.get(market)
        if book is None:
            log.debug("kalshi ws: %s for unwatched market %s", msg.type, market)
            return out
        try:
            if isinstance(msg, ks.OrderbookSnapshotMessage):
                yes, no = msg.msg.yes_levels(), msg.msg.no_levels()
            else:
                price, delta = msg.msg.level_price(), msg.msg.delta()
        except MalformedPayloadError as exc:
            log.warning("kalshi ws: bad %s for %s: %s", msg.type, market, exc)
            return out + self._stale_and_snapshot((market,), "malformed", receipt_ns, str(exc))
        exchange_ns = _exchange_ns(msg.msg, ("ts_ms", _MS), ("ts", _S))
        if isinstance(msg, ks.OrderbookSnapshotMessage):
            was_stale = book.stale
            book.apply_snapshot(yes, no, use_yes_price=self.use_yes_price,
                                exchange_ns=exchange_ns, receipt_ns=receipt_ns)
            self._snapshot_arrived(market)
            if was_stale:
                out.append(BookResynced((market,), receipt_ns))
        else:
            if book.stale:
                return out  # waiting for its snapshot; the snapshot will include this change
            if not book.apply_delta(msg.msg.side, price, delta, use_yes_price=self.use_yes_price,
                                    exchange_ns=exchange_ns, receipt_ns=receipt_ns):
                log.warning("kalshi ws: delta %s %s@%s takes %s below zero (sid %s seq %s)",
                            msg.msg.side, delta, price, market, sid, msg.seq)
                out.append(BookStale((market,), "negative_level", receipt_ns,
                                     f"sid {sid} seq {msg.seq}"))
                out.append(self._get_snapshot(sid, (market,)))
                return out
        out.append(BookUpdated(market, book.top(), self._views[market], exchange_ns, receipt_ns,
                               sid, msg.seq))
        return out

    def _snapshot_arrived(self, market: str) -> None:
        """Forget ``market`` in outstanding ``get_snapshot`` requests (Kalshi may answer them
        with snapshots only, no ``ok``); a request whose markets all arrived is done."""
        for cid, p in list(self._pending.items()):
            if p.kind == "get_snapshot" and market in p.markets:
                p.markets = tuple(m for m in p.markets if m != market)
                if not p.markets:
                    del self._pending[cid]

    def _check_seq(self, sid: int, seq: int, receipt_ns: int) -> tuple[list[SessionOutput], bool]:
        """(outputs, whether to process the message) for a sequenced message of the book sid."""
        prev = self._seq.last.get(sid)
        verdict = self._seq.check(sid, seq)
        if verdict == "ok":
            return [], True
        if verdict == "gap":
            log.warning("kalshi ws: seq gap on sid %s: %s after %s", sid, seq, prev)
            return self._stale_and_snapshot(self._sid_markets(sid), "seq_gap", receipt_ns,
                                            f"sid {sid}: seq {seq} after {prev}"), True
        assert prev is not None
        if prev - seq <= self.duplicate_tolerance:
            log.debug("kalshi ws: duplicate seq %s on sid %s (last %s) dropped", seq, sid, prev)
            return [], False
        log.warning("kalshi ws: seq %s on sid %s is %s behind %s; re-basing", seq, sid,
                    prev - seq, prev)
        self._seq.reset(sid)
        self._seq.check(sid, seq)
        return self._stale_and_snapshot(self._sid_markets(sid), "duplicate_beyond_tolerance",
                                        receipt_ns, f"sid {sid}: seq {seq} after {prev}"), True

    def _sid_markets(self, sid: int) -> tuple[str, ...]:
        return self.markets if self._sid_channel.get(sid) == "orderbook_delta" else ()

    def _mark_stale(self, markets: Iterable[str]) -> tuple[str, ...]:
        newly = []
        for m in markets:
            book = self._books[m]
            if not book.stale:
                book.stale = True
                newly.append(m)
        return tuple(newly)

    def _stale_and_snapshot(self, markets: tuple[str, ...], reason: StaleReason, receipt_ns: int,
                            detail: str = "") -> list[SessionOutput]:
        """Mark ``markets`` stale and ask the book subscription for their snapshots. Asked again
        even when a snapshot is already on its way: that one may be what was lost."""
        out: list[SessionOutput] = []
        stale = self._mark_stale(markets)
        if stale:
            out.append(BookStale(stale, reason, receipt_ns, detail))
        sid = self._book_sid()
        if markets and sid is not None:
            out.append(self._get_snapshot(sid, markets))
        return out

    # --- command replies ---

    def _on_subscribed(self, msg: ks.SubscribedMessage) -> list[SessionOutput]:
        channel, sid = msg.msg.channel, msg.msg.sid
        if msg.id is not None:
            self._pending.pop(msg.id, None)
        old = self._channel_sid.get(channel)
        if old is not None and old != sid:
            self._retire(old)
        self._channel_sid[channel] = sid
        self._sid_channel[sid] = channel
        self._seq.reset(sid)
        return []

    def _on_ok(self, msg: ks.OkMessage, receipt_ns: int) -> list[SessionOutput]:
        if msg.id is not None:
            self._pending.pop(msg.id, None)
        if msg.sid is not None and msg.seq is not None and msg.sid == self._book_sid():
            out, _ = self._check_seq(msg.sid, msg.seq, receipt_ns)
            return out
        return []

    def _on_error(self, msg: ks.ErrorMessage, receipt_ns: int) -> list[SessionOutput]:
        code, text = msg.msg.code, msg.msg.msg
        pending = self._pending.pop(msg.id, None) if msg.id is not None else None
        if pending is not None and pending.kind == "unsubscribe":
            log.debug("kalshi ws: unsubscribe of sid %s refused (%s %s); ignored",
                      pending.sid, code, text)
            return []
        if pending is not None and pending.kind == "get_snapshot":
            if pending.sid != self._book_sid():
                log.debug("kalshi ws: get_snapshot for replaced sid %s refused (%s); ignored",
                          pending.sid, code)
                return []
            log.warning("kalshi ws: get_snapshot refused (%s %s); resubscribing", code, text)
            return self._resubscribe("orderbook_delta", "resubscribe", receipt_ns,
                                     f"get_snapshot error {code}: {text}")
        if code in ks.WS_TERMINAL_ERROR_CODES:
            channel = self._error_channel(msg, pending)
            channels = [channel] if channel is not None else list(self.channels)
            log.warning("kalshi ws: terminal error %s (%s) for %s; resubscribing", code, text,
                        channel or "every channel")
            out: list[SessionOutput] = []
            for ch in channels:
                out += self._resubscribe(ch, "terminal_error", receipt_ns, f"error {code}: {text}")
            return out
        log.warning("kalshi ws: error %s (%s) for command %s (%s)", code, text, msg.id,
                    pending.kind if pending else "unknown")
        return []

    def _error_channel(self, msg: ks.ErrorMessage, pending: _Pending | None) -> str | None:
        """The channel an error is about: its command's, its ``sid``'s, else unknown."""
        if pending is not None:
            return pending.channel
        if msg.id is not None and msg.id in self._sub_ids:
            return self._sub_ids[msg.id]
        sid = _int_ns((msg.model_extra or {}).get("sid"), 1)
        if sid is not None and sid in self._sid_channel:
            return self._sid_channel[sid]
        return None

    # --- commands ---

    def _new_id(self) -> int:
        cid, self._next_id = self._next_id, self._next_id + 1
        return cid

    def _subscribe(self, channel: str) -> ks.SubscribeCommand | None:
        params: dict[str, Any] = {"channels": [channel]}
        if channel in MARKET_FILTERED_CHANNELS:
            if not self.markets:
                return None
            params["market_tickers"] = list(self.markets)
        if channel == "orderbook_delta":
            params["use_yes_price"] = self.use_yes_price
        cid = self._new_id()
        self._pending[cid] = _Pending("subscribe", channel)
        self._sub_ids[cid] = channel
        return ks.SubscribeCommand(id=cid, cmd="subscribe", params=ks.SubscribeParams(**params))

    def _get_snapshot(self, sid: int, markets: tuple[str, ...]) -> ks.UpdateSubscriptionCommand:
        cid = self._new_id()
        self._pending[cid] = _Pending("get_snapshot", "orderbook_delta", sid, markets)
        return ks.UpdateSubscriptionCommand(
            id=cid, cmd="update_subscription",
            params=ks.UpdateSubscriptionParams(sid=sid, action="get_snapshot",
                                               market_tickers=list(markets)))

    def _resubscribe(self, channel: str, reason: StaleReason, receipt_ns: int,
                     detail: str) -> list[SessionOutput]:
        """Unsubscribe ``channel``'s sid (if any) and subscribe it again; books stale."""
        n = self._resubscribes[channel] = self._resubscribes.get(channel, 0) + 1
        if n > MAX_RESUBSCRIBES:
            raise VenueProtocolError(
                f"kalshi ws: {channel} resubscribed {n - 1} times on this connection ({detail})")
        out: list[SessionOutput] = []
        if channel == "orderbook_delta":
            stale = self._mark_stale(self.markets)
            if stale:
                out.append(BookStale(stale, reason, receipt_ns, detail))
        old = self._channel_sid.pop(channel, None)
        if old is not None:
            self._retire(old)
            cid = self._new_id()
            self._pending[cid] = _Pending("unsubscribe", channel, old)
            out.append(ks.UnsubscribeCommand(id=cid, cmd="unsubscribe",
                                             params=ks.UnsubscribeParams(sids=[old])))
        cmd = self._subscribe(channel)
        if cmd is not None:
            out.append(cmd)
        return out

    def _retire(self, sid: int) -> None:
        channel = self._sid_channel.pop(sid, None)
        if channel is not None and self._channel_sid.get(channel) == sid:
            del self._channel_sid[channel]
        self._seq.reset(sid)

    def _forget_connection(self) -> None:
        self._seq = SeqTracker()
        self._pending.clear()
        self._sub_ids.clear()
        self._sid_channel.clear()
        self._channel_sid.clear()
        self._resubscribes.clear()

    # --- malformed frames ---

    def _on_malformed(self, raw: ks.RawBody, error: str, receipt_ns: int) -> list[SessionOutput]:
        try:
            obj = json.loads(raw) if not isinstance(raw, Mapping) else raw
        except (ValueError, TypeError):
            obj = None
        kind = obj.get("type") if isinstance(obj, Mapping) else None
        sid = _int_ns(obj.get("sid"), 1) if isinstance(obj, Mapping) else None
        if kind not in ("orderbook_snapshot", "orderbook_delta") or sid is None \
                or sid != self._book_sid():
            log.warning("kalshi ws: dropping malformed frame: %s", error)
            return []
        # A book message we cannot read is a lost message: advance seq, resync what it touched.
        seq = _int_ns(obj.get("seq"), 1)
        if seq is not None:
            self._seq.check(sid, seq)
        body = obj.get("msg")
        market = body.get("market_ticker") if isinstance(body, Mapping) else None
        markets = (market,) if market in self._books else self._sid_markets(sid)
        log.warning("kalshi ws: malformed %s on sid %s (%s); resyncing %s", kind, sid, error,
                    list(markets))
        return self._stale_and_snapshot(markets, "malformed", receipt_ns, error)


# --- the driver -------------------------------------------------------------------------------


def backoff_delay_s(retry: int, *, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before reconnect number ``retry`` (0-based): capped exponential with equal jitter,
    uniform in ``[d/2, d]`` for ``d = min(max_s, initial_s · 2**retry)``."""
    d = min(max_s, initial_s * (2 ** min(retry, 62)))
    return d / 2 + rng.uniform(0.0, d / 2)


def _handshake_failure(exc: Exception) -> Exception | None:
    """``None`` if a failed connect is worth retrying, else the error to raise."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status == 429 or status >= 500:
            return None
        body = exc.response.body.decode("utf-8", "replace")[:500] if exc.response.body else None
        if status in (401, 403):
            return AuthError("kalshi ws: handshake refused", status=status, body=body)
        return VenueRefusalError("kalshi ws: handshake refused", status=status, body=body)
    if process_exception(exc) is None:
        return None
    if isinstance(exc, InvalidURI):
        return InputError(f"kalshi ws: bad URL: {exc}")
    if isinstance(exc, InvalidHandshake):
        return VenueProtocolError(f"kalshi ws: handshake failed: {exc}")
    return exc


class KalshiWs:
    """Connects, subscribes, reconnects; yields :data:`WsEvent` s from :meth:`events`.

    Why a custom loop rather than ``async for conn in websockets.connect(...)``: that iterator
    signs nothing per attempt (``additional_headers`` are fixed at construction, and Kalshi's
    signature embeds a millisecond timestamp), takes its backoff from process-wide environment
    variables, resets backoff after any successful handshake (a server that accepts and drops
    at once is retried in a tight loop) and gives no hook for ``Connected``/``Disconnected``.
    Each attempt here is one plain ``await websockets.asyncio.client.connect(...)`` with freshly
    signed headers; failures are classified with websockets' own ``process_exception`` (network
    errors, 5xx and 429 retry; 401/403 raise :class:`~mmcore.errors.AuthError`; other refusals
    :class:`~mmcore.errors.VenueRefusalError`). Reconnect ``k`` (counted since the last
    connection that stayed up ``stable_after_s``) waits :func:`backoff_delay_s`. websockets
    answers the server's pings itself and sends its own (``ping_interval_s``) to detect a dead
    link.

    One instance runs :meth:`events` once; :meth:`close` ends it for good.
    """

    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        markets: Iterable[str],
        channels: Iterable[str] = DEFAULT_CHANNELS,
        use_yes_price: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        stable_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        max_message_bytes: int = 16 * 2**20,
        duplicate_tolerance: int = DUPLICATE_TOLERANCE,
        rng: random.Random | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise InputError(f"kalshi ws: URL must be ws:// or wss://, got {url!r}")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise InputError("kalshi ws: need 0 < backoff_initial_s <= backoff_max_s")
        self._url = url
        self._path = parts.path or "/"
        self._signer = signer
        self._clock_ns = clock_ns
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._stable_after_s = stable_after_s
        self._connect_options = {
            "open_timeout": open_timeout_s, "ping_interval": ping_interval_s,
            "ping_timeout": ping_timeout_s, "max_size": max_message_bytes,
        }
        self._rng = rng or random.Random()
        self.session = WsSession(tuple(markets), tuple(channels), use_yes_price,
                                 duplicate_tolerance)
        self._attempt = 0
        self._closing = False
        self._wake = asyncio.Event()
        self._conn: Any = None
        self._running = False

    @property
    def books(self) -> Mapping[str, BookView]:
        return self.session.books

    @property
    def attempts(self) -> int:
        """Connection attempts made so far."""
        return self._attempt

    async def close(self) -> None:
        """End :meth:`events` (it returns after the current frame) and close the socket."""
        self._closing = True
        self._wake.set()
        conn = self._conn
        if conn is not None:
            await conn.close()

    async def _open(self) -> Any:
        headers = self._signer.headers("GET", self._path,
                                       timestamp_ms=self._clock_ns() // 1_000_000)
        return await ws_connect(self._url, additional_headers=headers, **self._connect_options)

    async def _sleep(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), delay_s)
        except asyncio.TimeoutError:
            pass

    async def events(self) -> AsyncIterator[WsEvent]:
        """Typed events until :meth:`close`. Raises (ending the iteration) only on a refusal that
        retrying cannot fix (bad key, bad URL)."""
        if self._running:
            raise RuntimeError("KalshiWs.events() is already running")
        self._running = True
        retry = 0
        try:
            while not self._closing:
                self._attempt += 1
                try:
                    conn = await self._open()
                except Exception as exc:  # noqa: BLE001 - classified right here
                    fatal = _handshake_failure(exc)
                    if fatal is exc:
                        raise
                    if fatal is not None:
                        raise fatal from exc
                    delay = backoff_delay_s(retry, initial_s=self._backoff_initial_s,
                                            max_s=self._backoff_max_s, rng=self._rng)
                    retry += 1
                    log.log(logging.WARNING if retry > 3 else logging.INFO,
                            "kalshi ws: connect attempt %s failed (%s); retrying in %.2f s",
                            self._attempt, exc, delay)
                    await self._sleep(delay)
                    continue
                self._conn = conn
                opened = time.monotonic()
                reason = "connection closed"
                try:
                    if self._closing:
                        return
                    outs = self.session.on_connected(self._attempt, self._clock_ns())
                    for item in await self._send(conn, outs):
                        yield item
                    async for raw in conn:
                        outs = self.session.on_message(raw, self._clock_ns())
                        for item in await self._send(conn, outs):
                            yield item
                        if self._closing:
                            return
                    reason = _close_reason(conn)
                except ConnectionClosed as exc:
                    reason = _close_reason(conn, exc)
                except VenueProtocolError as exc:
                    reason = f"protocol error: {exc}"
                    log.warning("kalshi ws: dropping the connection: %s", exc)
                finally:
                    self._conn = None
                    await conn.close()
                if self._closing:
                    return
                for item in self.session.on_disconnected(reason, self._clock_ns()):
                    yield item  # type: ignore[misc]
                if time.monotonic() - opened >= self._stable_after_s:
                    retry = 0
                delay = backoff_delay_s(retry, initial_s=self._backoff_initial_s,
                                        max_s=self._backoff_max_s, rng=self._rng)
                retry += 1
                log.info("kalshi ws: disconnected (%s); reconnecting in %.2f s", reason, delay)
                await self._sleep(delay)
        finally:
            self._running = False

    @staticmethod
    async def _send(conn: Any, outs: list[SessionOutput]) -> list[WsEvent]:
        """Send the commands of a batch (in order); return its events."""
        events: list[WsEvent] = []
        for item in outs:
            if isinstance(item, (ks.SubscribeCommand, ks.UnsubscribeCommand,
                                 ks.UpdateSubscriptionCommand, ks.ListSubscriptionsCommand)):
                await conn.send(encode_command(item))
            else:
                events.append(item)
        return events


def _close_reason(conn: Any, exc: Exception | None = None) -> str:
    code = getattr(conn, "close_code", None)
    text = getattr(conn, "close_reason", None)
    if code is None and exc is not None:
        return f"connection lost: {exc}"
    return f"closed by peer: code {code}" + (f" ({text})" if text else "")
