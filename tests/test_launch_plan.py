"""The launcher's decision (pure): window, theo age, halts, live runs, dead runs, attempts, keys."""

from __future__ import annotations

from mmcore.ops.launch import GameInfo, LaunchParams, Lease, RunInfo, dead_reason, plan

NS = 1_000_000_000
NOW = 1_800_000_000 * NS
P = LaunchParams(window_ns=3600 * NS, max_theo_age_ns=1800 * NS, lease_timeout_ns=45 * NS,
                 stop_before_ns=60 * NS, max_attempts=3)
G = GameInfo("KXNBAGAME-A", NOW + 600 * NS)


def _plan(games=(G,), *, theo=None, halted=(), runs=(), leases=None):
    return plan(list(games), NOW, P, theo_as_of={G.event_ticker: NOW - 60 * NS} if theo is None else theo,
                halted=halted, runs=list(runs), leases=leases or {})


def test_a_game_in_the_window_with_fresh_theo_is_launched_with_a_deterministic_key() -> None:
    a, b = _plan(), _plan()
    assert [x.event_ticker for x in a.launch] == ["KXNBAGAME-A"]
    assert a.launch[0].attempt == 0
    assert a.launch[0].idempotency_key == b.launch[0].idempotency_key
    assert str(G.start_ns) in a.launch[0].idempotency_key


def test_every_game_gets_a_reason_when_skipped() -> None:
    far = GameInfo("FAR", NOW + 7200 * NS)
    late = GameInfo("LATE", NOW + 30 * NS)
    started = GameInfo("GONE", NOW - 5 * NS)
    notheo = GameInfo("NOTHEO", NOW + 600 * NS)
    stale = GameInfo("STALE", NOW + 600 * NS)
    out = plan([far, late, started, notheo, stale], NOW, P,
               theo_as_of={"FAR": NOW, "LATE": NOW, "GONE": NOW, "STALE": NOW - 3600 * NS},
               halted=[], runs=[], leases={})
    reasons = dict(out.skipped)
    assert out.launch == []
    assert "window" in reasons["FAR"]
    assert "too late" in reasons["LATE"]
    assert reasons["GONE"] == "game started"
    assert "no theo" in reasons["NOTHEO"]
    assert "min old" in reasons["STALE"]


def test_halted_games_and_halt_all_are_not_launched() -> None:
    assert "halted" in dict(_plan(halted=["KXNBAGAME-A"]).skipped)["KXNBAGAME-A"]
    assert _plan(halted=["ALL"]).launch == []


def test_a_live_run_blocks_a_second_launch() -> None:
    run = RunInfo("r1", G.event_ticker, "RUNNING", NOW - 10 * NS)
    out = _plan(runs=[run], leases={G.event_ticker: Lease(G.event_ticker, "r1", NOW - 2 * NS)})
    assert out.launch == [] and out.recover == []
    assert "r1" in dict(out.skipped)[G.event_ticker]


def test_a_running_run_with_a_stale_lease_is_recovered_and_relaunched_with_the_next_attempt() -> None:
    run = RunInfo("r1", G.event_ticker, "RUNNING", NOW - 600 * NS)
    out = _plan(runs=[run], leases={G.event_ticker: Lease(G.event_ticker, "r1", NOW - 120 * NS)})
    assert [r.run_id for r in out.recover] == ["r1"]
    assert "lease" in out.recover[0].reason
    assert [x.attempt for x in out.launch] == [1]
    first = _plan().launch[0].idempotency_key
    assert out.launch[0].idempotency_key != first


def test_a_running_run_that_never_wrote_a_lease_is_dead_after_the_timeout() -> None:
    young = RunInfo("r1", "X", "RUNNING", NOW - 10 * NS)
    old = RunInfo("r2", "X", "RUNNING", NOW - 100 * NS)
    assert dead_reason(young, None, NOW, P.lease_timeout_ns) is None
    assert "no lease" in (dead_reason(old, None, NOW, P.lease_timeout_ns) or "")
    # another run's lease does not keep this one alive
    assert dead_reason(old, Lease("X", "other", NOW), NOW, P.lease_timeout_ns) is not None


def test_ended_runs_count_as_attempts_until_the_limit() -> None:
    runs = [RunInfo(f"r{i}", G.event_ticker, "CRASHED") for i in range(2)]
    assert [x.attempt for x in _plan(runs=runs).launch] == [2]
    runs.append(RunInfo("r9", G.event_ticker, "FAILED"))
    out = _plan(runs=runs)
    assert out.launch == [] and "gave up after 3" in dict(out.skipped)[G.event_ticker]


def test_a_completed_run_is_not_relaunched() -> None:
    out = _plan(runs=[RunInfo("r1", G.event_ticker, "COMPLETED")])
    assert out.launch == [] and "completion" in dict(out.skipped)[G.event_ticker]


def test_a_run_the_server_calls_crashed_but_whose_lease_is_fresh_blocks_a_relaunch() -> None:
    # the zombie automation crashed it (heartbeats lost in a server outage) while the worker lives
    run = RunInfo("r1", G.event_ticker, "CRASHED", NOW - 600 * NS)
    out = _plan(runs=[run], leases={G.event_ticker: Lease(G.event_ticker, "r1", NOW - 3 * NS)})
    assert out.launch == [] and "still lives" in dict(out.skipped)[G.event_ticker]
    # a hard-killed one: the lease ages out, the game is relaunched (next attempt)
    out = _plan(runs=[run], leases={G.event_ticker: Lease(G.event_ticker, "r1", NOW - 60 * NS)})
    assert [x.attempt for x in out.launch] == [1]
