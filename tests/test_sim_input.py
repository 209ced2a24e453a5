"""Hostile input against the local exchange over real loopback sockets (issue 12, defects 1–5,
8, 9): every refusal is a 4xx with a Kalshi error body naming the problem, nothing changes on a
refusal, and every listing and the WebSocket keep working afterwards.

The server is the real app (``build_app`` + the WebSocket route, uvicorn with
``ws_server_options``); requests are signed by the real :class:`~mmcore.venues.kalshi.auth.Signer`;
every trade-API response is parsed by our own client models (``client_models_check``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from mmcore.sim.engine import EngineError, OrderRequest
from mmcore.sim.rest import MAX_BODY_BYTES, build_app, json_reply
from mmcore.sim.runner import LoopbackServer
from mmcore.sim.ws import ws_route, ws_server_options
from mmcore.sim.ws_protocol import WS_MAX_MESSAGE_BYTES
from mmcore.units import parse_dollars
from mmcore.venues.kalshi.auth import WS_PATH
from simkit import KalshiClient, Keys, TestClock, client_models_check, make_exchange, order

MM, MM_KEY = "mm", "mm-key-input"
ORDERS = "/portfolio/events/orders"
DEEP = b"[" * 5000


class Venue:
    """One local exchange (REST + WebSocket) on loopback, with a signed client for ``mm``."""

    def __init__(self, http: httpx.Client, keys: Keys) -> None:
        self.clock = TestClock()
        self.ex = make_exchange(self.clock, {MM: (MM_KEY, keys)})
        self.keys = keys
        self.server = LoopbackServer(build_app(self.ex, [ws_route(self.ex)]), name="input",
                                     **ws_server_options())
        self.http = http
        self.ticker = min(self.ex.engine.markets)

    def __enter__(self) -> Venue:
        self.server.start()
        self.url = self.server.url
        self.mm = KalshiClient(self.http, self.url, self.clock, self.keys.signer(MM_KEY),
                               client_models_check)
        self.anon = KalshiClient(self.http, self.url, self.clock, None, client_models_check)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def raw(self, method: str, path: str, content: bytes, **kw: Any) -> httpx.Response:
        return self.mm.request(method, path, content=content, **kw)

    def fault(self, body: Any = None, content: bytes | None = None) -> httpx.Response:
        if content is None:
            content = json.dumps(body).encode()
        return self.http.post(self.url + "/sim/faults", content=content)

    def state(self) -> dict[str, Any]:
        resp = self.http.get(self.url + "/sim/state")
        assert resp.status_code == 200, resp.text
        return resp.json()

    def book_of_mm(self) -> tuple[Any, ...]:
        """What a refusal must leave unchanged: mm's money and resting orders, and the log."""
        st = self.state()
        user = st["users"][MM]
        orders = self.mm.get("/portfolio/orders")
        assert orders.status_code == 200, orders.text
        return (user["balance_dollars"], user["reserved_dollars"], user["resting_orders"],
                json.dumps(orders.json()["orders"]), len(st["fault_log"]))

    def ws(self) -> ClientConnection:
        headers = self.keys.signer(MM_KEY).headers("GET", WS_PATH,
                                                   timestamp_ms=self.clock() // 10**6)
        return connect(self.url.replace("http://", "ws://") + WS_PATH,
                       additional_headers=headers, open_timeout=5, proxy=None,
                       max_size=None)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def venue(http: httpx.Client, keys: Keys) -> Iterator[Venue]:
    with Venue(http, keys) as v:
        yield v


def _refused(resp: httpx.Response, status: int = 400, code: str = "invalid_parameters",
             says: str = "") -> str:
    """A JSON Kalshi error body with ``status`` and ``code`` whose message contains ``says``."""
    assert resp.status_code == status, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert says in body["message"], body
    return body["message"]


def _order_bytes(market: str, **fields_json: str) -> bytes:
    """A create-order body with some fields given as raw JSON text (e.g. ``"x\\ud800y"``)."""
    base = {k: json.dumps(v) for k, v in order(market, "bid", "0.05", "1").items()}
    base.update(fields_json)
    return ("{" + ",".join(f'"{k}":{v}' for k, v in base.items()) + "}").encode()


def _listings_work(v: Venue) -> None:
    for path in ("/portfolio/orders", "/portfolio/fills", "/portfolio/positions",
                 "/portfolio/order_groups"):
        resp = v.mm.get(path)
        assert resp.status_code == 200, (path, resp.text[:300])


def _ws_list_ok(conn: ClientConnection, cmd_id: int) -> list[dict[str, Any]]:
    """``list_subscriptions`` answers (the socket is up); the data frames that came first."""
    conn.send(json.dumps({"id": cmd_id, "cmd": "list_subscriptions"}))
    before = []
    while True:
        frame = json.loads(conn.recv(timeout=5))
        if frame.get("id") == cmd_id:
            assert frame["type"] == "ok", frame
            return before
        assert frame["type"] != "error", frame
        before.append(frame)


# --- defect 1: far-future expiration_time -------------------------------------------------------


def test_far_future_expiration_refused_and_listings_stay_up(venue: Venue) -> None:
    before = venue.book_of_mm()
    with venue.ws() as conn:
        conn.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {"channels": ["user_orders"]}}))
        assert json.loads(conn.recv(timeout=5))["type"] == "subscribed"
        for far in (253402300800, 4_102_444_801, 2**63):
            resp = venue.mm.post(ORDERS, order(venue.ticker, "bid", "0.05", "1",
                                               expiration_time=far))
            _refused(resp, says="expiration_time")
        assert venue.book_of_mm() == before
        _listings_work(venue)
        _ws_list_ok(conn, 2)  # the user's socket is still up
        # a sane expiry still works, and is rendered in every listing
        soon = venue.clock() // 10**9 + 3600
        resp = venue.mm.post(ORDERS, order(venue.ticker, "bid", "0.05", "1",
                                           expiration_time=soon))
        assert resp.status_code == 201, resp.text
        _listings_work(venue)
        frames = _ws_list_ok(conn, 3)
        assert [f["msg"]["order_id"] for f in frames if f["type"] == "user_order"] == [
            resp.json()["order_id"]]
    # the engine bounds it too (backtests place without the wire schema)
    with pytest.raises(EngineError, match="expiration_time"):
        venue.ex.mutate(lambda e, now: e.place(OrderRequest(
            MM, venue.ticker, "bid", 500, 100, expiration_ns=253402300800 * 10**9), now))


