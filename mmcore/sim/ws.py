"""The local exchange's WebSocket endpoint, ``/trade-api/ws/v2``, speaking Kalshi's protocol.

Layers (style: a sans-I/O worker with a thin driver):

- **Renderers** (``render_*``, :mod:`mmcore.sim.ws_render`, re-exported here): pure functions,
  engine value → Kalshi ``msg`` dict, plus the frame templates.
- :class:`WsSession`: one connection's subscriptions, sids and ``seq`` counters, without I/O.
  :meth:`WsSession.handle_text` turns a client frame into outgoing frames;
  :meth:`WsSession.on_events` turns a batch of engine events into outgoing frames.
- :func:`fan_out`: one published batch → data frames for every subscription it reaches, found
  through a :class:`FanoutIndex` (by channel and market ticker, or owner). Each event's ``msg``
  is rendered and JSON-encoded **once** (once per variant: ``use_yes_price`` on a NO-side
  delta, the owner's ``client_order_id``); a subscriber's frame is that text with its envelope
  (``sid``, ``seq``) spliced around it. :meth:`WsSession.on_events` and the hub share it.
- :class:`WsHub` (the driver): subscribes once to :meth:`LocalExchange.subscribe`, verifies the
  signed handshake, and gives every connection a bounded outbound queue and one writer task.

Rules of this file:

- **Auth**: the upgrade request must carry the three ``KALSHI-ACCESS-*`` headers signed over
  ``timestamp + "GET" + "/trade-api/ws/v2"`` (:func:`verify_request`, window
  ``auth_window_ms`` around ``ex.now_ns()``); otherwise the handshake is refused with HTTP 401
  before ``accept``. The connection's user is ``ex.key_users[key_id]``.
- **Envelope**: ``{"type", "id"?, "sid"?, "seq"?, "msg"?}``. ``id`` echoes a non-zero command id
  on command replies only. ``seq`` runs **per sid**, starts at 1 and goes up by one on each
  message of type ``orderbook_snapshot``, ``orderbook_delta``, ``order_group_updates`` and on the
  ``ok``/``unsubscribed`` replies about that sid (kalshi.md §3.5); ``ticker``, ``trade``,
  ``fill``, ``user_order``, ``market_position``, ``market_lifecycle_v2`` carry ``sid`` only.
  ``get_snapshot`` is answered by the snapshots alone (no ``ok``), on the sid's seq stream.
  Frames are compact JSON (``separators=(",", ":")``), keys in that order.
- **One sid per channel and connection**: subscribing again to a channel merges the new markets
  into the existing sid and answers ``subscribed`` with that sid (Kalshi since Oct 2025; error 6
  is never sent). A command is checked in full before anything changes.
- **Consistency**: engine calls never await and every mutation publishes synchronously
  (:meth:`LocalExchange.mutate`), so a snapshot taken while handling a command is exactly the
  book the following deltas apply to. The driver publishes undrained engine events before each
  command. Everything runs on the exchange's event loop thread.
- **Backpressure**: the event sink never blocks. Data frames count against a per-connection bound
  (``queue_max_messages``); a data frame that does not fit kills its subscription with error 25
  (terminal, as on Kalshi; the error carries that ``sid``). Command replies are never dropped.
- **Sending**: data frames are sent by the hub's flush, which runs on the next loop pass, but
  no sooner than ``flush_spacing_s`` (default :data:`DEFAULT_FLUSH_SPACING_S`) × the number of
  connections the previous flush reached: an idle exchange or a lone subscriber sees no delay,
  a busy fan-out sends each connection's frames in batches (with 50 subscribers, at most one
  flush per 5 ms). A flush writes a connection's whole queue at once, synchronously, through
  :meth:`HeartbeatProtocol.send_texts` (framed here, one socket write) when the server offers
  it and the connection's writer task is idle; otherwise (another ASGI server, a paused
  transport, a close or a disconnect fault pending) it wakes the writer task, which sends
  everything queued back to back with one ``websocket.send_text`` per frame. Command replies
  wake the writer at once. Per flush and connection the cost is about one ``send`` call, so
  the spacing bounds that overhead instead of paying it per frame.
- **Compression**: permessage-deflate is accepted when the client offers it (as Kalshi does)
  unless the server runs with ``ws_server_options(per_message_deflate=False)``; messages under
  1 KiB go uncompressed (:mod:`mmcore.sim.ws_protocol`).
- **Faults** (``ex.faults``; each use decrements the counter and appends to ``faults.log``):
  ``ws_seq_gap_pending`` skips one seq number before the next N ``orderbook_delta`` /
  ``order_group_updates`` frames; ``ws_duplicate_pending`` sends the next N ``orderbook_delta``
  frames twice with the same seq; ``ws_reorder_pending`` holds back the next N delta frames, each
  sent right after the next delta frame of its subscription (seq n+1 arrives before n); ``ws_silent_until_ns`` holds back a market's deltas and
  snapshots until then (no seq is used up: the feed is silent, not gapped); ``ws_disconnect_pending`` closes (code 1011) the next N
  connections about to send a frame. :meth:`WsHub.kick_all` closes every connection.
- **Heartbeats**: WebSocket Ping frames with payload ``heartbeat`` every 10 s, sent by the
  server protocol (:mod:`mmcore.sim.ws_protocol`; run uvicorn with :func:`ws_server_options`).
- **Ids**: ``market_id`` is a UUID derived from the ticker (:func:`market_id_for`); order, trade,
  order-group and user ids are the engine's (``ord-00000001``, ``trd-…``, ``og-…``, ``mm``),
  the same ones REST shows, although the asyncapi declares ``format: uuid`` for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from mmcore.errors import AuthError, InvalidRequestError
from mmcore.sim.engine import Engine
from mmcore.sim.engine_types import (
    BookDelta, EngineEvent, FillEvent, LifecycleEvent, OrderEvent, OrderGroupEvent,
    PositionEvent, TradeEvent,
)
from mmcore.sim.exchange import Faults, LocalExchange
from mmcore.sim.ws_protocol import (
    DIRECT_SEND_EXTENSION, HEARTBEAT_INTERVAL_S, HEARTBEAT_PAYLOAD, HEARTBEAT_TIMEOUT_S,
    HeartbeatProtocol, ws_server_options,
)
from mmcore.sim.ws_render import (
    EXCHANGE_INDEX, FRAME_TEMPLATES, TickerBoard, encode_json, market_id_for, render_delta,
    render_fill, render_lifecycle, render_order_group, render_position, render_snapshot,
    render_trade, render_user_order,
)
from mmcore.venues.kalshi.auth import DEFAULT_WINDOW_MS, WS_PATH, verify_request
from mmcore.wirejson import loads_client
from mmcore.venues.kalshi.schema import (
    WS_ERROR_CODES, ListSubscriptionsCommand, SubscribeCommand, UnsubscribeCommand,
    UpdateSubscriptionCommand, parse_ws_command,
)

__all__ = [
    "DEFAULT_FLUSH_SPACING_S", "DEFAULT_QUEUE_MAX_MESSAGES", "EXCHANGE_INDEX",
    "HEARTBEAT_INTERVAL_S", "HEARTBEAT_PAYLOAD", "HEARTBEAT_TIMEOUT_S", "FanoutIndex", "HeartbeatProtocol", "Outgoing",
    "Subscription", "TickerBoard", "WsHub", "WsSession", "fan_out", "market_id_for",
    "render_delta", "render_fill", "render_lifecycle", "render_order_group", "render_position",
    "render_snapshot", "render_trade", "render_user_order", "ws_route", "ws_server_options",
]

log = logging.getLogger(__name__)

DEFAULT_QUEUE_MAX_MESSAGES = 10_000
"""Data frames a connection may have waiting before a subscription overflows (error 25)."""
DEFAULT_FLUSH_SPACING_S = 100e-6
"""Pause before the next flush per connection the last flush reached (see the module rules). A
connection's flush costs ~5–8 µs here (mostly the ``send`` call) and its reader pays about as
much per ``recv``; with 50 subscribers this batches ~35 frames per write at 7,000 deltas/s for
~5 ms of added delay. Measured with ``bench/exchange_fanout.py`` (50 µs: ~4,000–6,000 deltas/s,
the client core saturated by small reads; 100 µs: ~7,200–7,500; 200 µs: ~7,000–8,000 for
twice the delay)."""

SEQUENCED_DATA_TYPES = frozenset({"orderbook_snapshot", "orderbook_delta", "order_group_updates"})
FILTERLESS_CHANNELS = frozenset(
    {"market_lifecycle_v2", "multivariate_market_lifecycle", "order_group_updates",
     "communications"})
"""Channels that take no market filter (every market, or the user's own groups)."""
OWNED_CHANNELS = frozenset({"fill", "user_orders", "market_positions", "order_group_updates"})
"""Channels that carry only the connection's own user's events."""
QUIET_CHANNELS = frozenset({"multivariate_market_lifecycle", "communications"})
"""Accepted but never emit here: the local exchange has no combos and no RFQs."""
UNAVAILABLE_CHANNELS = frozenset({"cfbenchmarks_value", "pyth_value"})


# === one connection, without I/O =================================================================


class Outgoing(NamedTuple):
    """A frame to send. ``data`` frames count against the connection's bound and die with their
    subscription; command replies (``data=False``) always go out. ``text`` is the frame already
    encoded (then ``payload`` is ``None``)."""

    payload: dict[str, Any] | None
    sid: int | None = None
    data: bool = True
    text: str | None = None

    def wire(self) -> str:
        """The frame's JSON text."""
        return self.text if self.text is not None else encode_json(self.payload)


@dataclass
class Subscription:
    """One sid: its channel, market filter (``None`` = every market), pricing flag and the last
    seq used."""

    sid: int
    channel: str
    tickers: dict[str, None] | None
    use_yes_price: bool = False
    skip_ticker_ack: bool = False
    seq: int = 0
    held: str | None = None
    """A delta frame held back by the ``reorder_delta`` fault, sent after the next one."""

    def covers(self, ticker: str) -> bool:
        return self.tickers is None or ticker in self.tickers

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class CommandError(Exception):
    """A command refused with a Kalshi WS error code (nothing changed)."""

    def __init__(self, code: int, detail: str, market_ticker: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.market_ticker = market_ticker


def error_frame(code: int, detail: str = "", *, cmd_id: int | None = None, sid: int | None = None,
                market_ticker: str | None = None) -> Outgoing:
    """An ``error`` reply: ``msg`` is Kalshi's text for ``code`` plus the detail."""
    text = WS_ERROR_CODES.get(code, "Error")
    body: dict[str, Any] = {"code": code, "msg": f"{text}: {detail}" if detail else text}
    if market_ticker is not None:
        body["market_ticker"] = market_ticker
    payload: dict[str, Any] = {"type": "error"}
    if cmd_id:
        payload["id"] = cmd_id
    if sid is not None:
        payload["sid"] = sid
    payload["msg"] = body
    return Outgoing(payload, sid, data=False)


def _raw_id(text: str) -> int | None:
    with contextlib.suppress(ValueError, TypeError):
        obj = loads_client(text)
        if isinstance(obj, dict) and type(obj.get("id")) is int:
            return obj["id"]
    return None


class WsSession:
    """One connection's protocol state (sans I/O): commands in, frames out.

    ``clock_ns`` stamps fault log entries and ``ticker`` messages; ``faults`` is shared with the
    whole exchange (counters are consumed by whichever connection uses them first).
    ``on_change`` (optional) is called after every command and every dropped subscription, so a
    driver can re-index who listens to what.
    """

    def __init__(self, user_id: str, engine: Engine, faults: Faults, board: TickerBoard,
                 clock_ns: Callable[[], int]) -> None:
        self.user_id = user_id
        self.engine = engine
        self.faults = faults
        self.board = board
        self.clock_ns = clock_ns
        self.subs: dict[int, Subscription] = {}
        self.by_channel: dict[str, Subscription] = {}
        self._next_sid = 1
        self.on_change: Callable[[], None] | None = None

    # --- commands -------------------------------------------------------------------------------

    def handle_text(self, text: str) -> list[Outgoing]:
        """One client text frame → reply frames (errors included; never raises for bad input)."""
        try:
            return self._command(text)
        finally:
            self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _command(self, text: str) -> list[Outgoing]:
        try:
            cmd = parse_ws_command(text)
        except InvalidRequestError as exc:
            return [error_frame(int(exc.code or 1), str(exc), cmd_id=_raw_id(text))]
        try:
            if isinstance(cmd, SubscribeCommand):
                return self._subscribe(cmd)
            if isinstance(cmd, UnsubscribeCommand):
                return self._unsubscribe(cmd)
            if isinstance(cmd, UpdateSubscriptionCommand):
                return self._update(cmd)
            assert isinstance(cmd, ListSubscriptionsCommand)
            return [self._reply(cmd.id, "ok", None,
                                [{"channel": s.channel, "sid": s.sid} for s in self.subs.values()])]
        except CommandError as exc:
            return [error_frame(exc.code, exc.detail, cmd_id=cmd.id,
                                market_ticker=exc.market_ticker)]

    def _reply(self, cmd_id: int, type_: str, sub: Subscription | None,
               msg: Any = None) -> Outgoing:
        payload: dict[str, Any] = {"type": type_}
        if cmd_id:
            payload["id"] = cmd_id
        if sub is not None:
            payload["sid"] = sub.sid
            payload["seq"] = sub.next_seq()
        if msg is not None:
            payload["msg"] = msg
        return Outgoing(payload, sub.sid if sub else None, data=False)

    def _markets(self, tickers: Iterable[str], ids: Iterable[str] = ()) -> list[str]:
        """Known tickers (ids resolved), in order, deduplicated; unknown → error 16."""
        markets = self.engine.markets
        by_id = {market_id_for(t): t for t in markets} if ids else {}
        out: dict[str, None] = {}
        for t in tickers:
            if t not in markets:
                raise CommandError(16, f"market {t!r} not found", market_ticker=t)
            out[t] = None
        for i in ids:
            if i not in by_id:
                raise CommandError(16, f"market id {i!r} not found")
            out[by_id[i]] = None
        return list(out)

    def _subscribe(self, cmd: SubscribeCommand) -> list[Outgoing]:
        p = cmd.params
        channels = list(dict.fromkeys(p.channels))
        ids = [p.market_id] if p.market_id is not None else list(p.market_ids or [])
        tickers = self._markets(p.tickers(), ids)
        for ch in channels:
            if ch in UNAVAILABLE_CHANNELS:
                raise CommandError(8, f"channel {ch} is not available on the local exchange")
            if ch == "orderbook_delta" and not tickers:
                raise CommandError(14, "orderbook_delta needs market_ticker(s)")
            old = self.by_channel.get(ch)
            if (ch == "orderbook_delta" and old is not None and p.use_yes_price is not None
                    and p.use_yes_price != old.use_yes_price):
                raise CommandError(11, f"use_yes_price differs from subscription {old.sid}")
        out: list[Outgoing] = []
        for ch in channels:
            flt = None if ch in FILTERLESS_CHANNELS or not tickers else dict.fromkeys(tickers)
            sub = self.by_channel.get(ch)
            if sub is None:
                sub = Subscription(self._next_sid, ch, flt, bool(p.use_yes_price),
                                   bool(p.skip_ticker_ack))
                self._next_sid += 1
                self.subs[sub.sid] = sub
                self.by_channel[ch] = sub
                added = list(flt or ())
            else:
                added = self._add(sub, flt)
            out.append(self._reply(cmd.id, "subscribed", None, {"channel": ch, "sid": sub.sid}))
            out += self._initial(sub, added, bool(p.send_initial_snapshot))
        return out

    @staticmethod
    def _add(sub: Subscription, flt: dict[str, None] | None) -> list[str]:
        """Merge a filter into a subscription; the newly covered tickers."""
        if sub.tickers is None:
            return []
        if flt is None:
            sub.tickers = None
            return []
        added = [t for t in flt if t not in sub.tickers]
        sub.tickers.update(dict.fromkeys(added))
        return added

    def _initial(self, sub: Subscription, tickers: list[str], ticker_snapshot: bool
                 ) -> list[Outgoing]:
        """Snapshots for newly covered markets (orderbook_delta; ticker with the flag)."""
        if sub.channel == "orderbook_delta":
            return [self._snapshot(sub, t) for t in tickers if not self._silent(t)]
        if sub.channel == "ticker" and ticker_snapshot:
            now = self.clock_ns()
            return [Outgoing({"type": "ticker", "sid": sub.sid,
                              "msg": self.board.render(t, now)}, sub.sid) for t in tickers]
        return []

    def _silent(self, ticker: str) -> bool:
        """The ``ws_silence`` fault holds this market's book frames back (no seq used up)."""
        return self.clock_ns() < self.faults.ws_silent_until_ns.get(ticker, 0)

    def _snapshot(self, sub: Subscription, ticker: str) -> Outgoing:
        yes, no = self.engine.orderbook(ticker)
        msg = render_snapshot(ticker, yes, no, use_yes_price=sub.use_yes_price)
        return Outgoing({"type": "orderbook_snapshot", "sid": sub.sid, "seq": sub.next_seq(),
                         "msg": msg}, sub.sid)

    def _unsubscribe(self, cmd: UnsubscribeCommand) -> list[Outgoing]:
        out = []
        for sid in dict.fromkeys(cmd.params.sids):
            sub = self.subs.get(sid)
            if sub is None:
                out.append(error_frame(7, f"sid {sid} not found", cmd_id=cmd.id))
                continue
            self.drop(sid)
            out.append(self._reply(cmd.id, "unsubscribed", sub))
        return out

    def _update(self, cmd: UpdateSubscriptionCommand) -> list[Outgoing]:
        p = cmd.params
        sid = p.target_sid()
        sub = self.subs.get(sid)
        if sub is None:
            raise CommandError(7, f"sid {sid} not found")
        if p.action == "get_snapshot":
            if sub.channel != "orderbook_delta":
                raise CommandError(13, "get_snapshot is for orderbook_delta subscriptions")
            tickers = self._markets(p.tickers())
            for t in tickers:
                if not sub.covers(t):
                    raise CommandError(11, f"{t} is not in subscription {sid}", market_ticker=t)
            return [self._snapshot(sub, t) for t in tickers if not self._silent(t)]
        if sub.channel in FILTERLESS_CHANNELS:
            raise CommandError(13, f"{sub.channel} takes no market filter")
        ids = [p.market_id] if p.market_id is not None else list(p.market_ids or [])
        tickers = self._markets(p.tickers(), ids)
        if p.action == "add_markets":
            added = self._add(sub, dict.fromkeys(tickers))
        else:
            if sub.tickers is None:
                raise CommandError(11, f"subscription {sid} covers every market")
            for t in tickers:
                sub.tickers.pop(t, None)
            added = []
        msg = None
        if sub.tickers is not None and not sub.skip_ticker_ack:
            msg = {"market_tickers": list(sub.tickers)}
        return [self._reply(cmd.id, "ok", sub, msg),
                *self._initial(sub, added, bool(p.send_initial_snapshot))]

    def drop(self, sid: int) -> None:
        """Forget a subscription (unsubscribe, or killed by an overflow)."""
        sub = self.subs.pop(sid, None)
        if sub is not None and self.by_channel.get(sub.channel) is sub:
            del self.by_channel[sub.channel]
        self._changed()


    # --- events ---------------------------------------------------------------------------------

    def log_fault(self, kind: str, **params: Any) -> None:
        """Record an applied fault in ``faults.log`` (``at_ns``, ``kind``, ``params``)."""
        self.faults.log.append({"at_ns": self.clock_ns(), "kind": kind,
                                "params": {"user": self.user_id, **params}})

    def on_events(self, events: list[EngineEvent],
                  ticker_msgs: list[dict[str, Any]]) -> list[Outgoing]:
        """Frames for one published batch, in event order, then this batch's ``ticker`` msgs
        (pre-encoded: ``Outgoing.text``). The hub does the same for every connection at once."""
        sink = _FrameList(self)
        fan_out(events, ticker_msgs, FanoutIndex([sink]), self.engine, self.faults)
        return sink.frames


# === fan-out: one batch → every subscription it reaches ==========================================


class FanoutTarget(Protocol):
    """A receiver of data frames: a session and where its frames go."""

    session: WsSession

    def push_data(self, text: str, sid: int) -> None: ...


Pair = tuple[FanoutTarget, Subscription]
_NONE: tuple[Pair, ...] = ()


class _FrameList:
    """:meth:`WsSession.on_events`'s target: collects the frames."""

    def __init__(self, session: WsSession) -> None:
        self.session = session
        self.frames: list[Outgoing] = []

    def push_data(self, text: str, sid: int) -> None:
        self.frames.append(Outgoing(None, sid, True, text))


class FanoutIndex:
    """Who listens to what, built from the targets' subscriptions: market channels by channel and
    ticker (plus the subscriptions covering every market), owned channels by channel and user.
    An event then costs work only for the subscriptions it reaches. Rebuild after any change."""

    def __init__(self, targets: Iterable[FanoutTarget]) -> None:
        self.by_market: dict[str, dict[str, list[Pair]]] = {}
        self.every_market: dict[str, list[Pair]] = {}
        self.by_owner: dict[str, dict[str, list[Pair]]] = {}
        for target in targets:
            session = target.session
            for sub in session.subs.values():
                ch = sub.channel
                if ch in OWNED_CHANNELS:
                    self.by_owner.setdefault(ch, {}).setdefault(session.user_id, []).append(
                        (target, sub))
                elif sub.tickers is None:
                    self.every_market.setdefault(ch, []).append((target, sub))
                else:
                    markets = self.by_market.setdefault(ch, {})
                    for ticker in sub.tickers:
                        markets.setdefault(ticker, []).append((target, sub))

    def has(self, channel: str) -> bool:
        return (channel in self.by_market or channel in self.every_market
                or channel in self.by_owner)

    def market(self, channel: str, ticker: str) -> Sequence[Pair]:
        """Subscriptions of a market channel covering ``ticker``."""
        every = self.every_market.get(channel)
        markets = self.by_market.get(channel)
        hit = markets.get(ticker) if markets is not None else None
        if every is None:
            return hit or _NONE
        return every if hit is None else every + hit

    def owned(self, channel: str, user_id: str, ticker: str | None) -> Sequence[Pair]:
        """``user_id``'s subscriptions of an owned channel (covering ``ticker`` when given)."""
        users = self.by_owner.get(channel)
        pairs = users.get(user_id) if users is not None else None
        if not pairs:
            return _NONE
        if ticker is None:
            return pairs
        return [p for p in pairs if p[1].covers(ticker)]


_DELTA = FRAME_TEMPLATES["orderbook_delta"]


def _fan_delta(ev: BookDelta, pairs: Sequence[Pair], faults: Faults) -> None:
    """One ``orderbook_delta`` to its subscriptions. At most four bodies per event (NO-side
    price flipped for ``use_yes_price`` or not × the owner's ``client_order_id`` or not), each
    encoded once; the owner's variant only if the owner subscribes."""
    if faults.ws_silent_until_ns and ev.ts_ns < faults.ws_silent_until_ns.get(ev.ticker, 0):
        return  # ws_silence: this market's feed is quiet, the socket stays up
    flip = ev.side == "no"
    owner = ev.user_id if ev.client_order_id is not None else None
    if (owner is None and faults.ws_seq_gap_pending <= 0 and faults.ws_duplicate_pending <= 0
            and faults.ws_reorder_pending <= 0 and faults.ws_reorder_held <= 0):
        # the common case, kept tight: no owner variant, no fault to apply
        plain = flipped = ""
        for target, sub in pairs:
            if flip and sub.use_yes_price:
                body = flipped or (flipped := encode_json(
                    render_delta(ev, use_yes_price=True, own=False)))
            else:
                body = plain or (plain := encode_json(
                    render_delta(ev, use_yes_price=False, own=False)))
            sub.seq = seq = sub.seq + 1
            target.push_data(_DELTA % (sub.sid, seq, body), sub.sid)
        return
    bodies: dict[int, str] = {}
    for target, sub in pairs:
        session = target.session
        own = owner is not None and session.user_id == owner
        key = (2 if flip and sub.use_yes_price else 0) + own
        body = bodies.get(key)
        if body is None:
            body = bodies[key] = encode_json(
                render_delta(ev, use_yes_price=sub.use_yes_price, own=own))
        if faults.ws_seq_gap_pending > 0:
            faults.ws_seq_gap_pending -= 1
            session.log_fault("seq_gap", sid=sub.sid, skipped_seq=sub.next_seq())
        sub.seq += 1
        text = _DELTA % (sub.sid, sub.seq, body)
        if sub.held is not None:  # reorder_delta: this frame first, then the one held back
            target.push_data(text, sub.sid)
            target.push_data(sub.held, sub.sid)
            sub.held = None
            faults.ws_reorder_held -= 1
            session.log_fault("reorder_delta", sid=sub.sid, released_after_seq=sub.seq)
            continue
        if faults.ws_reorder_pending > 0:
            faults.ws_reorder_pending -= 1
            faults.ws_reorder_held += 1
            sub.held = text
            session.log_fault("reorder_delta", sid=sub.sid, held_seq=sub.seq)
            continue
        target.push_data(text, sub.sid)
        if faults.ws_duplicate_pending > 0:
            faults.ws_duplicate_pending -= 1
            session.log_fault("duplicate_delta", sid=sub.sid, seq=sub.seq)
            target.push_data(text, sub.sid)


def _fan_plain(type_: str, body: str, pairs: Sequence[Pair]) -> None:
    template = FRAME_TEMPLATES[type_]
    for target, sub in pairs:
        target.push_data(template % (sub.sid, body), sub.sid)


def _fan_sequenced(type_: str, body: str, pairs: Sequence[Pair], faults: Faults) -> None:
    template = FRAME_TEMPLATES[type_]
    for target, sub in pairs:
        if faults.ws_seq_gap_pending > 0:
            faults.ws_seq_gap_pending -= 1
            target.session.log_fault("seq_gap", sid=sub.sid, skipped_seq=sub.next_seq())
        target.push_data(template % (sub.sid, sub.next_seq(), body), sub.sid)


def _subscribers(ev: EngineEvent, index: FanoutIndex) -> Sequence[Pair]:
    """The subscriptions an event reaches."""
    if isinstance(ev, BookDelta):
        return index.market("orderbook_delta", ev.ticker)
    if isinstance(ev, TradeEvent):
        return index.market("trade", ev.trade.ticker)
    if isinstance(ev, FillEvent):
        return index.owned("fill", ev.fill.user_id, ev.fill.ticker)
    if isinstance(ev, OrderEvent):
        return index.owned("user_orders", ev.order.user_id, ev.order.ticker)
    if isinstance(ev, PositionEvent):
        return index.owned("market_positions", ev.user_id, ev.ticker)
    if isinstance(ev, LifecycleEvent):
        return index.market("market_lifecycle_v2", ev.ticker)
    if isinstance(ev, OrderGroupEvent):
        return index.owned("order_group_updates", ev.user_id, None)
    return _NONE


def _emit(ev: EngineEvent, pairs: Sequence[Pair], engine: Engine, faults: Faults) -> None:
    """One event's frames to ``pairs`` (its subscriptions): the msg rendered once."""
    if isinstance(ev, BookDelta):
        _fan_delta(ev, pairs, faults)
    elif isinstance(ev, TradeEvent):
        _fan_plain("trade", encode_json(render_trade(ev.trade)), pairs)
    elif isinstance(ev, FillEvent):
        _fan_plain("fill", encode_json(render_fill(ev.fill)), pairs)
    elif isinstance(ev, OrderEvent):
        _fan_plain("user_order", encode_json(render_user_order(ev.order)), pairs)
    elif isinstance(ev, PositionEvent):
        _fan_plain("market_position", encode_json(render_position(ev)), pairs)
    elif isinstance(ev, LifecycleEvent):
        grid = engine.get_market(ev.ticker).grid if ev.event_type == "created" else None
        _fan_plain("market_lifecycle_v2", encode_json(render_lifecycle(ev, grid)), pairs)
    elif isinstance(ev, OrderGroupEvent):
        _fan_sequenced("order_group_updates", encode_json(render_order_group(ev)), pairs, faults)


def fan_out(events: list[EngineEvent], ticker_msgs: list[dict[str, Any]], index: FanoutIndex,
            engine: Engine, faults: Faults,
            on_error: Callable[[Sequence[Pair]], None] | None = None) -> None:
    """Push one published batch's data frames to every subscription in ``index`` it reaches:
    per target, in event order, then the ``ticker`` msgs. Each ``msg`` is rendered and encoded
    once per batch (see :func:`_fan_delta` for a delta's variants). With ``on_error``, an event
    whose frames could not be made is reported with its subscriptions (called inside the
    ``except`` block) and the rest go on; without, the exception propagates."""
    for ev in events:
        pairs: Sequence[Pair] = _NONE
        try:
            pairs = _subscribers(ev, index)
            if pairs:
                _emit(ev, pairs, engine, faults)
        except Exception:
            if on_error is None:
                raise
            on_error(pairs)
    for msg in ticker_msgs:
        pairs = _NONE
        try:
            pairs = index.market("ticker", msg["market_ticker"])
            if pairs:
                _fan_plain("ticker", encode_json(msg), pairs)
        except Exception:
            if on_error is None:
                raise
            on_error(pairs)


# === the driver ==================================================================================


_Queued = str | Outgoing | None
"""A connection's outbound queue: ``str`` = an encoded data frame, :class:`Outgoing` = a command
reply, ``None`` = stop (a close was requested)."""


class _Connection:
    """One accepted socket: a session, a bounded outbound queue and the one task that writes."""

    def __init__(self, hub: WsHub, websocket: WebSocket, session: WsSession) -> None:
        self.hub = hub
        self.websocket = websocket
        self.session = session
        self.pending: deque[_Queued] = deque()
        self.data_queued = 0
        self.close_request: tuple[int, str] | None = None
        self.peer_gone = False
        self.writer: asyncio.Task[None] | None = None
        self.flagged = False
        """Waiting for the hub's next flush."""
        self._wakeup: asyncio.Future[None] | None = None
        ext = websocket.scope.get("extensions") or {}
        direct = ext.get(DIRECT_SEND_EXTENSION)
        self.direct: HeartbeatProtocol | None = direct["protocol"] if direct else None
        """The server protocol's synchronous batch send, when the server offers it."""

    def push_data(self, text: str, sid: int) -> None:
        """Queue an encoded data frame without blocking; over the bound it kills its sid (error
        25). The writer is woken by the hub's next flush."""
        if self.close_request is not None or sid not in self.session.subs:
            return
        if self.data_queued >= self.hub.queue_max_messages:
            self.session.drop(sid)
            self.push_reply(error_frame(
                25, f"subscription {sid} dropped after "
                f"{self.hub.queue_max_messages} queued messages", sid=sid))
            return
        self.data_queued += 1
        self.pending.append(text)
        if not self.flagged:
            self.flagged = True
            self.hub.flag(self)

    def push_reply(self, frame: Outgoing) -> None:
        """Queue a command reply (never dropped) and wake the writer now."""
        if self.close_request is None:
            self.pending.append(frame)
            self.wake()

    def deliver(self, frames: Iterable[Outgoing]) -> None:
        """Queue a command's frames (replies, and data frames such as snapshots) in order."""
        for f in frames:
            if f.data:
                self.push_data(f.wire(), f.sid)  # type: ignore[arg-type]
            else:
                self.push_reply(f)

    def drain_direct(self) -> bool:
        """Send everything queued now, from the hub's flush, without waking the writer task:
        one synchronous framed write (:meth:`HeartbeatProtocol.send_texts`). Only when the
        writer is idle (so frames stay in order), no close is pending, no disconnect fault is
        armed and the protocol can write. Returns False when the writer must be woken instead
        (it then sends what is left, or closes)."""
        if self._wakeup is None or self.close_request is not None:
            return False
        return self._send_direct() and not self.pending

    def _send_direct(self) -> bool:
        """Pop every queued frame up to a close marker and write them in one
        :meth:`HeartbeatProtocol.send_texts` call; False (nothing popped) when the direct path
        is unavailable or a disconnect fault is armed."""
        direct = self.direct
        if (direct is None or self.hub.ex.faults.ws_disconnect_pending > 0
                or not direct.direct_ready()):
            return False
        pending = self.pending
        texts: list[str] = []
        while pending:
            item = pending[0]
            if item is None:
                break
            pending.popleft()
            if item.__class__ is str:
                self.data_queued -= 1
                texts.append(item)  # type: ignore[arg-type]
            else:
                texts.append(item.wire())  # type: ignore[union-attr]
        if texts:
            try:
                direct.send_texts(texts)
            except Exception as exc:  # the peer went away: the reader sees the disconnect
                log.debug("ws direct send for %s failed: %r", self.session.user_id, exc)
                return False
        return True

    def wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None:
            self._wakeup = None
            if not waiter.done():
                waiter.set_result(None)

    def request_close(self, code: int, reason: str) -> None:
        """Stop sending and close with ``code`` as soon as the writer wakes up."""
        if self.close_request is None:
            self.close_request = (code, reason)
            self.pending.append(None)
            self.wake()

    async def write(self) -> None:
        """Send everything queued, then wait to be woken: in one framed write when the server
        protocol offers :meth:`HeartbeatProtocol.send_texts` (after waiting out a paused
        transport), else back to back with one ``websocket.send_text`` per frame."""
        faults = self.hub.ex.faults
        pending = self.pending
        send_text = self.websocket.send_text
        direct = self.direct
        loop = asyncio.get_running_loop()
        try:
            while self.close_request is None:
                if not pending:
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    continue
                if direct is not None and pending[0] is not None:
                    if not direct.writable.is_set():  # the peer is slow: wait, then batch
                        await direct.writable.wait()
                        continue
                    if self._send_direct():
                        continue
                item = pending.popleft()
                if item is None or self.close_request is not None:
                    break
                if item.__class__ is str:
                    self.data_queued -= 1
                    text: str = item  # type: ignore[assignment]
                else:
                    text = item.wire()  # type: ignore[union-attr]
                if faults.ws_disconnect_pending > 0:
                    faults.ws_disconnect_pending -= 1
                    self.session.log_fault("ws_disconnect")
                    self.close_request = (1011, "simulated disconnect")
                    break
                await send_text(text)
            if self.close_request is not None and not self.peer_gone:
                await self.websocket.close(*self.close_request)
        except Exception as exc:  # the peer went away mid-send: the reader sees the disconnect
            log.debug("ws writer for %s stopped: %r", self.session.user_id, exc)
        finally:
            self._wakeup = None


class WsHub:
    """Fans the exchange's engine events out to WebSocket connections (see the module rules).

    Create it on the loop that runs the server and mutates the exchange; it subscribes to
    ``ex`` at once (:meth:`close` unsubscribes). Mount :meth:`route` (or :func:`ws_route`).
    ``flush_spacing_s`` paces how often a busy hub wakes writers for data frames (0: on every
    loop pass; see the module rules).
    """

    def __init__(self, ex: LocalExchange, *,
                 queue_max_messages: int = DEFAULT_QUEUE_MAX_MESSAGES,
                 auth_window_ms: int = DEFAULT_WINDOW_MS,
                 flush_spacing_s: float = DEFAULT_FLUSH_SPACING_S) -> None:
        if queue_max_messages < 1:
            raise ValueError("queue_max_messages must be >= 1")
        if flush_spacing_s < 0:
            raise ValueError("flush_spacing_s must be >= 0")
        self.ex = ex
        self.queue_max_messages = queue_max_messages
        self.auth_window_ms = auth_window_ms
        self.flush_spacing_s = flush_spacing_s
        self.board = TickerBoard(ex.engine)
        self._connections: set[_Connection] = set()
        self._index: FanoutIndex | None = None
        self._flagged: list[_Connection] = []
        self._flush_handle: asyncio.Handle | None = None
        self._next_flush_at = float("-inf")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe = ex.subscribe(self._on_events)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def route(self) -> WebSocketRoute:
        return WebSocketRoute(WS_PATH, self.endpoint, name="kalshi_ws")

    def close(self) -> None:
        """Stop receiving engine events (connections are left to :meth:`kick_all`)."""
        self._unsubscribe()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._flush()

    def _invalidate(self) -> None:
        self._index = None

    def _fanout_index(self) -> FanoutIndex:
        if self._index is None:
            self._index = FanoutIndex(self._connections)
        return self._index

    def flag(self, conn: _Connection) -> None:
        """``conn`` has data frames queued: wake its writer at the next flush — on the next loop
        pass, or once the spacing after the previous flush has passed."""
        self._flagged.append(conn)
        if self._flush_handle is None:
            loop = self._loop or asyncio.get_running_loop()
            delay = self._next_flush_at - loop.time()
            self._flush_handle = (loop.call_soon(self._flush) if delay <= 0
                                  else loop.call_later(delay, self._flush))

    def _flush(self) -> None:
        self._flush_handle = None
        flagged, self._flagged = self._flagged, []
        if self._loop is not None:
            self._next_flush_at = self._loop.time() + self.flush_spacing_s * len(flagged)
        for conn in flagged:
            conn.flagged = False
            if not conn.drain_direct():
                conn.wake()

    def _on_events(self, events: list[EngineEvent]) -> None:
        """The exchange's sink: render and queue, never block, never raise."""
        if not self._connections:
            return
        index = self._fanout_index()
        try:
            if index.has("ticker"):
                tickers = self.board.changed(events, self.ex.now_ns())
            else:
                tickers = []
                self.board.forget()
        except Exception:
            log.exception("ws ticker rendering failed")
            tickers = []
        fan_out(events, tickers, index, self.ex.engine, self.ex.faults, self._fan_out_failed)

    @staticmethod
    def _fan_out_failed(pairs: Sequence[Pair]) -> None:
        log.exception("ws rendering failed; closing the %d subscription(s) it was for",
                      len(pairs))
        for target, _ in pairs:
            if isinstance(target, _Connection):
                target.request_close(1011, "internal error")

    async def kick_all(self, reason: str = "disconnect", code: int = 1011,
                       timeout_s: float = 5.0) -> int:
        """Close every connection (a "disconnect everyone" fault) and wait up to ``timeout_s``
        for the close frames to go out (a writer still stuck on a peer that does not read is
        cancelled); returns how many connections there were."""
        conns = list(self._connections)
        self.ex.faults.log.append({"at_ns": self.ex.now_ns(), "kind": "ws_kick_all",
                                   "params": {"reason": reason, "connections": len(conns)}})
        for conn in conns:
            conn.request_close(code, reason)
        writers = {c.writer for c in conns if c.writer is not None and not c.writer.done()}
        if writers:
            _, stuck = await asyncio.wait(writers, timeout=timeout_s)
            for task in stuck:
                task.cancel()
        return len(conns)

    def _authenticate(self, websocket: WebSocket) -> str:
        raw = websocket.scope.get("raw_path")
        path = raw.decode("latin-1") if isinstance(raw, bytes) else websocket.scope["path"]
        key_id = verify_request(self.ex.keys, "GET", path, websocket.headers,
                                now_ms=self.ex.now_ns() // 1_000_000,
                                window_ms=self.auth_window_ms)
        user = self.ex.key_users.get(key_id)
        if user is None:
            raise AuthError(f"API key {key_id!r} has no user", status=401,
                            code="unknown_api_key")
        return user

    async def endpoint(self, websocket: WebSocket) -> None:
        """The ``/trade-api/ws/v2`` handler: signed handshake, then read commands until the
        peer leaves while the writer task sends."""
        try:
            user = self._authenticate(websocket)
        except AuthError as exc:
            body = {"code": exc.code or "unauthorized", "message": str(exc), "details": ""}
            try:
                await websocket.send_denial_response(JSONResponse(body, status_code=401))
            except RuntimeError:  # server without the denial extension: a plain 403
                await websocket.close(code=1008)
            return
        await websocket.accept()
        self._loop = asyncio.get_running_loop()
        session = WsSession(user, self.ex.engine, self.ex.faults, self.board, self.ex.now_ns)
        session.on_change = self._invalidate
        conn = _Connection(self, websocket, session)
        conn.writer = asyncio.create_task(conn.write())
        self._connections.add(conn)
        self._invalidate()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if conn.close_request is not None:
                    continue
                self.ex.publish()  # undrained engine events first: snapshots must follow them
                if message.get("text") is None:
                    conn.deliver([error_frame(1, "binary frames are not supported")])
                    continue
                try:
                    frames = session.handle_text(message["text"])
                except Exception:  # a bug must end in a close frame, not a dropped socket
                    log.exception("local exchange ws: command failed")
                    conn.deliver([error_frame(17, "internal error")])
                    conn.request_close(1011, "internal error")
                    continue
                conn.deliver(frames)
        finally:
            self._connections.discard(conn)
            self._invalidate()
            conn.peer_gone = True
            conn.request_close(1000, "")
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(conn.writer, timeout=5.0)


def ws_route(ex: LocalExchange, *, hub: WsHub | None = None, **hub_options: Any) -> WebSocketRoute:
    """The ``/trade-api/ws/v2`` route for ``ex`` (a new :class:`WsHub` unless ``hub`` is given;
    keep your own hub to call :meth:`WsHub.kick_all`)."""
    if hub is None:
        hub = WsHub(ex, **hub_options)
    elif hub.ex is not ex or hub_options:
        raise ValueError("pass either a hub for this exchange or hub options, not both")
    return hub.route()
