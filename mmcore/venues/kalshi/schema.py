"""Kalshi Trade API v2 wire models (pydantic v2), shared by our REST/WS client and the local exchange.

The models describe the **current** wire shape (Aug 2026, reference/kalshi.md §0): V2 order
writes under ``/portfolio/events/orders`` (``side: bid|ask``, YES ``price`` dollar string,
``count`` fixed-point string), ``*_dollars`` price/money strings and ``*_fp`` count strings
everywhere. Names and required-ness follow ``reference/kalshi/openapi.yaml`` (components.schemas,
spec 3.28.0) and ``reference/kalshi/asyncapi.yaml`` (message payloads) exactly; where a class name
differs from the spec's it is noted, and aliases with the spec/brief names exist.

Rules of this file:

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

Sections: 0 shared types · 1 errors · 2 exchange, series, events, markets, milestones, trades ·
3 orderbook · 4 portfolio reads (orders, fills, positions, balance, settlements) · 5 order groups ·
6 V2 order writes · 7 WebSocket commands · 8 WebSocket server messages · 9 parsers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, TypeAdapter,
    ValidationError, model_validator,
)
from pydantic_core import PydanticCustomError

from mmcore.errors import InputError, InvalidRequestError, MalformedPayloadError
from mmcore.models import iso_to_ns
from mmcore.ticks import TickGrid
from mmcore.units import Rounding, parse_count_fp, parse_dollars

# =============================================================================================
# 0. Shared types
# =============================================================================================

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
    str, StringConstraints(pattern=r"^[0-9]+\.[0-9]{2,4}$"), AfterValidator(_positive_decimal)
]
"""Request price: dollar string with 2–4 decimals, > 0 (``"0.56"``, ``"0.5600"``)."""
CountReq = Annotated[
    str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]{1,2})?$"), AfterValidator(_positive_decimal)
]
"""Request count: fixed-point string with 0–2 decimals, > 0 (``"10"``, ``"10.00"``, ``"2.5"``)."""
CountReqOrZero = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]{1,2})?$")]
"""Request count that may be 0 (``reduce_to``)."""

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


# =============================================================================================
# 1. Errors
# =============================================================================================


class ErrorResponse(WireResponse):
    """``{"code", "message", "details"}`` — the current error body (all optional in the spec).

    Known codes include ``invalid_order`` (also ``"invalid order"`` with details
    ``"post only cross"``), ``invalid_order_size``, ``available_balance_too_low``,
    ``order_side_mismatch``, ``order_ticker_mismatch``, ``invalid_parameters``,
    ``MARKET_INACTIVE`` (kalshi.md §1.2).
    """

    code: str | None = None
    message: str | None = None
    details: str | None = None


def _decode_json(body: object) -> Any:
    if not isinstance(body, (bytes, bytearray, str)):
        return body  # already decoded (or None)
    text = body.decode("utf-8", errors="replace") if isinstance(body, (bytes, bytearray)) else body
    try:
        return json.loads(text)
    except ValueError:
        return text


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def parse_error_body(body: bytes | bytearray | str | Mapping[str, Any] | None) -> ErrorResponse:
    """Any Kalshi error body → :class:`ErrorResponse`. Never raises.

    Accepts the three shapes seen (kalshi.md §1.2): ``{"code","message","details"}``, the wrapper
    ``{"error": {"code","message","details"}}`` and the 429 body ``{"error": "too many requests"}``
    (→ ``code=None``, ``message="too many requests"``). Anything else (HTML from a proxy, empty
    body, other JSON) becomes ``code=None`` and the text, cut to 500 characters.
    """
    data = _decode_json(body)
    if isinstance(data, Mapping):
        inner = data.get("error")
        if isinstance(inner, Mapping):
            data = inner
        elif isinstance(inner, str) and "code" not in data and "message" not in data:
            return ErrorResponse(message=inner, details=_as_text(data.get("details")))
        if "code" in data or "message" in data or "details" in data:
            return ErrorResponse(
                code=_as_text(data.get("code")),
                message=_as_text(data.get("message")),
                details=_as_text(data.get("details")),
            )
        return ErrorResponse(message=json.dumps(data, separators=(",", ":"), default=str)[:500])
    if data is None:
        return ErrorResponse(message="")
    if isinstance(data, str):
        return ErrorResponse(message=data.strip()[:500])
    return ErrorResponse(message=json.dumps(data, separators=(",", ":"), default=str)[:500])


def parse_error(body: bytes | bytearray | str | Mapping[str, Any] | None) -> tuple[str | None, str]:
    """Any Kalshi error body → ``(code, message)``; never raises.

    ``code`` is ``None`` when the body has none (the 429 body, proxy pages). ``details``, when
    present and not already part of the message, is appended as ``"message: details"`` — it
    carries the useful part of e.g. ``invalid order`` / ``post only cross``. Use
    :func:`parse_error_body` for the three parts separately.
    """
    err = parse_error_body(body)
    message = err.message or ""
    if err.details and err.details not in message:
        message = f"{message}: {err.details}" if message else err.details
    return err.code, message


# =============================================================================================
# 2. Exchange, series, events, markets, milestones, trades
# =============================================================================================


class ExchangeIndexStatus(WireResponse):
    exchange_index: int
    description: str
    exchange_active: bool
    trading_active: bool
    intra_exchange_transfers_active: bool


class ExchangeStatus(WireResponse):
    """``GET /exchange/status`` (also the 503/504 body)."""

    exchange_active: bool
    trading_active: bool
    intra_exchange_transfers_active: bool | None = None
    exchange_estimated_resume_time: Rfc3339 | None = None
    exchange_index_statuses: list[ExchangeIndexStatus] | None = None


class GetUserDataTimestampResponse(WireResponse):
    """``GET /exchange/user_data_timestamp``: how fresh REST balance/orders/fills/positions are."""

    as_of_time: Rfc3339

    def as_of_ns(self) -> int:
        return iso_to_ns(self.as_of_time)


class SettlementSource(WireResponse):
    name: str = ""
    url: str = ""


class PriceRange(WireResponse):
    """One band of a market's tick grid, dollar strings (``start``/``end`` inclusive)."""

    start: Dollars
    end: Dollars
    step: Dollars


