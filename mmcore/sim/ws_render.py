"""Rendering for the local exchange's WebSocket endpoint (:mod:`mmcore.sim.ws`): engine values →
Kalshi ``msg`` dicts, and those dicts → wire text.

- **Renderers** (``render_*``): pure functions, engine value → Kalshi ``msg`` dict
  (reference/kalshi.md §3.4, asyncapi ``components.messages``); :class:`TickerBoard` keeps the
  ``ticker`` channel's last state per market.
- **Encoding**: a data frame's JSON is its envelope spliced around the ``msg`` body, which is
  encoded once per engine event (:func:`encode_json`) and shared by every subscriber that gets
  the same body; only ``sid``/``seq`` differ per subscriber (:data:`FRAME_TEMPLATES`). The text
  is byte for byte what ``json.dumps(envelope, separators=(",", ":"))`` gives.

Units: engine ints (price units, centi-contracts, ns) become ``*_dollars`` / ``*_fp`` strings,
``ts`` (RFC 3339 on orderbook deltas, unix seconds elsewhere) and ``ts_ms`` here and only here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from mmcore.sim.engine import Engine
from mmcore.sim.engine_types import (
    BookDelta, EngineEvent, Fill, LifecycleEvent, Order, OrderGroupEvent, PositionEvent, Trade,
    TradeEvent,
)
from mmcore.sim.rest_render import levels_json, order_amounts
from mmcore.ticks import TickGrid
from mmcore.units import CONTRACT, PRICE_ONE, format_count_fp, format_dollars, notional

__all__ = [
    "EXCHANGE_INDEX", "FRAME_TEMPLATES", "TickerBoard", "encode_json", "frame_template",
    "market_id_for", "render_delta", "render_fill", "render_lifecycle", "render_order_group",
    "render_position", "render_snapshot", "render_trade", "render_user_order",
]

EXCHANGE_INDEX = 0
"""The shard every simulated market lives on."""
_MARKET_ID_NAMESPACE = uuid.UUID("6f1b8a52-54a1-4c55-9d3e-3b7c1d0a5e21")

encode_json = json.JSONEncoder(separators=(",", ":")).encode
"""Compact JSON, identical to ``json.dumps(obj, separators=(",", ":"))`` (one shared encoder
instead of a new one per call)."""


def frame_template(type_: str, sequenced: bool) -> str:
    """``%``-template of a data frame's JSON: ``sid`` (``%d``), ``seq`` (``%d``, when
    ``sequenced``) and the encoded ``msg`` (``%s``); ``type_`` is a plain ASCII name."""
    if sequenced:
        return '{"type":"%s","sid":%%d,"seq":%%d,"msg":%%s}' % type_
    return '{"type":"%s","sid":%%d,"msg":%%s}' % type_


FRAME_TEMPLATES = {t: frame_template(t, t in ("orderbook_delta", "order_group_updates"))
                   for t in ("orderbook_delta", "order_group_updates", "trade", "ticker", "fill",
                             "user_order", "market_position", "market_lifecycle_v2")}
"""Data frame templates by message type (``orderbook_delta``/``order_group_updates`` carry
``seq``; the others ``sid`` only)."""


# === renderers: engine values → Kalshi msg dicts (pure) ==========================================


@lru_cache(maxsize=4096)
def market_id_for(ticker: str) -> str:
    """The market's UUID on the wire: stable, derived from the ticker (uuid5; cached)."""
    return str(uuid.uuid5(_MARKET_ID_NAMESPACE, ticker))


def _ms(ns: int) -> int:
    return ns // 1_000_000


def _s(ns: int) -> int:
    return ns // 1_000_000_000


@lru_cache(maxsize=256)
def _rfc3339_seconds(s: int) -> str:
    return datetime.fromtimestamp(s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _rfc3339(ns: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-11-23T18:04:05.123Z`` (the whole-second part
    is formatted once per second and cached)."""
    return f"{_rfc3339_seconds(_s(ns))}.{_ms(ns) % 1000:03d}Z"


def _outcome(book_side: str) -> str:
    return "yes" if book_side == "bid" else "no"


def render_snapshot(ticker: str, yes: list[tuple[int, int]], no: list[tuple[int, int]], *,
                    use_yes_price: bool) -> dict[str, Any]:
    """``orderbook_snapshot`` msg from :meth:`Engine.orderbook` (bids, ascending); NO levels at
    NO-leg prices, or at the YES price (still ascending) with ``use_yes_price``. An empty side's
    key is absent."""
    msg: dict[str, Any] = {"market_ticker": ticker, "market_id": market_id_for(ticker)}
    if yes:
        msg["yes_dollars_fp"] = levels_json(yes)
    if no:
        msg["no_dollars_fp"] = levels_json(
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
        **order_amounts(o),
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
