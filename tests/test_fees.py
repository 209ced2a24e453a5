"""Kalshi fee schedule: TV7/TV7b vectors, the rounding accumulator, and properties."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import InputError
from mmcore.fees import (
    DIRECT_PRECISION,
    FeeAccumulator,
    FeeSchedule,
    clears_maker_fee,
    effective_single_fill_fee,
    fee_ceil_cent,
    fee_per_contract,
    maker_fee_per_contract,
    order_fees,
    raw_fee,
    trade_fee,
)
from mmcore.units import CENT, CONTRACT, PRICE_ONE, parse_dollars
from tests.refvectors import quoting_vectors

MAKER = FeeSchedule("quadratic_with_maker_fees")
PLAIN = FeeSchedule("quadratic")
COMBO = FeeSchedule("quadratic_with_combo_maker_fees")


def _vectors(name: str) -> list[dict]:
    return quoting_vectors()[name]


def _dollars(x: float) -> Fraction:
    """A vector's dollar value → exact price units ($0.0001)."""
    return Fraction(Decimal(str(x))) * PRICE_ONE


def test_tv7_every_row() -> None:
    for row in _vectors("TV7_fees"):
        price, count = row["P_cents"] * CENT, row["C"] * CONTRACT
        for side, maker in (("taker", False), ("maker", True)):
            v = row[side]
            raw = raw_fee(price, count, maker=maker, schedule=MAKER)
            assert abs(raw - _dollars(v["raw_dollars"])) <= Fraction(PRICE_ONE, 2_000_000), row
            assert trade_fee(price, count, maker=maker, schedule=MAKER) == _dollars(
                v["centicent_trade_fee"]
            ), (row, side)
            assert fee_ceil_cent(price, count, maker=maker, schedule=MAKER) == _dollars(
                v["ceil_cent_dollars"]
            ), (row, side)
            for buy in (True, False):
                got = effective_single_fill_fee(price, count, maker=maker, schedule=MAKER, buy=buy)
                assert got == _dollars(v["effective_single_fill_nondirect"]), (row, side, buy)


def test_tv7b_per_contract_at_100_lots() -> None:
    for row in _vectors("TV7b_fee_per_contract_C100"):
        price, clip = row["P_cents"] * CENT, 100 * CONTRACT
        # vectors are cents per contract; price units per contract = cents × CENT
        assert maker_fee_per_contract(price, MAKER, clip) == pytest.approx(row["maker_c"] * CENT)
        taker = fee_per_contract(price, clip, maker=False, schedule=MAKER)
        assert taker == pytest.approx(row["taker_c"] * CENT)
        assert 2 * maker_fee_per_contract(price, MAKER, clip) == pytest.approx(
            row["maker_round_trip_c"] * CENT
        )


def test_kalshi_doc_worked_example_mechanics() -> None:
    """3 one-lot buys at $0.055 (docs' fee_rounding example) with the real 0.07 taker fee."""
    fills = order_fees([(550, CONTRACT)] * 3, maker=False, buy=True, schedule=PLAIN)
    assert [f.trade_fee for f in fills] == [37, 37, 37]  # 0.07·0.055·0.945 = 0.00363825 → 0.0037
    assert [f.balance_change for f in fills] == [-600, -600, -600]  # −0.0587 floored to −0.06
    assert [f.rounding_fee for f in fills] == [13, 13, 13]
    assert sum(f.rebate for f in fills) == 0  # 39 < one cent accumulated
    single = effective_single_fill_fee(550, 3 * CONTRACT, maker=False, schedule=PLAIN)
    assert single == 150  # trade 0.0110, balance −0.1760 floored to −0.18: rounding 0.0040
    assert sum(f.net_fee for f in fills) == 150


