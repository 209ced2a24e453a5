"""What a quoting strategy is: one game's inputs in, desired quotes (as data) out.

The backtest and the worker drive every strategy the same way::

    strategy = make_strategy(name, raw_params)      # one instance per game (may keep state)
    dq = strategy.quote(StrategyInput(game, tops, theo, state, now_ns, ...))
    reconcile(dq.quotes, live_orders, now_ns)       # the driver's job, as for ours

Rules of this file (and of every strategy):

- Pure: no I/O, no clock reads, no randomness. ``now_ns`` is an argument; a strategy that keeps
  state (a rolling volatility) changes it only from its inputs, so a replay gives the same quotes.
- Call :meth:`Strategy.quote` on every decision, in time order (``now_ns`` never decreasing):
  stateful strategies sample the book from these calls.
- Output is :class:`~mmcore.quoting.quotes.DesiredQuotes`, the shape ours already returns:
  sized quotes (price in $0.0001 price units on the market's tick grid — bids rounded down, asks
  up — count in centi-contracts), per-market prices with rule notes, game notes, and the
  directional inventory used.
- **One inventory per game.** Market ``i`` is quoted with the game's directional inventory
  ``d_i`` (:func:`mmcore.game.directional_inventory`): ``q_E = pos_A − pos_B`` for team A's
  market and ``−q_E`` for B's, as ours does (quoting-math.md §3.6). Buying YES on either market
  raises that market's ``d_i``, so "the bid adds" when ``d_i ≥ 0`` and reduces when ``d_i < 0``.
- The worker's safety state binds every strategy: ``trading == "HALTED"`` → no quotes,
  ``"REDUCING"`` → only sides that reduce ``d_i``, markets in ``stale`` → not quoted. The
  baselines have no other knowledge of it (they stand for naive quoters, not for our risk).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from mmcore.book import BookTop
from mmcore.errors import ConfigError
from mmcore.game import GameSpec, directional_inventory
from mmcore.orders import Quote, Side, Slot
from mmcore.quoting.competition import MarketQuote
from mmcore.quoting.quotes import DesiredQuotes, GameState
from mmcore.risk.limits import GameLimit, LimitConfig, OtherGames
from mmcore.ticks import TickGrid
from mmcore.units import CONTRACT, PRICE_ONE

NS = 1_000_000_000
_EPS = 1e-6
"""Float noise tolerance (price units) when rounding model prices: 4999.9999999 is 5000."""


@dataclass(frozen=True, slots=True)
class StrategyInput:
    """Everything a strategy may look at for one decision of one game.

    ``tops`` are the best prices of *other* participants per market (YES terms, price units; our
    own orders removed). ``theo`` is the probability per market, or None (only ours needs it).
    ``state`` carries positions (signed centi-contracts per market), cash, average costs and our
    resting orders. The remaining fields are the worker's context; defaults describe a plain
    backtest with nothing tripped. ``limit`` is the worker's per-game limit (ours sizes against
    it; None lets ours derive one from ``tops``).
    """

    game: GameSpec
    tops: Mapping[str, BookTop]
    theo: Sequence[float] | None
    state: GameState
    now_ns: int
    limit: GameLimit | None = None
    trading: str = "ACTIVE"
    stale: frozenset[str] = frozenset()
    uncertainty: Sequence[float] | None = None
    confidence: float | None = None
    guard_widen: Mapping[Slot, float] | None = None
    hold: Mapping[Slot, str] | None = None
    limit_config: LimitConfig | None = None
    others: OtherGames | None = None
    extra: Mapping[str, object] = field(default_factory=dict)
    """Room for the backtest to pass strategy-specific inputs without widening this type."""


@runtime_checkable
class Strategy(Protocol):
    """A quoting strategy for one game (see the module docstring for the calling rules)."""

    name: str

    def quote(self, inp: StrategyInput) -> DesiredQuotes:
        """Desired quotes for this game at ``inp.now_ns``."""
        ...


# --- helpers shared by the baselines --------------------------------------------------------


def gate(inp: StrategyInput, stop_before_start_ns: int) -> str | None:
    """Why no market of the game may be quoted now, or None: HALTED, or too close to the start."""
    if inp.trading == "HALTED":
        return "HALTED: cancels only"
    if inp.now_ns >= inp.game.start_ns - stop_before_start_ns:
        return f"game starts in {(inp.game.start_ns - inp.now_ns) / NS:.0f}s: no quotes"
    return None


def adds(side: Side, q: int) -> bool:
    """True when a fill on ``side`` of a market with directional inventory ``q`` moves |q| up
    (at ``q == 0`` both sides add)."""
    return (side == "bid" and q >= 0) or (side == "ask" and q <= 0)


def two_sided_mid(top: BookTop | None) -> float | None:
    """Book mid in price units when both sides exist and are not crossed; None otherwise."""
    if top is None or top.bid is None or top.ask is None or top.bid >= top.ask:
        return None
    return (top.bid + top.ask) / 2


def to_grid_post_only(
    bid: float | None, ask: float | None, grid: TickGrid, top: BookTop,
) -> tuple[int | None, int | None, tuple[str, ...]]:
    """Model prices (price units, floats) → orderable grid prices that would rest (post-only).

    The bid is rounded **down** and the ask **up** (never more aggressive than the model), then
    held one tick off the other side of the book (bid ≤ best ask − tick, ask ≥ best bid + tick):
    every order we send is post-only, and one that would cross is cancelled by the venue, so a
    crossing quote is a wasted write, not a trade. A side off the grid is None. Because the bid
    only moves down and the ask only up, ``bid < ask`` whenever the model had ``bid < ask``.
    """
    notes: list[str] = []
    b = a = None
    if bid is not None:
        b = grid.round_down(math.floor(bid + _EPS)) if bid < PRICE_ONE else grid.max_price
        if b is not None and top.ask is not None and b >= top.ask:
            b = grid.next_below(top.ask)
            notes.append(f"bid held below best ask {top.ask}")
    if ask is not None:
        a = grid.round_up(math.ceil(ask - _EPS)) if ask > 0 else grid.min_price
        if a is not None and top.bid is not None and a <= top.bid:
            a = grid.next_above(top.bid)
            notes.append(f"ask held above best bid {top.bid}")
    return b, a, tuple(notes)


def check_number(owner: object, name: str, *, low: float = 0.0, strict: bool = True,
                 high: float | None = None) -> float:
    """A params field that must be a finite number above ``low`` (or at least it, when not
    ``strict``) and at most ``high``; ConfigError naming the field otherwise."""
    v = getattr(owner, name)
    kind = type(owner).__name__
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{kind}.{name} must be a finite number, got {v!r}")
    if (v <= low) if strict else (v < low):
        raise ConfigError(f"{kind}.{name} must be {'>' if strict else '>='} {low}, got {v!r}")
    if high is not None and v > high:
        raise ConfigError(f"{kind}.{name} must be <= {high}, got {v!r}")
    return float(v)


def check_bool(owner: object, name: str) -> None:
    """A params field that must be a bool; ConfigError naming the field otherwise."""
    v = getattr(owner, name)
    if not isinstance(v, bool):
        raise ConfigError(f"{type(owner).__name__}.{name} must be true or false, got {v!r}")


def contracts_to_count(contracts: float) -> int:
    """Contracts (a config number) → centi-contracts, rounded to 0.01 contract."""
    return round(contracts * CONTRACT)


def whole_contracts(count: float) -> int:
    """A shaped size (centi-contracts, float) rounded to the nearest whole contract."""
    return round(count / CONTRACT) * CONTRACT


@dataclass(frozen=True, slots=True)
class MarketIntent:
    """A baseline's wish for one market: model prices (price units, floats; None = no quote on
    that side) and sizes (centi-contracts; ≤ 0 = no quote), before grid rounding."""

    bid: float | None
    ask: float | None
    bid_count: int
    ask_count: int
    notes: tuple[str, ...] = ()


Decide = Callable[[int, str, int, BookTop, float], MarketIntent]
"""``decide(i, market, q, top, mid)``: market index, ticker, directional inventory
(centi-contracts), other participants' top and its mid (price units)."""


