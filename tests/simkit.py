"""Reusable builders for tests against the local exchange over real loopback sockets.

- :class:`TestClock` — the exchange clock a test controls: wall time plus a test-made offset
  (``advance``), or frozen (``frozen=True``) when a test needs exact token-bucket arithmetic.
- :func:`make_exchange` — a :class:`LocalExchange` from ``default_scenario`` with API keys
  registered for users (keys are generated at test time; never committed).
- :class:`KalshiClient` — a small signed httpx client for ``/trade-api/v2`` that signs with the
  test clock and hands every response to an optional checker (the OpenAPI validator).
- :class:`SpecValidator` — validates responses against ``reference/kalshi/openapi.yaml`` with
  openapi-core, with the documented exceptions in :data:`UNDECLARED_STATUS_RULES`.
- :func:`order` — a V2 create-order body.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mmcore.sim.exchange import LocalExchange, RateTier
from mmcore.sim.rest import API_PREFIX, build_app
from mmcore.sim.runner import LoopbackServer
from mmcore.sim.scenario import ResolvedScenario, default_scenario
from mmcore.venues.kalshi import schema as wire
from mmcore.venues.kalshi.auth import Signer, generate_key_pair, private_key_from_pem

GENEROUS = RateTier(read_per_s=1e6, read_capacity=1e6, write_per_s=1e6, write_capacity=1e6)
"""A tier no functional test can exhaust (the rate-limit test uses the real Basic tier)."""
SPEC_HOST = "https://external-api.kalshi.com"
"""Host of the spec's first server; paths keep their real ``/trade-api/v2`` prefix."""


class TestClock:
    """ns since the epoch: wall time (unless ``frozen``) plus whatever the test advanced."""

    __test__ = False  # not a pytest class

    def __init__(self, *, frozen: bool = False, start_ns: int | None = None) -> None:
        self.frozen = frozen
        self._wall0 = time.time_ns()
        self._start = self._wall0 if start_ns is None else start_ns
        self._offset = 0

    def __call__(self) -> int:
        moved = 0 if self.frozen else time.time_ns() - self._wall0
        return self._start + moved + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += round(seconds * 1e9)


@dataclass
class Keys:
    """One generated RSA key pair (PEM bytes), reusable across exchanges in a session."""

    private_pem: bytes
    public_pem: bytes

    @classmethod
    def generate(cls) -> Keys:
        return cls(*generate_key_pair())

    def signer(self, key_id: str) -> Signer:
        return Signer(key_id, private_key_from_pem(self.private_pem))


def make_exchange(clock: TestClock, users: dict[str, tuple[str, Keys]], *, seed: int = 11,
                  n_games: int = 2, tier: RateTier = GENEROUS,
                  extra_balance_users: dict[str, int] | None = None) -> LocalExchange:
    """A fresh exchange over :func:`scenario` with ``users`` = user id → (key id, keys)
    registered (users missing from the scenario are added with $10,000)."""
    ex = LocalExchange.from_scenario(scenario(seed, n_games), clock_ns=clock, tier=tier)
    for user, (key_id, keys) in users.items():
        if user not in ex.engine.users:
            ex.engine.add_user(user, balance=10_000 * 10_000)
        ex.add_key(key_id, keys.public_pem, user)
    for user, balance in (extra_balance_users or {}).items():
        ex.engine.add_user(user, balance=balance)
    return ex


@functools.lru_cache(maxsize=8)
def scenario(seed: int, n_games: int) -> ResolvedScenario:
    """``default_scenario`` resolved once per session at the wall clock's now (resolving the
    truth paths is the slow part; the resolved scenario is immutable, each exchange gets its
    own engine). Games start 5, 10… minutes after the first call."""
    return default_scenario(seed, time.time_ns(), n_games)


@contextmanager
def serve(ex: LocalExchange) -> Iterator[LoopbackServer]:
    with LoopbackServer(build_app(ex), name="local-kalshi") as srv:
        yield srv


Checker = Callable[[httpx.Response], None]

