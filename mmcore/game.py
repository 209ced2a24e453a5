"""The game model: what is fixed about a game while it is quoted, and its directional inventory.

Below both :mod:`mmcore.quoting` and :mod:`mmcore.risk` (both import it, it imports neither).

A game (Kalshi event) has ``n`` mutually exclusive outcomes and one binary market per outcome
(two for NBA/NFL/NHL/MLB, three for soccer with the tie market). Directional exposure for ``n``
outcomes is ``d_o = payoff_o − mean(payoff_o' for o' ≠ o)`` (payoffs in contracts); for two
outcomes ``d_A = q_E = pos_A − pos_B``. It is kept scaled by ``n − 1`` (``D_o = n·pos_o − Σ pos``)
so that it stays an exact integer. Units: counts and positions in centi-contracts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mmcore.errors import InputError
from mmcore.fees import FeeSchedule
from mmcore.ticks import TickGrid


@dataclass(frozen=True, slots=True)
class GameBook:
    """Static description of a game: one market ticker per outcome, in outcome order."""

    markets: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.markets) < 2:
            raise InputError(f"a game needs at least two outcome markets, got {self.markets!r}")
        if len(set(self.markets)) != len(self.markets):
            raise InputError(f"duplicate market in game: {self.markets!r}")

    @property
    def n(self) -> int:
        return len(self.markets)

    def index(self, market: str) -> int:
        """Outcome index of ``market``; InputError for a market of another game."""
        try:
            return self.markets.index(market)
        except ValueError:
            raise InputError(f"market {market!r} is not in game {self.markets!r}") from None


def position_vector(book: GameBook, positions: Mapping[str, int]) -> tuple[int, ...]:
    """Positions in outcome order (centi-contracts); InputError for a market of another game."""
    for market in positions:
        book.index(market)
    return tuple(positions.get(m, 0) for m in book.markets)


def scaled_direction(book: GameBook, positions: Mapping[str, int]) -> tuple[int, ...]:
    """``(n − 1) × d_o`` per outcome for a position (centi-contracts, exact integers)."""
    vec = position_vector(book, positions)
    total = sum(vec)
    return tuple(book.n * q - total for q in vec)


@dataclass(frozen=True, slots=True)
class GameSpec:
    """What is fixed about a game while it is quoted."""

    event_ticker: str
    sport_key: str
    markets: tuple[str, ...]
    """One market per outcome, in the order of ``theo``."""
    grids: tuple[TickGrid, ...]
    fees: FeeSchedule
    start_ns: int

    @property
    def book(self) -> GameBook:
        return GameBook(self.markets)


def directional_inventory(book: GameBook, positions: Mapping[str, int]) -> tuple[int, ...]:
    """``d_o`` per outcome in centi-contracts (rounded toward zero for 3+ outcomes)."""
    k = book.n - 1
    return tuple(int(x / k) for x in scaled_direction(book, positions))
