"""The fixed symmetric spread quoter: the simplest yardstick (reference/seed-baselines.md).

Per market: bid = mid − h and ask = mid + h around the book mid of other participants, a fixed
size on both sides, no skew, no theo, no awareness of competition or adverse selection.

Adapted to a binary contract: the published half-spread is 5 bps of the price; a Kalshi contract
trades on a 1¢ grid between $0 and $1, so h is a fixed number of cents (default 2¢), the same at
every price. The published size (100) and maximum inventory (1,000) keep their 1:10 ratio at
Kalshi sports scale: 10 contracts a side, 100 contracts of directional inventory.

Inventory: market ``i`` uses the game's directional inventory ``d_i`` (``q_E`` for team A,
``−q_E`` for team B; :mod:`mmcore.strategies.base`). At ``|d_i| ≥ max`` the side that would add
to it stops (the bid when long, the ask when short); ``stop_all_at_max=True`` is the seed's
literal rule ("stops quoting entirely" — which then never trades out of the position).

No quote without a two-sided (uncrossed) book: there is no mid. Prices are rounded away from the
mid onto the market's grid (bid down, ask up) and kept post-only (one tick off the other side).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmcore.book import BookTop
from mmcore.quoting.quotes import DesiredQuotes
from mmcore.strategies.base import (
    NS,
    MarketIntent,
    StrategyInput,
    check_bool,
    check_number,
    contracts_to_count,
    quote_markets,
)
from mmcore.units import CENT


@dataclass(frozen=True, slots=True)
class FixedSpreadParams:
    """Half-spread in cents, sizes in contracts, time in seconds."""

    half_spread_cents: float = 2.0
    size_contracts: float = 10.0
    max_inventory_contracts: float = 100.0
    stop_all_at_max: bool = False
    stop_before_start_s: float = 60.0

    def __post_init__(self) -> None:
        check_number(self, "half_spread_cents", high=50.0)
        check_number(self, "size_contracts")
        check_number(self, "max_inventory_contracts")
        check_number(self, "stop_before_start_s", strict=False)
        check_bool(self, "stop_all_at_max")


class FixedSpread:
    """Stateless; see the module docstring."""

    name = "fixed-spread"

    def __init__(self, params: FixedSpreadParams = FixedSpreadParams()) -> None:
        self.params = params
        self._half = params.half_spread_cents * CENT
        self._size = contracts_to_count(params.size_contracts)
        self._max = contracts_to_count(params.max_inventory_contracts)
        self._stop_ns = int(params.stop_before_start_s * NS)

    def quote(self, inp: StrategyInput) -> DesiredQuotes:
        return quote_markets(inp, self._stop_ns, self._decide)

    def _decide(self, i: int, market: str, q: int, top: BookTop, mid: float) -> MarketIntent:
        bid: float | None = mid - self._half
        ask: float | None = mid + self._half
        notes = [f"mid {mid:.0f} ± {self._half:.0f}"]
        if abs(q) >= self._max:
            if self.params.stop_all_at_max:
                bid = ask = None
                notes.append(f"|inventory| {abs(q)} at max {self._max}: not quoting")
            elif q > 0:
                bid = None
                notes.append(f"inventory {q} at max {self._max}: no bid")
            else:
                ask = None
                notes.append(f"inventory {q} at max -{self._max}: no ask")
        return MarketIntent(bid, ask, self._size, self._size, tuple(notes))
