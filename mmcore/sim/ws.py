"""The local exchange's WebSocket endpoint, ``/trade-api/ws/v2``, speaking Kalshi's protocol.

Layers (style: a sans-I/O worker with a thin driver):

- **Renderers** (``render_*``): pure functions, engine value → Kalshi ``msg`` dict
  (reference/kalshi.md §3.4, asyncapi ``components.messages``).
- :class:`WsSession`: one connection's subscriptions, sids and ``seq`` counters, without I/O.
  :meth:`WsSession.handle_text` turns a client frame into outgoing frames;
  :meth:`WsSession.on_events` turns a batch of engine events into outgoing frames.
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
- **Faults** (``ex.faults``; each use decrements the counter and appends to ``faults.log``):
  ``ws_seq_gap_pending`` skips one seq number before the next N ``orderbook_delta`` /
  ``order_group_updates`` frames; ``ws_duplicate_pending`` sends the next N ``orderbook_delta``
  frames twice with the same seq; ``ws_disconnect_pending`` closes (code 1011) the next N
  connections about to send a frame. :meth:`WsHub.kick_all` closes every connection.
- **Heartbeats**: WebSocket Ping frames with payload ``heartbeat`` are sent by the server
  transport: run uvicorn with :func:`ws_server_options` (ASGI apps cannot send pings).
- **Ids**: ``market_id`` is a UUID derived from the ticker (:func:`market_id_for`); order, trade,
  order-group and user ids are the engine's (``ord-00000001``, ``trd-…``, ``og-…``, ``mm``),
  the same ones REST shows, although the asyncapi declares ``format: uuid`` for them.

Units: engine ints (price units, centi-contracts, ns) become ``*_dollars`` / ``*_fp`` strings,
``ts`` (RFC 3339 on orderbook deltas, unix seconds elsewhere) and ``ts_ms`` here and only here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from starlette.responses import JSONResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from mmcore.errors import AuthError, InvalidRequestError
from mmcore.sim.engine import Engine
from mmcore.sim.engine_types import (
    BookDelta, EngineEvent, Fill, FillEvent, LifecycleEvent, Order, OrderEvent, OrderGroupEvent,
    PositionEvent, Trade, TradeEvent,
)
from mmcore.sim.exchange import Faults, LocalExchange
from mmcore.ticks import TickGrid
from mmcore.units import CONTRACT, PRICE_ONE, format_count_fp, format_dollars, notional
from mmcore.venues.kalshi.auth import DEFAULT_WINDOW_MS, WS_PATH, verify_request
from mmcore.venues.kalshi.schema import (
    WS_ERROR_CODES, ListSubscriptionsCommand, SubscribeCommand, UnsubscribeCommand,
    UpdateSubscriptionCommand, parse_ws_command,
)

__all__ = [
    "DEFAULT_QUEUE_MAX_MESSAGES", "EXCHANGE_INDEX", "HEARTBEAT_INTERVAL_S", "HEARTBEAT_PAYLOAD",
    "HeartbeatProtocol", "Outgoing", "Subscription", "TickerBoard", "WsHub", "WsSession",
    "market_id_for", "render_delta", "render_fill", "render_lifecycle", "render_order_group",
    "render_position", "render_snapshot", "render_trade", "render_user_order", "ws_route",
    "ws_server_options",
]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10.0
"""Kalshi pings every 10 s (kalshi.md §3.6)."""
HEARTBEAT_TIMEOUT_S = 20.0
"""Close a connection whose pong has not arrived this long after a ping."""
HEARTBEAT_PAYLOAD = b"heartbeat"
DEFAULT_QUEUE_MAX_MESSAGES = 10_000
"""Data frames a connection may have waiting before a subscription overflows (error 25)."""
EXCHANGE_INDEX = 0
"""The shard every simulated market lives on."""

SEQUENCED_DATA_TYPES = frozenset({"orderbook_snapshot", "orderbook_delta", "order_group_updates"})
FILTERLESS_CHANNELS = frozenset(
    {"market_lifecycle_v2", "multivariate_market_lifecycle", "order_group_updates",
     "communications"})
"""Channels that take no market filter (every market, or the user's own groups)."""
QUIET_CHANNELS = frozenset({"multivariate_market_lifecycle", "communications"})
"""Accepted but never emit here: the local exchange has no combos and no RFQs."""
UNAVAILABLE_CHANNELS = frozenset({"cfbenchmarks_value", "pyth_value"})
_MARKET_ID_NAMESPACE = uuid.UUID("6f1b8a52-54a1-4c55-9d3e-3b7c1d0a5e21")


def market_id_for(ticker: str) -> str:
    """The market's UUID on the wire: stable, derived from the ticker (uuid5)."""
    return str(uuid.uuid5(_MARKET_ID_NAMESPACE, ticker))


# === heartbeats (transport) ======================================================================


class HeartbeatProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol with Kalshi's keepalive ping payload ``heartbeat``
    (uvicorn's own ping carries 4 random bytes). Same timers otherwise: a ping every
    ``ws_ping_interval`` s; no pong within ``ws_ping_timeout`` s closes with 1011."""

    def send_keepalive_ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        self.pending_ping_payload = HEARTBEAT_PAYLOAD
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(HEARTBEAT_PAYLOAD)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.ping_timeout is not None:
            self.pong_timer = self.loop.call_later(self.ping_timeout, self.keepalive_timeout)
        else:
            self.schedule_ping()


def ws_server_options(heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
                      heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S) -> dict[str, Any]:
    """uvicorn options (e.g. ``LoopbackServer(app, **ws_server_options())``) for Kalshi-like
    heartbeats: Ping frames with payload ``heartbeat`` every ``heartbeat_interval_s`` seconds."""
    return {"ws": HeartbeatProtocol, "ws_ping_interval": heartbeat_interval_s,
            "ws_ping_timeout": heartbeat_timeout_s}


# === renderers: engine values → Kalshi msg dicts (pure) ==========================================


def _ms(ns: int) -> int:
    return ns // 1_000_000


def _s(ns: int) -> int:
    return ns // 1_000_000_000


def _rfc3339(ns: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-23T18:04:05.123Z``."""
    base = datetime.fromtimestamp(_s(ns), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{_ms(ns) % 1000:03d}Z"


def _outcome(book_side: str) -> str:
    return "yes" if book_side == "bid" else "no"


def _levels(levels: Iterable[tuple[int, int]]) -> list[list[str]]:
    return [[format_dollars(p), format_count_fp(n)] for p, n in levels]


def render_snapshot(ticker: str, yes: list[tuple[int, int]], no: list[tuple[int, int]], *,
                    use_yes_price: bool) -> dict[str, Any]:
    """``orderbook_snapshot`` msg from :meth:`Engine.orderbook` (bids, ascending); NO levels at
    NO-leg prices, or at the YES price (still ascending) with ``use_yes_price``. An empty side's
    key is absent."""
    msg: dict[str, Any] = {"market_ticker": ticker, "market_id": market_id_for(ticker)}
    if yes:
        msg["yes_dollars_fp"] = _levels(yes)
    if no:
        msg["no_dollars_fp"] = _levels(
            sorted((PRICE_ONE - p, n) for p, n in no) if use_yes_price else no)
    return msg


def render_delta(ev: BookDelta, *, use_yes_price: bool, own: bool) -> dict[str, Any]:
    """``orderbook_delta`` msg; ``client_order_id`` only when ``own`` (the subscriber's order)."""
    price = PRICE_ONE - ev.price if ev.side == "no" and use_yes_price else ev.price
    msg: dict[str, Any] = {
        "market_ticker": ev.ticker, "market_id": market_id_for(ev.ticker),
        "price_dollars": format_dollars(price), "delta_fp": format_count_fp(ev.delta),
        "side": ev.side,
    }
    if own and ev.client_order_id is not None:
        msg["client_order_id"] = ev.client_order_id
    msg["ts"] = _rfc3339(ev.ts_ns)
    msg["ts_ms"] = _ms(ev.ts_ns)
    return msg


def render_trade(t: Trade) -> dict[str, Any]:
    side = _outcome(t.taker_side)
    return {
        "trade_id": t.trade_id, "market_ticker": t.ticker,
        "yes_price_dollars": format_dollars(t.price),
        "no_price_dollars": format_dollars(PRICE_ONE - t.price),
        "count_fp": format_count_fp(t.count), "taker_side": side, "taker_outcome_side": side,
        "taker_book_side": t.taker_side, "is_block_trade": False, "ts": _s(t.ts_ns),
        "ts_ms": _ms(t.ts_ns),
    }


def render_fill(f: Fill) -> dict[str, Any]:
    """``fill`` msg. Deprecated ``side``/``action``/``purchased_side`` in legacy terms: an ask
    (sell YES) reads as buying NO (kalshi.md §7.7)."""
    side = _outcome(f.side)
    msg: dict[str, Any] = {
        "trade_id": f.trade_id, "order_id": f.order_id, "market_ticker": f.ticker,
        "exchange_index": EXCHANGE_INDEX, "is_taker": f.is_taker, "side": side, "action": "buy",
        "purchased_side": side, "outcome_side": side, "book_side": f.side,
        "yes_price_dollars": format_dollars(f.price), "count_fp": format_count_fp(f.count),
        "fee_cost": format_dollars(f.fee), "post_position_fp": format_count_fp(f.post_position),
    }
    if f.client_order_id is not None:
        msg["client_order_id"] = f.client_order_id
    msg["ts"] = _s(f.ts_ns)
    msg["ts_ms"] = _ms(f.ts_ns)
    return msg


def render_user_order(o: Order) -> dict[str, Any]:
    """``user_order`` msg (``client_order_id`` is required on the wire: ``""`` when unset)."""
    side = _outcome(o.side)
    msg: dict[str, Any] = {
        "order_id": o.order_id, "user_id": o.user_id, "ticker": o.ticker, "status": o.status,
        "side": side, "is_yes": side == "yes", "outcome_side": side, "book_side": o.side,
        "yes_price_dollars": format_dollars(o.price),
        "fill_count_fp": format_count_fp(o.filled),
        "remaining_count_fp": format_count_fp(o.remaining),
        "initial_count_fp": format_count_fp(o.initial_count),
        "taker_fill_cost_dollars": format_dollars(o.taker_fill_cost),
        "maker_fill_cost_dollars": format_dollars(o.maker_fill_cost),
        "taker_fees_dollars": format_dollars(o.taker_fees),
        "maker_fees_dollars": format_dollars(o.maker_fees),
        "client_order_id": o.client_order_id or "",
        "self_trade_prevention_type": o.self_trade_prevention,
        "created_time": _rfc3339(o.created_ns), "created_ts_ms": _ms(o.created_ns),
        "last_update_time": _rfc3339(o.updated_ns), "last_updated_ts_ms": _ms(o.updated_ns),
        "subaccount_number": 0,
    }
    if o.order_group_id is not None:
        msg["order_group_id"] = o.order_group_id
    if o.expiration_ns is not None:
        msg["expiration_time"] = _rfc3339(o.expiration_ns)
        msg["expiration_ts_ms"] = _ms(o.expiration_ns)
    return msg


def render_position(ev: PositionEvent) -> dict[str, Any]:
    """``market_position`` msg; ``position_fee_cost_dollars`` is the fees paid in the market."""
    return {
        "user_id": ev.user_id, "market_ticker": ev.ticker,
        "position_fp": format_count_fp(ev.position),
        "position_cost_dollars": format_dollars(ev.position_cost),
        "realized_pnl_dollars": format_dollars(ev.realized_pnl),
        "fees_paid_dollars": format_dollars(ev.fees_paid),
        "position_fee_cost_dollars": format_dollars(ev.fees_paid),
        "volume_fp": format_count_fp(ev.volume),
    }


_STRUCTURES = {TickGrid.linear_cent(): "linear_cent", TickGrid.deci_cent(): "deci_cent",
               TickGrid.tapered_deci_cent(): "tapered_deci_cent"}


def render_lifecycle(ev: LifecycleEvent, grid: TickGrid | None = None) -> dict[str, Any]:
    """``market_lifecycle_v2`` msg with the optional fields its ``event_type`` carries (times in
    unix seconds). ``grid`` (the market's) adds ``price_level_structure``/``price_ranges`` to
    ``created``."""
    msg: dict[str, Any] = {"event_type": ev.event_type, "market_ticker": ev.ticker}
    x = ev.extra
    if ev.event_type == "created":
        msg["exchange_index"] = EXCHANGE_INDEX
        if "open_ns" in x:
            msg["open_ts"] = _s(x["open_ns"])
        if "close_ns" in x:
            msg["close_ts"] = _s(x["close_ns"])
        if grid is not None:
            if grid in _STRUCTURES:
                msg["price_level_structure"] = _STRUCTURES[grid]
            msg["price_ranges"] = [
                {"start": format_dollars(a), "end": format_dollars(b), "step": format_dollars(s)}
                for a, b, s in grid.ranges]
    elif ev.event_type in ("activated", "deactivated"):
        msg["is_deactivated"] = bool(x.get("is_deactivated", ev.event_type == "deactivated"))
    elif ev.event_type == "close_date_updated":
        msg["close_ts"] = _s(x.get("close_ns", ev.ts_ns))
    elif ev.event_type == "determined":
        msg["result"] = ev.result or ""
        msg["determination_ts"] = _s(ev.ts_ns)
        if "settlement_value" in x:
            msg["settlement_value"] = format_dollars(x["settlement_value"])
    elif ev.event_type == "settled":
        msg["settled_ts"] = _s(ev.ts_ns)
    return msg


def render_order_group(ev: OrderGroupEvent) -> dict[str, Any]:
    msg: dict[str, Any] = {"event_type": ev.event_type, "order_group_id": ev.order_group_id}
    if ev.contracts_limit is not None:
        msg["contracts_limit_fp"] = format_count_fp(ev.contracts_limit)
    msg["ts_ms"] = _ms(ev.ts_ns)
    return msg


# === ticker channel state ========================================================================


@dataclass
class TickerBoard:
    """Last ``ticker`` state per market; :meth:`changed` renders the markets whose best
    bid/ask, sizes, last price, volume or open interest moved. ``dollar_volume`` is the YES
    notional traded (whole dollars, floored); ``dollar_open_interest`` $1 per open pair."""

    engine: Engine
    _last: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    _notional: dict[str, int] = field(default_factory=dict)
    _last_size: dict[str, int] = field(default_factory=dict)

    def _catch_up(self, ticker: str) -> None:
        if ticker not in self._notional:
            trades = self.engine.trades(ticker)
            self._notional[ticker] = sum(notional(t.price, t.count) for t in trades)
            self._last_size[ticker] = trades[-1].count if trades else 0

    def _state(self, ticker: str) -> tuple[Any, ...]:
        m = self.engine.get_market(ticker)
        return (*self.engine.best(ticker), m.last_price, m.volume, m.open_interest)

    def forget(self) -> None:
        """Drop cached state (nobody listens; the next render recomputes from the engine)."""
        self._last.clear()
        self._notional.clear()
        self._last_size.clear()

    def render(self, ticker: str, now_ns: int,
               state: tuple[Any, ...] | None = None) -> dict[str, Any]:
        """The market's ``ticker`` msg now (also remembered as the last state sent)."""
        self._catch_up(ticker)
        state = self._last[ticker] = state or self._state(ticker)
        bid, bid_size, ask, ask_size, last, volume, oi = state
        return {
            "market_ticker": ticker, "market_id": market_id_for(ticker),
            "price_dollars": format_dollars(last or 0),
            "yes_bid_dollars": format_dollars(bid if bid is not None else 0),
            "yes_ask_dollars": format_dollars(ask if ask is not None else PRICE_ONE),
            "volume_fp": format_count_fp(volume), "open_interest_fp": format_count_fp(oi),
            "dollar_volume": self._notional[ticker] // PRICE_ONE,
            "dollar_open_interest": oi // CONTRACT,
            "yes_bid_size_fp": format_count_fp(bid_size),
            "yes_ask_size_fp": format_count_fp(ask_size),
            "last_trade_size_fp": format_count_fp(self._last_size[ticker]),
            "ts": _s(now_ns), "ts_ms": _ms(now_ns), "time": _rfc3339(now_ns),
        }

    def changed(self, events: list[EngineEvent], now_ns: int) -> list[dict[str, Any]]:
        """``ticker`` msgs for the markets this batch changed, in first-touched order."""
        touched: dict[str, None] = {}
        for ev in events:
            if isinstance(ev, BookDelta):
                touched[ev.ticker] = None
            elif isinstance(ev, TradeEvent):
                t = ev.trade
                if t.ticker in self._notional:
                    self._notional[t.ticker] += notional(t.price, t.count)
                    self._last_size[t.ticker] = t.count
                touched[t.ticker] = None
        out = []
        for t in touched:
            state = self._state(t)
            if self._last.get(t) != state:
                out.append(self.render(t, now_ns, state))
        return out


# === one connection, without I/O =================================================================


class Outgoing(NamedTuple):
    """A frame to send. ``data`` frames count against the connection's bound and die with their
    subscription; command replies (``data=False``) always go out."""

    payload: dict[str, Any]
    sid: int | None = None
    data: bool = True


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
        obj = json.loads(text)
        if isinstance(obj, dict) and type(obj.get("id")) is int:
            return obj["id"]
    return None


class WsSession:
    """One connection's protocol state (sans I/O): commands in, frames out.

    ``clock_ns`` stamps fault log entries and ``ticker`` messages; ``faults`` is shared with the
    whole exchange (counters are consumed by whichever connection uses them first).
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

    # --- commands -------------------------------------------------------------------------------

    def handle_text(self, text: str) -> list[Outgoing]:
        """One client text frame → reply frames (errors included; never raises for bad input)."""
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
            return [self._snapshot(sub, t) for t in tickers]
        if sub.channel == "ticker" and ticker_snapshot:
            now = self.clock_ns()
            return [Outgoing({"type": "ticker", "sid": sub.sid,
                              "msg": self.board.render(t, now)}, sub.sid) for t in tickers]
        return []

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
            return [self._snapshot(sub, t) for t in tickers]
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

    # --- events ---------------------------------------------------------------------------------

    def log_fault(self, kind: str, **params: Any) -> None:
        """Record an applied fault in ``faults.log`` (``at_ns``, ``kind``, ``params``)."""
        self.faults.log.append({"at_ns": self.clock_ns(), "kind": kind,
                                "params": {"user": self.user_id, **params}})

    def _sequenced(self, sub: Subscription, type_: str, msg: dict[str, Any]) -> Outgoing:
        """A data frame with the sid's next seq, skipping one first under a seq-gap fault."""
        if self.faults.ws_seq_gap_pending > 0:
            self.faults.ws_seq_gap_pending -= 1
            self.log_fault("seq_gap", sid=sub.sid, skipped_seq=sub.next_seq())
        return Outgoing({"type": type_, "sid": sub.sid, "seq": sub.next_seq(), "msg": msg},
                        sub.sid)

    def _plain(self, sub: Subscription, type_: str, msg: dict[str, Any]) -> Outgoing:
        return Outgoing({"type": type_, "sid": sub.sid, "msg": msg}, sub.sid)

    def _own(self, channel: str, user_id: str, ticker: str | None) -> Subscription | None:
        sub = self.by_channel.get(channel)
        if sub is None or user_id != self.user_id or (ticker is not None
                                                      and not sub.covers(ticker)):
            return None
        return sub

    def on_events(self, events: list[EngineEvent],
                  ticker_msgs: list[dict[str, Any]]) -> list[Outgoing]:
        """Frames for one published batch, in event order, then this batch's ``ticker`` msgs."""
        out: list[Outgoing] = []
        by = self.by_channel
        for ev in events:
            if isinstance(ev, BookDelta):
                sub = by.get("orderbook_delta")
                if sub is not None and sub.covers(ev.ticker):
                    msg = render_delta(ev, use_yes_price=sub.use_yes_price,
                                       own=ev.user_id == self.user_id)
                    frame = self._sequenced(sub, "orderbook_delta", msg)
                    out.append(frame)
                    if self.faults.ws_duplicate_pending > 0:
                        self.faults.ws_duplicate_pending -= 1
                        self.log_fault("duplicate_delta", sid=sub.sid, seq=frame.payload["seq"])
                        out.append(frame)
            elif isinstance(ev, TradeEvent):
                sub = by.get("trade")
                if sub is not None and sub.covers(ev.trade.ticker):
                    out.append(self._plain(sub, "trade", render_trade(ev.trade)))
            elif isinstance(ev, FillEvent):
                sub = self._own("fill", ev.fill.user_id, ev.fill.ticker)
                if sub is not None:
                    out.append(self._plain(sub, "fill", render_fill(ev.fill)))
            elif isinstance(ev, OrderEvent):
                sub = self._own("user_orders", ev.order.user_id, ev.order.ticker)
                if sub is not None:
                    out.append(self._plain(sub, "user_order", render_user_order(ev.order)))
            elif isinstance(ev, PositionEvent):
                sub = self._own("market_positions", ev.user_id, ev.ticker)
                if sub is not None:
                    out.append(self._plain(sub, "market_position", render_position(ev)))
            elif isinstance(ev, LifecycleEvent):
                sub = by.get("market_lifecycle_v2")
                if sub is not None:
                    grid = (self.engine.get_market(ev.ticker).grid
                            if ev.event_type == "created" else None)
                    out.append(self._plain(sub, "market_lifecycle_v2",
                                           render_lifecycle(ev, grid)))
            elif isinstance(ev, OrderGroupEvent):
                sub = self._own("order_group_updates", ev.user_id, None)
                if sub is not None:
                    out.append(self._sequenced(sub, "order_group_updates",
                                               render_order_group(ev)))
        sub = by.get("ticker")
        if sub is not None:
            out += [self._plain(sub, "ticker", m) for m in ticker_msgs
                    if sub.covers(m["market_ticker"])]
        return out


# === the driver ==================================================================================


class _Connection:
    """One accepted socket: a session, a bounded outbound queue and the one task that writes."""

    def __init__(self, hub: WsHub, websocket: WebSocket, session: WsSession) -> None:
        self.hub = hub
        self.websocket = websocket
        self.session = session
        self.queue: asyncio.Queue[Outgoing | None] = asyncio.Queue()
        self.data_queued = 0
        self.close_request: tuple[int, str] | None = None
        self.peer_gone = False
        self.writer: asyncio.Task[None] | None = None

    def deliver(self, frames: Iterable[Outgoing]) -> None:
        """Queue frames without blocking; a data frame over the bound kills its sid (error 25)."""
        if self.close_request is not None:
            return
        for f in frames:
            if f.data:
                if f.sid not in self.session.subs:
                    continue
                if self.data_queued >= self.hub.queue_max_messages:
                    self.session.drop(f.sid)  # type: ignore[arg-type]
                    self.queue.put_nowait(error_frame(
                        25, f"subscription {f.sid} dropped after "
                        f"{self.hub.queue_max_messages} queued messages", sid=f.sid))
                    continue
                self.data_queued += 1
            self.queue.put_nowait(f)

    def request_close(self, code: int, reason: str) -> None:
        """Stop sending and close with ``code`` as soon as the writer wakes up."""
        if self.close_request is None:
            self.close_request = (code, reason)
            self.queue.put_nowait(None)

    async def write(self) -> None:
        faults = self.hub.ex.faults
        try:
            while self.close_request is None:
                item = await self.queue.get()
                if item is None or self.close_request is not None:
                    break
                if item.data:
                    self.data_queued -= 1
                if faults.ws_disconnect_pending > 0:
                    faults.ws_disconnect_pending -= 1
                    self.session.log_fault("ws_disconnect")
                    self.close_request = (1011, "simulated disconnect")
                    break
                await self.websocket.send_text(json.dumps(item.payload, separators=(",", ":")))
            if self.close_request is not None and not self.peer_gone:
                await self.websocket.close(*self.close_request)
        except Exception as exc:  # the peer went away mid-send: the reader sees the disconnect
            log.debug("ws writer for %s stopped: %r", self.session.user_id, exc)


class WsHub:
    """Fans the exchange's engine events out to WebSocket connections (see the module rules).

    Create it on the loop that runs the server and mutates the exchange; it subscribes to
    ``ex`` at once (:meth:`close` unsubscribes). Mount :meth:`route` (or :func:`ws_route`).
    """

    def __init__(self, ex: LocalExchange, *,
                 queue_max_messages: int = DEFAULT_QUEUE_MAX_MESSAGES,
                 auth_window_ms: int = DEFAULT_WINDOW_MS) -> None:
        if queue_max_messages < 1:
            raise ValueError("queue_max_messages must be >= 1")
        self.ex = ex
        self.queue_max_messages = queue_max_messages
        self.auth_window_ms = auth_window_ms
        self.board = TickerBoard(ex.engine)
        self._connections: set[_Connection] = set()
        self._unsubscribe = ex.subscribe(self._on_events)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    def route(self) -> WebSocketRoute:
        return WebSocketRoute(WS_PATH, self.endpoint, name="kalshi_ws")

    def close(self) -> None:
        """Stop receiving engine events (connections are left to :meth:`kick_all`)."""
        self._unsubscribe()

    def _on_events(self, events: list[EngineEvent]) -> None:
        """The exchange's sink: render and queue, never block, never raise."""
        conns = list(self._connections)
        if not conns:
            return
        now = self.ex.now_ns()
        try:
            if any("ticker" in c.session.by_channel for c in conns):
                tickers = self.board.changed(events, now)
            else:
                tickers = []
                self.board.forget()
        except Exception:
            log.exception("ws ticker rendering failed")
            tickers = []
        for conn in conns:
            try:
                conn.deliver(conn.session.on_events(events, tickers))
            except Exception:
                log.exception("ws delivery to %s failed; closing it", conn.session.user_id)
                conn.request_close(1011, "internal error")

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
        session = WsSession(user, self.ex.engine, self.ex.faults, self.board, self.ex.now_ns)
        conn = _Connection(self, websocket, session)
        conn.writer = asyncio.create_task(conn.write())
        self._connections.add(conn)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                if conn.close_request is not None:
                    continue
                self.ex.publish()  # undrained engine events first: snapshots must follow them
                if message.get("text") is not None:
                    conn.deliver(session.handle_text(message["text"]))
                else:
                    conn.deliver([error_frame(1, "binary frames are not supported")])
        finally:
            self._connections.discard(conn)
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
