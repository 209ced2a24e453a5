"""A market's tick grid: which prices are orderable, and rounding onto them.

Kalshi publishes the grid per market as ``price_ranges[{start, end, step}]`` in dollar strings
(kalshi.md §6); that list is authoritative — never hard-code a 1¢ tick. Known structures:
``linear_cent`` (0–1 step 0.01), ``deci_cent`` (0.001), ``tapered_deci_cent`` (0.001 below 0.10
and above 0.90, 0.01 between); whole-cent prices are valid in every structure.

Rules of this file:

- Prices are ``int`` price units ($0.0001, ``PRICE_ONE`` = $1.00; :mod:`mmcore.units`).
- A grid point is ``start + i·step`` inside some range (ends included). A price is **valid** when
  it is a grid point strictly between 0 and ``PRICE_ONE``: a $0 or $1 order is never orderable,
  even though Kalshi's ranges run from ``"0.0000"`` to ``"1.0000"``.
- Ranges are sorted and contiguous (each starts where the previous ends) and each step divides
  its range, so every range end is itself a grid point.
- Quotes round **away from the model** (bids down, asks up): never more aggressive than asked.
  Every rounding function returns ``None`` when no valid price lies on the requested side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from mmcore.errors import InputError
from mmcore.units import CENT, PRICE_ONE, parse_dollars

Range = tuple[int, int, int]
"""(start, end, step) in price units."""


@dataclass(frozen=True)
class TickGrid:
    """An immutable tick grid; build it with :meth:`from_price_ranges` or a named constructor."""

    ranges: tuple[Range, ...]

    def __post_init__(self) -> None:
        if not self.ranges:
            raise InputError("a tick grid needs at least one price range")
        object.__setattr__(self, "ranges", tuple(tuple(r) for r in self.ranges))  # lists → tuples
        prev_end: int | None = None
        for rng in self.ranges:
            if len(rng) != 3 or not all(type(v) is int for v in rng):
                raise InputError(f"price range must be 3 ints (start, end, step), got {rng!r}")
            start, end, step = rng
            if not 0 <= start < end <= PRICE_ONE:
                raise InputError(f"price range {rng!r} needs 0 <= start < end <= {PRICE_ONE}")
            if step <= 0 or (end - start) % step:
                raise InputError(f"step {step} must be > 0 and divide the range {start}..{end}")
            if prev_end is not None and start != prev_end:
                raise InputError(f"price ranges must be contiguous: {start} != {prev_end}")
            prev_end = end
        _bounds(self.ranges)  # raises when no price lies strictly inside (0, $1)

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_price_ranges(cls, price_ranges: Sequence[Mapping[str, str]]) -> TickGrid:
        """Parse Kalshi's ``price_ranges`` (``[{"start": "0.0000", "end": ..., "step": ...}]``)."""
        parsed: list[Range] = []
        for item in price_ranges:
            try:
                raw = (item["start"], item["end"], item["step"])
            except (KeyError, TypeError) as exc:
                raise InputError(f"price range needs start, end and step: {item!r}") from exc
            start, end, step = (parse_dollars(v) for v in raw)
            parsed.append((start, end, step))
        return cls(tuple(sorted(parsed)))

    @classmethod
    def linear_cent(cls) -> TickGrid:
        """1¢ everywhere: valid prices are 1..99 cents."""
        return cls(((0, PRICE_ONE, CENT),))

    @classmethod
    def deci_cent(cls) -> TickGrid:
        """0.1¢ everywhere: valid prices are 0.1..99.9 cents."""
        return cls(((0, PRICE_ONE, CENT // 10),))

    @classmethod
    def tapered_deci_cent(cls) -> TickGrid:
        """0.1¢ below 10¢ and above 90¢, 1¢ between."""
        deci = CENT // 10
        lo, hi = 10 * CENT, 90 * CENT
        return cls(((0, lo, deci), (lo, hi, CENT), (hi, PRICE_ONE, deci)))

    # --- bounds ------------------------------------------------------------------------------

    @cached_property
    def min_price(self) -> int:
        """Lowest valid price (price units)."""
        return _bounds(self.ranges)[0]

    @cached_property
    def max_price(self) -> int:
        """Highest valid price (price units)."""
        return _bounds(self.ranges)[1]

    # --- queries -----------------------------------------------------------------------------

    def is_valid(self, price: int) -> bool:
        """True when ``price`` is a grid point strictly inside (0, $1)."""
        if not 0 < price < PRICE_ONE:
            return False
        return any(start <= price <= end and (price - start) % step == 0
                   for start, end, step in self.ranges)

    def round_down(self, price: int) -> int | None:
        """Largest valid price ``<= price`` (for bids); None below :attr:`min_price`."""
        if price < self.min_price:
            return None
        if price >= self.max_price:
            return self.max_price
        for start, end, step in self.ranges:
            if start <= price < end:
                return start + (price - start) // step * step
        raise AssertionError(f"unreachable: {price} is inside the grid's span")

    def round_up(self, price: int) -> int | None:
        """Smallest valid price ``>= price`` (for asks); None above :attr:`max_price`."""
        if price > self.max_price:
            return None
        if price <= self.min_price:
            return self.min_price
        for start, end, step in self.ranges:
            if start < price <= end:
                return start - (start - price) // step * step
        raise AssertionError(f"unreachable: {price} is inside the grid's span")

    def next_above(self, price: int) -> int | None:
        """Smallest valid price strictly above ``price``; None at the top."""
        return self.round_up(price + 1)

    def next_below(self, price: int) -> int | None:
        """Largest valid price strictly below ``price``; None at the bottom."""
        return self.round_down(price - 1)

    def step_at(self, price: int) -> int:
        """Tick size at ``price`` (the finer one at a boundary between ranges)."""
        steps = [step for start, end, step in self.ranges if start <= price <= end]
        if not steps:
            raise InputError(f"price {price} is outside the grid")
        return min(steps)


def _bounds(ranges: tuple[Range, ...]) -> tuple[int, int]:
    """(lowest, highest) grid point strictly inside (0, PRICE_ONE) of well-formed ranges."""
    points = [
        p
        for start, end, step in ranges
        for p in (start if start > 0 else start + step, end if end < PRICE_ONE else end - step)
        if start <= p <= end and 0 < p < PRICE_ONE
    ]
    if not points:
        raise InputError(f"price ranges {ranges!r} hold no price strictly inside (0, $1)")
    return min(points), max(points)
