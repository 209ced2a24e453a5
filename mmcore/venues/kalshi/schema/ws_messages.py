"""WebSocket server messages (server → client): the envelope, command replies, each channel's
messages and :data:`WS_MESSAGE_TYPES` (``type`` → model).
"""

from __future__ import annotations

from typing import Any, Literal, Union

from mmcore.venues.kalshi.schema.common import (
    BookSide, CountFp, Dollars, FeeType, OrderAction, OrderStatus, OutcomeSide, PriceLevel, Rfc3339,
    SelfTradePreventionType, WireResponse, _count, _levels, _money, _price,
)
from mmcore.venues.kalshi.schema.ws_commands import WS_TERMINAL_ERROR_CODES, Seq, Sid


# Envelope: {"type", "sid"?, "seq"?, "id"? (command replies), "msg"}. Only orderbook_snapshot,
# orderbook_delta, order_group_updates, unsubscribed (and optionally ok) carry ``seq``; it runs
# per sid. Each ``*Message`` is the envelope, each ``*Msg`` its ``msg`` payload.


class WsEnvelope(WireResponse):
    """Any server message; what :func:`parse_ws_message` returns for a ``type`` it does not
    model (RFQ/quote, multivariate, cfbenchmarks, pyth, future types)."""

    type: str
    id: int | None = None
    sid: int | None = None
    seq: int | None = None
    msg: Any = None


# --- command replies ---


class SubscribedMsg(WireResponse):
    channel: str
    sid: Sid


class SubscribedMessage(WireResponse):
    """One per channel subscribed: ``{"id":1,"type":"subscribed","msg":{"channel","sid"}}``."""

    type: Literal["subscribed"]
    id: int | None = None
    msg: SubscribedMsg


class UnsubscribedMessage(WireResponse):
    type: Literal["unsubscribed"]
    id: int | None = None
    sid: Sid
    seq: Seq


class OkMsg(WireResponse):
    market_tickers: list[str] | None = None
    market_ids: list[str] | None = None


class SubscriptionInfo(WireResponse):
    channel: str
    sid: Sid


class OkMessage(WireResponse):
    """``ok`` reply. After ``update_subscription`` ``msg`` is :class:`OkMsg` (full ticker list);
    after ``list_subscriptions`` it is a list of :class:`SubscriptionInfo`."""

    type: Literal["ok"]
    id: int | None = None
    sid: Sid | None = None
    seq: Seq | None = None
    msg: OkMsg | list[SubscriptionInfo] | None = None

    def subscriptions(self) -> list[SubscriptionInfo] | None:
        """The subscription list if this answers ``list_subscriptions``, else ``None``."""
        return self.msg if isinstance(self.msg, list) else None


class ErrorMsg(WireResponse):
    code: int
    msg: str
    market_id: str | None = None
    market_ticker: str | None = None


class ErrorMessage(WireResponse):
    type: Literal["error"]
    id: int | None = None
    msg: ErrorMsg

    @property
    def terminal(self) -> bool:
        """True if the subscription is dead and must be re-created (codes 10, 17, 25)."""
        return self.msg.code in WS_TERMINAL_ERROR_CODES


# --- orderbook_delta channel ---


class OrderbookSnapshotMsg(WireResponse):
    """Bids only; a side's key is absent when it is empty. NO levels are at NO-leg prices unless
    the subscription set ``use_yes_price``."""

    market_ticker: str
    market_id: str
    yes_dollars_fp: list[PriceLevel] | None = None
    no_dollars_fp: list[PriceLevel] | None = None

    def yes_levels(self) -> list[tuple[int, int]]:
        """YES bids as (price units, centi-contracts), ascending by price."""
        return _levels(self.yes_dollars_fp, "yes_dollars_fp")

    def no_levels(self) -> list[tuple[int, int]]:
        """NO bids as (price units, centi-contracts), ascending by price."""
        return _levels(self.no_dollars_fp, "no_dollars_fp")


class OrderbookSnapshotMessage(WireResponse):
    type: Literal["orderbook_snapshot"]
    sid: Sid
    seq: Seq
    msg: OrderbookSnapshotMsg


class OrderbookDeltaMsg(WireResponse):
    """Signed size change at one level. ``client_order_id`` only when our order caused it."""

    market_ticker: str
    market_id: str
    price_dollars: Dollars
    delta_fp: CountFp
    side: OutcomeSide
    client_order_id: str | None = None
    subaccount: int | None = None
    ts: Rfc3339 | None = None  # deprecated
    ts_ms: int | None = None

    def level_price(self) -> int:
        """The level's price in price units, in ``side``'s own leg: a NO level is at the NO
        price unless the subscription set ``use_yes_price`` (not :meth:`price`-style YES)."""
        return _price(self.price_dollars, "price_dollars")

    def delta(self) -> int:
        """Signed change in centi-contracts."""
        return _count(self.delta_fp, "delta_fp")