# --- defect 2: lone surrogates in string fields -------------------------------------------------


def test_lone_surrogates_refused_before_any_state_change(venue: Venue) -> None:
    before = venue.book_of_mm()
    bad = '"x\\ud800y"'
    for field in ("client_order_id", "order_group_id", "ticker"):
        resp = venue.raw("POST", ORDERS, _order_bytes(venue.ticker, **{field: bad}))
        _refused(resp, says="lone surrogate")
        assert venue.book_of_mm() == before, field
    batch = b'{"orders":[' + _order_bytes(venue.ticker, client_order_id=bad) + b"]}"
    _refused(venue.raw("POST", ORDERS + "/batched", batch), says="lone surrogate")
    # a surrogate as an object key is refused too
    _refused(venue.raw("POST", ORDERS, b'{"\\udfff": 1}'), says="lone surrogate")
    placed = venue.mm.post(ORDERS, order(venue.ticker, "bid", "0.05", "1", client_order_id="c1"))
    assert placed.status_code == 201, placed.text
    oid = placed.json()["order_id"]
    amend = (b'{"ticker":"%s","side":"bid","price":"0.05","count":"2",'
             b'"updated_client_order_id":"a\\ud800"}' % venue.ticker.encode())
    mid = venue.book_of_mm()
    _refused(venue.raw("POST", f"{ORDERS}/{oid}/amend", amend), says="lone surrogate")
    assert venue.book_of_mm() == mid
    _listings_work(venue)
    # the engine refuses them as well (any caller, not only the wire)
    with pytest.raises(EngineError, match="lone surrogate"):
        venue.ex.mutate(lambda e, now: e.place(OrderRequest(
            MM, venue.ticker, "bid", 500, 100, client_order_id="x\ud800"), now))
    assert venue.book_of_mm() == mid


def test_reply_rendering_never_becomes_a_plain_text_500() -> None:
    """Were a string UTF-8 cannot carry ever to reach a reply, the processed request still
    answers its real status with JSON (escaped), not a plain-text 500."""
    resp = json_reply({"order_id": "ord-1", "client_order_id": "x\ud800"}, 201)
    assert resp.status_code == 201
    assert json.loads(resp.body) == {"order_id": "ord-1", "client_order_id": "x\ud800"}
    resp = json_reply({"x": float("nan")}, 200)
    assert resp.status_code == 500 and json.loads(resp.body)["code"] == "internal_server_error"


