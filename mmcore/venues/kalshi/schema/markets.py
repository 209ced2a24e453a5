"""Market data: exchange status, series, events, markets, milestones, public trades and the
REST orderbook, with their ``GET`` response wrappers.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mmcore.errors import InputError, MalformedPayloadError
from mmcore.models import iso_to_ns
from mmcore.ticks import TickGrid
from mmcore.venues.kalshi.schema.common import (
    BookSide, CountFp, Dollars, FeeType, ListOrNull, MarketResult, MarketStatus, MarketType,
    OutcomeSide, PriceLevel, Rfc3339, StrikeType, WireResponse, _count, _levels, _price,
)


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


# --- orderbook ---


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