class OrderbookDeltaMessage(WireResponse):
    type: Literal["orderbook_delta"]
    sid: Sid
    seq: Seq
    msg: OrderbookDeltaMsg


# --- public market data ---


class TickerMsg(WireResponse):
    market_ticker: str
    market_id: str
    price_dollars: Dollars
    yes_bid_dollars: Dollars
    yes_ask_dollars: Dollars
    volume_fp: CountFp
    open_interest_fp: CountFp
    dollar_volume: int
    dollar_open_interest: int
    yes_bid_size_fp: CountFp
    yes_ask_size_fp: CountFp
    last_trade_size_fp: CountFp
    ts: int | None = None  # deprecated, seconds
    ts_ms: int
    time: Rfc3339 | None = None  # deprecated


class TickerMessage(WireResponse):
    type: Literal["ticker"]
    sid: Sid
    msg: TickerMsg


class TradeMsg(WireResponse):
    trade_id: str
    market_ticker: str
    yes_price_dollars: Dollars
    no_price_dollars: Dollars
    count_fp: CountFp
    taker_side: OutcomeSide | None = None  # deprecated
    taker_outcome_side: OutcomeSide
    taker_book_side: BookSide
    is_block_trade: bool
    ts: int | None = None  # deprecated, seconds
    ts_ms: int

    def price(self) -> int:
        """YES price of the trade, price units."""
        return _price(self.yes_price_dollars, "yes_price_dollars")

    def count(self) -> int:
        return _count(self.count_fp, "count_fp")


class TradeMessage(WireResponse):
    type: Literal["trade"]
    sid: Sid
    msg: TradeMsg


# --- private: fills, orders, positions, order groups ---


class FillMsg(WireResponse):
    """Our fill, the source of truth for executions. ``post_position_fp`` is the signed
    position after it."""

    trade_id: str
    order_id: str
    market_ticker: str
    exchange_index: int
    is_taker: bool
    side: OutcomeSide | None = None  # deprecated
    action: OrderAction | None = None  # deprecated
    purchased_side: OutcomeSide | None = None  # deprecated
    outcome_side: OutcomeSide
    book_side: BookSide
    yes_price_dollars: Dollars
    count_fp: CountFp
    fee_cost: Dollars
    post_position_fp: CountFp
    client_order_id: str | None = None
    subaccount: int | None = None
    ts: int | None = None  # deprecated, seconds
    ts_ms: int

    def price(self) -> int:
        return _price(self.yes_price_dollars, "yes_price_dollars")

    def count(self) -> int:
        return _count(self.count_fp, "count_fp")

    def signed_count(self) -> int:
        """Change of our YES position: ``+count`` for bid, ``−count`` for ask."""
        return self.count() if self.book_side == "bid" else -self.count()

    def fee(self) -> int:
        return _money(self.fee_cost, "fee_cost", "up")

    def post_position(self) -> int:
        return _count(self.post_position_fp, "post_position_fp")


class FillMessage(WireResponse):
    type: Literal["fill"]
    sid: Sid
    msg: FillMsg


class UserOrderMsg(WireResponse):
    """An order of ours changed (channel ``user_orders``)."""

    order_id: str
    user_id: str
    ticker: str
    status: OrderStatus
    side: OutcomeSide | None = None  # deprecated
    is_yes: bool | None = None  # deprecated
    outcome_side: OutcomeSide
    book_side: BookSide
    yes_price_dollars: Dollars
    fill_count_fp: CountFp
    remaining_count_fp: CountFp
    initial_count_fp: CountFp
    taker_fill_cost_dollars: Dollars
    maker_fill_cost_dollars: Dollars
    taker_fees_dollars: Dollars
    maker_fees_dollars: Dollars
    client_order_id: str
    order_group_id: str | None = None
    self_trade_prevention_type: SelfTradePreventionType | None = None
    created_time: Rfc3339 | None = None  # deprecated
    created_ts_ms: int
    last_update_time: Rfc3339 | None = None  # deprecated
    last_updated_ts_ms: int | None = None
    expiration_time: Rfc3339 | None = None  # deprecated
    expiration_ts_ms: int | None = None
    subaccount_number: int | None = None

    def price(self) -> int:
        return _price(self.yes_price_dollars, "yes_price_dollars")

    def count(self) -> int:
        return _count(self.initial_count_fp, "initial_count_fp")

    def fill_count(self) -> int:
        return _count(self.fill_count_fp, "fill_count_fp")

    def remaining_count(self) -> int:
        return _count(self.remaining_count_fp, "remaining_count_fp")


class UserOrderMessage(WireResponse):
    type: Literal["user_order"]
    sid: Sid
    msg: UserOrderMsg