class MveSelectedLeg(WireResponse):
    event_ticker: str | None = None
    market_ticker: str | None = None
    side: str | None = None
    yes_settlement_value_dollars: Dollars | None = None


class Series(WireResponse):
    """A series (e.g. ``KXNFLGAME``): fee structure and settlement sources of its events."""

    ticker: str
    frequency: str
    title: str
    category: str
    tags: list[str] | None
    settlement_sources: list[SettlementSource] | None
    contract_url: str
    contract_terms_url: str
    product_metadata: dict[str, Any] | None = None
    fee_type: FeeType
    fee_multiplier: float
    additional_prohibitions: list[str] | None
    volume_fp: CountFp | None = None
    last_updated_ts: Rfc3339 | None = None
    exchange_index: int | None = None


class Market(WireResponse):
    """A binary (or scalar) market, e.g. ``KXNFLGAME-26SEP17DETBUF-DET`` (YES = Detroit wins).

    ``price_ranges`` is the authoritative tick grid (:meth:`tick_grid`); ``status`` values are
    the REST lifecycle states (``active`` = open for trading).
    """

    ticker: str
    event_ticker: str
    market_type: MarketType
    title: str | None = None  # deprecated
    subtitle: str | None = None  # deprecated
    yes_sub_title: str
    no_sub_title: str
    created_time: Rfc3339
    updated_time: Rfc3339
    open_time: Rfc3339
    close_time: Rfc3339
    expected_expiration_time: Rfc3339 | None = None
    expiration_time: Rfc3339 | None = None  # deprecated
    latest_expiration_time: Rfc3339
    settlement_timer_seconds: int
    status: MarketStatus
    yes_bid_dollars: Dollars
    yes_bid_size_fp: CountFp
    yes_ask_dollars: Dollars
    yes_ask_size_fp: CountFp
    no_bid_dollars: Dollars
    no_ask_dollars: Dollars
    last_price_dollars: Dollars
    volume_fp: CountFp
    volume_24h_fp: CountFp
    result: MarketResult
    can_close_early: bool
    open_interest_fp: CountFp
    notional_value_dollars: Dollars
    previous_yes_bid_dollars: Dollars
    previous_yes_ask_dollars: Dollars
    previous_price_dollars: Dollars
    liquidity_dollars: Dollars | None = None  # deprecated, always "0.0000"
    settlement_value_dollars: Dollars | None = None
    settlement_ts: Rfc3339 | None = None
    expiration_value: str
    occurrence_datetime: Rfc3339 | None = None
    fee_waiver_expiration_time: Rfc3339 | None = None
    early_close_condition: str | None = None
    strike_type: StrikeType | None = None
    floor_strike: float | None = None
    cap_strike: float | None = None
    functional_strike: str | None = None
    custom_strike: dict[str, Any] | None = None
    rules_primary: str
    rules_secondary: str
    mve_collection_ticker: str | None = None
    mve_selected_legs: list[MveSelectedLeg] | None = None
    primary_participant_key: str | None = None
    price_level_structure: str
    price_ranges: list[PriceRange]
    is_provisional: bool | None = None
    exchange_index: int | None = None

    def tick_grid(self) -> TickGrid:
        """The market's orderable price grid (:class:`mmcore.ticks.TickGrid`)."""
        try:
            return TickGrid.from_price_ranges(
                [{"start": r.start, "end": r.end, "step": r.step} for r in self.price_ranges]
            )
        except InputError as exc:
            raise MalformedPayloadError(f"{self.ticker}: price_ranges: {exc}") from None

    def yes_bid(self) -> int:
        return _price(self.yes_bid_dollars, "yes_bid_dollars")

    def yes_ask(self) -> int:
        return _price(self.yes_ask_dollars, "yes_ask_dollars")

    def last_price(self) -> int:
        return _price(self.last_price_dollars, "last_price_dollars")

    def open_time_ns(self) -> int:
        return iso_to_ns(self.open_time)

    def close_time_ns(self) -> int:
        return iso_to_ns(self.close_time)

    def expected_expiration_ns(self) -> int | None:
        t = self.expected_expiration_time
        return None if t is None else iso_to_ns(t)


