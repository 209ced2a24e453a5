"""The local exchange's matching engine: one deterministic Kalshi-like exchange in memory.

The REST server, the WebSocket server, the simulated participants and the backtest all drive this
one object. It reads no clock and draws no randomness: every mutating call takes ``now_ns`` and
ids are counters (``ord-00000001``, ``trd-00000001``, ``og-00000001``), so the same calls give
the same ids, records and events.

Units (:mod:`mmcore.units`): prices are ``int`` $0.0001 price units and **YES** prices unless a
name says ``no_``; money (balances, costs, fees) is ``int`` price units; counts, positions and
limits are ``int`` centi-contracts; times ``int`` ns. Types live in
:mod:`mmcore.sim.engine_types`, cash/collateral rules in :mod:`mmcore.sim.engine_accounts`, the
matching and bookkeeping machinery in :mod:`mmcore.sim.engine_core`.

Rules of this file:

- **One YES book per market** (V2): ``bid`` = buy YES at ``price``, ``ask`` = sell YES at
  ``price`` ≡ buy NO at ``PRICE_ONE − price``. Reads mirror asks as NO bids.
- **Matching**: price-time priority; a crossing order fills at the **resting** order's price;
  the book never rests crossed. IOC cancels its unfilled rest; FoK first checks that the crossing
  liquidity (own orders included) covers it, else it is canceled unfilled — once matching, a
  self-cross or a group trigger may stop it part-filled and nothing is rolled back (kalshi.md
  §7.5). Post-only that would cross is refused (``invalid_order`` / ``post only cross``).
  Self-trade prevention follows the incoming order: ``taker_at_cross`` cancels the incoming
  remainder, ``maker`` cancels the resting order and goes on. Reduce-only orders are capped to the
  position they reduce, at placement and at every fill (a resting one whose position is gone is
  canceled).
- **Cash**: ``balance`` is the available cash; resting orders reserve their worst-case cost plus
  a fee bound (``reserved``); fills move cash as in :mod:`mmcore.sim.engine_accounts`, with fees
  by the series ``fee_type`` through one :class:`~mmcore.fees.FeeAccumulator` per order (cent
  balance precision). Conserved: ``Σ balance + Σ reserved + collateral() + fees_collected``.
- **Refusals** raise :class:`EngineError` before anything changes (beyond the expiries below).
- **Time**: each mutating call first cancels GTC orders whose ``expiration_ns <= now_ns``.
- **Events** go to an outbox in the order things happened (:meth:`Engine.drain_events`); the
  ``BookDelta`` stream applied to an empty book gives exactly :meth:`Engine.orderbook`.

Market status transitions (``close`` and ``settle`` also cancel every resting order):

============  =============================  ===========  ==========================================
from          call                           to           effect on resting orders
============  =============================  ===========  ==========================================
unopened      activate                       active       —
active        pause                          paused       cancels those with cancel_order_on_pause
paused        activate                       active       cancels **all** (Kalshi reactivation)
any open      close                          closed       cancels all; no order op after this
any ≤ closed  determine(result)              determined   (closes first if needed)
any ≤ det.    settle(result)                 settled      pays $1 per winning contract, flattens
============  =============================  ===========  ==========================================

Places and amends need ``active``; cancels and decreases ``active`` or ``paused``; otherwise
``MARKET_INACTIVE``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

from mmcore.fees import FeeAccumulator, FeeSchedule
from mmcore.orders import SIDES, Side
from mmcore.sim.engine_accounts import UNIT, FeeBound, requirement
from mmcore.sim.engine_book import Book
from mmcore.sim.engine_core import MAX_EXPIRATION_NS, OPEN_STATUSES, EngineCore
from mmcore.sim.engine_groups import GroupState
from mmcore.sim.engine_types import (
    SELF_TRADE_PREVENTION, TIME_IN_FORCE, BookDelta, EngineError, EngineEvent, Event, Fill,
    FillEvent, LifecycleEvent, Market, MarketResult, MarketStatus, Order, OrderEvent, OrderGroup,
    OrderGroupEvent, OrderGroupEventType, OrderRequest, OrderStatus, PlaceResult, PositionEvent,
    PositionRecord, SelfTradePrevention, Series, Settlement, TimeInForce, Trade, TradeEvent,
)
from mmcore.ticks import TickGrid
from mmcore.units import PRICE_ONE

__all__ = [
    "BookDelta", "Engine", "EngineError", "EngineEvent", "Event", "Fill", "FillEvent",
    "LifecycleEvent", "Market", "MarketResult", "MarketStatus", "Order", "OrderEvent",
    "OrderGroup", "OrderGroupEvent", "OrderGroupEventType", "OrderRequest", "OrderStatus",
    "PlaceResult", "PositionEvent", "PositionRecord", "SelfTradePrevention", "Series",
    "Settlement", "TimeInForce", "Trade", "TradeEvent",
]


class Engine(EngineCore):
    """A deterministic in-memory Kalshi exchange (see the module docstring for the rules)."""

    # === reference data ==========================================================================

    def add_series(self, ticker: str, *, title: str = "",
                   fee_type: str = "quadratic_with_maker_fees", fee_multiplier: float = 1.0,
                   category: str = "Sports", tags: Iterable[str] = ()) -> None:
        """Register a series; its ``fee_type``/``fee_multiplier`` price every fill under it."""
        if ticker in self._series:
            raise EngineError(400, "invalid_parameters", f"series {ticker} already exists")
        FeeSchedule.from_series(fee_type, fee_multiplier)  # validates
        self._series[ticker] = Series(ticker, title, fee_type, fee_multiplier, category,
                                      tuple(tags))

    def add_event(self, event_ticker: str, *, series_ticker: str, title: str = "",
                  sub_title: str = "", start_ns: int | None = None,
                  mutually_exclusive: bool = True) -> None:
        if event_ticker in self._events:
            raise EngineError(400, "invalid_parameters", f"event {event_ticker} already exists")
        if series_ticker not in self._series:
            raise EngineError(404, "series_not_found", f"series {series_ticker} not found")
        self._events[event_ticker] = Event(event_ticker, series_ticker, title, sub_title,
                                           start_ns, mutually_exclusive)

    def add_market(self, ticker: str, *, event_ticker: str, title: str = "",
                   yes_sub_title: str = "", grid: TickGrid | None = None, open_ns: int = 0,
                   close_ns: int, status: MarketStatus = "active",
                   now_ns: int | None = None, rules_secondary: str = "") -> None:
        """Create a market (emits lifecycle ``created`` at ``now_ns``, default ``open_ns``)."""
        if ticker in self._markets:
            raise EngineError(400, "invalid_parameters", f"market {ticker} already exists")
        if event_ticker not in self._events:
            raise EngineError(404, "event_not_found", f"event {event_ticker} not found")
        if status not in ("unopened", "active", "paused"):
            raise EngineError(400, "invalid_parameters", f"a new market cannot be {status!r}")
        ts = open_ns if now_ns is None else now_ns
        self._markets[ticker] = Market(ticker, event_ticker, title, yes_sub_title,
                                       grid or TickGrid.linear_cent(), open_ns, close_ns, status,
                                       created_ns=ts, rules_secondary=rules_secondary)
        series = self._series[self._events[event_ticker].series_ticker]
        self._schedules[ticker] = series.fee_schedule
        self._fee_bounds[ticker] = FeeBound.of(series.fee_schedule)
        self._books[ticker] = Book()
        self._emit(LifecycleEvent(ticker, "created", ts,
                                  extra={"open_ns": open_ns, "close_ns": close_ns}))

    @property
    def series(self) -> Mapping[str, Series]:
        """Series by ticker (copies)."""
        return {k: copy.copy(v) for k, v in self._series.items()}

    @property
    def events(self) -> Mapping[str, Event]:
        """Events by event ticker (copies)."""
        return {k: copy.copy(v) for k, v in self._events.items()}

    @property
    def markets(self) -> Mapping[str, Market]:
        """Markets by ticker (copies, with live statistics)."""
        return {k: copy.copy(v) for k, v in self._markets.items()}

    def get_series(self, ticker: str) -> Series:
        if ticker not in self._series:
            raise EngineError(404, "series_not_found", f"series {ticker} not found")
        return copy.copy(self._series[ticker])

    def get_event(self, event_ticker: str) -> Event:
        if event_ticker not in self._events:
            raise EngineError(404, "event_not_found", f"event {event_ticker} not found")
        return copy.copy(self._events[event_ticker])

    def get_market(self, ticker: str) -> Market:
        return copy.copy(self._market(ticker))

    def event_markets(self, event_ticker: str) -> list[Market]:
        """The markets of one event, in creation order (copies)."""
        return [copy.copy(m) for m in self._markets.values() if m.event_ticker == event_ticker]

    def fee_schedule(self, ticker: str) -> FeeSchedule:
        self._market(ticker)
        return self._schedules[ticker]

    # === accounts ================================================================================

    def add_user(self, user_id: str, *, balance: int) -> None:
        """Open an account holding ``balance`` (money, price units) of cash."""
        if user_id in self._cash:
            raise EngineError(400, "invalid_parameters", f"user {user_id} already exists")
        if not isinstance(balance, int) or isinstance(balance, bool) or balance < 0:
            raise EngineError(400, "invalid_parameters", "balance must be an int >= 0")
        self._cash[user_id] = balance
        self._reserved[user_id] = {}
        self._positions[user_id] = {}
        self._user_orders[user_id] = []
        self._user_resting[user_id] = {}
        self._fills[user_id] = []
        self._settlements[user_id] = []

    @property
    def users(self) -> list[str]:
        return list(self._cash)

    def balance(self, user_id: str) -> int:
        """Available cash: cash minus what resting orders reserve (money, price units)."""
        self._user(user_id)
        return self._cash[user_id] - self.reserved(user_id)

    def reserved(self, user_id: str) -> int:
        """Cash held for the user's resting orders (money, price units)."""
        self._user(user_id)
        return sum(self._reserved[user_id].values())

    def position(self, user_id: str, ticker: str) -> int:
        """Signed position in centi-contracts (+YES / −NO)."""
        self._user(user_id)
        pb = self._positions[user_id].get(ticker)
        return pb.position if pb else 0

    def positions(self, user_id: str) -> list[PositionRecord]:
        """Positions in unsettled markets the user has traded, by ticker."""
        self._user(user_id)
        return [pb.record() for t, pb in sorted(self._positions[user_id].items())
                if self._markets[t].status != "settled"]

    @property
    def fees_collected(self) -> int:
        """Net fees the exchange has kept (money, price units)."""
        return self._fees_collected

    def collateral(self, ticker: str | None = None) -> int:
        """Cash the exchange holds against open positions: $1 per YES/NO pair (price units)."""
        if ticker is not None:
            return self._market(ticker).open_interest * UNIT
        return sum(m.open_interest for m in self._markets.values()) * UNIT

    def worst_case_cost(self, ticker: str, side: Side, price: int, count: int) -> int:
        """What a new order reserves for a flat user with nothing else resting (price units)."""
        self._market(ticker)
        return requirement([(side, price, count)], 0, self._fee_bounds[ticker])

    # === order writes ============================================================================

    def place(self, req: OrderRequest, now_ns: int) -> PlaceResult:
        """Create an order, match it, rest what a GTC order has left (``POST …/events/orders``)."""
        self._advance(now_ns)
        market = self._market(req.ticker)
        self._user(req.user_id)
        self._check_enum(req.side, SIDES, "side")
        self._check_enum(req.time_in_force, TIME_IN_FORCE, "time_in_force")
        self._check_enum(req.self_trade_prevention, SELF_TRADE_PREVENTION,
                         "self_trade_prevention")
        self._check_count(req.count)
        self._check_price(market, req.price)
        self._check_tradeable(market)
        gtc = req.time_in_force == "good_till_canceled"
        if req.expiration_ns is not None and (not gtc or req.expiration_ns <= now_ns):
            raise EngineError(400, "invalid_parameters",
                              "expiration needs good_till_canceled and a time in the future")
        if req.expiration_ns is not None and req.expiration_ns > MAX_EXPIRATION_NS:
            raise EngineError(400, "invalid_parameters",
                              "expiration_time must be before 2100-01-01T00:00:00Z")
        self._check_text(req.order_group_id, "order_group_id")
        if req.post_only and not gtc:
            raise EngineError(400, "invalid_parameters", "post_only needs good_till_canceled")
        self._check_client_id(req.user_id, req.client_order_id)
        if req.order_group_id is not None:
            self._check_group_open(req.user_id, req.order_group_id)
        count = req.count
        if req.reduce_only:
            count = min(count, self._reducible(req.user_id, req.ticker, req.side))
            if count == 0:
                raise EngineError(400, "reduce_only_violation",
                                  "a reduce-only order may not increase the position")
        book = self._books[req.ticker]
        if req.post_only and book.best_crossing(req.side, req.price) is not None:
            raise EngineError(400, "invalid_order", "post-only order would cross the book",
                              details="post only cross")
        self._check_funds(req.user_id, req.ticker, (req.side, req.price, count), exclude=None)

        self._order_seq += 1
        order = Order(
            order_id=f"ord-{self._order_seq:08d}", user_id=req.user_id, ticker=req.ticker,
            side=req.side, price=req.price, initial_count=count, remaining=count, filled=0,
            status="resting", client_order_id=req.client_order_id, created_ns=now_ns,
            updated_ns=now_ns, time_in_force=req.time_in_force, post_only=req.post_only,
            reduce_only=req.reduce_only, self_trade_prevention=req.self_trade_prevention,
            order_group_id=req.order_group_id, cancel_order_on_pause=req.cancel_order_on_pause,
            expiration_ns=req.expiration_ns)
        self._orders[order.order_id] = order
        self._user_orders[req.user_id].append(order.order_id)
        self._accumulators[order.order_id] = FeeAccumulator(self._schedules[req.ticker])
        if req.client_order_id is not None:
            self._client_ids[(req.user_id, req.client_order_id)] = order.order_id

        fills: list[Fill] = []
        stop: str | None = None
        if req.time_in_force == "fill_or_kill" and book.crossing_liquidity(
                req.side, req.price) < count:
            stop = "fill_or_kill"
        else:
            stop = self._match(order, now_ns, fills)
        self._finish_taker(order, stop, now_ns)
        self._flush()
        return PlaceResult(copy.copy(order), tuple(fills))

    def place_batch(self, reqs: Iterable[OrderRequest],
                    now_ns: int) -> list[PlaceResult | EngineError]:
        """Place each request in turn; a refusal is returned in its slot, not raised."""
        out: list[PlaceResult | EngineError] = []
        for req in reqs:
            try:
                out.append(self.place(req, now_ns))
            except EngineError as exc:
                out.append(exc)
        return out

    def cancel(self, user_id: str, order_id: str, now_ns: int) -> Order:
        """Cancel what rests (``DELETE …/events/orders/{id}``); ``reduced_by`` on the returned
        snapshot is what was taken off the book (0 for an order already done, not an error)."""
        self._advance(now_ns)
        order = self._own_order(user_id, order_id)
        self._check_cancellable(self._markets[order.ticker])
        if not order.is_resting:
            return self._with_reduced(order, 0)
        self._cancel_resting(order, now_ns, "canceled")
        self._flush()
        return copy.copy(order)

    def cancel_batch(self, user_id: str, order_ids: Iterable[str],
                     now_ns: int) -> list[Order | EngineError]:
        out: list[Order | EngineError] = []
        for order_id in order_ids:
            try:
                out.append(self.cancel(user_id, order_id, now_ns))
            except EngineError as exc:
                out.append(exc)
        return out

    def amend(self, user_id: str, order_id: str, *, ticker: str, side: Side, price: int,
              count: int, now_ns: int, updated_client_order_id: str | None = None) -> PlaceResult:
        """Move a resting order (``POST …/orders/{id}/amend``).

        ``count`` is the NEW TOTAL (already filled + desired remaining), > filled. Same price and
        a smaller or equal remainder keeps time priority; anything else re-queues the order at
        the back of its (new) level, and a new price may cross and fill (as taker).
        """
        self._advance(now_ns)
        order = self._own_order(user_id, order_id)
        if ticker != order.ticker:
            raise EngineError(400, "order_ticker_mismatch", "ticker does not match the order")
        if side != order.side:
            raise EngineError(400, "order_side_mismatch", "side does not match the order")
        market = self._markets[order.ticker]
        self._check_tradeable(market)
        if not order.is_resting:
            raise EngineError(400, "invalid_order", f"order {order_id} is not resting")
        self._check_count(count)
        self._check_price(market, price)
        new_remaining = count - order.filled
        if new_remaining <= 0:
            raise EngineError(400, "invalid_order_size",
                              "count is the new total and must exceed the filled count")
        if order.reduce_only:
            new_remaining = min(new_remaining,
                                self._reducible(user_id, order.ticker, order.side))
            if new_remaining == 0:
                raise EngineError(400, "reduce_only_violation",
                                  "a reduce-only order may not increase the position")
        new_cid = updated_client_order_id
        if new_cid is not None and new_cid != order.client_order_id:
            self._check_client_id(user_id, new_cid)
        book = self._books[order.ticker]
        if order.post_only and book.best_crossing(side, price) is not None:
            raise EngineError(400, "invalid_order", "post-only order would cross the book",
                              details="post only cross")
        self._check_funds(user_id, order.ticker, (side, price, new_remaining), exclude=order_id)

        if new_cid is not None and new_cid != order.client_order_id:
            self._client_ids[(user_id, new_cid)] = order_id
            order.client_order_id = new_cid
        order.initial_count = order.filled + new_remaining
        order.updated_ns = now_ns
        order.last_update_reason = "amended"
        fills: list[Fill] = []
        if price == order.price and new_remaining <= order.remaining:
            cut = order.remaining - new_remaining
            if cut:
                book.reduce(order.side, order.price, cut)
                order.remaining = new_remaining
                self._delta(order, -cut, now_ns)
            self._touch(order)
            self._emit(OrderEvent(copy.copy(order)))
        else:
            self._unrest(order, now_ns)
            order.price, order.remaining = price, new_remaining
            stop = self._match(order, now_ns, fills)
            self._finish_taker(order, stop, now_ns)
        self._flush()
        return PlaceResult(copy.copy(order), tuple(fills))

    def decrease(self, user_id: str, order_id: str, *, reduce_by: int | None = None,
                 reduce_to: int | None = None, now_ns: int) -> Order:
        """Shrink a resting order keeping its priority (``POST …/orders/{id}/decrease``).

        Exactly one of ``reduce_by`` (> 0) or ``reduce_to`` (>= 0, the new remaining), in
        centi-contracts. Reducing to zero cancels. A done order returns ``reduced_by`` 0.
        """
        self._advance(now_ns)
        if (reduce_by is None) == (reduce_to is None):
            raise EngineError(400, "invalid_parameters", "give exactly one of reduce_by, reduce_to")
        amount = reduce_by if reduce_by is not None else reduce_to
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0 or (
                reduce_by is not None and amount == 0):
            raise EngineError(400, "invalid_order_size", "reduce amount must be a whole count")
        order = self._own_order(user_id, order_id)
        self._check_cancellable(self._markets[order.ticker])
        if not order.is_resting:
            return self._with_reduced(order, 0)
        new = max(order.remaining - reduce_by, 0) if reduce_by is not None else min(
            amount, order.remaining)
        if new == 0:
            self._cancel_resting(order, now_ns, "canceled")
        elif new < order.remaining:
            cut = order.remaining - new
            self._books[order.ticker].reduce(order.side, order.price, cut)
            order.remaining, order.reduced_by = new, cut
            order.updated_ns, order.last_update_reason = now_ns, "decreased"
            self._delta(order, -cut, now_ns)
            self._touch(order)
            self._emit(OrderEvent(copy.copy(order)))
        else:
            return self._with_reduced(order, 0)
        self._flush()
        return copy.copy(order)

    # === order groups ============================================================================

    def create_order_group(self, user_id: str, contracts_limit: int, now_ns: int) -> str:
        """New group with a rolling-15-s limit of ``contracts_limit`` centi-contracts; its id."""
        self._advance(now_ns)
        self._user(user_id)
        self._check_group_limit(contracts_limit)
        self._group_seq += 1
        gid = f"og-{self._group_seq:08d}"
        self._groups[gid] = GroupState(gid, user_id, contracts_limit, now_ns)
        self._emit(OrderGroupEvent(user_id, gid, "created", contracts_limit, now_ns))
        return gid

    def trigger_order_group(self, user_id: str, group_id: str, now_ns: int) -> None:
        """Manual kill: cancel the group's resting orders and refuse new ones until reset."""
        self._advance(now_ns)
        group = self._own_group(user_id, group_id)
        if not group.triggered:
            self._trigger(group, now_ns)
        self._flush()

    def reset_order_group(self, user_id: str, group_id: str, now_ns: int) -> None:
        """Clear the trigger and the matched window; the group accepts orders again."""
        self._advance(now_ns)
        group = self._own_group(user_id, group_id)
        group.reset()
        self._emit(OrderGroupEvent(user_id, group_id, "reset", None, now_ns))

    def delete_order_group(self, user_id: str, group_id: str, now_ns: int) -> None:
        """Cancel the group's resting orders and forget the group."""
        self._advance(now_ns)
        group = self._own_group(user_id, group_id)
        for oid in list(group.resting):
            self._cancel_resting(self._orders[oid], now_ns, "order_group_deleted")
        del self._groups[group_id]
        self._emit(OrderGroupEvent(user_id, group_id, "deleted", None, now_ns))
        self._flush()

    def set_order_group_limit(self, user_id: str, group_id: str, contracts_limit: int,
                              now_ns: int) -> None:
        """Change the limit (centi-contracts); below the current window it triggers at once."""
        self._advance(now_ns)
        group = self._own_group(user_id, group_id)
        self._check_group_limit(contracts_limit)
        group.contracts_limit = contracts_limit
        self._emit(OrderGroupEvent(user_id, group_id, "limit_updated", contracts_limit, now_ns))
        if not group.triggered and group.over_limit(now_ns):
            self._trigger(group, now_ns)
        self._flush()

    def order_group(self, user_id: str, group_id: str) -> OrderGroup:
        return self._own_group(user_id, group_id).snapshot()

    def order_groups(self, user_id: str) -> list[OrderGroup]:
        self._user(user_id)
        return [g.snapshot() for g in self._groups.values() if g.user_id == user_id]

    # === lifecycle ===============================================================================

    def activate(self, ticker: str, now_ns: int) -> None:
        """Open an unopened market, or reactivate a paused one (canceling ALL resting orders)."""
        self._advance(now_ns)
        market = self._market(ticker)
        if market.status == "active":
            return
        if market.status not in ("unopened", "paused"):
            raise EngineError(400, "invalid_parameters",
                              f"cannot activate a {market.status} market")
        if market.status == "paused":
            self._cancel_all(ticker, now_ns, "market_reactivated")
        market.status = "active"
        self._emit(LifecycleEvent(ticker, "activated", now_ns))
        self._flush()

    def pause(self, ticker: str, now_ns: int) -> None:
        """Pause trading: cancels orders with ``cancel_order_on_pause``; only cancels and
        decreases are accepted until :meth:`activate`."""
        self._advance(now_ns)
        market = self._market(ticker)
        if market.status == "paused":
            return
        if market.status != "active":
            raise EngineError(400, "invalid_parameters", f"cannot pause a {market.status} market")
        market.status = "paused"
        self._emit(LifecycleEvent(ticker, "deactivated", now_ns, extra={"is_deactivated": True}))
        self._cancel_all(ticker, now_ns, "market_paused", only_on_pause=True)
        self._flush()

    def close(self, ticker: str, now_ns: int) -> None:
        """Stop trading for good and cancel every resting order; an early close moves
        ``close_ns`` to ``now_ns`` (lifecycle ``close_date_updated``)."""
        self._advance(now_ns)
        market = self._market(ticker)
        if market.status not in ("unopened", *OPEN_STATUSES):
            return
        self._cancel_all(ticker, now_ns, "market_closed")
        market.status = "closed"
        if now_ns < market.close_ns:
            market.close_ns = now_ns
            self._emit(LifecycleEvent(ticker, "close_date_updated", now_ns,
                                      extra={"close_ns": now_ns}))
        self._flush()

    def determine(self, ticker: str, result: MarketResult, now_ns: int) -> None:
        """Fix the result (closing the market first if needed); payouts wait for :meth:`settle`."""
        market = self._market(ticker)
        if result not in ("yes", "no"):
            raise EngineError(400, "invalid_parameters", "result must be 'yes' or 'no'")
        if market.status in ("determined", "settled"):
            if market.result != result:
                raise EngineError(400, "invalid_parameters",
                                  f"market already determined {market.result!r}")
            return
        self.close(ticker, now_ns)
        market.status, market.result, market.determined_ns = "determined", result, now_ns
        self._emit(LifecycleEvent(ticker, "determined", now_ns, result,
                                  extra={"settlement_value": PRICE_ONE if result == "yes" else 0}))

    def settle(self, ticker: str, result: MarketResult, now_ns: int) -> None:
        """Pay $1 per YES contract on ``yes`` (per NO contract on ``no``) and flatten everyone."""
        self.determine(ticker, result, now_ns)
        market = self._markets[ticker]
        if market.status == "settled":
            return
        for user_id, books in self._positions.items():
            pb = books.get(ticker)
            if pb is None or pb.position == 0:
                continue
            pos, cost = pb.position, pb.cost
            payout = pb.settle(result == "yes", now_ns)
            self._cash[user_id] += payout
            self._settlements[user_id].append(Settlement(
                ticker, market.event_ticker, result, max(pos, 0), cost if pos > 0 else 0,
                max(-pos, 0), cost if pos < 0 else 0, payout, now_ns))
            self._emit_position(user_id, pb)
        market.open_interest = 0
        market.status, market.settled_ns = "settled", now_ns
        self._emit(LifecycleEvent(ticker, "settled", now_ns, result))

    def expire(self, now_ns: int) -> None:
        """Cancel GTC orders whose ``expiration_ns <= now_ns`` (every mutating call does this)."""
        self._advance(now_ns)

    # === reads ===================================================================================

    def order(self, user_id: str, order_id: str) -> Order:
        return copy.copy(self._own_order(user_id, order_id))

    def orders(self, user_id: str, *, ticker: str | None = None,
               event_ticker: str | None = None, status: str | None = None) -> list[Order]:
        """The user's orders, oldest first, filtered by market, event and status (snapshots)."""
        self._user(user_id)
        if status == "resting":  # the common query: walk the resting index, not the history
            if ticker is not None:
                ids = sorted(self._resting.get((user_id, ticker), {}))
            else:
                ids = sorted(self._user_resting[user_id])
        else:
            ids = self._user_orders[user_id]
        out = []
        for oid in ids:
            o = self._orders[oid]
            if ticker is not None and o.ticker != ticker:
                continue
            if event_ticker is not None and self._markets[o.ticker].event_ticker != event_ticker:
                continue
            if status is not None and o.status != status:
                continue
            out.append(copy.copy(o))
        return out

    def fills(self, user_id: str, *, ticker: str | None = None,
              order_id: str | None = None) -> list[Fill]:
        """The user's fills, oldest first."""
        self._user(user_id)
        return [f for f in self._fills[user_id]
                if (ticker is None or f.ticker == ticker)
                and (order_id is None or f.order_id == order_id)]

    def trades(self, ticker: str | None = None) -> list[Trade]:
        return [t for t in self._trades if ticker is None or t.ticker == ticker]

    def settlements(self, user_id: str) -> list[Settlement]:
        self._user(user_id)
        return list(self._settlements[user_id])

    def best(self, ticker: str) -> tuple[int | None, int, int | None, int]:
        """``(best_bid, bid_size, best_ask, ask_size)`` in YES terms; None/0 for an empty side."""
        self._market(ticker)
        book = self._books[ticker]
        bid, ask = book.best("bid"), book.best("ask")
        return (bid, book.size_at("bid", bid) if bid is not None else 0,
                ask, book.size_at("ask", ask) if ask is not None else 0)

    def orderbook(self, ticker: str, depth: int | None = None
                  ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Kalshi's bids-only book: ``(yes_bids, no_bids)``, each ``[(price, size)]`` ascending
        (best last). NO bids are the asks mirrored to NO prices (``PRICE_ONE − ask``). ``depth``
        keeps the best N levels per side (None or <= 0: all)."""
        self._market(ticker)
        book = self._books[ticker]
        yes = book.levels("bid")
        no = [(PRICE_ONE - p, n) for p, n in reversed(book.levels("ask"))]
        if depth is not None and depth > 0:
            yes, no = yes[-depth:], no[-depth:]
        return yes, no

    def queue_position(self, user_id: str, order_id: str) -> int:
        """Centi-contracts resting ahead of the order at its price (0 if not resting)."""
        order = self._own_order(user_id, order_id)
        if not order.is_resting:
            return 0
        ahead = 0
        for oid in self._books[order.ticker].queue(order.side, order.price):
            if oid == order_id:
                break
            ahead += self._orders[oid].remaining
        return ahead

    def drain_events(self) -> list[EngineEvent]:
        """Hand over every event since the last drain, in the order they happened."""
        out, self._outbox = self._outbox, []
        return out
