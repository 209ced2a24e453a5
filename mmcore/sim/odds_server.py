"""A local HTTP server shaped like The Odds API v4, serving a seeded simulated slate.

Endpoints (see reference/odds-api.md §1): ``GET /v4/sports`` (free), ``GET
/v4/sports/{sport}/events`` (free: ids, teams, start times), ``GET /v4/sports/{sport}/odds`` and
``GET /v4/sports/{sport}/events/{event_id}/odds``. Responses carry
``x-requests-remaining/used/last`` on every response, errors use the real body
``{"message", "error_code", "details_url"}``, and bodies over 500 bytes are gzipped when asked.

Rules of this file:
- request checks run in this order: forced fault → rate limit (429) → ``apiKey`` (401) →
  credits (401, paid endpoints only) → path and parameters (404 / 422);
- cost = markets × ceil(books / 10) (or × regions), 0 when no event is returned; event odds
  cost only the requested markets actually returned;
- prices come from :func:`mmcore.sim.slate.quote_h2h` at the server clock's ``now_ns``, so the
  same request within one minute gets the same body; only ``h2h`` (and exchanges' ``h2h_lay``)
  is priced, ``spreads``/``totals`` are accepted and omitted.

Start it with :class:`OddsServer` (``with OddsServer() as srv: srv.url``), in a background
thread, or ``async with OddsServer()`` inside a running loop.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mmcore.models import iso_to_ns, ns_to_iso
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.runner import LoopbackServer
from mmcore.sim.slate import (
    DEFAULT_BOOKS, DEFAULT_SLATE_SPORTS, REGIONS, SPORTS, BookQuote, SimBook, SimGame, TruthFn,
    make_slate, quote_h2h, static_truth,
)

DETAILS_URL = "https://the-odds-api.com/liveapi/guides/v4/api-error-codes.html#"
FEATURED_MARKETS = frozenset({"h2h", "spreads", "totals"})
BOOKS_PER_REGION = 10
_EVENT_ID = re.compile(r"^[0-9a-f]{32}$")
ClockNs = Callable[[], int]


@dataclass(frozen=True)
class OddsServerConfig:
    """What the local odds server serves. ``credits`` is the quota before it answers
    ``OUT_OF_USAGE_CREDITS``; ``rate_per_s`` the token-bucket rate (and burst) of requests."""

    api_key: str = SIM_ODDS_API_KEY
    credits: int = 500
    rate_per_s: float = 30.0
    books: tuple[SimBook, ...] = DEFAULT_BOOKS
    seed: int = 0
    n_games: int = 4
    """Games per sport on the slate."""
    sports: tuple[str, ...] = DEFAULT_SLATE_SPORTS


@dataclass
class Faults:
    """Faults a test can switch on. ``force_status`` answers the next ``force_count`` requests
    with that status and an error body (e.g. 503), before any other check."""

    force_status: int | None = None
    force_count: int = 1
    force_body: str | None = None
    """Raw text to send instead of the JSON error body (e.g. an HTML proxy page)."""

    def fail_next(self, status: int = 503, n: int = 1, body: str | None = None) -> None:
        self.force_status, self.force_count, self.force_body = status, n, body

    def take(self) -> tuple[int, str | None] | None:
        """Consume one forced fault: (status, raw body or None for the JSON error body)."""
        if self.force_status is None or self.force_count <= 0:
            return None
        self.force_count -= 1
        fault = (self.force_status, self.force_body)
        if self.force_count <= 0:
            self.force_status, self.force_body = None, None
        return fault


class TokenBucket:
    """``rate_per_s`` tokens a second, holding at most ``capacity`` (default: one second's worth)."""

    def __init__(self, rate_per_s: float, now_ns: int, capacity: float | None = None) -> None:
        self.rate_per_s = rate_per_s
        self.capacity = capacity if capacity is not None else max(1.0, rate_per_s)
        self.tokens = self.capacity
        self.last_ns = now_ns

    def take(self, now_ns: int) -> bool:
        elapsed_s = max(0, now_ns - self.last_ns) / 1e9
        self.tokens = min(self.capacity, self.tokens + elapsed_s * self.rate_per_s)
        self.last_ns = max(self.last_ns, now_ns)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, raw: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.raw = status, code, message, raw


def error_body(code: str, message: str) -> dict[str, str]:
    """The Odds API error body for ``code``."""
    return {"message": message, "error_code": code, "details_url": DETAILS_URL + code.lower()}


def _price(x: float, odds_format: str) -> float | int:
    if odds_format == "american":
        return round((x - 1) * 100) if x >= 2.0 else round(-100 / (x - 1))
    return int(x) if x == int(x) else x


def _csv(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


class OddsSim:
    """The server's state and its Starlette app (``.app``); one instance per server.

    ``requests`` counts every HTTP request received (including refused ones); ``used`` the
    credits charged. ``clock_ns`` (ns since the epoch) drives prices, ``last_update`` stamps and
    the rate limiter, so a test can freeze or step it.
    """

    def __init__(
        self,
        config: OddsServerConfig | None = None,
        *,
        clock_ns: ClockNs = time.time_ns,
        truth: TruthFn = static_truth,
        slate: Sequence[SimGame] | None = None,
    ) -> None:
        self.config = config or OddsServerConfig()
        self.clock_ns = clock_ns
        self.truth = truth
        now = clock_ns()
        self.slate: tuple[SimGame, ...] = tuple(
            slate if slate is not None
            else make_slate(self.config.seed, now, self.config.n_games, self.config.sports)
        )
        self.books = {b.key: b for b in self.config.books}
        self.faults = Faults()
        self.requests = 0
        self.used = 0
        self._bucket = TokenBucket(self.config.rate_per_s, now)
        self.app = Starlette(
            routes=[
                Route("/v4/sports", self._sports),
                Route("/v4/sports/", self._sports),
                Route("/v4/sports/{sport}/odds", self._odds),
                Route("/v4/sports/{sport}/events", self._events),
                Route("/v4/sports/{sport}/events/{event_id}/odds", self._event_odds),
            ],
            middleware=[Middleware(GZipMiddleware, minimum_size=500)],
        )

    @property
    def remaining(self) -> int:
        return max(0, self.config.credits - self.used)

    # --- plumbing ---------------------------------------------------------------------------

    def _respond(self, content: Any, status: int = 200, cost: int = 0, raw: str | None = None
                 ) -> Response:
        self.used += cost
        headers = {
            "x-requests-remaining": str(self.remaining),
            "x-requests-used": str(self.used),
            "x-requests-last": str(cost),
        }
        if raw is not None:
            return PlainTextResponse(raw, status_code=status, headers=headers)
        return JSONResponse(content, status_code=status, headers=headers)

    def _gate(self, request: Request, *, paid: bool) -> None:
        self.requests += 1
        forced = self.faults.take()
        if forced is not None:
            status, raw = forced
            raise _Refused(status, "SIMULATED_FAULT", f"Simulated fault (HTTP {status})", raw)
        if not self._bucket.take(self.clock_ns()):
            raise _Refused(429, "EXCEEDED_FREQ_LIMIT", "Your request rate has exceeded the "
                           f"limit of {self.config.rate_per_s:g} requests per second.")
        key = request.query_params.get("apiKey")
        if not key:
            raise _Refused(401, "MISSING_KEY", "API key is missing")
        if key != self.config.api_key:
            raise _Refused(401, "INVALID_KEY", "API key is not valid")
        if paid and self.remaining <= 0:
            raise _Refused(401, "OUT_OF_USAGE_CREDITS", "Usage quota has been reached. "
                           "See usage plans at https://the-odds-api.com")

    async def _handle(self, request: Request, paid: bool, body: Callable[[], tuple[Any, int]]
                      ) -> Response:
        try:
            self._gate(request, paid=paid)
            content, cost = body()
        except _Refused as r:
            return self._respond(error_body(r.code, r.message), status=r.status, raw=r.raw)
        return self._respond(content, cost=cost)

    # --- parameters -------------------------------------------------------------------------

    def _books_and_units(self, request: Request) -> tuple[list[SimBook], int]:
        """Books selected by ``bookmakers`` (priority) or ``regions``, and the region-equivalents
        they cost."""
        q = request.query_params
        keys, regions = _csv(q.get("bookmakers")), _csv(q.get("regions"))
        if keys:
            unknown = [k for k in keys if k not in self.books]
            if unknown:
                raise _Refused(422, "INVALID_BOOKMAKERS", f"Invalid bookmakers: {','.join(unknown)}")
            keys = list(dict.fromkeys(keys))
            return [self.books[k] for k in keys], math.ceil(len(keys) / BOOKS_PER_REGION)
        if regions:
            bad = [r for r in regions if r not in REGIONS]
            if bad:
                raise _Refused(422, "INVALID_REGION", f"Invalid regions: {','.join(bad)}")
            regions = list(dict.fromkeys(regions))
            return [b for b in self.config.books if b.region in regions], len(regions)
        raise _Refused(422, "MISSING_REGION", "Missing regions or bookmakers parameter")

    @staticmethod
    def _formats(request: Request) -> tuple[str, str]:
        odds_format = request.query_params.get("oddsFormat", "decimal")
        date_format = request.query_params.get("dateFormat", "iso")
        if odds_format not in ("decimal", "american"):
            raise _Refused(422, "INVALID_ODDS_FORMAT", f"Invalid oddsFormat: {odds_format}")
        if date_format not in ("iso", "unix"):
            raise _Refused(422, "INVALID_DATE_FORMAT", f"Invalid dateFormat: {date_format}")
        return odds_format, date_format

    @staticmethod
    def _sport(request: Request) -> str:
        sport = request.path_params["sport"]
        if sport != "upcoming" and sport not in SPORTS:
            raise _Refused(404, "UNKNOWN_SPORT", f"Unknown sport: {sport}")
        return sport

    def _time_bound(self, request: Request, name: str) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            return iso_to_ns(raw)
        except (ValueError, TypeError, OverflowError):
            code = "INVALID_COMMENCE_TIME_" + ("FROM" if name.endswith("From") else "TO")
            raise _Refused(422, code, f"Invalid {name}: {raw}") from None

    # --- payloads ---------------------------------------------------------------------------

    def _quotes(self, game: SimGame, books: Sequence[SimBook], now_ns: int) -> list[BookQuote]:
        quotes = (quote_h2h(b, game, seed=self.config.seed, now_ns=now_ns, truth=self.truth)
                  for b in books)
        return [q for q in quotes if q is not None]

    def event_json(
        self, game: SimGame, books: Sequence[SimBook], markets: Sequence[str], *, now_ns: int,
        odds_format: str = "decimal", date_format: str = "iso", event_level: bool = False,
    ) -> dict[str, Any]:
        """One event in the v4 shape. ``event_level`` (event-odds endpoint) drops the
        bookmaker-level ``last_update``, as the real API does."""
        def stamp(ns: int) -> str | int:
            return ns // 1_000_000_000 if date_format == "unix" else ns_to_iso(ns)

        bookmakers: list[dict[str, Any]] = []
        if "h2h" in markets:
            names = game.outcome_names
            for q in self._quotes(game, books, now_ns):
                def market(key: str, prices: Sequence[float]) -> dict[str, Any]:
                    outcomes = [{"name": n, "price": _price(p, odds_format)}
                                for n, p in zip(names, prices)]
                    return {"key": key, "last_update": stamp(q.last_update_ns), "outcomes": outcomes}

                mkts = [market("h2h", q.prices)]
                if q.lay_prices is not None:
                    mkts.append(market("h2h_lay", q.lay_prices))
                entry: dict[str, Any] = {"key": q.book.key, "title": q.book.title}
                if not event_level:
                    entry["last_update"] = stamp(q.last_update_ns)
                entry["markets"] = mkts
                bookmakers.append(entry)
        return {
            "id": game.event_id, "sport_key": game.sport_key, "sport_title": game.sport_title,
            "commence_time": stamp(game.commence_ns), "home_team": game.home_team,
            "away_team": game.away_team, "bookmakers": bookmakers,
        }

    # --- endpoints --------------------------------------------------------------------------

    async def _sports(self, request: Request) -> Response:
        def body() -> tuple[Any, int]:
            show_all = request.query_params.get("all", "false").lower() == "true"
            active = {g.sport_key for g in self.slate}
            out = [
                {"key": s.key, "group": s.group, "title": s.title, "description": s.description,
                 "active": s.key in active, "has_outrights": False}
                for s in SPORTS.values() if show_all or s.key in active
            ]
            return out, 0
        return await self._handle(request, False, body)

    async def _odds(self, request: Request) -> Response:
        def body() -> tuple[Any, int]:
            sport = self._sport(request)
            markets = _csv(request.query_params.get("markets", "h2h")) or ["h2h"]
            bad = [m for m in markets if m not in FEATURED_MARKETS]
            if bad:
                raise _Refused(422, "INVALID_MARKET",
                               f"Markets not supported by this endpoint: {','.join(bad)}")
            books, units = self._books_and_units(request)
            odds_format, date_format = self._formats(request)
            games = self._selected(request, sport)
            now = self.clock_ns()
            out = [self.event_json(g, books, markets, now_ns=now, odds_format=odds_format,
                                   date_format=date_format) for g in games]
            return out, (len(set(markets)) * units if out else 0)
        return await self._handle(request, True, body)

    def _selected(self, request: Request, sport: str) -> list[SimGame]:
        """Slate games of ``sport`` passing ``eventIds`` and ``commenceTimeFrom/To``."""
        ids = _csv(request.query_params.get("eventIds"))
        if any(not _EVENT_ID.match(i) for i in ids):
            raise _Refused(422, "INVALID_EVENT_IDS", "Invalid eventIds")
        lo = self._time_bound(request, "commenceTimeFrom")
        hi = self._time_bound(request, "commenceTimeTo")
        if lo is not None and hi is not None and hi <= lo:
            raise _Refused(422, "INVALID_COMMENCE_TIME_RANGE",
                           "commenceTimeTo must be after commenceTimeFrom")
        return [
            g for g in self.slate
            if (sport == "upcoming" or g.sport_key == sport) and (not ids or g.event_id in ids)
            and (lo is None or g.commence_ns >= lo) and (hi is None or g.commence_ns <= hi)
        ]

    async def _events(self, request: Request) -> Response:
        """The free event list: the v4 event shape without ``bookmakers``."""
        def body() -> tuple[Any, int]:
            sport = self._sport(request)
            date_format = request.query_params.get("dateFormat", "iso")
            if date_format not in ("iso", "unix"):
                raise _Refused(422, "INVALID_DATE_FORMAT", f"Invalid dateFormat: {date_format}")
            out = []
            for g in self._selected(request, sport):
                ev = self.event_json(g, (), (), now_ns=self.clock_ns(), date_format=date_format)
                del ev["bookmakers"]
                out.append(ev)
            return out, 0
        return await self._handle(request, False, body)

    async def _event_odds(self, request: Request) -> Response:
        def body() -> tuple[Any, int]:
            sport = self._sport(request)
            event_id = request.path_params["event_id"]
            game = next((g for g in self.slate if g.event_id == event_id
                         and sport in ("upcoming", g.sport_key)), None)
            if game is None:
                raise _Refused(404, "EVENT_NOT_FOUND", f"Event not found: {event_id}")
            markets = _csv(request.query_params.get("markets", "h2h")) or ["h2h"]
            books, units = self._books_and_units(request)
            odds_format, date_format = self._formats(request)
            out = self.event_json(game, books, markets, now_ns=self.clock_ns(),
                                  odds_format=odds_format, date_format=date_format,
                                  event_level=True)
            returned = {m["key"] for b in out["bookmakers"] for m in b["markets"]} & set(markets)
            return out, len(returned) * units
        return await self._handle(request, True, body)


# --- runner -----------------------------------------------------------------------------------


@dataclass
class OddsServer:
    """Runs :class:`OddsSim` on ``127.0.0.1:port`` (0 = a free port) via :class:`LoopbackServer`.

    ``start()``/``stop()`` (or ``with``) run it in a background thread with its own loop;
    ``astart()``/``astop()`` (or ``async with``) run it as a task in the current loop. Both return
    only once the server accepts connections. ``url`` is e.g. ``http://127.0.0.1:54321``.
    """

    config: OddsServerConfig = field(default_factory=OddsServerConfig)
    port: int = 0
    clock_ns: ClockNs = time.time_ns
    truth: TruthFn = static_truth
    startup_timeout_s: float = 10.0
    slate: Sequence[SimGame] | None = None
    """Serve these games (e.g. a scenario's) instead of a slate made from ``config``."""

    def __post_init__(self) -> None:
        self.sim = OddsSim(self.config, clock_ns=self.clock_ns, truth=self.truth, slate=self.slate)
        self._runner = LoopbackServer(self.sim.app, self.port, name="odds-server",
                                      startup_timeout_s=self.startup_timeout_s)

    @property
    def url(self) -> str:
        return self._runner.url

    def start(self) -> OddsServer:
        self._runner.start()
        return self

    def stop(self) -> None:
        self._runner.stop()

    async def astart(self) -> OddsServer:
        await self._runner.astart()
        return self

    async def astop(self) -> None:
        await self._runner.astop()

    def __enter__(self) -> OddsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> OddsServer:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()
