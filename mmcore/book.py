"""Local order book of one market, in YES terms.

Kalshi publishes bids only: YES bids and NO bids. A NO bid at ``n`` is a YES ask at
``PRICE_ONE − n``. We keep both sides in YES price units ($0.0001) so quoting code reads
``best_bid`` / ``best_ask`` directly. Sizes are centi-contracts.

:class:`BookTop` is what quoting consumes: the best prices of *other* participants, i.e. with our
own resting orders removed, so that we never compete against ourselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid/ask of one market (YES terms, price units); ``None`` when that side is empty."""

    bid: int | None
    bid_size: int
    ask: int | None
    ask_size: int

    @property
    def mid(self) -> float | None:
        """Mid in price units, only when both sides exist."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2

    @staticmethod
    def empty() -> BookTop:
        return BookTop(None, 0, None, 0)


def top_of(
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    *,
    min_size: int = 0,
) -> BookTop:
    """Best levels from (price, size) lists, ignoring levels smaller than ``min_size``
    (so a 1-lot "pennying" order does not drag our quote: Hummingbot's price-for-volume idea)."""
    best_bid = max(((p, s) for p, s in bids if s > 0 and s >= min_size), default=None)
    best_ask = min(((p, s) for p, s in asks if s > 0 and s >= min_size), default=None)
    return BookTop(
        best_bid[0] if best_bid else None,
        best_bid[1] if best_bid else 0,
        best_ask[0] if best_ask else None,
        best_ask[1] if best_ask else 0,
    )
