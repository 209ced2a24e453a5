"""``mm preview``: the operator's dry run of one quoting decision, from a JSON file.

The file describes one moment of one game — theo, both (or all three) Kalshi books in their
wire shape, positions, resting orders, optional config overrides — and the preview runs exactly
the pipeline a worker runs: :func:`~mmcore.quoting.quotes.desired_quotes` →
:func:`~mmcore.orders.reconcile` → :func:`~mmcore.risk.gate.check`, then reports the desired
quotes, the order actions, and every clamp, cut and refusal with its reason.

Input (prices and sizes as Kalshi writes them: dollar strings and fixed-point count strings)::

    {
      "game": {"event_ticker": "KXNBAGAME-26NOV24BOSNYK", "sport": "basketball_nba",
               "markets": ["KXNBAGAME-26NOV24BOSNYK-BOS", "KXNBAGAME-26NOV24BOSNYK-NYK"],
               "fee_type": "quadratic_with_maker_fees", "fee_multiplier": 1,
               "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}],
               "start": "2026-11-24T00:30:00Z"},
      "now": "2026-11-23T23:30:00Z",
      "theo": [0.60, 0.40], "uncertainty": [0.004, 0.004],
      "books": {"KXNBAGAME-26NOV24BOSNYK-BOS": {"yes_dollars": [["0.5700", "250.00"]],
                                                "no_dollars": [["0.3700", "120.00"]]}},
      "positions": {"KXNBAGAME-26NOV24BOSNYK-BOS": "20.00"},
      "avg_cost": {"KXNBAGAME-26NOV24BOSNYK-BOS": "0.5650"},
      "resting": [{"order_id": "o1", "market": "...", "side": "bid", "price": "0.5600",
                   "remaining": "10.00", "filled": "0.00", "placed": "2026-11-23T23:29:00Z"}],
      "trading_state": "ACTIVE",
      "limit": {"hard_contracts": 300, "max_loss_dollars": 150},
      "config": {"hjb": {...}, "competition": {...}, "quote": {"clip_contracts": 10}}
    }

Books are bids-only as Kalshi publishes them (a NO bid at n is a YES ask at 1 − n); our own
resting orders are removed from them before quoting so we never compete with ourselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mmcore.book import BookTop, top_of
from mmcore.errors import InputError
from mmcore.fees import FeeSchedule
from mmcore.game import GameSpec
from mmcore.models import iso_to_ns
from mmcore.orders import LiveOrder, reconcile
from mmcore.quoting.config import quote_params_from_dict
from mmcore.quoting.quotes import GameState, desired_quotes
from mmcore.risk.gate import GateState, check
from mmcore.risk.killswitch import KillSwitch
from mmcore.risk.limits import (
    DEFAULT_LIMIT_CONFIG,
    GameLimit,
    available_liquidity,
    game_limit,
)
from mmcore.ticks import TickGrid
from mmcore.units import (
    CONTRACT,
    PRICE_ONE,
    format_count_fp,
    format_dollars,
    parse_count_fp,
    parse_dollars,
)

_STRICT = ConfigDict(extra="forbid", frozen=True)


class _Game(BaseModel):
    model_config = _STRICT
    event_ticker: str
    sport: str
    markets: list[str] = Field(min_length=2, max_length=3)
    fee_type: str = "quadratic_with_maker_fees"
    fee_multiplier: float = 1.0
    price_ranges: list[dict[str, str]] | None = None
    start: str


class _Book(BaseModel):
    model_config = _STRICT
    yes_dollars: list[tuple[str, str]] = Field(default_factory=list)
    no_dollars: list[tuple[str, str]] = Field(default_factory=list)


class _Resting(BaseModel):
    model_config = _STRICT
    order_id: str
    market: str
    side: Literal["bid", "ask"]
    price: str
    remaining: str
    filled: str = "0.00"
    placed: str | None = None


class _Limit(BaseModel):
    model_config = _STRICT
    hard_contracts: float | None = None
    soft_contracts: float | None = None
    max_loss_dollars: float | None = None
    liquidity_contracts: float | None = None


class PreviewInput(BaseModel):
    model_config = _STRICT
    game: _Game
    now: str
    theo: list[float] | None
    uncertainty: list[float] | None = None
    books: dict[str, _Book] = Field(default_factory=dict)
    positions: dict[str, str] = Field(default_factory=dict)
    avg_cost: dict[str, str] = Field(default_factory=dict)
    cash: str | None = None
    resting: list[_Resting] = Field(default_factory=list)
    trading_state: Literal["ACTIVE", "REDUCING", "HALTED"] = "ACTIVE"
    stale_markets: list[str] = Field(default_factory=list)
    limit: _Limit = Field(default_factory=_Limit)
    config: dict[str, Any] = Field(default_factory=dict)


def _levels(raw: list[tuple[str, str]]) -> list[tuple[int, int]]:
    return [(parse_dollars(p), parse_count_fp(n)) for p, n in raw]


def book_tops(book: _Book, own: list[LiveOrder]) -> tuple[BookTop, list[int]]:
    """Others' top of book in YES terms (our resting orders removed) and their level sizes."""
    bids = dict(_levels(book.yes_dollars))
    asks = {PRICE_ONE - p: n for p, n in _levels(book.no_dollars)}
    for o in own:
        side = bids if o.side == "bid" else asks
        if o.price in side:
            side[o.price] = max(0, side[o.price] - o.remaining)
    return top_of(bids.items(), asks.items()), [*bids.values(), *asks.values()]


