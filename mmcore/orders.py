"""Order vocabulary of the core, and the reconciler: desired quotes vs live orders → actions.

Everything is in YES terms, as Kalshi's V2 order API is: ``side="bid"`` buys YES at ``price``,
``side="ask"`` sells YES at ``price`` (≡ buys NO at ``PRICE_ONE − price``). Prices are integer
price units ($0.0001, see :mod:`mmcore.units`), counts integer centi-contracts.

A **slot** is one (market, side) pair; the worker keeps at most one resting order per slot (one
level per side), and never runs two operations on the same slot at once (the driver holds a lock
per slot). Actions are data; the driver turns them into REST calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

Side = Literal["bid", "ask"]
SIDES: tuple[Side, Side] = ("bid", "ask")
Slot = tuple[str, Side]
"""(market ticker, side)."""


def opposite(side: Side) -> Side:
    return "ask" if side == "bid" else "bid"


@dataclass(frozen=True, slots=True)
class Quote:
    """A desired resting order: ``count`` centi-contracts at ``price`` (price units, YES terms)."""

    market: str
    side: Side
    price: int
    count: int

    @property
    def slot(self) -> Slot:
        return (self.market, self.side)


@dataclass(frozen=True, slots=True)
class LiveOrder:
    """An order we believe rests on the exchange (from acks, WS ``user_orders`` and REST)."""

    order_id: str
    client_order_id: str | None
    market: str
    side: Side
    price: int
    remaining: int
    """Resting centi-contracts."""
    filled: int
    """Centi-contracts already filled (amend's ``count`` is filled + new remaining)."""
    placed_ns: int
    """When the order last changed price or size (rest-time hysteresis counts from here)."""

    @property
    def slot(self) -> Slot:
        return (self.market, self.side)


@dataclass(frozen=True, slots=True)
class Place:
    quote: Quote
    client_order_id: str
    post_only: bool = True

    @property
    def slot(self) -> Slot:
        return self.quote.slot


@dataclass(frozen=True, slots=True)
class Amend:
    """Move a resting order. ``count`` is the NEW TOTAL (filled + desired remaining), as Kalshi's
    amend requires; sending only the remainder would silently shrink a partly filled order."""

    order_id: str
    market: str
    side: Side
    price: int
    count: int

    @property
    def slot(self) -> Slot:
        return (self.market, self.side)


@dataclass(frozen=True, slots=True)
class Cancel:
    order_id: str
    market: str
    side: Side
    reason: str = ""

    @property
    def slot(self) -> Slot:
        return (self.market, self.side)


OrderAction = Union[Place, Amend, Cancel]


def adds_exposure(action: OrderAction) -> bool:
    """Cancels only ever reduce risk; places and amends can add it."""
    return not isinstance(action, Cancel)
