"""The participants' driver: a whole seeded backtest settles, conserves cash and replays exactly;
faults fire at their step; wakes are never in the past; the virtual clock keeps order."""

from __future__ import annotations

import asyncio
import copy
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from mmcore.errors import InputError
from mmcore.sim.driver import (
    DEFAULT_DELAY_S, SimClock, SimDriver, StepReport, default_fault_handler, run_backtest,
    run_live,
)
from mmcore.sim.engine_types import EngineError, EngineEvent, OrderRequest
from mmcore.sim.exchange import LocalExchange
from mmcore.sim.participants import CancelIntent, PlaceIntent
from mmcore.sim.scenario import ResolvedScenario, default_scenario, load_scenario
from mmcore.units import CONTRACT, PRICE_ONE

S = 1_000_000_000
T0 = 1_800_000_000 * S
UNIT = PRICE_ONE // CONTRACT


def build(sc: ResolvedScenario, **kw: Any) -> tuple[SimClock, LocalExchange, SimDriver]:
    clock = SimClock(sc.start_ns)
    ex = LocalExchange.from_scenario(sc, clock_ns=clock.now_ns)
    return clock, ex, SimDriver(ex, sc, **kw)


def cash(ex: LocalExchange, user: str) -> int:
    return ex.engine.balance(user) + ex.engine.reserved(user)


def total_money(ex: LocalExchange) -> int:
    eng = ex.engine
    return sum(cash(ex, u) for u in eng.users) + eng.collateral() + eng.fees_collected


# --- a whole backtest of the default slate ----------------------------------------------------


@dataclass
class Run:
    sc: ResolvedScenario
    ex: LocalExchange
    driver: SimDriver
    steps: list[int] = field(default_factory=list)
    crossed: list[tuple[int, str]] = field(default_factory=list)
    money: set[int] = field(default_factory=set)
    bad_wakes: list[tuple[int, int | None]] = field(default_factory=list)
    reports: list[StepReport] = field(default_factory=list)
    before_settle: dict[str, tuple[dict[str, int], dict[str, dict[str, int]]]] = field(
        default_factory=dict)
    after_settle: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0


def next_scheduled(sc: ResolvedScenario, now: int) -> int | None:
    times = [f.at_ns for f in sc.faults if f.at_ns > now]
    times += [g.settle_ns for g in sc.games if g.settle_ns > now]
    return min(times, default=None)


@pytest.fixture(scope="module")
def full_run() -> Run:
    sc = default_scenario(11, T0, 2)
    clock, ex, driver = build(sc)
    run = Run(sc, ex, driver)
    markets = [m for g in sc.games for m in g.markets]
    users = ex.engine.users

    def snapshot() -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        return ({u: cash(ex, u) for u in users},
                {u: {m: ex.engine.position(u, m) for m in markets} for u in users})

    def on_step(now: int) -> None:
        entered = time.perf_counter()
        run.steps.append(now)
        report = driver.last_report
        assert report is not None and report.now_ns == now
        if report.intents_applied or report.refusals or report.settled_markets:
            run.reports.append(report)
        for m in markets:
            bid, _, ask, _ = ex.engine.best(m)
            if bid is not None and ask is not None and bid >= ask:
                run.crossed.append((now, m))
        run.money.add(total_money(ex))
        wake, due = driver.next_wake_ns(), next_scheduled(sc, now)
        if (wake is not None and wake <= now) or (due is not None and (wake is None or wake > due)):
            run.bad_wakes.append((now, wake))
        for g in sc.games:
            if now < g.settle_ns and wake == g.settle_ns:  # the next step may be the settlement
                run.before_settle[g.event_ticker] = snapshot()
            elif now >= g.settle_ns and g.event_ticker not in run.after_settle:
                run.after_settle[g.event_ticker] = snapshot()[0]
        hooks[0] += time.perf_counter() - entered

    hooks = [0.0]
    start = time.perf_counter()
    summary = run_backtest(driver, clock, sc.end_ns, on_step=on_step)
    run.seconds = time.perf_counter() - start - hooks[0]
    assert summary.end_ns == sc.end_ns == clock.now_ns()
    assert summary.steps == len(run.steps)
    return run


