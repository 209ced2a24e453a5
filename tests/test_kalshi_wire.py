"""The lean order-write transport (:mod:`mmcore.venues.kalshi.wire`).

The pure parts (request bytes, the reply parser) are tested directly, the parser also as a
property: however a reply is cut into reads, the result is the same. The transport runs against
the real local exchange over loopback through :class:`KalshiRest`, as ``test_kalshi_rest.py``
does (no mocked transport): every write kind leaves the same exchange state as over httpx, a
keep-alive connection the server closed is replaced without a failed attempt, and 429 / 5xx /
timeouts / refused connections take the same retry, limiter and error paths. Misbehaviour the
exchange never shows (a peer that hangs up without replying, chunked or close-delimited bodies)
comes from a small raw asyncio server.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clocks import Sleeps
from mmcore.errors import InputError, RateLimitedError, VenueUnavailableError
from mmcore.orders import Place, Quote
from mmcore.sim.exchange import MM_USER, LocalExchange, RateTier
from mmcore.sim.rest import build_app
from mmcore.sim.runner import LoopbackServer
from mmcore.sim.scenario import ResolvedScenario, default_scenario
from mmcore.venues.kalshi.auth import (
    Signer, generate_key_pair, private_key_from_pem, public_key_from_pem,
)
from mmcore.venues.kalshi.ratelimit import RateLimiter
from mmcore.venues.kalshi.rest import KalshiRest, OrderAck
from mmcore.venues.kalshi.wire import (
    ResponseParser, WireConnectionLost, WirePool, WireProtocolError, WireReadTimeout,
    build_request,
)

KEY_ID = "wire-key"


# =============================================================================================
# Pure: request bytes and the reply parser
# =============================================================================================


def test_request_bytes_are_a_complete_http11_request() -> None:
    data = build_request("POST", "/trade-api/v2/portfolio/events/orders", "h:8080",
                         {"KALSHI-ACCESS-KEY": "k", "KALSHI-ACCESS-TIMESTAMP": "17"},
                         b'{"a":1}')
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /trade-api/v2/portfolio/events/orders HTTP/1.1"
    assert b"Host: h:8080" in lines and b"KALSHI-ACCESS-KEY: k" in lines
    assert b"Content-Type: application/json" in lines and b"Content-Length: 7" in lines
    assert body == b'{"a":1}'
    bare = build_request("DELETE", "/x/ord-1", "h", {}, None)
    assert bare.endswith(b"\r\n\r\n") and b"Content-Length" not in bare
    assert b"Content-Length: 0" in build_request("PUT", "/x", "h", {}, None)
    with pytest.raises(InputError):
        build_request("POST", "/x", "h", {"KALSHI-ACCESS-KEY": "k\r\nX-Evil: 1"}, None)
    with pytest.raises(InputError):
        build_request("POST", "/x y", "h", {}, None)


REPLIES = [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, b"hello", True),
    (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Trailer: 1\r\n\r\n", 201, b"hello", True),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many\r\nContent-Length: 2\r\n"
     b"Connection: close\r\n\r\n{}", 429, b"{}", False),
    (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b"", True),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 200, b"x", False),
]


@pytest.mark.parametrize(("raw", "status", "body", "keep"), REPLIES)
def test_parser_reads_each_body_framing(raw: bytes, status: int, body: bytes, keep: bool) -> None:
    r = ResponseParser().feed(raw)
    assert r is not None and (r.status, r.body, r.keep_alive) == (status, body, keep)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(REPLIES), st.lists(st.integers(0, 200), max_size=12))
def test_parser_result_does_not_depend_on_how_reads_are_cut(reply: tuple[Any, ...],
                                                             cuts: list[int]) -> None:
    raw = reply[0]
    points = sorted({c % (len(raw) + 1) for c in cuts} | {0, len(raw)})
    parser, got = ResponseParser(), None
    for a, b in zip(points, points[1:]):
        assert got is None
        got = parser.feed(raw[a:b])
    assert got is not None and (got.status, got.body, got.keep_alive) == reply[1:]


def test_parser_refuses_malformed_replies_and_reads_close_delimited_bodies() -> None:
    for bad in (b"HTTP/2 200 OK\r\n\r\n", b"HTTP/1.1 2000 OK\r\n\r\n",
                b"HTTP/1.1 200 OK\r\n bad fold\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxy",  # bytes after the reply
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
        with pytest.raises(WireProtocolError):
            ResponseParser().feed(bad)
    p = ResponseParser()
    assert p.feed(b"HTTP/1.1 200 OK\r\n\r\nuntil") is None and p.feed(b" close") is None
    r = p.eof()
    assert (r.body, r.keep_alive) == (b"until close", False)
    p = ResponseParser()
    p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort")
    with pytest.raises(WireConnectionLost, match="mid-reply"):
        p.eof()


# =============================================================================================
# Against the local exchange
# =============================================================================================


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return generate_key_pair()


@pytest.fixture(scope="module")
def scenario() -> ResolvedScenario:
    return default_scenario(5, time.time_ns() // 1_000_000 * 1_000_000, 1)


@dataclass
class Env:
    ex: LocalExchange
    url: str
    signer: Signer
    markets: tuple[str, ...]

    def client(self, **kw: Any) -> KalshiRest:
        kw.setdefault("sleep", Sleeps())
        kw.setdefault("rng", random.Random(0))
        return KalshiRest(self.url, self.signer, **kw)

    async def fault(self, kind: str, **params: Any) -> None:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{self.url}/sim/faults", json={"kind": kind, "params": params})
        assert r.status_code < 300, r.text


async def _exchange(keys: tuple[bytes, bytes], scenario: ResolvedScenario,
                    **uvicorn: Any) -> AsyncIterator[Env]:
    ex = LocalExchange.from_scenario(scenario)
    ex.tier = RateTier(1e9, 1e9, 1e9, 1e9)  # the server's buckets stay out of the way
    ex.add_key(KEY_ID, public_key_from_pem(keys[1]), MM_USER)
    game = ex.scenario.games[0]  # type: ignore[union-attr]
    async with LoopbackServer(build_app(ex), port=0, **uvicorn) as srv:
        yield Env(ex, srv.url, Signer(KEY_ID, private_key_from_pem(keys[0])), tuple(game.markets))


@pytest.fixture
async def env(keys: tuple[bytes, bytes], scenario: ResolvedScenario) -> AsyncIterator[Env]:
    async for e in _exchange(keys, scenario):
        yield e


@pytest.fixture
async def env2(keys: tuple[bytes, bytes], scenario: ResolvedScenario) -> AsyncIterator[Env]:
    async for e in _exchange(keys, scenario):
        yield e


async def _every_write(rest: KalshiRest, markets: tuple[str, ...]) -> list[Any]:
    """One of each write kind; what the acks said (ids aside)."""
    a, b = markets
    seen: list[Any] = []
    group = await rest.create_order_group(5_000)
    one = await rest.create_order(Quote(a, "bid", 3_000, 500), "w-1", order_group_id=group)
    seen.append((one.client_order_id, one.remaining_count, one.fill_count))
    amended = await rest.amend_order(one.order_id, a, "bid", 3_100, 700)
    seen.append((amended.remaining_count, amended.client_order_id))
    dec = await rest.decrease_order(one.order_id, reduce_by=200)
    seen.append(dec.remaining_count)
    dec = await rest.decrease_order(one.order_id, reduce_to=300)
    seen.append(dec.remaining_count)
    batch = await rest.batch_create([Place(Quote(a, "bid", 2_000, 100), "w-2"),
                                     Place(Quote(b, "ask", 8_000, 100), "w-3"),
                                     Place(Quote(b, "ask", 8_100, 100), "w-4")])
    ids = [r.order_id for r in batch if isinstance(r, OrderAck)]
    seen.append([(r.client_order_id, r.remaining_count) for r in batch if isinstance(r, OrderAck)])
    cancels = await rest.batch_cancel(ids[:2])
    seen.append([getattr(c, "reduced_by", None) for c in cancels])
    cancel = await rest.cancel_order(ids[2])
    seen.append(cancel.reduced_by)
    await rest.trigger_order_group(group)  # the venue cancels the group's orders
    await rest.reset_order_group(group)
    await rest.delete_order_group(group)
    return seen


def _state(ex: LocalExchange) -> list[tuple[Any, ...]]:
    return sorted((o.client_order_id, o.ticker, o.side, o.price, o.remaining, o.status)
                  for o in ex.engine.orders(MM_USER))


async def test_every_write_kind_gives_the_same_exchange_state_as_httpx(env: Env,
                                                                      env2: Env) -> None:
    async with env.client() as rest:
        assert rest.wire is not None  # the default
        wire_acks = await _every_write(rest, env.markets)
        assert rest.wire.requests == 11 and rest.requests == 11  # every write went over it
        assert rest.wire.opened == 1  # one keep-alive connection carried them all
    async with env2.client(wire=False) as rest:
        assert rest.wire is None
        httpx_acks = await _every_write(rest, env2.markets)
    assert wire_acks == httpx_acks
    assert _state(env.ex) == _state(env2.ex)
    assert len(_state(env.ex)) == 4 and all(s[5] == "canceled" for s in _state(env.ex))


async def test_a_keepalive_connection_the_server_closed_is_replaced_transparently(
        keys: tuple[bytes, bytes], scenario: ResolvedScenario) -> None:
    async for env in _exchange(keys, scenario, timeout_keep_alive=0.2):
        m = env.markets[0]
        async with env.client() as rest:
            assert rest.wire is not None
            ack = await rest.create_order(Quote(m, "bid", 2_500, 100))
            assert rest.wire.opened == 1
            # the server drops the idle connection after 0.2 s; the pool sees the close
            deadline = time.monotonic() + 10
            while rest.wire.idle_connections:
                assert time.monotonic() < deadline, "server never closed the idle connection"
                await asyncio.sleep(0.01)  # ok: polls a condition with a deadline
            amended = await rest.amend_order(ack.order_id, m, "bid", 2_600, 100)
            assert amended.attempts == 1 and rest.retries == 0  # no failed attempt
            assert rest.wire.opened == 2
            assert env.ex.engine.order(MM_USER, ack.order_id).price == 2_600


async def test_429_and_5xx_take_the_same_retry_and_limiter_paths(env: Env) -> None:
    m = env.markets[0]
    sleeps = Sleeps()
    limiter = RateLimiter.for_tier("advanced")
    async with env.client(sleep=sleeps, limiter=limiter) as rest:
        assert rest.wire is not None
        await env.fault("http_5xx", count=1)
        ack = await rest.create_order(Quote(m, "bid", 4_000, 700), "r-1")
        assert ack.attempts == 2 and rest.retries == 1 and rest.wire.requests == 2
        assert [o.client_order_id for o in env.ex.engine.orders(MM_USER)] == ["r-1"]
        await env.fault("rate_limit_storm", seconds=30)
        with pytest.raises(RateLimitedError) as info:
            await rest.amend_order(ack.order_id, m, "bid", 4_100, 700)
        assert info.value.status == 429
        assert rest.rate_limited == 4 and rest.wire.requests == 6  # 1 + max_retries 3
        assert len(sleeps.delays) == 4  # one for the 5xx, three for the 429s
        for i, d in enumerate(sleeps.delays[1:]):
            assert 0.1 * 2**i <= d <= 0.1 * 2**i * 1.25
        # each 429 emptied our mirror of the bucket: the retries waited for tokens
        assert limiter.waited_ns > 0


async def test_a_slow_reply_times_out_and_the_create_is_recovered(env: Env) -> None:
    m = env.markets[0]
    await env.fault("slow_replies", seconds=0.4, delay_s=1.0)
    async with env.client(timeout_s=0.2, backoff_s=0.5, max_backoff_s=1.0,
                          sleep=asyncio.sleep) as rest:
        assert rest.wire is not None
        ack = await rest.create_order(Quote(m, "bid", 4_300, 200), "slow-w")
        assert ack.recovered and ack.attempts >= 2
        assert [o.client_order_id for o in env.ex.engine.orders(MM_USER)] == ["slow-w"]


async def test_a_refused_connection_is_retried_as_not_executed(env: Env) -> None:
    import socket

    with socket.socket() as s:  # bound, never listening: connecting is refused at once
        s.bind(("127.0.0.1", 0))
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        sleeps = Sleeps()
        async with KalshiRest(url, Signer(KEY_ID, env.signer._key),  # noqa: SLF001
                              sleep=sleeps, max_retries=2) as rest:
            with pytest.raises(VenueUnavailableError):
                # reduce_by is retried only when it surely did not execute: a refused connect
                await rest.decrease_order("ord-1", reduce_by=100)
            assert rest.retries == 2 and len(sleeps.delays) == 2


# =============================================================================================
# A raw peer: behaviour the exchange never shows
# =============================================================================================


async def _raw_server(handler: Any) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def test_pool_reads_chunked_and_close_delimited_and_survives_a_hangup() -> None:
    replies = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
               None,  # hang up without a reply
               b"HTTP/1.1 200 OK\r\n\r\n{\"a\":1}"]  # body to the close

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while replies:
                await reader.readuntil(b"\r\n\r\n")
                reply = replies.pop(0)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if b"chunked" not in reply:
                    break
        finally:
            writer.close()

    server, url = await _raw_server(handler)
    pool = WirePool(url, timeout_s=2.0)
    try:
        resp, _ = await pool.request("DELETE", "/x", {}, None)
        assert (resp.status, resp.body, resp.keep_alive) == (200, b"{}", True)
        with pytest.raises(WireConnectionLost) as info:
            await pool.request("POST", "/x", {}, b"{}")  # reused, then hung up on
        assert info.value.sent
        resp, _ = await pool.request("POST", "/x", {}, b"{}")  # a new connection
        assert (resp.body, resp.keep_alive, pool.opened) == (b'{"a":1}', False, 2)
    finally:
        await pool.aclose()
        server.close()


async def test_pool_times_out_a_silent_peer_and_never_reuses_that_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads, never answers

    server, url = await _raw_server(handler)
    pool = WirePool(url, timeout_s=0.1, max_connections=1)
    try:
        with pytest.raises(WireReadTimeout):
            await pool.request("POST", "/x", {}, b"{}")
        assert pool.idle_connections == 0
        with pytest.raises(WireReadTimeout):  # the slot was released: no pool wait
            await pool.request("POST", "/x", {}, b"{}")
        assert pool.opened == 2
    finally:
        await pool.aclose()
        server.close()


def test_the_write_transport_setting_selects_the_path(keys: tuple[bytes, bytes]) -> None:
    from mmcore.settings import Settings

    signer = Signer(KEY_ID, private_key_from_pem(keys[0]))
    rest = KalshiRest.from_settings(Settings(_env_file=None, venue="sim"), signer=signer)
    assert rest.wire is not None  # the default
    rest = KalshiRest.from_settings(Settings(_env_file=None, venue="sim",
                                             write_transport="httpx"), signer=signer)
    assert rest.wire is None
    with pytest.raises(Exception, match="write_transport"):
        Settings(_env_file=None, venue="sim", write_transport="carrier-pigeon")