class EventData(WireResponse):
    """An event (one sports game = one event with one market per outcome)."""

    event_ticker: str
    series_ticker: str
    sub_title: str
    title: str
    collateral_return_type: str
    mutually_exclusive: bool
    category: str | None = None  # deprecated
    strike_date: Rfc3339 | None = None
    strike_period: str | None = None
    markets: list[Market] | None = None  # only with ?with_nested_markets=true
    available_on_brokers: bool = False  # deprecated (spec-required, "always false")
    product_metadata: dict[str, Any] | None = None
    settlement_sources: list[SettlementSource] | None
    last_updated_ts: Rfc3339 | None = None
    fee_type_override: str | None = None
    fee_multiplier_override: float | None = None
    exchange_index: int | None = None


class Milestone(WireResponse):
    """A real-world occurrence (e.g. a ``football_game``); ``start_date`` is the game start."""

    id: str
    category: str
    type: str
    start_date: Rfc3339
    end_date: Rfc3339 | None = None
    related_event_tickers: list[str]
    title: str
    notification_message: str
    source_id: str | None = None
    source_ids: dict[str, str] | None = None
    details: dict[str, Any]
    primary_event_tickers: list[str]
    last_updated_ts: Rfc3339

    def start_ns(self) -> int:
        return iso_to_ns(self.start_date)


class Trade(WireResponse):
    """A public trade (``GET /markets/trades``)."""

    trade_id: str
    ticker: str
    count_fp: CountFp
    yes_price_dollars: Dollars
    no_price_dollars: Dollars
    taker_side: OutcomeSide | None = None  # deprecated
    taker_outcome_side: OutcomeSide
    taker_book_side: BookSide
    created_time: Rfc3339
    is_block_trade: bool

    def price(self) -> int:
        """YES price of the trade, price units."""
        return _price(self.yes_price_dollars, "yes_price_dollars")

    def count(self) -> int:
        return _count(self.count_fp, "count_fp")


