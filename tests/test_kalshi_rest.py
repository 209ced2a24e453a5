"""Kalshi REST client and client-side rate limiter.

The pure parts (token bucket arithmetic, limiter priority, error mapping, request bodies) are
tested directly; the client itself runs against the real local exchange
(:func:`mmcore.sim.rest.build_app` under :class:`~mmcore.sim.runner.LoopbackServer`) over
loopback — no mocked transport. Faults come from the exchange's own ``POST /sim/faults``; the one
fault it cannot make (a response lost *after* the exchange applied the request) comes from a
real httpx transport that drops one response it really received.

Retries use an injected sleep that records the delays, so no test waits for backoff.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from clocks import Sleeps
from mmcore.errors import (
    AuthError, ConfigError, ConflictError, InputError, InvalidRequestError, MalformedPayloadError,
    NotFoundError, RateLimitedError, VenueUnavailableError,
)
from mmcore.orders import Place, Quote
from mmcore.sim.engine import OrderRequest
from mmcore.sim.exchange import LocalExchange, RateTier
from mmcore.sim.rest import build_app
from mmcore.sim.runner import LoopbackServer
from mmcore.sim.scenario import ResolvedScenario, default_scenario
from mmcore.venues.kalshi import schema as s
from mmcore.settings import Settings
from mmcore.venues.kalshi.auth import (
    Signer, generate_key_pair, private_key_from_pem, public_key_from_pem, write_private_key,
)
from mmcore.venues.kalshi.ratelimit import (
    TIERS, RateLimiter, TierLimits, TokenBucket, endpoint_cost,
)
from mmcore.venues.kalshi.rest import (
    CancelAck, ItemError, KalshiRest, OrderAck, OrderParams, _Reply, error_for, game_length_s,
    live_order, order_body, start_from_milestones,
)

KEY_ID = "test-key"
MM = "mm"
NS = 1_000_000_000


# =============================================================================================
# Test kit
# =============================================================================================


class VirtualTime:
    """A manual clock whose ``sleep`` blocks until :meth:`advance` passes its deadline."""

    def __init__(self) -> None:
        self.ns = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __call__(self) -> int:
        return self.ns

    async def sleep(self, delay_s: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((self.ns + round(delay_s * NS), fut))
        try:
            await fut
        finally:
            self._waiters = [(d, f) for d, f in self._waiters if f is not fut]

    async def advance(self, seconds: float) -> None:
        self.ns += round(seconds * NS)
        for deadline, fut in list(self._waiters):
            if deadline <= self.ns and not fut.done():
                fut.set_result(None)
        for _ in range(10):
            await asyncio.sleep(0)  # ok: yields to the loop (virtual clock), no wall-clock wait


async def settle_loop(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)  # ok: yields to the loop, no wall-clock wait


@pytest.fixture(scope="session")
def keys() -> dict[str, bytes]:
    """One registered key pair and one stranger, generated once (RSA keygen is slow)."""
    priv, pub = generate_key_pair()
    other, _ = generate_key_pair()
    return {"private": priv, "public": pub, "other": other}


@dataclass
class Env:
    ex: LocalExchange
    url: str
    signer: Signer
    event: str
    markets: tuple[str, ...]

    def client(self, **kw: Any) -> KalshiRest:
        kw.setdefault("sleep", Sleeps())
        kw.setdefault("rng", random.Random(0))
        signer = kw.pop("signer", self.signer)
        return KalshiRest(self.url, signer, **kw)

    async def fault(self, kind: str, **params: Any) -> None:
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{self.url}/sim/faults", json={"kind": kind, "params": params})
        assert r.status_code < 300, r.text


@pytest.fixture(scope="session")
def scenario() -> ResolvedScenario:
    now = time.time_ns() // 1_000_000 * 1_000_000  # whole ms: RFC 3339 times round-trip exactly
    return default_scenario(7, now, 2)


@pytest.fixture
async def env(keys: dict[str, bytes], scenario: ResolvedScenario) -> AsyncIterator[Env]:
    ex = LocalExchange.from_scenario(scenario)
    ex.add_key(KEY_ID, public_key_from_pem(keys["public"]), MM)
    game = ex.scenario.games[0]  # type: ignore[union-attr]
    async with LoopbackServer(build_app(ex), port=0) as srv:
        yield Env(ex, srv.url, Signer(KEY_ID, private_key_from_pem(keys["private"])),
                  game.event_ticker, tuple(game.markets))


def q(market: str, side: str = "bid", price: int = 4_000, count: int = 1_000) -> Quote:
    return Quote(market, side, price, count)  # type: ignore[arg-type]


# =============================================================================================
# 1. Token bucket and limiter (pure / virtual time)
# =============================================================================================


def test_token_bucket_refills_continuously_up_to_capacity() -> None:
    b = TokenBucket(100, 50, now_ns=0)
    assert b.try_take(50, 0) and not b.try_take(1, 0)
    assert b.wait_ns(10, 0) == 100_000_000  # 10 tokens at 100/s
    assert not b.try_take(10, 99_000_000) and b.try_take(10, 100_000_000)
    assert b.tokens(10 * NS) == 50  # capped
    assert b.try_take(10, 10 * NS, keep=45)  # keep is capped at capacity - cost
    assert b.try_take(10, 10 * NS)  # 30 left
    assert b.wait_ns(10, 10 * NS, keep=25) == 50_000_000
    assert not b.try_take(10, 10 * NS, keep=25) and b.try_take(10, 10 * NS, keep=20)
    b.drain(10 * NS)
    assert b.tokens(10 * NS) == 0
    with pytest.raises(InputError):
        b.try_take(51, 0)


def test_endpoint_costs_follow_the_published_table() -> None:
    assert endpoint_cost("GET", "/trade-api/v2/markets?limit=5") == ("read", 10)
    assert endpoint_cost("GET", "/portfolio/orders") == ("read", 10)
    assert endpoint_cost("GET", "/portfolio/orders/ord-1") == ("read", 2)
    assert endpoint_cost("POST", "/portfolio/events/orders") == ("write", 10)
    assert endpoint_cost("DELETE", "/portfolio/events/orders/ord-1") == ("write", 2)
    assert endpoint_cost("POST", "/portfolio/events/orders/ord-1/amend") == ("write", 10)
    assert endpoint_cost("POST", "/portfolio/events/orders/batched", items=4) == ("write", 40)
    assert endpoint_cost("DELETE", "/portfolio/events/orders/batched", items=4) == ("write", 8)
    assert endpoint_cost("PUT", "/portfolio/order_groups/og-1/trigger") == ("write", 10)
    assert endpoint_cost("GET", "/portfolio/order_groups/og-1") == ("read", 10)


async def test_limiter_serves_cancels_before_queued_normal_writes() -> None:
    vt = VirtualTime()
    lim = RateLimiter(TokenBucket(100, 100, 0), TokenBucket(100, 20, 0), cancel_reserve=0,
                      clock_ns=vt, sleep=vt.sleep, record=True)
    await lim.acquire("write", 10)
    await lim.acquire("write", 10)  # bucket empty now
    creates = [asyncio.create_task(lim.acquire("write", 10)) for _ in range(3)]
    await settle_loop()
    assert lim.waiting("write") == (0, 3)
    cancel = asyncio.create_task(lim.acquire("write", 2, priority="cancel"))
    await settle_loop()
    assert lim.waiting("write") == (1, 3)
    await vt.advance(0.02)  # 2 tokens: exactly the cancel's cost
    assert cancel.done() and cancel.result() == 20_000_000
    assert not any(t.done() for t in creates)
    for _ in range(3):
        await vt.advance(0.1)
    assert all(t.done() for t in creates)
    assert [p for _, p, _ in lim.served] == ["normal", "normal", "cancel", "normal", "normal",
                                              "normal"]


async def test_cancel_reserve_lets_a_cancel_through_a_create_burst_at_once() -> None:
    vt = VirtualTime()
    lim = RateLimiter(TokenBucket(100, 100, 0), TokenBucket(100, 30, 0), cancel_reserve=6,
                      clock_ns=vt, sleep=vt.sleep, record=True)
    await lim.acquire("write", 10)
    await lim.acquire("write", 10)  # 10 left; a third create must leave 6 → waits
    create = asyncio.create_task(lim.acquire("write", 10))
    await settle_loop()
    assert not create.done()
    assert await lim.acquire("write", 2, priority="cancel") == 0  # from the reserve, no wait
    assert await lim.acquire("write", 2, priority="cancel") == 0
    await vt.advance(0.1)
    assert create.done()


async def test_cancelled_waiter_leaves_the_queue() -> None:
    vt = VirtualTime()
    lim = RateLimiter(TokenBucket(100, 100, 0), TokenBucket(10, 10, 0), cancel_reserve=0,
                      clock_ns=vt, sleep=vt.sleep)
    await lim.acquire("write", 10)
    waiter = asyncio.create_task(lim.acquire("write", 10))
    await settle_loop()
    waiter.cancel()
    await settle_loop()
    assert lim.waiting("write") == (0, 0)
    await vt.advance(1.0)
    assert await lim.acquire("write", 10) == 0  # the cancelled waiter took nothing


async def test_limiter_refuses_a_cost_the_bucket_can_never_hold() -> None:
    lim = RateLimiter.for_tier("basic", safety=1.0)
    with pytest.raises(InputError):
        await lim.acquire("write", 110)  # 11 creates in one batch > Basic's 100-token bucket
    with pytest.raises(InputError):
        RateLimiter.for_tier("platinum")
    assert TIERS["basic"] == TierLimits(200, 400, 100, 100)


# =============================================================================================
# 2. Pure parsing
# =============================================================================================


@pytest.mark.parametrize("status,body,cls,code", [
    (400, b'{"code":"invalid_order","message":"invalid order","details":"post only cross"}',
     InvalidRequestError, "invalid_order"),
    (404, b'{"error":{"code":"not_found","message":"no such order"}}', NotFoundError, "not_found"),
    (409, b'{"code":"duplicate_client_order_id","message":"used"}', ConflictError,
     "duplicate_client_order_id"),
    (429, b'{"error": "too many requests"}', RateLimitedError, None),
    (401, b'{"code":"signature_mismatch","message":"bad"}', AuthError, "signature_mismatch"),
    (503, b"<html>bad gateway</html>", VenueUnavailableError, None),
])
def test_error_bodies_map_to_the_error_tree(status: int, body: bytes, cls: type, code: str | None
                                            ) -> None:
    err = error_for(status, body, what="POST /x")
    assert type(err) is cls and err.status == status and err.code == code
    assert err.retryable == (status in (429, 503))
    if status == 400:
        assert "post only cross" in str(err)
    if status == 429:
        assert err.retry_after_s is None and "too many requests" in str(err)


def test_order_body_is_the_v2_wire_shape() -> None:
    p = OrderParams(Quote("KX-A", "ask", 5_650, 250), "cid-1", order_group_id="og-1",
                    expiration_ns=1_800_000_000 * NS + 5)
    body = order_body(p)
    assert body == {
        "ticker": "KX-A", "side": "ask", "count": "2.50", "price": "0.5650",
        "time_in_force": "good_till_canceled", "self_trade_prevention_type": "taker_at_cross",
        "client_order_id": "cid-1", "post_only": True, "cancel_order_on_pause": True,
        "reduce_only": False, "order_group_id": "og-1", "expiration_time": 1_800_000_000,
    }
    s.parse_request(s.CreateOrderV2Request, body)  # what the exchange validates with
    for bad in (Quote("KX-A", "bid", 0, 100), Quote("KX-A", "bid", 10_000, 100),
                Quote("KX-A", "bid", 5_000, 0)):
        with pytest.raises(InputError):
            order_body(OrderParams(bad, "cid"))


def test_live_order_and_milestone_helpers() -> None:
    o = s.Order.model_validate({
        "order_id": "ord-1", "user_id": "u", "client_order_id": "c1", "ticker": "KX-A",
        "outcome_side": "no", "book_side": "ask", "type": "limit", "status": "resting",
        "yes_price_dollars": "0.5600", "no_price_dollars": "0.4400", "fill_count_fp": "1.00",
        "remaining_count_fp": "2.50", "initial_count_fp": "3.50",
        "taker_fill_cost_dollars": "0", "maker_fill_cost_dollars": "0",
        "taker_fees_dollars": "0", "maker_fees_dollars": "0",
        "created_time": "2026-11-23T17:00:00Z", "last_update_time": "2026-11-23T17:00:01.5Z",
    })
    lo = live_order(o)
    assert (lo.side, lo.price, lo.remaining, lo.filled) == ("ask", 5_600, 250, 100)
    assert lo.placed_ns % NS == 500_000_000

    def ms(start: str, primary: list[str], related: list[str]) -> s.Milestone:
        return s.Milestone.model_validate({
            "id": start, "category": "Sports", "type": "basketball_game", "start_date": start,
            "related_event_tickers": related, "title": "", "notification_message": "",
            "details": {}, "primary_event_tickers": primary,
            "last_updated_ts": "2026-11-01T00:00:00Z"})

    a = ms("2026-11-23T19:00:00Z", [], ["EV"])
    b = ms("2026-11-23T20:00:00Z", ["EV"], ["EV"])
    assert start_from_milestones("EV", [a, b]) == b.start_ns()  # primary beats related
    assert start_from_milestones("EV", [a]) == a.start_ns()
    assert start_from_milestones("OTHER", [a, b]) is None
    assert game_length_s("KXNBAGAME-26NOV23MILMIA") == 9000.0
    assert game_length_s("KXNCAAMBGAME") == 7800.0  # longest prefix, not KXNBA…
    assert game_length_s("KXUNKNOWN") == 10800.0


# =============================================================================================
# 3. Against the local exchange
# =============================================================================================


async def test_public_endpoints_work_unsigned(env: Env) -> None:
    async with env.client(signer=None) as rest:
        status = await rest.exchange_status()
        assert status.exchange_active and status.trading_active
        ev = await rest.get_event(env.event)
        assert ev.event_ticker == env.event
        assert sorted(m.ticker for m in ev.markets or []) == sorted(env.markets)
        events = await rest.get_events(limit=1)  # one per page: the cursor is followed
        assert env.event in {e.event_ticker for e in events} and len(events) == 2
        markets = await rest.get_markets(event_ticker=env.event, limit=1)
        assert sorted(m.ticker for m in markets) == sorted(env.markets)
        m = await rest.get_market(env.markets[0])
        assert m.status == "active" and m.tick_grid() is not None
        book = await rest.get_orderbook(env.markets[0])
        assert book.yes == () and book.no == ()
        with pytest.raises(AuthError):
            await rest.get_balance()
        with pytest.raises(NotFoundError):
            await rest.get_market("KXNOPE-1")
        assert rest.live_signed == 0 and rest.presigned_used == 0


async def test_signed_gets_and_a_wrong_key(env: Env, keys: dict[str, bytes]) -> None:
    async with env.client() as rest:
        assert await rest.get_balance() == 100_000_000  # $10,000 in $0.0001 units
        assert await rest.get_orders(event_ticker=env.event) == []
        assert await rest.get_positions(event_ticker=env.event) == {}
        assert await rest.get_fills() == []
    wrong_key = Signer(KEY_ID, private_key_from_pem(keys["other"]))  # right id, wrong key
    unknown = Signer("who-is-this", private_key_from_pem(keys["private"]))
    for signer in (wrong_key, unknown):
        async with env.client(signer=signer) as rest:
            with pytest.raises(AuthError) as info:
                await rest.get_balance()
            assert info.value.status == 401 and not info.value.retryable
            assert rest.requests == 1  # refusals are not retried


async def test_order_round_trip(env: Env) -> None:
    m = env.markets[0]
    async with env.client() as rest:
        ack = await rest.create_order(q(m, "bid", 4_000, 1_000), "rt-1")
        assert isinstance(ack, OrderAck)
        assert (ack.client_order_id, ack.fill_count, ack.remaining_count) == ("rt-1", 0, 1_000)
        assert ack.latency_ns > 0 and ack.exchange_ns is not None and not ack.recovered
        raw = await rest.get_order(ack.order_id)
        assert raw.cancel_order_on_pause is True and raw.status == "resting"

        [live] = await rest.get_orders(event_ticker=env.event)
        assert (live.order_id, live.client_order_id, live.market, live.side, live.price,
                live.remaining, live.filled) == (ack.order_id, "rt-1", m, "bid", 4_000, 1_000, 0)
        assert live.placed_ns > 0

        amended = await rest.amend_order(ack.order_id, m, "bid", 4_100, 1_500)
        assert amended.order_id == ack.order_id
        [live] = await rest.get_orders(ticker=m)
        assert (live.price, live.remaining) == (4_100, 1_500)

        dec = await rest.decrease_order(ack.order_id, reduce_by=500)
        assert dec.remaining_count == 1_000
        dec = await rest.decrease_order(ack.order_id, reduce_to=300)
        assert dec.remaining_count == 300

        book = await rest.get_orderbook(m)
        assert book.yes == ((4_100, 300),) and book.no == ()
        assert book.to_market_book().top().bid == 4_100

        cancel = await rest.cancel_order(ack.order_id)
        assert isinstance(cancel, CancelAck) and cancel.reduced_by == 300
        assert not cancel.mismatched
        assert await rest.get_orders(event_ticker=env.event) == []
        assert (await rest.get_order(ack.order_id)).status == "canceled"
        with pytest.raises(ConflictError):  # a reused client id on a first attempt is ours
            await rest.create_order(q(m, "bid", 3_900, 100), "rt-1")
        with pytest.raises(InvalidRequestError):  # 4xx is never retried
            await rest.create_order(q(m, "bid", 4_050, 100))  # off the cent grid
        assert rest.retries == 0


async def test_post_only_cross_is_refused_with_details(env: Env) -> None:
    m = env.markets[0]
    env.ex.mutate(lambda eng, now: eng.place(OrderRequest(
        user_id="noise-0-0", ticker=m, side="ask", price=5_000, count=500), now))
    async with env.client() as rest:
        with pytest.raises(InvalidRequestError) as info:
            await rest.create_order(q(m, "bid", 5_000, 100))
        assert "post only cross" in str(info.value)


async def test_batch_create_and_cancel_with_per_item_errors(env: Env) -> None:
    a, b = env.markets
    async with env.client() as rest:
        results = await rest.batch_create([
            Place(q(a, "bid", 3_000, 200), "b-1"),
            q("KXNOPE-26NOV23-XXX", "bid", 3_000, 200),
            Place(q(b, "ask", 7_000, 300), "b-3"),
        ])
        assert [type(r) for r in results] == [OrderAck, ItemError, OrderAck]
        bad = results[1]
        assert isinstance(bad, ItemError) and bad.index == 1
        assert isinstance(bad.error, NotFoundError) or isinstance(bad.error, InvalidRequestError)
        ids = [r.order_id for r in results if isinstance(r, OrderAck)]
        live = await rest.get_orders(event_ticker=env.event)
        assert sorted(o.order_id for o in live) == sorted(ids)

        cancels = await rest.batch_cancel([ids[0], "ord-99999999", ids[1]])
        assert [type(c) for c in cancels] == [CancelAck, ItemError, CancelAck]
        assert [c.reduced_by for c in cancels if isinstance(c, CancelAck)] == [200, 300]
        assert isinstance(cancels[1], ItemError) and cancels[1].id == "ord-99999999"
        assert isinstance(cancels[1].error, NotFoundError)
        assert await rest.get_orders(event_ticker=env.event) == []


async def test_create_is_retried_with_the_same_client_id_after_a_5xx(env: Env) -> None:
    m = env.markets[0]
    sleeps = Sleeps()
    async with env.client(sleep=sleeps) as rest:
        await env.fault("http_5xx", count=1)
        ack = await rest.create_order(q(m, "bid", 4_000, 700), "retry-1")
        assert ack.attempts == 2 and len(sleeps.delays) == 1 and rest.retries == 1
        everything = await rest.get_orders_raw(ticker=m)
        assert [o.client_order_id for o in everything] == ["retry-1"]  # exactly one order
        assert everything[0].order_id == ack.order_id


class LoseResponses(httpx.AsyncBaseTransport):
    """A real transport that, for the first ``times`` requests matching ``method`` and a path
    ending in ``suffix``, lets the exchange handle the request, reads the reply and then drops
    it as if the connection timed out — the ambiguous failure a 5xx cannot stage."""

    def __init__(self, method: str, suffix: str, times: int = 1) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.method, self.suffix, self.left = method, suffix, times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        resp = await self.inner.handle_async_request(request)
        if self.left and request.method == self.method and request.url.path.endswith(self.suffix):
            self.left -= 1
            await resp.aread()
            await resp.aclose()
            raise httpx.ReadTimeout("reply lost in transit (test)", request=request)
        return resp

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_create_whose_reply_was_lost_is_recovered_not_duplicated(env: Env) -> None:
    m = env.markets[0]
    async with httpx.AsyncClient(transport=LoseResponses("POST", "/events/orders")) as http:
        async with env.client(client=http) as rest:
            ack = await rest.create_order(q(m, "bid", 4_200, 600), "lost-1")
            assert ack.recovered and ack.attempts == 2
            assert (ack.client_order_id, ack.remaining_count, ack.fill_count) == ("lost-1", 600, 0)
            orders = await rest.get_orders_raw(ticker=m)
            assert [o.order_id for o in orders] == [ack.order_id]  # one order, not two


async def test_batch_whose_reply_was_lost_recovers_each_item(env: Env) -> None:
    a, b = env.markets
    async with httpx.AsyncClient(transport=LoseResponses("POST", "/orders/batched")) as http:
        async with env.client(client=http) as rest:
            results = await rest.batch_create([Place(q(a, "bid", 3_000, 100), "lb-1"),
                                               Place(q(b, "bid", 3_000, 100), "lb-2")])
            assert all(isinstance(r, OrderAck) and r.recovered for r in results)
            assert len(await rest.get_orders(event_ticker=env.event)) == 2


async def test_create_that_timed_out_at_a_slow_exchange_is_recovered(env: Env) -> None:
    """The exchange's ``slow_replies`` fault answers only after doing the work, so a client
    timeout is the real ambiguous case: the retry is refused as a duplicate and resolved."""
    m = env.markets[0]
    await env.fault("slow_replies", seconds=0.4, delay_s=1.0)
    async with env.client(timeout_s=0.2, backoff_s=0.5, max_backoff_s=1.0,
                          sleep=asyncio.sleep) as rest:
        ack = await rest.create_order(q(m, "bid", 4_300, 200), "slow-1")
        assert ack.recovered and ack.attempts >= 2 and ack.remaining_count == 200
        assert [o.order_id for o in await rest.get_orders_raw(ticker=m)] == [ack.order_id]


async def test_decrease_by_is_not_retried_after_an_ambiguous_failure(env: Env) -> None:
    m = env.markets[0]
    async with httpx.AsyncClient(transport=LoseResponses("POST", "/decrease")) as http:
        async with env.client(client=http) as rest:
            ack = await rest.create_order(q(m, "bid", 4_000, 1_000))
            with pytest.raises(Exception) as info:
                await rest.decrease_order(ack.order_id, reduce_by=100)
            assert getattr(info.value, "retryable", False)  # surfaced, for the caller to check
            [live] = await rest.get_orders(ticker=m)
            assert live.remaining == 900  # applied once, not twice


async def test_rate_limit_storm_backs_off_exponentially_then_raises(env: Env) -> None:
    sleeps = Sleeps()
    async with env.client(sleep=sleeps, max_retries=3, backoff_s=0.1) as rest:
        await env.fault("rate_limit_storm", seconds=30)
        with pytest.raises(RateLimitedError) as info:
            await rest.create_order(q(env.markets[0]))
        assert info.value.status == 429 and info.value.retry_after_s is None
        assert rest.requests == 4 and rest.rate_limited == 4
        assert len(sleeps.delays) == 3
        for i, d in enumerate(sleeps.delays):
            assert 0.1 * 2**i <= d <= 0.1 * 2**i * 1.25
        with pytest.raises(RateLimitedError):
            await rest.get_balance()


async def test_client_limiter_keeps_a_burst_under_the_server_bucket(env: Env) -> None:
    env.ex.tier = RateTier(read_per_s=200, read_capacity=400, write_per_s=400,
                           write_capacity=100)
    tier = TierLimits(200, 400, 400, 100)
    m = env.markets[0]
    n = 30  # 300 write tokens against a 100-token bucket
    async with env.client(max_retries=0) as naive:
        results = await asyncio.gather(
            *(naive.create_order(q(m, "bid", 1_000 + i * 100 % 5_000, 100)) for i in range(n)),
            return_exceptions=True)
        refused = [r for r in results if isinstance(r, RateLimitedError)]
        assert refused, "without a limiter the burst must overrun the server's bucket"
    await asyncio.sleep(0.5)  # ok: waits for time itself (token-bucket refill), not for an event
    limiter = RateLimiter.for_tier(tier, safety=0.9)
    async with env.client(max_retries=0, limiter=limiter) as rest:
        started = time.perf_counter()
        acks = await asyncio.gather(
            *(rest.create_order(q(m, "bid", 1_000 + (i % 40) * 100, 100)) for i in range(n)))
        elapsed = time.perf_counter() - started
        assert all(isinstance(a, OrderAck) for a in acks) and rest.rate_limited == 0
        assert elapsed >= (n * 10 - 90) / (400 * 0.9) * 0.9  # it really was paced


async def test_a_cancel_is_served_before_queued_creates(env: Env) -> None:
    env.ex.tier = RateTier(read_per_s=200, read_capacity=400, write_per_s=200,
                           write_capacity=100)
    m = env.markets[0]
    limiter = RateLimiter.for_tier(TierLimits(200, 400, 200, 100), safety=0.9, record=True)
    async with env.client(max_retries=0, limiter=limiter) as rest:
        first = await rest.create_order(q(m, "bid", 2_000, 100))
        creates = [asyncio.create_task(rest.create_order(q(m, "bid", 2_100 + i * 100, 100)))
                   for i in range(12)]
        await settle_loop()
        queued = limiter.waiting("write")[1]
        assert queued > 0
        served_before = len(limiter.served)
        cancel = await rest.cancel_order(first.order_id)
        assert cancel.reduced_by == 100
        kinds = [p for _, p, _ in limiter.served]
        assert kinds.index("cancel") == served_before  # next in line, ahead of the queue
        assert limiter.waiting("write")[1] > 0 or not all(t.done() for t in creates)
        await asyncio.gather(*creates)
        assert rest.rate_limited == 0


async def test_presigned_requests_verify_and_counters_move(env: Env) -> None:
    m = env.markets[0]
    async with env.client() as rest:  # __aenter__ fills the pools
        avail = rest.presigned_available()
        assert len(avail) == 3 and all(v >= 1 for v in avail.values())
        await rest.create_order(q(m, "bid", 3_000, 100))  # pre-signed
        assert (rest.presigned_used, rest.live_signed) == (1, 0)
        # entries are stamped when signed: the pool holds several ready ones at once
        await rest.create_order(q(m, "bid", 3_100, 100))
        assert (rest.presigned_used, rest.live_signed) == (2, 0)
        results = await rest.batch_create([q(m, "bid", 3_200, 100), q(m, "bid", 3_300, 100)])
        ids = [r.order_id for r in results if isinstance(r, OrderAck)]
        cancels = await rest.batch_cancel(ids)
        assert all(isinstance(c, CancelAck) for c in cancels)
        assert (rest.presigned_used, rest.live_signed) == (4, 0)
        await rest.refill_presigned()  # what was taken is replaced (also in the background)
        assert rest.presign_signatures >= 3 * 6 + 4
        await rest.create_order(q(m, "bid", 3_400, 100))
        assert (rest.presigned_used, rest.live_signed) == (5, 0)
    async with env.client(presign=False) as rest:
        await rest.create_order(q(m, "bid", 2_500, 100))
        assert (rest.presigned_used, rest.live_signed) == (0, 1)


async def test_game_start_comes_from_the_milestone(env: Env) -> None:
    games = env.ex.scenario.games  # type: ignore[union-attr]
    async with env.client(signer=None) as rest:
        for g in games:
            start = await rest.game_start(g.event_ticker)
            assert start.source == "milestone"
            assert start.start_ns == g.start_ns
            assert await rest.game_start_ns(g.event_ticker) == g.start_ns
        ms = await rest.get_milestones(games[0].event_ticker)
        assert ms and all(games[0].event_ticker in m.related_event_tickers for m in ms)


async def test_game_start_falls_back_to_expected_expiration_without_a_milestone(
        env: Env) -> None:
    event, close_ns = "KXNBAGAME-26DEC01AAABBB", 1_796_000_000 * NS

    def add(eng: Any, now: int) -> None:
        eng.add_event(event, series_ticker="KXNBAGAME", title="A at B", start_ns=None)
        eng.add_market(event + "-AAA", event_ticker=event, close_ns=close_ns, open_ns=now)

    env.ex.mutate(add)
    async with env.client(signer=None) as rest:
        assert await rest.get_milestones(event) == []
        start = await rest.game_start(event)
        assert start.source == "expected_expiration"
        assert start.start_ns == close_ns - 9_000 * NS  # NBA: ~2.5 h before expected expiry
        with pytest.raises(NotFoundError):
            await rest.game_start("KXNBAGAME-26DEC02NOPE")


async def test_positions_and_fills_after_another_user_crosses(env: Env) -> None:
    m = env.markets[0]
    async with env.client() as rest:
        ack = await rest.create_order(q(m, "bid", 4_500, 1_000), "pos-1")
        env.ex.mutate(lambda eng, now: eng.place(OrderRequest(
            user_id="noise-0-0", ticker=m, side="ask", price=4_500, count=400,
            time_in_force="immediate_or_cancel"), now))
        positions = await rest.get_positions(event_ticker=env.event)
        assert set(positions) == {m}
        p = positions[m]
        assert p.position == 400 and p.exposure > 0 and p.fees_paid >= 0
        [fill] = await rest.get_fills(ticker=m)
        assert (fill.order_id, fill.side, fill.price, fill.count, fill.is_taker) == (
            ack.order_id, "bid", 4_500, 400, False)
        [live] = await rest.get_orders(ticker=m)
        assert (live.filled, live.remaining) == (400, 600)
        # amend's count is the new TOTAL: filled 400 + 1000 wanted to rest
        await rest.amend_order(ack.order_id, m, "bid", 4_500, live.filled + 1_000)
        [live] = await rest.get_orders(ticker=m)
        assert (live.filled, live.remaining) == (400, 1_000)
        assert await rest.get_balance() < 100_000_000


async def test_order_groups(env: Env) -> None:
    m = env.markets[0]
    async with env.client() as rest:
        gid = await rest.create_order_group(1_000)
        ack = await rest.create_order(q(m, "bid", 3_000, 100), order_group_id=gid)
        group = await rest.get_order_group(gid)
        assert group.orders == [ack.order_id] and group.contracts_limit_fp == "10.00"
        await rest.trigger_order_group(gid)
        assert await rest.get_orders(ticker=m) == []
        with pytest.raises(InvalidRequestError):
            await rest.create_order(q(m, "bid", 3_000, 100), order_group_id=gid)
        await rest.reset_order_group(gid)
        await rest.create_order(q(m, "bid", 3_000, 100), order_group_id=gid)
        await rest.delete_order_group(gid)
        assert await rest.get_orders(ticker=m) == []
        with pytest.raises(NotFoundError):
            await rest.get_order_group(gid)


def test_malformed_success_body_is_a_protocol_error() -> None:
    for body in (b'{"market": {"ticker": 1}}', b"<html>ok</html>"):
        with pytest.raises(MalformedPayloadError) as info:
            KalshiRest._parse(s.GetMarketResponse, _Reply(200, body, 1, 1), "GET /markets/x")
        assert info.value.status == 200 and not info.value.retryable


async def test_nothing_secret_is_logged(env: Env, keys: dict[str, bytes],
                                        caplog: pytest.LogCaptureFixture) -> None:
    m = env.markets[0]
    seen: list[str] = []

    async def keep_signature(request: httpx.Request) -> None:
        seen.append(request.headers["KALSHI-ACCESS-SIGNATURE"])

    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(event_hooks={"request": [keep_signature]}) as http:
        async with env.client(client=http) as rest:
            ack = await rest.create_order(q(m, "bid", 3_000, 100))
            await rest.cancel_order(ack.order_id)
            await rest.get_balance()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/portfolio/events/orders" in text  # method, path, status, latency at DEBUG
    assert seen and not any(sig in text or sig[:32] in text for sig in seen)
    assert "PRIVATE KEY" not in text and "PRIVATE KEY" not in repr(env.client())
    assert "test-key" in repr(env.client())


def test_from_settings_and_base_url(tmp_path: Path, keys: dict[str, bytes]) -> None:
    with pytest.raises(ConfigError):
        KalshiRest.from_settings(Settings(_env_file=None, venue="sim"))
    with pytest.raises(ConfigError):
        KalshiRest.from_settings(Settings(_env_file=None, venue="kalshi-demo"))
    signer = Signer(KEY_ID, private_key_from_pem(keys["private"]))
    rest = KalshiRest.from_settings(Settings(_env_file=None, venue="sim"), signer=signer)
    assert rest.base_url.endswith("/trade-api/v2") and rest.signer is signer
    assert rest.limiter is not None  # Basic tier unless told otherwise
    path = write_private_key(tmp_path / "kalshi.pem", keys["private"])
    rest = KalshiRest.from_settings(Settings(
        _env_file=None, venue="kalshi-demo", kalshi_api_key_id="abc",
        kalshi_private_key_path=str(path)))
    assert rest.base_url == "https://external-api.demo.kalshi.co/trade-api/v2"
    assert rest.signer is not None and rest.signer.key_id == "abc"
    assert KalshiRest("http://h:1/", None).base_url == "http://h:1/trade-api/v2"
    assert KalshiRest("http://h:1/trade-api/v2/", None).base_url == "http://h:1/trade-api/v2"


async def test_user_data_timestamp_is_now_or_the_lag_of_portfolio_reads(env: Env) -> None:
    """The exchange's freshness of portfolio reads: about now, and ``lag_s`` behind under the
    ``positions_lag`` fault (what the worker weighs a position drift against)."""
    async with env.client() as rest:
        before = time.time_ns()
        fresh = await rest.get_user_data_timestamp()
        after = time.time_ns()
        assert before - 2_000_000 <= fresh <= after  # RFC 3339 to the ms
        await env.fault("positions_lag", seconds=60, lag_s=30)
        lagged = await rest.get_user_data_timestamp()
        assert lagged <= time.time_ns() - 30 * NS and lagged >= before - 30 * NS - 2_000_000