def test_rebate_paid_when_accumulated_rounding_reaches_a_cent() -> None:
    acc = FeeAccumulator(MAKER)
    fill, acc = acc.add_fill(5000, CONTRACT, maker=True, buy=True)  # fee 44, rounding 56
    assert (fill.trade_fee, fill.rounding_fee, fill.rebate) == (44, 56, 0)
    fill, acc = acc.add_fill(5000, CONTRACT, maker=True, buy=True)  # 56 + 56 ≥ 100 → rebate
    assert fill.rebate == CENT and acc.accumulated == 12
    assert fill.total_balance_change == -5000 - 100 + 100


def test_direct_member_precision_charges_no_rounding() -> None:
    (fill,) = order_fees([(5000, CONTRACT)], maker=True, buy=True, schedule=MAKER,
                         precision=DIRECT_PRECISION)
    assert (fill.trade_fee, fill.rounding_fee, fill.net_fee) == (44, 0, 44)


def test_schedule_validation_and_coefficients() -> None:
    with pytest.raises(InputError, match="unknown fee_type"):
        FeeSchedule.from_series("percent", 1)
    with pytest.raises(InputError):
        FeeSchedule.from_series("quadratic", "abc")
    with pytest.raises(InputError):
        FeeSchedule.from_series("quadratic", -1)
    s = FeeSchedule.from_series("quadratic_with_maker_fees", "0.5")
    assert s.coefficient(maker=False) == Fraction(7, 200)
    assert s.coefficient(maker=True) == Fraction(7, 800)
    assert PLAIN.coefficient(maker=True) == 0
    assert trade_fee(5000, 100 * CONTRACT, maker=True, schedule=PLAIN) == 0
    assert MAKER.fee_known and not FeeSchedule("flat").fee_known


def test_flat_is_an_explicit_per_contract_parameter() -> None:
    assert trade_fee(5000, 10 * CONTRACT, maker=False, schedule=FeeSchedule("flat")) == 0
    flat = FeeSchedule("flat", flat_taker_fee_per_contract=100, flat_maker_fee_per_contract=25)
    assert trade_fee(5000, 10 * CONTRACT, maker=False, schedule=flat) == 1000
    assert trade_fee(3000, 10 * CONTRACT, maker=True, schedule=flat) == 250
    assert trade_fee(3000, 150, maker=True, schedule=flat) == 38  # 37.5 rounded up
    with pytest.raises(InputError):
        FeeSchedule("flat", flat_taker_fee_per_contract=-1)


def test_clears_maker_fee() -> None:
    clip = 100 * CONTRACT
    assert maker_fee_per_contract(5000, MAKER, clip) == 44.0
    assert clears_maker_fee(45, 5000, MAKER, clip)
    assert not clears_maker_fee(44, 5000, MAKER, clip)
    assert clears_maker_fee(1, 5000, PLAIN, clip) and not clears_maker_fee(0, 5000, PLAIN, clip)
    # a 1-lot pays the whole rounded cent
    assert maker_fee_per_contract(5000, MAKER, CONTRACT) == 100.0


def test_bad_inputs() -> None:
    with pytest.raises(InputError):
        trade_fee(-1, CONTRACT, maker=False, schedule=MAKER)
    with pytest.raises(InputError):
        trade_fee(5000, -1, maker=False, schedule=MAKER)
    with pytest.raises(InputError):
        fee_per_contract(5000, 0, maker=False, schedule=MAKER)


prices = st.integers(min_value=0, max_value=PRICE_ONE)
counts = st.integers(min_value=0, max_value=100_000 * CONTRACT)
schedules = st.sampled_from([MAKER, PLAIN, COMBO, FeeSchedule("quadratic", 0.5),
                             FeeSchedule("quadratic_with_maker_fees", 2.0)])


@given(prices, counts, st.booleans(), schedules)
def test_symmetric_nonnegative(price: int, count: int, maker: bool, sched: FeeSchedule) -> None:
    fee = trade_fee(price, count, maker=maker, schedule=sched)
    assert fee >= 0
    assert fee == trade_fee(PRICE_ONE - price, count, maker=maker, schedule=sched)
    assert fee_ceil_cent(price, count, maker=maker, schedule=sched) >= fee


