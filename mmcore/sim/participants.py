"""Other traders on the local exchange, as pure decision functions.

Each participant is a frozen config (with its ``user_id``) plus a small frozen state **per
market**. Calling order, for the driver (engine loop, REST server or backtest):

1. ``state = config.initial_state(now_ns, rng)`` once per (participant, market), with the rng the
   driver keeps for that pair (derive it from the scenario seed; never share one stream between
   participants, or one participant's draws would shift another's);
2. whenever ``now_ns >= state.wake_ns`` — and, for makers, also when the book changes —
   ``state, intents = config.decide(state, view, truth_p, now_ns, rng)``;
3. turn the intents into engine calls, **in list order** (a maker's cancels come before its
   places). Intents carry no order ids of their own; the engine assigns them.

Takers handle one Poisson arrival per call; if the driver is late, ``wake_ns`` stays in the past
and it should call again. Nothing here reads a clock or owns randomness.

Units: prices are ``int`` price units ($0.0001, YES terms: ``side="bid"`` buys YES); counts are
``int`` centi-contracts (``*_contracts`` config fields are whole contracts); probabilities are
floats; times are integer ns. ``truth_p`` is the hidden YES probability of the viewed market.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal, Protocol, Union

from mmcore.errors import InputError
from mmcore.orders import Side
from mmcore.ticks import TickGrid
from mmcore.units import CONTRACT, PRICE_ONE

NS_PER_S = 1_000_000_000
TimeInForce = Literal["good_till_canceled", "immediate_or_cancel", "fill_or_kill"]
EST_MIN_PROB, EST_MAX_PROB = 0.01, 0.99
"""A maker's estimate is clamped here, so its quotes stay inside the price range."""


# --- inputs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BookView:
    """Top of one market's book as the engine's ``best(ticker)`` returns it (this participant's own
    orders included). Prices in price units, YES terms; ``None`` when the side is empty."""

    best_bid: int | None
    bid_size: int
    best_ask: int | None
    ask_size: int

    @classmethod
    def from_best(cls, best: tuple[int | None, int, int | None, int]) -> BookView:
        return cls(*best)


@dataclass(frozen=True, slots=True)
class OwnOrder:
    """One of the participant's resting orders in the viewed market."""

    order_id: str
    side: Side
    price: int
    remaining: int
    """Centi-contracts still resting."""


@dataclass(frozen=True, slots=True)
class MarketView:
    """What a participant sees of one market when it decides."""

    ticker: str
    book: BookView
    own_orders: tuple[OwnOrder, ...]
    grid: TickGrid
    is_open: bool = True
    public_p: float | None = None
    """The YES probability the sportsbooks price now (the truth with news still private taken
    out, :meth:`~mmcore.sim.truth.TruthPath.public_at`); the driver fills it for
    :class:`NewsTaker` and makers that follow the books only (None otherwise)."""


# --- outputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceIntent:
    """Place an order (engine ``OrderRequest``): ``count`` centi-contracts at ``price``."""

    user_id: str
    ticker: str
    side: Side
    price: int
    count: int
    time_in_force: TimeInForce
    post_only: bool
    tag: str
    """Who/why, for logs and client order ids (``noise``, ``informed``, ``news``, ``maker``)."""


@dataclass(frozen=True, slots=True)
class CancelIntent:
    user_id: str
    order_id: str


@dataclass(frozen=True, slots=True)
class CancelAllIntent:
    user_id: str
    ticker: str


Intent = Union[PlaceIntent, CancelIntent, CancelAllIntent]


class Participant(Protocol):
    """What the driver relies on: every config below satisfies it."""

    user_id: str

    def initial_state(self, now_ns: int, rng: random.Random) -> ParticipantState: ...

    def decide(self, state: ParticipantState, view: MarketView, truth_p: float, now_ns: int,
               rng: random.Random) -> tuple[ParticipantState, list[Intent]]: ...


# --- takers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TakerState:
    wake_ns: int
    """Time of the next Poisson arrival."""
    arrivals: int = 0
    """Arrivals handled so far (including those that found no trade)."""


def _next_arrival(after_ns: int, rate_per_s: float, rng: random.Random) -> int:
    return after_ns + max(1, round(rng.expovariate(rate_per_s) * NS_PER_S))


def _size(lo: int, hi: int, rng: random.Random) -> int:
    return rng.randint(lo, hi) * CONTRACT


