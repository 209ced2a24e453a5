"""Break-even ceilings: when over-exposed, the side that reduces exposure may quote at break-even
on the position's average cost, even when that is EV-negative against theo.

Why: inventory carried into the game is the binding risk (design.md §2). Average cost is a sunk
cost; the rule exists to *cut exposure cheaply*, not to avoid realising losses, so it only ever
**permits** a more aggressive exit — it never blocks one (an underwater position keeps the normal
floor). Rule R3 of reference/quoting-math.md §4.

Units: prices and average cost in price units ($0.0001, YES terms); ``clip`` in centi-contracts;
fees from :mod:`mmcore.fees` (maker, cent-rounded for one fill of ``clip``).
"""

from __future__ import annotations

import math

from mmcore.fees import FeeSchedule, fee_per_contract
from mmcore.ticks import TickGrid


def break_even_ask(avg_cost: float, clip: int, grid: TickGrid, schedule: FeeSchedule) -> int | None:
    """Smallest valid ask ``a`` with ``a − avg_cost − fee(a)/contract ≥ 0`` (closing a long YES).

    ``avg_cost`` is the average YES price paid per contract, fees included. None when no valid
    price breaks even (cost at or above the top of the grid).
    """
    price = grid.round_up(max(grid.min_price, math.ceil(avg_cost)))
    while price is not None:
        if price - avg_cost - fee_per_contract(price, clip, maker=True, schedule=schedule) >= -1e-9:
            return price
        price = grid.next_above(price)
    return None


def break_even_bid(avg_cost: float, clip: int, grid: TickGrid, schedule: FeeSchedule) -> int | None:
    """Largest valid bid ``b`` with ``avg_cost − b − fee(b)/contract ≥ 0`` (closing a short YES).

    For a short, ``avg_cost`` is the average YES price *received* per contract, fees deducted.
    """
    price = grid.round_down(min(grid.max_price, math.floor(avg_cost)))
    while price is not None:
        if avg_cost - price - fee_per_contract(price, clip, maker=True, schedule=schedule) >= -1e-9:
            return price
        price = grid.next_below(price)
    return None


def relax_ask_floor(
    a_floor: int, avg_cost: float | None, theo: float, give_up: float, clip: int,
    grid: TickGrid, schedule: FeeSchedule,
) -> tuple[int, str | None]:
    """R3 for a long: ``a_floor ← min(a_floor, max(BE_ask, ⌈theo − give_up⌉))``.

    Returns the (possibly lower) floor and a note when it moved. ``theo`` and ``give_up`` are in
    price units; ``give_up`` bounds how far below theo an exit may go. Only a position that is in
    profit at theo (``avg_cost < theo``) is relaxed: an underwater one keeps the normal floor.
    """
    if avg_cost is None or avg_cost >= theo:
        return a_floor, None  # underwater at theo: keep the normal floor (BE never blocks)
    be = break_even_ask(avg_cost, clip, grid, schedule)
    if be is None:
        return a_floor, None
    limit = grid.round_up(math.ceil(theo - give_up))
    relaxed = max(be, limit) if limit is not None else be
    if relaxed < a_floor:
        return relaxed, f"R3 break-even ask {relaxed} (avg cost {avg_cost:.0f}) lowers floor {a_floor}"
    return a_floor, None


def relax_bid_cap(
    b_cap: int, avg_cost: float | None, theo: float, give_up: float, clip: int,
    grid: TickGrid, schedule: FeeSchedule,
) -> tuple[int, str | None]:
    """R3 for a short: ``b_cap ← max(b_cap, min(BE_bid, ⌊theo + give_up⌋))``."""
    if avg_cost is None or avg_cost <= theo:
        return b_cap, None  # underwater at theo: keep the normal cap
    be = break_even_bid(avg_cost, clip, grid, schedule)
    if be is None:
        return b_cap, None
    limit = grid.round_down(math.floor(theo + give_up))
    relaxed = min(be, limit) if limit is not None else be
    if relaxed > b_cap:
        return relaxed, f"R3 break-even bid {relaxed} (avg sale {avg_cost:.0f}) raises cap {b_cap}"
    return b_cap, None
