"""Per-order pre-signed headers (amend and single cancel) and non-blocking refills.

REST tests run :class:`~mmcore.venues.kalshi.rest.KalshiRest` against the real local exchange
over loopback (its RSA-PSS verification is real: a wrong header is a 401), as
``tests/test_kalshi_rest.py`` does. The driver test runs a real
:class:`~mmcore.worker.driver.WorkerDriver` (``tests/workerkit.py``). Time is never waited for:
a pool's later timestamps are reached by moving the client's injected clock (the exchange accepts
timestamps within 30 s either way), and ordering is observed through the event loop itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from mmcore.errors import NotFoundError
from mmcore.orders import Place, Quote
from mmcore.sim.engine import OrderRequest
from mmcore.sim.exchange import MM_USER, LocalExchange
from mmcore.sim.rest import build_app
from mmcore.sim.runner import LoopbackServer
from mmcore.sim.scenario import ResolvedScenario, default_scenario
from mmcore.venues.kalshi.auth import (
    Signer,
    generate_key_pair,
    private_key_from_pem,
    public_key_from_pem,
)
from mmcore.venues.kalshi.rest import KalshiRest, OrderAck
from tests.workerkit import rig

KEY_ID = "presign-key"
MM = "mm"
ORDERS = "/trade-api/v2/portfolio/events/orders"


class Clock:
    """The client's wall clock, frozen at creation and moved only by the test (signature
    timestamps and pool takes); each test ends well inside the exchange's 30 s window."""

    def __init__(self) -> None:
        self.ns = time.time_ns()

    def __call__(self) -> int:
        return self.ns

    def advance_ms(self, ms: int) -> None:
        self.ns += ms * 1_000_000


@dataclass
class Env:
    ex: LocalExchange
    url: str
    signer: Signer
    markets: tuple[str, ...]

    def client(self, **kw: Any) -> KalshiRest:
        kw.setdefault("rng", random.Random(0))
        return KalshiRest(self.url, kw.pop("signer", self.signer), **kw)


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return generate_key_pair()