def test_backtest_settles_every_market_and_leaves_nothing_open(full_run: Run) -> None:
    eng, sc = full_run.ex.engine, full_run.sc
    for g in sc.games:
        for m in g.markets:
            market = eng.get_market(m)
            assert market.status == "settled"
            assert market.result == ("yes" if m == g.winner_market else "no")
            assert market.settled_ns == g.settle_ns
            assert eng.best(m) == (None, 0, None, 0)
    for u in eng.users:
        assert eng.positions(u) == []
        assert eng.orders(u, status="resting") == []
        assert eng.reserved(u) == 0
    assert eng.collateral() == 0
    settled = [m for r in full_run.reports for m in r.settled_markets]
    assert sorted(settled) == sorted(m for g in sc.games for m in g.markets)


def test_settlement_pays_a_dollar_per_winning_contract(full_run: Run) -> None:
    eng, sc = full_run.ex.engine, full_run.sc
    yes_winners = 0
    for g in sc.games:
        cash_before, positions = full_run.before_settle[g.event_ticker]
        cash_after = full_run.after_settle[g.event_ticker]
        for u in eng.users:
            expected = 0
            for m in g.markets:
                pos = positions[u][m]
                if m == g.winner_market and pos > 0:
                    expected += pos * UNIT
                    yes_winners += 1
                elif m != g.winner_market and pos < 0:
                    expected += -pos * UNIT
            assert cash_after[u] - cash_before[u] == expected, (g.event_ticker, u)
            revenue = sum(s.revenue for s in eng.settlements(u) if s.event_ticker == g.event_ticker)
            assert revenue == expected
    assert yes_winners > 0


def test_money_is_conserved_and_the_book_never_crosses(full_run: Run) -> None:
    assert full_run.money == {sum(full_run.sc.users.values())}
    assert full_run.crossed == []


def test_participants_trade_and_their_edges_have_the_right_sign(full_run: Run) -> None:
    eng, sc = full_run.ex.engine, full_run.sc
    assert len(eng.trades()) > 500
    edge: dict[str, float] = defaultdict(float)
    for u in eng.users:
        for f in eng.fills(u):
            truth = sc.game(f.ticker).yes_prob(f.ticker, f.ts_ns) * PRICE_ONE
            sign = 1 if f.side == "bid" else -1
            edge[u.split("-")[0]] += sign * (truth - f.price) * f.count / (CONTRACT * PRICE_ONE)
    assert edge["noise"] < 0 < edge["maker"]
    assert "mm" not in edge  # nobody traded for the market maker
    kinds = {type(i) for r in full_run.reports for i in r.intents_applied}
    assert {PlaceIntent, CancelIntent} <= kinds


def test_next_wake_is_never_in_the_past_nor_after_a_scheduled_event(full_run: Run) -> None:
    assert full_run.bad_wakes == []
    assert full_run.steps == sorted(set(full_run.steps))
    assert max(b - a for a, b in zip(full_run.steps, full_run.steps[1:])) <= S
    assert full_run.driver.done and full_run.driver.next_wake_ns() is None


def test_full_backtest_is_fast(full_run: Run) -> None:
    # a guard against pathological slowdowns, not a benchmark: ~1.5–2.5 s here, more than half
    # of it in the matching engine (on_step checks excluded)
    assert full_run.seconds < 10.0


# --- determinism --------------------------------------------------------------------------------


def replay(seed: int, horizon_s: float = 1500.0) -> tuple[list[Any], list[EngineEvent]]:
    sc = default_scenario(seed, T0, 2)
    clock, ex, driver = build(sc)
    events: list[EngineEvent] = []
    ex.subscribe(events.extend)
    run_backtest(driver, clock, sc.start_ns + round(horizon_s * S), step_ns=7 * S)
    return ex.engine.trades(), events


def test_same_seed_replays_exactly_and_another_seed_differs() -> None:
    trades, events = replay(5)
    again, events_again = replay(5)
    assert len(trades) > 20
    assert trades == again
    assert events == events_again
    assert replay(6)[0] != trades