def quote_markets(inp: StrategyInput, stop_before_start_ns: int, decide: Decide) -> DesiredQuotes:
    """The frame every baseline shares: gates, then per market (two-sided book, not stale)
    ``decide``, grid rounding (:func:`to_grid_post_only`) and the REDUCING filter."""
    game = inp.game
    inv = directional_inventory(game.book, inp.state.positions)
    reason = gate(inp, stop_before_start_ns)
    if reason:
        return DesiredQuotes((), {}, (reason,), inv)
    quotes: list[Quote] = []
    markets: dict[str, MarketQuote] = {}
    for i, market in enumerate(game.markets):
        q = inv[i]
        top = inp.tops.get(market, BookTop.empty())
        mid = two_sided_mid(top)
        if market in inp.stale or mid is None:
            why = "book stale" if market in inp.stale else "no two-sided book"
            markets[market] = MarketQuote(None, None, (f"{why}: not quoted",))
            continue
        want = decide(i, market, q, top, mid)
        bid, ask, rounding = to_grid_post_only(want.bid, want.ask, game.grids[i], top)
        notes = [*want.notes, *rounding]
        if inp.trading == "REDUCING":
            for side in ("bid", "ask"):
                if adds(side, q) and (bid if side == "bid" else ask) is not None:  # type: ignore[arg-type]
                    notes.append(f"REDUCING: {side} adds exposure, not quoted")
            bid = None if adds("bid", q) else bid
            ask = None if adds("ask", q) else ask
        if bid is not None and want.bid_count <= 0:
            bid = None
        if ask is not None and want.ask_count <= 0:
            ask = None
        markets[market] = MarketQuote(bid, ask, tuple(notes))
        if bid is not None:
            quotes.append(Quote(market, "bid", bid, want.bid_count))
        if ask is not None:
            quotes.append(Quote(market, "ask", ask, want.ask_count))
    return DesiredQuotes(tuple(quotes), markets, (), inv)