class GetSeriesListResponse(WireResponse):
    series: ListOrNull[Series]


class GetSeriesResponse(WireResponse):
    series: Series


class GetEventsResponse(WireResponse):
    events: ListOrNull[EventData]
    milestones: list[Milestone] | None = None  # with ?with_milestones=true
    cursor: str = ""


class GetEventResponse(WireResponse):
    event: EventData
    markets: ListOrNull[Market] = Field(default_factory=list)  # deprecated: use event.markets


class GetMarketsResponse(WireResponse):
    markets: ListOrNull[Market]
    cursor: str = ""


class GetMarketResponse(WireResponse):
    market: Market


class GetMilestonesResponse(WireResponse):
    milestones: ListOrNull[Milestone]
    cursor: str = ""


class GetTradesResponse(WireResponse):
    trades: ListOrNull[Trade]
    cursor: str = ""


# =============================================================================================
# 3. Orderbook
# =============================================================================================


class OrderbookCountFp(WireResponse):
    """REST book: **bids only** per side, levels ``[price_dollars, count_fp]``.

    ``no_dollars`` are NO bids at NO-leg prices (a NO bid at 0.30 is a YES ask at 0.70). The
    level order on the wire is disputed (guide: ascending; endpoint text: best first), so the
    level helpers sort ascending themselves. An empty side may arrive absent or ``null``.
    Spec name ``OrderbookCountFp``; alias :data:`OrderbookFp`.
    """

    yes_dollars: ListOrNull[PriceLevel] = Field(default_factory=list)
    no_dollars: ListOrNull[PriceLevel] = Field(default_factory=list)

    def yes_levels(self) -> list[tuple[int, int]]:
        """YES bids as (price units, centi-contracts), ascending by price (best last)."""
        return _levels(self.yes_dollars, "yes_dollars")

    def no_levels(self) -> list[tuple[int, int]]:
        """NO bids (NO-leg prices) as (price units, centi-contracts), ascending (best last)."""
        return _levels(self.no_dollars, "no_dollars")


OrderbookFp = OrderbookCountFp


class GetMarketOrderbookResponse(WireResponse):
    """``GET /markets/{ticker}/orderbook``. Alias :data:`GetOrderbookResponse`."""

    orderbook_fp: OrderbookCountFp


GetOrderbookResponse = GetMarketOrderbookResponse


class MarketOrderbookFp(WireResponse):
    ticker: str
    orderbook_fp: OrderbookCountFp


class GetMarketOrderbooksResponse(WireResponse):
    """``GET /markets/orderbooks?tickers=A&tickers=B``."""

    orderbooks: ListOrNull[MarketOrderbookFp]


# =============================================================================================
# 4. Portfolio reads: orders, fills, positions, balance, settlements
# =============================================================================================


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


# =============================================================================================
# 5. Order groups (rolling 15-second matched-contracts limit, auto-cancel)
# =============================================================================================

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


# =============================================================================================
# 6. V2 order writes (/portfolio/events/orders…)
# =============================================================================================


class CreateOrderV2Request(WireRequest):
    """``POST /portfolio/events/orders`` → 201 :class:`CreateOrderV2Response`.

    ``side`` is the YES book side; ``price`` is the YES price. No ``type`` (market orders are
    gone), no ``buy_max_cost``. ``expiration_time`` (unix seconds) only with
    ``good_till_canceled`` (IOC/FOK with an expiry is rejected); whether it is in the past is
    the engine's check.
    """

    ticker: Annotated[str, Field(min_length=1)]
    client_order_id: str | None = None
    side: BookSide
    count: CountReq
    price: PriceReq
    expiration_time: Annotated[int, Field(ge=0)] | None = None
    time_in_force: TimeInForce
    post_only: bool | None = None
    self_trade_prevention_type: SelfTradePreventionType
    cancel_order_on_pause: bool | None = None
    reduce_only: bool | None = None
    subaccount: Subaccount | None = None
    order_group_id: str | None = None
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

    ticker: Annotated[str, Field(min_length=1)]
    side: BookSide
    price: PriceReq
    count: CountReq
    client_order_id: str | None = None
    updated_client_order_id: str | None = None
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
    market_ticker: str | None = None

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
    order_id: Annotated[str, Field(min_length=1)]
    subaccount: Subaccount | None = None
    exchange_index: ExchangeIndexReq | None = None
    market_ticker: str | None = None


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


