"""Machinery of the matching engine: state, matching, resting and canceling, reservations.

:class:`EngineCore` holds the exchange's state and the private operations every public call of
:class:`mmcore.sim.engine.Engine` is built from. Nothing here is public API: read the rules in
:mod:`mmcore.sim.engine`; the units are the same (prices and money ``int`` $0.0001, counts
``int`` centi-contracts, times ``int`` ns).

Calling discipline: a public operation validates first (raising :class:`EngineError` before any
change), then mutates through these helpers, which mark touched (user, market) pairs; it ends
with :meth:`EngineCore._flush`, which recomputes those reservations.

Reservations are kept incrementally: each resting order's term (:func:`order_cost` and count)
is summed per (user, market) and side; :meth:`EngineCore._touch` marks an order whose term may
have changed (it rested, filled, shrank, moved or left the book) and the flush swaps its old
term for the new one. So a place or cancel costs O(1) in reservations however many orders the
user has resting, instead of a pass over all of them. Every change to a resting order's price,
remaining or resting state must be followed by ``_touch`` before the flush.
"""

from __future__ import annotations

import copy
import heapq

from mmcore.fees import FeeAccumulator, FeeSchedule
from mmcore.orders import SIDES, Side, opposite
from mmcore.sim.engine_accounts import (
    UNIT, FeeBound, PositionBook, fill_cash, order_cost, requirement_of,
)
from mmcore.sim.engine_book import Book
from mmcore.sim.engine_groups import GroupState
from mmcore.sim.engine_types import (
    BookDelta, EngineError, EngineEvent, Event, Fill, FillEvent, Market, MarketStatus, Order,
    OrderEvent, OrderGroupEvent, PositionEvent, Series, Settlement, Trade, TradeEvent,
)
from mmcore.units import CONTRACT, PRICE_ONE, format_count_fp, format_dollars, notional

MAX_GROUP_LIMIT = 1_000_000 * CONTRACT
MAX_ID_CHARS = 64
MAX_EXPIRATION_NS = 4_102_444_800 * 1_000_000_000
"""Latest order expiration accepted: 2100-01-01T00:00:00Z (a later one cannot be rendered as
an RFC 3339 time; year 10000 broke every listing, issue 12 defect 1)."""
"""Longest client order id / order group id the engine stores (as the wire schema bounds)."""
"""Kalshi accepts order-group limits of 1 to 1,000,000 contracts (here in centi-contracts)."""
OPEN_STATUSES: tuple[MarketStatus, ...] = ("active", "paused")
"""Statuses in which resting orders exist and cancels/decreases are accepted."""


