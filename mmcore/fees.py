"""Kalshi trading fees, computed exactly in integer price units ($0.0001).

Rules of this file (reference: kalshi.md §4, quoting-math.md §5.1):

- **Fee model** (per fill): ``raw = coeff × C × P × (1 − P)`` dollars, with ``P`` the price in
  dollars of the contract traded and ``C`` the number of contracts. The kernel ``P(1 − P)`` is
  symmetric, so the YES leg at ``P`` and the NO leg at ``1 − P`` pay the same fee.
  Taker ``coeff = 0.07 × fee_multiplier`` for every quadratic type; maker ``coeff`` is 0.25× that
  on ``quadratic_with_maker_fees``, 0.5× on ``quadratic_with_combo_maker_fees`` and 0 on plain
  ``quadratic``. How ``fee_multiplier`` combines with 0.07 is an inference (kalshi.md §4,
  "unconfirmed"); the fee schedule PDF itself was not available.
- **Rounding, current rule** (docs.kalshi.com fee_rounding): the trade fee is rounded **up to
  $0.0001**; the fill's balance change ``revenue − trade_fee`` is **floored** to the member's
  balance precision ($0.01, or $0.0001 for direct members); the difference is a rounding fee; a
  per-order accumulator refunds a whole cent once the accumulated rounding reaches 1¢
  (:class:`FeeAccumulator`). For one fill at a whole-cent price this equals the legacy rule
  "round the fee up to the cent" (:func:`fee_ceil_cent`).
- All arithmetic is exact (integers and :class:`fractions.Fraction`); nothing here is a float
  except the per-contract helpers used for quoting thresholds. The rounded fees quoting asks
  for on every event (:func:`trade_fee`, :func:`fee_ceil_cent`) are one integer ceiling
  division over the coefficient's cached numerator and denominator (:func:`_coefficient_ratio`),
  equal to rounding the exact :func:`raw_fee` (a ``Fraction`` costs ~10× more).

Units: ``price`` and every fee/money value are ``int`` price units ($0.0001, ``PRICE_ONE`` = $1);
``count`` is ``int`` centi-contracts (``CONTRACT`` = 1 contract). See :mod:`mmcore.units`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal, get_args

from mmcore.errors import InputError
from mmcore.units import CENT, CONTRACT, PRICE_ONE

FeeType = Literal[
    "quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat"
]
FEE_TYPES: tuple[str, ...] = get_args(FeeType)

TAKER_COEFF = Fraction(7, 100)
"""General Trading Fees coefficient (dollars per contract per unit of ``P(1 − P)``)."""
MAKER_SHARE: dict[str, Fraction] = {
    "quadratic": Fraction(0),
    "quadratic_with_maker_fees": Fraction(1, 4),
    "quadratic_with_combo_maker_fees": Fraction(1, 2),
}
"""Maker coefficient as a share of the taker coefficient, by ``fee_type``."""

NONDIRECT_PRECISION = CENT
"""Balance precision of an ordinary (non-direct) member: $0.01, in price units."""
DIRECT_PRECISION = 1
"""Balance precision of a direct member: $0.0001, in price units."""


def _exact(value: float | int | str, what: str) -> Fraction:
    """A decimal-looking number → exact Fraction (``0.5`` → 1/2, not the binary float's value)."""
    if isinstance(value, bool):
        raise InputError(f"{what}: expected a number, got a boolean")
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise InputError(f"{what}: {value!r} is not a number") from exc
    if not d.is_finite():
        raise InputError(f"{what}: {value!r} is not finite")
    return Fraction(d)


@dataclass(frozen=True)
class FeeSchedule:
    """One series' fee schedule (``Series.fee_type`` and ``Series.fee_multiplier``).

    ``flat`` series charge from Kalshi's *Specific Trading Fees* table, which is not public here.
    They are modelled as a constant fee per contract, ``flat_taker_fee_per_contract`` and
    ``flat_maker_fee_per_contract`` in price units ($0.0001), **both defaulting to 0** — i.e. a
    flat series is treated as fee-free unless you say otherwise. ``fee_multiplier`` is not
    applied to these amounts (pass the effective fee). :attr:`fee_known` is False for ``flat``
    so callers (viability checks, reports) can flag that the fee is an assumption.
    """

    fee_type: FeeType
    fee_multiplier: float = 1.0
    flat_taker_fee_per_contract: int = 0
    flat_maker_fee_per_contract: int = 0

    def __post_init__(self) -> None:
        if self.fee_type not in FEE_TYPES:
            raise InputError(f"unknown fee_type {self.fee_type!r}; expected one of {FEE_TYPES}")
        if _exact(self.fee_multiplier, "fee_multiplier") < 0:
            raise InputError(f"fee_multiplier must be >= 0, got {self.fee_multiplier!r}")
        for name in ("flat_taker_fee_per_contract", "flat_maker_fee_per_contract"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise InputError(f"{name} must be an int >= 0 in $0.0001 units, got {v!r}")

    @classmethod
    def from_series(cls, fee_type: str, fee_multiplier: float | str = 1.0) -> FeeSchedule:
        """Build from the wire fields of a Kalshi Series (or an event's fee overrides)."""
        if fee_type not in FEE_TYPES:
            raise InputError(f"unknown fee_type {fee_type!r}; expected one of {FEE_TYPES}")
        mult = _exact(fee_multiplier, "fee_multiplier")
        return cls(fee_type=fee_type, fee_multiplier=float(mult))  # type: ignore[arg-type]

    @property
    def fee_known(self) -> bool:
        """False for ``flat`` series, whose per-contract fee is a caller-supplied assumption."""
        return self.fee_type != "flat"

    def coefficient(self, *, maker: bool) -> Fraction:
        """Exact quadratic coefficient in dollars (0.07 × multiplier for takers); 0 for ``flat``."""
        return _coefficient(self.fee_type, self.fee_multiplier, maker)


@functools.lru_cache(maxsize=256)
def _coefficient(fee_type: str, fee_multiplier: float, maker: bool) -> Fraction:
    """:meth:`FeeSchedule.coefficient`, cached: quoting asks for it on every size it tries, and
    building the exact Fraction from the decimal multiplier is most of a fee's cost."""
    if fee_type == "flat":
        return Fraction(0)
    taker = TAKER_COEFF * _exact(fee_multiplier, "fee_multiplier")
    return taker * MAKER_SHARE[fee_type] if maker else taker


@functools.lru_cache(maxsize=256)
def _coefficient_ratio(fee_type: str, fee_multiplier: float, maker: bool) -> tuple[int, int]:
    """The exact coefficient as (numerator, denominator), denominator > 0 (for integer fees)."""
    c = _coefficient(fee_type, fee_multiplier, maker)
    return c.numerator, c.denominator


def _check(price: int, count: int) -> None:
    if not isinstance(price, int) or isinstance(price, bool) or not 0 <= price <= PRICE_ONE:
        raise InputError(f"price must be an int in [0, {PRICE_ONE}] ($0.0001 units), got {price!r}")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise InputError(f"count must be an int >= 0 (centi-contracts), got {count!r}")


def raw_fee(price: int, count: int, *, maker: bool, schedule: FeeSchedule) -> Fraction:
    """The unrounded fee of one fill, exactly, in price units ($0.0001)."""
    _check(price, count)
    if schedule.fee_type == "flat":
        sch = schedule
        per = sch.flat_maker_fee_per_contract if maker else sch.flat_taker_fee_per_contract
        return Fraction(per * count, CONTRACT)
    coeff = schedule.coefficient(maker=maker)
    # dollars = coeff × (count/CONTRACT) × (price/ONE) × ((ONE−price)/ONE); × ONE → price units.
    return coeff * Fraction(count * price * (PRICE_ONE - price), CONTRACT * PRICE_ONE)


def _rounded_fee(price: int, count: int, maker: bool, schedule: FeeSchedule, quantum: int) -> int:
    """:func:`raw_fee` rounded **up** to a multiple of ``quantum`` price units, in integers only:
    raw = num × count × P × (ONE − P) / (den × CONTRACT × ONE) exactly, so its ceiling to the
    quantum is one ceiling division (no Fraction on the quoting path)."""
    _check(price, count)
    if schedule.fee_type == "flat":
        per = schedule.flat_maker_fee_per_contract if maker else schedule.flat_taker_fee_per_contract
        num, den = per * count, CONTRACT
    else:
        cn, cd = _coefficient_ratio(schedule.fee_type, schedule.fee_multiplier, maker)
        num, den = cn * count * price * (PRICE_ONE - price), cd * CONTRACT * PRICE_ONE
    return -(-num // (den * quantum)) * quantum


def trade_fee(price: int, count: int, *, maker: bool, schedule: FeeSchedule) -> int:
    """Trade fee of one fill, rounded **up** to $0.0001 (Kalshi's current "centicent" rule)."""
    return _rounded_fee(price, count, maker, schedule, 1)


def fee_ceil_cent(price: int, count: int, *, maker: bool, schedule: FeeSchedule) -> int:
    """Legacy/effective fee of one fill, rounded **up** to the cent (in price units).

    Equals what a non-direct member pays for a single fill at a whole-cent price under the
    current rule (trade fee ceil to $0.0001, then the balance change floored to the cent).
    """
    return _rounded_fee(price, count, maker, schedule, CENT)


def fee_per_contract(price: int, clip: int, *, maker: bool, schedule: FeeSchedule) -> float:
    """Effective fee per contract (price units, float) for one fill of ``clip`` centi-contracts.

    Uses the cent-rounded single-fill fee, so small clips show their rounding cost (1 contract at
    50¢ pays 1¢ maker, not 0.4375¢): this is the number a quote must clear.
    """
    if clip <= 0:
        raise InputError(f"clip must be > 0 centi-contracts, got {clip!r}")
    return fee_ceil_cent(price, clip, maker=maker, schedule=schedule) * CONTRACT / clip


def maker_fee_per_contract(price: int, schedule: FeeSchedule, clip: int) -> float:
    """Maker fee per contract in price units for a ``clip``-sized fill (an ``e_min`` component)."""
    return fee_per_contract(price, clip, maker=True, schedule=schedule)


def clears_maker_fee(edge: int, price: int, schedule: FeeSchedule, clip: int) -> bool:
    """True when ``edge`` (price units per contract, vs theo) strictly exceeds the maker fee."""
    return edge > maker_fee_per_contract(price, schedule, clip)


@dataclass(frozen=True)
class FillFee:
    """Fee components of one fill, in price units ($0.0001).

    ``balance_change`` is the floored ``revenue − trade_fee`` (aligned to the member's precision);
    the ``rebate`` is credited on top of it. ``net_fee = trade_fee + rounding_fee − rebate``.
    When the revenue itself is finer than $0.0001 (a fractional count at a sub-cent price),
    ``rounding_fee`` is shown rounded up to $0.0001; the accumulator keeps the exact value.
    """

    trade_fee: int
    rounding_fee: int
    rebate: int
    balance_change: int

    @property
    def net_fee(self) -> int:
        return self.trade_fee + self.rounding_fee - self.rebate

    @property
    def total_balance_change(self) -> int:
        return self.balance_change + self.rebate


@dataclass(frozen=True)
class FeeAccumulator:
    """Kalshi's per-order rounding accumulator, as an immutable value.

    Call :meth:`add_fill` for each fill of one order, in order, keeping the returned accumulator;
    taker and maker fills of the same order share it. ``precision`` is the member's balance
    precision in price units (:data:`NONDIRECT_PRECISION` = $0.01 or :data:`DIRECT_PRECISION`).

    Rebate rule: the doc says a whole cent is refunded "once the accumulated rounding exceeds
    $0.01". We refund when it **reaches** 1¢ (``>=``), the reading under which many partial fills
    cost what one equivalent fill would; with ``>`` an accumulation of exactly 1¢ would be kept.
    """

    schedule: FeeSchedule
    precision: int = NONDIRECT_PRECISION
    accumulated: Fraction = Fraction(0)
    """Rounding paid and not yet refunded, exact, in price units."""

    def __post_init__(self) -> None:
        if self.precision not in (NONDIRECT_PRECISION, DIRECT_PRECISION):
            raise InputError(f"precision must be {CENT} or 1 (price units), got {self.precision!r}")

    def add_fill(
        self, price: int, count: int, *, maker: bool, buy: bool
    ) -> tuple[FillFee, FeeAccumulator]:
        """Fee components of the next fill and the updated accumulator.

        ``buy=True``: the member buys ``count`` contracts at ``price`` (revenue negative);
        ``buy=False``: sells (revenue positive).
        """
        fee = trade_fee(price, count, maker=maker, schedule=self.schedule)
        notional = Fraction(price * count, CONTRACT)
        exact_change = (-notional if buy else notional) - fee
        floored = math.floor(exact_change / self.precision) * self.precision
        rounding = exact_change - floored
        acc = self.accumulated + rounding
        rebate = 0
        while acc >= CENT:
            acc -= CENT
            rebate += CENT
        fill = FillFee(
            trade_fee=fee, rounding_fee=math.ceil(rounding), rebate=rebate, balance_change=floored
        )
        return fill, FeeAccumulator(self.schedule, self.precision, acc)


def order_fees(
    fills: Sequence[tuple[int, int]],
    *,
    maker: bool,
    buy: bool,
    schedule: FeeSchedule,
    precision: int = NONDIRECT_PRECISION,
) -> list[FillFee]:
    """Run a whole order's fills ``[(price, count), ...]`` through one accumulator."""
    acc = FeeAccumulator(schedule, precision)
    out = []
    for price, count in fills:
        fill, acc = acc.add_fill(price, count, maker=maker, buy=buy)
        out.append(fill)
    return out


def effective_single_fill_fee(
    price: int,
    count: int,
    *,
    maker: bool,
    schedule: FeeSchedule,
    buy: bool = True,
    precision: int = NONDIRECT_PRECISION,
) -> int:
    """Net fee (price units) of the whole ``count`` filled at once: trade + rounding − rebate."""
    (fill,) = order_fees([(price, count)], maker=maker, buy=buy, schedule=schedule,
                         precision=precision)
    return fill.net_fee