# =============================================================================================
# 7. WebSocket commands (client → server)
# =============================================================================================

WsChannel = Literal[
    "orderbook_delta", "ticker", "trade", "fill", "market_positions", "market_lifecycle_v2",
    "multivariate_market_lifecycle", "communications", "order_group_updates", "user_orders",
    "cfbenchmarks_value", "pyth_value",
]
PRIVATE_CHANNELS = frozenset(
    {"orderbook_delta", "fill", "market_positions", "user_orders", "order_group_updates",
     "communications"}
)
"""Channels that need an authenticated connection (kalshi.md §3.4)."""

WS_ERROR_CODES: dict[int, str] = {
    1: "Unable to process message", 2: "Params required", 3: "Channels required",
    4: "Subscription IDs required", 5: "Unknown command", 6: "Already subscribed",
    7: "Unknown subscription ID", 8: "Unknown channel name", 9: "Authentication required",
    10: "Channel error", 11: "Invalid parameter", 12: "Exactly one subscription ID is required",
    13: "Unsupported action", 14: "Market Ticker required", 15: "Action required",
    16: "Market not found", 17: "Internal error", 18: "Command timeout",
    25: "Subscription buffer overflow", 26: "Per-subscription market limit exceeded",
    27: "Too many requests",
}
"""WS ``error`` codes used by the markets channels (kalshi.md §3.3; 19–24, 28 are for
communications/cfbenchmarks/pyth)."""
WS_TERMINAL_ERROR_CODES = frozenset({10, 17, 25})
"""After these the subscription is dead: resubscribe."""

CommandId = Annotated[int, Field(ge=0)]
"""Client-chosen command id; 0 means "no id"."""
Sid = Annotated[int, Field(ge=1)]
Seq = Annotated[int, Field(ge=1)]


def _ws_invalid(code: int, message: str) -> PydanticCustomError:
    """A validation error that carries the Kalshi WS error code the server should answer."""
    return PydanticCustomError("kalshi_ws", message, {"ws_code": code})


class SubscribeParams(WireRequest):
    """``subscribe`` params. ``market_ticker`` xor ``market_tickers``; ``market_id(s)`` only for
    ``ticker``. Whether a channel *needs* a market filter is the server's check (code 14)."""

    channels: Annotated[list[WsChannel], Field(min_length=1)]
    market_ticker: str | None = None
    market_tickers: list[str] | None = None
    market_id: str | None = None
    market_ids: list[str] | None = None
    send_initial_snapshot: bool | None = None
    skip_ticker_ack: bool | None = None
    use_yes_price: bool | None = None
    shard_factor: int | None = None
    shard_key: int | None = None
    index_ids: list[str] | None = None
    underlying_tickers: list[str] | None = None

    @model_validator(mode="after")
    def _filters(self) -> SubscribeParams:
        if self.market_ticker is not None and self.market_tickers is not None:
            raise _ws_invalid(11, "market_ticker and market_tickers are mutually exclusive")
        by_id = self.market_id is not None or self.market_ids is not None
        if self.market_id is not None and self.market_ids is not None:
            raise _ws_invalid(11, "market_id and market_ids are mutually exclusive")
        if by_id and (self.market_ticker is not None or self.market_tickers is not None):
            raise _ws_invalid(11, "market_id(s) and market_ticker(s) are mutually exclusive")
        if by_id and set(self.channels) != {"ticker"}:
            raise _ws_invalid(11, "market_id(s) are only supported on the ticker channel")
        if self.shard_key is not None and self.shard_factor is None:
            raise _ws_invalid(11, "shard_key requires shard_factor")
        return self

    def tickers(self) -> list[str]:
        """The market tickers asked for (``market_ticker`` or ``market_tickers``), maybe []."""
        if self.market_ticker is not None:
            return [self.market_ticker]
        return list(self.market_tickers or [])


