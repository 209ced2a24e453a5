"""Shared pieces of the Kalshi wire models (:mod:`mmcore.venues.kalshi.schema`).

The :class:`WireResponse` / :class:`WireRequest` bases, the field types and literals the other
modules use (``Dollars``, ``CountFp``, ``Rfc3339``, request price/count strings, sides,
statuses…) and the unit helpers behind the ``price()`` / ``count()`` / ``fee()`` accessors.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints,
)

from mmcore.errors import InputError, MalformedPayloadError
from mmcore.models import iso_to_ns
from mmcore.units import Rounding, parse_count_fp, parse_dollars

_RESPONSE_CONFIG = ConfigDict(extra="allow", frozen=True)
_REQUEST_CONFIG = ConfigDict(extra="forbid", frozen=True, strict=True)


class WireResponse(BaseModel):
    """Base of everything Kalshi sends: unknown fields kept, lax types."""

    model_config = _RESPONSE_CONFIG


class WireRequest(BaseModel):
    """Base of everything a client sends that the local exchange validates: strict, closed."""

    model_config = _REQUEST_CONFIG


def _number_to_str(value: object) -> object:
    if isinstance(value, bool):
        return value  # let the str check refuse it
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return value


def _finite_decimal(value: str) -> str:
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValueError(f"not a decimal number: {value[:40]!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value[:40]!r}")
    return value


def _rfc3339(value: str) -> str:
    try:
        iso_to_ns(value)
    except (ValueError, TypeError):
        raise ValueError(f"not an RFC 3339 timestamp: {value[:40]!r}") from None
    return value


def _none_to_empty(value: object) -> object:
    return [] if value is None else value


def _positive_decimal(value: str) -> str:
    if Decimal(value) <= 0:
        raise ValueError("must be greater than 0")
    return value


Dollars = Annotated[str, BeforeValidator(_number_to_str), AfterValidator(_finite_decimal)]
"""Response ``*_dollars`` fixed-point dollar string (up to 6 decimals, may be negative)."""
CountFp = Annotated[str, BeforeValidator(_number_to_str), AfterValidator(_finite_decimal)]
"""Response ``*_fp`` fixed-point contract count string (2 decimals, may be negative)."""
Rfc3339 = Annotated[str, AfterValidator(_rfc3339)]
"""REST date-time string (RFC 3339, e.g. ``2026-09-18T00:20:00Z``)."""

_T = TypeVar("_T")
ListOrNull = Annotated[list[_T], BeforeValidator(_none_to_empty)]
"""A response list that may arrive as ``null`` (Go nil slice): read as ``[]``."""

PriceReq = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{1,3}\.[0-9]{2,4}$"), AfterValidator(_positive_decimal)
]
"""Request price: dollar string with 1–3 integer digits and 2–4 decimals, > 0 (``"0.56"``,
``"0.5600"``). The digit bound keeps a crafted 5,000-digit string out of the unit parsers."""
CountReq = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$"),
    AfterValidator(_positive_decimal),
]
"""Request count: fixed-point string with 1–10 integer digits and 0–2 decimals, > 0 (``"10"``,
``"10.00"``, ``"2.5"``)."""
CountReqOrZero = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}(\.[0-9]{1,2})?$")]
"""Request count that may be 0 (``reduce_to``)."""

MAX_TICKER_CHARS = 200
"""Longest ticker a request may name (the spec's ``maxLength`` on ``GET /markets/orderbooks``
tickers; Kalshi's own tickers are well under 100)."""
MAX_ID_CHARS = 64
"""Longest ``client_order_id`` / ``order_group_id`` / ``order_id`` a request may carry. Kalshi
does not document a bound (its ids are 36-character UUIDs; ours are shorter): a 10 MB
``client_order_id`` must not be stored and echoed by every later listing (issue 12 defect 5)."""
MAX_EXPIRATION_TIME = 4_102_444_800
"""Latest ``expiration_time`` accepted: 2100-01-01T00:00:00Z in unix seconds. Later (e.g.
253402300800, year 10000) cannot be rendered as an RFC 3339 time and broke every listing."""
TickerReq = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TICKER_CHARS)]
"""Request ticker: 1–200 characters."""
OptTickerReq = Annotated[str, StringConstraints(max_length=MAX_TICKER_CHARS)]
"""Request ticker filter (may be empty): at most 200 characters."""
IdReq = Annotated[str, StringConstraints(max_length=MAX_ID_CHARS)]
"""Request id (client order id, order group id): at most 64 characters."""
ExpirationReq = Annotated[int, Field(ge=0, le=MAX_EXPIRATION_TIME)]
"""Request ``expiration_time``: unix seconds, 0 – :data:`MAX_EXPIRATION_TIME`."""

BookSide = Literal["bid", "ask"]
"""YES-denominated book side: ``bid`` = buy YES, ``ask`` = sell YES (≡ buy NO at 1 − price)."""
OutcomeSide = Literal["yes", "no"]
OrderAction = Literal["buy", "sell"]
OrderStatus = Literal["resting", "canceled", "executed"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["fill_or_kill", "good_till_canceled", "immediate_or_cancel"]
SelfTradePreventionType = Literal["taker_at_cross", "maker"]
FeeType = Literal["quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees", "flat"]
MarketType = Literal["binary", "scalar"]
MarketStatus = Literal[
    "initialized", "inactive", "active", "closed", "determined", "disputed", "amended", "finalized"
]
MarketResult = Literal["yes", "no", "scalar", ""]
SettlementResult = Literal["yes", "no", "scalar"]
StrikeType = Literal[
    "greater", "greater_or_equal", "less", "less_or_equal", "between", "functional", "custom",
    "structured",
]
Subaccount = Annotated[int, Field(ge=0, le=63)]
"""0 = primary, 1–63 = subaccounts."""
ExchangeIndexReq = Annotated[int, Field(ge=-1)]
"""Request shard index; omit or ``-1`` to auto-route by ticker."""

PriceLevel = tuple[Dollars, CountFp]
"""One book level ``[price_dollars, count_fp]``."""


def _price(value: str, what: str) -> int:
    try:
        return parse_dollars(value)
    except InputError as exc:
        raise MalformedPayloadError(f"{what}: {exc}") from None


def _money(value: str, what: str, rounding: Rounding) -> int:
    try:
        return parse_dollars(value, rounding=rounding)
    except InputError as exc:
        raise MalformedPayloadError(f"{what}: {exc}") from None


def _count(value: str, what: str) -> int:
    try:
        return parse_count_fp(value)
    except InputError as exc:
        raise MalformedPayloadError(f"{what}: {exc}") from None


def _levels(levels: list[PriceLevel] | None, what: str) -> list[tuple[int, int]]:
    out = [(_price(p, what), _count(c, what)) for p, c in (levels or [])]
    out.sort()
    return out


def _exactly_one(model: BaseModel, a: str, b: str) -> None:
    if (getattr(model, a) is None) == (getattr(model, b) is None):
        raise ValueError(f"exactly one of {a!r} or {b!r} is required")
