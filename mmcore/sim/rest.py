"""The local exchange's REST server: Kalshi Trade API v2 (current shape) over a LocalExchange.

:func:`rest_routes` gives the Starlette routes under ``/trade-api/v2``; :func:`build_app` mounts
them with the operator/test control routes (``POST /sim/faults``, ``GET /sim/state``) and any
extra routes (the WebSocket endpoint), and answers unknown routes with a JSON 404/405.
:func:`apply_fault` (from :mod:`mmcore.sim.rest_faults`) switches faults on for the control route
and the scenario driver alike.

Every trade-API request goes through one dispatcher, in this order:

1. gateway faults: a ``rate_limit_storm`` answers 429; a pending ``http_5xx`` answers 503 then
   500 alternately, with an error body (the request is not processed);
2. authentication: RSA-PSS headers verified against ``ex.keys`` over ``timestamp + METHOD +
   path`` (path without the query) within 30 s of the exchange clock; 401 on failure.
   Public routes need no headers but verify them when any is sent;
3. rate limit: token buckets per API key (anonymous reads: per client address), ``read`` and
   ``write`` with ``ex.tier``'s rates, costs per kalshi.md §5 (default 10; single cancel and
   single-order GET 2; batch create 10 and batch cancel 2 per item); 429 with body exactly
   ``{"error": "too many requests"}`` and no ``Retry-After``. Every 429 (storm or bucket) is
   logged with its arrival time, route, key and cause (``GET /sim/state`` →
   ``rate_limited_log``, ``rest.answered_429``);
4. the handler; ``EngineError`` → its status and ``to_body()``, bad JSON / parameters → 400
   ``invalid_parameters``, anything unexpected → 500 (logged);
5. a ``slow_replies`` fault sleeps ``delay_s`` (real time) **after** the work is done, before
   the reply goes out — so a client that times out may still have placed its order.

``GET /account/limits`` reports the tier step 3 enforces (``ex.tier``: the scenario's
``rate_tier``, basic by default).

Listings: ``/series``, ``/events``, ``/markets`` by ticker; ``/markets/trades`` newest first;
``/milestones`` by start time. Cursors are opaque; ``""`` marks the last page.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mmcore.errors import AuthError, InvalidRequestError
from mmcore.models import iso_to_ns
from mmcore.sim import rest_orders as po
from mmcore.sim.engine import EngineError, Event, Market
from mmcore.sim.exchange import LocalExchange
from mmcore.sim.rest_faults import NS_PER_S, apply_fault, positions_lag_ns
from mmcore.sim.rest_http import (
    TOO_MANY_REQUESTS_BODY, ApiError, Ctx, RateLimited, RestState, error_body, paginate, q_bool,
    q_csv, q_enum, q_int, q_limit, q_str,
)
from mmcore.sim.rest_render import (
    MARKET_FILTER, event_json, iso, market_json, milestone_json, orderbook_json, series_json,
    sport_meta, trade_json,
)
from mmcore.units import format_count_fp, format_dollars
from mmcore.venues.kalshi.auth import AUTH_HEADERS, AUTH_UNKNOWN_KEY, verify_request
from mmcore.wirejson import WireJsonError, loads_client

__all__ = ["API_PREFIX", "apply_fault", "build_app", "rest_routes"]

log = logging.getLogger(__name__)
API_PREFIX = "/trade-api/v2"
AUTH_WINDOW_MS = 30_000
MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (1 MiB; a full batch of orders is a few kB): 413 past it."""
DAY_NS = 86_400 * NS_PER_S
Handler = Callable[[Ctx], tuple[int, Any]]


@dataclass(frozen=True)
class _Op:
    bucket: str
    """``read`` or ``write``."""
    auth: bool
    cost: int | None
    """Tokens charged before the handler runs; None when the handler charges (batches)."""


PUBLIC, READ, ONE_ORDER = _Op("read", False, 10), _Op("read", True, 10), _Op("read", True, 2)
WRITE, CANCEL, BATCH = _Op("write", True, 10), _Op("write", True, 2), _Op("write", True, None)


