"""The local exchange's REST server over real loopback sockets (uvicorn + httpx), no mocks.

Every trade-API response a test receives is validated against reference/kalshi/openapi.yaml
with openapi-core (see ``simkit.UNDECLARED_STATUS_RULES`` for the documented exceptions);
without the reference material the tests still run and the ``test_spec_validation_active``
test is skipped with the reason.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from mmcore.models import iso_to_ns
from mmcore.sim.exchange import BASIC, LocalExchange
from mmcore.sim.engine import OrderRequest
from mmcore.units import parse_dollars
from mmcore.venues.kalshi.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER
from simkit import (
    UNDECLARED_STATUS_RULES, KalshiClient, Keys, SpecValidator, TestClock, checks,
    client_models_check, make_exchange, order, serve,
)

MM, OTHER = "mm", "other"
MM_KEY, OTHER_KEY = "mm-key-0001", "other-key-0002"
TOO_MANY = {"error": "too many requests"}


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spec(request: pytest.FixtureRequest) -> Iterator[SpecValidator | None]:
    """The spec validator, loaded once; None (validation skipped) without ../shared."""
    try:
        shared = request.getfixturevalue("shared_dir")
    except pytest.skip.Exception as exc:
        warnings.warn(f"OpenAPI validation skipped: {exc}", stacklevel=1)
        yield None
        return
    path = shared / "reference" / "kalshi" / "openapi.yaml"
    if not path.is_file():
        warnings.warn(f"OpenAPI validation skipped: {path} not found", stacklevel=1)
        yield None
        return
    validator = SpecValidator(path)
    yield validator
    print(f"\nOpenAPI: {validator.validated} responses validated; undeclared statuses "
          f"(checked as error bodies): {sorted(validator.undeclared)}")


@pytest.fixture(scope="session")
def keys() -> dict[str, Keys]:
    """RSA key pairs generated at test time (never committed): mm, other, and a stranger."""
    return {name: Keys.generate() for name in (MM, OTHER, "stranger")}


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


class Venue:
    """One local exchange served on loopback, with signed clients for mm and other."""

    def __init__(self, ex: LocalExchange, clock: TestClock, url: str, http: httpx.Client,
                 keys: dict[str, Keys], spec: SpecValidator | None) -> None:
        self.ex, self.clock, self.url = ex, clock, url
        check = checks(spec, client_models_check)
        self.mm = KalshiClient(http, url, clock, keys[MM].signer(MM_KEY), check)
        self.other = KalshiClient(http, url, clock, keys[OTHER].signer(OTHER_KEY), check)
        self.anon = KalshiClient(http, url, clock, None, check)
        self.http = http
        self.markets = sorted(ex.engine.markets)
        self.ticker = self.markets[0]

    def fault(self, kind: str, **params: Any) -> dict[str, Any]:
        resp = self.http.post(self.url + "/sim/faults", json={"kind": kind, "params": params})
        assert resp.status_code == 200, resp.text
        return resp.json()

    def state(self) -> dict[str, Any]:
        return self.http.get(self.url + "/sim/state").json()


def _venue(http: httpx.Client, keys: dict[str, Keys], spec: SpecValidator | None,
           clock: TestClock, **kw: Any) -> Iterator[Venue]:
    ex = make_exchange(clock, {MM: (MM_KEY, keys[MM]), OTHER: (OTHER_KEY, keys[OTHER])}, **kw)
    with serve(ex) as srv:
        yield Venue(ex, clock, srv.url, http, keys, spec)


@pytest.fixture
def venue(http: httpx.Client, keys: dict[str, Keys], spec: SpecValidator | None
          ) -> Iterator[Venue]:
    yield from _venue(http, keys, spec, TestClock())


def test_spec_validation_active(spec: SpecValidator | None) -> None:
    if spec is None:
        pytest.skip("reference/kalshi/openapi.yaml absent: responses are not spec-validated")
    assert "429" in UNDECLARED_STATUS_RULES


# --- helpers --------------------------------------------------------------------------------------


def _place(client: KalshiClient, ticker: str, side: str, price: str, count: str,
           **extra: Any) -> dict[str, Any]:
    resp = client.post("/portfolio/events/orders", order(ticker, side, price, count, **extra))
    assert resp.status_code == 201, resp.text
    return resp.json()


def _order(client: KalshiClient, order_id: str) -> dict[str, Any]:
    resp = client.get(f"/portfolio/orders/{order_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()["order"]


def _positions(client: KalshiClient, **params: str) -> dict[str, str]:
    resp = client.get("/portfolio/positions", params=params)
    assert resp.status_code == 200, resp.text
    return {p["ticker"]: p["position_fp"] for p in resp.json()["market_positions"]}


def _balance(client: KalshiClient) -> Decimal:
    body = client.get("/portfolio/balance").json()
    assert body["balance"] == int(Decimal(body["balance_dollars"]) * 100)
    return Decimal(body["balance_dollars"])


def _error(resp: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code, body
    return body


def _walk(client: KalshiClient, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated listing, following cursors until the empty one."""
    items, cursor, pages = [], "", 0
    while True:
        resp = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        items += body[key]
        pages += 1
        cursor = body["cursor"]
        if not cursor:
            return items
        assert pages < 100


