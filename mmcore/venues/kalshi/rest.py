"""Kalshi Trade API v2 REST client (httpx, async): the transport layer of the Kalshi adapter.

Layers (style item 11): the wire models and their parsers live in
:mod:`mmcore.venues.kalshi.schema`; section 2 below holds the **pure** functions that turn a status
and a body into our types or into the error tree (no I/O, fuzzable); :class:`KalshiRest` is the
transport: signing, rate limiting, retries, timing (order writes over the lean HTTP/1.1 pool of
:mod:`mmcore.venues.kalshi.wire`, reads over httpx). It speaks the current API shape (V2 order
writes under ``/portfolio/events/orders``, ``*_dollars`` / ``*_fp`` strings) and returns our units:
prices and money in $0.0001 ints, counts in centi-contracts, times in ns (:mod:`mmcore.units`).

Calling order::

    async with KalshiRest(url, Signer(key_id, load_private_key(path)),
                          limiter=RateLimiter.for_tier("basic")) as rest:
        await rest.refill_presigned()          # from the worker's idle timer, e.g. once a second
        ack = await rest.create_order(Quote("KX…-DET", "bid", 4_500, 1_000), "mm-1")
        live = await rest.get_orders(event_ticker="KX…")   # the truth, not the ack

Rules of this file:

- **Signing.** Every authenticated request signs ``timestamp_ms + METHOD + path`` where ``path`` is
  taken from the final request URL (so it includes ``/trade-api/v2`` whatever ``base_url`` holds,
  and never the query). Market data (exchange status, events, markets, milestones) goes unsigned;
  the order book is signed when we have a key (the spec marks it authenticated, the guide says
  public). **Pre-signing** (:mod:`mmcore.venues.kalshi.presign`): batch create, batch cancel,
  single create (:data:`HOT_PATHS`) and the amend / single cancel of each order we know rests
  take headers prepared off the hot path by :meth:`KalshiRest.refill_presigned`; the write calls
  below register, touch and drop the per-order pools from their replies. A path without a usable
  entry is signed live. ``presigned_used`` / ``live_signed`` count both.
- **Rate limits.** With a :class:`~mmcore.venues.kalshi.ratelimit.RateLimiter`, each attempt
  first acquires its endpoint's tokens (cancels with priority ``cancel``); a 429 empties our
  mirror of the bucket.
- **Retries** only on 429, 5xx, connection errors and timeouts, at most ``max_retries`` times,
  after ``backoff_s · 2**attempt · U(1, 1.25)`` seconds capped at ``max_backoff_s`` (Kalshi sends
  no ``Retry-After``). Any other 4xx is raised at once. Whether a call is retried after a failure
  that may have executed at the venue (5xx, read timeout, dropped connection — "ambiguous") depends
  on the call:

  ============================  ================================================================
  call                          retried after an ambiguous failure?
  ============================  ================================================================
  GETs, cancel, batch cancel,   yes — idempotent (a repeated cancel reduces by 0; amend sets an
  amend, decrease(reduce_to),   absolute price and total count; reduce_to is absolute)
  group trigger/reset/delete
  create, batch create          yes, **with the same client_order_id** (we generate one if none
                                is given): the venue refuses a duplicate with 409, and a 409 after
                                an ambiguous attempt is resolved by reading the order back by its
                                client_order_id (``GET /portfolio/orders?ticker=…``); the ack then
                                has ``recovered=True``. A 409 on a first attempt is the caller's
                                reuse of an id: :class:`ConflictError`.
  decrease(reduce_by),          no — not idempotent and no key to deduplicate on; retried only
  create_order_group            when it surely did not execute (429, connection refused)
  ============================  ================================================================

- **Errors** (one tree, :mod:`mmcore.errors`): 401/403 :class:`AuthError`, 404
  :class:`NotFoundError`, 409 :class:`ConflictError`, other 4xx :class:`InvalidRequestError`,
  429 :class:`RateLimitedError`, 5xx/connection :class:`VenueUnavailableError`, timeouts
  :class:`VenueTimeoutError`, unparseable 2xx :class:`MalformedPayloadError`. The error body is
  read with :func:`~mmcore.venues.kalshi.schema.parse_error` (all three shapes).
- **Acks are not the truth.** Write acks carry what the venue said plus ``latency_ns`` (request
  fully written → response read, ns, monotonic) and ``received_ns`` (local wall clock). Cancel and
  amend acks may describe a different order (kalshi.md §7.2): reconcile from WS ``user_orders`` /
  fills or :meth:`KalshiRest.get_orders`.
- Never logged: the key, signatures, auth headers. Logged at DEBUG: method, path, status, latency.

This module is longer than the ~600-line guideline; pre-signing has moved to
:mod:`~mmcore.venues.kalshi.presign`, and section 2 (pure) would be the next to move out.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import quote as _urlquote
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel

from mmcore.book import MarketBook
from mmcore.errors import (
    AuthError, ConfigError, ConflictError, InputError, InvalidRequestError, MalformedPayloadError,
    NotFoundError, RateLimitedError, VenueError, VenueProtocolError, VenueTimeoutError,
    VenueUnavailableError,
)
from mmcore.models import iso_to_ns
from mmcore.orders import LiveOrder, Place, Quote, Side
from mmcore.units import PRICE_ONE, format_count_fp, format_dollars, parse_count_fp, parse_dollars
from mmcore.venues.kalshi import schema as s
from mmcore.venues.kalshi.auth import REST_PATH_PREFIX, Signer, load_private_key
from mmcore.venues.kalshi.presign import (
    PRESIGN_AMEND_SIZE, PRESIGN_CANCEL_SIZE, PRESIGN_LIFETIME_MS, PRESIGN_ORDER_CAP,
    PRESIGN_REFRESH_MS, PRESIGN_SIZE, RequestPresigner,
)
from mmcore.venues.kalshi.ratelimit import Priority, RateLimiter, endpoint_cost
from mmcore.venues.kalshi.wire import (
    WireConnectTimeout, WireError, WirePool, WireReadTimeout, dumps_body,
)
from mmcore.venues.retry import backoff_s, should_retry

if TYPE_CHECKING:
    from mmcore.settings import Settings

__all__ = [
    "OrderParams", "OrderAck", "CancelAck", "AmendAck", "DecreaseAck", "ItemError", "Orderbook",
    "Position", "OwnFill", "GameStart", "TYPICAL_GAME_LENGTH_S", "DEFAULT_GAME_LENGTH_S",
    "error_for", "item_error", "live_order", "order_body", "game_length_s",
    "start_from_milestones", "new_client_order_id", "KalshiRest", "RequestPresigner",
]

log = logging.getLogger("mmcore.venues.kalshi.rest")

TimeInForce = Literal["good_till_canceled", "immediate_or_cancel", "fill_or_kill"]
Stp = Literal["taker_at_cross", "maker"]
RetryClass = Literal["idempotent", "keyed", "unsafe"]

MAX_BACKOFF_S = 2.0
ORDERS_PAGE_LIMIT = 200
"""Page size for portfolio lists (the current spec allows 1000, the older one 200)."""
EVENTS_PAGE_LIMIT = 200
MARKETS_PAGE_LIMIT = 1000
MILESTONES_PAGE_LIMIT = 500
MAX_PAGES = 1000

BATCH_CREATE_PATH = "/portfolio/events/orders/batched"
CREATE_PATH = "/portfolio/events/orders"
HOT_PATHS: tuple[tuple[str, str], ...] = (
    ("POST", BATCH_CREATE_PATH), ("DELETE", BATCH_CREATE_PATH), ("POST", CREATE_PATH),
)
"""(method, path below /trade-api/v2) with pre-signed headers."""
ORDER_PATH = "/portfolio/events/orders/{order_id}"
"""Single cancel (``DELETE``); with ``/amend`` the amend (``POST``): per-order pre-signed pools."""

TYPICAL_GAME_LENGTH_S: dict[str, float] = {
    "KXNBA": 9000.0, "KXWNBA": 8400.0, "KXNCAAMB": 7800.0, "KXNCAAWB": 7800.0, "KXNHL": 9000.0,
    "KXNFL": 11700.0, "KXNCAAF": 12600.0, "KXMLB": 10800.0, "KXEPL": 6900.0, "KXUCL": 6900.0,
    "KXLALIGA": 6900.0, "KXSERIEA": 6900.0, "KXBUNDESLIGA": 6900.0, "KXMLS": 6900.0,
}
"""Scheduled start → ``expected_expiration_time``, by series prefix (longest prefix wins); only
for :meth:`KalshiRest.game_start` when an event has no milestone."""
DEFAULT_GAME_LENGTH_S = 10800.0


# =============================================================================================
# 1. Our types
# =============================================================================================


@dataclass(frozen=True, slots=True)
class OrderParams:
    """Everything one V2 create carries. ``quote`` is YES terms (price units, centi-contracts);
    ``expiration_ns`` only with ``good_till_canceled``."""

    quote: Quote
    client_order_id: str
    post_only: bool = True
    time_in_force: TimeInForce = "good_till_canceled"
    cancel_order_on_pause: bool = True
    order_group_id: str | None = None
    reduce_only: bool = False
    self_trade_prevention_type: Stp = "taker_at_cross"
    expiration_ns: int | None = None


@dataclass(frozen=True, slots=True)
class OrderAck:
    """The venue's answer to a create. Counts are centi-contracts of **this call** (for
    ``recovered`` acks: the order's totals as read back). ``average_fill_price`` is price units
    (nearest), ``average_fee_paid`` money per contract (rounded up); both None without fills.
    ``exchange_ns`` is the venue's ``ts_ms`` in ns; ``received_ns`` our wall clock at receipt;
    ``latency_ns`` request written → response read of the successful attempt."""

    order_id: str
    client_order_id: str | None
    fill_count: int
    remaining_count: int
    latency_ns: int
    received_ns: int
    exchange_ns: int | None = None
    average_fill_price: int | None = None
    average_fee_paid: int | None = None
    attempts: int = 1
    recovered: bool = False
    """True when a retry hit 409 and the order was found by its client_order_id."""


@dataclass(frozen=True, slots=True)
class CancelAck:
    """What a cancel reply *says*. ``order_id`` is the reply's, ``requested_order_id`` ours; they
    can differ (kalshi.md §7.2) — see :meth:`KalshiRest.cancel_order`."""

    order_id: str
    requested_order_id: str
    client_order_id: str | None
    reduced_by: int
    latency_ns: int
    received_ns: int
    exchange_ns: int | None = None
    attempts: int = 1

    @property
    def mismatched(self) -> bool:
        return self.order_id != self.requested_order_id


@dataclass(frozen=True, slots=True)
class AmendAck:
    """An amend reply; ``remaining_count`` / ``fill_count`` only when the amend changed size or
    filled (centi-contracts). May describe a different order (kalshi.md §7.2)."""

    order_id: str
    requested_order_id: str
    client_order_id: str | None
    remaining_count: int | None
    fill_count: int | None
    latency_ns: int
    received_ns: int
    exchange_ns: int | None = None
    average_fill_price: int | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class DecreaseAck:
    order_id: str
    requested_order_id: str
    client_order_id: str | None
    remaining_count: int
    latency_ns: int
    received_ns: int
    exchange_ns: int | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class ItemError:
    """One refused item of a batch: ``index`` in the request, the id we sent (client order id
    for creates, order id for cancels), the venue's code and message."""

    index: int
    id: str | None
    code: str | None
    message: str

    @property
    def error(self) -> VenueError:
        """The item's refusal as an error-tree instance (no HTTP status per item)."""
        code = (self.code or "").lower()
        text = f"batch item {self.index} ({self.id}): {self.message}"
        if "duplicate" in code:
            return ConflictError(text, code=self.code)
        if "not_found" in code or "not found" in code:
            return NotFoundError(text, code=self.code)
        if "unauthor" in code or "forbidden" in code:
            return AuthError(text, code=self.code)
        return InvalidRequestError(text, code=self.code)


