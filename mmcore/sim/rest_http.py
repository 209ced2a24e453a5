"""HTTP plumbing of the local exchange's REST server: errors, query parsing, cursors, buckets,
and the per-app state and per-request context the route handlers receive.

Used by :mod:`mmcore.sim.rest` and :mod:`mmcore.sim.rest_orders`; nothing here mutates the engine.

Rules of this file:

- **Error bodies** are Kalshi's ``ErrorResponse`` ``{"code", "message", "details"}`` for every
  4xx/5xx, except the 429, whose body is exactly ``{"error": "too many requests"}`` (kalshi.md
  §5) with no ``Retry-After``. Handlers raise :class:`ApiError`; the dispatcher renders it.
- **Query parameters**: unknown ones are ignored (as Kalshi does); a known one with a bad value
  is ``400 invalid_parameters`` naming it. Booleans are ``true``/``false`` (any case).
- **Cursors** are opaque strings (URL-safe base64 of the JSON sort key of the last item
  returned); the next page starts strictly after that key in the listing's order, so pages stay
  stable while new items are appended. The last page answers ``cursor: ""``.
- **Token buckets** refill continuously from the times passed in (exchange clock, ns); a request
  that cannot pay its cost is refused and pays nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any, TypeVar

from starlette.requests import Request

from mmcore.sim.exchange import LocalExchange
from mmcore.sim.rest_faults import PositionHistory
from mmcore.units import PRICE_ONE, format_dollars
from mmcore.wirejson import WireJsonError, loads_client

T = TypeVar("T")

TOO_MANY_REQUESTS_BODY = {"error": "too many requests"}
LOG_429_MAX = 20_000
"""429 answers :class:`RestState` keeps with their times (older ones fall off)."""
"""Kalshi's 429 body, byte for byte the documented one."""


