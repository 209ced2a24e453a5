"""Kalshi WebSocket client, part 2 of 3: the sans-I/O session (:class:`WsSession`).

The state machine between :mod:`~mmcore.venues.kalshi.schema` (parses frames) and the driver
:class:`~mmcore.venues.kalshi.ws.KalshiWs` (owns the socket, signing, sleeps and reconnects):
frames and connection changes in, typed events (:mod:`~mmcore.venues.kalshi.ws_events`) and
commands out, no awaits, no clock reads. :mod:`~mmcore.venues.kalshi.ws` re-exports every public
name of this module.

Driving :class:`WsSession` by hand (tests, replay)::

    out = session.on_connected(attempt, now_ns)       # Connected + subscribe commands
    out = session.on_message(raw_frame, receipt_ns)   # events + commands to send
    out = session.on_disconnected(reason, now_ns)     # Disconnected + BookStale

Every returned list holds, in order, events (:data:`~mmcore.venues.kalshi.ws_events.WsEvent`) to
hand to the consumer and commands (:data:`~mmcore.venues.kalshi.schema.AnyWsCommand`) to send
with :func:`~mmcore.venues.kalshi.ws_events.encode_command`; the driver sends a batch's commands
before yielding its events.

Rules of this module:

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
- **Probes**: :meth:`WsSession.probe` asks for snapshots of fresh books (``get_snapshot`` on the
  book sid); a snapshot for a fresh book replaces it and yields :class:`BookUpdated`.
- **Connections**: every sid belongs to one connection. ``on_connected`` forgets all sids and
  subscribes each channel with its own command (so an error names its channel);
  ``on_disconnected`` makes every book stale. ``orderbook_delta``, ``ticker`` and ``trade``
  are filtered to ``markets``; the private channels (``fill``, ``user_orders``,
  ``market_positions``, ``order_group_updates``) and ``market_lifecycle_v2`` are not: our fills in a market we do not
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

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from mmcore.book import MarketBook, SeqTracker
from mmcore.errors import InputError, MalformedPayloadError, VenueProtocolError
from mmcore.models import iso_to_ns
from mmcore.units import parse_count_fp, parse_dollars
from mmcore.venues.kalshi import schema as ks
from mmcore.venues.kalshi.ws_events import (
    _CONVERTERS, _MS, _S, BookResynced, BookStale, BookUpdated, BookView, Connected, Disconnected,
    SessionOutput, StaleReason, _exchange_ns, _int_ns,
)

__all__ = [
    "DEFAULT_CHANNELS", "MARKET_FILTERED_CHANNELS", "DUPLICATE_TOLERANCE", "MAX_RESUBSCRIBES",
    "WsSession",
]

log = logging.getLogger(__name__)

try:  # a faster decoder when present (prefect ships orjson); any frame it refuses goes the slow way
    from orjson import loads as _loads_fast
except ImportError:  # pragma: no cover - orjson is a transitive dependency
    _loads_fast = json.loads

_PlainDelta = tuple[int, int, str, str, int, int, "int | None"]
"""(sid, seq, market, side, price units, centi-contracts, exchange ns) of one orderbook_delta."""


def _plain_delta(raw: Any) -> _PlainDelta | None:
    """An ``orderbook_delta`` frame of the exact shape Kalshi sends, read without the pydantic
    wire model; ``None`` for any other frame or anything unusual (types, values, a bad price or
    timestamp), which then takes the validated path with its error handling. Why: this is the
    one frame on the tick-to-wire path, and the model's validation was a third of the frame's
    cost (the live path runs with cold caches: each frame ~120 µs of CPU, bench/tick_to_wire.py)."""
    if not isinstance(raw, (str, bytes)):
        return None
    try:
        obj = _loads_fast(raw)
    except ValueError:  # orjson.JSONDecodeError is one; the slow path says what was wrong
        return None
    if type(obj) is not dict or obj.get("type") != "orderbook_delta":
        return None
    sid, seq, m = obj.get("sid"), obj.get("seq"), obj.get("msg")
    if type(sid) is not int or type(seq) is not int or sid < 1 or seq < 1 or type(m) is not dict:
        return None
    market, p, d, side = m.get("market_ticker"), m.get("price_dollars"), m.get("delta_fp"), m.get("side")
    if (type(market) is not str or type(m.get("market_id")) is not str or type(p) is not str
            or type(d) is not str or (side != "yes" and side != "no")):
        return None
    coid, sub, ts, ts_ms = m.get("client_order_id"), m.get("subaccount"), m.get("ts"), m.get("ts_ms")
    if ((coid is not None and type(coid) is not str) or (sub is not None and type(sub) is not int)
            or (ts is not None and type(ts) is not str) or (ts_ms is not None and type(ts_ms) is not int)):
        return None
    try:
        price, delta = parse_dollars(p), parse_count_fp(d)
        if ts is not None:
            iso_to_ns(ts)  # the model's check (Rfc3339)
    except (InputError, ValueError, TypeError):
        return None
    exchange_ns = ts_ms * _MS if ts_ms is not None else _int_ns(ts, _S)
    return sid, seq, market, side, price, delta, exchange_ns

DEFAULT_CHANNELS = ("orderbook_delta", "fill", "user_orders", "market_positions", "market_lifecycle_v2",
                    "order_group_updates", "trade")
"""``order_group_updates`` tells a worker at once that the venue triggered or deleted its order
group (and so cancelled the group's orders); ``trade`` (public prints of the watched markets)
feeds the worker's jump detector and order-flow guard."""
MARKET_FILTERED_CHANNELS = frozenset({"orderbook_delta", "ticker", "trade"})
"""Channels subscribed with ``market_tickers``; every other channel is subscribed unfiltered."""
DUPLICATE_TOLERANCE = 16
"""A seq at most this far behind the last one is a re-send and is dropped; further back means
the sid's stream restarted or broke, and its books are resynced."""
MAX_RESUBSCRIBES = 5
"""Resubscriptions of one channel per connection before giving up on the connection."""


@dataclass(slots=True)
class _Pending:
    """What a command id was sent for (this connection only)."""

    kind: Literal["subscribe", "unsubscribe", "get_snapshot"]
    channel: str
    sid: int | None = None
    markets: tuple[str, ...] = ()


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

    def probe(self, markets: Iterable[str]) -> list[SessionOutput]:
        """Ask for fresh snapshots of ``markets`` (those we watch whose book is fresh; a stale one
        already has a request out): Kalshi sends no per-market heartbeat, so a quiet book and a
        book whose frames stopped look alike until a snapshot is asked for. Empty when the book
        subscription is not up."""
        sid = self._book_sid()
        wanted = tuple(m for m in dict.fromkeys(markets)
                       if m in self._books and not self._books[m].stale)
        if sid is None or not wanted or not self.connected:
            return []
        return [self._get_snapshot(sid, wanted)]

    # --- frames ---

    def on_message(self, raw: ks.RawBody, receipt_ns: int) -> list[SessionOutput]:
        """One server frame → events and commands. Raises :class:`VenueProtocolError` only when
        the connection should be dropped (resubscription loop)."""
        plain = _plain_delta(raw)
        if plain is not None:  # the hot frame, without the wire model (same outputs)
            return self._on_plain_delta(plain, receipt_ns)
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
            return self._apply_delta(out, sid, msg.seq, market, book, msg.msg.side, price, delta,
                                     exchange_ns, receipt_ns)
        out.append(BookUpdated(market, book.top(), self._views[market], exchange_ns, receipt_ns,
                               sid, msg.seq))
        return out

    def _on_plain_delta(self, d: _PlainDelta, receipt_ns: int) -> list[SessionOutput]:
        """:meth:`_on_book_message` for a delta read by :func:`_plain_delta` (same steps)."""
        sid, seq, market = d[0], d[1], d[2]
        if sid != self._book_sid():
            log.debug("kalshi ws: orderbook_delta for sid %s that is not our book subscription", sid)
            return []
        out, proceed = self._check_seq(sid, seq, receipt_ns)
        if not proceed:
            return out
        book = self._books.get(market)
        if book is None:
            log.debug("kalshi ws: orderbook_delta for unwatched market %s", market)
            return out
        return self._apply_delta(out, sid, seq, market, book, d[3], d[4], d[5], d[6], receipt_ns)

    def _apply_delta(self, out: list[SessionOutput], sid: int, seq: int, market: str,
                     book: MarketBook, side: str, price: int, delta: int, exchange_ns: int | None,
                     receipt_ns: int) -> list[SessionOutput]:
        if book.stale:
            return out  # waiting for its snapshot; the snapshot will include this change
        if not book.apply_delta(side, price, delta, use_yes_price=self.use_yes_price,  # type: ignore[arg-type]
                                exchange_ns=exchange_ns, receipt_ns=receipt_ns):
            log.warning("kalshi ws: delta %s %s@%s takes %s below zero (sid %s seq %s)",
                        side, delta, price, market, sid, seq)
            out.append(BookStale((market,), "negative_level", receipt_ns, f"sid {sid} seq {seq}"))
            out.append(self._get_snapshot(sid, (market,)))
            return out
        out.append(BookUpdated(market, book.top(), self._views[market], exchange_ns, receipt_ns,
                               sid, seq))
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
        except (ValueError, TypeError, RecursionError):
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