@given(prices, counts, st.booleans(),
       st.sampled_from([MAKER, PLAIN, COMBO, FeeSchedule("quadratic", 0.5),
                        FeeSchedule("quadratic_with_maker_fees", "1.25"),
                        FeeSchedule("quadratic_with_combo_maker_fees", 0.3),
                        FeeSchedule("flat", flat_taker_fee_per_contract=37, flat_maker_fee_per_contract=13)]))
def test_integer_rounding_equals_rounding_the_exact_fee(price: int, count: int, maker: bool,
                                                        sched: FeeSchedule) -> None:
    """The integer path quoting uses rounds exactly as the Fraction does: up to $0.0001, up to 1¢."""
    raw = raw_fee(price, count, maker=maker, schedule=sched)
    assert trade_fee(price, count, maker=maker, schedule=sched) == -((-raw) // 1)
    assert fee_ceil_cent(price, count, maker=maker, schedule=sched) == -((-raw) // CENT) * CENT


@given(prices, counts, counts, st.booleans())
def test_monotone_in_count(price: int, c1: int, c2: int, maker: bool) -> None:
    lo, hi = sorted((c1, c2))
    assert trade_fee(price, lo, maker=maker, schedule=MAKER) <= trade_fee(
        price, hi, maker=maker, schedule=MAKER
    )


@given(prices, counts)
def test_multiplier_scaling_and_combo_is_twice_maker(price: int, count: int) -> None:
    half = FeeSchedule("quadratic", 0.5)
    assert raw_fee(price, count, maker=False, schedule=half) * 2 == raw_fee(
        price, count, maker=False, schedule=PLAIN
    )
    assert raw_fee(price, count, maker=True, schedule=COMBO) == 2 * raw_fee(
        price, count, maker=True, schedule=MAKER
    )
    assert raw_fee(price, count, maker=True, schedule=MAKER) * 4 == raw_fee(
        price, count, maker=False, schedule=MAKER
    )


@st.composite
def split_orders(draw: st.DrawFn) -> tuple[int, list[int]]:
    """A price and an order split into up to 100 partial fills, exact in $0.0001.

    Either a whole-cent price with any centi-contract counts, or any price with whole contracts.
    """
    if draw(st.booleans()):
        price = draw(st.integers(1, 99)) * CENT
        parts = draw(st.lists(st.integers(1, 5_000), min_size=1, max_size=100))
    else:
        price = draw(st.integers(1, PRICE_ONE - 1))
        parts = [CONTRACT * n for n in draw(st.lists(st.integers(1, 50), min_size=1, max_size=100))]
    return price, parts


@given(split_orders(), st.booleans(), st.booleans(), schedules)
def test_accumulator_over_partial_fills(
    order: tuple[int, list[int]], maker: bool, buy: bool, sched: FeeSchedule
) -> None:
    price, parts = order
    total = sum(parts)
    fills = order_fees([(price, c) for c in parts], maker=maker, buy=buy, schedule=sched)
    paid = sum(f.net_fee for f in fills)
    single_trade = trade_fee(price, total, maker=maker, schedule=sched)
    single_eff = effective_single_fill_fee(price, total, maker=maker, schedule=sched, buy=buy)
    assert paid >= single_trade
    assert abs(paid - single_eff) <= CENT
    # balance changes are whole cents and account for every fee component
    revenue = Fraction(price * total, CONTRACT) * (-1 if buy else 1)
    assert all(f.balance_change % CENT == 0 for f in fills)
    assert sum(f.total_balance_change for f in fills) == revenue - paid


def test_parse_roundtrip_of_vector_units() -> None:
    assert _dollars(0.0044) == 44 and parse_dollars("0.0044") == 44
