"""The Odds API v4 client (httpx, async): transport, quota accounting and error mapping only.

It returns raw decoded JSON (:class:`OddsPull`) checked only for its top-level type; the pure
parser :func:`mmcore.odds.parse.parse_odds` turns that into events with per-event rejections.

Calling order: ``async with OddsApiClient.from_settings(s) as api:`` then ``await api.sports()``
(free; also refreshes :attr:`OddsApiClient.quota`), ``await api.events("basketball_nba")`` (free:
ids, teams and start times) and ``await api.odds("basketball_nba")`` (paid).

Rules of this file:
- every odds call sends ``apiKey``, ``bookmakers`` (≤ 10 keys, so one pull costs 1 credit per
  market), ``markets``, ``oddsFormat=decimal`` and ``dateFormat=iso``;
- before a paid call the client refuses (:class:`QuotaExhaustedError`, no request sent) when the
  quota is known to be below ``min_quota_remaining``, or after the API said
  ``OUT_OF_USAGE_CREDITS`` (sticky :attr:`OddsApiClient.exhausted`);
- only transient errors (429, 5xx, connection trouble, timeouts) are retried, ``max_retries``
  times, after ``backoff_s · 2**attempt · U(1, 1.25)`` seconds (at least ``Retry-After``);
- the key never appears in a log line, a repr or :attr:`OddsPull.url`.

Units: timestamps are integer ns since the epoch; durations are seconds (``_s``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr, ValidationError

from mmcore.errors import (
    AuthError, ConfigError, InputError, InvalidRequestError, MalformedPayloadError, NotFoundError,
    QuotaExhaustedError, RateLimitedError, VenueError, VenueProtocolError, VenueTimeoutError,
    VenueUnavailableError,
)
from mmcore.models import OddsErrorBody, OddsSport, ns_to_iso
from mmcore.venues.retry import backoff_s, should_retry

if TYPE_CHECKING:
    from mmcore.settings import Settings

log = logging.getLogger("mmcore.venues.oddsapi")

MAX_BOOKMAKERS = 10
"""Every 10 bookmakers count as one region for cost: ≤ 10 keeps a pull at 1 credit per market."""
MAX_BACKOFF_S = 30.0
OUT_OF_USAGE_CREDITS = "OUT_OF_USAGE_CREDITS"
_HEADERS = {"Accept-Encoding": "gzip", "Accept": "application/json"}
_KEY_IN_URL = re.compile(r"(apiKey=)[^&\s\"']+")


class _RedactApiKey(logging.Filter):
    """httpx logs each request URL at INFO, ``apiKey`` included; blank the key out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _KEY_IN_URL.sub(r"\1***", str(a)) if isinstance(a, (str, httpx.URL)) else a
                for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _KEY_IN_URL.sub(r"\1***", record.msg)
        return True


_httpx_log = logging.getLogger("httpx")
if not any(isinstance(f, _RedactApiKey) for f in _httpx_log.filters):
    _httpx_log.addFilter(_RedactApiKey())


@dataclass(frozen=True)
class Quota:
    """Usage headers of one response (credits); None where a header was missing or garbage."""

    remaining: int | None
    used: int | None
    last: int | None
    observed_ns: int

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], observed_ns: int) -> Quota:
        def parse(name: str) -> int | None:
            raw = headers.get(name)
            if raw is None:
                return None
            try:
                value = float(raw.strip())
            except ValueError:
                return None
            return int(value) if math.isfinite(value) else None

        return cls(parse("x-requests-remaining"), parse("x-requests-used"),
                   parse("x-requests-last"), observed_ns)

    @property
    def known(self) -> bool:
        return self.remaining is not None or self.used is not None or self.last is not None


@dataclass(frozen=True)
class OddsPull:
    """One successful odds response: ``payload`` is the decoded JSON (a list of events for
    ``/odds``, one event dict for event odds); ``url`` has no ``apiKey``; ``fetched_ns`` is the
    local receipt time (ns)."""

    payload: Any
    quota: Quota
    fetched_ns: int
    url: str