def _arrival(state: TakerState, rate_per_s: float, now_ns: int, rng: random.Random
             ) -> TakerState | None:
    """A taker's state after the arrival due by ``now_ns`` (the next Poisson time drawn), or
    None when no arrival is due yet."""
    if now_ns < state.wake_ns:
        return None
    return TakerState(_next_arrival(state.wake_ns, rate_per_s, rng), state.arrivals + 1)


def _check_taker(rate_per_s: float, lo: int, hi: int) -> None:
    if not (math.isfinite(rate_per_s) and rate_per_s > 0):
        raise InputError(f"rate_per_s must be > 0, got {rate_per_s!r}")
    if not 1 <= lo <= hi:
        raise InputError(f"need 1 <= size_contracts_min <= size_contracts_max, got {lo}, {hi}")


@dataclass(frozen=True, slots=True)
class NoiseTaker:
    """Uninformed flow: at Poisson times buys YES at the best ask or sells at the best bid, IOC, a
    uniform whole number of contracts. Never looks at the truth.

    It buys YES with probability ``side_bias + longshot_bias·(1 − 2·mid)`` (clamped to [0, 1];
    ``mid`` the book's mid as a probability, ``side_bias`` alone when a side is empty): a
    ``side_bias`` above ½ is the optimism of takers who buy YES, a positive ``longshot_bias`` the
    favourite–longshot bias — below 50¢ buying YES is buying the longshot, above it selling YES
    (buying NO) is (reference/market-realism.md: takers buy YES and longshots).

    ``max_spread_price`` (optional): skip an arrival when the spread is wider than this or a
    side is empty — without it, a maker quoting absurdly wide would still be filled.
    """

    user_id: str
    rate_per_s: float
    size_contracts_min: int = 1
    size_contracts_max: int = 10
    side_bias: float = 0.5
    """Probability that an arrival buys YES (at a 50¢ mid)."""
    max_spread_price: int | None = None
    longshot_bias: float = 0.0
    """Extra probability of buying the cheaper side, per unit of ``1 − 2·mid``."""

    def __post_init__(self) -> None:
        _check_taker(self.rate_per_s, self.size_contracts_min, self.size_contracts_max)
        if not 0.0 <= self.side_bias <= 1.0:
            raise InputError(f"side_bias must be in [0, 1], got {self.side_bias!r}")
        if not (math.isfinite(self.longshot_bias) and 0.0 <= self.longshot_bias <= 1.0):
            raise InputError(f"longshot_bias must be in [0, 1], got {self.longshot_bias!r}")

    def buy_prob(self, book: BookView) -> float:
        """Probability that an arrival buys YES against this book."""
        if self.longshot_bias == 0.0 or book.best_bid is None or book.best_ask is None:
            return self.side_bias
        mid = (book.best_bid + book.best_ask) / (2 * PRICE_ONE)
        return min(1.0, max(0.0, self.side_bias + self.longshot_bias * (1.0 - 2.0 * mid)))

    def initial_state(self, now_ns: int, rng: random.Random) -> TakerState:
        return TakerState(_next_arrival(now_ns, self.rate_per_s, rng))

    def decide(self, state: TakerState, view: MarketView, truth_p: float, now_ns: int,
               rng: random.Random) -> tuple[TakerState, list[Intent]]:
        new = _arrival(state, self.rate_per_s, now_ns, rng)
        if new is None:
            return state, []
        book = view.book
        buy = rng.random() < self.buy_prob(book)
        size = _size(self.size_contracts_min, self.size_contracts_max, rng)
        if not view.is_open:
            return new, []
        if self.max_spread_price is not None and (
            book.best_bid is None or book.best_ask is None
            or book.best_ask - book.best_bid > self.max_spread_price
        ):
            return new, []
        price = book.best_ask if buy else book.best_bid
        if price is None:
            return new, []
        side: Side = "bid" if buy else "ask"
        return new, [PlaceIntent(self.user_id, view.ticker, side, price, size,
                                 "immediate_or_cancel", False, "noise")]