# --- the dispatcher -----------------------------------------------------------------------------


def _gateway_faults(state: RestState, request: Request, now_ns: int) -> None:
    f = state.ex.faults
    if now_ns < f.rate_limit_storm_until_ns:
        state.count("rate_limit_storm")
        raise RateLimited()
    rel = request.url.path.removeprefix(API_PREFIX)
    if f.route_5xx.get(rel, 0) > 0:
        f.route_5xx[rel] -= 1
        f.log.append({"at_ns": now_ns, "kind": "route_5xx", "params": {"path": rel},
                      "effect": f"answered 503 to {request.method} {request.url.path}"})
        raise ApiError(503, "service_unavailable", "service temporarily unavailable")
    if f.http_5xx_remaining > 0:
        f.http_5xx_remaining -= 1
        state.n_5xx += 1
        status = 503 if state.n_5xx % 2 else 500
        state.ex.faults.log.append({
            "at_ns": now_ns, "kind": "http_5xx", "params": {"status": status},
            "effect": f"answered {status} to {request.method} {request.url.path}"})
        if status == 503:
            raise ApiError(503, "service_unavailable", "service temporarily unavailable")
        raise ApiError(500, "internal_server_error", "internal server error")


def _authenticate(state: RestState, request: Request, required: bool) -> str | None:
    """The API key id of a signed request; None for an unsigned one on a public route."""
    if not required and not any(h in request.headers for h in AUTH_HEADERS):
        return None
    raw = request.scope.get("raw_path") or request.url.path.encode()
    key_id = verify_request(state.ex.keys, request.method, raw.decode("latin-1"),
                            request.headers, now_ms=state.ex.now_ns() // 1_000_000,
                            window_ms=AUTH_WINDOW_MS)
    if key_id not in state.ex.key_users:
        raise AuthError(f"API key {key_id!r} has no user", status=401, code=AUTH_UNKNOWN_KEY)
    return key_id