_CLIENT_MODELS: tuple[tuple[str, str, type[wire.WireResponse]], ...] = (
    ("GET", r"/exchange/status", wire.ExchangeStatus),
    ("GET", r"/exchange/user_data_timestamp", wire.GetUserDataTimestampResponse),
    ("GET", r"/series", wire.GetSeriesListResponse),
    ("GET", r"/series/[^/]+", wire.GetSeriesResponse),
    ("GET", r"/events", wire.GetEventsResponse),
    ("GET", r"/events/[^/]+", wire.GetEventResponse),
    ("GET", r"/markets", wire.GetMarketsResponse),
    ("GET", r"/markets/orderbooks", wire.GetMarketOrderbooksResponse),
    ("GET", r"/markets/trades", wire.GetTradesResponse),
    ("GET", r"/markets/[^/]+", wire.GetMarketResponse),
    ("GET", r"/markets/[^/]+/orderbook", wire.GetMarketOrderbookResponse),
    ("GET", r"/milestones", wire.GetMilestonesResponse),
    ("GET", r"/portfolio/balance", wire.GetBalanceResponse),
    ("GET", r"/portfolio/positions", wire.GetPositionsResponse),
    ("GET", r"/portfolio/orders", wire.GetOrdersResponse),
    ("GET", r"/portfolio/orders/[^/]+", wire.GetOrderResponse),
    ("GET", r"/portfolio/fills", wire.GetFillsResponse),
    ("GET", r"/portfolio/settlements", wire.GetSettlementsResponse),
    ("GET", r"/portfolio/order_groups", wire.GetOrderGroupsResponse),
    ("GET", r"/portfolio/order_groups/[^/]+", wire.GetOrderGroupResponse),
    ("POST", r"/portfolio/order_groups/create", wire.CreateOrderGroupResponse),
    ("POST", r"/portfolio/events/orders", wire.CreateOrderV2Response),
    ("POST", r"/portfolio/events/orders/batched", wire.BatchCreateOrdersV2Response),
    ("DELETE", r"/portfolio/events/orders/batched", wire.BatchCancelOrdersV2Response),
    ("DELETE", r"/portfolio/events/orders/[^/]+", wire.CancelOrderV2Response),
    ("POST", r"/portfolio/events/orders/[^/]+/amend", wire.AmendOrderV2Response),
    ("POST", r"/portfolio/events/orders/[^/]+/decrease", wire.DecreaseOrderV2Response),
)


def client_models_check(resp: httpx.Response) -> None:
    """Our own client's wire models (:mod:`mmcore.venues.kalshi.schema`) must parse every
    successful response of the local exchange, and :func:`parse_error` every error body."""
    path = resp.request.url.path
    if not path.startswith(API_PREFIX):
        return
    if resp.status_code >= 400:
        code, message = wire.parse_error(resp.content)
        assert message, resp.text
        return
    rel = path[len(API_PREFIX):]
    for method, pattern, model in _CLIENT_MODELS:
        if resp.request.method == method and re.fullmatch(pattern, rel):
            wire.parse_response(model, resp.content)
            return
    if resp.content not in (b"{}",):
        raise AssertionError(f"no client model for {resp.request.method} {rel}")


def checks(*checkers: Checker | None) -> Checker:
    """Run several response checkers (Nones skipped)."""
    active = [c for c in checkers if c is not None]

    def run(resp: httpx.Response) -> None:
        for c in active:
            c(resp)
    return run