# --- defect 3: deeply nested JSON ---------------------------------------------------------------


def test_deep_json_refused_everywhere(venue: Venue) -> None:
    before = venue.book_of_mm()
    oid = "ord-00000001"
    for method, path in (("POST", ORDERS), ("POST", ORDERS + "/batched"),
                         ("DELETE", ORDERS + "/batched"), ("POST", f"{ORDERS}/{oid}/amend"),
                         ("POST", f"{ORDERS}/{oid}/decrease"),
                         ("POST", "/portfolio/order_groups/create"),
                         ("PUT", "/portfolio/order_groups/og-1/limit")):
        for body in (DEEP, b'{"orders":' + b"[" * 40 + b"]" * 40 + b"}"):
            _refused(venue.raw(method, path, body), says="nested")
    cursor = base64.urlsafe_b64encode(DEEP).decode()
    for client, path in ((venue.anon, "/markets"), (venue.anon, "/events"),
                         (venue.anon, "/markets/trades"), (venue.mm, "/portfolio/orders"),
                         (venue.mm, "/portfolio/fills")):
        _refused(client.get(path, params={"cursor": cursor}), says="cursor")
    _refused(venue.anon.get("/markets", params={"cursor": "A" * 60_000}), says="cursor")
    _refused(venue.fault(content=DEEP), says="nested")
    assert venue.book_of_mm() == before
    _listings_work(venue)


def test_ws_bad_frames_get_an_error_and_a_proper_close(venue: Venue) -> None:
    with venue.ws() as conn:
        surrogate = ('{"id":5,"cmd":"subscribe","params":{"channels":["orderbook_delta"],'
                     '"market_ticker":"x\\ud800"}}')
        for frame in (DEEP.decode(), surrogate, "\ufeff{}"):
            conn.send(frame)
            reply = json.loads(conn.recv(timeout=5))
            assert reply["type"] == "error" and reply["msg"]["code"] == 1, reply
        _ws_list_ok(conn, 6)  # the connection survives a refused command
        # a message over the bound is answered with a close frame (1009), not a dropped socket
        conn.send(json.dumps({"id": 7, "cmd": "list_subscriptions",
                              "pad": "x" * WS_MAX_MESSAGE_BYTES}))
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


# --- defect 4: over-long digit strings ----------------------------------------------------------


def test_long_digit_strings_refused(venue: Venue) -> None:
    before = venue.book_of_mm()
    t = venue.ticker
    long = "1" * 5000
    for body in (order(t, "bid", "0.05", long), order(t, "bid", "0.05", long + ".00"),
                 order(t, "bid", long + ".05", "1"), order(t, "bid", "0.05", "1" * 11)):
        _refused(venue.mm.post(ORDERS, body), says="should match pattern")
    _refused(venue.raw("POST", ORDERS, _order_bytes(t, expiration_time=long)), says="digits")
    _refused(venue.mm.post("/portfolio/order_groups/create", {"contracts_limit_fp": long}))
    placed = venue.mm.post(ORDERS, order(t, "bid", "0.05", "1"))
    oid = placed.json()["order_id"]
    mid = venue.book_of_mm()
    _refused(venue.mm.post(f"{ORDERS}/{oid}/decrease", {"reduce_by": long}))
    _refused(venue.mm.post(f"{ORDERS}/{oid}/amend", {"ticker": t, "side": "bid",
                                                      "price": "0.05", "count": long}))
    assert venue.book_of_mm() == mid != before


# --- defect 5: body size and field lengths ------------------------------------------------------