class SubscribeCommand(WireRequest):
    id: CommandId
    cmd: Literal["subscribe"]
    params: SubscribeParams


class UnsubscribeParams(WireRequest):
    sids: Annotated[list[Sid], Field(min_length=1)]


class UnsubscribeCommand(WireRequest):
    id: CommandId
    cmd: Literal["unsubscribe"]
    params: UnsubscribeParams


class UpdateSubscriptionParams(WireRequest):
    """``update_subscription`` params: ``sid`` xor ``sids`` (exactly one element).

    ``add_markets``/``delete_markets`` need a market filter; ``get_snapshot`` (orderbook_delta
    only) takes ``market_tickers``/``market_ticker`` and re-sends ``orderbook_snapshot`` without
    changing the subscription.
    """

    sid: Sid | None = None
    sids: Annotated[list[Sid], Field(min_length=1, max_length=1)] | None = None
    market_ticker: str | None = None
    market_tickers: list[str] | None = None
    market_id: str | None = None
    market_ids: list[str] | None = None
    send_initial_snapshot: bool | None = None
    action: Literal["add_markets", "delete_markets", "get_snapshot"]

    @model_validator(mode="after")
    def _rules(self) -> UpdateSubscriptionParams:
        if (self.sid is None) == (self.sids is None):
            raise _ws_invalid(12, "exactly one of sid or sids (with one element) is required")
        if self.market_ticker is not None and self.market_tickers is not None:
            raise _ws_invalid(11, "market_ticker and market_tickers are mutually exclusive")
        has_tickers = self.market_ticker is not None or self.market_tickers is not None
        has_ids = self.market_id is not None or self.market_ids is not None
        if has_tickers and has_ids:
            raise _ws_invalid(11, "market_id(s) and market_ticker(s) are mutually exclusive")
        if self.action == "get_snapshot" and not has_tickers:
            raise _ws_invalid(14, "get_snapshot needs market_ticker(s)")
        if self.action != "get_snapshot" and not (has_tickers or has_ids):
            raise _ws_invalid(14, f"{self.action} needs market_ticker(s) or market_id(s)")
        return self

    def target_sid(self) -> int:
        return self.sid if self.sid is not None else self.sids[0]  # type: ignore[index]

    def tickers(self) -> list[str]:
        if self.market_ticker is not None:
            return [self.market_ticker]
        return list(self.market_tickers or [])


class UpdateSubscriptionCommand(WireRequest):
    id: CommandId
    cmd: Literal["update_subscription"]
    params: UpdateSubscriptionParams


class ListSubscriptionsCommand(WireRequest):
    id: CommandId
    cmd: Literal["list_subscriptions"]


AnyWsCommand = Union[
    SubscribeCommand, UnsubscribeCommand, UpdateSubscriptionCommand, ListSubscriptionsCommand
]
WsCommand = Annotated[AnyWsCommand, Field(discriminator="cmd")]
_WS_COMMAND = TypeAdapter(WsCommand)


# =============================================================================================
# 8. WebSocket server messages (server → client)
# =============================================================================================
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


# =============================================================================================
# 9. Parsers
# =============================================================================================

_M = TypeVar("_M", bound=BaseModel)
RawBody = Union[bytes, bytearray, str, Mapping[str, Any]]


