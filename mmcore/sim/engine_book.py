"""One market's resting orders for the matching engine: price levels of FIFO queues.

Rules of this file:

- YES terms throughout: ``"bid"`` levels are YES bids, ``"ask"`` levels are YES asks (a NO bid
  at ``n`` is an ask at ``PRICE_ONE − n``; the mirroring happens in the engine's reads).
- A level is a FIFO queue of order ids (time priority) plus its aggregated size; a level exists
  only while its size is > 0. Prices are ``int`` price units, sizes ``int`` centi-contracts.
- The book never checks crossing: the engine matches before it rests anything.
- No order objects live here, only ids and sizes, so the engine's order records stay the one
  source of truth; the engine calls :meth:`reduce` on a fill and :meth:`remove` when an order
  leaves the book.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

from mmcore.orders import Side


class Book:
    """Bid and ask price levels of one market, each a FIFO queue of order ids."""

    def __init__(self) -> None:
        self._queues: dict[Side, dict[int, deque[str]]] = {"bid": {}, "ask": {}}
        self._sizes: dict[Side, dict[int, int]] = {"bid": {}, "ask": {}}
        self._prices: dict[Side, list[int]] = {"bid": [], "ask": []}
        """Ascending level prices per side."""

    # --- writes ----------------------------------------------------------------------------------

    def add(self, side: Side, price: int, order_id: str, count: int) -> None:
        """Append an order at the back of its level (``count`` > 0 centi-contracts)."""
        queues, sizes = self._queues[side], self._sizes[side]
        if price not in queues:
            queues[price] = deque()
            sizes[price] = 0
            insort(self._prices[side], price)
        queues[price].append(order_id)
        sizes[price] += count

    def reduce(self, side: Side, price: int, count: int) -> None:
        """Take ``count`` off a level's size; the order keeps its place (partial fill, decrease)."""
        self._sizes[side][price] -= count

    def remove(self, side: Side, price: int, order_id: str, count: int) -> None:
        """Take an order (with ``count`` still resting) out of its level."""
        queue = self._queues[side][price]
        if queue[0] == order_id:
            queue.popleft()
        else:
            queue.remove(order_id)
        self._sizes[side][price] -= count
        if not queue:
            del self._queues[side][price]
            del self._sizes[side][price]
            prices = self._prices[side]
            del prices[bisect_left(prices, price)]

    # --- reads -----------------------------------------------------------------------------------

    def best(self, side: Side) -> int | None:
        """Best price of a side (highest bid, lowest ask); None when empty."""
        prices = self._prices[side]
        if not prices:
            return None
        return prices[-1] if side == "bid" else prices[0]

    def size_at(self, side: Side, price: int) -> int:
        return self._sizes[side].get(price, 0)

    def head(self, side: Side, price: int) -> str:
        """The order id first in time at a level."""
        return self._queues[side][price][0]

    def queue(self, side: Side, price: int) -> tuple[str, ...]:
        """Order ids at a level, first in time first."""
        return tuple(self._queues[side].get(price, ()))

    def levels(self, side: Side) -> list[tuple[int, int]]:
        """``[(price, size), ...]`` ascending by price."""
        sizes = self._sizes[side]
        return [(p, sizes[p]) for p in self._prices[side]]

    def crossing_liquidity(self, taker_side: Side, limit: int) -> int:
        """Centi-contracts resting on the other side at prices a taker with ``limit`` would hit."""
        if taker_side == "bid":
            prices = self._prices["ask"][: bisect_left(self._prices["ask"], limit + 1)]
            sizes = self._sizes["ask"]
        else:
            prices = self._prices["bid"][bisect_left(self._prices["bid"], limit):]
            sizes = self._sizes["bid"]
        return sum(sizes[p] for p in prices)

    def best_crossing(self, taker_side: Side, limit: int) -> int | None:
        """Best opposite price that a taker on ``taker_side`` with ``limit`` crosses, if any."""
        if taker_side == "bid":
            ask = self.best("ask")
            return ask if ask is not None and ask <= limit else None
        bid = self.best("bid")
        return bid if bid is not None and bid >= limit else None

    def is_empty(self) -> bool:
        return not self._prices["bid"] and not self._prices["ask"]
