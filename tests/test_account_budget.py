"""One account, one rate budget (issue 10 item 1).

- The pure record (:mod:`mmcore.venues.kalshi.account_budget`): cancels first across
  processes, FIFO otherwise, the cancel reserve, no overdraft, 429 account-wide, reclaiming dead
  or silent slots, the tier resize, the bytes round trip.
- The local exchange's ``GET /account/limits``: the spec's shape, the tier chosen by the
  scenario and the one its buckets enforce.
- The worker reads its tier from the exchange (:func:`~mmcore.worker.venue.build_worker`) and
  falls back, with a warning, when the endpoint fails.
- Real OS processes (spawn) with real ``KalshiRest`` clients from ``rest_for`` on one key
  against the local exchange at Basic tier: 0 × 429 and the summed write rate within the tier;
  a cancel from one process goes out while another's creates queue; a SIGKILLed process's
  waiting claim is reclaimed so the others carry on.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import statistics
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mmcore.sim.rest_faults import apply_fault
from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SimStack
from mmcore.venues.kalshi import account_budget as ab
from mmcore.venues.kalshi.account_file import LIVENESS_SCAN_NS, AccountBudgetFile, read_record
from mmcore.venues.kalshi.ratelimit import TIERS
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.worker.venue import account_budget, build_worker, rest_for
from tests.accountkit import CTX, sim_settings, spawn, wait_until
from tests.simkit import SpecValidator

NS = 1_000_000_000
BASIC = TIERS["basic"]


# --- the pure record ------------------------------------------------------------------------------


def _state(now: int = 0, **kw) -> ab.AccountState:
    st = ab.new_state((200, 400), (100, 100), tier="basic", source="setting", safety=1.0,
                      now_ns=now, **kw)
    for pid in (101, 102, 103):
        ab.claim(st, pid, pid, f"p{pid}", now)
    return st


def test_cancel_outranks_earlier_normal_waiters_of_other_processes() -> None:
    st = _state()
    st.buckets[1].tokens = 5.0
    # slot 0 waits for a create since t=1; slot 1's later create queues behind it
    assert ab.try_take(st, 0, "write", 10, cancel=False, since_ns=1, now_ns=2) > 0
    assert ab.try_take(st, 1, "write", 10, cancel=False, since_ns=2, now_ns=2) > 0
    # slot 2's cancel (cost 2) arrives last and goes first
    assert ab.try_take(st, 2, "write", 2, cancel=True, since_ns=3, now_ns=3) == 0
    assert st.buckets[1].tokens == pytest.approx(3.0 + 3e-9 * 100, abs=1e-6)
    # refill enough for one create (+ the 20-token reserve): FIFO, slot 0 first
    now = 3 + int(0.3 * NS)
    assert ab.try_take(st, 1, "write", 10, cancel=False, since_ns=2, now_ns=now) > 0
    assert ab.try_take(st, 0, "write", 10, cancel=False, since_ns=1, now_ns=now) == 0
    assert ab.try_take(st, 1, "write", 10, cancel=False, since_ns=2,
                       now_ns=now + int(0.1 * NS)) == 0


def test_normal_writes_leave_the_reserve_and_nothing_overdraws() -> None:
    st = _state()
    taken = 0
    while ab.try_take(st, 0, "write", 10, cancel=False, since_ns=0, now_ns=0) == 0:
        taken += 1
    assert taken == 8 and st.buckets[1].tokens == pytest.approx(20.0)  # reserve: 20 % of 100
    cancels = 0
    while ab.try_take(st, 1, "write", 2, cancel=True, since_ns=0, now_ns=0) == 0:
        cancels += 1
    assert cancels == 10 and st.buckets[1].tokens == pytest.approx(0.0)
    assert min(b.tokens for b in st.buckets) >= 0.0


def test_penalize_empties_the_bucket_for_every_process() -> None:
    st = _state()
    ab.penalize(st, 0, "write", 0)
    assert st.slots[0].penalties == 1
    assert ab.try_take(st, 1, "write", 2, cancel=True, since_ns=0, now_ns=0) == int(0.02 * NS)


def test_dead_or_silent_slots_are_reclaimed_with_their_waiting_claims() -> None:
    st = _state()
    st.buckets[1].tokens = 0.0
    assert ab.try_take(st, 0, "write", 10, cancel=True, since_ns=0, now_ns=0) > 0
    st.buckets[1].tokens = 35.0  # pays slot 1's create (10 + 20 reserve), not also slot 0's 10
    # slot 0's older cancel blocks slot 1's create while 101 lives …
    assert ab.try_take(st, 1, "write", 10, cancel=False, since_ns=5, now_ns=5) > 0
    assert ab.reap(st, 5, lambda pid: pid != 101) == [0]
    assert st.reclaimed == 1
    assert ab.try_take(st, 1, "write", 10, cancel=False, since_ns=5, now_ns=5) == 0
    # … and a live process silent past the heartbeat timeout is reclaimed too
    later = 5 + ab.HEARTBEAT_TIMEOUT_NS + 1
    ab.try_take(st, 1, "read", 10, cancel=False, since_ns=later, now_ns=later)
    assert ab.reap(st, later, lambda pid: True) == [2]
    assert ab.find(st, 102, 102) == 1 and ab.find(st, 103, 103) is None


def test_set_tier_keeps_tokens_and_the_record_round_trips() -> None:
    st = _state()
    st.buckets[1].tokens = 50.0
    ab.set_tier(st, (300, 600), (300, 600), tier="advanced", source="exchange", now_ns=0)
    assert (st.buckets[1].capacity, st.buckets[1].tokens) == (600, 50.0)
    ab.set_tier(st, (200, 400), (100, 40), tier="tiny", source="exchange", now_ns=0)
    assert st.buckets[1].tokens == 40
    ab.try_take(st, 2, "write", 10, cancel=True, since_ns=7, now_ns=7)
    back = ab.decode(ab.encode(st))
    assert back == st and len(ab.encode(st)) == ab.RECORD_SIZE
    assert ab.decode(b"\0" * ab.RECORD_SIZE) is None and ab.decode(b"x") is None


def test_budget_file_is_one_record_for_every_handle(tmp_path: Path) -> None:
    path = tmp_path / "acct.budget"
    kw = {"tier": "basic", "read": (200, 400), "write": (100, 100), "safety": 0.9}
    a, b = AccountBudgetFile(path, label="a", **kw), AccountBudgetFile(path, label="b", **kw)
    now = time.monotonic_ns()
    assert a.try_take("write", 10, cancel=False, since_ns=now, now_ns=now) == 0
    b.penalize("write", now)
    assert a.try_take("write", 2, cancel=True, since_ns=now, now_ns=now) > 0
    rec = read_record(path)
    assert rec is not None
    live = {s.label: s for s in rec.slots if not s.free}
    assert set(live) == {"a", "b"} and live["a"].tokens_used[1] == 10 and live["b"].penalties == 1
    a.set_tier("advanced", (300, 600), (300, 600), source="exchange")
    assert b.snapshot().buckets[1].capacity == pytest.approx(540)
    b.close()
    assert {s.label for s in read_record(path).slots if not s.free} == {"a"}


# --- the local exchange's /account/limits ----------------------------------------------------------


def _scenario(tier: str | None = None):
    d = default_scenario_dict(7, 1)
    d["games"][0]["start_in_s"] = 3600
    if tier is not None:
        d["rate_tier"] = tier
    return load_scenario(d, time.time_ns())


@pytest.fixture(scope="module")
def spec(request: pytest.FixtureRequest) -> SpecValidator | None:
    """The OpenAPI validator over reference/kalshi/openapi.yaml; None without ../shared."""
    try:
        shared = request.getfixturevalue("shared_dir")
    except pytest.skip.Exception:
        return None
    path = shared / "reference" / "kalshi" / "openapi.yaml"
    return SpecValidator(path) if path.is_file() else None


@pytest.mark.parametrize("tier", [None, "advanced", "prestige"])
async def test_account_limits_shape_and_the_tier_the_exchange_enforces(tmp_path, spec, tier):
    async with SimStack(_scenario(tier), tmp_path, run_participants=False) as stack:
        signer = stack.signer()
        async with httpx.AsyncClient() as http:
            path = "/trade-api/v2/account/limits"
            resp = await http.get(stack.rest_url + "/account/limits", headers=signer.headers(
                "GET", path, timestamp_ms=time.time_ns() // 1_000_000))
            unsigned = await http.get(stack.rest_url + "/account/limits")
        assert (resp.status_code, unsigned.status_code) == (200, 401)
        if spec is not None:
            spec(resp)
        body = resp.json()
        want = TIERS[tier or "basic"]
        assert body["usage_tier"] == (tier or "basic")
        assert body["read"] == {"refill_rate": want.read_per_s, "bucket_capacity": want.read_capacity}
        assert body["write"] == {"refill_rate": want.write_per_s,
                                 "bucket_capacity": want.write_capacity}
        assert body["grants"] == ([] if tier in (None, "advanced") else [
            {"exchange_instance": "event_contract", "level": tier, "source": "manual"}])
        # the buckets it reports are the ones it enforces: a burst of 30 unmetered creates
        g = stack.scenario.games[0]
        async with KalshiRest(stack.rest_url, signer, limiter=None, max_retries=0) as rest:
            got = await rest.get_account_limits()
            assert got.usage_tier == (tier or "basic")
            refused = 0
            from mmcore.errors import RateLimitedError
            from mmcore.orders import Quote
            for _ in range(30):
                try:
                    await rest.create_order(Quote(g.markets[0], "bid", 100, 100))
                except RateLimitedError:
                    refused += 1
        assert (refused > 0) == (tier is None), refused


# --- the worker reads its tier ---------------------------------------------------------------------


async def test_worker_reads_the_tier_from_the_exchange_and_falls_back_loudly(tmp_path, caplog):
    async with SimStack(_scenario("advanced"), tmp_path / "data", run_participants=False) as stack:
        port = urlsplit(stack.rest_url).port
        settings = sim_settings(tmp_path / "data", port, rate_tier="basic")
        event = stack.scenario.games[0].event_ticker
        signer = stack.signer()
        async with rest_for(settings, signer, label="w1") as rest:
            assert rest.limiter.tier == "basic"  # assumed, not read yet
            await build_worker(settings, rest, signer, event)
            assert rest.limiter.tier == "advanced"
        rec = read_record(account_budget(settings, signer.key_id).path)
        assert (rec.tier, rec.source) == ("advanced", "exchange")
        assert rec.buckets[1].rate_per_s == pytest.approx(0.9 * 300)
        # a later process finds the tier already read; when the endpoint fails it keeps it
        apply_fault(stack.exchange, "http_5xx", {"count": 100})
        with caplog.at_level(logging.WARNING, logger="mmcore.worker.venue"):
            async with rest_for(settings, signer, label="w2", max_retries=1,
                                backoff_s=0.01) as rest:
                from mmcore.worker.venue import sync_account_tier
                # read just now by w1: reused without a request (no failure to see)
                assert await sync_account_tier(rest, settings) == "advanced"
                assert rest.limiter.acquired == 0 and rest.limiter.tier == "advanced"
                assert "GET /account/limits failed" not in caplog.text
                assert await sync_account_tier(rest, settings, reuse_within_s=0) == "advanced"
        assert "GET /account/limits failed" in caplog.text and "last read" in caplog.text
    # a fresh account whose exchange fails: MM_RATE_TIER, said so
    caplog.clear()
    async with SimStack(_scenario("advanced"), tmp_path / "data2", run_participants=False) as st2:
        settings = sim_settings(tmp_path / "data2", urlsplit(st2.rest_url).port, rate_tier="basic")
        apply_fault(st2.exchange, "http_5xx", {"count": 100})
        with caplog.at_level(logging.WARNING, logger="mmcore.worker.venue"):
            async with rest_for(settings, st2.signer(), max_retries=0) as rest:
                from mmcore.worker.venue import sync_account_tier
                assert await sync_account_tier(rest, settings) == "basic"
        assert "MM_RATE_TIER" in caplog.text


# --- processes on one account ----------------------------------------------------------------------


async def _rest_counters(stack: SimStack) -> dict:
    async with httpx.AsyncClient() as http:
        return (await http.get(stack.control_url + "/state")).json()["rest"]


async def _results(q, n: int, procs) -> list[dict]:
    out: list[dict] = []

    def drained() -> bool:
        try:
            while True:
                out.append(q.get_nowait())
        except queue.Empty:
            return len(out) >= n

    await wait_until(drained, 90, f"{n} results", procs)
    for p in procs:
        p.join(10)
    return out


async def test_processes_on_one_account_stay_inside_the_basic_tier(tmp_path):
    """4 processes × 4 concurrent create+cancel loops, each alone able to exhaust Basic."""
    n, seconds = 4, 4.0
    async with SimStack(_scenario(), tmp_path, run_participants=False) as stack:
        args = {"data_dir": str(tmp_path), "port": urlsplit(stack.rest_url).port,
                    "market": stack.scenario.games[0].markets[0], "seconds": seconds, "concurrency": 4}
        q, go = CTX.Queue(), CTX.Event()
        readies = [CTX.Event() for _ in range(n)]
        procs = [spawn("flood", {**args, "label": f"w{i}"}, q, readies[i], go)
                 for i in range(n)]
        try:
            await wait_until(lambda: all(r.is_set() for r in readies), 60, "children ready", procs)
            go.set()
            res = await _results(q, n, procs)
        finally:
            for p in procs:
                p.kill()
        rest = await _rest_counters(stack)
    assert rest.get("rate_limited", 0) == 0, rest
    assert [r["rate_limited"] for r in res] == [0] * n
    assert all(r["tier"] == "basic" for r in res)
    window_s = (max(r["stop_ns"] for r in res) - min(r["start_ns"] for r in res)) / NS
    tokens = sum(r["spent_window"]["write"] for r in res)
    bound = 0.9 * (BASIC.write_per_s * window_s + BASIC.write_capacity)
    assert tokens <= bound + 1e-6, (tokens, window_s)
    assert tokens >= 0.5 * bound, f"the test did not push the tier: {tokens} of {bound}"
    assert all(r["creates"] > 0 for r in res), [r["creates"] for r in res]  # nobody starved


async def test_a_cancel_goes_out_while_another_process_queues_creates(tmp_path):
    async with SimStack(_scenario(), tmp_path, run_participants=False) as stack:
        base = {"data_dir": str(tmp_path), "port": urlsplit(stack.rest_url).port,
                    "market": stack.scenario.games[0].markets[0]}
        q, go, flooding = CTX.Queue(), CTX.Event(), CTX.Event()
        ra, rb = CTX.Event(), CTX.Event()
        procs = [spawn("flood", {**base, "label": "creates", "seconds": 4.0, "concurrency": 8,
                                 "flooding_after": 10}, q, ra, go, flooding),
                 spawn("cancel_later", {**base, "label": "cancels", "n": 8}, q, rb, go,
                       flooding)]
        try:
            await wait_until(lambda: ra.is_set() and rb.is_set(), 60, "children ready", procs)
            go.set()
            res = {r["label"]: r for r in await _results(q, 2, procs)}
        finally:
            for p in procs:
                p.kill()
        rest = await _rest_counters(stack)
    assert rest.get("rate_limited", 0) == 0, rest
    cancel_waits = res["cancels"]["cancel_waits_ns"]
    create_calls = res["creates"]["create_calls_ns"]
    # 8 concurrent creates on ~9 creates/s queue ~0.9 s each; a cancel spends the reserve
    assert statistics.median(create_calls) > 0.3 * NS, statistics.median(create_calls) / NS
    assert max(cancel_waits) < 0.2 * NS, [w / 1e6 for w in cancel_waits]
    assert res["cancels"]["rate_limited"] == res["creates"]["rate_limited"] == 0


async def test_a_killed_process_waiting_claim_is_reclaimed(tmp_path):
    """A process SIGKILLed while its creates queue leaves an older waiting claim in the record;
    the next process's request does not queue behind it (nor wait for the 10 s heartbeat
    timeout), and the dead pid's slot is reclaimed by the next liveness scan (every
    ``LIVENESS_SCAN_NS`` of record operations), not only after the heartbeat timeout."""
    async with SimStack(_scenario(), tmp_path, run_participants=False) as stack:
        port = urlsplit(stack.rest_url).port
        market = stack.scenario.games[0].markets[0]
        q, go, flooding, ready = CTX.Queue(), CTX.Event(), CTX.Event(), CTX.Event()
        victim = spawn("flood", {"data_dir": str(tmp_path), "port": port, "market": market,
                                     "label": "victim", "seconds": 30.0, "concurrency": 12,
                                     "flooding_after": 3}, q, ready, go, flooding)
        try:
            await wait_until(ready.is_set, 60, "victim ready", [victim])
            go.set()
            await wait_until(flooding.is_set, 30, "victim flooding", [victim])
            settings = sim_settings(tmp_path, port)
            path = account_budget(settings, stack.signer().key_id).path

            def victim_waits() -> bool:
                rec = read_record(path)
                return any(s.label == "victim" and s.waiting[1].prio for s in rec.slots)

            await wait_until(victim_waits, 10, "the victim's queued create in the record")
            os.kill(victim.pid, signal.SIGKILL)
            victim.join(10)
            assert victim.exitcode == -signal.SIGKILL
            before = read_record(path)
            assert any(s.label == "victim" and s.waiting[1].prio for s in before.slots)
            async with rest_for(settings, stack.signer(), label="survivor") as rest:
                from mmcore.orders import Quote
                t0 = time.monotonic()
                await rest.create_order(Quote(market, "bid", 100, 100))
                took = time.monotonic() - t0
                observer = account_budget(settings, stack.signer().key_id, label="observer")

                def victim_reclaimed() -> bool:  # each snapshot is a record operation (reaps)
                    return not any(s.label == "victim" for s in observer.snapshot().slots
                                   if not s.free)

                t1 = time.monotonic()
                await wait_until(victim_reclaimed, 5, "the dead victim's slot reclaimed")
                reclaim_s = time.monotonic() - t1
                observer.close()
            after = read_record(path)
        finally:
            victim.kill()
    assert took < 3.0, took  # not the 10 s heartbeat timeout
    assert reclaim_s < 3 * LIVENESS_SCAN_NS / 1e9, reclaim_s  # the pid scan, not the heartbeat
    assert not any(s.label == "victim" for s in after.slots if not s.free)
    assert after.reclaimed >= before.reclaimed + 1
