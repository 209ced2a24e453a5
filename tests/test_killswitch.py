"""Kill switch: each trigger's state, drawdown peak, HALTED latching, cooldown, allows, config."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import ConfigError
from mmcore.orders import Amend, Cancel, Place, Quote
from mmcore.risk.killswitch import (
    DEFAULT_SEVERITY, HISTORY_LIMIT, NS_PER_S, KillSwitch, KillSwitchConfig, RiskMetrics, Trigger,
    allows, detect, evaluate, reset, trip,
)
from mmcore.units import CONTRACT

CFG = KillSwitchConfig()
T0 = 1_000 * NS_PER_S
S = NS_PER_S

# metrics → (expected trigger, expected state) from a fresh ACTIVE switch at T0
CASES = [
    (RiskMetrics(pnl_money=-5_000_000), Trigger.DRAWDOWN, "HALTED"),
    (RiskMetrics(worst_case_exposure=101 * CONTRACT, hard_limit=100 * CONTRACT,
                 soft_limit=50 * CONTRACT), Trigger.INVENTORY_BREACH, "HALTED"),
    (RiskMetrics(worst_case_exposure=60 * CONTRACT, hard_limit=100 * CONTRACT,
                 soft_limit=50 * CONTRACT), Trigger.INVENTORY_SOFT, "REDUCING"),
    (RiskMetrics(last_market_data_ns=T0 - 31 * S), Trigger.STALE_MARKET_DATA, "REDUCING"),
    (RiskMetrics(last_theo_ns=T0 - 61 * S), Trigger.STALE_THEO, "REDUCING"),
    (RiskMetrics(last_theo_ns=T0 - 11 * S, game_start_ns=T0 + 300 * S), Trigger.STALE_THEO,
     "REDUCING"),
    (RiskMetrics(latency_p95_ns=2 * S, latency_max_ns=3 * S), Trigger.LATENCY, "REDUCING"),
    (RiskMetrics(latency_p95_ns=S // 2, latency_max_ns=6 * S), Trigger.LATENCY, "HALTED"),
    (RiskMetrics(ws_connected=False), Trigger.CONNECTIVITY, "HALTED"),
    (RiskMetrics(rest_failure_streak=3), Trigger.CONNECTIVITY, "HALTED"),
    (RiskMetrics(rate_limited_last_min=6), Trigger.RATE_LIMIT, "REDUCING"),
    (RiskMetrics(position_drift=1), Trigger.RECONCILE_DRIFT, "REDUCING"),
    (RiskMetrics(position_drift=CFG.drift_large_contracts), Trigger.RECONCILE_DRIFT_LARGE,
     "HALTED"),
    (RiskMetrics(jump=True), Trigger.JUMP, "REDUCING"),
    (RiskMetrics(game_start_ns=T0), Trigger.GAME_START, "HALTED"),
]

QUIET = [
    RiskMetrics(),
    RiskMetrics(pnl_money=-4_999_999),
    RiskMetrics(worst_case_exposure=50 * CONTRACT, hard_limit=100 * CONTRACT,
                soft_limit=50 * CONTRACT),
    RiskMetrics(last_market_data_ns=T0 - 30 * S, last_theo_ns=T0 - 60 * S),
    RiskMetrics(last_theo_ns=T0 - 30 * S, game_start_ns=T0 + 3600 * S),
    RiskMetrics(latency_p95_ns=S, latency_max_ns=5 * S),
    RiskMetrics(rest_failure_streak=2, rate_limited_last_min=5),
    RiskMetrics(game_start_ns=T0 + 1),
]


def fresh() -> KillSwitch:
    return KillSwitch.start(T0 - 10 * S)


@pytest.mark.parametrize(("m", "trigger", "state"), CASES, ids=lambda x: str(x)[:40])
def test_each_trigger_drives_its_state(m: RiskMetrics, trigger: Trigger, state: str) -> None:
    ks = evaluate(fresh(), m, T0, CFG)
    assert ks.state == state
    assert trigger in ks.active_triggers
    assert ks.since_ns == T0
    (t,) = ks.history
    assert (t.from_state, t.to_state, t.at_ns) == ("ACTIVE", state, T0)
    assert trigger in t.triggers and trigger.value in t.reason


@pytest.mark.parametrize("m", QUIET)
def test_limits_not_reached_keep_active(m: RiskMetrics) -> None:
    ks = evaluate(fresh(), m, T0, CFG)
    assert ks.state == "ACTIVE" and not ks.active_triggers and ks.history == ()


def test_worst_severity_wins_and_all_firing_are_recorded() -> None:
    m = RiskMetrics(jump=True, ws_connected=False, position_drift=1)
    ks = evaluate(fresh(), m, T0, CFG)
    assert ks.state == "HALTED"
    assert ks.active_triggers == {Trigger.JUMP, Trigger.CONNECTIVITY, Trigger.RECONCILE_DRIFT}


def test_drawdown_is_from_peak_and_recovery_does_not_unhalt() -> None:
    ks = fresh()
    for i, pnl in enumerate([1_000_000, 7_000_000, 3_000_000]):
        ks = evaluate(ks, RiskMetrics(pnl_money=pnl), T0 + i * S, CFG)
    assert ks.peak_pnl_money == 7_000_000 and ks.state == "ACTIVE"  # 4M drop < 5M
    ks = evaluate(ks, RiskMetrics(pnl_money=2_000_000), T0 + 5 * S, CFG)  # 5M from the peak
    assert ks.state == "HALTED" and Trigger.DRAWDOWN in ks.active_triggers
    ks = evaluate(ks, RiskMetrics(pnl_money=9_000_000), T0 + 6 * S, CFG)
    assert ks.state == "HALTED" and ks.peak_pnl_money == 9_000_000
    assert Trigger.DRAWDOWN in ks.active_triggers  # latched until reset


def test_reset_then_reevaluate_can_retrip_unless_peak_rebased() -> None:
    ks = evaluate(fresh(), RiskMetrics(pnl_money=-6_000_000), T0, CFG)
    assert ks.state == "HALTED"
    again = evaluate(reset(ks, T0 + S, by="ops"), RiskMetrics(pnl_money=-6_000_000), T0 + 2 * S)
    assert again.state == "HALTED"
    rebased = reset(ks, T0 + S, by="ops", peak_pnl_money=-6_000_000)
    ok = evaluate(rebased, RiskMetrics(pnl_money=-6_000_000), T0 + 2 * S, CFG)
    assert ok.state == "ACTIVE" and ok.history[-1].reason == "reset by ops"


def test_game_start_halts_and_reset_after_start_retrips() -> None:
    m = RiskMetrics(game_start_ns=T0 + 60 * S)
    ks = evaluate(fresh(), m, T0 + 59 * S, CFG)
    assert ks.state == "ACTIVE"
    ks = evaluate(ks, m, T0 + 60 * S, CFG)
    assert ks.state == "HALTED" and Trigger.GAME_START in ks.active_triggers
    ks = evaluate(reset(ks, T0 + 61 * S, "ops"), m, T0 + 61 * S, CFG)
    assert ks.state == "HALTED"


def test_reducing_returns_to_active_only_after_cooldown_with_conditions_clear() -> None:
    cd = CFG.reducing_cooldown_ns
    ks = evaluate(fresh(), RiskMetrics(jump=True), T0, CFG)
    assert ks.state == "REDUCING"
    ks = evaluate(ks, RiskMetrics(), T0 + S, CFG)  # clear: cooldown starts at T0 + 1 s
    assert ks.state == "REDUCING" and ks.clear_since_ns == T0 + S and not ks.active_triggers
    ks = evaluate(ks, RiskMetrics(), T0 + S + cd - 1, CFG)
    assert ks.state == "REDUCING"
    ks = evaluate(ks, RiskMetrics(rate_limited_last_min=9), T0 + S + cd - 1, CFG)  # fires again
    assert ks.state == "REDUCING" and ks.clear_since_ns is None
    ks = evaluate(ks, RiskMetrics(), T0 + 2 * S + cd, CFG)  # clear again: clock restarts
    assert ks.state == "REDUCING" and ks.clear_since_ns == T0 + 2 * S + cd
    ks = evaluate(ks, RiskMetrics(), T0 + 2 * S + 2 * cd, CFG)
    assert ks.state == "ACTIVE" and ks.since_ns == T0 + 2 * S + 2 * cd
    assert [(t.from_state, t.to_state) for t in ks.history] == [
        ("ACTIVE", "REDUCING"), ("REDUCING", "ACTIVE")]
    assert "all clear" in ks.history[-1].reason


def test_reducing_escalates_to_halted() -> None:
    ks = evaluate(fresh(), RiskMetrics(jump=True), T0, CFG)
    ks = evaluate(ks, RiskMetrics(jump=True, ws_connected=False), T0 + S, CFG)
    assert ks.state == "HALTED"
    assert [t.to_state for t in ks.history] == ["REDUCING", "HALTED"]


def test_trip_uses_severity_and_manual_halts() -> None:
    ks = trip(fresh(), Trigger.JUMP, T0, "theo moved 8pp")
    assert ks.state == "REDUCING" and ks.history[-1].reason == "JUMP: theo moved 8pp"
    ks = trip(ks, Trigger.MANUAL, T0 + S, "operator pressed stop")
    assert ks.state == "HALTED" and ks.active_triggers == {Trigger.JUMP, Trigger.MANUAL}
    assert ks.history[-1].triggers == {Trigger.MANUAL}
    ks = evaluate(ks, RiskMetrics(), T0 + 2 * S, CFG)  # nothing measured: still latched
    assert ks.state == "HALTED" and ks.active_triggers == {Trigger.JUMP, Trigger.MANUAL}
    assert len(ks.history) == 2  # no transition recorded without a state change


def test_history_is_bounded() -> None:
    ks = fresh()
    for i in range(HISTORY_LIMIT + 10):
        ks = reset(trip(ks, Trigger.MANUAL, T0 + 2 * i, f"n{i}"), T0 + 2 * i + 1, "ops")
    assert len(ks.history) == HISTORY_LIMIT
    assert ks.history[-1].reason == "reset by ops" and ks.history[-2].reason.endswith(
        f"n{HISTORY_LIMIT + 9}")


# --- allows ---------------------------------------------------------------------------------

PLACE = Place(Quote("KXNBA-A", "bid", 4_500, 10 * CONTRACT), "cid-1")
AMEND = Amend("o1", "KXNBA-A", "bid", 4_400, 10 * CONTRACT)
CANCEL = Cancel("o1", "KXNBA-A", "bid")


@pytest.mark.parametrize(
    ("state", "action", "reduces", "ok"),
    [
        ("ACTIVE", PLACE, False, True), ("ACTIVE", AMEND, False, True),
        ("ACTIVE", CANCEL, False, True),
        ("REDUCING", PLACE, False, False), ("REDUCING", PLACE, True, True),
        ("REDUCING", AMEND, False, False), ("REDUCING", AMEND, True, True),
        ("REDUCING", CANCEL, False, True),
        ("HALTED", PLACE, True, False), ("HALTED", AMEND, True, False),
        ("HALTED", PLACE, False, False), ("HALTED", CANCEL, False, True),
    ],
)
def test_allows_table(state: str, action: object, reduces: bool, ok: bool) -> None:
    ks = KillSwitch(state, frozenset({Trigger.JUMP}), T0, 0, None, ())  # type: ignore[arg-type]
    verdict, reason = allows(ks, action, reduces)  # type: ignore[arg-type]
    assert verdict is ok and reason


# --- config ---------------------------------------------------------------------------------


def test_defaults_match_trigger_table() -> None:
    assert CFG.max_drawdown_money == 5_000_000
    assert CFG.stale_market_data_ns == 30 * S and CFG.latency_p95_limit_ns == S
    assert CFG.latency_max_limit_ns == 5 * S and CFG.rest_failure_streak_limit == 3
    assert CFG.rate_limit_429_per_min_limit == 5
    halted = {t for t, s in CFG.severity.items() if s == "HALTED"}
    assert halted == {Trigger.DRAWDOWN, Trigger.INVENTORY_BREACH, Trigger.CONNECTIVITY,
                      Trigger.RECONCILE_DRIFT_LARGE, Trigger.MANUAL, Trigger.GAME_START,
                      Trigger.DAILY_LOSS}
    assert CFG.daily_loss_limit_money == 10_000_000  # $1,000
    assert set(CFG.severity) == set(Trigger) and CFG.latency_max_severity == "HALTED"


def test_from_dict_accepts_known_and_merges_severity() -> None:
    cfg = KillSwitchConfig.from_dict({"max_drawdown_money": 1_000_000,
                                      "severity": {"jump": "HALTED"}})
    assert cfg.max_drawdown_money == 1_000_000
    assert cfg.severity[Trigger.JUMP] == "HALTED"
    assert cfg.severity[Trigger.STALE_THEO] == DEFAULT_SEVERITY[Trigger.STALE_THEO]
    assert evaluate(fresh(), RiskMetrics(jump=True), T0, cfg).state == "HALTED"


@pytest.mark.parametrize(
    "d",
    [
        {"max_drawdown": 5},
        {"stale_market_data_s": 30},
        {"severity": {"NOT_A_TRIGGER": "HALTED"}},
        {"severity": {"JUMP": "ACTIVE"}},
        {"max_drawdown_money": -1},
        {"reducing_cooldown_ns": 1.5},
        {"rest_failure_streak_limit": True},
        {"severity": ["JUMP"]},
    ],
)
def test_from_dict_rejects_unknown_keys_and_bad_values(d: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        KillSwitchConfig.from_dict(d)


def test_detect_is_empty_for_default_metrics() -> None:
    assert detect(RiskMetrics(), T0, CFG, 0) == {}


# --- properties: HALTED is left only by reset ----------------------------------------------

metrics_st = st.builds(
    RiskMetrics,
    pnl_money=st.integers(-10_000_000, 10_000_000),
    worst_case_exposure=st.integers(0, 200 * CONTRACT),
    hard_limit=st.sampled_from([None, 100 * CONTRACT]),
    soft_limit=st.sampled_from([None, 50 * CONTRACT]),
    last_market_data_ns=st.one_of(st.none(), st.integers(0, 40 * S)),
    latency_p95_ns=st.one_of(st.none(), st.integers(0, 2 * S)),
    latency_max_ns=st.one_of(st.none(), st.integers(0, 6 * S)),
    ws_connected=st.booleans(),
    rest_failure_streak=st.integers(0, 4),
    rate_limited_last_min=st.integers(0, 7),
    position_drift=st.integers(0, 6 * CONTRACT),
    jump=st.booleans(),
)
step_st = st.one_of(
    st.tuples(st.just("eval"), metrics_st, st.integers(0, 60 * S)),
    st.tuples(st.just("trip"), st.sampled_from(list(Trigger)), st.integers(0, 60 * S)),
    st.tuples(st.just("reset"), st.none(), st.integers(0, 60 * S)),
)


def _apply(ks: KillSwitch, step: tuple[str, object, int], now: int) -> KillSwitch:
    kind, arg, _ = step
    if kind == "eval":
        return evaluate(ks, arg, now, CFG)  # type: ignore[arg-type]
    if kind == "trip":
        return trip(ks, arg, now, "test", CFG)  # type: ignore[arg-type]
    return reset(ks, now, "test")


@given(st.lists(step_st.filter(lambda s: s[0] != "reset"), max_size=40))
def test_without_reset_halted_is_absorbing(steps: list[tuple[str, object, int]]) -> None:
    ks, now, halted = fresh(), T0, False
    for step in steps:
        now += step[2]
        ks = _apply(ks, step, now)
        halted = halted or ks.state == "HALTED"
        if halted:
            assert ks.state == "HALTED"
        assert len(ks.history) <= HISTORY_LIMIT


@given(st.lists(step_st, max_size=40))
def test_leaving_halted_happens_only_at_reset(steps: list[tuple[str, object, int]]) -> None:
    ks, now = fresh(), T0
    for step in steps:
        now += step[2]
        before = ks
        ks = _apply(ks, step, now)
        if before.state == "HALTED" and ks.state != "HALTED":
            assert step[0] == "reset" and ks.state == "ACTIVE"
        if before.state == "REDUCING" and ks.state == "ACTIVE" and step[0] == "eval":
            assert before.clear_since_ns is not None  # was clear for a while already
            assert now - before.clear_since_ns >= CFG.reducing_cooldown_ns
        if ks.state == "ACTIVE":
            assert not ks.active_triggers
        if before.history != ks.history:
            assert ks.history[-1].from_state == before.state
            assert ks.history[-1].to_state == ks.state != before.state
