from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import InputError
from mmcore.units import (
    CENT,
    CONTRACT,
    PRICE_ONE,
    format_count_fp,
    format_dollars,
    no_price,
    notional,
    parse_count_fp,
    parse_dollars,
    prob_to_price,
)


def test_wire_examples():
    assert parse_dollars("0.5600") == 5600
    assert parse_dollars("0.56") == 56 * CENT
    assert format_dollars(5600) == "0.5600"
    assert format_dollars(-5) == "-0.0005"
    assert parse_count_fp("10.00") == 10 * CONTRACT
    assert format_count_fp(1001) == "10.01"
    assert no_price(4200) == PRICE_ONE - 4200


def test_exact_refuses_sub_unit():
    with pytest.raises(InputError, match="finer"):
        parse_dollars("0.56001")
    assert parse_dollars("0.560051", rounding="down") == 5600
    assert parse_dollars("0.560051", rounding="up") == 5601
    with pytest.raises(InputError):
        parse_count_fp("1.001")
    with pytest.raises(InputError):
        parse_dollars("nan")
    with pytest.raises(InputError):
        parse_dollars("abc")


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_dollars_round_trip(p):
    assert parse_dollars(format_dollars(p)) == p


@given(st.integers(min_value=-10**9, max_value=10**9))
def test_count_round_trip(c):
    assert parse_count_fp(format_count_fp(c)) == c


@given(st.floats(min_value=0, max_value=1))
def test_prob_rounding_brackets(p):
    lo, hi = prob_to_price(p, "down"), prob_to_price(p, "up")
    assert lo <= hi
    assert lo / PRICE_ONE <= p + 1e-9 and hi / PRICE_ONE >= p - 1e-9
    assert hi - lo <= 1


def test_prob_to_price_float_noise():
    assert prob_to_price(0.56, "down") == 5600
    assert prob_to_price(0.56, "up") == 5600
    with pytest.raises(InputError):
        prob_to_price(1.2)


def test_notional_exact():
    assert notional(5600, 10 * CONTRACT) == 56000  # $5.60
    assert Decimal(format_dollars(notional(5600, 150))) == Decimal("0.84")
