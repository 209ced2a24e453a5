"""The account's shared rate budget at fifty-plus processes (issue 11 item 5, scale).

- The slot table holds the largest concurrency settings accept (``MM_MAX_CONCURRENT_GAMES`` ≤
  200) plus room for flows and CLIs: 60 live holders on one key and a real ``KalshiRest`` from
  ``rest_for`` still gets a slot and talks to the local exchange (with 48 slots the 49th holder
  got ``BudgetFull``: workers 49 and 50 of bench/scale.py exited 1).
- Dead pids are checked at most every ``LIVENESS_SCAN_NS`` for the whole account (the check
  cost two system calls per live slot on *every* operation, under the one exclusive lock), and
  at once when a claim finds no free slot.
- A record of another layout (48 slots, version 1) is not misread: it is rebuilt.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mmcore.settings import Settings
from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SimStack
from mmcore.venues.kalshi import account_budget as ab
from mmcore.venues.kalshi.account_file import (
    LIVENESS_SCAN_NS,
    AccountBudgetFile,
    read_record,
)
from mmcore.worker.venue import account_budget, rest_for
from tests.accountkit import sim_settings

KW = {"tier": "basic", "read": (200, 400), "write": (100, 100), "safety": 0.9}


def test_the_slot_table_covers_the_largest_concurrency_settings_accept() -> None:
    le = [m.le for m in Settings.model_fields["max_concurrent_games"].metadata
          if getattr(m, "le", None) is not None]
    assert le == [ab.MAX_CONCURRENT_GAMES]
    assert ab.MAX_SLOTS >= ab.MAX_CONCURRENT_GAMES + 32 and ab.OTHER_PROCESSES >= 32


async def test_sixty_processes_on_one_key_each_get_a_slot(tmp_path: Path) -> None:
    d = default_scenario_dict(7, 1)
    d["games"][0]["start_in_s"] = 3600
    async with SimStack(load_scenario(d, time.time_ns()), tmp_path,
                        run_participants=False) as stack:
        settings = sim_settings(tmp_path, urlsplit(stack.rest_url).port)
        signer = stack.signer()
        # 60 holders (each handle has its own nonce: a slot of its own, as a process would)
        holders = [account_budget(settings, signer.key_id, label=f"EV-{i}") for i in range(60)]
        try:
            async with rest_for(settings, signer, label="worker-61") as rest:
                assert await rest.game_start_ns(stack.scenario.games[0].event_ticker) > 0
                rec = read_record(holders[0].path)
                assert rec is not None
                live = {s.label for s in rec.slots if not s.free}
                assert "worker-61" in live and len(live) == 61
        finally:
            for h in holders:
                h.close()
    left = {s.label for s in read_record(holders[0].path).slots if not s.free}
    assert not any(label.startswith("EV-") for label in left)  # closed handles gave theirs back


def test_dead_pids_are_scanned_at_most_every_interval_and_when_full(tmp_path: Path) -> None:
    clock = [10**12]
    checks: list[int] = []
    dead: set[int] = set()

    def alive(pid: int) -> bool:
        checks.append(pid)
        return pid not in dead

    path = tmp_path / "acct.budget"
    me = AccountBudgetFile(path, label="me", clock_ns=lambda: clock[0], alive=alive, **KW)
    with me._locked() as (state, _i):  # every other slot held by a fake process
        for i, s in enumerate(state.slots):
            if s.free:
                state.slots[i] = ab.Slot(10_000 + i, 1, clock[0], f"p{i}")
    checks.clear()
    me.capacity("read")
    me.capacity("read")
    assert checks == []  # scanned when the record was filled, less than the interval ago
    clock[0] += LIVENESS_SCAN_NS
    me.capacity("read")
    assert len(checks) == ab.MAX_SLOTS  # one scan of every live slot …
    checks.clear()
    me.capacity("read")
    assert checks == []  # … then none until the interval passes again
    # a newcomer finds the table full of pids that died since the last scan: scanned at once
    dead.add(10_000 + 7)
    other = AccountBudgetFile(path, label="newcomer", clock_ns=lambda: clock[0], alive=alive,
                              **KW)
    rec = read_record(path)
    assert rec.slots[7].label == "newcomer" and rec.reclaimed == 1
    other.close()


def test_a_record_of_the_old_layout_is_rebuilt_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "acct.budget"
    path.write_bytes(b"MMACCT01" + (1).to_bytes(4, "little") + b"\x01" * 7808)  # 48 slots, v1
    h = AccountBudgetFile(path, label="new", **KW)
    rec = read_record(path)
    assert rec is not None and len(rec.slots) == ab.MAX_SLOTS
    assert [s.label for s in rec.slots if not s.free] == ["new"]
    assert rec.buckets[1].tokens < 1  # rebuilt empty: the server's bucket may be empty too
    h.close()


async def test_a_held_record_lock_never_blocks_the_event_loop(tmp_path: Path) -> None:
    """Another process holding the record's lock (here: a thread on its own open file
    description, released after 5 s at most) makes ``try_take`` answer "ask again in 1 ms", so
    the rate limiter waits on the event loop — which keeps running — instead of the whole loop
    blocking in ``flock`` (under CPU starvation a holder descheduled mid-operation stalled every
    worker's loop: up to 1.05 s in one wait at N=25 in bench/scale.py)."""
    import asyncio
    import fcntl
    import os
    import threading

    from mmcore.venues.kalshi.account_file import LOCK_RETRY_NS
    from mmcore.venues.kalshi.ratelimit import RateLimiter

    h = AccountBudgetFile(tmp_path / "acct.budget", label="me", **KW)
    locked, release = threading.Event(), threading.Event()

    def holder() -> None:
        fd = os.open(h.path, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        locked.set()
        release.wait(5.0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    t = threading.Thread(target=holder, daemon=True)
    t.start()
    assert locked.wait(5.0)
    limiter = RateLimiter.for_tier("basic", account=h)
    task = asyncio.create_task(limiter.acquire("read", 10))
    loop_turns = 0
    deadline = time.monotonic() + 2.0
    while h.lock_busy < 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.001)
        loop_turns += 1
    busy, done_while_held = h.lock_busy, task.done()
    release.set()
    await asyncio.wait_for(task, 5.0)
    t.join(5.0)
    assert busy >= 5 and loop_turns >= 5 and not done_while_held, (busy, loop_turns)
    now = time.monotonic_ns()
    assert h.try_take("read", 10, cancel=False, since_ns=now, now_ns=now) == 0
    assert LOCK_RETRY_NS <= 2_000_000
    h.close()


def test_later_requests_take_only_the_surplus_over_earlier_waiters() -> None:
    """On a starved box the head of the queue waits for a CPU before it can take its turn; a
    running process may take tokens meanwhile, but only what still leaves every earlier
    waiter's cost in the bucket (no earlier request is delayed by it)."""
    st = ab.new_state((200, 400), (100, 100), tier="basic", source="setting", safety=1.0,
                      now_ns=0)
    for pid in (101, 102):
        ab.claim(st, pid, pid, f"p{pid}", 0)
    st.buckets[0].tokens = 5.0
    assert ab.try_take(st, 0, "read", 10, cancel=False, since_ns=1, now_ns=1) > 0  # head waits
    st.buckets[0].tokens = 15.0  # refilled, the head not yet back: not enough for both
    assert ab.try_take(st, 1, "read", 10, cancel=False, since_ns=2, now_ns=2) > 0
    st.buckets[0].tokens = 25.0  # enough for both: the later one goes, the head's 10 stay
    assert ab.try_take(st, 1, "read", 10, cancel=False, since_ns=2, now_ns=2) == 0
    assert st.buckets[0].tokens == pytest.approx(15.0)
    assert ab.try_take(st, 0, "read", 10, cancel=False, since_ns=1, now_ns=2) == 0
