"""V2 order writes (``/portfolio/events/orders…``): create, cancel, amend, decrease and the
batched create/cancel, requests and replies.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from mmcore.units import parse_count_fp, parse_dollars
from mmcore.venues.kalshi.schema.common import (
    BookSide, CountFp, CountReq, CountReqOrZero, Dollars, ExchangeIndexReq, ExpirationReq, IdReq,
    ListOrNull, OptTickerReq, PriceReq, SelfTradePreventionType, Subaccount, TickerReq,
    TimeInForce, WireRequest, WireResponse, _count, _exactly_one,
)
from mmcore.venues.kalshi.schema.errors import ErrorResponse


class CreateOrderV2Request(WireRequest):
    """``POST /portfolio/events/orders`` → 201 :class:`CreateOrderV2Response`.

    ``side`` is the YES book side; ``price`` is the YES price. No ``type`` (market orders are
    gone), no ``buy_max_cost``. ``expiration_time`` (unix seconds) only with
    ``good_till_canceled`` (IOC/FOK with an expiry is rejected); whether it is in the past is
    the engine's check.
    """

    ticker: TickerReq
    client_order_id: IdReq | None = None
    side: BookSide
    count: CountReq
    price: PriceReq
    expiration_time: ExpirationReq | None = None
    time_in_force: TimeInForce
    post_only: bool | None = None
    self_trade_prevention_type: SelfTradePreventionType
    cancel_order_on_pause: bool | None = None
    reduce_only: bool | None = None
    subaccount: Subaccount | None = None
    order_group_id: IdReq | None = None
    exchange_index: ExchangeIndexReq | None = None

    @model_validator(mode="after")
    def _expiry_only_with_gtc(self) -> CreateOrderV2Request:
        if self.expiration_time is not None and self.time_in_force != "good_till_canceled":
            raise ValueError("expiration_time is only allowed with time_in_force=good_till_canceled")
        return self

    def parsed_price(self) -> int:
        """YES price in price units."""
        return parse_dollars(self.price)

    def parsed_count(self) -> int:
        """Size in centi-contracts."""
        return parse_count_fp(self.count)


class CreateOrderV2Response(WireResponse):
    """201 reply. For IOC, ``remaining_count`` is the final state (0 after the unfilled part is
    cancelled). ``average_*`` only when something filled."""

    order_id: str
    client_order_id: str | None = None
    fill_count: CountFp
    remaining_count: CountFp
    average_fill_price: Dollars | None = None
    average_fee_paid: Dollars | None = None
    ts_ms: int

    def parsed_fill_count(self) -> int:
        return _count(self.fill_count, "fill_count")

    def parsed_remaining_count(self) -> int:
        return _count(self.remaining_count, "remaining_count")


class CancelOrderV2Response(WireResponse):
    """``DELETE /portfolio/events/orders/{id}`` → ``reduced_by`` = remaining at cancel time
    (``"0.00"`` = nothing was left). May describe a different order in rare cases (§7.2)."""

    order_id: str
    client_order_id: str | None = None
    reduced_by: CountFp
    ts_ms: int

    def parsed_reduced_by(self) -> int:
        return _count(self.reduced_by, "reduced_by")


class AmendOrderV2Request(WireRequest):
    """``POST /portfolio/events/orders/{id}/amend``. ``count`` is the **new total** (already
    filled + desired resting remainder), not the remainder."""

    ticker: TickerReq
    side: BookSide
    price: PriceReq
    count: CountReq
    client_order_id: IdReq | None = None
    updated_client_order_id: IdReq | None = None
    exchange_index: ExchangeIndexReq | None = None

    def parsed_price(self) -> int:
        return parse_dollars(self.price)

    def parsed_count(self) -> int:
        return parse_count_fp(self.count)


class AmendOrderV2Response(WireResponse):
    """Optional fields are present only when the amend filled or changed size."""

    order_id: str
    client_order_id: str | None = None
    remaining_count: CountFp | None = None
    fill_count: CountFp | None = None
    average_fill_price: Dollars | None = None
    average_fee_paid: Dollars | None = None
    ts_ms: int


class DecreaseOrderV2Request(WireRequest):
    """``POST /portfolio/events/orders/{id}/decrease``: exactly one of ``reduce_by`` (> 0) or
    ``reduce_to`` (≥ 0); ``null`` counts as absent."""

    reduce_by: CountReq | None = None
    reduce_to: CountReqOrZero | None = None
    exchange_index: ExchangeIndexReq | None = None
    market_ticker: OptTickerReq | None = None

    @model_validator(mode="after")
    def _one_of(self) -> DecreaseOrderV2Request:
        _exactly_one(self, "reduce_by", "reduce_to")
        return self


class DecreaseOrderV2Response(WireResponse):
    order_id: str
    client_order_id: str | None = None
    remaining_count: CountFp
    ts_ms: int

    def parsed_remaining_count(self) -> int:
        return _count(self.remaining_count, "remaining_count")


class BatchCreateOrdersV2Request(WireRequest):
    """``POST /portfolio/events/orders/batched``. The size limit depends on the tier's write
    bucket (N × 10 tokens), so it is the engine's check."""

    orders: list[CreateOrderV2Request]


class BatchCreateOrdersV2Item(WireResponse):
    """One entry of the batch create reply (inline in the spec): a result or an ``error``."""

    order_id: str | None = None
    client_order_id: str | None = None
    fill_count: CountFp | None = None
    remaining_count: CountFp | None = None
    average_fill_price: Dollars | None = None
    average_fee_paid: Dollars | None = None
    ts_ms: int | None = None
    error: ErrorResponse | None = None


class BatchCreateOrdersV2Response(WireResponse):
    orders: ListOrNull[BatchCreateOrdersV2Item]


class BatchCancelOrdersV2RequestOrder(WireRequest):
    order_id: Annotated[IdReq, Field(min_length=1)]
    subaccount: Subaccount | None = None
    exchange_index: ExchangeIndexReq | None = None
    market_ticker: OptTickerReq | None = None


class BatchCancelOrdersV2Request(WireRequest):
    """``DELETE /portfolio/events/orders/batched`` (JSON body on DELETE)."""

    orders: list[BatchCancelOrdersV2RequestOrder]


class BatchCancelOrdersV2Item(WireResponse):
    """``reduced_by`` is ``"0.00"`` and ``ts_ms`` absent when this cancel errored."""

    order_id: str
    client_order_id: str | None = None
    reduced_by: CountFp
    ts_ms: int | None = None
    error: ErrorResponse | None = None


class BatchCancelOrdersV2Response(WireResponse):
    orders: ListOrNull[BatchCancelOrdersV2Item]