@dataclass(frozen=True, slots=True)
class Orderbook:
    """A REST book snapshot: **bids only** per leg, ``(price units, centi-contracts)`` ascending
    (best last). ``no`` levels are at NO-leg prices (a NO bid at n is a YES ask at 1 − n)."""

    ticker: str
    yes: tuple[tuple[int, int], ...]
    no: tuple[tuple[int, int], ...]
    received_ns: int

    @property
    def yes_asks(self) -> tuple[tuple[int, int], ...]:
        """NO bids as YES asks, ascending by YES price (best first)."""
        return tuple(sorted((PRICE_ONE - p, n) for p, n in self.no))

    def to_market_book(self) -> MarketBook:
        book = MarketBook(self.ticker)
        book.apply_snapshot(self.yes, self.no, use_yes_price=False, receipt_ns=self.received_ns)
        return book


@dataclass(frozen=True, slots=True)
class Position:
    """One unsettled market position. ``position`` signed centi-contracts (+YES / −NO); money
    fields in price units ($0.0001; exposure and P&L rounded to nearest, fees up)."""

    market: str
    position: int
    exposure: int
    total_traded: int
    realized_pnl: int
    fees_paid: int
    last_updated_ns: int


@dataclass(frozen=True, slots=True)
class OwnFill:
    """One of our fills: ``side`` is the book side of our order, ``price`` the YES price,
    ``count`` centi-contracts, ``fee`` money (rounded up), ``ts_ns`` the venue's time."""

    fill_id: str
    order_id: str
    market: str
    side: Side
    price: int
    count: int
    is_taker: bool
    fee: int
    ts_ns: int | None


@dataclass(frozen=True, slots=True)
class GameStart:
    """A game's scheduled start. ``source`` is ``milestone`` (authoritative) or
    ``expected_expiration`` (an estimate: earliest market ``expected_expiration_time`` minus a
    typical game length for the series)."""

    event_ticker: str
    start_ns: int
    source: Literal["milestone", "expected_expiration"]


# =============================================================================================
# 2. Pure parsing: status + body → our types or the error tree
# =============================================================================================


def error_for(status: int, body: bytes | str, *, what: str = "") -> VenueError:
    """Map a non-2xx reply to the error tree (any of Kalshi's three error body shapes)."""
    code, message = s.parse_error(body)
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    msg = f"{what}: {message or f'HTTP {status}'}" if what else (message or f"HTTP {status}")
    kw: dict[str, Any] = {"status": status, "code": code, "body": text[:500]}
    if status in (401, 403):
        return AuthError(msg, **kw)
    if status == 404:
        return NotFoundError(msg, **kw)
    if status == 409:
        return ConflictError(msg, **kw)
    if status == 429:
        return RateLimitedError(msg, retry_after_s=None, **kw)
    if status >= 500:
        return VenueUnavailableError(msg, **kw)
    if 400 <= status < 500:
        return InvalidRequestError(msg, **kw)
    return VenueProtocolError(f"unexpected HTTP {status}: {msg}", **kw)


def item_error(index: int, id_: str | None, err: s.ErrorResponse) -> ItemError:
    code = err.code
    message = err.message or ""
    if err.details and err.details not in message:
        message = f"{message}: {err.details}" if message else err.details
    return ItemError(index, id_, code, message)