def test_a_late_step_catches_up_arrival_by_arrival() -> None:
    sc = default_scenario(3, T0, 2)
    clock, ex, driver = build(sc)
    driver.step(sc.start_ns)
    late = sc.start_ns + 600 * S
    clock.advance_to(late)
    report = driver.step(late)
    takers = [i for i in report.intents_applied
              if isinstance(i, PlaceIntent) and i.time_in_force == "immediate_or_cancel"]
    assert len(takers) > 5
    wake = driver.next_wake_ns()
    assert wake is not None and wake > late
    # an earlier time afterwards runs at the latest time: the driver never goes backwards
    assert driver.step(late - S).now_ns == late


# --- faults -----------------------------------------------------------------------------------


def fault_scenario(**kw: Any) -> dict[str, Any]:
    return copy.deepcopy({
        "seed": 9, "start": "now",
        "games": [{"sport_key": "basketball_nba", "home_team": "Boston Celtics",
                   "away_team": "New York Knicks", "start_in_s": 300, "true_probs": [0.6, 0.4]}],
        "truth": {"game_length_s": 900.0, "step_s": 5.0},
        "participants": {
            "noise_takers": [{"count": 2, "rate_per_s": 0.2, "max_spread_price": 1500}],
            "competing_makers": [{"half_spread_price": 300, "ceiling_edge_price": 100},
                                 {"half_spread_price": 400, "ceiling_edge_price": 200,
                                  "penny": False}],
        },
        "faults": [
            {"at_s": 100, "kind": "pause", "params": {"game": 0, "outcome": 0}},
            {"at_s": 160, "kind": "reactivate", "params": {"game": 0, "outcome": 0}},
            {"at_s": 200, "kind": "http_5xx", "params": {"count": 3}},
            {"at_s": 210, "kind": "rate_limit_storm", "params": {"seconds": 20}},
            {"at_s": 220, "kind": "slow_replies", "params": {"seconds": 5, "delay_s": 0.5}},
            {"at_s": 230, "kind": "seq_gap", "params": {"channel": "orderbook_delta"}},
            {"at_s": 400, "kind": "early_close", "params": {"game": 0, "outcome": 1}},
        ],
        **kw})


def test_faults_fire_at_their_step_with_their_effects() -> None:
    sc = load_scenario(fault_scenario(), T0)
    home, away = sc.games[0].markets
    at = {f.kind: f.at_ns for f in sc.faults}
    clock, ex, driver = build(sc)
    eng = ex.engine
    seen: dict[str, Any] = {}

    def on_step(now: int) -> None:
        report = driver.last_report
        assert report is not None
        for f in report.faults_fired:
            assert f.at_ns == now, f.kind
        kinds = [f.kind for f in report.faults_fired]
        if now < at["pause"]:
            seen["resting"] = [o.order_id for u in eng.users
                               for o in eng.orders(u, ticker=home, status="resting")]
        if kinds == ["pause"]:
            assert eng.get_market(home).status == "paused"
            assert eng.get_market(away).status == "active"
            # nobody's orders asked to be canceled on pause: they still rest, frozen
            assert [o.order_id for u in eng.users
                    for o in eng.orders(u, ticker=home, status="resting")] == seen["resting"]
        if kinds == ["reactivate"]:
            assert eng.get_market(home).status == "active"
            for oid in seen["resting"]:
                order = next(o for u in eng.users for o in eng.orders(u, ticker=home)
                             if o.order_id == oid)
                assert order.status == "canceled"
                assert order.last_update_reason == "market_reactivated"
        if kinds == ["http_5xx"]:
            assert ex.faults.http_5xx_remaining == 3
        if kinds == ["early_close"]:
            market = eng.get_market(away)
            assert market.status == "closed" and market.close_ns == now
            assert eng.best(away) == (None, 0, None, 0)
            seen["trades_at_close"] = len(eng.trades(away))

    run_backtest(driver, clock, sc.end_ns, on_step=on_step, step_ns=10 * S)

    assert seen["resting"], "makers should have been quoting before the pause"
    paused = [t for t in eng.trades(home) if at["pause"] <= t.ts_ns < at["reactivate"]]
    assert paused == []
    assert len(eng.trades(away)) == seen["trades_at_close"]
    f = ex.faults
    assert f.rate_limit_storm_until_ns == at["rate_limit_storm"] + 20 * S
    assert (f.slow_reply_s, f.slow_until_ns) == (0.5, at["slow_replies"] + 5 * S)
    assert f.ws_seq_gap_pending == 1
    assert [(e["kind"], e["at_ns"]) for e in f.log] == [(x.kind, x.at_ns) for x in sc.faults]
    assert f.log[0]["params"] == {"ticker": home}
    assert f.log[5]["params"] == {"channel": "orderbook_delta", "count": 1}
    # the early-closed market still settles with the game
    assert {eng.get_market(m).status for m in (home, away)} == {"settled"}


