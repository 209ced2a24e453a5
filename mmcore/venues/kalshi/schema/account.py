"""Account API limits (``GET /account/limits``): the usage tier and the two token buckets the
exchange meters this account's REST requests with (reference/kalshi.md §5; spec
``GetAccountApiLimitsResponse``). Rates are tokens per second, capacities tokens.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmcore.venues.kalshi.schema.common import ListOrNull, WireResponse


class BucketLimit(WireResponse):
    """One bucket: refills ``refill_rate`` tokens/s up to ``bucket_capacity`` tokens."""

    refill_rate: int = Field(gt=0)
    bucket_capacity: int = Field(gt=0)


class ApiUsageLevelGrant(WireResponse):
    """A tier granted to the account on one exchange lane (earned by volume or assigned)."""

    exchange_instance: Literal["event_contract", "margined"] | str
    level: str
    expires_ts: int | None = None
    """Unix seconds; absent for a permanent grant."""
    source: str


class GetAccountApiLimitsResponse(WireResponse):
    """``GET /account/limits``: ``usage_tier`` (basic … prestige) and its ``read``/``write``
    buckets — the numbers the exchange enforces, authoritative over any tier table of ours."""

    usage_tier: str
    read: BucketLimit
    write: BucketLimit
    grants: ListOrNull[ApiUsageLevelGrant] = Field(default_factory=list)