def _opt_price(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_dollars(value, rounding="nearest")
    except InputError as exc:
        raise MalformedPayloadError(f"{what}: {exc}") from None


def _opt_money_up(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_dollars(value, rounding="up")
    except InputError as exc:
        raise MalformedPayloadError(f"{what}: {exc}") from None


def _count(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        return parse_count_fp(value)
    except InputError as exc:
        raise MalformedPayloadError(f"{what}: {exc}") from None


def _ms_to_ns(ts_ms: int | None) -> int | None:
    return None if ts_ms is None else ts_ms * 1_000_000


def _iso_ns(value: str | None) -> int | None:
    return None if value is None else iso_to_ns(value)


def live_order(o: s.Order) -> LiveOrder:
    """A read-back order as our :class:`LiveOrder` (``placed_ns`` = last update, else creation,
    else 0)."""
    placed = _iso_ns(o.last_update_time) or _iso_ns(o.created_time) or 0
    return LiveOrder(o.order_id, o.client_order_id or None, o.ticker, o.book_side, o.price(),
                     o.remaining_count(), o.fill_count(), placed)


def order_body(p: OrderParams) -> dict[str, Any]:
    """The ``CreateOrderV2Request`` JSON for ``p`` (validated: count > 0, 0 < price < $1)."""
    q = p.quote
    if q.side not in ("bid", "ask"):
        raise InputError(f"side must be 'bid' or 'ask', got {q.side!r}")
    if not 0 < q.price < PRICE_ONE:
        raise InputError(f"price must be in (0, {PRICE_ONE}) price units, got {q.price}")
    if q.count <= 0:
        raise InputError(f"count must be > 0 centi-contracts, got {q.count}")
    if not p.client_order_id:
        raise InputError("client_order_id is required (it is what makes a retry safe)")
    body: dict[str, Any] = {
        "ticker": q.market, "side": q.side, "count": format_count_fp(q.count),
        "price": format_dollars(q.price), "time_in_force": p.time_in_force,
        "self_trade_prevention_type": p.self_trade_prevention_type,
        "client_order_id": p.client_order_id, "post_only": p.post_only,
        "cancel_order_on_pause": p.cancel_order_on_pause, "reduce_only": p.reduce_only,
    }
    if p.order_group_id is not None:
        body["order_group_id"] = p.order_group_id
    if p.expiration_ns is not None:
        body["expiration_time"] = p.expiration_ns // 1_000_000_000
    return body


def _ack_from_create(r: s.CreateOrderV2Response | s.BatchCreateOrdersV2Item, reply: _Reply,
                     cid: str) -> OrderAck:
    if r.order_id is None:
        raise MalformedPayloadError("create reply without order_id")
    return OrderAck(
        order_id=r.order_id, client_order_id=r.client_order_id or cid,
        fill_count=_count(r.fill_count, "fill_count") or 0,
        remaining_count=_count(r.remaining_count, "remaining_count") or 0,
        latency_ns=reply.latency_ns, received_ns=reply.received_ns,
        exchange_ns=_ms_to_ns(r.ts_ms),
        average_fill_price=_opt_price(r.average_fill_price, "average_fill_price"),
        average_fee_paid=_opt_money_up(r.average_fee_paid, "average_fee_paid"),
        attempts=reply.attempts)


def _ack_from_order(o: s.Order, reply: _Reply) -> OrderAck:
    return OrderAck(
        order_id=o.order_id, client_order_id=o.client_order_id, fill_count=o.fill_count(),
        remaining_count=o.remaining_count(), latency_ns=reply.latency_ns,
        received_ns=reply.received_ns, exchange_ns=_iso_ns(o.last_update_time),
        attempts=reply.attempts, recovered=True)


def _position(p: s.MarketPosition) -> Position:
    return Position(
        market=p.ticker, position=p.position(),
        exposure=_opt_price(p.market_exposure_dollars, "market_exposure_dollars") or 0,
        total_traded=_opt_price(p.total_traded_dollars, "total_traded_dollars") or 0,
        realized_pnl=_opt_price(p.realized_pnl_dollars, "realized_pnl_dollars") or 0,
        fees_paid=_opt_money_up(p.fees_paid_dollars, "fees_paid_dollars") or 0,
        last_updated_ns=iso_to_ns(p.last_updated_ts))


def _own_fill(f: s.Fill) -> OwnFill:
    ts = f.created_ns()
    if ts is None and f.ts is not None:
        ts = f.ts * 1_000_000_000
    return OwnFill(f.fill_id, f.order_id, f.ticker, f.book_side, f.price(), f.count(), f.is_taker,
                   f.fee(), ts)


def game_length_s(series_or_event_ticker: str) -> float:
    """Typical start → expected expiration for a series (longest matching prefix)."""
    best = ""
    for prefix in TYPICAL_GAME_LENGTH_S:
        if series_or_event_ticker.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return TYPICAL_GAME_LENGTH_S[best] if best else DEFAULT_GAME_LENGTH_S


def start_from_milestones(event_ticker: str, milestones: Iterable[s.Milestone]) -> int | None:
    """Earliest ``start_date`` among milestones naming the event as primary, else as related."""
    ms = list(milestones)
    for pick in (lambda m: event_ticker in m.primary_event_tickers,
                 lambda m: event_ticker in m.related_event_tickers):
        starts = [m.start_ns() for m in ms if pick(m)]
        if starts:
            return min(starts)
    return None


# =============================================================================================
# 3. Transport
# =============================================================================================

_M = TypeVar("_M", bound=BaseModel)


@dataclass(slots=True)
class _Reply:
    status: int
    body: bytes
    latency_ns: int
    received_ns: int
    attempts: int = 1
    after_ambiguous: bool = False
    """An earlier attempt of this call failed in a way that may have executed at the venue."""


class _AttemptFailed(Exception):
    def __init__(self, error: VenueError, maybe_executed: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.maybe_executed = maybe_executed


class KalshiRest:
    """Async Kalshi REST client (policies in the module docstring).

    ``base_url`` with or without ``/trade-api/v2`` (it is added when missing). ``signer`` None
    gives a public-data-only client. Injectables for tests and benchmarks: ``client`` (an
    ``httpx.AsyncClient`` you own), ``clock_ns`` (wall clock: signature timestamps and
    ``received_ns``), ``sleep`` (seconds, awaited between retries) and ``rng`` (jitter).
    Counters: ``presigned_used``, ``live_signed``, ``requests``, ``retries``, ``rate_limited``.

    Order writes (every non-GET call) go over :attr:`wire`, a lean keep-alive HTTP/1.1
    :class:`~mmcore.venues.kalshi.wire.WirePool` (~0.05 ms of Python per write against ~1 ms for
    httpx), with the same limiter, retries, error mapping and signing; reads stay on httpx.
    ``wire=False`` sends writes through httpx too; ``wire=None`` (default) means the lean path
    unless ``client`` is given (an injected httpx client then carries every request).

    Pre-signing (``presign=True`` with a signer; ``presign=False`` keeps no pools at all and signs
    every request live) is a :class:`~mmcore.venues.kalshi.presign.RequestPresigner`: the
    ``presign_*`` parameters are its pool sizes and timings (``presign_lifetime_ms``,
    ``presign_refresh_ms`` in ms). Entries are stamped when signed and replaced as they are
    used, by a background refill scheduled after the write that took one (signed in a thread,
    never on the loop), and as they age by :meth:`refill_presigned` (about once a second).
    Pool sizes and CPU cost are in :mod:`~mmcore.venues.kalshi.presign`: idle, ~5 + 0.9 per
    live order signatures/s; in use one per pre-signed request — ~1 ms less per amend, cancel
    or create on the hot path.
    """

    def __init__(
        self,
        base_url: str,
        signer: Signer | None,
        *,
        limiter: RateLimiter | None = None,
        timeout_s: float = 5.0,
        max_retries: int = 3,
        backoff_s: float = 0.1,
        max_backoff_s: float = MAX_BACKOFF_S,
        clock_ns: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
        client: httpx.AsyncClient | None = None,
        presign: bool = True,
        presign_lifetime_ms: int = PRESIGN_LIFETIME_MS,
        presign_refresh_ms: int = PRESIGN_REFRESH_MS,
        presign_size: int = PRESIGN_SIZE,
        presign_order_cap: int = PRESIGN_ORDER_CAP,
        presign_amend_size: int = PRESIGN_AMEND_SIZE,
        presign_cancel_size: int = PRESIGN_CANCEL_SIZE,
        max_connections: int = 8,
        wire: bool | None = None,
    ) -> None:
        # written so that NaN fails too
        if max_retries < 0 or not (backoff_s >= 0 and max_backoff_s >= 0 and timeout_s > 0):
            raise InputError("max_retries, backoff_s, max_backoff_s must be >= 0 and timeout_s > 0")
        url = base_url.rstrip("/")
        if not urlsplit(url).path.rstrip("/").endswith(REST_PATH_PREFIX):
            url += REST_PATH_PREFIX
        self.base_url = url
        self._base_path = urlsplit(url).path
        self.signer = signer
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._owns_client = client is None
        self._http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections, keepalive_expiry=60.0),
            http1=True, http2=False, headers={"User-Agent": "kalshi-sports-mm"},
        )
        # order writes over the lean transport (mmcore.venues.kalshi.wire); None: unless an
        # httpx client was injected (it then carries every request, as fault tests expect)
        use_wire = client is None if wire is None else wire
        self.wire: WirePool | None = (
            WirePool(url, timeout_s=timeout_s, max_connections=max_connections)
            if use_wire else None)
        self._presigner = RequestPresigner(
            signer if presign else None,
            [(method, self._base_path + rel) for method, rel in HOT_PATHS],
            self._order_signed_paths, clock_ns=clock_ns, lifetime_ms=presign_lifetime_ms,
            refresh_ms=presign_refresh_ms, size=presign_size, order_cap=presign_order_cap,
            amend_size=presign_amend_size, cancel_size=presign_cancel_size)
        self.presigned_used = 0
        self.live_signed = 0
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0

    @classmethod
    def from_settings(cls, settings: Settings, *, signer: Signer | None = None,
                      **kw: Any) -> KalshiRest:
        """Client for ``settings.kalshi_url``. The key comes from ``KALSHI_API_KEY_ID`` and
        ``KALSHI_PRIVATE_KEY_PATH`` unless ``signer`` is given — for venue ``sim`` the caller
        passes the key it registered with the local exchange. Default limiter: Basic tier."""
        if signer is None:
            key_id, path = settings.kalshi_api_key_id, settings.kalshi_private_key_path
            if key_id and path:
                signer = Signer(key_id, load_private_key(path))
            elif settings.venue == "sim":
                raise ConfigError("venue sim: pass signer= with the key registered at the local "
                                  "exchange (or set KALSHI_API_KEY_ID and KALSHI_PRIVATE_KEY_PATH)")
            else:
                raise ConfigError(f"venue {settings.venue}: KALSHI_API_KEY_ID and "
                                  "KALSHI_PRIVATE_KEY_PATH must both be set")
        kw.setdefault("limiter", RateLimiter.for_tier("basic"))
        kw.setdefault("wire", settings.write_transport == "wire")
        return cls(settings.kalshi_url, signer, **kw)

    def __repr__(self) -> str:
        key = self.signer.key_id if self.signer else None
        return f"KalshiRest(base_url={self.base_url!r}, key_id={key!r})"

    async def __aenter__(self) -> KalshiRest:
        await self.refill_presigned()
        if self.wire is not None and self.signer is not None:
            await self.wire.warm(1)  # the first write finds a connection (failures ignored)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._presigner.close()
        if self.wire is not None:
            await self.wire.aclose()
        if self._owns_client:
            await self._http.aclose()

    # --- pre-signing (the pools: mmcore.venues.kalshi.presign) -------------------------------

    @property
    def has_presign_pools(self) -> bool:
        """True when this client pre-signs at all (a signer and ``presign=True``): then
        :meth:`refill_presigned` has work to do and should run about once a second."""
        return self._presigner.has_pools

    @property
    def presign_order_cap(self) -> int:
        """Orders with per-order pools at most (least recently used evicted)."""
        return self._presigner.order_cap

    @presign_order_cap.setter
    def presign_order_cap(self, cap: int) -> None:
        self._presigner.order_cap = cap

    async def refill_presigned(self) -> int:
        """Top up the pre-signed pools (RSA work; call off the hot path, e.g. from an idle
        timer once a second). Returns the number of signatures made. The signing runs in the
        presigner's thread, never holding the loop; a call made during another refill waits for
        it and returns 0
        (:meth:`RequestPresigner.refill <mmcore.venues.kalshi.presign.RequestPresigner.refill>`)."""
        return await self._presigner.refill()

    @property
    def presign_signatures(self) -> int:
        """RSA signatures made for the pools so far (background and periodic refills)."""
        return self._presigner.signed

    def presigned_available(self) -> dict[str, int]:
        """Usable pre-signed entries per pre-signed path (hot paths, then per-order), now."""
        return self._presigner.available()

    @property
    def presigned_orders(self) -> list[str]:
        """Order ids with per-order pools, least recently used first."""
        return self._presigner.orders

    def _order_signed_paths(self, order_id: str) -> tuple[str, str]:
        """The paths :meth:`_send_once` will sign for this order's cancel and amend (built the
        same way: from the final request URL)."""
        cancel = httpx.URL(self.base_url + ORDER_PATH.format(order_id=_seg(order_id))).raw_path
        cancel_path = cancel.decode("ascii").split("?", 1)[0]
        return cancel_path, cancel_path + "/amend"

    def presign_order(self, order_id: str) -> bool:
        """Keep pre-signed amend and cancel headers for ``order_id`` (an order we know rests,
        e.g. one adopted at reconcile); create acks register their orders by themselves. Marks
        the order most recently used; over ``presign_order_cap`` the least recently used order
        is dropped. Costs nothing now: the pools are signed at the next
        :meth:`refill_presigned`. False (and nothing kept) when this client does not pre-sign."""
        return self._presigner.register(order_id)

    def forget_order(self, order_id: str) -> bool:
        """Drop ``order_id``'s pre-signed pools (the order is done); True if it had any."""
        return self._presigner.forget(order_id)

    def _track_order(self, order_id: str | None, remaining: int | None) -> None:
        """After a write's reply: pools kept for an order that rests, dropped for one that does
        not (``remaining`` 0). Never raises."""
        self._presigner.track(order_id, remaining)

    def _auth_headers(self, method: str, path: str) -> dict[str, str]:
        assert self.signer is not None
        now_ms = self._clock_ns() // 1_000_000
        got = self._presigner.take(method, path, now_ms)
        if got is not None:
            self.presigned_used += 1
            return got
        self.live_signed += 1
        return self.signer.headers(method, path, timestamp_ms=now_ms)

    # --- one request --------------------------------------------------------------------------

    async def _send_once(self, method: str, path: str, params: Mapping[str, Any] | None,
                         body: Any, auth: bool) -> _Reply:
        if self.wire is not None and method != "GET" and not params:
            return await self._send_wire(method, path, body, auth)
        request = self._http.build_request(method, self.base_url + path, params=params,
                                           json=body)
        signed_path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        if auth:
            if self.signer is None:
                raise AuthError(f"{method} {path}: needs an API key and this client has none")
            request.headers.update(self._auth_headers(method, signed_path))
        marks: dict[str, int] = {}

        async def trace(name: str, info: Mapping[str, Any]) -> None:
            if name == "http11.send_request_body.complete":
                marks["written"] = time.perf_counter_ns()

        request.extensions["trace"] = trace
        what = f"{method} {signed_path}"
        started = time.perf_counter_ns()
        self.requests += 1
        try:
            resp = await self._http.send(request)
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _AttemptFailed(VenueTimeoutError(f"{what}: could not connect in "
                                                   f"{self.timeout_s:g} s ({type(exc).__name__})"),
                                 maybe_executed=False) from None
        except httpx.ConnectError as exc:
            raise _AttemptFailed(VenueUnavailableError(f"{what}: {type(exc).__name__}: {exc}"),
                                 maybe_executed=False) from None
        except httpx.TimeoutException as exc:
            raise _AttemptFailed(VenueTimeoutError(f"{what}: no answer in {self.timeout_s:g} s "
                                                   f"({type(exc).__name__})"),
                                 maybe_executed=True) from None
        except httpx.TransportError as exc:
            raise _AttemptFailed(VenueUnavailableError(f"{what}: {type(exc).__name__}: {exc}"),
                                 maybe_executed=True) from None
        done = time.perf_counter_ns()
        latency = done - marks.get("written", started)
        log.debug("%s -> %d in %.3f ms", what, resp.status_code, latency / 1e6)
        return _Reply(resp.status_code, resp.content, latency, self._clock_ns())

    async def _send_wire(self, method: str, path: str, body: Any, auth: bool) -> _Reply:
        """One write over :attr:`wire`: the same signing, counters, failure classes and
        ``latency_ns`` (bytes handed to the socket → reply read) as the httpx path."""
        assert self.wire is not None
        target = self._base_path + path  # ids in ``path`` are already percent-encoded (_seg)
        headers: Mapping[str, str] = {}
        if auth:
            if self.signer is None:
                raise AuthError(f"{method} {path}: needs an API key and this client has none")
            headers = self._auth_headers(method, target)
        data = None if body is None else dumps_body(body)
        self.requests += 1
        try:
            resp, written = await self.wire.request(method, target, headers, data)
        except WireConnectTimeout as exc:
            raise _AttemptFailed(VenueTimeoutError(f"{method} {target}: {exc}"),
                                 maybe_executed=False) from None
        except WireReadTimeout:
            raise _AttemptFailed(VenueTimeoutError(f"{method} {target}: no answer in "
                                                   f"{self.timeout_s:g} s"),
                                 maybe_executed=True) from None
        except WireError as exc:
            raise _AttemptFailed(VenueUnavailableError(f"{method} {target}: "
                                                       f"{type(exc).__name__}: {exc}"),
                                 maybe_executed=exc.sent) from None
        latency = time.perf_counter_ns() - written
        log.debug("%s %s -> %d in %.3f ms", method, target, resp.status, latency / 1e6)
        return _Reply(resp.status, resp.body, latency, self._clock_ns())

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        auth: bool = True,
        items: int = 1,
        priority: Priority = "normal",
        retry: RetryClass = "idempotent",
        passthrough: frozenset[int] = frozenset(),
    ) -> _Reply:
        """One logical call: limiter, attempts, retries. Returns a 2xx reply, or a reply whose
        status is in ``passthrough``; raises the mapped error otherwise."""
        kind, cost = endpoint_cost(method, path, items=items)
        attempt, ambiguous = 0, False
        while True:
            if self.limiter is not None:
                await self.limiter.acquire(kind, cost, priority=priority)
            try:
                reply = await self._send_once(method, path, params, body, auth)
            except _AttemptFailed as failed:
                err, maybe = failed.error, failed.maybe_executed
            else:
                reply.attempts, reply.after_ambiguous = attempt + 1, ambiguous
                if 200 <= reply.status < 300 or reply.status in passthrough:
                    return reply
                err = error_for(reply.status, reply.body, what=f"{method} {path}")
                maybe = reply.status >= 500
                if reply.status == 429:
                    self.rate_limited += 1
                    if self.limiter is not None:
                        self.limiter.penalize(kind)
            if not should_retry(err, attempt, self.max_retries) or (retry == "unsafe" and maybe):
                raise err
            ambiguous = ambiguous or maybe
            delay = backoff_s(attempt, base_s=self.backoff_s, cap_s=self.max_backoff_s,
                              u=self._rng.random())
            attempt += 1
            self.retries += 1
            log.warning("%s %s failed (%s); retry %d/%d in %.3f s", method, path, err, attempt,
                        self.max_retries, delay)
            await self._sleep(delay)

    @staticmethod
    def _parse(model: type[_M], reply: _Reply, what: str) -> _M:
        try:
            return s.parse_response(model, reply.body)
        except MalformedPayloadError as exc:
            raise MalformedPayloadError(f"{what}: {exc}", status=reply.status,
                                        body=reply.body[:500].decode("utf-8", "replace")) from None

    async def _get(self, model: type[_M], path: str, params: Mapping[str, Any] | None = None,
                   *, auth: bool = True) -> tuple[_M, _Reply]:
        reply = await self._call("GET", path, params=_clean(params), auth=auth)
        return self._parse(model, reply, f"GET {path}"), reply

    async def _pages(self, model: type[_M], path: str, params: Mapping[str, Any], *,
                     auth: bool, max_pages: int = MAX_PAGES) -> AsyncIterator[_M]:
        """Follow ``cursor`` until it comes back empty."""
        cursor, seen = "", set()
        for _ in range(max_pages):
            page, _reply = await self._get(model, path, {**params, "cursor": cursor or None},
                                           auth=auth)
            yield page
            cursor = getattr(page, "cursor", "") or ""
            if not cursor:
                return
            if cursor in seen:
                raise MalformedPayloadError(f"GET {path}: cursor {cursor[:40]!r} repeated")
            seen.add(cursor)
        raise MalformedPayloadError(f"GET {path}: more than {max_pages} pages")

    # --- exchange and reference data (public) -------------------------------------------------

    async def exchange_status(self) -> s.ExchangeStatus:
        """``GET /exchange/status``; a 503/504 carrying an ``ExchangeStatus`` body is returned
        (the exchange is down for maintenance), any other failure raised."""
        reply = await self._call("GET", "/exchange/status", auth=False,
                                 passthrough=frozenset({503, 504}))
        if reply.status in (503, 504):
            try:
                return s.parse_response(s.ExchangeStatus, reply.body)
            except MalformedPayloadError:
                raise error_for(reply.status, reply.body, what="GET /exchange/status") from None
        return self._parse(s.ExchangeStatus, reply, "GET /exchange/status")

    async def get_series(self, series_ticker: str) -> s.Series:
        """``GET /series/{t}``: carries the series' ``fee_type`` and ``fee_multiplier``."""
        r, _ = await self._get(s.GetSeriesResponse, f"/series/{_seg(series_ticker)}", {}, auth=False)
        return r.series

    async def get_event(self, event_ticker: str, with_nested_markets: bool = True) -> s.EventData:
        """``GET /events/{t}``; with nested markets the event's ``markets`` is filled (from the
        deprecated top-level ``markets`` when the venue put them there)."""
        path = f"/events/{_seg(event_ticker)}"
        r, _ = await self._get(s.GetEventResponse, path,
                               {"with_nested_markets": _bool(with_nested_markets)}, auth=False)
        ev = r.event
        if with_nested_markets and not ev.markets and r.markets:
            ev = ev.model_copy(update={"markets": list(r.markets)})
        return ev

    async def get_events(self, *, series_ticker: str | None = None, status: str | None = None,
                         with_nested_markets: bool = False, min_close_ts_s: int | None = None,
                         limit: int = EVENTS_PAGE_LIMIT,
                         max_pages: int = MAX_PAGES) -> list[s.EventData]:
        """``GET /events`` over all pages (``status``: unopened|open|closed|settled)."""
        out: list[s.EventData] = []
        params = {"series_ticker": series_ticker, "status": status, "limit": limit,
                  "with_nested_markets": _bool(with_nested_markets) if with_nested_markets else None,
                  "min_close_ts": min_close_ts_s}
        async for page in self._pages(s.GetEventsResponse, "/events", params, auth=False,
                                      max_pages=max_pages):
            out.extend(page.events)
        return out

    async def get_market(self, ticker: str) -> s.Market:
        r, _ = await self._get(s.GetMarketResponse, f"/markets/{_seg(ticker)}", auth=False)
        return r.market

    async def get_markets(self, *, event_ticker: str | None = None,
                          series_ticker: str | None = None, tickers: Sequence[str] = (),
                          status: str | None = None, limit: int = MARKETS_PAGE_LIMIT,
                          max_pages: int = MAX_PAGES) -> list[s.Market]:
        """``GET /markets`` over all pages (``status``: unopened|open|paused|closed|settled)."""
        out: list[s.Market] = []
        params = {"event_ticker": event_ticker, "series_ticker": series_ticker,
                  "tickers": ",".join(tickers) if tickers else None, "status": status,
                  "limit": limit}
        async for page in self._pages(s.GetMarketsResponse, "/markets", params, auth=False,
                                      max_pages=max_pages):
            out.extend(page.markets)
        return out

    async def get_milestones(self, related_event_ticker: str | None = None, *,
                             category: str | None = None, type: str | None = None,  # noqa: A002
                             limit: int = MILESTONES_PAGE_LIMIT,
                             max_pages: int = MAX_PAGES) -> list[s.Milestone]:
        out: list[s.Milestone] = []
        params = {"related_event_ticker": related_event_ticker, "category": category,
                  "type": type, "limit": limit}
        async for page in self._pages(s.GetMilestonesResponse, "/milestones", params,
                                      auth=False, max_pages=max_pages):
            out.extend(page.milestones)
        return out

    async def game_start(self, event_ticker: str) -> GameStart:
        """The game's scheduled start: the milestone's ``start_date`` (primary event first);
        only if the event has no milestone, an **estimate** — the earliest market
        ``expected_expiration_time`` minus :func:`game_length_s` of the series (logged as a
        warning). :class:`NotFoundError` when neither exists."""
        ns = start_from_milestones(event_ticker, await self.get_milestones(event_ticker))
        if ns is not None:
            return GameStart(event_ticker, ns, "milestone")
        ev = await self.get_event(event_ticker, with_nested_markets=True)
        expiries = [t for m in (ev.markets or []) if (t := m.expected_expiration_ns()) is not None]
        if not expiries:
            raise NotFoundError(f"{event_ticker}: no milestone and no expected_expiration_time")
        length_s = game_length_s(ev.series_ticker or event_ticker)
        est = min(expiries) - int(length_s * 1_000_000_000)
        log.warning("%s: no milestone; game start estimated as expected_expiration_time - %.0f s",
                    event_ticker, length_s)
        return GameStart(event_ticker, est, "expected_expiration")

    async def game_start_ns(self, event_ticker: str) -> int:
        """:meth:`game_start` as ns (check ``game_start().source`` if an estimate matters)."""
        return (await self.game_start(event_ticker)).start_ns

    async def get_orderbook(self, ticker: str, depth: int | None = None) -> Orderbook:
        """``GET /markets/{t}/orderbook`` as YES and NO bid levels in our units (signed when we
        have a key: the spec says authenticated, the guide says public)."""
        r, reply = await self._get(s.GetMarketOrderbookResponse, f"/markets/{_seg(ticker)}/orderbook",
                                   {"depth": depth}, auth=self.signer is not None)
        book = r.orderbook_fp
        return Orderbook(ticker, tuple(book.yes_levels()), tuple(book.no_levels()),
                         reply.received_ns)

    # --- order writes -------------------------------------------------------------------------

    def _params(self, order: Quote | Place | OrderParams, client_order_id: str | None,
                **kw: Any) -> OrderParams:
        if isinstance(order, OrderParams):
            return order
        if isinstance(order, Place):
            return OrderParams(order.quote, order.client_order_id, order.post_only, **kw)
        if isinstance(order, Quote):
            return OrderParams(order, client_order_id or new_client_order_id(), **kw)
        raise InputError(f"not an order: {type(order).__name__}")

    async def create_order(
        self,
        order: Quote | Place | OrderParams,
        client_order_id: str | None = None,
        *,
        post_only: bool = True,
        time_in_force: TimeInForce = "good_till_canceled",
        cancel_order_on_pause: bool = True,
        order_group_id: str | None = None,
        reduce_only: bool = False,
        self_trade_prevention_type: Stp = "taker_at_cross",
        expiration_ns: int | None = None,
        priority: Priority = "normal",
    ) -> OrderAck:
        """``POST /portfolio/events/orders`` (pre-signed). A :class:`Quote` takes the keyword
        options and ``client_order_id`` (generated when None); a :class:`Place` brings its own
        id and ``post_only``; an :class:`OrderParams` is sent as is.

        ``priority="cancel"`` puts a risk-reducing order in the limiter's cancel class (served
        first, may spend the cancel reserve): the caller decides what reduces risk.

        Retries keep the same ``client_order_id``; a 409 after an ambiguous attempt (5xx,
        timeout, dropped connection) means that attempt landed, and the ack is rebuilt from the
        order read back (``recovered=True``, counts = the order's totals)."""
        kw = dict(time_in_force=time_in_force, cancel_order_on_pause=cancel_order_on_pause,
                  order_group_id=order_group_id, reduce_only=reduce_only,
                  self_trade_prevention_type=self_trade_prevention_type,
                  expiration_ns=expiration_ns)
        if isinstance(order, Quote):
            kw["post_only"] = post_only  # a Place brings its own
        p = self._params(order, client_order_id, **kw)
        reply = await self._call("POST", CREATE_PATH, body=order_body(p), retry="keyed",
                                 passthrough=frozenset({409}), priority=priority)
        if reply.status == 409:
            err = error_for(409, reply.body, what=f"POST {CREATE_PATH}")
            if not reply.after_ambiguous:
                raise err
            found = await self.get_order_by_client_id(p.client_order_id, ticker=p.quote.market)
            if found is None:
                raise err
            log.info("create %s: retry hit 409, recovered order %s", p.client_order_id,
                     found.order_id)
            ack = _ack_from_order(found, reply)
        else:
            r = self._parse(s.CreateOrderV2Response, reply, f"POST {CREATE_PATH}")
            ack = _ack_from_create(r, reply, p.client_order_id)
        self._track_order(ack.order_id, ack.remaining_count)
        return ack

    async def batch_create(
        self,
        orders: Sequence[Quote | Place | OrderParams],
        *,
        cancel_order_on_pause: bool = True,
        order_group_id: str | None = None,
    ) -> list[OrderAck | ItemError]:
        """``POST /portfolio/events/orders/batched`` (pre-signed; 10 tokens per item). One
        result per order, in order: an :class:`OrderAck` or an :class:`ItemError`. The batch is
        retried whole with the same client order ids; items refused as duplicates after an
        ambiguous attempt are recovered by reading them back (``recovered=True``)."""
        if not orders:
            return []
        ps = [self._params(o, None, cancel_order_on_pause=cancel_order_on_pause,
                           order_group_id=order_group_id) for o in orders]
        cids = [p.client_order_id for p in ps]
        if len(set(cids)) != len(cids):
            raise InputError("duplicate client_order_id within one batch")
        reply = await self._call("POST", BATCH_CREATE_PATH, body={"orders": [order_body(p) for p in ps]},
                                 items=len(ps), retry="keyed")
        r = self._parse(s.BatchCreateOrdersV2Response, reply, f"POST {BATCH_CREATE_PATH}")
        if len(r.orders) != len(ps):
            raise MalformedPayloadError(f"batch create: {len(ps)} orders sent, "
                                        f"{len(r.orders)} results")
        out: list[OrderAck | ItemError] = []
        for i, (p, item) in enumerate(zip(ps, r.orders)):
            if item.error is None:
                out.append(_ack_from_create(item, reply, p.client_order_id))
                continue
            err = item_error(i, p.client_order_id, item.error)
            if reply.after_ambiguous and "duplicate" in (err.code or "").lower():
                found = await self.get_order_by_client_id(p.client_order_id,
                                                          ticker=p.quote.market)
                if found is not None:
                    out.append(_ack_from_order(found, reply))
                    continue
            out.append(err)
        for res in out:
            if isinstance(res, OrderAck):
                self._track_order(res.order_id, res.remaining_count)
        return out

    async def cancel_order(self, order_id: str) -> CancelAck:
        """``DELETE /portfolio/events/orders/{id}`` (2 tokens, cancel priority; pre-signed
        when the order has per-order pools, which a success or a 404 drops).

        **Never trust this ack alone.** Kalshi documents that a V2 cancel (or amend) reply can
        describe a different order than the one named — other ``order_id``, ``client_order_id``
        or quantities — although the cancel was applied to the right order (changelog
        2026-05-21, kalshi.md §7.2); ``reduced_by`` 0 only says nothing was left *at that
        moment* (a fill may have raced it); and an order can also be refilled or recreated by
        our own in-flight writes. Treat the ack as a hint (``CancelAck.mismatched`` flags the
        documented case) and confirm from WS ``user_orders`` / fills or :meth:`get_orders`
        that nothing rests before relying on it (the worker's cancel-all does exactly that)."""
        path = ORDER_PATH.format(order_id=_seg(order_id))
        try:
            reply = await self._call("DELETE", path, priority="cancel")
        except NotFoundError:
            self.forget_order(order_id)  # nothing of that id rests
            raise
        self.forget_order(order_id)
        r = self._parse(s.CancelOrderV2Response, reply, f"DELETE {path}")
        if r.order_id != order_id:
            log.warning("cancel %s: reply describes order %s (kalshi.md §7.2)", order_id,
                        r.order_id)
        return CancelAck(r.order_id, order_id, r.client_order_id, r.parsed_reduced_by(),
                         reply.latency_ns, reply.received_ns, _ms_to_ns(r.ts_ms), reply.attempts)

    async def batch_cancel(self, order_ids: Sequence[str]) -> list[CancelAck | ItemError]:
        """``DELETE /portfolio/events/orders/batched`` (pre-signed; 2 tokens per item, cancel
        priority). Results in request order (matched by ``order_id`` when the venue reorders).
        The same caveat as :meth:`cancel_order`: verify, don't trust."""
        if not order_ids:
            return []
        reply = await self._call("DELETE", BATCH_CREATE_PATH,
                                 body={"orders": [{"order_id": o} for o in order_ids]},
                                 items=len(order_ids), priority="cancel")
        r = self._parse(s.BatchCancelOrdersV2Response, reply, f"DELETE {BATCH_CREATE_PATH}")
        if len(r.orders) != len(order_ids):
            raise MalformedPayloadError(f"batch cancel: {len(order_ids)} sent, "
                                        f"{len(r.orders)} results")
        out: list[CancelAck | ItemError] = []
        for i, (oid, item) in enumerate(zip(order_ids, r.orders)):
            if item.error is not None:
                err = item_error(i, oid, item.error)
                if isinstance(err.error, NotFoundError):
                    self.forget_order(oid)  # nothing of that id rests
                out.append(err)
            else:
                self.forget_order(oid)
                out.append(CancelAck(item.order_id, oid, item.client_order_id,
                                     _count(item.reduced_by, "reduced_by") or 0, reply.latency_ns,
                                     reply.received_ns, _ms_to_ns(item.ts_ms), reply.attempts))
        return out

    async def amend_order(self, order_id: str, market: str, side: Side, price: int,
                          count_total: int, *,
                          updated_client_order_id: str | None = None,
                          priority: Priority = "normal") -> AmendAck:
        """``POST /portfolio/events/orders/{id}/amend`` (pre-signed when the order has per-order
        pools; a successful amend registers or touches them). ``count_total`` is the **new total**
        (already filled + desired resting remainder, centi-contracts), as Kalshi requires —
        sending only the remainder would shrink a partly filled order. May cross and fill.
        Retried like a GET: an absolute price and total make a repeat harmless."""
        if count_total <= 0:
            raise InputError(f"count_total must be > 0, got {count_total}")
        if not 0 < price < PRICE_ONE:
            raise InputError(f"price must be in (0, {PRICE_ONE}), got {price}")
        body: dict[str, Any] = {"ticker": market, "side": side, "price": format_dollars(price),
                                "count": format_count_fp(count_total)}
        if updated_client_order_id is not None:
            body["updated_client_order_id"] = updated_client_order_id
        path = ORDER_PATH.format(order_id=_seg(order_id)) + "/amend"
        try:
            reply = await self._call("POST", path, body=body, priority=priority)
        except NotFoundError:
            self.forget_order(order_id)
            raise
        r = self._parse(s.AmendOrderV2Response, reply, f"POST {path}")
        ack = AmendAck(r.order_id, order_id, r.client_order_id,
                       _count(r.remaining_count, "remaining_count"),
                       _count(r.fill_count, "fill_count"), reply.latency_ns, reply.received_ns,
                       _ms_to_ns(r.ts_ms), _opt_price(r.average_fill_price, "average_fill_price"),
                       reply.attempts)
        # A V2 amend keeps the order id; a reply naming another order is the documented
        # mislabelled reply (kalshi.md §7.2), so the pools follow the order we amended.
        self._track_order(order_id, ack.remaining_count)
        return ack

    async def decrease_order(self, order_id: str, *, reduce_by: int | None = None,
                             reduce_to: int | None = None) -> DecreaseAck:
        """``POST /portfolio/events/orders/{id}/decrease`` with exactly one of ``reduce_by``
        (> 0) or ``reduce_to`` (>= 0), centi-contracts; keeps queue priority. ``reduce_to`` is
        retried after ambiguous failures (absolute), ``reduce_by`` is not (it would apply twice)."""
        if (reduce_by is None) == (reduce_to is None):
            raise InputError("give exactly one of reduce_by, reduce_to")
        if reduce_by is not None and reduce_by <= 0:
            raise InputError(f"reduce_by must be > 0, got {reduce_by}")
        if reduce_to is not None and reduce_to < 0:
            raise InputError(f"reduce_to must be >= 0, got {reduce_to}")
        body = ({"reduce_by": format_count_fp(reduce_by)} if reduce_by is not None
                else {"reduce_to": format_count_fp(reduce_to)})  # type: ignore[arg-type]
        path = f"/portfolio/events/orders/{_seg(order_id)}/decrease"
        reply = await self._call("POST", path, body=body,
                                 retry="unsafe" if reduce_by is not None else "idempotent")
        r = self._parse(s.DecreaseOrderV2Response, reply, f"POST {path}")
        ack = DecreaseAck(r.order_id, order_id, r.client_order_id, r.parsed_remaining_count(),
                          reply.latency_ns, reply.received_ns, _ms_to_ns(r.ts_ms), reply.attempts)
        if ack.remaining_count <= 0:
            self.forget_order(order_id)  # decreased to nothing: the order is gone
        return ack

    # --- portfolio reads ----------------------------------------------------------------------

    async def _orders(self, *, event_ticker: str | None, ticker: str | None,
                      status: str | None, limit: int, max_pages: int) -> list[s.Order]:
        out: list[s.Order] = []
        params = {"event_ticker": event_ticker, "ticker": ticker, "status": status,
                  "limit": limit}
        async for page in self._pages(s.GetOrdersResponse, "/portfolio/orders", params,
                                      auth=True, max_pages=max_pages):
            out.extend(page.orders)
        return out

    async def get_orders(self, *, event_ticker: str | None = None, ticker: str | None = None,
                         status: str | None = "resting", limit: int = ORDERS_PAGE_LIMIT,
                         max_pages: int = MAX_PAGES) -> list[LiveOrder]:
        """``GET /portfolio/orders`` over all pages as :class:`LiveOrder` (``status`` None =
        every status; done orders then have ``remaining`` 0)."""
        return [live_order(o) for o in await self._orders(
            event_ticker=event_ticker, ticker=ticker, status=status, limit=limit,
            max_pages=max_pages)]

    async def get_orders_raw(self, *, event_ticker: str | None = None,
                             ticker: str | None = None, status: str | None = None,
                             limit: int = ORDERS_PAGE_LIMIT) -> list[s.Order]:
        """Like :meth:`get_orders` but the wire :class:`~schema.Order` (status, fees, costs)."""
        return await self._orders(event_ticker=event_ticker, ticker=ticker, status=status,
                                  limit=limit, max_pages=MAX_PAGES)

    async def get_order(self, order_id: str) -> s.Order:
        """``GET /portfolio/orders/{id}`` (2 tokens): the wire order, with its ``status`` and
        unit accessors (``price()``, ``remaining_count()``…)."""
        r, _ = await self._get(s.GetOrderResponse, f"/portfolio/orders/{_seg(order_id)}")
        return r.order

    async def get_order_by_client_id(self, client_order_id: str, *,
                                     ticker: str | None = None) -> s.Order | None:
        """Find our order by ``client_order_id`` (any status) in ``GET /portfolio/orders``,
        filtered by ``ticker`` when given (the API has no client id filter). None if absent."""
        for o in await self._orders(event_ticker=None, ticker=ticker, status=None,
                                    limit=ORDERS_PAGE_LIMIT, max_pages=MAX_PAGES):
            if o.client_order_id == client_order_id:
                return o
        return None

    async def get_fills(self, *, ticker: str | None = None, order_id: str | None = None,
                        min_ts_s: int | None = None, max_ts_s: int | None = None,
                        limit: int = ORDERS_PAGE_LIMIT,
                        max_pages: int = MAX_PAGES) -> list[OwnFill]:
        """``GET /portfolio/fills`` over all pages (``min_ts_s``/``max_ts_s`` unix seconds)."""
        out: list[OwnFill] = []
        params = {"ticker": ticker, "order_id": order_id, "min_ts": min_ts_s,
                  "max_ts": max_ts_s, "limit": limit}
        async for page in self._pages(s.GetFillsResponse, "/portfolio/fills", params, auth=True,
                                      max_pages=max_pages):
            out.extend(_own_fill(f) for f in page.fills)
        return out

    async def get_positions(self, *, event_ticker: str | None = None,
                            ticker: str | None = None, limit: int = ORDERS_PAGE_LIMIT,
                            max_pages: int = MAX_PAGES) -> dict[str, Position]:
        """``GET /portfolio/positions`` over all pages: market → :class:`Position` (signed
        centi-contracts in ``.position``, costs in money units). Unsettled markets only; may
        lag fills (kalshi.md §7.9) — the WS ``fill`` stream is the faster truth."""
        out: dict[str, Position] = {}
        params = {"event_ticker": event_ticker, "ticker": ticker, "limit": limit}
        async for page in self._pages(s.GetPositionsResponse, "/portfolio/positions", params,
                                      auth=True, max_pages=max_pages):
            for p in page.market_positions:
                out[p.ticker] = _position(p)
        return out

    async def get_settlements(self, *, event_ticker: str | None = None,
                              ticker: str | None = None, limit: int = ORDERS_PAGE_LIMIT,
                              max_pages: int = MAX_PAGES) -> list[s.Settlement]:
        """``GET /portfolio/settlements`` over all pages: our settled markets (wire models;
        :func:`mmcore.record.settlements.settlement_rows` converts them to record units)."""
        out: list[s.Settlement] = []
        params = {"event_ticker": event_ticker, "ticker": ticker, "limit": limit}
        async for page in self._pages(s.GetSettlementsResponse, "/portfolio/settlements", params,
                                      auth=True, max_pages=max_pages):
            out.extend(page.settlements or [])
        return out

    async def get_user_data_timestamp(self) -> int:
        """``GET /exchange/user_data_timestamp``: the exchange time (ns) up to which REST
        balance, orders, fills and positions are validated. Kalshi's portfolio reads lag the
        matching engine; a position read is only evidence about fills before this time."""
        r, _ = await self._get(s.GetUserDataTimestampResponse, "/exchange/user_data_timestamp")
        return r.as_of_ns()

    async def get_balance(self) -> int:
        """Available balance, money units ($0.0001, rounded down)."""
        r, _ = await self._get(s.GetBalanceResponse, "/portfolio/balance")
        return r.available()

    async def get_account_limits(self) -> s.GetAccountApiLimitsResponse:
        """``GET /account/limits``: the account's usage tier and the read/write token buckets
        the exchange meters every key of the account with (tokens/s, tokens). Costs 10 read
        tokens; the client's own limiter is resized from it by
        :func:`mmcore.worker.venue.sync_account_tier`."""
        r, _ = await self._get(s.GetAccountApiLimitsResponse, "/account/limits")
        return r

    # --- order groups -------------------------------------------------------------------------

    async def create_order_group(self, contracts_limit: int) -> str:
        """New group with a rolling-15-s matched limit of ``contracts_limit`` centi-contracts;
        its id. Not retried after an ambiguous failure (a retry would make a second group)."""
        if contracts_limit <= 0:
            raise InputError(f"contracts_limit must be > 0, got {contracts_limit}")
        reply = await self._call("POST", "/portfolio/order_groups/create",
                                 body={"contracts_limit_fp": format_count_fp(contracts_limit)},
                                 retry="unsafe")
        return self._parse(s.CreateOrderGroupResponse, reply, "create order group").order_group_id

    async def trigger_order_group(self, order_group_id: str) -> None:
        """Manual kill: the venue cancels the group's orders and refuses new ones until reset."""
        await self._call("PUT", f"/portfolio/order_groups/{_seg(order_group_id)}/trigger",
                         body={}, priority="cancel")

    async def reset_order_group(self, order_group_id: str) -> None:
        await self._call("PUT", f"/portfolio/order_groups/{_seg(order_group_id)}/reset", body={})

    async def delete_order_group(self, order_group_id: str) -> None:
        """Delete the group; the venue cancels its resting orders."""
        await self._call("DELETE", f"/portfolio/order_groups/{_seg(order_group_id)}",
                         priority="cancel")

    async def get_order_group(self, order_group_id: str) -> s.GetOrderGroupResponse:
        r, _ = await self._get(s.GetOrderGroupResponse,
                               f"/portfolio/order_groups/{_seg(order_group_id)}")
        return r


def new_client_order_id() -> str:
    """A fresh client order id (UUID4): unique per create, reused by its retries."""
    return str(uuid.uuid4())


def _seg(value: str) -> str:
    if not value or not value.strip():
        raise InputError("empty path segment (ticker or id)")
    return _urlquote(value, safe="")


def _bool(v: bool) -> str:
    return "true" if v else "false"


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    return {k: v for k, v in params.items() if v is not None}