def _eventually(check: Any, timeout_s: float = 5.0, what: str = "condition") -> float:
    """Poll ``check()`` until truthy; returns the seconds it took (fails after ``timeout_s``)."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.01)  # ok: poll interval inside a bounded wait
    return time.monotonic() - t0


# --- public market data ---------------------------------------------------------------------------


def test_exchange_series_events_markets(venue: Venue) -> None:
    anon, ex = venue.anon, venue.ex
    assert anon.get("/exchange/status").json()["trading_active"] is True
    series = anon.get("/series").json()["series"]
    assert {s["ticker"] for s in series} == set(ex.engine.series)
    one = anon.get(f"/series/{series[0]['ticker']}", params={"include_volume": "true"}).json()
    assert one["series"]["volume_fp"] == "0.00"
    _error(anon.get("/series/NOPE"), 404, "series_not_found")

    events = anon.get("/events", params={"with_nested_markets": "true"}).json()
    assert {e["event_ticker"] for e in events["events"]} == set(ex.engine.events)
    assert all(len(e["markets"]) == 2 for e in events["events"])
    assert events["cursor"] == ""
    ev = events["events"][0]["event_ticker"]
    flat = anon.get(f"/events/{ev}").json()
    assert "markets" not in flat["event"] and len(flat["markets"]) == 2
    nested = anon.get(f"/events/{ev}", params={"with_nested_markets": "true"}).json()
    assert len(nested["event"]["markets"]) == 2 and nested["markets"] == []
    _error(anon.get("/events/NOPE"), 404, "event_not_found")

    markets = anon.get("/markets", params={"event_ticker": ev, "status": "open"}).json()
    assert [m["event_ticker"] for m in markets["markets"]] == [ev, ev]
    m = markets["markets"][0]
    assert m["status"] == "active" and m["price_level_structure"] == "linear_cent"
    assert m["price_ranges"] == [{"start": "0.0000", "end": "1.0000", "step": "0.0100"}]
    some = anon.get("/markets", params={"tickers": ",".join(venue.markets[:3])}).json()
    assert [m["ticker"] for m in some["markets"]] == venue.markets[:3]
    assert anon.get("/markets", params={"status": "settled"}).json()["markets"] == []
    _error(anon.get("/markets", params={"status": "active"}), 400, "invalid_parameters")
    _error(anon.get("/markets", params={"limit": "1001"}), 400, "invalid_parameters")
    assert anon.get(f"/markets/{venue.ticker}").json()["market"]["ticker"] == venue.ticker
    _error(anon.get("/markets/NOPE"), 404, "market_not_found")


def test_milestones_carry_game_start(venue: Venue) -> None:
    anon = venue.anon
    for ev, start_ns in venue.ex.market_start_ns.items():
        body = anon.get("/milestones", params={"limit": "10", "related_event_ticker": ev}).json()
        (ms,) = body["milestones"]
        assert iso_to_ns(ms["start_date"]) == start_ns // 1000 * 1000
        assert ms["related_event_tickers"] == [ev] and ms["category"] == "Sports"
    listed = anon.get("/events", params={"with_milestones": "true"}).json()
    starts = {m["related_event_tickers"][0]: iso_to_ns(m["start_date"])
              for m in listed["milestones"]}
    assert starts == {e: s // 1000 * 1000 for e, s in venue.ex.market_start_ns.items()}
    _error(anon.get("/milestones"), 400, "invalid_parameters")  # limit is required by the spec


def test_public_routes_accept_signed_and_refuse_badly_signed(venue: Venue, keys: dict[str, Keys]
                                                             ) -> None:
    assert venue.mm.get("/markets").status_code == 200
    stale = keys[MM].signer(MM_KEY).headers("GET", "/trade-api/v2/markets",
                                            timestamp_ms=venue.clock() // 10**6 - 60_000)
    _error(venue.anon.get("/markets", headers=stale), 401, "unauthorized")


# --- auth -----------------------------------------------------------------------------------------


def _auth_cases(venue: Venue, keys: dict[str, Keys]) -> dict[str, dict[str, str]]:
    path = "/trade-api/v2/portfolio/balance"
    now_ms = venue.clock() // 10**6
    good = keys[MM].signer(MM_KEY).headers("GET", path, timestamp_ms=now_ms)
    with_query = keys[MM].signer(MM_KEY)
    query_sig = with_query.sign(f"{now_ms}GET{path}?limit=5".encode())
    return {
        "bad signature": keys["stranger"].signer(MM_KEY).headers("GET", path,
                                                                 timestamp_ms=now_ms),
        "stale timestamp": keys[MM].signer(MM_KEY).headers("GET", path,
                                                           timestamp_ms=now_ms - 31_000),
        "future timestamp": keys[MM].signer(MM_KEY).headers("GET", path,
                                                            timestamp_ms=now_ms + 31_000),
        "unknown key": keys["stranger"].signer("no-such-key").headers("GET", path,
                                                                      timestamp_ms=now_ms),
        "missing signature": {k: v for k, v in good.items() if k != SIGNATURE_HEADER},
        "missing timestamp": {k: v for k, v in good.items() if k != TIMESTAMP_HEADER},
        "query in signed path": {**good, SIGNATURE_HEADER: query_sig},
        "other method signed": keys[MM].signer(MM_KEY).headers("POST", path,
                                                               timestamp_ms=now_ms),
    }


def test_auth_refusals(venue: Venue, keys: dict[str, Keys]) -> None:
    for case, headers in _auth_cases(venue, keys).items():
        resp = venue.anon.get("/portfolio/balance", headers=headers, params={"limit": "5"})
        body = _error(resp, 401, "unauthorized")
        assert body["message"] and body["details"], (case, body)
        assert "status=" not in body["message"], body
    _error(venue.anon.get("/portfolio/balance"), 401, "unauthorized")
    assert venue.mm.get("/portfolio/balance", params={"limit": "5"}).status_code == 200


# --- the order lifecycle --------------------------------------------------------------------------


def test_order_lifecycle(venue: Venue) -> None:
    mm, other, t = venue.mm, venue.other, venue.ticker
    start_mm, start_other = _balance(mm), _balance(other)

    placed = _place(mm, t, "bid", "0.40", "10", client_order_id="q-1")
    assert placed["fill_count"] == "0.00" and placed["remaining_count"] == "10.00"
    assert placed["client_order_id"] == "q-1" and "average_fill_price" not in placed
    oid = placed["order_id"]
    resting = mm.get("/portfolio/orders", params={"status": "resting"}).json()["orders"]
    assert [o["order_id"] for o in resting] == [oid]
    assert resting[0]["book_side"] == "bid" and resting[0]["yes_price_dollars"] == "0.4000"
    book = venue.anon.get(f"/markets/{t}/orderbook").json()["orderbook_fp"]
    assert book == {"yes_dollars": [["0.4000", "10.00"]], "no_dollars": []}

    amended = mm.post(f"/portfolio/events/orders/{oid}/amend",
                      {"ticker": t, "side": "bid", "price": "0.42", "count": "12",
                       "client_order_id": "q-1", "updated_client_order_id": "q-2"})
    assert amended.status_code == 200, amended.text
    assert amended.json()["remaining_count"] == "12.00"
    assert amended.json()["client_order_id"] == "q-2"
    book = venue.anon.get(f"/markets/{t}/orderbook").json()["orderbook_fp"]
    assert book["yes_dollars"] == [["0.4200", "12.00"]]
    _error(mm.post(f"/portfolio/events/orders/{oid}/amend",
                   {"ticker": t, "side": "bid", "price": "0.42", "count": "12",
                    "client_order_id": "q-1"}), 400, "order_id_and_client_order_id_mismatch")

    decreased = mm.post(f"/portfolio/events/orders/{oid}/decrease", {"reduce_by": "2"})
    assert decreased.status_code == 200 and decreased.json()["remaining_count"] == "10.00"
    _error(mm.post(f"/portfolio/events/orders/{oid}/decrease",
                   {"reduce_by": "1", "reduce_to": "1"}), 400, "invalid_parameters")

    # another user sells 4 YES into the bid: mm is maker at 0.42
    hit = _place(other, t, "ask", "0.42", "4", time_in_force="immediate_or_cancel")
    assert hit["fill_count"] == "4.00" and hit["remaining_count"] == "0.00"
    assert hit["average_fill_price"] == "0.4200"
    fills = mm.get("/portfolio/fills", params={"ticker": t}).json()["fills"]
    assert len(fills) == 1
    fill = fills[0]
    assert (fill["order_id"], fill["count_fp"], fill["is_taker"]) == (oid, "4.00", False)
    assert fill["book_side"] == "bid" and fill["yes_price_dollars"] == "0.4200"
    assert _positions(mm) == {t: "4.00"} and _positions(other) == {t: "-4.00"}
    trades = venue.anon.get("/markets/trades", params={"ticker": t}).json()["trades"]
    assert trades[0]["taker_book_side"] == "ask" and trades[0]["count_fp"] == "4.00"
    market = venue.anon.get(f"/markets/{t}").json()["market"]
    assert market["last_price_dollars"] == "0.4200" and market["volume_fp"] == "4.00"

    _error(mm.delete(f"/portfolio/events/orders/{oid}", params={"market_ticker": "X"}),
           400, "order_ticker_mismatch")
    cancel = mm.delete(f"/portfolio/events/orders/{oid}", params={"market_ticker": t})
    assert cancel.status_code == 200 and cancel.json()["reduced_by"] == "6.00"
    assert _order(mm, oid)["status"] == "canceled"
    again = mm.delete(f"/portfolio/events/orders/{oid}")
    assert again.json()["reduced_by"] == "0.00"

    # with nothing resting, balances moved by exactly the fills' cost and fees
    mm_fee = Decimal(fill["fee_cost"])
    other_fill = other.get("/portfolio/fills").json()["fills"][0]
    assert other_fill["is_taker"] is True
    assert _balance(mm) == start_mm - Decimal("4") * Decimal("0.42") - mm_fee
    assert _balance(other) == (start_other - Decimal("4") * Decimal("0.58")
                               - Decimal(other_fill["fee_cost"]))
    pos = mm.get("/portfolio/positions").json()
    assert pos["market_positions"][0]["market_exposure_dollars"] == "1.6800"
    assert pos["market_positions"][0]["total_traded_dollars"] == "1.6800"
    assert pos["event_positions"][0]["event_ticker"] == market["event_ticker"]
    assert mm.get("/portfolio/balance").json()["portfolio_value"] >= 0


def test_refusals_carry_real_codes(venue: Venue) -> None:
    mm, other, t = venue.mm, venue.other, venue.ticker
    _place(other, t, "ask", "0.55", "5")
    body = _error(mm.post("/portfolio/events/orders", order(t, "bid", "0.55", "1",
                                                            post_only=True)),
                  400, "invalid_order")
    assert body["details"] == "post only cross"
    _place(mm, t, "bid", "0.30", "1", client_order_id="dup")
    _error(mm.post("/portfolio/events/orders", order(t, "bid", "0.31", "1",
                                                     client_order_id="dup")),
           409, "duplicate_client_order_id")
    body = _error(mm.post("/portfolio/events/orders", order(t, "yes", "0.30", "1")),
                  400, "invalid_parameters")
    assert "side" in body["message"] and "status=" not in body["message"]
    _error(mm.post("/portfolio/events/orders", order(t, "bid", "0.30001", "1")),
           400, "invalid_parameters")
    _error(mm.post("/portfolio/events/orders", order(t, "bid", "0.305", "1")),
           400, "invalid_order")  # off the 1-cent grid: the engine's check
    _error(mm.request("POST", "/portfolio/events/orders", content=b"{not json"),
           400, "invalid_parameters")
    _error(mm.post("/portfolio/events/orders", order("NOPE", "bid", "0.30", "1")),
           404, "market_not_found")
    _error(mm.delete("/portfolio/events/orders/ord-99999999"), 404, "order_not_found")
    _error(mm.post("/portfolio/events/orders", order(t, "bid", "0.30", "1", subaccount=3)),
           400, "invalid_parameters")
    # an IOC that finds nothing: fill 0, remaining 0 (final state), and GET shows it canceled
    ioc = _place(mm, venue.markets[1], "bid", "0.50", "2", time_in_force="immediate_or_cancel")
    assert (ioc["fill_count"], ioc["remaining_count"]) == ("0.00", "0.00")
    assert _order(mm, ioc["order_id"])["status"] == "canceled"
    oid = _place(mm, t, "bid", "0.20", "5")["order_id"]
    reduced = mm.post(f"/portfolio/events/orders/{oid}/decrease", {"reduce_to": "2.5"})
    assert reduced.json()["remaining_count"] == "2.50"


def test_batch_create_and_cancel(venue: Venue) -> None:
    mm, t = venue.mm, venue.ticker
    resp = mm.post("/portfolio/events/orders/batched", {"orders": [
        order(t, "bid", "0.20", "1", client_order_id="b-1"),
        order(t, "bid", "0.205", "1", client_order_id="b-2"),  # off grid
        {"ticker": t, "side": "bid", "client_order_id": "b-3"},  # malformed
        order(t, "ask", "0.80", "2", client_order_id="b-4"),
    ]})
    assert resp.status_code == 201, resp.text
    items = resp.json()["orders"]
    assert [("error" in i) for i in items] == [False, True, True, False]
    assert items[1]["error"]["code"] == "invalid_order" and items[1]["client_order_id"] == "b-2"
    assert items[2]["error"]["code"] == "invalid_parameters"
    ids = [items[0]["order_id"], items[3]["order_id"]]
    cancel = mm.delete("/portfolio/events/orders/batched",
                       {"orders": [{"order_id": ids[0]}, {"order_id": "ord-99999999"},
                                   {"order_id": ids[1]}]})
    assert cancel.status_code == 200, cancel.text
    got = cancel.json()["orders"]
    assert [g["reduced_by"] for g in got] == ["1.00", "0.00", "2.00"]
    assert got[1]["error"]["code"] == "order_not_found" and "ts_ms" not in got[1]
    assert mm.get("/portfolio/orders", params={"status": "resting"}).json()["orders"] == []
    _error(mm.post("/portfolio/events/orders/batched", {"orders": []}), 400, "invalid_parameters")


def test_pagination(venue: Venue) -> None:
    mm, t = venue.mm, venue.ticker
    ids = [_place(mm, t, "bid", f"0.{10 + i}", "1")["order_id"] for i in range(5)]
    seen = _walk(mm, "/portfolio/orders", "orders", limit=2)
    assert [o["order_id"] for o in seen] == ids[::-1]  # newest first, no repeats
    first = mm.get("/portfolio/orders", params={"limit": 2}).json()
    assert len(first["orders"]) == 2 and first["cursor"]
    markets = _walk(venue.anon, "/markets", "markets", limit=1)
    assert [m["ticker"] for m in markets] == venue.markets
    events = _walk(venue.anon, "/events", "events", limit=1)
    assert len(events) == len(venue.ex.engine.events)
    for i in range(3):
        _place(venue.other, t, "ask", f"0.{14 - i}", "1", time_in_force="immediate_or_cancel")
    fills = _walk(mm, "/portfolio/fills", "fills", limit=2)
    trades = _walk(venue.anon, "/markets/trades", "trades", limit=2, ticker=t)
    assert len(fills) == len(trades) == 3
    assert [f["trade_id"] for f in fills] == [tr["trade_id"] for tr in trades]
    _error(mm.get("/portfolio/orders", params={"cursor": "%%%"}), 400, "invalid_parameters")


def test_orderbooks_and_depth(venue: Venue) -> None:
    mm, other = venue.mm, venue.other
    a, b = venue.markets[:2]
    for p in ("0.30", "0.31", "0.32"):
        _place(mm, a, "bid", p, "1")
    _place(other, a, "ask", "0.60", "3")
    book = venue.anon.get(f"/markets/{a}/orderbook", params={"depth": 2}).json()["orderbook_fp"]
    assert book["yes_dollars"] == [["0.3100", "1.00"], ["0.3200", "1.00"]]  # ascending, best last
    assert book["no_dollars"] == [["0.4000", "3.00"]]  # the 0.60 ask as a NO bid
    many = venue.mm.get("/markets/orderbooks", params=[("tickers", a), ("tickers", b)]).json()
    assert [o["ticker"] for o in many["orderbooks"]] == [a, b]
    assert many["orderbooks"][1]["orderbook_fp"] == {"yes_dollars": [], "no_dollars": []}
    _error(venue.anon.get(f"/markets/{a}/orderbook", params={"depth": 101}), 400,
           "invalid_parameters")


def test_order_groups(venue: Venue) -> None:
    mm, t = venue.mm, venue.ticker
    created = mm.post("/portfolio/order_groups/create", {"contracts_limit": 5})
    assert created.status_code == 201, created.text
    gid = created.json()["order_group_id"]
    groups = mm.get("/portfolio/order_groups").json()["order_groups"]
    assert [(g["id"], g["contracts_limit_fp"]) for g in groups] == [(gid, "5.00")]
    oid = _place(mm, t, "bid", "0.25", "2", order_group_id=gid)["order_id"]
    assert mm.get(f"/portfolio/order_groups/{gid}").json()["orders"] == [oid]
    assert mm.put(f"/portfolio/order_groups/{gid}/limit",
                  {"contracts_limit_fp": "7"}).status_code == 200
    assert mm.put(f"/portfolio/order_groups/{gid}/trigger").status_code == 200
    assert _order(mm, oid)["status"] == "canceled"
    _error(mm.post("/portfolio/events/orders", order(t, "bid", "0.25", "1",
                                                     order_group_id=gid)),
           400, "order_group_triggered")
    assert mm.put(f"/portfolio/order_groups/{gid}/reset").status_code == 200
    _place(mm, t, "bid", "0.25", "1", order_group_id=gid)
    assert mm.delete(f"/portfolio/order_groups/{gid}").status_code == 200
    _error(mm.get(f"/portfolio/order_groups/{gid}"), 404, "order_group_not_found")


def test_legacy_writes_are_deprecated(venue: Venue) -> None:
    mm = venue.mm
    for method, path in (("POST", "/portfolio/orders"), ("POST", "/portfolio/orders/batched"),
                         ("DELETE", "/portfolio/orders/batched"),
                         ("DELETE", "/portfolio/orders/ord-1"),
                         ("POST", "/portfolio/orders/ord-1/amend"),
                         ("POST", "/portfolio/orders/ord-1/decrease")):
        body = _error(mm.request(method, path, json_body={}), 400, "deprecated")
        assert body["message"] == "Please switch to the V2 endpoints"
    _error(venue.anon.post("/portfolio/orders", {}), 401, "unauthorized")


def test_unknown_routes_and_user_data_timestamp(venue: Venue) -> None:
    _error(venue.anon.get("/no/such/route"), 404, "not_found")
    _error(venue.anon.request("PATCH", "/markets"), 405, "method_not_allowed")
    as_of = iso_to_ns(venue.anon.get("/exchange/user_data_timestamp").json()["as_of_time"])
    assert abs(as_of - venue.clock()) < 5 * 10**9


def test_settlements_listed(http: httpx.Client, keys: dict[str, Keys],
                            spec: SpecValidator | None) -> None:
    clock = TestClock()
    ex = make_exchange(clock, {MM: (MM_KEY, keys[MM]), OTHER: (OTHER_KEY, keys[OTHER])})
    t = sorted(ex.engine.markets)[-1]
    now = clock()
    ex.mutate(lambda e, n: e.place(OrderRequest(MM, t, "bid", 6000, 300), n))
    ex.mutate(lambda e, n: e.place(OrderRequest(OTHER, t, "ask", 6000, 300), n))
    ex.mutate(lambda e, n: e.settle(t, "yes", n))
    with serve(ex) as srv:
        v = Venue(ex, clock, srv.url, http, keys, spec)
        (s,) = v.mm.get("/portfolio/settlements").json()["settlements"]
        assert (s["ticker"], s["market_result"], s["yes_count_fp"], s["revenue"]) == (
            t, "yes", "3.00", 300)
        assert s["yes_total_cost_dollars"] == "1.8000" and s["value"] == 100
        assert _positions(v.mm) == {}
        market = v.anon.get(f"/markets/{t}").json()["market"]
        assert (market["status"], market["result"]) == ("finalized", "yes")
        assert market["settlement_value_dollars"] == "1.0000"
        assert now <= iso_to_ns(market["settlement_ts"]) + 10**6


# --- rate limits ----------------------------------------------------------------------------------


def test_write_bucket_429(http: httpx.Client, keys: dict[str, Keys],
                          spec: SpecValidator | None) -> None:
    """Basic tier on a frozen clock: 100 write tokens, 10 per create, 2 per cancel."""
    for v in _venue(http, keys, spec, TestClock(frozen=True), tier=BASIC):
        ids = [_place(v.mm, v.ticker, "bid", "0.10", "1")["order_id"] for _ in range(10)]
        resp = v.mm.post("/portfolio/events/orders", order(v.ticker, "bid", "0.10", "1"))
        assert resp.status_code == 429
        assert resp.content == b'{"error":"too many requests"}' and resp.json() == TOO_MANY
        assert "retry-after" not in resp.headers
        assert v.mm.get("/portfolio/orders").status_code == 200  # the read bucket is separate
        assert v.other.post("/portfolio/events/orders",
                            order(v.ticker, "bid", "0.10", "1")).status_code == 201  # per key
        assert v.mm.delete(f"/portfolio/events/orders/{ids[0]}").status_code == 429
        v.clock.advance(0.02)  # 100 tokens/s: 2 tokens back
        assert v.mm.delete(f"/portfolio/events/orders/{ids[0]}").status_code == 200
        assert v.mm.delete(f"/portfolio/events/orders/{ids[1]}").status_code == 429
        v.clock.advance(0.1)
        _place(v.mm, v.ticker, "bid", "0.10", "1")
        big = v.mm.post("/portfolio/events/orders/batched",
                        {"orders": [order(v.ticker, "bid", "0.10", "1")] * 11})
        _error(big, 400, "invalid_parameters")  # 110 tokens can never fit a 100-token bucket
        v.clock.advance(1.0)
        assert v.mm.post("/portfolio/events/orders/batched",
                         {"orders": [order(v.ticker, "bid", "0.10", "1")] * 10}
                         ).status_code == 201
        assert v.mm.post("/portfolio/events/orders/batched",
                         {"orders": [order(v.ticker, "bid", "0.10", "1")]}).status_code == 429
        state = v.state()
        assert state["rest"]["rate_limited"] == 4 and state["rest"]["answered_429"] == 4
        log = state["rate_limited_log"]
        assert [(e["method"], e["cause"], e["who"]) for e in log] == [
            ("POST", "bucket", MM_KEY), ("DELETE", "bucket", MM_KEY), ("DELETE", "bucket", MM_KEY),
            ("POST", "bucket", MM_KEY)]
        assert log[0]["path"] == "/trade-api/v2/portfolio/events/orders"
        assert [e["at_ns"] for e in log] == sorted(e["at_ns"] for e in log)


# --- faults ---------------------------------------------------------------------------------------


def test_fault_5xx(venue: Venue) -> None:
    venue.fault("http_5xx", count=3)
    first = venue.anon.get("/exchange/status")
    assert first.status_code == 503 and first.json()["exchange_active"] is False
    _error(venue.mm.get("/portfolio/balance"), 500, "internal_server_error")
    _error(venue.mm.post("/portfolio/events/orders", order(venue.ticker, "bid", "0.20", "1")),
           503, "service_unavailable")
    assert venue.mm.get("/portfolio/orders").json()["orders"] == []  # the write never ran
    state = venue.state()
    assert state["faults"]["http_5xx_remaining"] == 0
    assert [e.get("effect", "on") for e in state["fault_log"]][0] == "on"
    assert sum(1 for e in state["fault_log"] if e["kind"] == "http_5xx") == 4


def test_fault_rate_limit_storm(venue: Venue) -> None:
    at = venue.fault("rate_limit_storm", seconds=10)["applied"]["at_ns"]
    for resp in (venue.anon.get("/markets"), venue.mm.get("/portfolio/balance"),
                 venue.mm.post("/portfolio/events/orders", order(venue.ticker, "bid", "0.2", "1"))):
        assert resp.status_code == 429 and resp.json() == TOO_MANY
        assert "retry-after" not in resp.headers
    venue.clock.advance(10.5)
    assert venue.mm.get("/portfolio/balance").status_code == 200
    # every 429 is logged with its time and cause (the storm answers before authentication)
    state = venue.state()
    assert state["rest"]["answered_429"] == 3
    assert [(e["method"], e["path"].removeprefix("/trade-api/v2"), e["cause"], e["who"])
            for e in state["rate_limited_log"]] == [
        ("GET", "/markets", "storm", None), ("GET", "/portfolio/balance", "storm", None),
        ("POST", "/portfolio/events/orders", "storm", None)]
    assert all(at <= e["at_ns"] < at + 10 * 10**9 for e in state["rate_limited_log"])


def test_fault_slow_replies(venue: Venue) -> None:
    venue.fault("slow_replies", seconds=30, delay_s=0.5)
    t0 = time.monotonic()
    resp = venue.mm.post("/portfolio/events/orders", order(venue.ticker, "bid", "0.20", "1"))
    assert resp.status_code == 201 and time.monotonic() - t0 >= 0.5
    # the work was done before the (slow) reply: the order rests
    assert len(venue.mm.get("/portfolio/orders", params={"status": "resting"}).json()[
        "orders"]) == 1
    venue.clock.advance(31)
    t0 = time.monotonic()
    assert venue.anon.get("/markets").status_code == 200
    assert time.monotonic() - t0 < 0.5


def test_fault_cancel_acknowledged_but_not_applied(venue: Venue) -> None:
    mm, t = venue.mm, venue.ticker
    oid = _place(mm, t, "bid", "0.35", "3")["order_id"]
    venue.fault("cancel_ack_not_applied", seconds=60, delay_s=0.4)
    t0 = time.monotonic()
    ack = mm.delete(f"/portfolio/events/orders/{oid}")
    assert ack.status_code == 200 and ack.json()["reduced_by"] == "3.00"  # looks applied
    assert _order(mm, oid)["status"] == "resting"  # ... but is not
    book = venue.anon.get(f"/markets/{t}/orderbook").json()["orderbook_fp"]
    assert book["yes_dollars"] == [["0.3500", "3.00"]]
    _eventually(lambda: _order(mm, oid)["status"] == "canceled", what="the late cancel")
    assert time.monotonic() - t0 >= 0.35
    effects = [e["effect"] for e in venue.state()["fault_log"] if "effect" in e]
    assert effects == ["acknowledged, not applied", "applied late, reduced_by 3.00"]


def test_fault_positions_lag(venue: Venue) -> None:
    mm, other, t = venue.mm, venue.other, venue.ticker
    _place(mm, t, "bid", "0.50", "2")
    _place(other, t, "ask", "0.50", "2")
    venue.clock.advance(10)
    venue.fault("positions_lag", seconds=60, lag_s=5)
    _place(mm, t, "bid", "0.50", "3")
    _place(other, t, "ask", "0.50", "3")
    assert _positions(mm) == {t: "2.00"}  # 5 s old: the second fill is not there yet
    assert len(mm.get("/portfolio/fills").json()["fills"]) == 2  # fills are not lagged
    as_of = iso_to_ns(venue.anon.get("/exchange/user_data_timestamp").json()["as_of_time"])
    assert venue.clock() - as_of >= 5 * 10**9 - 10**8
    venue.clock.advance(5)
    assert _positions(mm) == {t: "5.00"}
    venue.clock.advance(60)
    assert _positions(mm) == {t: "5.00"}


def test_fault_pause_and_reactivation(venue: Venue) -> None:
    mm, t = venue.mm, venue.ticker
    keep = _place(mm, t, "bid", "0.30", "1")["order_id"]
    on_pause = _place(mm, t, "bid", "0.31", "1", cancel_order_on_pause=True)["order_id"]
    venue.fault("pause", ticker=t)
    assert venue.anon.get(f"/markets/{t}").json()["market"]["status"] == "inactive"
    assert _order(mm, on_pause)["status"] == "canceled"
    assert _order(mm, keep)["status"] == "resting"
    _error(mm.post("/portfolio/events/orders", order(t, "bid", "0.30", "1")),
           400, "MARKET_INACTIVE")
    venue.fault("reactivate", ticker=t)
    assert _order(mm, keep)["status"] == "canceled"  # reactivation cancels every resting order
    assert venue.anon.get(f"/markets/{t}").json()["market"]["status"] == "active"
    _place(mm, t, "bid", "0.30", "1")


def test_fault_early_close(venue: Venue) -> None:
    mm, t = venue.mm, venue.ticker
    oid = _place(mm, t, "bid", "0.30", "1")["order_id"]
    event = venue.ex.engine.get_market(t).event_ticker
    venue.fault("early_close", ticker=event)
    market = venue.anon.get(f"/markets/{t}").json()["market"]
    assert market["status"] == "closed"
    assert iso_to_ns(market["close_time"]) <= venue.clock()
    assert _order(mm, oid)["status"] == "canceled"
    _error(mm.post("/portfolio/events/orders", order(t, "bid", "0.30", "1")),
           400, "MARKET_INACTIVE")
    _error(mm.delete(f"/portfolio/events/orders/{oid}"), 400, "MARKET_INACTIVE")
    closed = venue.anon.get("/markets", params={"status": "closed"}).json()["markets"]
    assert len(closed) == 2


def test_fault_control_route(venue: Venue) -> None:
    for kind, count in (("ws_disconnect", 1), ("seq_gap", 2), ("duplicate_delta", 3)):
        venue.fault(kind, count=count)
    faults = venue.state()["faults"]
    assert (faults["ws_disconnect_pending"], faults["ws_seq_gap_pending"],
            faults["ws_duplicate_pending"]) == (1, 2, 3)
    bad = venue.http.post(venue.url + "/sim/faults", json={"kind": "meteor", "params": {}})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_parameters"
    bad = venue.http.post(venue.url + "/sim/faults", json={"kind": "http_5xx", "params": {}})
    assert bad.status_code == 400
    bad = venue.http.post(venue.url + "/sim/faults", json={"kind": "pause",
                                                           "params": {"ticker": "NOPE"}})
    assert bad.status_code == 404
    assert len(venue.state()["fault_log"]) == 3
    assert parse_dollars(venue.state()["users"][MM]["balance_dollars"]) == 10_000 * 10_000
