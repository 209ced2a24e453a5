"""Tick grids from Kalshi ``price_ranges``: validation, rounding and stepping."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import InputError
from mmcore.ticks import TickGrid
from mmcore.units import CENT, PRICE_ONE

TAPERED_WIRE = [
    {"start": "0.0000", "end": "0.1000", "step": "0.0010"},
    {"start": "0.1000", "end": "0.9000", "step": "0.0100"},
    {"start": "0.9000", "end": "1.0000", "step": "0.0010"},
]
GRIDS = [
    TickGrid.linear_cent(),
    TickGrid.deci_cent(),
    TickGrid.tapered_deci_cent(),
    TickGrid.from_price_ranges([{"start": "0.0100", "end": "0.9900", "step": "0.0100"}]),
    TickGrid(((0, 2000, 500), (2000, 8000, 2000), (8000, PRICE_ONE, 500))),
]


def test_linear_cent() -> None:
    g = TickGrid.linear_cent()
    assert (g.min_price, g.max_price) == (CENT, 99 * CENT)
    assert g.is_valid(5600) and not g.is_valid(5650)
    assert not g.is_valid(0) and not g.is_valid(PRICE_ONE)
    assert g.round_down(5650) == 5600 and g.round_up(5650) == 5700
    assert g.round_down(99) is None and g.round_up(99) == CENT
    assert g.round_up(9901) is None and g.round_down(PRICE_ONE) == 9900
    assert g.next_above(9900) is None and g.next_below(100) is None
    assert g.next_above(5600) == 5700 and g.next_below(5600) == 5500
    assert g.step_at(5600) == CENT


def test_tapered_from_wire() -> None:
    g = TickGrid.from_price_ranges(TAPERED_WIRE)
    assert g == TickGrid.tapered_deci_cent()
    assert (g.min_price, g.max_price) == (10, 9990)
    assert g.is_valid(50) and g.is_valid(1000) and g.is_valid(9950)
    assert not g.is_valid(1010) and g.is_valid(1100)
    assert g.round_down(1099) == 1000 and g.round_up(1001) == 1100
    assert g.round_up(999) == 1000 and g.round_down(999) == 990
    assert g.next_above(990) == 1000 and g.next_above(1000) == 1100
    assert g.next_below(1000) == 990 and g.next_below(9010) == 9000
    assert g.step_at(1000) == 10 and g.step_at(5000) == CENT


def test_wire_ranges_out_of_order_are_sorted() -> None:
    assert TickGrid.from_price_ranges(list(reversed(TAPERED_WIRE))) == TickGrid.tapered_deci_cent()


@pytest.mark.parametrize(
    "ranges",
    [
        [],
        [{"start": "0.0000", "end": "0.5000", "step": "0.0100"},
         {"start": "0.6000", "end": "1.0000", "step": "0.0100"}],  # gap
        [{"start": "0.0000", "end": "1.0000", "step": "0.0300"}],  # step does not divide
        [{"start": "0.0000", "end": "1.0000", "step": "0.0000"}],
        [{"start": "0.5000", "end": "0.4000", "step": "0.0100"}],
        [{"start": "0.0000", "end": "1.0000", "step": "1.0000"}],  # no orderable price
        [{"start": "0.0000", "end": "1.0000", "step": "0.00001"}],  # finer than $0.0001
        [{"start": "0.0000", "end": "1.0000"}],
    ],
)
def test_invalid_ranges(ranges: list[dict[str, str]]) -> None:
    with pytest.raises(InputError):
        TickGrid.from_price_ranges(ranges)


grids = st.sampled_from(GRIDS)
any_price = st.integers(min_value=-100, max_value=PRICE_ONE + 100)


@given(grids, any_price)
def test_rounding_brackets_and_is_valid(g: TickGrid, x: int) -> None:
    lo, hi = g.round_down(x), g.round_up(x)
    if lo is not None:
        assert g.is_valid(lo) and lo <= x
        assert g.round_down(lo) == lo
        nxt = g.next_above(lo)
        assert nxt is None or nxt > x  # lo is the largest valid price <= x
    else:
        assert x < g.min_price
    if hi is not None:
        assert g.is_valid(hi) and hi >= x
        assert g.round_up(hi) == hi
        prv = g.next_below(hi)
        assert prv is None or prv < x
    else:
        assert x > g.max_price
    if g.is_valid(x):
        assert lo == hi == x


@given(grids, any_price)
def test_next_above_below_are_inverses_on_valid_prices(g: TickGrid, x: int) -> None:
    p = g.round_down(x)
    if p is None:
        return
    up = g.next_above(p)
    if up is not None:
        assert g.is_valid(up) and up > p and g.next_below(up) == p
    down = g.next_below(p)
    if down is not None:
        assert g.is_valid(down) and down < p and g.next_above(down) == p


@pytest.mark.parametrize("g", GRIDS)
def test_walk_covers_exactly_the_valid_prices(g: TickGrid) -> None:
    walked = []
    p: int | None = g.min_price
    while p is not None:
        walked.append(p)
        p = g.next_above(p)
    assert walked == [x for x in range(PRICE_ONE + 1) if g.is_valid(x)]