@pytest.fixture(scope="module")
def scenario() -> ResolvedScenario:
    return default_scenario(11, time.time_ns() // 1_000_000 * 1_000_000, 1)


@pytest.fixture
async def env(keys: tuple[bytes, bytes], scenario: ResolvedScenario) -> AsyncIterator[Env]:
    ex = LocalExchange.from_scenario(scenario)
    ex.add_key(KEY_ID, public_key_from_pem(keys[1]), MM)
    game = ex.scenario.games[0]  # type: ignore[union-attr]
    async with LoopbackServer(build_app(ex), port=0) as srv:
        yield Env(ex, srv.url, Signer(KEY_ID, private_key_from_pem(keys[0])), tuple(game.markets))


def amend_key(order_id: str) -> str:
    return f"POST {ORDERS}/{order_id}/amend"


def cancel_key(order_id: str) -> str:
    return f"DELETE {ORDERS}/{order_id}"


class RecordingSigner(Signer):
    """A real signer that also notes each signature in a shared log."""

    def __init__(self, key_id: str, key: Any, log: list[str]) -> None:
        super().__init__(key_id, key)
        self.log = log

    def sign(self, message: bytes) -> str:
        self.log.append("sign")
        return super().sign(message)


# --- REST client ------------------------------------------------------------------------------


async def test_amend_and_cancel_of_an_acked_order_use_presigned_headers(env: Env) -> None:
    m = env.markets[0]
    clock = Clock()
    async with env.client(clock_ns=clock) as rest:
        ack = await rest.create_order(Quote(m, "bid", 3_000, 500), "ps-1")
        oid = ack.order_id
        assert rest.presigned_orders == [oid]
        # registering signs nothing on the hot path: a background refill fills the pools; a
        # refill call returns once everything registered before it is signed
        await rest.refill_presigned()
        clock.advance_ms(5)
        avail = rest.presigned_available()
        # the amend pool keeps one entry until the order is first amended, then two
        assert avail[amend_key(oid)] == 1 and avail[cancel_key(oid)] == 1

        used, live = rest.presigned_used, rest.live_signed
        amended = await rest.amend_order(oid, m, "bid", 3_200, 500)
        assert amended.order_id == oid
        assert (rest.presigned_used, rest.live_signed) == (used + 1, live)
        order = env.ex.engine.order(MM, oid)  # the exchange verified the header and applied it
        assert (order.price, order.remaining, order.status) == (3_200, 500, "resting")

        # every take schedules its replacement: an order amended again and again (the bench's
        # 25 amends/s) keeps finding a ready header, the old design's ~1/s limit is gone
        for i in range(6):
            await rest.refill_presigned()
            clock.advance_ms(5)
            assert rest.presigned_available()[amend_key(oid)] == 2
            await rest.amend_order(oid, m, "bid", 3_300 + 100 * i, 500)
        assert (rest.presigned_used, rest.live_signed) == (used + 7, live)
        assert env.ex.engine.order(MM, oid).price == 3_800

        # aging entries are replaced before they expire (lifetime 5 s, refresh 1.5 s): still
        # usable at 4 s, and the periodic refill re-signs every pool (3 fixed × 6, 2 + 1)
        await rest.refill_presigned()
        clock.advance_ms(4_000)
        assert rest.presigned_available()[amend_key(oid)] == 2
        assert await rest.refill_presigned() == 3 * 6 + 2 + 1
        clock.advance_ms(5)
        assert rest.presigned_available()[amend_key(oid)] == 2

        cancel = await rest.cancel_order(oid)
        assert cancel.reduced_by == 500
        assert (rest.presigned_used, rest.live_signed) == (used + 8, live)
        assert env.ex.engine.order(MM, oid).status == "canceled"
        # the cancel dropped the order's pools: nothing more is signed for it
        assert rest.presigned_orders == []
        assert amend_key(oid) not in rest.presigned_available()
        assert cancel_key(oid) not in rest.presigned_available()


async def test_a_cancel_that_finds_nothing_drops_the_pools(env: Env) -> None:
    m = env.markets[0]
    async with env.client(clock_ns=Clock()) as rest:
        ack = await rest.create_order(Quote(m, "bid", 2_000, 100))
        await rest.cancel_order(ack.order_id)
        assert rest.presigned_orders == []
        rest.presign_order(ack.order_id)  # as if adopted from a stale read
        await rest.refill_presigned()
        used = rest.presigned_used
        again = await rest.cancel_order(ack.order_id)  # pre-signed, verified, reduces by 0
        assert again.reduced_by == 0 and rest.presigned_used == used + 1
        assert rest.presigned_orders == []
        rest.presign_order("ord-77777777")  # no such order
        with pytest.raises(NotFoundError):
            await rest.cancel_order("ord-77777777")
        assert rest.presigned_orders == []


async def test_pools_follow_batch_creates_cancels_decreases_and_amends(env: Env) -> None:
    a = env.markets[0]
    async with env.client() as rest:
        results = await rest.batch_create([Place(Quote(a, "bid", 2_000, 200), "bp-1"),
                                           Place(Quote(a, "bid", 2_100, 200), "bp-2"),
                                           Place(Quote(a, "bid", 2_200, 200), "bp-3")])
        ids = [r.order_id for r in results if isinstance(r, OrderAck)]
        assert len(ids) == 3 and rest.presigned_orders == ids
        await rest.amend_order(ids[0], a, "bid", 1_900, 200)  # touched: most recent now
        assert rest.presigned_orders == [ids[1], ids[2], ids[0]]
        await rest.decrease_order(ids[1], reduce_to=0)  # nothing left: dropped
        assert rest.presigned_orders == [ids[2], ids[0]]
        cancels = await rest.batch_cancel([ids[2], "ord-nope"])
        assert len(cancels) == 2
        assert rest.presigned_orders == [ids[0]]
        assert rest.forget_order(ids[0]) and not rest.forget_order(ids[0])
        assert rest.presigned_orders == []

        # an order that crosses and fills completely on create is not registered
        env.ex.mutate(lambda e, now: e.place(OrderRequest(
            user_id="noise-0-0", ticker=a, side="ask", price=6_000, count=300), now))
        filled = await rest.create_order(Quote(a, "bid", 6_000, 300), post_only=False)
        assert filled.remaining_count == 0 and rest.presigned_orders == []


async def test_lru_cap_bounds_the_pools_and_a_use_counts_as_recent(env: Env) -> None:
    m = env.markets[0]
    clock = Clock()
    async with env.client(presign_order_cap=3, presign_size=1, clock_ns=clock) as rest:
        acks = [await rest.create_order(Quote(m, "bid", 1_000 + 100 * i, 100)) for i in range(4)]
        ids = [a.order_id for a in acks]
        assert rest.presigned_orders == ids[1:]  # the oldest was evicted
        assert sum(1 for k in rest.presigned_available() if "/orders/ord-" in k) == 6
        await rest.refill_presigned()
        assert await rest.refill_presigned() == 0  # full: nothing left to sign
        clock.advance_ms(5)
        used = rest.presigned_used
        await rest.amend_order(ids[1], m, "bid", 800, 100)  # pre-signed; now most recent
        assert rest.presigned_used == used + 1
        assert rest.presigned_orders == [ids[2], ids[3], ids[1]]
        rest.presign_order(ids[2])  # explicit registration touches too
        assert rest.presigned_orders == [ids[3], ids[1], ids[2]]
        # the evicted order has no pool: its cancel is signed live and still accepted
        live = rest.live_signed
        await rest.cancel_order(ids[0])
        assert rest.live_signed == live + 1
        assert env.ex.engine.order(MM, ids[0]).status == "canceled"
        await rest.refill_presigned()
        signed = rest.presign_signatures
        # a flood of registrations never holds more than the cap, nor signs for the evicted
        for i in range(50):
            rest.presign_order(f"ord-fake-{i}")
        assert rest.presigned_orders == [f"ord-fake-{i}" for i in (47, 48, 49)]
        assert sum(1 for k in rest.presigned_available() if "/orders/ord-" in k) == 6
        await rest.refill_presigned()
        assert rest.presign_signatures - signed == 3 * (1 + 1)  # only the 3 kept orders


async def test_presign_off_keeps_no_pools(env: Env) -> None:
    m = env.markets[0]
    async with env.client(presign=False) as rest:
        assert not rest.has_presign_pools
        ack = await rest.create_order(Quote(m, "bid", 2_500, 100))
        assert rest.presigned_orders == [] and rest.presign_order(ack.order_id) is False
        assert rest.presigned_available() == {}
        assert await rest.refill_presigned() == 0
        await rest.amend_order(ack.order_id, m, "bid", 2_600, 100)
        await rest.cancel_order(ack.order_id)
        assert (rest.presigned_used, rest.live_signed) == (0, 3)
    async with env.client(signer=None) as rest:
        assert not rest.has_presign_pools and rest.presign_order("ord-1") is False
    async with env.client(presign_order_cap=0) as rest:
        assert rest.has_presign_pools  # the fixed hot paths still pre-sign
        await rest.create_order(Quote(m, "bid", 2_400, 100))
        assert rest.presigned_orders == []


# --- refills never hold the loop --------------------------------------------------------------


async def test_refill_signs_off_the_loop_thread_while_the_loop_runs(env: Env) -> None:
    events: list[str] = []
    threads: set[int] = set()

    class ThreadNotingSigner(RecordingSigner):
        def sign(self, message: bytes) -> str:
            threads.add(threading.get_ident())
            return super().sign(message)

    signer = ThreadNotingSigner(KEY_ID, env.signer._key, events)  # noqa: SLF001
    rest = env.client(signer=signer, presign_size=4)
    try:
        finished = asyncio.Event()

        async def other_task() -> None:  # stands for the book feed: runs whenever it can
            while not finished.is_set():
                events.append("other")
                await asyncio.sleep(0)  # ok: a loop turn, not a wait for time

        other = asyncio.create_task(other_task())
        await asyncio.sleep(0)  # ok: let it start
        for i in range(3):
            rest.presign_order(f"ord-y{i}")
        before = events.count("other")
        await rest.refill_presigned()
        finished.set()
        await other
        assert rest.presign_signatures == 3 * 4 + 3 * (1 + 1) == events.count("sign")
        assert threading.get_ident() not in threads  # no RSA on the event loop's thread
        assert events.count("other") > before  # the loop kept running while it signed
    finally:
        await rest.aclose()


async def test_concurrent_refills_share_one_run(env: Env) -> None:
    rest = env.client(presign_size=3)
    try:
        rest.presign_order("ord-c1")  # also schedules a background refill
        first, second = await asyncio.gather(rest.refill_presigned(), rest.refill_presigned())
        assert 0 in (first, second)  # at most one of them signed: the other waited for it
        assert rest.presign_signatures == 3 * 3 + 1 + 1  # each entry signed once
        assert await rest.refill_presigned() == 0  # full
    finally:
        await rest.aclose()


# --- the worker driver ------------------------------------------------------------------------


async def test_driver_refills_pools_of_its_live_and_adopted_orders(tmp_path: Any,
                                                                   caplog: pytest.LogCaptureFixture
                                                                   ) -> None:
    caplog.set_level(logging.WARNING, logger="mmcore.worker.driver")

    async def scenario_test() -> None:
        async with rig(tmp_path, seed=6, start_in_s=600.0) as r:
            rest = r.rest
            market = r.stack.exchange.scenario.games[0].markets[0]  # type: ignore[union-attr]
            # an order resting before the worker starts: the REST client never saw it acked
            adopted = r.stack.exchange.mutate(lambda e, now: e.place(OrderRequest(
                MM_USER, market, "bid", 100, 100, post_only=True), now)).order.order_id
            assert adopted not in rest.presigned_orders
            registered: list[str] = []
            real_presign, real_refill = rest.presign_order, rest.refill_presigned

            def spy_presign(order_id: str) -> bool:
                registered.append(order_id)
                return real_presign(order_id)

            forgotten: dict[str, asyncio.Event] = {}
            real_forget = rest.forget_order

            def spy_forget(order_id: str) -> bool:
                forgotten.setdefault(order_id, asyncio.Event()).set()
                return real_forget(order_id)

            calls = 0
            good = asyncio.Event()
            driver: Any = None

            async def refill() -> int:
                nonlocal calls
                calls += 1
                if calls <= 2:
                    raise RuntimeError("refill broke")  # must be logged, must not stop the worker
                made = await real_refill()
                w = driver.worker if driver is not None else None
                if w is not None and w.live and calls >= 3:
                    avail = rest.presigned_available()
                    if all(oid in rest.presigned_orders and avail[amend_key(oid)] >= 1
                           and avail[cancel_key(oid)] >= 1 for oid in w.live):
                        good.set()
                return made

            rest.presign_order = spy_presign  # type: ignore[method-assign]
            rest.forget_order = spy_forget  # type: ignore[method-assign]
            rest.refill_presigned = refill  # type: ignore[method-assign]
            driver = await r.driver(presign_refill_s=0.05)
            task = asyncio.create_task(driver.run())
            try:
                await asyncio.wait_for(good.wait(), 20.0)
                assert not task.done()
                assert adopted in registered  # adopted at the initial reconcile → registered
                failures = [rec for rec in caplog.records
                            if "refill of pre-signed headers failed" in rec.getMessage()]
                assert len(failures) == 1  # the first of the streak, then quiet
                # an order canceled behind the worker's back: user_orders reports it done and
                # the driver drops its pools
                victim = next(iter(driver.worker.live))
                assert victim in rest.presigned_orders
                r.stack.exchange.mutate(lambda e, now: e.cancel(MM_USER, victim, now))
                await asyncio.wait_for(
                    forgotten.setdefault(victim, asyncio.Event()).wait(), 10.0)
                assert victim not in rest.presigned_orders
            finally:
                driver.stop("test done")
                await asyncio.wait_for(task, 30.0)
            # the verified cancel-all dropped the pools of the orders it canceled (one filled
            # while the feed was already closed may keep its pools until evicted)
            eng = r.stack.exchange.engine
            assert all(eng.order(MM_USER, oid).status == "executed"
                       for oid in rest.presigned_orders), rest.presigned_orders

    await asyncio.wait_for(scenario_test(), 90.0)
