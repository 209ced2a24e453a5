"""Engine records → Kalshi REST wire dicts (current shape, reference/kalshi/openapi.yaml).

Pure functions of engine snapshots plus the times passed in; the REST routes
(:mod:`mmcore.sim.rest`) call them and the tests validate their output against the spec.

Rules of this file:

- Prices and money go out with :func:`~mmcore.units.format_dollars` (4 decimals), counts with
  :func:`~mmcore.units.format_count_fp` (2 decimals); integer-cent fields (``balance``,
  ``portfolio_value``, ``revenue``, ``value``) are floored cents. Times are RFC 3339 UTC with
  microseconds.
- Optional fields the spec declares as ``$ref`` + ``nullable`` (``settlement_value_dollars``,
  the averages of write replies…) are **omitted** when absent, never ``null``: a ``$ref``'s
  sibling ``nullable`` is ignored by OpenAPI 3.0 validators, so ``null`` would not validate.
- Deprecated fields are left out unless the spec requires them (``available_on_brokers``).
- Direction is V2: ``book_side`` bid/ask in YES terms; ``outcome_side`` is the outcome the
  order buys (bid → ``yes``, ask → ``no``).
- Engine market statuses map to REST lifecycle statuses: unopened → ``initialized``, active →
  ``active``, paused → ``inactive``, closed → ``closed``, determined → ``determined``, settled →
  ``finalized``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from mmcore.odds.teams import sport_for_series
from mmcore.sim.engine import (
    Engine, Event, Fill, Market, Order, OrderGroup, PositionRecord, Series, Settlement, Trade,
)
from mmcore.ticks import TickGrid
from mmcore.units import CENT, PRICE_ONE, format_count_fp, format_dollars, notional

NS_PER_S = 1_000_000_000
REST_STATUS = {"unopened": "initialized", "active": "active", "paused": "inactive",
               "closed": "closed", "determined": "determined", "settled": "finalized"}
"""Engine market status → REST ``Market.status``."""
MARKET_FILTER = {"unopened": ("unopened",), "open": ("active",), "paused": ("paused",),
                 "closed": ("closed", "determined"), "settled": ("settled",)}
"""``status`` query value of ``/markets`` and ``/events`` → engine statuses it matches."""
_SPORT_META = {
    # sport key prefix → (milestone type, competition)
    "basketball": ("basketball_game", "Pro Basketball (M)"),
    "icehockey": ("hockey_match", "Pro Hockey"),
    "soccer": ("soccer_match", "Soccer"),
    "americanfootball": ("football_game", "Pro Football"),
    "baseball": ("baseball_game", "Pro Baseball"),
}
_STRUCTURES = {"linear_cent": TickGrid.linear_cent(), "deci_cent": TickGrid.deci_cent(),
               "tapered_deci_cent": TickGrid.tapered_deci_cent()}
_SOURCES = [{"name": "League official results", "url": "https://example.invalid/results"}]
_MILESTONE_NS = uuid.UUID("6f1c2a52-7d4e-4c1e-9a57-5b8c3c2f0e11")


def iso(ns: int) -> str:
    """ns since the epoch → RFC 3339 UTC with microseconds (``2026-11-23T17:00:30.123456Z``)."""
    secs, rem = divmod(ns, NS_PER_S)
    dt = datetime.fromtimestamp(secs, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 1000:06d}Z"


def sport_meta(series_ticker: str) -> tuple[str, str]:
    """(milestone type, competition) of a game series; generic for unknown series."""
    sport = sport_for_series(series_ticker) or ""
    for prefix, meta in _SPORT_META.items():
        if sport.startswith(prefix):
            return meta
    return ("game", "Sports")


def price_structure(grid: TickGrid) -> str:
    for name, known in _STRUCTURES.items():
        if known == grid:
            return name
    return "custom"


# --- reference data -------------------------------------------------------------------------


def series_json(s: Series, *, volume: int | None, now_ns: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ticker": s.ticker, "frequency": "custom", "title": s.title, "category": s.category,
        "tags": list(s.tags), "settlement_sources": _SOURCES,
        "contract_url": "https://example.invalid/contracts/" + s.ticker,
        "contract_terms_url": "https://example.invalid/terms/" + s.ticker,
        "fee_type": s.fee_type, "fee_multiplier": float(s.fee_multiplier),
        "additional_prohibitions": [], "last_updated_ts": iso(now_ns), "exchange_index": 0,
    }
    if volume is not None:
        out["volume_fp"] = format_count_fp(volume)
    return out


def _top(engine: Engine, ticker: str) -> dict[str, str]:
    bid, bid_size, ask, ask_size = engine.best(ticker)
    yes_bid = bid if bid is not None else 0
    yes_ask = ask if ask is not None else PRICE_ONE
    return {
        "yes_bid_dollars": format_dollars(yes_bid), "yes_bid_size_fp": format_count_fp(bid_size),
        "yes_ask_dollars": format_dollars(yes_ask), "yes_ask_size_fp": format_count_fp(ask_size),
        "no_bid_dollars": format_dollars(PRICE_ONE - yes_ask),
        "no_ask_dollars": format_dollars(PRICE_ONE - yes_bid),
    }


def market_json(engine: Engine, m: Market, event: Event, *, volume_24h: int,
                previous_price: int | None) -> dict[str, Any]:
    """``Market``; ``volume_24h`` centi-contracts, ``previous_price`` the YES price 24 h ago."""
    start = f" originally scheduled for {iso(event.start_ns)[:10]}" if event.start_ns else ""
    updated = max(m.created_ns, m.determined_ns or 0, m.settled_ns or 0)
    out: dict[str, Any] = {
        "ticker": m.ticker, "event_ticker": m.event_ticker, "market_type": "binary",
        "title": m.title, "yes_sub_title": m.yes_sub_title, "no_sub_title": m.yes_sub_title,
        "created_time": iso(m.created_ns), "updated_time": iso(updated),
        "open_time": iso(m.open_ns), "close_time": iso(m.close_ns),
        "expected_expiration_time": iso(m.close_ns), "latest_expiration_time": iso(m.close_ns),
        "settlement_timer_seconds": 0, "status": REST_STATUS[m.status],
        **_top(engine, m.ticker),
        "last_price_dollars": format_dollars(m.last_price or 0),
        "volume_fp": format_count_fp(m.volume), "volume_24h_fp": format_count_fp(volume_24h),
        "result": m.result or "", "can_close_early": True,
        "open_interest_fp": format_count_fp(m.open_interest),
        "notional_value_dollars": format_dollars(PRICE_ONE),
        "previous_yes_bid_dollars": format_dollars(0),
        "previous_yes_ask_dollars": format_dollars(0),
        "previous_price_dollars": format_dollars(previous_price or 0),
        "expiration_value": "",
        "early_close_condition": "The market closes early once the game's result is final.",
        "rules_primary": (f"If {m.yes_sub_title} wins the {event.title} game{start}, "
                          "then the market resolves to Yes."),
        "rules_secondary": m.rules_secondary or ("If the game is postponed or canceled, the "
                                                 "market resolves per the contract terms."),
        "price_level_structure": price_structure(m.grid),
        "price_ranges": [{"start": format_dollars(a), "end": format_dollars(b),
                          "step": format_dollars(s)} for a, b, s in m.grid.ranges],
        "exchange_index": 0,
    }
    if m.result is not None:
        out["settlement_value_dollars"] = format_dollars(PRICE_ONE if m.result == "yes" else 0)
    if m.settled_ns is not None:
        out["settlement_ts"] = iso(m.settled_ns)
    return out


def event_json(e: Event, series: Series, *, markets: list[dict[str, Any]] | None,
               now_ns: int) -> dict[str, Any]:
    _, competition = sport_meta(e.series_ticker)
    out: dict[str, Any] = {
        "event_ticker": e.event_ticker, "series_ticker": e.series_ticker,
        "sub_title": e.sub_title or e.title, "title": e.title,
        "collateral_return_type": "MECNET" if e.mutually_exclusive else "",
        "mutually_exclusive": e.mutually_exclusive, "available_on_brokers": False,
        "product_metadata": {"competition": competition, "competition_scope": "Game"},
        "settlement_sources": _SOURCES, "last_updated_ts": iso(now_ns), "exchange_index": 0,
    }
    if markets is not None:
        out["markets"] = markets
    return out


def milestone_id(event_ticker: str) -> str:
    return str(uuid.uuid5(_MILESTONE_NS, event_ticker))


def milestone_json(e: Event, start_ns: int, *, now_ns: int) -> dict[str, Any]:
    """The game of one event; ``start_date`` is the game start."""
    kind, competition = sport_meta(e.series_ticker)
    return {
        "id": milestone_id(e.event_ticker), "category": "Sports", "type": kind,
        "start_date": iso(start_ns), "end_date": None,
        "related_event_tickers": [e.event_ticker], "title": e.title,
        "notification_message": f"{e.title} is starting", "source_id": None,
        "details": {"competition": competition}, "primary_event_tickers": [e.event_ticker],
        "last_updated_ts": iso(now_ns),
    }


def trade_json(t: Trade) -> dict[str, Any]:
    return {
        "trade_id": t.trade_id, "ticker": t.ticker, "count_fp": format_count_fp(t.count),
        "yes_price_dollars": format_dollars(t.price),
        "no_price_dollars": format_dollars(PRICE_ONE - t.price),
        "taker_outcome_side": "yes" if t.taker_side == "bid" else "no",
        "taker_book_side": t.taker_side, "created_time": iso(t.ts_ns), "is_block_trade": False,
    }


def levels_json(levels: Iterable[tuple[int, int]]) -> list[list[str]]:
    return [[format_dollars(p), format_count_fp(n)] for p, n in levels]


def orderbook_json(engine: Engine, ticker: str, depth: int | None) -> dict[str, Any]:
    """``OrderbookCountFp``: bids only per side, ascending by price (best last)."""
    yes, no = engine.orderbook(ticker, depth)
    return {"yes_dollars": levels_json(yes), "no_dollars": levels_json(no)}


# --- portfolio ------------------------------------------------------------------------------


def order_amounts(o: Order) -> dict[str, str]:
    """An order's counts (``_fp``, centi-contracts → contracts) and money (``_dollars``, price
    units → dollars), as both REST orders and WS ``user_order`` msgs carry them."""
    return {
        "fill_count_fp": format_count_fp(o.filled),
        "remaining_count_fp": format_count_fp(o.remaining),
        "initial_count_fp": format_count_fp(o.initial_count),
        "taker_fill_cost_dollars": format_dollars(o.taker_fill_cost),
        "maker_fill_cost_dollars": format_dollars(o.maker_fill_cost),
        "taker_fees_dollars": format_dollars(o.taker_fees),
        "maker_fees_dollars": format_dollars(o.maker_fees),
    }


def order_json(o: Order) -> dict[str, Any]:
    return {
        "order_id": o.order_id, "user_id": o.user_id, "client_order_id": o.client_order_id or "",
        "ticker": o.ticker, "outcome_side": "yes" if o.side == "bid" else "no",
        "book_side": o.side, "type": "limit", "status": o.status,
        "yes_price_dollars": format_dollars(o.price),
        "no_price_dollars": format_dollars(PRICE_ONE - o.price),
        **order_amounts(o),
        "expiration_time": iso(o.expiration_ns) if o.expiration_ns is not None else None,
        "created_time": iso(o.created_ns), "last_update_time": iso(o.updated_ns),
        "self_trade_prevention_type": o.self_trade_prevention,
        "order_group_id": o.order_group_id, "cancel_order_on_pause": o.cancel_order_on_pause,
        "subaccount_number": 0, "exchange_index": 0,
    }


def fill_json(f: Fill) -> dict[str, Any]:
    return {
        "fill_id": f.fill_id, "trade_id": f.trade_id, "order_id": f.order_id,
        "ticker": f.ticker, "market_ticker": f.ticker,
        "outcome_side": "yes" if f.side == "bid" else "no", "book_side": f.side,
        "count_fp": format_count_fp(f.count), "yes_price_dollars": format_dollars(f.price),
        "no_price_dollars": format_dollars(PRICE_ONE - f.price), "is_taker": f.is_taker,
        "created_time": iso(f.ts_ns), "fee_cost": format_dollars(f.fee),
        "subaccount_number": 0, "ts": f.ts_ns // NS_PER_S, "exchange_index": 0,
    }


def fill_leg_cost(f: Fill) -> int:
    """What a fill traded in its own leg (price units): YES price for a bid, NO for an ask."""
    return notional(f.price if f.side == "bid" else PRICE_ONE - f.price, f.count)


def market_position_json(p: PositionRecord, traded: int) -> dict[str, Any]:
    """``traded`` = money traded in the market so far (price units)."""
    return {
        "ticker": p.ticker, "exchange_index": 0, "total_traded_dollars": format_dollars(traded),
        "position_fp": format_count_fp(p.position),
        "market_exposure_dollars": format_dollars(p.cost),
        "realized_pnl_dollars": format_dollars(p.realized_pnl),
        "fees_paid_dollars": format_dollars(p.fees_paid),
        "last_updated_ts": iso(p.last_updated_ns),
    }


def event_position_json(event_ticker: str, records: list[tuple[PositionRecord, int]]
                        ) -> dict[str, Any]:
    return {
        "event_ticker": event_ticker,
        "total_cost_dollars": format_dollars(sum(t for _, t in records)),
        "total_cost_shares_fp": format_count_fp(sum(p.volume for p, _ in records)),
        "event_exposure_dollars": format_dollars(sum(p.cost for p, _ in records)),
        "realized_pnl_dollars": format_dollars(sum(p.realized_pnl for p, _ in records)),
        "fees_paid_dollars": format_dollars(sum(p.fees_paid for p, _ in records)),
    }


def settlement_json(s: Settlement) -> dict[str, Any]:
    return {
        "ticker": s.ticker, "exchange_index": 0, "event_ticker": s.event_ticker,
        "market_result": s.market_result, "yes_count_fp": format_count_fp(s.yes_count),
        "yes_total_cost_dollars": format_dollars(s.yes_total_cost),
        "no_count_fp": format_count_fp(s.no_count),
        "no_total_cost_dollars": format_dollars(s.no_total_cost),
        "revenue": s.revenue // CENT, "settled_time": iso(s.settled_ns),
        "fee_cost": format_dollars(s.fee_cost),
        "value": 100 if s.market_result == "yes" else 0,
    }


def mark_value(engine: Engine, p: PositionRecord) -> int:
    """Liquidation value of a position (price units): the held leg's best bid, else its last
    trade price, else 0."""
    bid, _, ask, _ = engine.best(p.ticker)
    last = engine.get_market(p.ticker).last_price
    if p.position > 0:
        mark = bid if bid is not None else last
    else:
        mark = PRICE_ONE - ask if ask is not None else (
            PRICE_ONE - last if last is not None else None)
    return notional(mark or 0, abs(p.position))


def order_group_json(g: OrderGroup) -> dict[str, Any]:
    return {"id": g.order_group_id, "contracts_limit_fp": format_count_fp(g.contracts_limit),
            "is_auto_cancel_enabled": True, "exchange_index": 0}