def _summarise(exc: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "<body>"
        parts.append(f"{loc}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f"; … {more} more" if more > 0 else "")


_NOT_JSON = object()


def _load(body: RawBody) -> Any:
    """Decoded JSON, or ``_NOT_JSON``."""
    if isinstance(body, Mapping):
        return body
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return _NOT_JSON


def parse_response(model: type[_M], body: RawBody) -> _M:
    """Validate a venue response body (JSON bytes/str or decoded mapping) into ``model``;
    :class:`MalformedPayloadError` names the offending fields."""
    data = _load(body)
    if data is _NOT_JSON:
        raise MalformedPayloadError(f"{model.__name__}: body is not JSON")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayloadError(f"{model.__name__}: {_summarise(exc)}") from None


def parse_request(model: type[_M], body: RawBody) -> _M:
    """Validate a client request body into ``model`` (local exchange side);
    :class:`InvalidRequestError` (status 400, code ``invalid_parameters``) names the fields."""
    data = _load(body)
    if data is _NOT_JSON:
        raise InvalidRequestError(
            f"{model.__name__}: body is not JSON", status=400, code="invalid_parameters"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequestError(
            f"{model.__name__}: {_summarise(exc)}", status=400, code="invalid_parameters"
        ) from None


def parse_ws_message(data: RawBody) -> WsMessage:
    """One server WebSocket frame → its typed message (:class:`WsEnvelope` for unmodelled
    types). Raises :class:`MalformedPayloadError` for non-JSON, a missing ``type`` or a
    modelled message that does not validate."""
    obj = _load(data)
    if not isinstance(obj, Mapping) or not isinstance(obj.get("type"), str):
        raise MalformedPayloadError("ws message: not an object with a string 'type'")
    model = WS_MESSAGE_TYPES.get(obj["type"], WsEnvelope)
    try:
        return model.model_validate(obj)  # type: ignore[return-value]
    except ValidationError as exc:
        raise MalformedPayloadError(f"ws {obj['type']}: {_summarise(exc)}") from None


def parse_ws_command(data: RawBody) -> AnyWsCommand:
    """One client WebSocket frame → its command (local exchange side); raises
    :class:`InvalidRequestError` whose ``code`` is the Kalshi WS error code to answer with, as a
    string: 1 not a JSON object, 5 unknown command, 2 params missing, 3 channels missing,
    8 unknown channel, 4 sids missing, 12 not exactly one sid, 15 action missing,
    13 unsupported action, 14 market ticker required, 11 any other invalid parameter."""
    def bad(message: str, code: int) -> InvalidRequestError:
        return InvalidRequestError(message, code=str(code))

    obj = _load(data)
    if not isinstance(obj, Mapping):
        raise bad("ws command: not a JSON object", 1)
    cmd = obj.get("cmd")
    if cmd not in ("subscribe", "unsubscribe", "update_subscription", "list_subscriptions"):
        raise bad(f"ws command: unknown command {cmd!r}", 5)
    if cmd != "list_subscriptions" and not isinstance(obj.get("params"), Mapping):
        raise bad("ws command: params required", 2)
    try:
        return _WS_COMMAND.validate_python(obj)
    except ValidationError as exc:
        raise bad(f"ws {cmd}: {_summarise(exc)}", _ws_error_code(cmd, exc)) from None


def _ws_error_code(cmd: str, exc: ValidationError) -> int:
    """The Kalshi WS error code for the first validation error of a command (default 11)."""
    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"][1:])  # drop the discriminator tag
    kind = err["type"]
    if kind == "kalshi_ws":
        return int(err["ctx"]["ws_code"])  # type: ignore[index]
    if loc == ("params", "channels") and kind in ("missing", "too_short"):
        return 3
    if loc[:2] == ("params", "channels") and kind == "literal_error":
        return 8
    if loc == ("params", "sids") and cmd == "unsubscribe" and kind in ("missing", "too_short"):
        return 4
    if loc == ("params", "sids") and cmd == "update_subscription" and kind in ("too_short", "too_long"):
        return 12
    if loc == ("params", "action"):
        return 15 if kind == "missing" else 13
    return 11


__all__ = [
    # 0. shared types
    "WireResponse", "WireRequest", "Dollars", "CountFp", "Rfc3339", "ListOrNull", "PriceReq",
    "CountReq", "CountReqOrZero", "BookSide", "OutcomeSide", "OrderAction", "OrderStatus",
    "OrderType", "TimeInForce", "SelfTradePreventionType", "FeeType", "MarketType", "MarketStatus",
    "MarketResult", "SettlementResult", "StrikeType", "Subaccount", "ExchangeIndexReq", "PriceLevel",
    # 1. errors
    "ErrorResponse", "parse_error", "parse_error_body",
    # 2. exchange, series, events, markets, milestones, trades
    "ExchangeIndexStatus", "ExchangeStatus", "GetUserDataTimestampResponse", "SettlementSource",
    "PriceRange", "MveSelectedLeg", "Series", "Market", "EventData", "Milestone", "Trade",
    "GetSeriesListResponse", "GetSeriesResponse", "GetEventsResponse", "GetEventResponse",
    "GetMarketsResponse", "GetMarketResponse", "GetMilestonesResponse", "GetTradesResponse",
    # 3. orderbook
    "OrderbookCountFp", "OrderbookFp", "GetMarketOrderbookResponse", "GetOrderbookResponse",
    "MarketOrderbookFp", "GetMarketOrderbooksResponse",
    # 4. portfolio reads
    "Order", "Fill", "MarketPosition", "EventPosition", "GetOrderResponse", "GetOrdersResponse",
    "GetFillsResponse", "GetPositionsResponse", "IndexedBalance", "GetBalanceResponse",
    "Settlement", "GetSettlementsResponse",
    # 5. order groups
    "ORDER_GROUP_MAX_CONTRACTS", "OrderGroup", "GetOrderGroupsResponse", "GetOrderGroupResponse",
    "CreateOrderGroupRequest", "UpdateOrderGroupLimitRequest", "CreateOrderGroupResponse",
    # 6. V2 order writes
    "CreateOrderV2Request", "CreateOrderV2Response", "CancelOrderV2Response",
    "AmendOrderV2Request", "AmendOrderV2Response", "DecreaseOrderV2Request",
    "DecreaseOrderV2Response", "BatchCreateOrdersV2Request", "BatchCreateOrdersV2Item",
    "BatchCreateOrdersV2Response", "BatchCancelOrdersV2RequestOrder", "BatchCancelOrdersV2Request",
    "BatchCancelOrdersV2Item", "BatchCancelOrdersV2Response",
    # 7. WebSocket commands
    "WsChannel", "PRIVATE_CHANNELS", "WS_ERROR_CODES", "WS_TERMINAL_ERROR_CODES", "CommandId",
    "Sid", "Seq", "SubscribeParams", "SubscribeCommand", "UnsubscribeParams",
    "UnsubscribeCommand", "UpdateSubscriptionParams", "UpdateSubscriptionCommand",
    "ListSubscriptionsCommand", "AnyWsCommand", "WsCommand",
    # 8. WebSocket server messages
    "WsEnvelope", "SubscribedMsg", "SubscribedMessage", "UnsubscribedMessage", "OkMsg",
    "SubscriptionInfo", "OkMessage", "ErrorMsg", "ErrorMessage", "OrderbookSnapshotMsg",
    "OrderbookSnapshotMessage", "OrderbookDeltaMsg", "OrderbookDeltaMessage", "TickerMsg",
    "TickerMessage", "TradeMsg", "TradeMessage", "FillMsg", "FillMessage", "UserOrderMsg",
    "UserOrderMessage", "MarketPositionMsg", "MarketPositionMessage", "OrderGroupUpdateMsg",
    "OrderGroupUpdatesMessage", "LifecyclePriceRange", "MarketLifecycleV2Msg",
    "MarketLifecycleV2Message", "EventLifecycleMsg", "EventLifecycleMessage", "EventFeeUpdateMsg",
    "EventFeeUpdateMessage", "WsMessage", "WS_MESSAGE_TYPES",
    # 9. parsers
    "RawBody", "parse_response", "parse_request", "parse_ws_message", "parse_ws_command",
]
