"""Order groups (``/portfolio/order_groups…``): a rolling 15-second matched-contracts limit with
auto-cancel.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, model_validator

from mmcore.units import parse_count_fp
from mmcore.venues.kalshi.schema.common import (
    CountFp, CountReq, ListOrNull, Subaccount, WireRequest, WireResponse, _exactly_one,
)

ORDER_GROUP_MAX_CONTRACTS = 1_000_000


class OrderGroup(WireResponse):
    id: str
    contracts_limit_fp: CountFp | None = None
    is_auto_cancel_enabled: bool
    exchange_index: int | None = None


class GetOrderGroupsResponse(WireResponse):
    order_groups: ListOrNull[OrderGroup] = Field(default_factory=list)


class GetOrderGroupResponse(WireResponse):
    is_auto_cancel_enabled: bool
    contracts_limit_fp: CountFp | None = None
    orders: ListOrNull[str]
    exchange_index: int | None = None


class _OrderGroupLimit(WireRequest):
    contracts_limit: Annotated[int, Field(ge=1, le=ORDER_GROUP_MAX_CONTRACTS)] | None = None
    contracts_limit_fp: CountReq | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> _OrderGroupLimit:
        _exactly_one(self, "contracts_limit", "contracts_limit_fp")
        if self.contracts_limit_fp is not None:
            if Decimal(self.contracts_limit_fp) > ORDER_GROUP_MAX_CONTRACTS:
                raise ValueError(f"contracts_limit_fp must be <= {ORDER_GROUP_MAX_CONTRACTS}")
        return self

    def limit(self) -> int:
        """The limit in centi-contracts."""
        if self.contracts_limit is not None:
            return self.contracts_limit * 100
        return parse_count_fp(self.contracts_limit_fp)  # type: ignore[arg-type]


class CreateOrderGroupRequest(_OrderGroupLimit):
    """``POST /portfolio/order_groups/create``: exactly one of ``contracts_limit`` /
    ``contracts_limit_fp`` (1 – 1,000,000 contracts)."""

    subaccount: Subaccount | None = None
    exchange_index: Annotated[int, Field(ge=0)] = 0


class UpdateOrderGroupLimitRequest(_OrderGroupLimit):
    """``PUT /portfolio/order_groups/{id}/limit``."""


class CreateOrderGroupResponse(WireResponse):
    order_group_id: str
    subaccount: int
    exchange_index: int | None = None