@dataclass
class KalshiClient:
    """Signed requests to ``/trade-api/v2`` (``path`` below is relative to it)."""

    http: httpx.Client
    base_url: str
    clock: TestClock
    signer: Signer | None = None
    check: Checker | None = None

    def request(self, method: str, path: str, *, params: Any = None, json_body: Any = None,
                content: bytes | None = None, signed: bool = True,
                headers: dict[str, str] | None = None) -> httpx.Response:
        full = API_PREFIX + path
        hdrs = dict(headers or {})
        if signed and self.signer is not None and not headers:
            hdrs.update(self.signer.headers(method, full, timestamp_ms=self.clock() // 10**6))
        if json_body is not None:
            content = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        resp = self.http.request(method, self.base_url + full, params=params, content=content,
                                 headers=hdrs)
        if self.check is not None:
            self.check(resp)
        return resp

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json_body=body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, json_body=body, **kw)

    def delete(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, json_body=body, **kw)


def order(ticker: str, side: str, price: str, count: str, **extra: Any) -> dict[str, Any]:
    """A V2 ``CreateOrderV2Request`` body (GTC, taker_at_cross unless overridden)."""
    return {"ticker": ticker, "side": side, "price": price, "count": count,
            "time_in_force": "good_till_canceled", "self_trade_prevention_type": "taker_at_cross",
            **extra}


# --- OpenAPI validation -----------------------------------------------------------------------

UNDECLARED_STATUS_RULES = """
Exceptions to "the status must be declared for the operation" (the body is still checked):
- 429 on any operation: Kalshi documents the token-bucket 429 for every endpoint
  (rate_limits.md) but the spec declares it on POST /portfolio/events/orders only. Body must be
  exactly {"error": "too many requests"}.
- 400/404/409/500/503 on operations that do not declare them (e.g. 404 on
  GET /series/{series_ticker}, 400 MARKET_INACTIVE on DELETE /portfolio/events/orders/{id}
  after close, 503 gateway faults) and 404/405 on routes outside the spec: the body must be an
  ErrorResponse with string code, message and details.
"""


def _error_body_ok(resp: httpx.Response) -> None:
    body = resp.json()
    if resp.status_code == 429:
        assert body == {"error": "too many requests"}, body
        return
    assert isinstance(body, dict), body
    for name in ("code", "message", "details"):
        assert isinstance(body.get(name), str), (name, body)


class _Req:
    """The openapi-core request protocol over a sent httpx request."""

    def __init__(self, req: httpx.Request) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url = SPEC_HOST
        self.path = req.url.path
        self.full_url_pattern = SPEC_HOST + req.url.path
        self.method = req.method.lower()
        self.body = req.content or b""
        self.content_type = req.headers.get("content-type", "application/json")
        self.parameters = RequestParameters(
            path={}, query=ImmutableMultiDict(list(req.url.params.multi_items())),
            header=Headers(list(req.headers.items())), cookie=ImmutableMultiDict())


class _Resp:
    def __init__(self, resp: httpx.Response) -> None:
        from werkzeug.datastructures import Headers

        self.data = resp.content
        self.status_code = resp.status_code
        self.headers = Headers(list(resp.headers.items()))
        self.content_type = resp.headers.get("content-type", "").split(";")[0]


@dataclass
class SpecValidator:
    """Validate trade-API responses against the merged Kalshi OpenAPI spec.

    ``undeclared`` counts, per (method, path, status), the responses that fell under
    :data:`UNDECLARED_STATUS_RULES`; ``validated`` counts the rest.
    """

    spec_path: Path
    validated: int = 0
    undeclared: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from openapi_core import OpenAPI

        self._api = OpenAPI.from_file_path(str(self.spec_path))

    def __call__(self, resp: httpx.Response) -> None:
        from openapi_core.templating.paths.exceptions import PathNotFound
        from openapi_core.templating.responses.exceptions import ResponseNotFound

        if not resp.request.url.path.startswith(API_PREFIX):
            return
        if resp.status_code >= 400:
            _error_body_ok(resp)
        try:
            self._api.validate_response(_Req(resp.request), _Resp(resp))
        except (ResponseNotFound, PathNotFound) as exc:
            if resp.status_code < 400:
                raise AssertionError(f"{resp.request.method} {resp.request.url.path} "
                                     f"{resp.status_code}: {exc}") from exc
            key = (resp.request.method, resp.request.url.path, resp.status_code)
            self.undeclared[key] = self.undeclared.get(key, 0) + 1
            return
        except Exception as exc:
            from openapi_core.templating.paths.exceptions import OperationNotFound

            if isinstance(exc, OperationNotFound) and resp.status_code in (404, 405):
                return
            detail = getattr(exc, "__cause__", None) or exc
            raise AssertionError(
                f"{resp.request.method} {resp.request.url} → {resp.status_code} does not match "
                f"the spec: {detail}\nbody: {resp.text[:2000]}") from exc
        self.validated += 1
