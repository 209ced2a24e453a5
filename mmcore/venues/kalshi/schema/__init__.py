"""Kalshi Trade API v2 wire models (pydantic v2), shared by our REST/WS client and the local exchange.

The models describe the **current** wire shape (Aug 2026, reference/kalshi.md §0): V2 order
writes under ``/portfolio/events/orders`` (``side: bid|ask``, YES ``price`` dollar string,
``count`` fixed-point string), ``*_dollars`` price/money strings and ``*_fp`` count strings
everywhere. Names and required-ness follow ``reference/kalshi/openapi.yaml`` (components.schemas,
spec 3.28.0) and ``reference/kalshi/asyncapi.yaml`` (message payloads) exactly; where a class name
differs from the spec's it is noted, and aliases with the spec/brief names exist.

Rules of this package:

- **Responses** (what Kalshi sends, what the local exchange emits) use ``extra="allow"``: Kalshi
  adds fields without notice, and unknown ones are kept, not dropped. They are validated in lax
  mode; ``*_dollars`` / ``*_fp`` values arriving as JSON numbers are turned into strings (a
  reported third-party gotcha, kalshi.md §7.11) and every one must be a finite decimal.
- **Requests** (what the local exchange validates) use ``extra="forbid"`` and strict mode: an
  unknown key, ``side: "yes"``, a boolean for an int, a price with 5 decimals or a count with 3
  is refused. Business rules that need state (tick grid, balance, past expiration, market open)
  belong to the matching engine, not here.
- **Required-ness** is the spec's, with four documented exceptions, all in the lenient
  direction: (1) deprecated fields are never required (kalshi.md §7.12); (2) pagination
  ``cursor`` defaults to ``""`` (docs: absent or empty = last page); (3) top-level list fields
  accept ``null`` as ``[]`` (Go nil slices) — and REST orderbook sides may be absent/``null``
  (old SDK bug, kalshi.md §1.3); (4) ``price_level_structure`` is a plain ``str`` although the WS
  spec enumerates it, because Kalshi adds structures regularly.
- Timestamps stay the wire strings (RFC 3339 for REST ``*_time``/``*_ts``; ints for WS
  ``ts``/``ts_ms``) and are checked to parse; ``*_ns()`` helpers convert to integer ns.
- Units: accessors convert to :mod:`mmcore.units` integers — price/money in $0.0001 units,
  counts in centi-contracts. ``price()`` is always the **YES** price (what V2 calls ``price``);
  ``count()`` the size (``count_fp``, or ``initial_count_fp`` of an order); other accessors are
  the field without its unit suffix (``fill_count_fp`` → ``fill_count()``, ``position_fp`` →
  ``position()``, ``fee_cost`` → ``fee()``). Where the wire field has no suffix to drop (V2
  bodies: ``price``, ``count``, ``fill_count``…) they are ``parsed_<field>()``. A value finer
  than the unit is a :class:`~mmcore.errors.MalformedPayloadError` (venue's fault); money
  fields with 6 decimals round in the conservative direction named by the accessor.
- Parsers: :func:`parse_response` / :func:`parse_ws_message` (venue → us; raise
  ``MalformedPayloadError``), :func:`parse_request` / :func:`parse_ws_command` (client → local
  exchange; raise ``InvalidRequestError``), :func:`parse_error` (never raises). All are pure.

Modules (everything is re-exported here; import from the package): :mod:`.common` shared types ·
:mod:`.errors` error bodies · :mod:`.markets` exchange, series, events, markets, milestones,
trades, orderbook · :mod:`.portfolio` portfolio reads (orders, fills, positions, balance,
settlements) · :mod:`.order_groups` order groups · :mod:`.orders` V2 order writes ·
:mod:`.ws_commands` WebSocket commands · :mod:`.ws_messages` WebSocket server messages ·
:mod:`.parsers` parsers.
"""

from __future__ import annotations