def run_preview(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parse the input, run the worker's decision pipeline once, return a JSON-able report."""
    try:
        inp = PreviewInput.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"preview input: {exc}") from exc
    g = inp.game
    now_ns, start_ns = iso_to_ns(inp.now), iso_to_ns(g.start)
    grid = TickGrid.from_price_ranges(g.price_ranges) if g.price_ranges else TickGrid.linear_cent()
    game = GameSpec(g.event_ticker, g.sport, tuple(g.markets), (grid,) * len(g.markets),
                    FeeSchedule.from_series(g.fee_type, g.fee_multiplier), start_ns)
    for name in [*inp.books, *inp.positions, *inp.avg_cost, *(r.market for r in inp.resting)]:
        if name not in game.markets:
            raise InputError(f"market {name!r} is not one of the game's markets {list(game.markets)}")
    if inp.theo is not None and len(inp.theo) != len(game.markets):
        raise InputError(f"theo has {len(inp.theo)} values for {len(game.markets)} markets")

    resting = tuple(
        LiveOrder(r.order_id, None, r.market, r.side, parse_dollars(r.price), parse_count_fp(r.remaining),
                  parse_count_fp(r.filled), iso_to_ns(r.placed) if r.placed else now_ns)
        for r in inp.resting
    )
    tops: dict[str, BookTop] = {}
    sizes: list[int] = []
    for market, book in inp.books.items():
        tops[market], lv = book_tops(book, [o for o in resting if o.market == market])
        sizes.extend(lv)
    positions = {m: parse_count_fp(v) for m, v in inp.positions.items()}
    avg_cost = {m: float(parse_dollars(v, rounding="nearest")) for m, v in inp.avg_cost.items()}
    if inp.cash is not None:
        cash = parse_dollars(inp.cash, rounding="nearest")
    else:  # YES-terms cash: longs paid avg cost, shorts received it
        cash = -sum(int(avg_cost.get(m, 0.0) * q) // CONTRACT for m, q in positions.items())
    limit = _limit(inp.limit, g.sport, sizes)
    params = quote_params_from_dict(inp.config)
    state = GameState(positions, cash, avg_cost, resting)

    dq = desired_quotes(game, tops, inp.theo, state, limit, params, now_ns,
                        uncertainty=inp.uncertainty, trading=inp.trading_state,
                        stale=frozenset(inp.stale_markets))
    plan = reconcile(dq.quotes, resting, now_ns, id_prefix="preview")
    ks = dataclasses.replace(KillSwitch.start(now_ns), state=inp.trading_state)
    gate = check(GateState(game, ks, limit, inp.theo, positions, cash, resting), plan.actions, now_ns)
    return _report(game, dq, plan, gate, limit, tops)


def _limit(raw: _Limit, sport: str, sizes: list[int]) -> GameLimit:
    base = game_limit(sport, available_liquidity(sizes) if raw.liquidity_contracts is None
                      else int(raw.liquidity_contracts * CONTRACT), DEFAULT_LIMIT_CONFIG)
    hard = base.hard_contracts if raw.hard_contracts is None else int(raw.hard_contracts * CONTRACT)
    soft = hard // 2 if raw.soft_contracts is None else int(raw.soft_contracts * CONTRACT)
    loss = base.max_loss_money if raw.max_loss_dollars is None else int(raw.max_loss_dollars * PRICE_ONE)
    return GameLimit(hard, soft, loss)


def _action(a: Any) -> dict[str, Any]:
    kind = type(a).__name__.lower()
    if kind == "place":
        q = a.quote
        return {"action": "place", "market": q.market, "side": q.side, "price": format_dollars(q.price),
                "count": format_count_fp(q.count), "client_order_id": a.client_order_id}
    if kind == "amend":
        return {"action": "amend", "order_id": a.order_id, "market": a.market, "side": a.side,
                "price": format_dollars(a.price), "count": format_count_fp(a.count)}
    return {"action": "cancel", "order_id": a.order_id, "market": a.market, "side": a.side,
            "reason": a.reason}


def _report(game, dq, plan, gate, limit, tops) -> dict[str, Any]:
    quotes = {m: {"bid": None, "ask": None} for m in game.markets}
    for q in dq.quotes:
        quotes[q.market][q.side] = {"price": format_dollars(q.price), "count": format_count_fp(q.count)}
    return {
        "event_ticker": game.event_ticker,
        "inventory": {m: format_count_fp(v) for m, v in zip(game.markets, dq.inventory)},
        "limit": {"hard": format_count_fp(limit.hard_contracts), "soft": format_count_fp(limit.soft_contracts),
                  "max_loss": format_dollars(limit.max_loss_money)},
        "book": {m: {"bid": None if t.bid is None else format_dollars(t.bid),
                     "ask": None if t.ask is None else format_dollars(t.ask)} for m, t in tops.items()},
        "quotes": quotes,
        "rules": {m: list(mq.notes) for m, mq in dq.markets.items()},
        "notes": list(dq.notes),
        "actions": [_action(a) for a in gate.approved],
        "deferred": [_action(a) for a in plan.deferred],
        "refused": [{**_action(r.action), "refusal": r.reason} for r in gate.refused],
    }