class MarketPositionMsg(WireResponse):
    """Channel ``market_positions`` (type ``market_position``)."""

    user_id: str
    market_ticker: str
    position_fp: CountFp
    position_cost_dollars: Dollars
    realized_pnl_dollars: Dollars
    fees_paid_dollars: Dollars
    position_fee_cost_dollars: Dollars
    volume_fp: CountFp
    subaccount: int | None = None

    def position(self) -> int:
        return _count(self.position_fp, "position_fp")


class MarketPositionMessage(WireResponse):
    type: Literal["market_position"]
    sid: Sid
    msg: MarketPositionMsg


class OrderGroupUpdateMsg(WireResponse):
    event_type: Literal["created", "triggered", "reset", "deleted", "limit_updated"]
    order_group_id: str
    contracts_limit_fp: CountFp | None = None  # created / limit_updated
    ts_ms: int


class OrderGroupUpdatesMessage(WireResponse):
    type: Literal["order_group_updates"]
    sid: Sid
    seq: Seq
    msg: OrderGroupUpdateMsg


# --- market_lifecycle_v2 channel (also carries event_lifecycle and event_fee_update) ---


class LifecyclePriceRange(WireResponse):
    start: Dollars
    end: Dollars
    step: Dollars


class MarketLifecycleV2Msg(WireResponse):
    """Optional fields depend on ``event_type`` (created: open/close_ts, exchange_index,
    price_level_structure, additional_metadata; determined: result, determination_ts,
    settlement_value; settled: settled_ts; activated/deactivated: is_deactivated; …).
    Times are unix **seconds**. Reactivation after a pause cancels all resting orders."""

    event_type: Literal[
        "created", "activated", "deactivated", "close_date_updated", "determined", "settled",
        "price_level_structure_updated", "metadata_updated",
    ]
    market_ticker: str
    exchange_index: int | None = None
    open_ts: int | None = None
    close_ts: int | None = None
    result: str | None = None
    determination_ts: int | None = None
    settlement_value: Dollars | None = None
    settled_ts: int | None = None
    is_deactivated: bool | None = None
    price_level_structure: str | None = None
    price_ranges: list[LifecyclePriceRange] | None = None
    strike_type: str | None = None
    floor_strike: float | None = None
    cap_strike: float | None = None
    custom_strike: dict[str, Any] | None = None
    yes_sub_title: str | None = None
    additional_metadata: dict[str, Any] | None = None


class MarketLifecycleV2Message(WireResponse):
    type: Literal["market_lifecycle_v2"]
    sid: Sid
    msg: MarketLifecycleV2Msg


class EventLifecycleMsg(WireResponse):
    event_ticker: str
    exchange_index: int
    title: str
    subtitle: str
    collateral_return_type: Literal["MECNET", "DIRECNET", ""]
    series_ticker: str
    strike_date: int | None = None
    strike_period: str | None = None


class EventLifecycleMessage(WireResponse):
    type: Literal["event_lifecycle"]
    sid: Sid
    msg: EventLifecycleMsg


class EventFeeUpdateMsg(WireResponse):
    """Both overrides are ``null`` when the override was cleared (keys still present)."""

    event_ticker: str
    fee_type_override: FeeType | None
    fee_multiplier_override: float | None


class EventFeeUpdateMessage(WireResponse):
    type: Literal["event_fee_update"]
    sid: Sid
    msg: EventFeeUpdateMsg


WsMessage = Union[
    SubscribedMessage, UnsubscribedMessage, OkMessage, ErrorMessage, OrderbookSnapshotMessage,
    OrderbookDeltaMessage, TickerMessage, TradeMessage, FillMessage, UserOrderMessage,
    MarketPositionMessage, OrderGroupUpdatesMessage, MarketLifecycleV2Message,
    EventLifecycleMessage, EventFeeUpdateMessage, WsEnvelope,
]

WS_MESSAGE_TYPES: dict[str, type[WireResponse]] = {
    "subscribed": SubscribedMessage,
    "unsubscribed": UnsubscribedMessage,
    "ok": OkMessage,
    "error": ErrorMessage,
    "orderbook_snapshot": OrderbookSnapshotMessage,
    "orderbook_delta": OrderbookDeltaMessage,
    "ticker": TickerMessage,
    "trade": TradeMessage,
    "fill": FillMessage,
    "user_order": UserOrderMessage,
    "market_position": MarketPositionMessage,
    "order_group_updates": OrderGroupUpdatesMessage,
    "market_lifecycle_v2": MarketLifecycleV2Message,
    "event_lifecycle": EventLifecycleMessage,
    "event_fee_update": EventFeeUpdateMessage,
}
"""Message ``type`` → model. Channel names differ for two: ``market_positions`` sends
``market_position``, ``user_orders`` sends ``user_order``."""