from mmcore.venues.kalshi.schema.account import (
    ApiUsageLevelGrant, BucketLimit, GetAccountApiLimitsResponse,
)
from mmcore.venues.kalshi.schema.common import (
    BookSide, CountFp, CountReq, CountReqOrZero, Dollars, ExchangeIndexReq, FeeType, ListOrNull,
    MarketResult, MarketStatus, MarketType, OrderAction, OrderStatus, OrderType, OutcomeSide,
    PriceLevel, PriceReq, Rfc3339, SelfTradePreventionType, SettlementResult, StrikeType,
    Subaccount, TimeInForce, WireRequest, WireResponse,
)
from mmcore.venues.kalshi.schema.errors import ErrorResponse, parse_error, parse_error_body
from mmcore.venues.kalshi.schema.markets import (
    EventData, ExchangeIndexStatus, ExchangeStatus, GetEventResponse, GetEventsResponse,
    GetMarketOrderbookResponse, GetMarketOrderbooksResponse, GetMarketResponse, GetMarketsResponse,
    GetMilestonesResponse, GetOrderbookResponse, GetSeriesListResponse, GetSeriesResponse,
    GetTradesResponse, GetUserDataTimestampResponse, Market, MarketOrderbookFp, Milestone,
    MveSelectedLeg, OrderbookCountFp, OrderbookFp, PriceRange, Series, SettlementSource, Trade,
)
from mmcore.venues.kalshi.schema.order_groups import (
    ORDER_GROUP_MAX_CONTRACTS, CreateOrderGroupRequest, CreateOrderGroupResponse,
    GetOrderGroupResponse, GetOrderGroupsResponse, OrderGroup, UpdateOrderGroupLimitRequest,
)
from mmcore.venues.kalshi.schema.orders import (
    AmendOrderV2Request, AmendOrderV2Response, BatchCancelOrdersV2Item, BatchCancelOrdersV2Request,
    BatchCancelOrdersV2RequestOrder, BatchCancelOrdersV2Response, BatchCreateOrdersV2Item,
    BatchCreateOrdersV2Request, BatchCreateOrdersV2Response, CancelOrderV2Response,
    CreateOrderV2Request, CreateOrderV2Response, DecreaseOrderV2Request, DecreaseOrderV2Response,
)
from mmcore.venues.kalshi.schema.parsers import (
    RawBody, parse_request, parse_response, parse_ws_command, parse_ws_message,
)
from mmcore.venues.kalshi.schema.portfolio import (
    EventPosition, Fill, GetBalanceResponse, GetFillsResponse, GetOrderResponse, GetOrdersResponse,
    GetPositionsResponse, GetSettlementsResponse, IndexedBalance, MarketPosition, Order, Settlement,
)
from mmcore.venues.kalshi.schema.ws_commands import (
    PRIVATE_CHANNELS, WS_ERROR_CODES, WS_TERMINAL_ERROR_CODES, AnyWsCommand, CommandId,
    ListSubscriptionsCommand, Seq, Sid, SubscribeCommand, SubscribeParams, UnsubscribeCommand,
    UnsubscribeParams, UpdateSubscriptionCommand, UpdateSubscriptionParams, WsChannel, WsCommand,
)
from mmcore.venues.kalshi.schema.ws_messages import (
    WS_MESSAGE_TYPES, ErrorMessage, ErrorMsg, EventFeeUpdateMessage, EventFeeUpdateMsg,
    EventLifecycleMessage, EventLifecycleMsg, FillMessage, FillMsg, LifecyclePriceRange,
    MarketLifecycleV2Message, MarketLifecycleV2Msg, MarketPositionMessage, MarketPositionMsg,
    OkMessage, OkMsg, OrderbookDeltaMessage, OrderbookDeltaMsg, OrderbookSnapshotMessage,
    OrderbookSnapshotMsg, OrderGroupUpdateMsg, OrderGroupUpdatesMessage, SubscribedMessage,
    SubscribedMsg, SubscriptionInfo, TickerMessage, TickerMsg, TradeMessage, TradeMsg,
    UnsubscribedMessage, UserOrderMessage, UserOrderMsg, WsEnvelope, WsMessage,
)

