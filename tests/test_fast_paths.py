"""Fast paths on the decision path equal the exact definitions they replace (issue 11 item 5).

Each speed-up of the per-event path is an implementation change only: these property tests pin
the fast form to the plain form it stands for (the definitions written out here, one order and
one outcome at a time), on random games, positions and orders.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mmcore.game import GameBook, scaled_direction
from mmcore.orders import LiveOrder, Quote
from mmcore.risk.exposure import (
    GamePosition,
    bounds_and_worst,
    order_pnl,
    outcome_pnl,
    scaled_bounds,
    scaled_order_direction,
    worst_case,
)
from mmcore.units import CONTRACT, PRICE_ONE

MARKETS = ("G-A", "G-B", "G-C")


@st.composite
def games(draw: st.DrawFn) -> GameBook:
    n = draw(st.integers(2, 3))
    markets = MARKETS[:n]
    extras = draw(st.sampled_from([(), ((0,) * n,), ((5000,) * n,), ((0,) * n, (2500,) * n)]))
    return GameBook(markets, extras)


@st.composite
def orders(draw: st.DrawFn, book: GameBook) -> list[LiveOrder | Quote]:
    out: list[LiveOrder | Quote] = []
    for _ in range(draw(st.integers(0, 6))):
        m = draw(st.sampled_from(book.markets))
        side = draw(st.sampled_from(["bid", "ask"]))
        price = draw(st.integers(0, PRICE_ONE))
        count = draw(st.integers(0, 5000))
        if draw(st.booleans()):
            out.append(Quote(m, side, price, count))
        else:
            out.append(LiveOrder("o", None, m, side, price, count, 0, 0))
    return out


@st.composite
def cases(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    book = draw(games())
    positions = {m: draw(st.integers(-10_000, 10_000)) for m in book.markets}
    pos = GamePosition(positions, draw(st.integers(-10**7, 10**7)))
    return book, pos, draw(orders(book)), draw(st.integers(0, 300))


def _count(o: LiveOrder | Quote) -> int:
    return o.remaining if isinstance(o, LiveOrder) else o.count


def exact_worst(book: GameBook, pos: GamePosition, orders: list, fee: int) -> list[int]:
    pnl = list(outcome_pnl(book, pos))
    for o in orders:
        c = _count(o)
        fees = -(-fee * c // CONTRACT)
        for i, x in enumerate(order_pnl(book, o.market, o.side, o.price, c, fees)):
            pnl[i] += min(0, x)
    return pnl


def exact_bounds(book: GameBook, pos: GamePosition, orders: list) -> tuple[list[int], list[int]]:
    lo = list(scaled_direction(book, pos.positions))
    hi = list(lo)
    for o in orders:
        for i, d in enumerate(scaled_order_direction(book, o.market, o.side, _count(o))):
            if d > 0:
                hi[i] += d
            else:
                lo[i] += d
    return lo, hi


@settings(max_examples=300, deadline=None)
@given(cases())
def test_worst_case_and_bounds_equal_the_definitions(case) -> None:  # type: ignore[no-untyped-def]
    book, pos, orders_, fee = case
    pnl = exact_worst(book, pos, orders_, fee)
    lo, hi = exact_bounds(book, pos, orders_)
    wc = worst_case(book, pos, orders_, fee_per_contract=fee)
    assert list(wc.pnl_by_outcome) == pnl and wc.worst_pnl == min(pnl)
    assert wc.worst_outcome == pnl.index(min(pnl))
    assert scaled_bounds(book, pos.positions, orders_) == (tuple(lo), tuple(hi))
    own, lo2, hi2, wc2 = bounds_and_worst(book, pos, orders_, fee)
    assert own == scaled_direction(book, pos.positions)
    assert (lo2, hi2) == (tuple(lo), tuple(hi)) and wc2 == wc