def test_a_custom_fault_handler_replaces_the_default() -> None:
    sc = load_scenario(fault_scenario(), T0)
    calls: list[tuple[str, dict[str, Any], int]] = []
    clock, ex, driver = build(sc, fault_handler=lambda k, p, t: calls.append((k, dict(p), t)))
    run_backtest(driver, clock, sc.start_ns + 250 * S, step_ns=60 * S)
    assert [(k, t) for k, _, t in calls] == [(f.kind, f.at_ns) for f in sc.faults[:6]]
    assert ex.faults.log == [] and ex.faults.http_5xx_remaining == 0
    assert ex.engine.get_market(sc.games[0].markets[0]).status == "active"


def test_default_fault_handler_fills_scenario_defaults() -> None:
    sc = load_scenario(fault_scenario(faults=[]), T0)
    ex = LocalExchange.from_scenario(sc, clock_ns=lambda: T0)
    handle = default_fault_handler(ex)
    handle("http_5xx", {}, T0)
    handle("http_5xx", {"count": 2}, T0)
    handle("rate_limit_storm", {"duration_s": 20}, T0)  # the example file's spelling
    handle("cancel_ack_not_applied", {"seconds": 10, "delay_s": 2.0}, T0)
    handle("positions_lag", {"seconds": 10}, T0)
    handle("ws_disconnect", {"duration_s": 5}, T0)
    handle("duplicate_delta", {}, T0)
    f = ex.faults
    assert f.http_5xx_remaining == 3
    assert f.rate_limit_storm_until_ns == T0 + 20 * S
    assert (f.cancel_ack_not_applied_s, f.cancel_ack_until_ns) == (2.0, T0 + 10 * S)
    assert (f.positions_lag_s, f.positions_lag_until_ns) == (DEFAULT_DELAY_S, T0 + 10 * S)
    assert (f.ws_disconnect_pending, f.ws_duplicate_pending) == (1, 1)
    assert [e["kind"] for e in f.log] == ["http_5xx", "http_5xx", "rate_limit_storm",
                                          "cancel_ack_not_applied", "positions_lag",
                                          "ws_disconnect", "duplicate_delta"]
    # an event ticker targets every market of the game
    handle("pause", {"ticker": sc.games[0].event_ticker}, T0)
    assert {ex.engine.get_market(m).status for m in sc.games[0].markets} == {"paused"}
    with pytest.raises(EngineError):
        handle("meteor_strike", {}, T0)


def test_a_fault_the_exchange_refuses_is_recorded() -> None:
    raw = fault_scenario(faults=[
        {"at_s": 10, "kind": "early_close", "params": {"game": 0}},
        {"at_s": 20, "kind": "pause", "params": {"game": 0}},  # a closed market cannot pause
        {"at_s": 30, "kind": "http_5xx", "params": {"count": 1}},
    ])
    sc = load_scenario(raw, T0)
    clock, ex, driver = build(sc)
    reports: list[StepReport] = []
    run_backtest(driver, clock, sc.start_ns + 40 * S,
                 on_step=lambda now: reports.append(driver.last_report))
    refusals = [r for rep in reports for r in rep.refusals]
    assert [(r.action, r.ticker, r.error.code) for r in refusals] == [
        ("fault:pause", sc.games[0].event_ticker, "invalid_parameters")]
    assert [f.kind for rep in reports for f in rep.faults_fired] == [
        "early_close", "pause", "http_5xx"]
    assert [e["kind"] for e in ex.faults.log] == ["early_close", "http_5xx"]