class ApiError(Exception):
    """A refusal rendered as ``status`` + ``{"code", "message", "details"}``."""

    def __init__(self, status: int, code: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details

    def body(self) -> dict[str, str]:
        return error_body(self.code, self.message, self.details)


class RateLimited(Exception):
    """The request's bucket cannot pay its cost: answer 429 with the documented body."""


def error_body(code: str, message: str, details: str = "") -> dict[str, str]:
    return {"code": code, "message": message, "details": details}


def bad_param(name: str, why: str) -> ApiError:
    return ApiError(400, "invalid_parameters", f"invalid query parameter {name!r}: {why}")


# --- query parameters ---------------------------------------------------------------------------


def q_str(request: Request, name: str) -> str | None:
    """A query parameter, or None when absent or empty."""
    value = request.query_params.get(name)
    return value if value not in (None, "") else None


def q_int(request: Request, name: str, *, default: int | None = None, lo: int | None = None,
          hi: int | None = None, required: bool = False) -> int | None:
    raw = q_str(request, name)
    if raw is None:
        if required:
            raise bad_param(name, "is required")
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise bad_param(name, f"{raw[:40]!r} is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad_param(name, f"{value} is outside {lo}..{hi}")
    return value


def q_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = q_str(request, name)
    if raw is None:
        return default
    low = raw.lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise bad_param(name, f"{raw[:40]!r} is not a boolean")


def q_enum(request: Request, name: str, allowed: Sequence[str]) -> str | None:
    raw = q_str(request, name)
    if raw is not None and raw not in allowed:
        raise bad_param(name, f"{raw[:40]!r} is not one of {list(allowed)}")
    return raw


def q_csv(request: Request, name: str, *, repeated: bool = False) -> list[str] | None:
    """A comma-separated list (or a repeated parameter when ``repeated``); None when absent."""
    raws = request.query_params.getlist(name) if repeated else [q_str(request, name) or ""]
    items = [part.strip() for raw in raws for part in raw.split(",") if part.strip()]
    return items or None


def q_limit(request: Request, *, default: int, hi: int, lo: int = 1,
            zero_is_default: bool = False, required: bool = False) -> int:
    value = q_int(request, "limit", default=default, lo=0 if zero_is_default else lo, hi=hi,
                  required=required)
    assert value is not None
    return default if value == 0 else value


def q_subaccount(request: Request) -> None:
    """Accept ``subaccount`` 0 (or absent); the local exchange has no subaccounts."""
    value = q_int(request, "subaccount", lo=0, hi=63)
    if value not in (None, 0):
        raise bad_param("subaccount", "subaccounts are not simulated (use 0)")


# --- pagination ---------------------------------------------------------------------------------


def encode_cursor(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode()


MAX_CURSOR_CHARS = 1_024
"""Longest cursor accepted (ours are a few dozen characters)."""


def decode_cursor(cursor: str) -> Any:
    """The sort key a cursor carries; 400 ``invalid_parameters`` for anything this server could
    not have issued (too long, not base64, not JSON, nested, a lone surrogate…)."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise bad_param("cursor", "not a cursor this server issued")
    try:
        key = loads_client(base64.urlsafe_b64decode(cursor.encode("ascii")), max_depth=2)
    except (ValueError, binascii.Error, UnicodeError):
        raise bad_param("cursor", "not a cursor this server issued") from None
    return tuple(key) if isinstance(key, list) else key


def paginate(items: Sequence[T], key: Callable[[T], Any], cursor: str | None, limit: int, *,
             descending: bool = False) -> tuple[list[T], str]:
    """One page of ``items`` (already in listing order, keys strictly monotone in that order)
    after ``cursor``, and the cursor of the next page (``""`` on the last page)."""
    start = 0
    if cursor:
        last = decode_cursor(cursor)
        try:
            while start < len(items) and (
                    key(items[start]) >= last if descending else key(items[start]) <= last):
                start += 1
        except TypeError:
            raise bad_param("cursor", "not a cursor of this listing") from None
    page = list(items[start:start + limit])
    more = start + limit < len(items)
    return page, encode_cursor(key(page[-1])) if more and page else ""


# --- rate limits --------------------------------------------------------------------------------


@dataclass
class TokenBucket:
    """``rate_per_s`` tokens a second up to ``capacity``; starts full at ``last_ns``."""

    rate_per_s: float
    capacity: float
    tokens: float
    last_ns: int

    def try_take(self, cost: float, now_ns: int) -> bool:
        elapsed_s = max(0, now_ns - self.last_ns) / 1e9
        self.tokens = min(self.capacity, self.tokens + elapsed_s * self.rate_per_s)
        self.last_ns = max(self.last_ns, now_ns)
        if cost <= self.tokens:
            self.tokens -= cost
            return True
        return False


# --- number formatting --------------------------------------------------------------------------


def fraction_dollars(value: Fraction) -> str:
    """Price units (exact rational) → dollar string: 4 decimals when exact, else 6 (half-even),
    as Kalshi sends averages (responses carry up to 6 decimals, kalshi.md §1.2)."""
    if value.denominator == 1:
        return format_dollars(int(value))
    dollars = Decimal(value.numerator) / Decimal(value.denominator) / PRICE_ONE
    return str(dollars.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN))


# --- state and context --------------------------------------------------------------------------


class RestState:
    """What one REST app keeps beside the exchange: token buckets per (API key or client address,
    bucket kind), the position history for the lag fault, and counters for ``GET /sim/state``."""

    def __init__(self, ex: LocalExchange) -> None:
        self.ex = ex
        self.buckets: dict[tuple[str, str], TokenBucket] = {}
        self.history = PositionHistory(ex)
        self.counters: dict[str, int] = {}
        self.n_5xx = 0
        self.pending_cancels = 0
        """Deferred cancels (``cancel_ack_not_applied``) scheduled and not yet applied."""

        self.log_429: deque[dict[str, Any]] = deque(maxlen=LOG_429_MAX)
        """Every 429 answered, oldest first (the newest :data:`LOG_429_MAX`): ``at_ns`` (exchange
        clock, when the request arrived), ``method``, ``path``, ``who`` (API key id or
        ``ip:<address>``; None when a storm answered before authentication) and ``cause``
        (``storm``: the ``rate_limit_storm`` fault; ``bucket``: the tier's token bucket).
        ``counters["answered_429"]`` counts them all, so a test can tell whether any fell off."""

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def note_429(self, at_ns: int, method: str, path: str, who: str | None, cause: str) -> None:
        """Record one 429 answer (see :attr:`log_429`)."""
        self.count("answered_429")
        self.log_429.append({"at_ns": at_ns, "method": method, "path": path, "who": who,
                             "cause": cause})

    def charge(self, who: str, kind: str, cost: float) -> None:
        """Take ``cost`` tokens from ``who``'s ``kind`` (``read``/``write``) bucket, or raise
        :class:`RateLimited`."""
        now = self.ex.now_ns()
        bucket = self.buckets.get((who, kind))
        tier = self.ex.tier
        rate, cap = ((tier.read_per_s, tier.read_capacity) if kind == "read"
                     else (tier.write_per_s, tier.write_capacity))
        if bucket is None:
            bucket = self.buckets[(who, kind)] = TokenBucket(rate, cap, cap, now)
        bucket.rate_per_s, bucket.capacity = rate, cap  # the tier may change at run time
        if not bucket.try_take(cost, now):
            self.count("rate_limited")
            raise RateLimited()


@dataclass
class Ctx:
    """One request as a handler sees it: ``user`` is None on an anonymous public read; ``who``
    names the rate-limit bucket owner (API key id, else ``ip:<address>``)."""

    state: RestState
    request: Request
    user: str | None
    who: str
    bucket: str
    body: bytes
    now_ns: int

    @property
    def ex(self) -> LocalExchange:
        return self.state.ex

    def param(self, name: str) -> str:
        return self.request.path_params[name]

    def charge(self, cost: float) -> None:
        self.state.charge(self.who, self.bucket, cost)

    def need_user(self) -> str:
        assert self.user is not None, "route needs authentication"
        return self.user

    def json(self) -> Any:
        """The JSON body, decoded by :func:`~mmcore.wirejson.loads_client` (400
        ``invalid_parameters`` naming the reason when it is not acceptable JSON)."""
        try:
            return loads_client(self.body or b"null")
        except WireJsonError as exc:
            raise ApiError(400, "invalid_parameters", str(exc)) from None