@dataclass(frozen=True, slots=True)
class InformedTaker:
    """Sharp flow: at Poisson times observes ``truth_p + N(0, noise_sd_prob)`` and takes, IOC at the
    touch, when the book is wrong by more than ``edge_threshold_price``: buys when
    ``best_ask < p·PRICE_ONE − threshold``, sells when ``best_bid > p·PRICE_ONE + threshold``.
    This is the adverse selection a careless maker pays for. With ``sweep`` its IOC limit is its
    edge (``⌊p·PRICE_ONE − threshold⌋`` on the grid, mirrored for sells) rather than the touch,
    so it takes every level that is wrong enough, not just the best."""

    user_id: str
    edge_threshold_price: int
    rate_per_s: float
    size_contracts_min: int = 5
    size_contracts_max: int = 25
    noise_sd_prob: float = 0.0
    sweep: bool = False

    def __post_init__(self) -> None:
        _check_taker(self.rate_per_s, self.size_contracts_min, self.size_contracts_max)
        if self.edge_threshold_price < 0 or self.noise_sd_prob < 0:
            raise InputError("edge_threshold_price and noise_sd_prob must be >= 0")

    def initial_state(self, now_ns: int, rng: random.Random) -> TakerState:
        return TakerState(_next_arrival(now_ns, self.rate_per_s, rng))

    def decide(self, state: TakerState, view: MarketView, truth_p: float, now_ns: int,
               rng: random.Random) -> tuple[TakerState, list[Intent]]:
        new = _arrival(state, self.rate_per_s, now_ns, rng)
        if new is None:
            return state, []
        noise = rng.gauss(0.0, self.noise_sd_prob) if self.noise_sd_prob > 0 else 0.0
        size = _size(self.size_contracts_min, self.size_contracts_max, rng)
        if not view.is_open:
            return new, []
        fair = min(1.0, max(0.0, truth_p + noise)) * PRICE_ONE
        book = view.book
        if book.best_ask is not None and book.best_ask < fair - self.edge_threshold_price:
            price = book.best_ask
            if self.sweep:  # the highest grid price still strictly inside its edge
                price = max(price, view.grid.round_down(
                    math.ceil(fair - self.edge_threshold_price) - 1) or price)
            return new, [PlaceIntent(self.user_id, view.ticker, "bid", price, size,
                                     "immediate_or_cancel", False, "informed")]
        if book.best_bid is not None and book.best_bid > fair + self.edge_threshold_price:
            price = book.best_bid
            if self.sweep:
                price = min(price, view.grid.round_up(
                    math.floor(fair + self.edge_threshold_price) + 1) or price)
            return new, [PlaceIntent(self.user_id, view.ticker, "ask", price, size,
                                     "immediate_or_cancel", False, "informed")]
        return new, []


@dataclass(frozen=True, slots=True)
class NewsTaker:
    """News-informed flow: knows a news item while it is still private — before the sportsbooks
    (and so every theo built from them) move — and trades it until they do.

    At Poisson times it compares the truth ``p`` with what the books price, ``view.public_p``
    (:meth:`~mmcore.sim.truth.TruthPath.public_at`); only while they differ by at least
    ``min_news_prob`` (a private jump is in force) does it act, in the jump's direction: it buys
    YES with an IOC limit at ``⌊p·PRICE_ONE − edge_price⌋`` — sweeping every ask up to its edge,
    not just the touch — when the best ask is below that limit (mirrored: sells down to
    ``⌈p·PRICE_ONE + edge_price⌉``). Once the books know, it stops, whatever the exchange shows.
    """

    user_id: str
    rate_per_s: float
    edge_price: int = 200
    size_contracts_min: int = 10
    size_contracts_max: int = 50
    min_news_prob: float = 0.005

    def __post_init__(self) -> None:
        _check_taker(self.rate_per_s, self.size_contracts_min, self.size_contracts_max)
        if self.edge_price < 0 or not (math.isfinite(self.min_news_prob)
                                       and self.min_news_prob > 0):
            raise InputError("edge_price must be >= 0 and min_news_prob > 0")

    def initial_state(self, now_ns: int, rng: random.Random) -> TakerState:
        return TakerState(_next_arrival(now_ns, self.rate_per_s, rng))

    def decide(self, state: TakerState, view: MarketView, truth_p: float, now_ns: int,
               rng: random.Random) -> tuple[TakerState, list[Intent]]:
        new = _arrival(state, self.rate_per_s, now_ns, rng)
        if new is None:
            return state, []
        size = _size(self.size_contracts_min, self.size_contracts_max, rng)
        public = view.public_p
        if not view.is_open or public is None or abs(truth_p - public) < self.min_news_prob:
            return new, []
        book, grid = view.book, view.grid
        fair = truth_p * PRICE_ONE
        if truth_p > public and book.best_ask is not None:
            limit = grid.round_down(math.floor(fair - self.edge_price))
            if limit is not None and book.best_ask <= limit:
                return new, [PlaceIntent(self.user_id, view.ticker, "bid", limit, size,
                                         "immediate_or_cancel", False, "news")]
        elif truth_p < public and book.best_bid is not None:
            limit = grid.round_up(math.ceil(fair + self.edge_price))
            if limit is not None and book.best_bid >= limit:
                return new, [PlaceIntent(self.user_id, view.ticker, "ask", limit, size,
                                         "immediate_or_cancel", False, "news")]
        return new, []