def test_refused_intents_are_recorded_not_raised() -> None:
    sc = load_scenario(fault_scenario(faults=[], users={"maker-0-0": {"balance_dollars": "0"}}),
                       T0)
    clock, ex, driver = build(sc)
    refusals = []
    run_backtest(driver, clock, sc.start_ns + 120 * S,
                 on_step=lambda now: refusals.extend(driver.last_report.refusals))
    assert refusals
    assert {r.user_id for r in refusals} == {"maker-0-0"}
    assert {r.error.code for r in refusals} == {"available_balance_too_low"}
    assert ex.engine.orders("maker-0-0") == []
    assert ex.engine.orders("maker-1-0", status="resting")


def test_makers_react_to_outside_orders() -> None:
    """A write that does not come from the driver (our market maker over REST) wakes the makers."""
    raw = fault_scenario(faults=[])
    raw["participants"] = {"competing_makers": [
        {"half_spread_price": 400, "ceiling_edge_price": 0, "penny": True}]}
    sc = load_scenario(raw, T0)
    clock, ex, driver = build(sc)
    home = sc.games[0].markets[0]
    run_backtest(driver, clock, sc.start_ns + 70 * S)  # requoted at 60 s, cooled down by 65 s
    now = clock.now_ns()
    bid = ex.engine.best(home)[0]
    assert bid is not None
    assert driver.next_wake_ns() > now + 1  # nothing pending right now
    ex.mutate(lambda e, t: e.place(OrderRequest("mm", home, "bid", bid + 100, 500,
                                                post_only=True), t))
    assert driver.next_wake_ns() == now + 1
    clock.advance_to(now + 1)
    report = driver.step(now + 1)
    assert [(i.side, i.price) for i in report.intents_applied if isinstance(i, PlaceIntent)] == [
        ("bid", bid + 200)]  # the pennying maker steps in front of us


# --- live loop ------------------------------------------------------------------------------


async def test_run_live_steps_on_the_wall_clock_until_stopped() -> None:
    raw = fault_scenario(faults=[{"at_s": 0, "kind": "http_5xx", "params": {"count": 1}}])
    sc = load_scenario(raw, time.time_ns())
    ex = LocalExchange.from_scenario(sc)
    driver = SimDriver(ex, sc)
    stop = asyncio.Event()
    task = asyncio.create_task(run_live(driver, stop=stop, max_sleep_s=0.01))
    deadline = time.monotonic() + 5
    while not (ex.faults.http_5xx_remaining == 1
               and ex.engine.orders("maker-0-0", status="resting")):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)  # ok: poll interval inside a bounded wait
    stop.set()
    await asyncio.wait_for(task, timeout=1)
    assert ex.faults.log[0]["kind"] == "http_5xx"


# --- the virtual clock ------------------------------------------------------------------------


def test_sim_clock_fires_timers_in_order_and_never_goes_back() -> None:
    clock = SimClock(100)
    fired: list[tuple[str, int]] = []

    def note(name: str) -> Any:
        return lambda: fired.append((name, clock.now_ns()))

    clock.call_at(300, note("c"))
    clock.call_at(200, note("a"))
    clock.call_at(200, note("b"))  # same time: scheduling order
    dropped = clock.call_at(250, note("dropped"))
    clock.call_at(400, lambda: clock.call_at(450, note("chained")))
    clock.call_at(900, note("later"))
    dropped.cancel()
    assert clock.next_timer_ns() == 200
    clock.advance_to(500)
    assert fired == [("a", 200), ("b", 200), ("c", 300), ("chained", 450)]
    assert clock.now_ns() == 500
    assert clock.next_timer_ns() == 900
    clock.advance_to(500)  # standing still is fine
    with pytest.raises(InputError):
        clock.advance_to(499)
    clock.call_at(10, note("past"))  # scheduled in the past: fires at the next advance, now
    clock.advance_to(600)
    assert fired[-1] == ("past", 500)
    assert clock.now_ns() == 600