class EngineCore:
    """State and private operations of the engine (see the module docstring)."""

    def __init__(self) -> None:
        self._series: dict[str, Series] = {}
        self._events: dict[str, Event] = {}
        self._markets: dict[str, Market] = {}
        self._schedules: dict[str, FeeSchedule] = {}
        self._fee_bounds: dict[str, FeeBound] = {}
        self._books: dict[str, Book] = {}
        self._cash: dict[str, int] = {}
        self._reserved: dict[str, dict[str, int]] = {}
        self._positions: dict[str, dict[str, PositionBook]] = {}
        self._orders: dict[str, Order] = {}
        self._user_orders: dict[str, list[str]] = {}
        self._resting: dict[tuple[str, str], dict[str, None]] = {}
        """Resting order ids per (user, market), in the order they started resting."""
        self._user_resting: dict[str, dict[str, None]] = {}
        self._accumulators: dict[str, FeeAccumulator] = {}
        self._client_ids: dict[tuple[str, str], str] = {}
        self._fills: dict[str, list[Fill]] = {}
        self._trades: list[Trade] = []
        self._settlements: dict[str, list[Settlement]] = {}
        self._groups: dict[str, GroupState] = {}
        self._expiries: list[tuple[int, int, str]] = []
        self._outbox: list[EngineEvent] = []
        self._dirty: set[tuple[str, str]] = set()
        """(user, market) pairs whose reservation must be recomputed at the next flush."""
        self._dirty_orders: dict[str, Order] = {}
        """Orders whose reservation term must be recomputed at the next flush."""
        self._sums: dict[tuple[str, str], list[int]] = {}
        """(user, market) → [bid cost, bid count, ask cost, ask count] over its resting orders."""
        self._terms: dict[str, tuple[tuple[str, str], int, int, int]] = {}
        """Resting order id → ((user, market), index into its sums, cost, count) as summed."""
        self._order_seq = 0
        self._trade_seq = 0
        self._group_seq = 0
        self._fees_collected = 0

    # === internals: matching =====================================================================

    def _match(self, taker: Order, now_ns: int, fills: list[Fill]) -> str | None:
        """Fill ``taker`` (not in the book) against the other side; the stop reason, if any."""
        book = self._books[taker.ticker]
        other = opposite(taker.side)
        while taker.remaining > 0:
            price = book.best_crossing(taker.side, taker.price)
            if price is None:
                return None
            maker = self._orders[book.head(other, price)]
            if maker.user_id == taker.user_id:
                if taker.self_trade_prevention == "maker":
                    self._cancel_resting(maker, now_ns, "self_trade_prevention")
                    continue
                return "self_trade_prevention"
            qty = min(taker.remaining, maker.remaining)
            if maker.reduce_only:
                qty = min(qty, self._reducible(maker.user_id, maker.ticker, maker.side))
                if qty == 0:
                    self._cancel_resting(maker, now_ns, "reduce_only")
                    continue
            if taker.reduce_only:
                qty = min(qty, self._reducible(taker.user_id, taker.ticker, taker.side))
                if qty == 0:
                    return "reduce_only"
            self._execute(taker, maker, price, qty, now_ns, fills)
            if maker.is_resting and maker.reduce_only and self._reducible(
                    maker.user_id, maker.ticker, maker.side) == 0:
                self._cancel_resting(maker, now_ns, "reduce_only")
            self._group_fill(maker, qty, now_ns)
            if self._group_fill(taker, qty, now_ns):
                return "order_group_triggered"
        return None

    def _execute(self, taker: Order, maker: Order, price: int, qty: int, now_ns: int,
                 fills: list[Fill]) -> None:
        """One trade of ``qty`` at ``price`` (the maker's): cash, fees, positions, book, events."""
        market = self._markets[taker.ticker]
        self._trade_seq += 1
        trade = Trade(f"trd-{self._trade_seq:08d}", taker.ticker, price, qty, taker.side, now_ns)
        self._trades.append(trade)
        self._emit(TradeEvent(trade))
        book = self._books[maker.ticker]
        if qty == maker.remaining:
            book.remove(maker.side, maker.price, maker.order_id, qty)
        else:
            book.reduce(maker.side, maker.price, qty)
        self._delta(maker, -qty, now_ns)
        cash_moved = oi_moved = 0
        taker_fill: Fill | None = None
        for order, is_taker in ((maker, False), (taker, True)):
            pb = self._position_book(order.user_id, order.ticker)
            before = pb.position
            fee, self._accumulators[order.order_id] = self._accumulators[order.order_id].add_fill(
                price, qty, maker=not is_taker, buy=order.side == "bid")
            cash = fill_cash(order.side, qty, before, fee)
            self._cash[order.user_id] += cash
            pb.apply_fill(order.side, price, qty, fee.net_fee, now_ns)
            cash_moved += cash
            oi_moved += max(pb.position, 0) - max(before, 0)
            leg_cost = notional(price if order.side == "bid" else PRICE_ONE - price, qty)
            if is_taker:
                order.taker_fill_cost += leg_cost
                order.taker_fees += fee.net_fee
            else:
                order.maker_fill_cost += leg_cost
                order.maker_fees += fee.net_fee
            order.remaining -= qty
            order.filled += qty
            order.updated_ns = now_ns
            fill = Fill(trade.trade_id, order.order_id, order.user_id, order.ticker, order.side,
                        price, qty, is_taker, fee.net_fee, now_ns, pb.position,
                        order.client_order_id)
            self._fills[order.user_id].append(fill)
            if is_taker:
                taker_fill = fill
            else:
                if maker.remaining == 0:
                    maker.status, maker.last_update_reason = "executed", "filled"
                    self._drop_resting(maker)
                else:
                    maker.last_update_reason = "partially_filled"
                self._touch(maker)
                self._emit(FillEvent(fill))
                self._emit(OrderEvent(copy.copy(maker)))
                self._emit_position(order.user_id, pb)
        assert taker_fill is not None
        fills.append(taker_fill)
        self._emit(FillEvent(taker_fill))
        self._emit_position(taker.user_id, self._positions[taker.user_id][taker.ticker])
        market.open_interest += oi_moved
        market.volume += qty
        market.last_price = price
        self._fees_collected += -cash_moved - oi_moved * UNIT

    def _finish_taker(self, order: Order, stop: str | None, now_ns: int) -> None:
        """After matching: rest a GTC remainder, else cancel it; set status; emit the order."""
        order.updated_ns = now_ns
        if order.remaining > 0:
            if stop is None and order.time_in_force == "good_till_canceled":
                self._rest(order, now_ns)
            else:
                order.reduced_by = order.remaining
                order.remaining = 0
                order.last_update_reason = stop or order.time_in_force
        if order.remaining > 0:
            order.status = "resting"
        elif order.filled >= order.initial_count:
            order.status, order.last_update_reason = "executed", "filled"
        else:
            order.status = "canceled"
        self._touch(order)
        self._emit(OrderEvent(copy.copy(order)))

    # === internals: resting, canceling ===========================================================

    def _rest(self, order: Order, now_ns: int) -> None:
        self._books[order.ticker].add(order.side, order.price, order.order_id, order.remaining)
        self._resting.setdefault((order.user_id, order.ticker), {})[order.order_id] = None
        self._user_resting[order.user_id][order.order_id] = None
        if order.order_group_id is not None:
            self._groups[order.order_group_id].resting[order.order_id] = None
        if order.expiration_ns is not None:
            heapq.heappush(self._expiries,
                           (order.expiration_ns, int(order.order_id[4:]), order.order_id))
        self._delta(order, order.remaining, now_ns)

    def _unrest(self, order: Order, now_ns: int) -> None:
        """Take a resting order out of the book (for a re-queue); it stays ``resting``."""
        self._books[order.ticker].remove(order.side, order.price, order.order_id,
                                         order.remaining)
        self._delta(order, -order.remaining, now_ns)
        self._drop_resting(order)

    def _drop_resting(self, order: Order) -> None:
        self._resting.get((order.user_id, order.ticker), {}).pop(order.order_id, None)
        self._user_resting[order.user_id].pop(order.order_id, None)
        group = self._groups.get(order.order_group_id or "")
        if group is not None:
            group.resting.pop(order.order_id, None)
        self._touch(order)

    def _cancel_resting(self, order: Order, now_ns: int, reason: str) -> None:
        self._unrest(order, now_ns)
        order.reduced_by, order.remaining = order.remaining, 0
        order.status, order.last_update_reason, order.updated_ns = "canceled", reason, now_ns
        self._emit(OrderEvent(copy.copy(order)))

    def _cancel_all(self, ticker: str, now_ns: int, reason: str,
                    only_on_pause: bool = False) -> None:
        book = self._books[ticker]
        for side in SIDES:
            for price, _ in book.levels(side):
                for oid in book.queue(side, price):
                    order = self._orders[oid]
                    if not only_on_pause or order.cancel_order_on_pause:
                        self._cancel_resting(order, now_ns, reason)

    def _advance(self, now_ns: int) -> None:
        """Cancel expired GTC orders (due ``expiration_ns <= now_ns``), earliest first."""
        while self._expiries and self._expiries[0][0] <= now_ns:
            _, _, oid = heapq.heappop(self._expiries)
            order = self._orders[oid]
            if order.is_resting and self._markets[order.ticker].status in OPEN_STATUSES:
                self._cancel_resting(order, now_ns, "expired")
        self._flush()

    # === internals: order groups =================================================================

    def _group_fill(self, order: Order, qty: int, now_ns: int) -> bool:
        """Count a fill against the order's group; True when the group is (now) triggered."""
        if order.order_group_id is None:
            return False
        group = self._groups.get(order.order_group_id)
        if group is None:
            return False
        if group.record_fill(qty, now_ns):
            self._trigger(group, now_ns)
        return group.triggered

    def _trigger(self, group: GroupState, now_ns: int) -> None:
        group.triggered = True
        for oid in list(group.resting):
            self._cancel_resting(self._orders[oid], now_ns, "order_group_triggered")
        self._emit(OrderGroupEvent(group.user_id, group.order_group_id, "triggered", None,
                                   now_ns))

    # === internals: money ========================================================================

    def _position_book(self, user_id: str, ticker: str) -> PositionBook:
        books = self._positions[user_id]
        if ticker not in books:
            books[ticker] = PositionBook(ticker)
        return books[ticker]

    def _position(self, user_id: str, ticker: str) -> int:
        pb = self._positions[user_id].get(ticker)
        return pb.position if pb else 0

    def _reducible(self, user_id: str, ticker: str, side: Side) -> int:
        """How much an order on ``side`` can fill without increasing ``|position|``."""
        pos = self._position(user_id, ticker)
        return max(-pos, 0) if side == "bid" else max(pos, 0)

    def _check_funds(self, user_id: str, ticker: str, new: tuple[Side, int, int],
                     exclude: str | None) -> None:
        """Refuse unless the cash covers the market's reservation with ``new`` added (and the
        order ``exclude`` taken out); an order that lowers the reservation always passes."""
        if self._dirty_orders:
            self._flush()
        key = (user_id, ticker)
        sums = list(self._sums.get(key, (0, 0, 0, 0)))
        if exclude is not None and exclude in self._terms:
            _, i, cost, count = self._terms[exclude]
            sums[i] -= cost
            sums[i + 1] -= count
        side, price, count = new
        i = 0 if side == "bid" else 2
        sums[i] += order_cost(side, price, count, self._fee_bounds[ticker])
        sums[i + 1] += count
        need = requirement_of(*sums, self._position(user_id, ticker))
        held = self._reserved[user_id]
        current = held.get(ticker, 0)
        if need > current and self._cash[user_id] - (sum(held.values()) - current) < need:
            raise EngineError(400, "available_balance_too_low",
                              f"order needs ${format_dollars(need - current)} more in "
                              f"available balance")

    def _touch(self, order: Order) -> None:
        self._dirty.add((order.user_id, order.ticker))
        self._dirty_orders[order.order_id] = order

    def _retally(self, order: Order) -> None:
        """Swap ``order``'s summed reservation term for its current one (none unless resting)."""
        old = self._terms.pop(order.order_id, None)
        if old is not None:
            key, i, cost, count = old
            sums = self._sums[key]
            sums[i] -= cost
            sums[i + 1] -= count
        key = (order.user_id, order.ticker)
        if order.remaining > 0 and order.order_id in self._resting.get(key, ()):
            i = 0 if order.side == "bid" else 2
            cost = order_cost(order.side, order.price, order.remaining,
                              self._fee_bounds[order.ticker])
            sums = self._sums.get(key)
            if sums is None:
                sums = self._sums[key] = [0, 0, 0, 0]
            sums[i] += cost
            sums[i + 1] += order.remaining
            self._terms[order.order_id] = (key, i, cost, order.remaining)

    def _flush(self) -> None:
        """Recompute the reservations of every (user, market) touched since the last flush."""
        if self._dirty_orders:
            for order in self._dirty_orders.values():
                self._retally(order)
            self._dirty_orders.clear()
        for key in self._dirty:
            user_id, ticker = key
            sums = self._sums.get(key)
            need = requirement_of(*sums, self._position(user_id, ticker)) if sums else 0
            if need:
                self._reserved[user_id][ticker] = need
            else:
                self._reserved[user_id].pop(ticker, None)
        self._dirty.clear()

    # === internals: checks and lookups ===========================================================

    def _market(self, ticker: str) -> Market:
        market = self._markets.get(ticker)
        if market is None:
            raise EngineError(404, "market_not_found", f"market {ticker} not found")
        return market

    def _user(self, user_id: str) -> None:
        if user_id not in self._cash:
            raise EngineError(404, "user_not_found", f"user {user_id} not found")

    def _own_order(self, user_id: str, order_id: str) -> Order:
        self._user(user_id)
        order = self._orders.get(order_id)
        if order is None or order.user_id != user_id:
            raise EngineError(404, "order_not_found", f"order {order_id} not found")
        return order

    def _own_group(self, user_id: str, group_id: str) -> GroupState:
        self._user(user_id)
        group = self._groups.get(group_id)
        if group is None or group.user_id != user_id:
            raise EngineError(404, "order_group_not_found", f"order group {group_id} not found")
        return group

    def _check_group_open(self, user_id: str, group_id: str) -> None:
        if self._own_group(user_id, group_id).triggered:
            raise EngineError(400, "order_group_triggered",
                              f"order group {group_id} is triggered; reset it first")

    @staticmethod
    def _check_group_limit(limit: int) -> None:
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= \
                MAX_GROUP_LIMIT:
            raise EngineError(400, "invalid_parameters",
                              f"contracts_limit must be 0.01..{format_count_fp(MAX_GROUP_LIMIT)} "
                              f"contracts")

    @staticmethod
    def _check_enum(value: object, allowed: tuple[str, ...], name: str) -> None:
        if value not in allowed:
            raise EngineError(400, "invalid_parameters", f"{name} must be one of {allowed}")

    @staticmethod
    def _check_count(count: object) -> None:
        if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise EngineError(400, "invalid_order_size",
                              "count must be a positive number of contracts, in steps of 0.01")

    @staticmethod
    def _check_price(market: Market, price: object) -> None:
        if not isinstance(price, int) or isinstance(price, bool):
            raise EngineError(400, "invalid_order", "price must be a dollar amount")
        if not market.grid.is_valid(price):
            raise EngineError(400, "invalid_order",
                              f"price ${format_dollars(price)} is not on the market's tick grid")

    @staticmethod
    def _check_tradeable(market: Market) -> None:
        if market.status != "active":
            raise EngineError(400, "MARKET_INACTIVE", f"market {market.ticker} is {market.status}")

    @staticmethod
    def _check_cancellable(market: Market) -> None:
        if market.status not in OPEN_STATUSES:
            raise EngineError(400, "MARKET_INACTIVE", f"market {market.ticker} is {market.status}")

    @staticmethod
    def _check_text(value: object, name: str, max_chars: int = MAX_ID_CHARS) -> None:
        """An optional id string: a str of at most ``max_chars`` characters that UTF-8 can
        carry (a lone surrogate cannot be echoed by any later reply, issue 12 defect 2)."""
        if value is None:
            return
        if not isinstance(value, str) or len(value) > max_chars:
            raise EngineError(400, "invalid_parameters",
                              f"{name} must be a string of at most {max_chars} characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise EngineError(400, "invalid_parameters",
                              f"{name} is not valid Unicode (a lone surrogate)") from None

    def _check_client_id(self, user_id: str, client_order_id: str | None) -> None:
        self._check_text(client_order_id, "client_order_id")
        if client_order_id is not None and (user_id, client_order_id) in self._client_ids:
            raise EngineError(409, "duplicate_client_order_id",
                              f"client_order_id {client_order_id!r} is already used")

    @staticmethod
    def _with_reduced(order: Order, reduced_by: int) -> Order:
        snap = copy.copy(order)
        snap.reduced_by = reduced_by
        return snap

    # === internals: events =======================================================================

    def _emit(self, event: EngineEvent) -> None:
        self._outbox.append(event)

    def _delta(self, order: Order, delta: int, now_ns: int) -> None:
        if order.side == "bid":
            side, price = "yes", order.price
        else:
            side, price = "no", PRICE_ONE - order.price
        self._emit(BookDelta(order.ticker, side, price, delta, now_ns, order.user_id,
                             order.client_order_id))

    def _emit_position(self, user_id: str, pb: PositionBook) -> None:
        self._emit(PositionEvent(user_id, pb.ticker, pb.position, pb.cost, pb.realized_pnl,
                                 pb.fees_paid, pb.volume))