# --- competing maker --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MakerState:
    bias_prob: float
    """Persistent error of this maker's fair value (drawn once)."""
    est_prob: float | None = None
    """Current fair-value estimate (YES probability); None before the first refresh."""
    est_ns: int = 0
    """When the estimate was last refreshed."""
    last_quote_ns: int | None = None
    """When the maker last cancelled or placed anything."""
    wake_ns: int = 0
    """Next refresh or the end of the requote cool-down, whichever is later."""


@dataclass(frozen=True, slots=True)
class CompetingMaker:
    """A simple two-sided quoter like the seed baselines, with a slow, biased view of the truth.

    Estimate: ``truth_p + bias + N(0, fair_noise_sd_prob)`` (``view.public_p`` in place of
    ``truth_p`` with ``follows_books``), re-drawn only every
    ``estimate_refresh_ns`` (so it lags jumps), clamped to [0.01, 0.99]; ``bias ~ N(0,
    bias_sd_prob)`` is fixed per maker. In price units, with ``e = est·PRICE_ONE``:

    - natural quotes: ``bid₀ = ⌊e − half_spread⌋``, ``ask₀ = ⌈e + half_spread⌉`` on the grid;
    - ceilings: ``bid ≤ ⌊e − ceiling_edge⌋``, ``ask ≥ ⌈e + ceiling_edge⌉``;
    - against the best *other* price ``o`` on the side: ``penny`` → ``bid = min(ceiling,
      max(bid₀, next_above(o)))``; otherwise join: ``min(ceiling, max(bid₀, o))`` (mirrored for
      asks). When its own order alone makes the top, others' best is unknown and the maker holds;
    - post-only and never crossing: ``bid < best ask``, ``ask > best bid`` (whole book) and
      ``bid < ask``; a side with no valid price is not quoted.

    It changes its orders (cancel then place) at most once per ``requote_min_ns``; a partly
    filled order is topped up only once below half of ``size_contracts``.
    """

    user_id: str
    fair_noise_sd_prob: float = 0.01
    half_spread_price: int = 300
    size_contracts: int = 10
    ceiling_edge_price: int = 100
    penny: bool = True
    requote_min_ns: int = 5 * NS_PER_S
    bias_sd_prob: float = 0.01
    estimate_refresh_ns: int = 30 * NS_PER_S
    follows_books: bool = False
    """Estimate from what the sportsbooks price (``view.public_p``) instead of the truth: such a
    maker learns news only when the books move, and news-informed takers sweep it till then."""

    def __post_init__(self) -> None:
        if not 0 <= self.ceiling_edge_price <= self.half_spread_price:
            raise InputError("need 0 <= ceiling_edge_price <= half_spread_price")
        if self.size_contracts < 1 or self.requote_min_ns < 0 or self.estimate_refresh_ns < 0:
            raise InputError("size_contracts must be >= 1; times must be >= 0")
        if self.fair_noise_sd_prob < 0 or self.bias_sd_prob < 0:
            raise InputError("fair_noise_sd_prob and bias_sd_prob must be >= 0")

    def initial_state(self, now_ns: int, rng: random.Random) -> MakerState:
        bias = rng.gauss(0.0, self.bias_sd_prob) if self.bias_sd_prob > 0 else 0.0
        return MakerState(bias_prob=bias, wake_ns=now_ns)

    def decide(self, state: MakerState, view: MarketView, truth_p: float, now_ns: int,
               rng: random.Random) -> tuple[MakerState, list[Intent]]:
        if state.est_prob is None or now_ns - state.est_ns >= self.estimate_refresh_ns:
            noise = rng.gauss(0.0, self.fair_noise_sd_prob) if self.fair_noise_sd_prob > 0 else 0.0
            seen = view.public_p if self.follows_books and view.public_p is not None else truth_p
            est = min(EST_MAX_PROB, max(EST_MIN_PROB, seen + state.bias_prob + noise))
            state = replace(state, est_prob=est, est_ns=now_ns)
        assert state.est_prob is not None
        cooling = state.last_quote_ns is not None and now_ns - state.last_quote_ns < self.requote_min_ns
        if not view.is_open or cooling:
            return self._with_wake(state), []
        bid, ask = self.target_quotes(state.est_prob, view)
        size = self.size_contracts * CONTRACT
        intents: list[Intent] = []
        places: list[Intent] = []
        targets: tuple[tuple[Side, int | None], ...] = (("bid", bid), ("ask", ask))
        for side, target in targets:
            mine = [o for o in view.own_orders if o.side == side]
            keep = (target is not None and len(mine) == 1 and mine[0].price == target
                    and 2 * mine[0].remaining >= size)
            if keep:
                continue
            intents.extend(CancelIntent(self.user_id, o.order_id) for o in mine)
            if target is not None:
                places.append(PlaceIntent(self.user_id, view.ticker, side, target, size,
                                          "good_till_canceled", True, "maker"))
        intents.extend(places)
        if intents:
            state = replace(state, last_quote_ns=now_ns)
        return self._with_wake(state), intents

    def target_quotes(self, est_prob: float, view: MarketView) -> tuple[int | None, int | None]:
        """(bid, ask) this maker wants given its estimate and the book; None = no quote."""
        grid, book = view.grid, view.book
        e = est_prob * PRICE_ONE
        bid = self._side_target(
            grid.round_down(math.floor(e - self.half_spread_price)),
            grid.round_down(math.floor(e - self.ceiling_edge_price)),
            _others_best(book.best_bid, book.bid_size, view.own_orders, "bid"),
            grid, up=True)
        ask = self._side_target(
            grid.round_up(math.ceil(e + self.half_spread_price)),
            grid.round_up(math.ceil(e + self.ceiling_edge_price)),
            _others_best(book.best_ask, book.ask_size, view.own_orders, "ask"),
            grid, up=False)
        if bid is not None and book.best_ask is not None and bid >= book.best_ask:
            bid = grid.next_below(book.best_ask)
        if ask is not None and book.best_bid is not None and ask <= book.best_bid:
            ask = grid.next_above(book.best_bid)
        if bid is not None and ask is not None and bid >= ask:
            bid = grid.next_below(ask)
        return bid, ask

    def _side_target(self, natural: int | None, ceiling: int | None, others: int | None | _Held,
                     grid: TickGrid, *, up: bool) -> int | None:
        """One side's price. ``up`` is True for bids (better = higher)."""
        if ceiling is None:
            return None
        better, best_of, worst_of = ((grid.next_above, max, min) if up
                                     else (grid.next_below, min, max))
        base = natural if natural is not None else (grid.min_price if up else grid.max_price)
        if isinstance(others, _Held):
            # Alone at the top: others' best is unknown (below our own price); hold there.
            return worst_of(ceiling, best_of(base, others.price))
        if others is None:
            return worst_of(ceiling, base)
        anchor = better(others) if self.penny else others
        anchor = others if anchor is None else anchor
        return worst_of(ceiling, best_of(base, anchor))

    def _with_wake(self, state: MakerState) -> MakerState:
        wake = state.est_ns + self.estimate_refresh_ns
        if state.last_quote_ns is not None:
            wake = max(wake, state.last_quote_ns + self.requote_min_ns)
        return replace(state, wake_ns=wake)


@dataclass(frozen=True, slots=True)
class _Held:
    """Our own order alone makes the top of this side, at ``price``."""

    price: int


def _others_best(price: int | None, size: int, own: tuple[OwnOrder, ...],
                 side: Side) -> int | None | _Held:
    """Best price of *other* participants on one side, from the top of book and our orders."""
    if price is None:
        return None
    mine = sum(o.remaining for o in own if o.side == side and o.price == price)
    return price if size > mine else _Held(price)


ParticipantConfig = Union[NoiseTaker, InformedTaker, NewsTaker, CompetingMaker]
ParticipantState = Union[TakerState, MakerState]