def test_body_size_and_field_lengths_bounded(venue: Venue) -> None:
    before = venue.book_of_mm()
    t = venue.ticker
    huge = order(t, "bid", "0.05", "1", client_order_id="c" * (10 * 2**20))
    _refused(venue.mm.post(ORDERS, huge), 413, "payload_too_large")
    # streamed without a Content-Length: still cut at the bound
    chunks = iter([b"{" + b" " * (MAX_BODY_BYTES // 2)] * 3)
    resp = venue.http.post(venue.url + "/trade-api/v2" + ORDERS, content=chunks,
                           headers=venue.keys.signer(MM_KEY).headers(
                               "POST", "/trade-api/v2" + ORDERS,
                               timestamp_ms=venue.clock() // 10**6))
    _refused(resp, 413, "payload_too_large")
    for field, value in (("client_order_id", "c" * 65), ("order_group_id", "g" * 65),
                         ("ticker", "T" * 201)):
        body = {**order(t, "bid", "0.05", "1"), field: value}
        _refused(venue.mm.post(ORDERS, body), says=field)
    assert venue.book_of_mm() == before
    ok = venue.mm.post(ORDERS, order(t, "bid", "0.05", "1", client_order_id="c" * 64))
    assert ok.status_code == 201, ok.text
    _listings_work(venue)


# --- defect 8: /sim/faults params ---------------------------------------------------------------


def test_fault_params_validated_with_a_clear_400(venue: Venue) -> None:
    before = venue.book_of_mm()
    cases = [
        ({"kind": "positions_lag", "params": {"seconds": 1e300, "lag_s": 1}}, "seconds"),
        ({"kind": "positions_lag", "params": {"seconds": 10, "lag_s": 1e300}}, "lag_s"),
        ({"kind": "slow_replies", "params": {"seconds": 10, "delay_s": 1e9}}, "delay_s"),
        ({"kind": "cancel_ack_not_applied", "params": {"seconds": -1, "delay_s": 1}},
         "seconds"),
        ({"kind": "http_5xx", "params": {"count": 1e300}}, "count"),
        ({"kind": "http_5xx", "params": {"count": 1.5}}, "count"),
        ({"kind": "route_5xx", "params": {"path": "/" + "p" * 300, "count": 1}}, "path"),
        ({"kind": "pause", "params": {"ticker": "T" * 300}}, "ticker"),
        ({"kind": 7, "params": {}}, "kind"),
        ({"kind": "http_5xx", "params": [1]}, "params"),
        (["http_5xx"], "kind"),
    ]
    for body, says in cases:
        _refused(venue.fault(body), says=says)
    _refused(venue.fault(content=b"{\"kind\": NaN}"), says="NaN")
    _refused(venue.fault(content=b"\xef\xbb\xbf{}"), says="byte-order mark")
    assert venue.book_of_mm() == before
    assert venue.state()["faults"]["positions_lag_s"] == 0
    ok = venue.fault({"kind": "positions_lag", "params": {"seconds": 60, "lag_s": 1}})
    assert ok.status_code == 200, ok.text


# --- defect 9: lenient parsing, and refusals in dollars ------------------------------------------


def test_lenient_bodies_refused(venue: Venue) -> None:
    before = venue.book_of_mm()
    t = venue.ticker
    good = order(t, "bid", "0.05", "1")
    resp = venue.mm.post(ORDERS + "/batched", {"orders": [json.dumps(good), 7, None]})
    assert resp.status_code == 201, resp.text
    errors = [item["error"] for item in resp.json()["orders"]]
    assert [e["code"] for e in errors] == ["invalid_parameters"] * 3
    assert "not a string" in errors[0]["message"]
    text = json.dumps(good)
    for body, says in ((b"\xef\xbb\xbf" + text.encode(), "byte-order mark"),
                       (text.encode("utf-16"), "byte-order mark"),
                       (text.encode("utf-16-le"), "not JSON"),
                       (text.encode("utf-32"), "byte-order mark"),
                       (text.encode("latin-1") + b"\xe9", "not UTF-8"),
                       (text.replace('"1"', "NaN").encode(), "NaN")):
        _refused(venue.raw("POST", ORDERS, body), says=says)
    assert venue.book_of_mm() == before


def test_refusals_speak_dollars(venue: Venue) -> None:
    t = venue.ticker
    market = venue.ex.engine.markets[t]
    off_grid = next(p for p in range(1, 10_000) if not market.grid.is_valid(p))
    price = f"{Decimal(off_grid) / 10_000:.4f}"
    msg = _refused(venue.mm.post(ORDERS, order(t, "bid", price, "1")), code="invalid_order")
    assert f"${price}" in msg and str(off_grid) not in msg.replace(price, ""), msg
    balance = parse_dollars(venue.state()["users"][MM]["balance_dollars"])
    count = str(balance // 5_000 + 100)  # at $0.50 a contract: more than the balance
    msg = _refused(venue.mm.post(ORDERS, order(t, "bid", "0.50", count)),
                   code="available_balance_too_low")
    assert "$" in msg, msg
    need = Decimal(msg.split("$")[1].split()[0])
    assert need > 0 and need == need.quantize(Decimal("0.0001")), msg
    with pytest.raises(EngineError) as refused:  # only the engine sees a limit of 0
        venue.ex.mutate(lambda e, now: e.create_order_group(MM, 0, now))
    assert "1000000.00 contracts" in str(refused.value) and "centi" not in str(refused.value)