__all__ = [
    # common: shared types
    "WireResponse", "WireRequest", "Dollars", "CountFp", "Rfc3339", "ListOrNull", "PriceReq",
    "CountReq", "CountReqOrZero", "BookSide", "OutcomeSide", "OrderAction", "OrderStatus",
    "OrderType", "TimeInForce", "SelfTradePreventionType", "FeeType", "MarketType", "MarketStatus",
    "MarketResult", "SettlementResult", "StrikeType", "Subaccount", "ExchangeIndexReq", "PriceLevel",
    # account
    "BucketLimit", "ApiUsageLevelGrant", "GetAccountApiLimitsResponse",
    # errors
    "ErrorResponse", "parse_error", "parse_error_body",
    # markets: exchange, series, events, markets, milestones, trades
    "ExchangeIndexStatus", "ExchangeStatus", "GetUserDataTimestampResponse", "SettlementSource",
    "PriceRange", "MveSelectedLeg", "Series", "Market", "EventData", "Milestone", "Trade",
    "GetSeriesListResponse", "GetSeriesResponse", "GetEventsResponse", "GetEventResponse",
    "GetMarketsResponse", "GetMarketResponse", "GetMilestonesResponse", "GetTradesResponse",
    # markets: orderbook
    "OrderbookCountFp", "OrderbookFp", "GetMarketOrderbookResponse", "GetOrderbookResponse",
    "MarketOrderbookFp", "GetMarketOrderbooksResponse",
    # portfolio reads
    "Order", "Fill", "MarketPosition", "EventPosition", "GetOrderResponse", "GetOrdersResponse",
    "GetFillsResponse", "GetPositionsResponse", "IndexedBalance", "GetBalanceResponse",
    "Settlement", "GetSettlementsResponse",
    # order_groups
    "ORDER_GROUP_MAX_CONTRACTS", "OrderGroup", "GetOrderGroupsResponse", "GetOrderGroupResponse",
    "CreateOrderGroupRequest", "UpdateOrderGroupLimitRequest", "CreateOrderGroupResponse",
    # orders: V2 order writes
    "CreateOrderV2Request", "CreateOrderV2Response", "CancelOrderV2Response",
    "AmendOrderV2Request", "AmendOrderV2Response", "DecreaseOrderV2Request",
    "DecreaseOrderV2Response", "BatchCreateOrdersV2Request", "BatchCreateOrdersV2Item",
    "BatchCreateOrdersV2Response", "BatchCancelOrdersV2RequestOrder", "BatchCancelOrdersV2Request",
    "BatchCancelOrdersV2Item", "BatchCancelOrdersV2Response",
    # ws_commands
    "WsChannel", "PRIVATE_CHANNELS", "WS_ERROR_CODES", "WS_TERMINAL_ERROR_CODES", "CommandId",
    "Sid", "Seq", "SubscribeParams", "SubscribeCommand", "UnsubscribeParams",
    "UnsubscribeCommand", "UpdateSubscriptionParams", "UpdateSubscriptionCommand",
    "ListSubscriptionsCommand", "AnyWsCommand", "WsCommand",
    # ws_messages
    "WsEnvelope", "SubscribedMsg", "SubscribedMessage", "UnsubscribedMessage", "OkMsg",
    "SubscriptionInfo", "OkMessage", "ErrorMsg", "ErrorMessage", "OrderbookSnapshotMsg",
    "OrderbookSnapshotMessage", "OrderbookDeltaMsg", "OrderbookDeltaMessage", "TickerMsg",
    "TickerMessage", "TradeMsg", "TradeMessage", "FillMsg", "FillMessage", "UserOrderMsg",
    "UserOrderMessage", "MarketPositionMsg", "MarketPositionMessage", "OrderGroupUpdateMsg",
    "OrderGroupUpdatesMessage", "LifecyclePriceRange", "MarketLifecycleV2Msg",
    "MarketLifecycleV2Message", "EventLifecycleMsg", "EventLifecycleMessage", "EventFeeUpdateMsg",
    "EventFeeUpdateMessage", "WsMessage", "WS_MESSAGE_TYPES",
    # parsers
    "RawBody", "parse_response", "parse_request", "parse_ws_message", "parse_ws_command",
]
