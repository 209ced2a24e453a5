"""The local exchange's WebSocket endpoint (:mod:`mmcore.sim.ws`) over real sockets.

Every test runs uvicorn in the test's own loop (``LoopbackServer.astart``) so engine mutations
(``ex.mutate``) and the hub share one thread, as in the simulator. No fixed sleeps: a test waits
for frames with timeouts, and uses ``list_subscriptions`` as a barrier — its reply is queued
after every frame the preceding (synchronous) mutations produced.

Every frame a test receives is validated against the asyncapi message schemas
(reference/kalshi/asyncapi.yaml, ``components.messages.*.payload``) and parsed by
:func:`mmcore.venues.kalshi.schema.parse_ws_message`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import random
import re
import time
import uuid
import warnings
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from mmcore.book import MarketBook, SeqTracker
from mmcore.sim.engine import Engine, OrderRequest
from mmcore.sim.exchange import LocalExchange
from mmcore.sim.runner import LoopbackServer
from mmcore.sim.scenario import default_scenario
from mmcore.sim.ws import HEARTBEAT_PAYLOAD, WsHub, market_id_for, ws_route, ws_server_options
from mmcore.units import format_count_fp, format_dollars, parse_count_fp, parse_dollars
from mmcore.venues.kalshi.auth import WS_PATH, Signer, generate_key_pair, private_key_from_pem
from mmcore.venues.kalshi.schema import (
    ErrorMessage, OrderbookDeltaMessage, OrderbookSnapshotMessage, parse_ws_message,
)

TIMEOUT_S = 5.0
OTHER = "noise-0-0"
"""A scenario participant, our counterparty in the tests."""
THIRD = "noise-0-1"


# --- asyncapi validators -----------------------------------------------------------------------


def _inline(node: Any, doc: dict[str, Any], depth: int = 0) -> Any:
    """The schema with every local ``$ref`` replaced by its target."""
    if depth > 50:
        raise RecursionError("schema nests too deep")
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _inline(target, doc, depth + 1)
        return {k: _inline(v, doc, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, doc, depth + 1) for v in node]
    return node


SIM_ID = re.compile(r"(ord|trd|og)-[0-9]{8}|[a-z]+(-[0-9]+)*")
"""Engine ids (orders, trades, order groups) and scenario user ids: the local exchange's stand-ins
for the UUIDs the asyncapi declares (``format: uuid``) on order_id, trade_id and user_id."""


def _format_checker() -> FormatChecker:
    """``date-time`` must be RFC 3339; ``uuid`` a UUID or one of the engine's ids (so a
    ``market_id`` that is not a UUID still fails)."""
    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str) or "T" not in value or not value.endswith(("Z", "+00:00")):
            return False
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    @checker.checks("uuid", raises=ValueError)
    def _uuid(value: object) -> bool:
        if not isinstance(value, str):
            return False
        return bool(SIM_ID.fullmatch(value)) or uuid.UUID(value).hex is not None

    return checker


class Validators:
    """Message ``type`` → jsonschema validator of its asyncapi payload."""

    def __init__(self, path: Path) -> None:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.by_type: dict[str, Draft202012Validator] = {}
        self.ok_list: Draft202012Validator | None = None
        checker = _format_checker()
        for name, message in doc["components"]["messages"].items():
            if "payload" not in message:
                continue
            schema = _inline(message["payload"], doc)
            const = schema.get("properties", {}).get("type", {}).get("const")
            if const is None:
                continue
            validator = Draft202012Validator(schema, format_checker=checker)
            if name == "listSubscriptionsResponse":
                self.ok_list = validator
            else:
                self.by_type.setdefault(const, validator)

    def validate(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "ok" and isinstance(frame.get("msg"), list):
            validator = self.ok_list
        else:
            validator = self.by_type.get(frame.get("type"))  # type: ignore[arg-type]
        if validator is None:
            warnings.warn(f"not validated: no asyncapi schema for type {frame.get('type')!r}",
                          stacklevel=2)
            return
        validator.validate(frame)


@pytest.fixture(scope="session")
def validators(request: pytest.FixtureRequest) -> Validators | None:
    """The asyncapi validators, or None (frames then only go through ``parse_ws_message``)
    when the reference material is absent: validation is skipped, the tests still run."""
    try:
        shared_dir: Path = request.getfixturevalue("shared_dir")
    except pytest.skip.Exception as exc:
        warnings.warn(f"asyncapi validation skipped: {exc}", stacklevel=1)
        return None
    path = shared_dir / "reference" / "kalshi" / "asyncapi.yaml"
    if not path.is_file():
        warnings.warn(f"asyncapi validation skipped: {path} not found", stacklevel=1)
        return None
    return Validators(path)


def test_validators_reject_a_malformed_frame(validators: Validators | None) -> None:
    if validators is None:
        pytest.skip("asyncapi spec not available: frames are not schema-validated")
    good = {"type": "orderbook_delta", "sid": 1, "seq": 1,
            "msg": {"market_ticker": "KXA-1", "market_id": str(uuid.uuid4()),
                    "price_dollars": "0.4500", "delta_fp": "-1.00", "side": "yes",
                    "ts": "2026-11-23T10:00:00.000Z", "ts_ms": 1}}
    validators.validate(good)
    for broken in ({**good, "seq": 0}, {**good, "msg": {**good["msg"], "side": "bid"}},
                   {**good, "msg": {**good["msg"], "ts": "yesterday"}},
                   {**good, "msg": {**good["msg"], "market_id": "KXA-1"}},
                   {k: v for k, v in good.items() if k != "sid"}):
        with pytest.raises(ValidationError):
            validators.validate(broken)


# --- keys, exchange, server --------------------------------------------------------------------


class Keys:
    """Generated per test session, never written to disk."""

    def __init__(self) -> None:
        self.signers: dict[str, Signer] = {}
        for user in ("mm", OTHER, "stranger"):
            pem, _ = generate_key_pair()
            self.signers[user] = Signer(f"key-{user}", private_key_from_pem(pem))

    def public_pem(self, user: str) -> bytes:
        return self.signers[user].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def headers(self, user: str, *, ts_ms: int | None = None,
                path: str = WS_PATH) -> dict[str, str]:
        ts = time.time_ns() // 1_000_000 if ts_ms is None else ts_ms
        return self.signers[user].headers("GET", path, timestamp_ms=ts)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def ex(keys: Keys) -> LocalExchange:
    exchange = LocalExchange.from_scenario(default_scenario(11, time.time_ns(), 2))
    for user in ("mm", OTHER):  # "stranger" stays unregistered
        exchange.add_key(keys.signers[user].key_id, keys.public_pem(user), user)
    return exchange


@pytest.fixture
def tickers(ex: LocalExchange) -> list[str]:
    return sorted(ex.engine.markets)


def _app(routes: list[Any], ex: LocalExchange) -> Any:
    try:  # the REST layer, once it exists, hosts extra routes
        from mmcore.sim.rest import build_app  # type: ignore[import-not-found]
    except ImportError:
        return Starlette(routes=routes)
    return build_app(ex, extra_routes=routes)


Server = tuple[WsHub, str]


@pytest.fixture
async def make_server(ex: LocalExchange) -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    """``await make_server(queue_max_messages=..., heartbeat_interval_s=...)`` → (hub, ws url)."""
    started: list[tuple[WsHub, LoopbackServer]] = []

    async def make(heartbeat_interval_s: float = 10.0, heartbeat_timeout_s: float = 20.0,
                   **hub_options: Any) -> Server:
        hub = WsHub(ex, **hub_options)
        server = LoopbackServer(_app([ws_route(ex, hub=hub)], ex), name="ws-test",
                                **ws_server_options(heartbeat_interval_s, heartbeat_timeout_s))
        await server.astart()
        started.append((hub, server))
        return hub, f"ws://127.0.0.1:{server.bound_port}{WS_PATH}"

    yield make
    for hub, server in started:
        await hub.kick_all("test over", code=1001)
        hub.close()
        await server.astop()


@pytest.fixture
async def server(make_server: Callable[..., Awaitable[Server]]) -> Server:
    return await make_server()


# --- client ------------------------------------------------------------------------------------


class Client:
    """A websockets client that validates every frame and keeps the books it subscribed to."""

    _ids = itertools.count(1000)

    def __init__(self, conn: ClientConnection, validators: Validators | None) -> None:
        self.conn = conn
        self.validators = validators
        self.frames: list[dict[str, Any]] = []
        self.seqs = SeqTracker()
        self.verdicts: list[tuple[int, int, str]] = []
        self.books: dict[tuple[int, str], MarketBook] = {}
        self.yes_price: dict[int, bool] = {}
        self._pending_yes_price = False

    async def send(self, cmd: dict[str, Any] | str | bytes) -> None:
        await self.conn.send(cmd if isinstance(cmd, (str, bytes)) else json.dumps(cmd))

    async def recv(self, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        assert isinstance(raw, str), "the server sends text frames"
        frame = json.loads(raw)
        if self.validators is not None:
            self.validators.validate(frame)
        parsed = parse_ws_message(raw)
        if frame["type"] == "subscribed" and frame["msg"]["channel"] == "orderbook_delta":
            self.yes_price.setdefault(frame["msg"]["sid"], self._pending_yes_price)
        if "seq" in frame and "sid" in frame:
            verdict = self.seqs.check(frame["sid"], frame["seq"])
            self.verdicts.append((frame["sid"], frame["seq"], verdict))
        if isinstance(parsed, OrderbookSnapshotMessage):
            m = parsed.msg
            assert uuid.UUID(m.market_id) and m.market_id == market_id_for(m.market_ticker)
            book = self.books.setdefault((parsed.sid, m.market_ticker),
                                         MarketBook(m.market_ticker))
            book.apply_snapshot(m.yes_levels(), m.no_levels(),
                                use_yes_price=self.yes_price.get(parsed.sid, False))
        elif isinstance(parsed, OrderbookDeltaMessage) and self.verdicts[-1][2] != "duplicate":
            m = parsed.msg
            ok = self.books[(parsed.sid, m.market_ticker)].apply_delta(
                m.side, m.level_price(), m.delta(),
                use_yes_price=self.yes_price.get(parsed.sid, False))
            assert ok, f"delta took a level below zero: {frame}"
        self.frames.append(frame)
        return frame

    async def until(self, pred: Callable[[dict[str, Any]], bool],
                    timeout: float = TIMEOUT_S) -> list[dict[str, Any]]:
        """Frames up to and including the first one matching ``pred``."""
        out = []
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - asyncio.get_running_loop().time()))
            out.append(frame)
            if pred(frame):
                return out

    async def command(self, cmd: dict[str, Any]) -> list[dict[str, Any]]:
        """Send and return frames up to the reply (``id`` echoed; a barrier follows so that
        multi-frame replies such as snapshots are all in)."""
        cmd = {"id": next(self._ids), **cmd}
        await self.send(cmd)
        return (await self.until(lambda f: f.get("id") == cmd["id"])) + await self.sync()

    async def sync(self) -> list[dict[str, Any]]:
        """Every frame queued so far (without the barrier's own reply)."""
        cid = next(self._ids)
        await self.send({"id": cid, "cmd": "list_subscriptions"})
        return (await self.until(lambda f: f.get("id") == cid and f["type"] == "ok"))[:-1]

    async def subscribe(self, channels: list[str], **params: Any) -> list[dict[str, Any]]:
        self._pending_yes_price = bool(params.get("use_yes_price"))
        return await self.command({"cmd": "subscribe", "params": {"channels": channels,
                                                                   **params}})

    def sid(self, channel: str) -> int:
        return next(f["msg"]["sid"] for f in reversed(self.frames)
                    if f["type"] == "subscribed" and f["msg"]["channel"] == channel)


@pytest.fixture
async def open_client(keys: Keys, validators: Validators | None
                      ) -> AsyncIterator[Callable[..., Awaitable[Client]]]:
    conns: list[ClientConnection] = []

    async def open_(url: str, user: str = "mm", **kw: Any) -> Client:
        conn = await connect(url, additional_headers=keys.headers(user), proxy=None,
                             open_timeout=TIMEOUT_S, **kw)
        conns.append(conn)
        return Client(conn, validators)

    yield open_
    for conn in conns:
        await conn.close()


def of_type(frames: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == type_]


# --- engine drivers ----------------------------------------------------------------------------

_cids = itertools.count(1)


def place(ex: LocalExchange, user: str, ticker: str, side: str, cents: int, contracts: int,
          **kw: Any) -> str:
    req = OrderRequest(user, ticker, side, cents * 100, contracts * 100,  # type: ignore[arg-type]
                       client_order_id=kw.pop("client_order_id", f"{user}-{next(_cids)}"), **kw)
    return ex.mutate(lambda eng, now: eng.place(req, now)).order.order_id


def assert_book(client: Client, sid: int, ex: LocalExchange, ticker: str) -> None:
    yes, no = ex.engine.orderbook(ticker)
    book = client.books[(sid, ticker)]
    assert not book.stale
    assert (book.yes_levels(), book.no_levels()) == (yes, no)


# === handshake ====================================================================================


@pytest.mark.parametrize("case", ["no headers", "bad signature", "stale timestamp",
                                  "unregistered key", "wrong path signed"])
async def test_handshake_refused_with_401(case: str, server: Server, keys: Keys) -> None:
    _, url = server
    headers = keys.headers("mm")
    if case == "no headers":
        headers = {}
    elif case == "bad signature":
        other = keys.headers(OTHER, ts_ms=int(headers["KALSHI-ACCESS-TIMESTAMP"]))
        headers["KALSHI-ACCESS-SIGNATURE"] = other["KALSHI-ACCESS-SIGNATURE"]
    elif case == "stale timestamp":
        headers = keys.headers("mm", ts_ms=time.time_ns() // 1_000_000 - 120_000)
    elif case == "unregistered key":
        headers = keys.headers("stranger")
    else:
        headers = keys.headers("mm", path="/trade-api/v2")
    with pytest.raises(InvalidStatus) as err:
        await connect(url, additional_headers=headers, proxy=None, open_timeout=TIMEOUT_S)
    assert err.value.response.status_code == 401
    body = json.loads(err.value.response.body or b"{}")
    assert body["code"] and body["message"]


async def test_signed_handshake_connects(server: Server, open_client: Any) -> None:
    hub, url = server
    client = await open_client(url)
    reply = await client.command({"cmd": "list_subscriptions"})
    assert reply == [{"type": "ok", "id": reply[0]["id"], "msg": []}]
    assert hub.connection_count == 1


# === orderbook_delta ==============================================================================


@pytest.mark.parametrize("use_yes_price", [False, True])
async def test_book_rebuilt_from_snapshot_and_deltas(
        use_yes_price: bool, ex: LocalExchange, tickers: list[str], server: Server,
        open_client: Any) -> None:
    a, b = tickers[0], tickers[1]
    # a book exists before subscribing, so the snapshot has both sides
    place(ex, OTHER, a, "bid", 40, 5)
    place(ex, OTHER, a, "ask", 60, 3)
    place(ex, THIRD, a, "ask", 62, 4)
    client = await open_client(server[1])
    frames = await client.subscribe(["orderbook_delta"], market_tickers=[a, b],
                                    use_yes_price=use_yes_price)
    sid = client.sid("orderbook_delta")
    snaps = of_type(frames, "orderbook_snapshot")
    assert [s["msg"]["market_ticker"] for s in snaps] == [a, b]
    assert "yes_dollars_fp" not in snaps[1]["msg"] and "no_dollars_fp" not in snaps[1]["msg"]
    no_prices = [lvl[0] for lvl in snaps[0]["msg"]["no_dollars_fp"]]
    assert no_prices == (["0.6000", "0.6200"] if use_yes_price else ["0.3800", "0.4000"])
    assert_book(client, sid, ex, a)

    mine = place(ex, "mm", a, "bid", 41, 2, client_order_id="mm-bid")
    place(ex, THIRD, a, "ask", 41, 3)  # crosses mm's bid and rests 1 at 41
    resting = place(ex, OTHER, a, "bid", 38, 6)
    ex.mutate(lambda eng, now: eng.amend(OTHER, resting, ticker=a, side="bid", price=3900,
                                         count=400, now_ns=now))
    ex.mutate(lambda eng, now: eng.decrease(OTHER, resting, reduce_by=100, now_ns=now))
    mm_ask = place(ex, "mm", a, "ask", 70, 2, client_order_id="mm-ask")
    ex.mutate(lambda eng, now: eng.amend("mm", mm_ask, ticker=a, side="ask", price=6500,
                                         count=200, now_ns=now))
    place(ex, OTHER, a, "bid", 66, 10, time_in_force="immediate_or_cancel")  # sweeps 60, 62, 65
    ex.mutate(lambda eng, now: eng.cancel("mm", mine, now))
    place(ex, OTHER, b, "ask", 55, 2)
    deltas = of_type(await client.sync(), "orderbook_delta")

    assert {f["msg"]["market_ticker"] for f in deltas} == {a, b}
    assert_book(client, sid, ex, a)
    assert_book(client, sid, ex, b)
    assert all(v == "ok" for _, _, v in client.verdicts)
    assert [f["seq"] for f in snaps + deltas] == list(range(1, len(snaps) + len(deltas) + 1))
    cids = {f["msg"].get("client_order_id") for f in deltas}
    assert cids == {None, "mm-bid", "mm-ask"}  # never another user's client_order_id
    for f in deltas:
        assert f["msg"]["side"] in ("yes", "no") and f["msg"]["ts_ms"] > 0
        assert parse_count_fp(f["msg"]["delta_fp"]) != 0


@pytest.mark.parametrize("use_yes_price", [False, True])
async def test_book_consistency_random_flow(use_yes_price: bool, ex: LocalExchange,
                                            tickers: list[str], server: Server,
                                            open_client: Any) -> None:
    """A seeded random mix of places (crossing or not), IOCs, amends, decreases and cancels by
    four users; the book rebuilt from the stream equals the engine's after every step."""
    rng = random.Random(20261123 + use_yes_price)
    client = await open_client(server[1])
    await client.subscribe(["orderbook_delta"], market_tickers=tickers[:2],
                           use_yes_price=use_yes_price)
    sid = client.sid("orderbook_delta")
    users = ["mm", OTHER, THIRD, "maker-0-0"]
    eng: Engine = ex.engine
    for step in range(120):
        ticker, user = rng.choice(tickers[:2]), rng.choice(users)
        resting = eng.orders(user, ticker=ticker, status="resting")
        roll = rng.random()
        try:
            if resting and roll < 0.2:
                o = rng.choice(resting)
                ex.mutate(lambda e, now: e.cancel(user, o.order_id, now))
            elif resting and roll < 0.35:
                o = rng.choice(resting)
                ex.mutate(lambda e, now: e.amend(
                    user, o.order_id, ticker=ticker, side=o.side,
                    price=rng.randint(30, 70) * 100, count=o.filled + rng.randint(1, 8) * 100,
                    now_ns=now))
            elif resting and roll < 0.45:
                o = rng.choice(resting)
                ex.mutate(lambda e, now: e.decrease(user, o.order_id, reduce_by=100, now_ns=now))
            else:
                tif = "immediate_or_cancel" if rng.random() < 0.15 else "good_till_canceled"
                place(ex, user, ticker, rng.choice(["bid", "ask"]), rng.randint(30, 70),
                      rng.randint(1, 8), time_in_force=tif,
                      self_trade_prevention=rng.choice(["taker_at_cross", "maker"]))
        except Exception as exc:  # engine refusals (e.g. reduce-only, funds) change nothing
            assert type(exc).__name__ == "EngineError", exc
        if step % 10 == 9:
            await client.sync()
            for t in tickers[:2]:
                assert_book(client, sid, ex, t)
    await client.sync()
    assert all(v == "ok" for _, _, v in client.verdicts)
    assert len(client.verdicts) > 50


async def test_get_snapshot_is_fresh_and_keeps_the_subscription(
        ex: LocalExchange, tickers: list[str], server: Server, open_client: Any) -> None:
    a, b = tickers[0], tickers[1]
    client = await open_client(server[1])
    await client.subscribe(["orderbook_delta"], market_tickers=[a, b])
    sid = client.sid("orderbook_delta")
    place(ex, OTHER, a, "bid", 45, 2)
    place(ex, OTHER, b, "ask", 52, 2)
    await client.send({"id": 5, "cmd": "update_subscription", "params": {
        "sids": [sid], "action": "get_snapshot", "market_tickers": [a]}})
    frames = await client.sync()  # get_snapshot answers with snapshots only
    snaps = of_type(frames, "orderbook_snapshot")
    assert len(snaps) == 1 and snaps[0]["sid"] == sid
    assert snaps[0]["msg"]["yes_dollars_fp"] == [["0.4500", "2.00"]]
    assert [s for _, s, _ in client.verdicts] == list(range(1, len(client.verdicts) + 1))
    listed = (await client.command({"cmd": "list_subscriptions"}))[0]
    assert listed["msg"] == [{"channel": "orderbook_delta", "sid": sid}]
    place(ex, OTHER, b, "ask", 53, 1)  # b still streams
    assert of_type(await client.sync(), "orderbook_delta")[0]["msg"]["market_ticker"] == b
    assert_book(client, sid, ex, a)
    assert_book(client, sid, ex, b)


async def test_subscribe_again_merges_into_the_same_sid(
        ex: LocalExchange, tickers: list[str], server: Server, open_client: Any) -> None:
    a, b = tickers[0], tickers[1]
    place(ex, OTHER, b, "bid", 30, 1)
    client = await open_client(server[1])
    await client.subscribe(["orderbook_delta"], market_ticker=a)
    sid = client.sid("orderbook_delta")
    frames = await client.subscribe(["orderbook_delta", "trade"], market_tickers=[a, b])
    subscribed = of_type(frames, "subscribed")
    assert subscribed[0]["msg"] == {"channel": "orderbook_delta", "sid": sid}
    assert subscribed[1]["msg"]["sid"] != sid
    assert [f["msg"]["market_ticker"] for f in of_type(frames, "orderbook_snapshot")] == [b]
    assert [f["seq"] for f in of_type(frames, "orderbook_snapshot")] == [2]
    err = (await client.command({"cmd": "subscribe", "params": {
        "channels": ["orderbook_delta"], "market_ticker": a, "use_yes_price": True}}))[0]
    assert err["type"] == "error" and err["msg"]["code"] == 11


async def test_add_and_delete_markets(ex: LocalExchange, tickers: list[str], server: Server,
                                      open_client: Any) -> None:
    a, b = tickers[0], tickers[1]
    client = await open_client(server[1])
    await client.subscribe(["orderbook_delta"], market_ticker=a)
    sid = client.sid("orderbook_delta")
    frames = await client.command({"cmd": "update_subscription", "params": {
        "sid": sid, "action": "add_markets", "market_tickers": [b]}})
    ok = frames[0]
    assert ok["type"] == "ok" and ok["sid"] == sid and ok["seq"] == 2
    assert ok["msg"] == {"market_tickers": [a, b]}
    assert of_type(frames, "orderbook_snapshot")[0]["seq"] == 3
    frames = await client.command({"cmd": "update_subscription", "params": {
        "sids": [sid], "action": "delete_markets", "market_ticker": a}})
    assert frames[0]["msg"] == {"market_tickers": [b]} and frames[0]["seq"] == 4
    place(ex, OTHER, a, "bid", 40, 1)
    place(ex, OTHER, b, "bid", 40, 1)
    deltas = of_type(await client.sync(), "orderbook_delta")
    assert [(f["msg"]["market_ticker"], f["seq"]) for f in deltas] == [(b, 5)]


async def test_unsubscribe_and_list(ex: LocalExchange, tickers: list[str], server: Server,
                                    open_client: Any) -> None:
    client = await open_client(server[1])
    await client.subscribe(["orderbook_delta", "ticker", "fill"], market_ticker=tickers[0])
    listed = (await client.command({"cmd": "list_subscriptions"}))[0]["msg"]
    assert [s["channel"] for s in listed] == ["orderbook_delta", "ticker", "fill"]
    book_sid = client.sid("orderbook_delta")
    frames = await client.command({"cmd": "unsubscribe", "params": {
        "sids": [book_sid, client.sid("ticker"), 99]}})
    assert frames[0] == {"type": "unsubscribed", "id": frames[0]["id"], "sid": book_sid,
                         "seq": 2}
    assert frames[1]["type"] == "unsubscribed" and frames[1]["seq"] == 1
    assert frames[2]["type"] == "error" and frames[2]["msg"]["code"] == 7
    place(ex, OTHER, tickers[0], "bid", 40, 1)
    assert await client.sync() == []
    listed = (await client.command({"cmd": "list_subscriptions"}))[0]["msg"]
    assert listed == [{"channel": "fill", "sid": client.sid("fill")}]


# === errors =======================================================================================

ERROR_CASES: list[tuple[str, Any, int]] = [
    ("not json", "{nope", 1),
    ("not an object", "[1, 2]", 1),
    ("params missing", {"id": 7, "cmd": "subscribe"}, 2),
    ("channels missing", {"id": 7, "cmd": "subscribe", "params": {}}, 3),
    ("sids missing", {"id": 7, "cmd": "unsubscribe", "params": {}}, 4),
    ("unknown command", {"id": 7, "cmd": "subscribe_all", "params": {}}, 5),
    ("unknown sid", {"id": 7, "cmd": "unsubscribe", "params": {"sids": [42]}}, 7),
    ("unknown channel", {"id": 7, "cmd": "subscribe", "params": {"channels": ["news"]}}, 8),
    ("unavailable channel", {"id": 7, "cmd": "subscribe",
                             "params": {"channels": ["pyth_value"]}}, 8),
    ("ticker and tickers", {"id": 7, "cmd": "subscribe", "params": {
        "channels": ["trade"], "market_ticker": "A", "market_tickers": ["B"]}}, 11),
    ("two sids", {"id": 7, "cmd": "update_subscription", "params": {
        "sids": [1, 2], "action": "add_markets", "market_ticker": "A"}}, 12),
    ("bad action", {"id": 7, "cmd": "update_subscription", "params": {
        "sid": 1, "action": "rename", "market_ticker": "A"}}, 13),
    ("book without market", {"id": 7, "cmd": "subscribe", "params": {
        "channels": ["orderbook_delta"]}}, 14),
    ("unknown market", {"id": 7, "cmd": "subscribe", "params": {
        "channels": ["orderbook_delta"], "market_ticker": "KXNOPE-1"}}, 16),
    ("update unknown sid", {"id": 7, "cmd": "update_subscription", "params": {
        "sid": 5, "action": "add_markets", "market_ticker": "A"}}, 7),
]


async def test_error_codes(server: Server, open_client: Any) -> None:
    client = await open_client(server[1])
    for name, cmd, code in ERROR_CASES:
        await client.send(cmd if isinstance(cmd, str) else json.dumps(cmd))
        frame = await client.recv()
        assert frame["type"] == "error" and frame["msg"]["code"] == code, (name, frame)
        assert isinstance(parse_ws_message(json.dumps(frame)), ErrorMessage)
        if isinstance(cmd, dict):
            assert frame["id"] == 7, name
    await client.send(b"\x00binary")
    frame = await client.recv()
    assert frame["msg"]["code"] == 1


async def test_update_errors_need_state(tickers: list[str], server: Server,
                                        open_client: Any) -> None:
    client = await open_client(server[1])
    await client.subscribe(["ticker", "market_lifecycle_v2"])
    cases = [({"sid": client.sid("ticker"), "action": "get_snapshot",
               "market_tickers": [tickers[0]]}, 13),
             ({"sid": client.sid("market_lifecycle_v2"), "action": "add_markets",
               "market_tickers": [tickers[0]]}, 13),
             ({"sid": client.sid("ticker"), "action": "delete_markets",
               "market_tickers": [tickers[0]]}, 11),
             ({"sid": client.sid("ticker"), "action": "add_markets",
               "market_tickers": ["KXNOPE-1"]}, 16)]
    for params, code in cases:
        frame = (await client.command({"cmd": "update_subscription", "params": params}))[0]
        assert frame["type"] == "error" and frame["msg"]["code"] == code, params


# === public and private channels ==================================================================


async def test_private_channels_reach_only_the_owner(
        ex: LocalExchange, tickers: list[str], server: Server, open_client: Any) -> None:
    a = tickers[0]
    mm = await open_client(server[1], "mm")
    other = await open_client(server[1], OTHER)
    channels = ["fill", "user_orders", "market_positions"]
    await mm.subscribe(channels)
    await other.subscribe(channels, market_tickers=[a])
    bid = place(ex, "mm", a, "bid", 44, 3, client_order_id="mm-44")
    place(ex, OTHER, a, "ask", 44, 2)
    place(ex, THIRD, tickers[1], "bid", 20, 1)  # nobody's own business here
    mine, theirs = await mm.sync(), await other.sync()

    fills = of_type(mine, "fill")
    assert len(fills) == 1
    f = fills[0]["msg"]
    engine_fill = ex.engine.fills("mm")[-1]
    assert (f["order_id"], f["trade_id"], f["is_taker"]) == (bid, engine_fill.trade_id, False)
    assert (f["book_side"], f["outcome_side"], f["yes_price_dollars"], f["count_fp"]) == (
        "bid", "yes", "0.4400", "2.00")
    assert f["post_position_fp"] == "2.00" and f["client_order_id"] == "mm-44"
    assert parse_dollars(f["fee_cost"]) == engine_fill.fee
    orders = [m["msg"] for m in of_type(mine, "user_order")]
    assert {o["order_id"] for o in orders} == {bid}
    assert [(o["status"], o["remaining_count_fp"]) for o in orders] == [
        ("resting", "3.00"), ("resting", "1.00")]
    positions = [m["msg"] for m in of_type(mine, "market_position")]
    assert [(p["user_id"], p["position_fp"]) for p in positions] == [("mm", "2.00")]

    their_fill = of_type(theirs, "fill")[0]["msg"]
    assert their_fill["is_taker"] and their_fill["book_side"] == "ask"
    assert their_fill["post_position_fp"] == "-2.00"
    assert all(m["msg"].get("user_id", OTHER) == OTHER for m in theirs)
    assert {m["msg"].get("order_id") for m in theirs if m["type"] != "market_position"} \
        .isdisjoint({bid})
    assert [o["msg"]["status"] for o in of_type(theirs, "user_order")] == ["executed"]


async def test_trade_and_ticker_channels(ex: LocalExchange, tickers: list[str], server: Server,
                                         open_client: Any) -> None:
    a, b = tickers[0], tickers[1]
    client = await open_client(server[1])
    frames = await client.subscribe(["ticker"], market_ticker=a, send_initial_snapshot=True)
    first = of_type(frames, "ticker")[0]["msg"]
    assert (first["yes_bid_dollars"], first["yes_ask_dollars"]) == ("0.0000", "1.0000")
    await client.subscribe(["trade"])
    place(ex, OTHER, a, "bid", 47, 4)
    place(ex, THIRD, a, "ask", 47, 3)
    place(ex, THIRD, b, "ask", 90, 1)  # ticker filter: only a
    frames = await client.sync()
    trades = of_type(frames, "trade")
    assert len(trades) == 1 and "seq" not in trades[0]
    t = trades[0]["msg"]
    assert (t["yes_price_dollars"], t["no_price_dollars"], t["count_fp"]) == (
        "0.4700", "0.5300", "3.00")
    assert (t["taker_book_side"], t["taker_outcome_side"], t["is_block_trade"]) == (
        "ask", "no", False)
    ticks = [f["msg"] for f in of_type(frames, "ticker")]
    assert {m["market_ticker"] for m in ticks} == {a}
    last = ticks[-1]
    bid, bid_size, ask, ask_size = ex.engine.best(a)
    assert (last["yes_bid_dollars"], last["yes_bid_size_fp"]) == (
        format_dollars(bid), format_count_fp(bid_size))
    assert ask is None and last["yes_ask_dollars"] == "1.0000"
    assert (last["price_dollars"], last["volume_fp"], last["last_trade_size_fp"]) == (
        "0.4700", "3.00", "3.00")
    assert last["open_interest_fp"] == "3.00"
    ex.mutate(lambda eng, now: eng.expire(now))  # no change → no ticker message
    assert await client.sync() == []


async def test_ticker_by_market_id(tickers: list[str], server: Server,
                                   open_client: Any) -> None:
    client = await open_client(server[1])
    frames = await client.subscribe(["ticker"], market_id=market_id_for(tickers[1]),
                                    send_initial_snapshot=True)
    assert [f["msg"]["market_ticker"] for f in of_type(frames, "ticker")] == [tickers[1]]
    err = (await client.subscribe(["ticker"], market_ids=[str(uuid.uuid4())]))[0]
    assert err["type"] == "error" and err["msg"]["code"] == 16


async def test_lifecycle_messages(ex: LocalExchange, tickers: list[str], server: Server,
                                  open_client: Any) -> None:
    a = tickers[0]
    client = await open_client(server[1])
    await client.subscribe(["market_lifecycle_v2"], market_ticker=tickers[1])  # filter ignored
    ex.mutate(lambda eng, now: eng.pause(a, now))
    ex.mutate(lambda eng, now: eng.activate(a, now))
    ex.mutate(lambda eng, now: eng.settle(a, "yes", now))
    msgs = [f["msg"] for f in of_type(await client.sync(), "market_lifecycle_v2")]
    assert [(m["event_type"], m["market_ticker"]) for m in msgs] == [
        ("deactivated", a), ("activated", a), ("close_date_updated", a), ("determined", a),
        ("settled", a)]
    assert msgs[0]["is_deactivated"] is True and msgs[1]["is_deactivated"] is False
    assert (msgs[3]["result"], msgs[3]["settlement_value"]) == ("yes", "1.0000")
    assert msgs[4]["settled_ts"] >= msgs[3]["determination_ts"] > 0


async def test_order_group_updates_are_sequenced_and_private(
        ex: LocalExchange, server: Server, open_client: Any) -> None:
    mm = await open_client(server[1], "mm")
    other = await open_client(server[1], OTHER)
    await mm.subscribe(["order_group_updates"])
    await other.subscribe(["order_group_updates"])
    gid = ex.mutate(lambda eng, now: eng.create_order_group("mm", 1000, now))
    ex.mutate(lambda eng, now: eng.set_order_group_limit("mm", gid, 500, now))
    ex.mutate(lambda eng, now: eng.delete_order_group("mm", gid, now))
    frames = of_type(await mm.sync(), "order_group_updates")
    assert [(f["seq"], f["msg"]["event_type"], f["msg"].get("contracts_limit_fp"))
            for f in frames] == [(1, "created", "10.00"), (2, "limit_updated", "5.00"),
                                 (3, "deleted", None)]
    assert await other.sync() == []


# === faults =======================================================================================


async def test_seq_gap_fault(ex: LocalExchange, tickers: list[str], server: Server,
                             open_client: Any) -> None:
    client = await open_client(server[1])
    await client.subscribe(["orderbook_delta"], market_ticker=tickers[0])
    ex.faults.ws_seq_gap_pending = 1
    place(ex, OTHER, tickers[0], "bid", 40, 1)
    place(ex, OTHER, tickers[0], "bid", 41, 1)
    deltas = of_type(await client.sync(), "orderbook_delta")
    assert [f["seq"] for f in deltas] == [3, 4]
    assert [v for _, _, v in client.verdicts] == ["ok", "gap", "ok"]
    assert ex.faults.ws_seq_gap_pending == 0
    assert [e["kind"] for e in ex.faults.log] == ["seq_gap"]


async def test_duplicate_delta_fault(ex: LocalExchange, tickers: list[str], server: Server,
                                     open_client: Any) -> None:
    client = await open_client(server[1])
    await client.subscribe(["orderbook_delta"], market_ticker=tickers[0])
    ex.faults.ws_duplicate_pending = 1
    place(ex, OTHER, tickers[0], "bid", 40, 1)
    place(ex, OTHER, tickers[0], "bid", 41, 1)
    deltas = of_type(await client.sync(), "orderbook_delta")
    assert [f["seq"] for f in deltas] == [2, 2, 3] and deltas[0] == deltas[1]
    assert [v for _, _, v in client.verdicts] == ["ok", "ok", "duplicate", "ok"]
    assert_book(client, client.sid("orderbook_delta"), ex, tickers[0])
    assert ex.faults.ws_duplicate_pending == 0
    assert [e["kind"] for e in ex.faults.log] == ["duplicate_delta"]


async def test_disconnect_fault_closes_the_next_connection(
        ex: LocalExchange, tickers: list[str], server: Server, open_client: Any) -> None:
    client = await open_client(server[1])
    await client.subscribe(["trade"])
    ex.faults.ws_disconnect_pending = 1
    place(ex, OTHER, tickers[0], "bid", 40, 1)
    place(ex, THIRD, tickers[0], "ask", 40, 1)
    with pytest.raises(ConnectionClosed) as err:
        await client.recv()
    assert err.value.rcvd is not None and err.value.rcvd.code == 1011
    assert ex.faults.ws_disconnect_pending == 0 and ex.faults.log[-1]["kind"] == "ws_disconnect"
    again = await open_client(server[1])  # the next connection is fine
    assert (await again.command({"cmd": "list_subscriptions"}))[0]["msg"] == []


async def test_kick_all(server: Server, open_client: Any) -> None:
    hub, url = server
    clients = [await open_client(url), await open_client(url, OTHER)]
    for c in clients:
        await c.sync()
    assert await hub.kick_all("maintenance") == 2
    for c in clients:
        with pytest.raises(ConnectionClosed) as err:
            await c.recv()
        assert err.value.rcvd is not None and err.value.rcvd.code == 1011


async def test_buffer_overflow_kills_the_subscription(
        ex: LocalExchange, tickers: list[str], make_server: Any, open_client: Any) -> None:
    _, url = await make_server(queue_max_messages=5)
    client = await open_client(url)
    await client.subscribe(["orderbook_delta"], market_ticker=tickers[0])
    sid = client.sid("orderbook_delta")
    for cents in range(20, 40):  # one synchronous burst: the writer cannot drain in between
        place(ex, OTHER, tickers[0], "bid", cents, 1)
    frames = await client.sync()
    errors = of_type(frames, "error")
    assert len(errors) == 1 and errors[0]["msg"]["code"] == 25 and errors[0]["sid"] == sid
    assert len(of_type(frames, "orderbook_delta")) == 5
    assert (await client.command({"cmd": "list_subscriptions"}))[0]["msg"] == []
    await client.subscribe(["orderbook_delta"], market_ticker=tickers[0])  # resubscribe works
    assert_book(client, client.sid("orderbook_delta"), ex, tickers[0])


# === heartbeats ===================================================================================


async def _raw_frames(url: str, headers: dict[str, str], *, answer_pings: bool,
                      until: Callable[[list[Frame]], bool]) -> list[Frame]:
    """A sans-I/O websockets client on a plain socket, to see the server's control frames."""
    parts = urlsplit(url)
    proto = ClientProtocol(parse_uri(url))
    request = proto.connect()
    for k, v in headers.items():
        request.headers[k] = v
    proto.send_request(request)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    frames: list[Frame] = []
    try:
        writer.write(b"".join(proto.data_to_send()))
        deadline = asyncio.get_running_loop().time() + TIMEOUT_S
        while not until(frames):
            data = await asyncio.wait_for(
                reader.read(65536), max(0.01, deadline - asyncio.get_running_loop().time()))
            if not data:
                proto.receive_eof()
            else:
                proto.receive_data(data)
            frames += [e for e in proto.events_received() if isinstance(e, Frame)]
            out = proto.data_to_send()
            if answer_pings:
                writer.write(b"".join(out))
            if not data:
                break
    finally:
        writer.close()
    return frames


async def test_server_sends_heartbeat_pings(make_server: Any, keys: Keys) -> None:
    _, url = await make_server(heartbeat_interval_s=0.05)
    frames = await _raw_frames(url, keys.headers("mm"), answer_pings=True,
                               until=lambda fs: sum(f.opcode == Opcode.PING for f in fs) >= 3)
    pings = [f for f in frames if f.opcode == Opcode.PING]
    assert [p.data for p in pings[:3]] == [HEARTBEAT_PAYLOAD] * 3
    assert not any(f.opcode == Opcode.CLOSE for f in frames)


async def test_connection_without_pongs_is_closed(make_server: Any, keys: Keys) -> None:
    _, url = await make_server(heartbeat_interval_s=0.05, heartbeat_timeout_s=0.1)
    frames = await _raw_frames(url, keys.headers("mm"), answer_pings=False,
                               until=lambda fs: any(f.opcode == Opcode.CLOSE for f in fs))
    close = next(f for f in frames if f.opcode == Opcode.CLOSE)
    assert int.from_bytes(close.data[:2], "big") == 1011


async def test_websockets_client_stays_alive_across_heartbeats(
        make_server: Any, open_client: Any, keys: Keys) -> None:
    _, url = await make_server(heartbeat_interval_s=0.05, heartbeat_timeout_s=0.5)
    client = await open_client(url, ping_interval=None)
    # the raw client seeing several pings on its own connection measures the time that passed
    await _raw_frames(url, keys.headers("mm"), answer_pings=True,
                      until=lambda fs: sum(f.opcode == Opcode.PING for f in fs) >= 5)
    assert (await client.command({"cmd": "list_subscriptions"}))[0]["type"] == "ok"


# === compression, seen at the frame level ========================================================


async def _read_frame(reader: asyncio.StreamReader) -> tuple[bool, int, bytes]:
    """One server frame off the socket, undecoded: (RSV1 set, opcode, payload)."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), TIMEOUT_S)
    assert not b1 & 0x80, "server frames are never masked"
    n = b1 & 0x7F
    if n >= 126:
        n = int.from_bytes(await reader.readexactly(2 if n == 126 else 8), "big")
    return bool(b0 & 0x40), b0 & 0x0F, await reader.readexactly(n)


def _masked_text(payload: bytes) -> bytes:
    """A client text frame (RFC 6455 §5.3: masked), payload < 126 bytes."""
    assert len(payload) < 126
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x81, 0x80 | len(payload))) + mask + body


async def test_deflate_compresses_large_messages_and_sends_small_ones_plain(
        server: Server, ex: LocalExchange, tickers: list[str], keys: Keys) -> None:
    """With permessage-deflate negotiated, a 1 KiB+ snapshot goes compressed (RSV1) and a
    ~250-byte delta goes plain, as RFC 7692 allows per message; both decode to valid frames."""
    for cents in range(1, 80):  # enough levels for a snapshot over 1 KiB
        place(ex, OTHER, tickers[0], "bid", cents, 1)
    parts = urlsplit(server[1])
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        lines = [f"GET {WS_PATH} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                 f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
                 "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
                 *(f"{k}: {v}" for k, v in keys.headers("mm").items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_S)).decode()
        assert head.startswith("HTTP/1.1 101") and "permessage-deflate" in head.lower()
        inflate = zlib.decompressobj(-15)
        writer.write(_masked_text(json.dumps({"id": 1, "cmd": "subscribe", "params": {
            "channels": ["orderbook_delta"], "market_ticker": tickers[0]}}).encode()))
        seen: dict[str, tuple[bool, int]] = {}
        while "orderbook_snapshot" not in seen:
            rsv1, opcode, payload = await _read_frame(reader)
            if opcode != 1:
                continue
            text = inflate.decompress(payload + b"\x00\x00\xff\xff") if rsv1 else payload
            seen[json.loads(text)["type"]] = (rsv1, len(text))
        place(ex, THIRD, tickers[0], "bid", 90, 1)
        rsv1, opcode, payload = await _read_frame(reader)
        delta = json.loads(payload)
    finally:
        writer.close()
    assert seen["subscribed"][0] is False
    assert seen["orderbook_snapshot"][0] is True and seen["orderbook_snapshot"][1] >= 1024
    assert opcode == 1 and rsv1 is False and delta["type"] == "orderbook_delta"
    assert delta["msg"]["price_dollars"] == "0.9000"
