"""Exposure of one game: settlement P&L per outcome, directional inventory, worst cases.

A game (Kalshi event) has ``n`` binary markets (two for NBA/NFL/NHL/MLB, three for soccer with
the tie market) and ``N = book.n_outcomes`` settlement outcomes: "market ``i`` wins" (it settles
YES, the others NO) plus the extra outcomes the series rules allow (:class:`~mmcore.game.GameBook`:
every market NO in a draw of a 2-way soccer listing, or every market at a set value when void).
Every per-outcome tuple here has ``N`` entries, markets first. With an extra outcome, YES on both
teams is not riskless: long 10 A + 10 B bought at 0.48 loses $9.60 when neither wins.

Units (see :mod:`mmcore.units`): prices and money are ``int`` price units ($0.0001,
``PRICE_ONE`` = $1), counts are ``int`` centi-contracts (``CONTRACT`` = 1 contract). Positions are
signed per market (+YES, −NO). Orders are in YES terms: a bid buys YES at ``price``, an ask sells
YES at ``price`` (≡ buys NO at ``PRICE_ONE − price``).

Accounting convention (``GamePosition.cash``): **YES-terms cash flow** — every bid fill pays
``price × count``, every ask fill receives it, fees are subtracted; a position then settles for
``pos × settlement value`` on every market (``PRICE_ONE`` on the winner; a negative position pays). Kalshi's own accounting
charges a NO buyer ``PRICE_ONE − price`` and pays NO holders on a loss; the P&L is identical and
``cash_yes_terms = kalshi_cash + PRICE_ONE × NO contracts held``.

Why worst cases: resting orders can fill in any subset and any order (design §2, "Worst-case
headroom includes resting orders"; flumine ``Blotter.get_exposures``). Every bound here therefore
takes the position plus, independently per order and per outcome, the worse of "fills" and "does
not fill". An A-bid and a B-ask both add to "A wins" and are both counted (TV13: q_E 20 → 40).

Directional exposure for ``n`` outcomes: ``d_o = payoff_o − mean(payoff_o' for o' ≠ o)`` (payoffs
in contracts). It is linear (so per-order worst cases add exactly), invariant to holding one
contract of every outcome (riskless) and to the YES/NO accounting shift, and for two outcomes
``d_A = q_E = pos_A − pos_B`` and ``d_B = −q_E``. Internally it is kept scaled by ``n − 1``
(``D_o = n·pos_o − Σ pos``) so that it stays an exact integer.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mmcore.errors import InputError
from mmcore.game import GameBook, scaled_direction, settlement_matrix
from mmcore.game import position_vector as _position_vector
from mmcore.orders import LiveOrder, Quote, Side
from mmcore.units import CONTRACT, PRICE_ONE

Order = LiveOrder | Quote
"""A resting order (its ``remaining`` counts) or a desired quote (its ``count``)."""


@dataclass(frozen=True, slots=True)
class GamePosition:
    """Signed centi-contracts per market and the YES-terms net cash flow (money, fees included)."""

    positions: Mapping[str, int]
    cash: int = 0


@dataclass(frozen=True, slots=True)
class WorstCase:
    """Worst-case settlement P&L (money) per outcome, its minimum and where it occurs."""

    pnl_by_outcome: tuple[int, ...]
    worst_pnl: int
    worst_outcome: int

    @property
    def worst_loss(self) -> int:
        """Money that can be lost at settlement (0 when every outcome is a profit)."""
        return max(0, -self.worst_pnl)


def order_fields(order: Order) -> tuple[str, Side, int, int]:
    """(market, side, price, open count) of a resting order or quote."""
    count = order.remaining if isinstance(order, LiveOrder) else order.count
    if count < 0:
        raise InputError(f"negative order size {count} on {order.market}")
    if not 0 <= order.price <= PRICE_ONE:
        raise InputError(f"price {order.price} outside [0, {PRICE_ONE}] on {order.market}")
    return order.market, order.side, order.price, count


def outcome_pnl(book: GameBook, pos: GamePosition) -> tuple[int, ...]:
    """Settlement P&L (money) per outcome: ``cash + Σ pos_m × value_m`` (YES-terms cash; the
    value is ``PRICE_ONE`` on the winner, 0 elsewhere, or the extra outcome's values)."""
    vec = _position_vector(book, pos.positions)
    return tuple(pos.cash + sum(q * v for q, v in zip(vec, values)) // CONTRACT
                 for values in settlement_matrix(book))


def order_pnl(
    book: GameBook, market: str, side: Side, price: int, count: int, fees: int = 0
) -> tuple[int, ...]:
    """P&L (money) per outcome if ``count`` centi-contracts fill at ``price`` (YES terms).

    A bid gains ``value − price`` per contract where ``value`` is what ``market`` settles at in
    that outcome (``PRICE_ONE`` if it wins, 0 if not, the set value of an extra outcome); an ask
    is the mirror. ``fees`` (money) is subtracted from every outcome. Fractional results are
    floored, i.e. rounded towards the loss, so bounds stay conservative.
    """
    i = book.index(market)
    signed = count if side == "bid" else -count
    return tuple((signed * (values[i] - price)) // CONTRACT - fees for values in settlement_matrix(book))


@functools.lru_cache(maxsize=4096)
def order_terms(
    book: GameBook, market: str, side: Side, price: int, count: int, fee_per_contract: int = 0
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """One order's two per-outcome terms of every worst case here: (its change of
    ``book.scale × d_o`` if it fills — :func:`scaled_order_direction`; ``min(0, its P&L)`` if it
    fills, fees of ``fee_per_contract`` per contract rounded up charged — :func:`order_pnl`).

    Why cached: sizing asks for the same few orders (ours, resting and desired) many times per
    decision — every candidate counts every other slot's order — and a worst case is the sum of
    these terms, so each order's are computed once and looked up after (pure function of its
    arguments; the cache is bounded). ``count`` and ``price`` as :func:`order_fields` checked."""
    fees = -(-fee_per_contract * count // CONTRACT)
    return (scaled_order_direction(book, market, side, count),
            tuple(min(0, c) for c in order_pnl(book, market, side, price, count, fees)))


def worst_case(
    book: GameBook,
    pos: GamePosition,
    resting: Iterable[Order],
    candidate: Quote | None = None,
    *,
    fee_per_contract: int = 0,
) -> WorstCase:
    """Worst settlement P&L per outcome with any subset of ``resting`` (+ ``candidate``) filled.

    Per outcome: base P&L plus, for each order independently, ``min(0, its contribution)``.
    ``fee_per_contract`` (money per whole contract, rounded up) is charged on every order.
    """
    pnl = list(outcome_pnl(book, pos))
    orders = list(resting) + ([candidate] if candidate is not None else [])
    n_out = len(pnl)
    for order in orders:
        mins = order_terms(book, *order_fields(order), fee_per_contract)[1]
        for o in range(n_out):
            pnl[o] += mins[o]
    worst = min(pnl)
    return WorstCase(tuple(pnl), worst, pnl.index(worst))


def bounds_and_worst(
    book: GameBook, pos: GamePosition, orders: Iterable[Order], fee_per_contract: int = 0
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """``scaled_direction`` of the position, :func:`scaled_bounds` and :func:`worst_case` of the
    same orders in one pass over them: (own, lo, hi, worst-case P&L per outcome, i.e.
    ``worst_case(...).pnl_by_outcome``) — what :func:`~mmcore.risk.limits.cap_size` needs of
    the orders already resting, equal to calling the three."""
    if book.extra_outcomes:
        own = scaled_direction(book, pos.positions)
        pnl = list(outcome_pnl(book, pos))
    else:  # plain game: outcome o pays PRICE_ONE on market o alone (the same integers, inlined)
        vec = _position_vector(book, pos.positions)
        total, n, cash = sum(vec), len(vec), pos.cash
        own = tuple(n * q - total for q in vec)
        pnl = [cash + q * PRICE_ONE // CONTRACT for q in vec]
    lo = list(own)
    hi = list(own)
    n_out = len(pnl)
    for order in orders:
        dirs, mins = order_terms(book, *order_fields(order), fee_per_contract)
        for o in range(n_out):
            d = dirs[o]
            if d > 0:
                hi[o] += d
            else:
                lo[o] += d
            pnl[o] += mins[o]
    return own, tuple(lo), tuple(hi), tuple(pnl)


@functools.lru_cache(maxsize=1024)
def candidate_terms(
    book: GameBook, market: str, side: Side
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """What sizing a candidate on (market, side) reads of the game, fixed per game and slot:
    (its change of ``book.scale × d_o`` per centi-contract — :func:`scaled_order_direction` of
    1; the outcomes in the order :func:`~mmcore.risk.limits.cap_size` checks them, those it
    pushes up first — a stable sort; ``market``'s settlement value in each outcome, price units)."""
    unit = scaled_order_direction(book, market, side, 1)
    i = book.index(market)
    return (unit, tuple(sorted(range(book.n_outcomes), key=lambda o: -unit[o])),
            tuple(values[i] for values in settlement_matrix(book)))


def net_exposure(book: GameBook, positions: Mapping[str, int]) -> tuple[int, ...]:
    """Centi-contracts paying out per outcome (all ``N``): YES on m pays its settlement value,
    NO on m the rest of $1 (floored for a void at a fractional value)."""
    vec = _position_vector(book, positions)
    out = []
    for o in range(book.n_outcomes):
        values = book.settlement(o)
        paid = sum(q * v if q > 0 else -q * (PRICE_ONE - v) for q, v in zip(vec, values))
        out.append(paid // PRICE_ONE)
    return tuple(out)


def _require_two(book: GameBook) -> None:
    if book.n_outcomes != 2:
        raise InputError(
            f"a signed inventory needs a two-outcome game, got {book.n_outcomes} outcomes; "
            "use exposure_vector_bounds"
        )


def signed_inventory(book: GameBook, positions: Mapping[str, int]) -> int:
    """q_E = pos_A − pos_B (centi-contracts): the exposure to "outcome 0 wins" (TV13: 20)."""
    _require_two(book)
    a, b = _position_vector(book, positions)
    return a - b


def inventory_sign(book: GameBook, market: str, side: Side) -> int:
    """+1 if a fill of (market, side) adds to q_E (bid on A, ask on B), else −1."""
    _require_two(book)
    return 1 if (book.index(market) == 0) == (side == "bid") else -1


def worst_case_inventory(
    book: GameBook,
    positions: Mapping[str, int],
    resting: Iterable[Order],
    candidate: Quote | None = None,
) -> tuple[int, int]:
    """(max q_E if every adding order fills, min q_E if every reducing order fills); TV13: (40, 0)."""
    q = signed_inventory(book, positions)
    hi = lo = q
    orders = list(resting) + ([candidate] if candidate is not None else [])
    for order in orders:
        market, side, _, count = order_fields(order)
        if inventory_sign(book, market, side) > 0:
            hi += count
        else:
            lo -= count
    return hi, lo


def scaled_order_direction(book: GameBook, market: str, side: Side, count: int) -> tuple[int, ...]:
    """Change of ``book.scale × d_o`` per outcome if ``count`` of (market, side) fills."""
    signed = count if side == "bid" else -count
    if not book.extra_outcomes:  # D_o = n·pos_o − Σ pos with one market held (sizing's hot path)
        i, n = book.index(market), len(book.markets)
        return tuple((n - 1) * signed if o == i else -signed for o in range(n))
    return scaled_direction(book, {market: signed})


def scaled_bounds(
    book: GameBook, positions: Mapping[str, int], orders: Iterable[Order]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(min, max) of ``book.scale × d_o`` per outcome over every subset of ``orders`` filling."""
    lo = list(scaled_direction(book, positions))
    hi = list(lo)
    n_out = len(lo)
    for order in orders:
        dirs = order_terms(book, *order_fields(order))[0]
        for o in range(n_out):
            delta = dirs[o]
            if delta > 0:
                hi[o] += delta
            else:
                lo[o] += delta
    return tuple(lo), tuple(hi)


def exposure_vector_bounds(
    book: GameBook,
    positions: Mapping[str, int],
    resting: Iterable[Order],
    candidate: Quote | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(mins, maxs) of the directional exposure ``d_o`` per outcome (centi-contracts).

    ``d_o = payoff_o − mean payoff over the other outcomes``; bounds range over every subset of
    the orders filling, rounded outwards to whole centi-contracts. For two outcomes the entry for
    outcome 0 is ``worst_case_inventory`` reversed: ``(min q_E, max q_E)``.
    """
    orders = list(resting) + ([candidate] if candidate is not None else [])
    lo, hi = scaled_bounds(book, positions, orders)
    k = book.scale
    return tuple(x // k for x in lo), tuple(-(-x // k) for x in hi)


def synthetic_book(
    book_a: tuple[int | None, int | None], book_b: tuple[int | None, int | None]
) -> tuple[int | None, int | None]:
    """The "A wins" book from both markets' YES (bid, ask) in price units; TV13: 57/59.

    bid = max(bid_A, PRICE_ONE − ask_B) and ask = min(ask_A, PRICE_ONE − bid_B): selling YES on B
    is buying "A wins". A missing side (None) is ignored; None when neither side exists.
    """
    bid_a, ask_a = book_a
    bid_b, ask_b = book_b
    bids = [p for p in (bid_a, None if ask_b is None else PRICE_ONE - ask_b) if p is not None]
    asks = [p for p in (ask_a, None if bid_b is None else PRICE_ONE - bid_b) if p is not None]
    return (max(bids) if bids else None, min(asks) if asks else None)


def parity_violation(
    bids: Sequence[int | None], asks: Sequence[int | None], fees: int = 0
) -> int | None:
    """Locked loss (money per contract of each leg) our own quotes would create, or None.

    Buying YES on several outcomes pays at most PRICE_ONE (exactly one wins), so bids on any set
    of outcomes summing above PRICE_ONE lock in a loss. Selling YES on *every* outcome pays out
    exactly PRICE_ONE, so a full set of asks summing below it does too. ``fees`` (money for one
    contract on each leg) is added to the cost of either set. TV13: bids 98, asks 104 → None.
    With an extra outcome (a draw both markets settle NO on) the full set of asks is not a locked
    loss but a bet on that outcome; this check stays conservative, and the worst-case loss limit
    (:func:`worst_case`, which counts the extra outcome) bounds the bet.
    """
    if len(bids) != len(asks):
        raise InputError(f"{len(bids)} bids but {len(asks)} asks")
    present = [b for b in bids if b is not None]
    loss = sum(present) + fees - PRICE_ONE if present else 0
    if asks and all(a is not None for a in asks):
        loss = max(loss, PRICE_ONE + fees - sum(a for a in asks if a is not None))
    return loss if loss > 0 else None
