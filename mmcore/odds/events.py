"""Core types for sportsbook odds after parsing: plain frozen dataclasses, no pydantic.

A :class:`BookLine` is one bookmaker's complete, validated head-to-head price set for one event;
an :class:`EventOdds` is one event with every usable book. Anything unusable was already turned
into a :class:`Rejection` (with its reason) by :mod:`mmcore.odds.parse`, so code downstream never
re-checks prices.

Units: ``prices`` are **decimal odds** (> 1.0, payout per 1 staked, stake included); times are
integer **ns since the epoch, UTC**. Probabilities appear only after de-vigging.
"""

from __future__ import annotations

from dataclasses import dataclass

DRAW = "Draw"
"""The Odds API's name for the tie outcome of a 3-way (soccer) h2h market."""


@dataclass(frozen=True, slots=True)
class BookLine:
    """One book's h2h prices for one event, ordered like :attr:`EventOdds.outcomes`."""

    book: str
    """Bookmaker key, e.g. ``"pinnacle"``."""
    title: str
    prices: tuple[float, ...]
    """Decimal odds per outcome, in the order of the event's ``outcomes``."""
    last_update_ns: int | None
    """When the book last changed this market (market-level if given, else book-level)."""


@dataclass(frozen=True, slots=True)
class EventOdds:
    """One game with every usable book's h2h line."""

    event_id: str
    sport_key: str | None
    commence_ns: int | None
    home_team: str
    away_team: str
    outcomes: tuple[str, ...]
    """``(home_team, away_team)`` for 2-way games, ``(home_team, away_team, "Draw")`` for 3-way."""
    books: tuple[BookLine, ...]

    @property
    def three_way(self) -> bool:
        return len(self.outcomes) == 3

    def book(self, key: str) -> BookLine | None:
        for line in self.books:
            if line.book == key:
                return line
        return None


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an event, or one book within it, was not used. ``book`` is None for a whole event."""

    event_id: str | None
    book: str | None
    reason: str
