"""What the backtest records from the engine besides our fills, for the metrics (read-only).

The runner hands every batch of engine events (one engine call) to :meth:`Tape.record`, at the
engine time of that call. The tape keeps:

- **tops**: per market of ours, the YES best bid and ask after each batch that changed the book
  or one of our orders, and whether one of our resting orders sits at that best price (alone or
  joined) — a new :class:`TopSample` only when one of those changed;
- **queue position** (the engine is FIFO per level): for each of our orders, the centi-contracts
  resting ahead of it when it took its place in the queue (placed, or re-queued by an amend to a
  new price or a larger size; :meth:`Engine.queue_position` read right after that engine call);
  and for each of our maker fills, the centi-contracts ahead of it when the filling order arrived
  (what that same taker took at our price before reaching us; FIFO: nothing else can be ahead);
- **hard limit**: the worker's hard directional bound in force when each of our fills happened;
- **sends**: per market, each place or amend the worker decided, with the hard bound it was
  judged against then (:meth:`Tape.sent`, from the runner at decision time): what the limit
  promised when the order left, as opposed to what the (liquidity-following) limit is later.
  Sends and our fills carry one sequence number (the order the tape saw them in, which is the
  order they happened in): on a virtual clock many decisions and fills share an instant, and
  the metrics must know which decision came last before a fill (not guess by market name).

Why here and not in the engine: the engine stays the local exchange's; one existing read
(``queue_position``, ``best``) and the events it already publishes are enough.

Units: times int ns (engine time); prices int price units; counts int centi-contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mmcore.sim.engine import Engine
from mmcore.sim.engine_types import (
    BookDelta,
    EngineEvent,
    FillEvent,
    OrderEvent,
    TradeEvent,
)


@dataclass(frozen=True, slots=True)
class TopSample:
    """A market's top of book from ``ts_ns`` on (until the next sample), YES terms."""

    ts_ns: int
    bid: int | None
    ask: int | None
    our_bid_at_best: bool
    our_ask_at_best: bool

    @property
    def mid(self) -> float | None:
        """``(bid + ask) / 2`` in price units; None unless both sides exist."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


@dataclass(frozen=True, slots=True)
class FillContext:
    """One of our fills, seen on the engine."""

    queue_ahead_placed: int | None
    """Centi-contracts ahead of the order when it took its place (None: not seen resting)."""
    queue_ahead_filled: int | None
    """Centi-contracts the filling order took at our price before us (None: we were the taker)."""
    hard_limit: int | None
    """The worker's hard directional bound (centi-contracts) when the fill happened."""
    seq: int | None = None
    """Place in the tape's sequence of sends and fills (None: not recorded by a tape)."""


class Tape:
    """Records tops, queue positions and fill contexts of ``user``'s orders in ``markets``."""

    def __init__(self, engine: Engine, user: str, markets: Iterable[str],
                 hard_limit: Callable[[str], int | None]) -> None:
        self.engine = engine
        self.user = user
        markets_ = tuple(markets)
        self.tops: dict[str, list[TopSample]] = {m: [] for m in markets_}
        self.fills: dict[str, FillContext] = {}
        """trade id → context of our fill in it."""
        self._hard_limit = hard_limit
        self._ours: dict[str, dict[str, tuple[str, int, int]]] = {m: {} for m in markets_}
        """Per market: our resting order id → (side, price, remaining)."""
        self._placed: dict[str, int] = {}
        """Our order id → queue ahead when it last took its place."""
        self.sends: dict[str, list[tuple[int, str, int, int]]] = {m: [] for m in markets_}
        """Per market: (decision time, side, hard bound then in centi-contracts, sequence number)
        of each place or amend of ours, in time order."""
        self.seq = 0
        """The last sequence number handed to a send or one of our fills."""

    def sent(self, now_ns: int, market: str, side: str, hard_limit: int) -> None:
        """The worker decided a place or amend on (market, side) at ``now_ns`` under
        ``hard_limit`` (centi-contracts): the runner reports those that can add to the worst
        case (places, amends that raise an order's open count), not cuts."""
        if market in self.sends:
            self.seq += 1
            self.sends[market].append((now_ns, side, hard_limit, self.seq))

    def record(self, now_ns: int, events: list[EngineEvent]) -> None:
        """One engine call's events, right after it (engine state = end of that call)."""
        tops = self.tops
        touched: set[str] = set()
        taker_of: dict[str, str] = {}  # trade id → the taker's order id
        trades: list[tuple[str, int, int]] = []  # (trade id, price, count) in trade order
        ours: list = []  # our fills in this batch
        requeued: list[tuple[str, str]] = []
        for e in events:
            if isinstance(e, BookDelta):
                if e.ticker in tops:
                    touched.add(e.ticker)
            elif isinstance(e, TradeEvent):
                if e.trade.ticker in tops:
                    trades.append((e.trade.trade_id, e.trade.price, e.trade.count))
            elif isinstance(e, FillEvent):
                f = e.fill
                if f.ticker not in tops:
                    continue
                if f.is_taker:
                    taker_of[f.trade_id] = f.order_id
                if f.user_id == self.user:
                    ours.append(f)
            elif isinstance(e, OrderEvent) and e.order.user_id == self.user:
                o = e.order
                if o.ticker not in tops:
                    continue
                touched.add(o.ticker)
                resting = self._ours[o.ticker]
                before = resting.get(o.order_id)
                if o.status == "resting":
                    if before is None or before[1] != o.price or o.remaining > before[2]:
                        requeued.append((o.ticker, o.order_id))
                    resting[o.order_id] = (o.side, o.price, o.remaining)
                else:
                    resting.pop(o.order_id, None)
        for m, oid in requeued:
            if oid in self._ours[m]:
                self._placed[oid] = self.engine.queue_position(self.user, oid)
        if ours:
            self._fills(ours, trades, taker_of)
        for m in touched:
            self._sample(m, now_ns)

    def _fills(self, ours: list, trades: list[tuple[str, int, int]],
               taker_of: dict[str, str]) -> None:
        # FIFO: a maker fill happens after the same taker took everything ahead at that price
        taken: dict[tuple[str, int], int] = {}
        ahead_at: dict[str, int] = {}
        for trade_id, price, count in trades:
            key = (taker_of.get(trade_id, ""), price)
            ahead_at[trade_id] = taken.get(key, 0)
            taken[key] = ahead_at[trade_id] + count
        for f in ours:
            self.seq += 1
            self.fills[f.trade_id] = FillContext(
                self._placed.get(f.order_id),
                None if f.is_taker else ahead_at.get(f.trade_id, 0),
                self._hard_limit(f.ticker), self.seq)

    def _sample(self, market: str, now_ns: int) -> None:
        bid, _, ask, _ = self.engine.best(market)
        at_bid = at_ask = False
        for side, price, _ in self._ours[market].values():
            if side == "bid" and price == bid:
                at_bid = True
            elif side == "ask" and price == ask:
                at_ask = True
        samples = self.tops[market]
        if samples:
            last = samples[-1]
            if (last.bid, last.ask, last.our_bid_at_best, last.our_ask_at_best) == (
                    bid, ask, at_bid, at_ask):
                return
            if last.ts_ns == now_ns:
                samples[-1] = TopSample(now_ns, bid, ask, at_bid, at_ask)
                return
        samples.append(TopSample(now_ns, bid, ask, at_bid, at_ask))


__all__ = ["FillContext", "Tape", "TopSample"]
