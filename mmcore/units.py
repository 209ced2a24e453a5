"""Exact units for prices, sizes and money.

Kalshi's wire format carries prices as dollar strings with up to 4 decimals (``"0.5600"``) and
counts as fixed-point strings with 2 decimals (``"10.00"``). Floats cannot hold either exactly,
and a quoting bug of one tick is a real loss, so inside the core:

- **price** is an ``int`` in units of $0.0001 ("price units"; ``PRICE_ONE == 10_000`` is $1.00,
  ``CENT == 100`` is $0.01). A YES price and its NO price always sum to ``PRICE_ONE``.
- **count** is an ``int`` in units of 0.01 contract ("centi-contracts"; ``CONTRACT == 100``).
- **money** (balances, fees, P&L) is an ``int`` in the same $0.0001 units as price. The cost of a
  fill is ``price * count // CONTRACT`` — exact because both grids are decimal.
- **probability** (theo) is a ``float`` in [0, 1]. It is never mixed with prices without one of the
  explicit conversions below, which say how they round.

Conversion to and from wire strings happens only at the venue edge (``mmcore.venues``).
Names of functions and parameters carry their unit: ``*_dollars`` for wire strings,
``*_fp`` for fixed-point count strings, ``price`` / ``count`` for the integer units.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Literal

from mmcore.errors import InputError

PRICE_ONE = 10_000
"""$1.00 in price units ($0.0001)."""
CENT = 100
"""$0.01 in price units."""
CONTRACT = 100
"""One contract in count units (centi-contracts)."""

_PRICE_QUANTUM = Decimal("0.0001")
_COUNT_QUANTUM = Decimal("0.01")

Rounding = Literal["exact", "down", "up", "nearest"]
_DECIMAL_ROUNDING = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}


def _to_decimal(value: str | int | float | Decimal, what: str) -> Decimal:
    if isinstance(value, bool):
        raise InputError(f"{what}: expected a number, got a boolean")
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError) as exc:
        raise InputError(f"{what}: {value!r} is not a number") from exc
    if not d.is_finite():
        raise InputError(f"{what}: {value!r} is not finite")
    return d


def _quantize(d: Decimal, quantum: Decimal, rounding: Rounding, what: str, raw: object) -> int:
    scaled = d / quantum
    if rounding == "exact":
        if scaled != scaled.to_integral_value():
            raise InputError(f"{what}: {raw!r} is finer than {quantum}")
        return int(scaled)
    return int(scaled.to_integral_value(rounding=_DECIMAL_ROUNDING[rounding]))


def parse_dollars(value: str | int | float | Decimal, rounding: Rounding = "exact") -> int:
    """Parse a Kalshi ``*_dollars`` string into price/money units ($0.0001).

    ``rounding="exact"`` (the default, right for prices) refuses anything finer than $0.0001;
    portfolio money fields may carry 6 decimals and are parsed with an explicit rounding.
    """
    d = _to_decimal(value, "dollars")
    return _quantize(d, _PRICE_QUANTUM, rounding, "dollars", value)


def format_dollars(price: int) -> str:
    """Price/money units → Kalshi dollar string with 4 decimals (``5600`` → ``"0.5600"``)."""
    if not isinstance(price, int) or isinstance(price, bool):
        raise InputError(f"price must be an int in $0.0001 units, got {price!r}")
    sign = "-" if price < 0 else ""
    whole, frac = divmod(abs(price), PRICE_ONE)
    return f"{sign}{whole}.{frac:04d}"


def parse_count_fp(value: str | int | float | Decimal, rounding: Rounding = "exact") -> int:
    """Parse a Kalshi ``*_fp`` count string into centi-contracts (``"10.00"`` → ``1000``)."""
    d = _to_decimal(value, "count")
    return _quantize(d, _COUNT_QUANTUM, rounding, "count", value)


def format_count_fp(count: int) -> str:
    """Centi-contracts → Kalshi fixed-point count string with 2 decimals (``1000`` → ``"10.00"``)."""
    if not isinstance(count, int) or isinstance(count, bool):
        raise InputError(f"count must be an int in 0.01-contract units, got {count!r}")
    sign = "-" if count < 0 else ""
    whole, frac = divmod(abs(count), CONTRACT)
    return f"{sign}{whole}.{frac:02d}"


def contracts(n: int | float) -> int:
    """Whole (or fractional) contracts → centi-contracts, refusing sub-0.01 sizes."""
    return parse_count_fp(n)


def notional(price: int, count: int) -> int:
    """Money (price units) for ``count`` centi-contracts at ``price``, floored to $0.0001.

    Exact for whole contracts; a fractional count at a sub-cent price can be finer than $0.0001,
    and then the result is floored (as Kalshi floors balance changes).
    """
    return (price * count) // CONTRACT


def no_price(yes_price: int) -> int:
    """The NO price that mirrors a YES price (both in price units)."""
    return PRICE_ONE - yes_price


def prob_to_price(p: float, rounding: Literal["down", "up", "nearest"] = "nearest") -> int:
    """Probability in [0, 1] → price units, rounding as asked (bids down, asks up)."""
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not math.isfinite(p):
        raise InputError(f"probability must be a finite number, got {p!r}")
    if not 0.0 <= p <= 1.0:
        raise InputError(f"probability must be in [0, 1], got {p!r}")
    x = p * PRICE_ONE
    # Guard against float noise such as 0.56 * 10000 = 5600.000000000001.
    nearest = round(x)
    if abs(x - nearest) < 1e-7:
        return int(nearest)
    if rounding == "down":
        return math.floor(x)
    if rounding == "up":
        return math.ceil(x)
    return int(nearest)


def price_to_prob(price: int) -> float:
    """Price units → probability (the price a risk-neutral buyer would pay per $1 payout)."""
    return price / PRICE_ONE


def cents(price: int) -> float:
    """Price units → cents, for display only."""
    return price / CENT
