"""Portfolio reads (``GET /portfolio/…``): orders, fills, positions, balance, settlements."""

from __future__ import annotations

from mmcore.models import iso_to_ns
from mmcore.venues.kalshi.schema.common import (
    BookSide, CountFp, Dollars, ListOrNull, OrderAction, OrderStatus, OrderType, OutcomeSide,
    Rfc3339, SelfTradePreventionType, SettlementResult, WireResponse, _count, _money, _price,
)


class Order(WireResponse):
    """An order as read back (``GET /portfolio/orders``); direction is ``book_side`` (YES terms).

    ``side``/``action`` are deprecated and mean something else on fills; never use them.
    """

    order_id: str
    user_id: str
    client_order_id: str
    ticker: str
    side: OutcomeSide | None = None  # deprecated
    action: OrderAction | None = None  # deprecated
    outcome_side: OutcomeSide
    book_side: BookSide
    type: OrderType
    status: OrderStatus
    yes_price_dollars: Dollars
    no_price_dollars: Dollars
    fill_count_fp: CountFp
    remaining_count_fp: CountFp
    initial_count_fp: CountFp
    taker_fill_cost_dollars: Dollars
    maker_fill_cost_dollars: Dollars
    taker_fees_dollars: Dollars
    maker_fees_dollars: Dollars
    expiration_time: Rfc3339 | None = None
    created_time: Rfc3339 | None = None
    last_update_time: Rfc3339 | None = None
    self_trade_prevention_type: SelfTradePreventionType | None = None
    order_group_id: str | None = None
    cancel_order_on_pause: bool | None = None
    subaccount_number: int | None = None
    exchange_index: int | None = None

    def price(self) -> int:
        """The order's YES price in price units (the V2 ``price``)."""
        return _price(self.yes_price_dollars, "yes_price_dollars")

    def count(self) -> int:
        """The order's size (``initial_count_fp``) in centi-contracts."""
        return _count(self.initial_count_fp, "initial_count_fp")

    def fill_count(self) -> int:
        return _count(self.fill_count_fp, "fill_count_fp")

    def remaining_count(self) -> int:
        return _count(self.remaining_count_fp, "remaining_count_fp")

    def fees(self) -> int:
        """Taker + maker fees paid so far, money units (rounded up if finer than $0.0001)."""
        return _money(self.taker_fees_dollars, "taker_fees_dollars", "up") + _money(
            self.maker_fees_dollars, "maker_fees_dollars", "up"
        )


class Fill(WireResponse):
    """One of our fills (``GET /portfolio/fills``). ``fill_id == trade_id``; correlate by
    ``order_id`` (``client_order_id`` was removed from fills in Mar 2026)."""

    fill_id: str
    exchange_index: int
    trade_id: str
    order_id: str
    ticker: str
    market_ticker: str
    side: OutcomeSide | None = None  # deprecated
    action: OrderAction | None = None  # deprecated
    outcome_side: OutcomeSide
    book_side: BookSide
    count_fp: CountFp
    yes_price_dollars: Dollars
    no_price_dollars: Dollars
    is_taker: bool
    created_time: Rfc3339 | None = None
    fee_cost: Dollars
    subaccount_number: int | None = None
    ts: int | None = None  # legacy unix seconds

    def price(self) -> int:
        """YES price of the fill, price units."""
        return _price(self.yes_price_dollars, "yes_price_dollars")

    def count(self) -> int:
        return _count(self.count_fp, "count_fp")

    def signed_count(self) -> int:
        """Change of our YES position: ``+count`` for a bid fill, ``−count`` for an ask fill."""
        return self.count() if self.book_side == "bid" else -self.count()

    def fee(self) -> int:
        """Fee of this fill in money units (rounded up if finer than $0.0001)."""
        return _money(self.fee_cost, "fee_cost", "up")

    def created_ns(self) -> int | None:
        return None if self.created_time is None else iso_to_ns(self.created_time)


class MarketPosition(WireResponse):
    """Unsettled position in one market; ``position_fp`` is signed (+ YES, − NO).

    ``last_updated_ts`` is an RFC 3339 string (not a number — a known parse trap).
    """

    ticker: str
    exchange_index: int
    total_traded_dollars: Dollars
    position_fp: CountFp
    market_exposure_dollars: Dollars
    realized_pnl_dollars: Dollars
    fees_paid_dollars: Dollars
    last_updated_ts: Rfc3339

    def position(self) -> int:
        """Signed position in centi-contracts (+ YES, − NO)."""
        return _count(self.position_fp, "position_fp")


class EventPosition(WireResponse):
    event_ticker: str
    total_cost_dollars: Dollars
    total_cost_shares_fp: CountFp
    event_exposure_dollars: Dollars
    realized_pnl_dollars: Dollars
    fees_paid_dollars: Dollars


class GetOrderResponse(WireResponse):
    order: Order


class GetOrdersResponse(WireResponse):
    orders: ListOrNull[Order]
    cursor: str = ""


class GetFillsResponse(WireResponse):
    fills: ListOrNull[Fill]
    cursor: str = ""


class GetPositionsResponse(WireResponse):
    """``GET /portfolio/positions`` — unsettled positions only."""

    cursor: str = ""
    market_positions: ListOrNull[MarketPosition]
    event_positions: ListOrNull[EventPosition]


class IndexedBalance(WireResponse):
    exchange_index: int
    balance: Dollars


class GetBalanceResponse(WireResponse):
    """``GET /portfolio/balance``. ``balance``/``portfolio_value`` are integer **cents**;
    ``balance_dollars`` is the fixed-point string; ``updated_ts`` is unix seconds."""

    balance: int
    balance_dollars: Dollars
    portfolio_value: int
    updated_ts: int
    balance_breakdown: list[IndexedBalance] | None = None

    def available(self) -> int:
        """Available balance in money units ($0.0001), rounded down (never overstate cash)."""
        return _money(self.balance_dollars, "balance_dollars", "down")


class Settlement(WireResponse):
    """One settled market of ours. ``revenue`` and ``value`` are integer **cents**."""

    ticker: str
    exchange_index: int
    event_ticker: str
    market_result: SettlementResult
    yes_count_fp: CountFp
    yes_total_cost_dollars: Dollars
    no_count_fp: CountFp
    no_total_cost_dollars: Dollars
    revenue: int
    settled_time: Rfc3339
    fee_cost: Dollars
    value: int | None = None


class GetSettlementsResponse(WireResponse):
    settlements: ListOrNull[Settlement]
    cursor: str = ""