def _retry_after_s(resp: httpx.Response) -> float | None:
    try:
        return max(0.0, float(resp.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def error_for(resp: httpx.Response) -> VenueError:
    """Map a non-200 response to the error tree, reading the body leniently."""
    text = resp.text[:500]
    try:
        raw = resp.json()
        body = OddsErrorBody.model_validate(raw) if isinstance(raw, dict) else OddsErrorBody()
    except (ValueError, ValidationError, RecursionError):
        body = OddsErrorBody()
    status, code = resp.status_code, body.error_code
    message = body.message or text or f"HTTP {status}"
    kw: dict[str, Any] = {"status": status, "code": code, "body": text}
    if status == 401 and code == OUT_OF_USAGE_CREDITS:
        return QuotaExhaustedError(message, **kw)
    if status in (401, 403):
        return AuthError(message, **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if status == 429:
        return RateLimitedError(message, retry_after_s=_retry_after_s(resp), **kw)
    if status >= 500:
        return VenueUnavailableError(message, **kw)
    if 400 <= status < 500:
        return InvalidRequestError(message, **kw)
    return VenueProtocolError(f"unexpected HTTP {status}: {message}", **kw)


class OddsApiClient:
    """Async client for The Odds API v4 (or the local :mod:`mmcore.sim.odds_server`).

    Injectables for tests: ``client`` (an ``httpx.AsyncClient`` you own), ``sleep`` (awaited
    between retries, seconds), ``rng`` (jitter) and ``clock_ns`` (``fetched_ns``/``observed_ns``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | SecretStr,
        *,
        bookmakers: Sequence[str],
        timeout_s: float = 10.0,
        min_quota_remaining: int = 0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        books = tuple(bookmakers)
        if not books:
            raise InputError("at least one bookmaker is required (pinnacle recommended)")
        if len(books) > MAX_BOOKMAKERS:
            raise InputError(f"{len(books)} bookmakers requested; at most {MAX_BOOKMAKERS} keep "
                             "a pull at 1 credit per market")
        if len(set(books)) != len(books):
            raise InputError("duplicate bookmaker keys")
        if max_retries < 0 or not (backoff_s >= 0 and timeout_s > 0):  # so that NaN fails too
            raise InputError("max_retries and backoff_s must be ≥ 0 and timeout_s > 0")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        if not self._api_key.get_secret_value():
            raise InputError("an Odds API key is required")
        self.bookmakers = books
        self.timeout_s = timeout_s
        self.min_quota_remaining = min_quota_remaining
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock_ns = clock_ns
        self._owns_client = client is None
        self._http = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=5,
                                keepalive_expiry=30.0),
            headers={"User-Agent": "kalshi-sports-mm"},
        )
        self.quota = Quota(None, None, None, 0)
        """Usage headers of the latest response that carried any."""
        self.exhausted = False
        """Sticky: set when the API answered OUT_OF_USAGE_CREDITS; paid calls then refuse."""

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> OddsApiClient:
        """Client for ``settings.odds_url``; with no key and the local sim URL, the sim's key."""
        key = settings.odds_api_key
        if key is None:
            if settings.odds_url != settings.sim_odds_url:
                raise ConfigError("ODDS_API_KEY is not set")
            from mmcore.sim import SIM_ODDS_API_KEY

            key = SecretStr(SIM_ODDS_API_KEY)
        return cls(settings.odds_url, key, bookmakers=settings.odds_bookmakers,
                   timeout_s=settings.odds_timeout_s,
                   min_quota_remaining=settings.odds_min_quota_remaining, **kw)

    def __repr__(self) -> str:
        return (f"OddsApiClient(base_url={self.base_url!r}, api_key='****', "
                f"bookmakers={len(self.bookmakers)}, exhausted={self.exhausted})")

    async def __aenter__(self) -> OddsApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._http.aclose()

    def clear_exhausted(self) -> None:
        """Allow paid calls again after the monthly quota reset (an operator decision)."""
        self.exhausted = False

    # --- endpoints --------------------------------------------------------------------------

    async def sports(self, all: bool = False) -> list[OddsSport]:  # noqa: A002 (API name)
        """``GET /v4/sports`` (free). ``all`` adds out-of-season sports."""
        params = {"all": "true"} if all else {}
        pull = await self._get("/v4/sports", params, paid=False, expect=list)
        try:
            return [OddsSport.model_validate(item) for item in pull.payload]
        except ValidationError as exc:
            raise MalformedPayloadError(f"bad /v4/sports item: {exc.errors()[0]}") from None

    async def odds(
        self,
        sport: str,
        *,
        markets: str | Sequence[str] = "h2h",
        odds_format: str = "decimal",
        event_ids: Sequence[str] | None = None,
        commence_from_ns: int | None = None,
        commence_to_ns: int | None = None,
    ) -> OddsPull:
        """``GET /v4/sports/{sport}/odds`` for our bookmakers. Payload: a list of events."""
        params = self._odds_params(markets, odds_format)
        if event_ids:
            params["eventIds"] = ",".join(event_ids)
        if commence_from_ns is not None:
            params["commenceTimeFrom"] = ns_to_iso(commence_from_ns)
        if commence_to_ns is not None:
            params["commenceTimeTo"] = ns_to_iso(commence_to_ns)
        return await self._get(f"/v4/sports/{_segment(sport)}/odds", params, paid=True,
                               expect=list)

    async def events(
        self,
        sport: str,
        *,
        event_ids: Sequence[str] | None = None,
        commence_from_ns: int | None = None,
        commence_to_ns: int | None = None,
    ) -> OddsPull:
        """``GET /v4/sports/{sport}/events`` (free): id, teams and ``commence_time`` of each
        upcoming and live event, no odds. Payload: a list of events without ``bookmakers``.
        Allowed even when the quota is exhausted or below the floor (it costs nothing)."""
        params = {"dateFormat": "iso"}
        if event_ids:
            params["eventIds"] = ",".join(event_ids)
        if commence_from_ns is not None:
            params["commenceTimeFrom"] = ns_to_iso(commence_from_ns)
        if commence_to_ns is not None:
            params["commenceTimeTo"] = ns_to_iso(commence_to_ns)
        return await self._get(f"/v4/sports/{_segment(sport)}/events", params, paid=False,
                               expect=list)

    async def event_odds(
        self, sport: str, event_id: str, *, markets: str | Sequence[str] = "h2h"
    ) -> OddsPull:
        """``GET /v4/sports/{sport}/events/{event_id}/odds``. Payload: one event dict.
        An unknown or finished event raises :class:`NotFoundError`."""
        path = f"/v4/sports/{_segment(sport)}/events/{_segment(event_id)}/odds"
        return await self._get(path, self._odds_params(markets, "decimal"), paid=True,
                               expect=dict)

    # --- plumbing ---------------------------------------------------------------------------

    def _odds_params(self, markets: str | Sequence[str], odds_format: str) -> dict[str, str]:
        mkts = markets if isinstance(markets, str) else ",".join(markets)
        if not mkts:
            raise InputError("at least one market is required")
        return {"bookmakers": ",".join(self.bookmakers), "markets": mkts,
                "oddsFormat": odds_format, "dateFormat": "iso"}

    def _refuse_if_out_of_quota(self) -> None:
        if self.exhausted:
            raise QuotaExhaustedError("Odds API credits exhausted earlier (OUT_OF_USAGE_CREDITS); "
                                      "not calling until clear_exhausted()", code=OUT_OF_USAGE_CREDITS)
        left = self.quota.remaining
        if left is not None and left < self.min_quota_remaining:
            raise QuotaExhaustedError(f"{left} credits left, below the floor of "
                                      f"{self.min_quota_remaining}; not calling")

    def _backoff_s(self, attempt: int, err: VenueError) -> float:
        """Seconds before retry ``attempt + 1``, at least the 429's ``Retry-After`` hint."""
        hint = err.retry_after_s if isinstance(err, RateLimitedError) else None
        return backoff_s(attempt, base_s=self.backoff_s, cap_s=MAX_BACKOFF_S,
                         u=self._rng.random(), floor_s=hint or 0.0)

    async def _get(self, path: str, params: dict[str, str], *, paid: bool, expect: type) -> OddsPull:
        if paid:
            self._refuse_if_out_of_quota()
        url = f"{self.base_url}{path}"
        shown = str(httpx.URL(url, params=params))
        attempt = 0
        while True:
            err: VenueError
            started = time.perf_counter()
            try:
                resp = await self._http.get(
                    url, params={**params, "apiKey": self._api_key.get_secret_value()},
                    headers=_HEADERS,  # per request, so an injected client negotiates gzip too
                )
            except httpx.TimeoutException as exc:
                err = VenueTimeoutError(f"GET {shown}: no answer in {self.timeout_s:g} s "
                                        f"({type(exc).__name__})")
            except httpx.TransportError as exc:
                detail = str(exc).replace(self._api_key.get_secret_value(), "***")
                err = VenueUnavailableError(f"GET {shown}: {type(exc).__name__}: {detail}")
            else:
                now = self._clock_ns()
                quota = Quota.from_headers(resp.headers, now)
                if quota.known:
                    self.quota = quota
                log.info("GET %s -> %d in %.0f ms; quota remaining=%s used=%s last=%s", shown,
                         resp.status_code, (time.perf_counter() - started) * 1e3,
                         quota.remaining, quota.used, quota.last)
                if resp.status_code == 200:
                    return OddsPull(_decode(resp, expect, shown), quota, now, shown)
                err = error_for(resp)
                if isinstance(err, QuotaExhaustedError):
                    self.exhausted = True
                    log.error("Odds API credits exhausted: stop polling until the quota resets")
            if not should_retry(err, attempt, self.max_retries):
                raise err
            delay = self._backoff_s(attempt, err)
            attempt += 1
            log.warning("GET %s failed (%s); retry %d/%d in %.2f s", shown, err, attempt,
                        self.max_retries, delay)
            await self._sleep(delay)


def _segment(value: str) -> str:
    if not value or not value.strip():
        raise InputError("empty path segment (sport key or event id)")
    return quote(value, safe="")


def _decode(resp: httpx.Response, expect: type, shown: str) -> Any:
    try:
        payload = resp.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedPayloadError(f"GET {shown}: body is not JSON", status=resp.status_code,
                                    body=resp.text[:500]) from None
    except RecursionError:
        raise MalformedPayloadError(f"GET {shown}: body is JSON nested too deep",
                                    status=resp.status_code, body=resp.text[:500]) from None
    if not isinstance(payload, expect):
        raise MalformedPayloadError(
            f"GET {shown}: expected a JSON {expect.__name__}, got {type(payload).__name__}",
            status=resp.status_code, body=resp.text[:500],
        )
    return payload