def _message(exc: Exception) -> str:
    """The bare message of an error (``VenueError.__str__`` appends status and code)."""
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _render_error(exc: Exception) -> tuple[int, Any]:
    if isinstance(exc, RateLimited):
        return 429, TOO_MANY_REQUESTS_BODY
    if isinstance(exc, ApiError):
        return exc.status, exc.body()
    if isinstance(exc, EngineError):
        return exc.status, exc.to_body()
    if isinstance(exc, InvalidRequestError):
        return 400, error_body(exc.code or "invalid_parameters", _message(exc))
    if isinstance(exc, AuthError):
        return 401, error_body("unauthorized", _message(exc), exc.code or "")
    log.exception("local exchange: unexpected error", exc_info=exc)
    return 500, error_body("internal_server_error", f"{type(exc).__name__}: {exc}")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 ``payload_too_large`` past ``limit`` bytes (from
    ``Content-Length`` when sent, else while streaming: never more than ``limit`` held)."""
    declared = request.headers.get("content-length", "")
    if len(declared) > 15 or (declared.isdigit() and int(declared) > limit):
        raise ApiError(413, "payload_too_large", f"request body over {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def json_reply(body: Any, status: int) -> Response:
    """``body`` as JSON with ``status``. Rendering never turns a processed request into a
    plain-text 500: a string UTF-8 cannot carry (input validation should have refused it) is
    sent \\u-escaped with the real status; anything else unrenderable is a JSON 500."""
    try:
        return JSONResponse(body, status_code=status)
    except UnicodeEncodeError:
        log.error("local exchange: reply to escape (a string is not valid Unicode)")
        try:
            text = json.dumps(body, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
            return Response(text, status_code=status, media_type="application/json")
        except (ValueError, TypeError, RecursionError):
            pass
    except (ValueError, TypeError, RecursionError):
        pass
    log.exception("local exchange: reply could not be rendered")
    return JSONResponse(error_body("internal_server_error", "the reply could not be rendered"),
                        status_code=500)


async def _dispatch(state: RestState, op: _Op, handler: Handler, request: Request) -> Response:
    ex = state.ex
    now = ex.now_ns()
    who: str | None = None
    try:
        _gateway_faults(state, request, now)
        key_id = _authenticate(state, request, op.auth)
        host = request.client.host if request.client else "unknown"
        who = key_id or f"ip:{host}"
        ctx = Ctx(state, request, ex.user_for_key(key_id) if key_id else None,
                  who, op.bucket, await read_body(request), now)
        if op.cost is not None:
            ctx.charge(op.cost)
        status, body = handler(ctx)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a Kalshi error body
        status, body = _render_error(exc)
        if status == 429:
            cause = "storm" if now < ex.faults.rate_limit_storm_until_ns else "bucket"
            state.note_429(now, request.method, request.url.path, who, cause)
    if status >= 500 and request.url.path == API_PREFIX + "/exchange/status":
        body = {"exchange_active": False, "trading_active": False, **body}
    f = ex.faults
    if f.slow_reply_s > 0 and ex.now_ns() < f.slow_until_ns:
        state.count("slow_replies")
        await asyncio.sleep(f.slow_reply_s)
    return json_reply(body, status)


# --- public market data -------------------------------------------------------------------------


def _trade_stats(ctx: Ctx) -> dict[str, tuple[int, int | None]]:
    """Per market: (volume over the last 24 h, YES price of the last trade before that)."""
    cut = ctx.now_ns - DAY_NS
    stats: dict[str, tuple[int, int | None]] = {}
    for t in ctx.ex.engine.trades():
        vol, prev = stats.get(t.ticker, (0, None))
        stats[t.ticker] = (vol + t.count, prev) if t.ts_ns > cut else (vol, t.price)
    return stats


def _markets_json(ctx: Ctx, markets: Iterable[Market]) -> list[dict[str, Any]]:
    engine, stats = ctx.ex.engine, _trade_stats(ctx)
    events = engine.events
    out = []
    for m in markets:
        volume_24h, previous = stats.get(m.ticker, (0, None))
        out.append(market_json(engine, m, events[m.event_ticker], volume_24h=volume_24h,
                               previous_price=previous))
    return out


def _start_ns(ctx: Ctx, e: Event) -> int | None:
    return ctx.ex.market_start_ns.get(e.event_ticker, e.start_ns)


def exchange_status(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"exchange_active": True, "trading_active": True,
                 "intra_exchange_transfers_active": True}


def user_data_timestamp(ctx: Ctx) -> tuple[int, Any]:
    """How fresh portfolio reads are: now, or now − lag under ``positions_lag``."""
    return 200, {"as_of_time": iso(ctx.now_ns - positions_lag_ns(ctx.ex, ctx.now_ns))}


def account_limits(ctx: Ctx) -> tuple[int, Any]:
    """``GET /account/limits``: the tier whose buckets :meth:`RestState.charge` enforces right
    now (``ex.tier``), in the spec's ``GetAccountApiLimitsResponse`` shape. Tiers above
    Advanced are volume-earned or assigned on Kalshi: reported with a permanent manual grant."""
    tier = ctx.ex.tier
    grants = ([] if tier.name in ("basic", "advanced") else
              [{"exchange_instance": "event_contract", "level": tier.name, "source": "manual"}])
    return 200, {
        "usage_tier": tier.name,
        "read": {"refill_rate": round(tier.read_per_s), "bucket_capacity": round(tier.read_capacity)},
        "write": {"refill_rate": round(tier.write_per_s),
                  "bucket_capacity": round(tier.write_capacity)},
        "grants": grants}


def list_series(ctx: Ctx) -> tuple[int, Any]:
    rq, engine = ctx.request, ctx.ex.engine
    category, tags = q_str(rq, "category"), set(q_csv(rq, "tags") or ())
    with_volume = q_bool(rq, "include_volume")
    q_bool(rq, "include_product_metadata")
    q_int(rq, "min_updated_ts", lo=0)
    out = []
    for s in sorted(engine.series.values(), key=lambda s: s.ticker):
        if (category is None or s.category == category) and (not tags or tags & set(s.tags)):
            out.append(series_json(s, volume=_series_volume(ctx, s.ticker) if with_volume
                                   else None, now_ns=ctx.now_ns))
    return 200, {"series": out}


def _series_volume(ctx: Ctx, series_ticker: str) -> int:
    engine = ctx.ex.engine
    events = {t for t, e in engine.events.items() if e.series_ticker == series_ticker}
    return sum(m.volume for m in engine.markets.values() if m.event_ticker in events)


def get_series(ctx: Ctx) -> tuple[int, Any]:
    s = ctx.ex.engine.get_series(ctx.param("series_ticker"))
    volume = _series_volume(ctx, s.ticker) if q_bool(ctx.request, "include_volume") else None
    return 200, {"series": series_json(s, volume=volume, now_ns=ctx.now_ns)}


def _event_matches(statuses: Sequence[str] | None, markets: list[Market]) -> bool:
    return statuses is None or any(m.status in statuses for m in markets)


def _milestones_for(ctx: Ctx, events: Iterable[Event]) -> list[dict[str, Any]]:
    out = []
    for e in events:
        start = _start_ns(ctx, e)
        if start is not None:
            out.append(milestone_json(e, start, now_ns=ctx.now_ns))
    return out


def list_events(ctx: Ctx) -> tuple[int, Any]:
    rq, engine = ctx.request, ctx.ex.engine
    limit = q_limit(rq, default=200, hi=200)
    status = q_enum(rq, "status", ("unopened", "open", "closed", "settled"))
    series, tickers = q_str(rq, "series_ticker"), q_csv(rq, "tickers")
    nested, with_ms = q_bool(rq, "with_nested_markets"), q_bool(rq, "with_milestones")
    min_close = q_int(rq, "min_close_ts", lo=0)
    q_int(rq, "min_updated_ts", lo=0)
    by_event: dict[str, list[Market]] = {}
    for m in engine.markets.values():
        by_event.setdefault(m.event_ticker, []).append(m)
    rows = [e for t, e in sorted(engine.events.items())
            if (series is None or e.series_ticker == series)
            and (tickers is None or t in tickers)
            and _event_matches(MARKET_FILTER[status] if status else None, by_event.get(t, []))
            and (min_close is None or any(m.close_ns > min_close * NS_PER_S
                                          for m in by_event.get(t, [])))]
    page, cursor = paginate(rows, lambda e: e.event_ticker, q_str(rq, "cursor"), limit)
    events = [event_json(e, engine.get_series(e.series_ticker), now_ns=ctx.now_ns,
                         markets=_markets_json(ctx, by_event.get(e.event_ticker, []))
                         if nested else None) for e in page]
    body: dict[str, Any] = {"events": events, "cursor": cursor}
    if with_ms:
        body["milestones"] = _milestones_for(ctx, page)
    return 200, body


def get_event(ctx: Ctx) -> tuple[int, Any]:
    engine = ctx.ex.engine
    e = engine.get_event(ctx.param("event_ticker"))
    markets = _markets_json(ctx, engine.event_markets(e.event_ticker))
    nested = q_bool(ctx.request, "with_nested_markets")
    return 200, {"event": event_json(e, engine.get_series(e.series_ticker), now_ns=ctx.now_ns,
                                     markets=markets if nested else None),
                 "markets": [] if nested else markets}


def list_markets(ctx: Ctx) -> tuple[int, Any]:
    rq, engine = ctx.request, ctx.ex.engine
    limit = q_limit(rq, default=100, hi=1000, zero_is_default=True)
    event, series = q_str(rq, "event_ticker"), q_str(rq, "series_ticker")
    if event is not None and "," in event:
        raise ApiError(400, "invalid_parameters", "event_ticker takes a single event ticker")
    tickers, status = q_csv(rq, "tickers"), q_enum(rq, "status", tuple(MARKET_FILTER))
    if q_str(rq, "mve_filter") == "only":
        return 200, {"markets": [], "cursor": ""}
    q_enum(rq, "mve_filter", ("only", "exclude"))
    bounds = {name: q_int(rq, name, lo=0) for name in (
        "min_created_ts", "max_created_ts", "min_close_ts", "max_close_ts", "min_settled_ts",
        "max_settled_ts")}
    events = engine.events

    def keep(m: Market) -> bool:
        times = {"created": m.created_ns, "close": m.close_ns, "settled": m.settled_ns}
        for name, bound in bounds.items():
            if bound is None:
                continue
            t = times[name.split("_")[1]]
            if t is None or (t < bound * NS_PER_S if name.startswith("min") else
                             t > bound * NS_PER_S):
                return False
        return ((event is None or m.event_ticker == event)
                and (series is None or events[m.event_ticker].series_ticker == series)
                and (tickers is None or m.ticker in tickers)
                and (status is None or m.status in MARKET_FILTER[status]))

    rows = [m for _, m in sorted(engine.markets.items()) if keep(m)]
    page, cursor = paginate(rows, lambda m: m.ticker, q_str(rq, "cursor"), limit)
    return 200, {"markets": _markets_json(ctx, page), "cursor": cursor}


def get_market(ctx: Ctx) -> tuple[int, Any]:
    return 200, {"market": _markets_json(ctx, [ctx.ex.engine.get_market(ctx.param("ticker"))])[0]}


def _depth(ctx: Ctx) -> int | None:
    depth = q_int(ctx.request, "depth", default=0, hi=100)
    return depth if depth and depth > 0 else None


def get_orderbook(ctx: Ctx) -> tuple[int, Any]:
    depth = _depth(ctx)
    return 200, {"orderbook_fp": orderbook_json(ctx.ex.engine, ctx.param("ticker"), depth)}


def get_orderbooks(ctx: Ctx) -> tuple[int, Any]:
    tickers = q_csv(ctx.request, "tickers", repeated=True)
    if not tickers or len(tickers) > 100:
        raise ApiError(400, "invalid_parameters", "tickers: give 1 to 100 market tickers")
    depth, engine = _depth(ctx), ctx.ex.engine
    unknown = [t for t in tickers if t not in engine.markets]
    if unknown:
        raise ApiError(400, "invalid_parameters", f"unknown market tickers: {unknown[:5]}")
    return 200, {"orderbooks": [{"ticker": t, "orderbook_fp": orderbook_json(engine, t, depth)}
                                for t in tickers]}


def list_trades(ctx: Ctx) -> tuple[int, Any]:
    rq = ctx.request
    limit = q_limit(rq, default=100, hi=1000, zero_is_default=True)
    lo, hi = (q_int(rq, name, lo=0) for name in ("min_ts", "max_ts"))
    if q_bool(rq, "is_block_trade", default=False):
        return 200, {"trades": [], "cursor": ""}
    rows = [t for t in reversed(ctx.ex.engine.trades(q_str(rq, "ticker")))
            if (lo is None or t.ts_ns >= lo * NS_PER_S)
            and (hi is None or t.ts_ns <= hi * NS_PER_S)]
    page, cursor = paginate(rows, lambda t: t.trade_id, q_str(rq, "cursor"), limit,
                            descending=True)
    return 200, {"trades": [trade_json(t) for t in page], "cursor": cursor}


def list_milestones(ctx: Ctx) -> tuple[int, Any]:
    rq = ctx.request
    limit = q_limit(rq, default=100, hi=500, required=True)
    related, category = q_str(rq, "related_event_ticker"), q_str(rq, "category")
    kind, competition = q_str(rq, "type"), q_str(rq, "competition")
    raw_min = q_str(rq, "minimum_start_date")
    try:
        min_start = None if raw_min is None else iso_to_ns(raw_min)
    except ValueError:
        raise ApiError(400, "invalid_parameters", "minimum_start_date must be RFC 3339") from None
    rows = []
    for e in ctx.ex.engine.events.values():
        start = _start_ns(ctx, e)
        meta = sport_meta(e.series_ticker)
        if (start is not None and (related is None or e.event_ticker == related)
                and category in (None, "Sports") and kind in (None, meta[0])
                and competition in (None, meta[1])
                and (min_start is None or start >= min_start)):
            rows.append((start, e))
    rows.sort(key=lambda r: (r[0], r[1].event_ticker))
    page, cursor = paginate(rows, lambda r: (r[0], r[1].event_ticker), q_str(rq, "cursor"), limit)
    return 200, {"milestones": _milestones_for(ctx, [e for _, e in page]), "cursor": cursor}


# --- routes -------------------------------------------------------------------------------------

_TABLE: tuple[tuple[str, str, _Op, Handler], ...] = (
    ("GET", "/exchange/status", PUBLIC, exchange_status),
    ("GET", "/exchange/user_data_timestamp", PUBLIC, user_data_timestamp),
    ("GET", "/account/limits", READ, account_limits),
    ("GET", "/series", PUBLIC, list_series),
    ("GET", "/series/{series_ticker}", PUBLIC, get_series),
    ("GET", "/events", PUBLIC, list_events),
    ("GET", "/events/{event_ticker}", PUBLIC, get_event),
    ("GET", "/markets", PUBLIC, list_markets),
    ("GET", "/markets/orderbooks", PUBLIC, get_orderbooks),
    ("GET", "/markets/trades", PUBLIC, list_trades),
    ("GET", "/markets/{ticker}", PUBLIC, get_market),
    ("GET", "/markets/{ticker}/orderbook", PUBLIC, get_orderbook),
    ("GET", "/milestones", PUBLIC, list_milestones),
    ("GET", "/portfolio/balance", READ, po.get_balance),
    ("GET", "/portfolio/positions", READ, po.get_positions),
    ("GET", "/portfolio/orders", READ, po.get_orders),
    ("GET", "/portfolio/orders/{order_id}", ONE_ORDER, po.get_order),
    ("GET", "/portfolio/fills", READ, po.get_fills),
    ("GET", "/portfolio/settlements", READ, po.get_settlements),
    ("GET", "/portfolio/order_groups", READ, po.list_groups),
    ("POST", "/portfolio/order_groups/create", WRITE, po.create_group),
    ("GET", "/portfolio/order_groups/{order_group_id}", READ, po.get_group),
    ("DELETE", "/portfolio/order_groups/{order_group_id}", WRITE, po.delete_group),
    ("PUT", "/portfolio/order_groups/{order_group_id}/reset", WRITE, po.reset_group),
    ("PUT", "/portfolio/order_groups/{order_group_id}/trigger", WRITE, po.trigger_group),
    ("PUT", "/portfolio/order_groups/{order_group_id}/limit", WRITE, po.limit_group),
    ("POST", "/portfolio/events/orders", WRITE, po.create_order),
    ("POST", "/portfolio/events/orders/batched", BATCH, po.batch_create),
    ("DELETE", "/portfolio/events/orders/batched", BATCH, po.batch_cancel),
    ("DELETE", "/portfolio/events/orders/{order_id}", CANCEL, po.cancel_order),
    ("POST", "/portfolio/events/orders/{order_id}/amend", WRITE, po.amend_order),
    ("POST", "/portfolio/events/orders/{order_id}/decrease", WRITE, po.decrease_order),
    ("POST", "/portfolio/orders", WRITE, po.legacy_write),
    ("POST", "/portfolio/orders/batched", WRITE, po.legacy_write),
    ("DELETE", "/portfolio/orders/batched", WRITE, po.legacy_write),
    ("DELETE", "/portfolio/orders/{order_id}", WRITE, po.legacy_write),
    ("POST", "/portfolio/orders/{order_id}/amend", WRITE, po.legacy_write),
    ("POST", "/portfolio/orders/{order_id}/decrease", WRITE, po.legacy_write),
)


def _routes(state: RestState) -> list[BaseRoute]:
    def endpoint(op: _Op, handler: Handler) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            return await _dispatch(state, op, handler, request)
        run.__name__ = handler.__name__
        return run

    return [Route(API_PREFIX + path, endpoint(op, handler), methods=[method])
            for method, path, op, handler in _TABLE]


def rest_routes(ex: LocalExchange) -> list[BaseRoute]:
    """The Kalshi Trade API v2 routes over ``ex`` (mount them in a Starlette app)."""
    return _routes(RestState(ex))


# --- control routes (outside the trade API) -----------------------------------------------------


def _control_routes(state: RestState) -> list[BaseRoute]:
    ex = state.ex

    async def post_fault(request: Request) -> Response:
        """Switch a fault on; every refusal is a 400/404/413 error body naming the problem
        (bad JSON, a bad parameter), and nothing changes on a refusal."""
        try:
            try:
                data = loads_client(await read_body(request))
            except WireJsonError as exc:
                raise ApiError(400, "invalid_parameters", f"fault: {exc}") from None
            if (not isinstance(data, dict) or not isinstance(data.get("kind"), str)
                    or not isinstance(data.get("params", {}), dict)):
                raise ApiError(400, "invalid_parameters",
                               'body must be {"kind": "<fault kind>", "params": {...}}')
            entry = apply_fault(ex, data["kind"], data.get("params") or {})
            status, body = 200, {"applied": entry, "faults": _faults_view(state)}
        except Exception as exc:  # noqa: BLE001 - every failure becomes an error body
            status, body = _render_error(exc)
        return json_reply(body, status)

    async def get_state(request: Request) -> Response:
        engine = ex.engine
        users = {}
        for user in engine.users:
            users[user] = {
                "balance_dollars": format_dollars(engine.balance(user)),
                "reserved_dollars": format_dollars(engine.reserved(user)),
                "positions": {p.ticker: format_count_fp(p.position)
                              for p in engine.positions(user) if p.position},
                "resting_orders": len(engine.orders(user, status="resting")),
            }
        markets = []
        for t, m in sorted(engine.markets.items()):
            bid, _, ask, _ = engine.best(t)
            markets.append({
                "ticker": t, "event_ticker": m.event_ticker, "status": m.status,
                "yes_bid": None if bid is None else format_dollars(bid),
                "yes_ask": None if ask is None else format_dollars(ask),
                "last_price": None if m.last_price is None else format_dollars(m.last_price),
                "volume_fp": format_count_fp(m.volume),
                "open_interest_fp": format_count_fp(m.open_interest)})
        return json_reply({"now_ns": ex.now_ns(), "faults": _faults_view(state),
                           "fault_log": ex.faults.log, "users": users, "markets": markets,
                           "rest": {**state.counters, "pending_cancels": state.pending_cancels},
                           "rate_limited_log": list(state.log_429)}, 200)

    return [Route("/sim/faults", post_fault, methods=["POST"]),
            Route("/sim/state", get_state, methods=["GET"])]


def _faults_view(state: RestState) -> dict[str, Any]:
    view = asdict(state.ex.faults)
    view.pop("log")
    return view


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    if status == 405:
        body = error_body("method_not_allowed", f"{request.method} is not allowed on "
                                                f"{request.url.path}")
    else:
        body = error_body("not_found", f"no route {request.method} {request.url.path}")
    return JSONResponse(body, status_code=status)


def build_app(ex: LocalExchange, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    """A Starlette app: the trade API (:func:`rest_routes`), ``/sim/faults``, ``/sim/state``
    and ``extra_routes`` (e.g. the WebSocket endpoint); unknown routes answer a JSON 404."""
    state = RestState(ex)
    routes = [*_routes(state), *_control_routes(state), *extra_routes]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
