"""Adverse-selection guards (:mod:`mmcore.quoting.guards`) and the jump detector that acts.

Pure tests of the guard state and of the quoting's per-side widen, then the running worker against
the local exchange over loopback: informed flow that picks us off turns our markouts negative and
the worker quotes that side wider; a news jump in the hidden truth makes the worker widen and ask
for a per-game odds re-pull (a request file under ``<theo_dir>/requests/``).

Units: prices price units ($0.0001), counts centi-contracts, times int ns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.atomicfile import read_json
from mmcore.errors import InputError
from mmcore.orders import LiveOrder
from mmcore.quoting.guards import (
    AdverseGuards,
    GuardConfig,
    imbalance,
    markout,
    realized_vol,
    size_fraction,
)
from mmcore.quoting.quotes import GameState, desired_quotes
from mmcore.risk.barrier import BarrierConfig
from mmcore.risk.jumps import JumpConfig, JumpVerdict
from mmcore.risk.limits import LimitConfig
from mmcore.sim.scenario import load_scenario
from mmcore.sim.server import SimStack
from mmcore.units import CONTRACT, PRICE_ONE
from mmcore.venues.kalshi.ratelimit import RateLimiter
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.kalshi.ws import KalshiWs
from mmcore.worker.driver import FileTheoSource, WorkerDriver, load_game
from mmcore.worker.engine import RefreshTheo
from mmcore.worker.journal import (
    Journal,
    JournalConfig,
    published_segments,
    read_records,
)
from tests.test_quotes import LIMIT, NOW, PARAMS, S, by_slot, game, tops
from tests.workerkit import publish_theos, scenario_dict, worker_config

A, B = "G-AAA", "G-BBB"


# --- pure pieces ------------------------------------------------------------------------------


def test_markout_sign_convention_matches_quoting_math() -> None:
    # quoting-math §5.3: s·(m − P), positive = the fill was good
    assert markout("bid", 4700, 4800.0) == 100
    assert markout("ask", 5000, 4900.0) == 100
    assert markout("ask", 5000, 5300.0) == -300


@given(st.lists(st.integers(-10_000, 10_000), max_size=50))
def test_imbalance_is_bounded_and_signed(counts: list[int]) -> None:
    imb, total = imbalance(counts)
    assert -1.0 <= imb <= 1.0 and total == sum(abs(c) for c in counts)
    if total:
        assert (imb > 0) == (sum(counts) > 0)


@given(st.lists(st.floats(0, PRICE_ONE), max_size=40), st.floats(-500, 500))
def test_realized_vol_ignores_level_and_is_nonnegative(mids: list[float], shift: float) -> None:
    v = realized_vol(mids)
    assert v >= 0
    assert realized_vol([m + shift for m in mids]) == pytest.approx(v, abs=1e-6)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(InputError):
        GuardConfig(markout_horizon_ns=0)
    with pytest.raises(InputError):
        GuardConfig(flow_imbalance_trigger=1.5)
    with pytest.raises(InputError):
        GuardConfig(jump_widen_price=-1)


def test_fills_picked_off_widen_that_side_only_then_decay() -> None:
    cfg = GuardConfig(vol_trigger_price=10_000)  # the mid's 4¢ move alone would widen both
    g = AdverseGuards((A, B), cfg)
    g.observe_mid(A, 5000.0, NOW)
    for i in range(3):  # we buy at 50¢ three times; the mid then falls to 46¢
        g.observe_fill(A, "bid", 5000, 5 * CONTRACT, NOW + i * S)
    g.observe_mid(A, 4600.0, NOW + 3 * S)
    assert g.decide(NOW + 3 * S, ()).widen == {}  # horizon (5 s) not reached yet: nothing known
    d = g.decide(NOW + 8 * S, ())
    assert d.widen == pytest.approx({(A, "bid"): 400.0})  # |−400| per contract; ask, B untouched
    note, size_note = d.notes  # the same markouts also size the side (issue 11)
    assert note.startswith(f"guard markout {A} bid: mean -400 per contract at 5s over 14.8")
    assert size_note == f"guard size {A} bid: mean markout -400 → size ×0.10"
    assert d.size == {(A, "bid"): pytest.approx(cfg.size_floor_fraction)}
    mean, weight, n = g.markout_stats((A, "bid"), NOW + 8 * S)
    assert mean == pytest.approx(-400.0) and n == 3 and weight == pytest.approx(14.83, abs=0.01)
    # no new fills: the weight halves every 120 s; under 5 contracts the side quotes normally
    later = g.decide(NOW + 8 * S + 2 * cfg.markout_halflife_ns, ())
    assert later.widen == {} and later.size == {}


def test_size_fraction_from_markouts() -> None:
    cfg = GuardConfig()
    assert size_fraction(None, cfg) == 1.0 and size_fraction(30.0, cfg) == 1.0
    assert size_fraction(0.0, cfg) == 1.0
    assert size_fraction(-100.0, cfg) == pytest.approx(0.55)  # half-way to the floor
    assert size_fraction(-200.0, cfg) == pytest.approx(0.1) == size_fraction(-900.0, cfg)
    with pytest.raises(InputError):
        GuardConfig(size_floor_fraction=0.0)
    with pytest.raises(InputError):
        GuardConfig(size_markout_full_price=300.0, size_markout_floor_price=200.0)


def test_markout_uses_the_mid_in_force_at_the_horizon_not_a_later_one() -> None:
    g = AdverseGuards((A,), GuardConfig(markout_min_contracts=1))
    g.observe_mid(A, 5000.0, NOW)
    g.observe_fill(A, "ask", 5000, 10 * CONTRACT, NOW)
    g.observe_mid(A, 5200.0, NOW + 4 * S)   # in force at +5 s
    g.observe_mid(A, 4000.0, NOW + 9 * S)   # too late to count
    mean, _, _ = g.markout_stats((A, "ask"), NOW + 9 * S)
    assert mean == pytest.approx(-200.0)


def test_one_sided_taker_flow_widens_the_side_being_hit() -> None:
    g = AdverseGuards((A,), GuardConfig())
    for i in range(4):
        g.observe_trade(A, 10 * CONTRACT, "bid", NOW + i * S)  # buyers lift the ask
    g.observe_trade(A, 2 * CONTRACT, "ask", NOW + 4 * S)
    d = g.decide(NOW + 4 * S, ())
    assert d.widen == {(A, "ask"): 100.0}
    assert "imbalance +0.90 of 42 contracts" in d.notes[0]
    assert g.decide(NOW + 20 * S, ()).widen == {}  # out of the 10 s window


def test_a_sweep_holds_the_taken_side_and_the_other_outcomes_opposite_side_at_once() -> None:
    cfg = GuardConfig()
    g = AdverseGuards((A, B), cfg)
    for i in range(5):  # noise-sized prints, seconds apart: no sweep
        assert g.observe_trade(A, 10 * CONTRACT, "bid", NOW + i * S, 5100) is None
    assert g.decide(NOW + 5 * S, ()).hold == {}
    t = NOW + 10 * S  # one IOC through two prices: 25 contracts
    assert g.observe_trade(A, 15 * CONTRACT, "bid", t, 5100) is None
    reason = g.observe_trade(A, 10 * CONTRACT, "bid", t, 5300)
    assert reason == f"jump on {A}: trade sweep: takers bought 25 contracts through 2 prices to 5300"
    d = g.decide(t, ())
    assert set(d.hold) == {(A, "ask"), (B, "bid")}  # no 3 s persistence: held at once
    # a refreshed theo that has not caught up keeps it; one that reaches the far price ends it
    g.observe_theo(A, 5200.0, t + S)
    assert set(g.decide(t + 2 * S, ()).hold) == {(A, "ask"), (B, "bid")}
    g.observe_theo(A, 5300.0, t + 3 * S)
    assert g.decide(t + 3 * S, ()).hold == {}
    # else it ends sweep_hold_ns after the last sweep; a second sweep within the cooldown extends
    # the hold but asks for no second re-pull
    t2 = t + 100 * S
    assert g.observe_trade(B, 30 * CONTRACT, "ask", t2, 4700) is not None
    assert g.observe_trade(B, 30 * CONTRACT, "ask", t2 + 30 * S, 4600) is None
    assert set(g.decide(t2 + 30 * S + cfg.sweep_hold_ns - 1, ()).hold) == {(B, "bid"), (A, "ask")}
    assert g.decide(t2 + 30 * S + cfg.sweep_hold_ns, ()).hold == {}
    assert AdverseGuards((A,), GuardConfig(sweep_hold_ns=0)).observe_trade(
        A, 50 * CONTRACT, "bid", NOW, 5100) is None


def test_volatile_mid_and_jump_verdict_widen_both_sides() -> None:
    g = AdverseGuards((A, B), GuardConfig())
    for i, m in enumerate([5000, 5300, 5000, 5300]):
        g.observe_mid(A, float(m), NOW + i * S)
    d = g.decide(NOW + 4 * S, (), {B: "widen"})
    vol = realized_vol([5000, 5300, 5000, 5300])  # ≈ 520 → widen 0.5 × vol (cap 300)
    assert 200 < vol < 600
    w = 0.5 * vol
    assert d.widen == pytest.approx({(A, "bid"): w, (A, "ask"): w, (B, "bid"): 200.0, (B, "ask"): 200.0})
    assert any(n.startswith(f"guard jump {B}: verdict widen") for n in d.notes)


def test_old_quote_in_a_moved_book_is_held_back_for_the_cooldown() -> None:
    cfg = GuardConfig()
    g = AdverseGuards((A,), cfg)
    g.observe_mid(A, 5000.0, NOW)
    order = LiveOrder("o1", None, A, "bid", 4900, 5 * CONTRACT, 0, NOW)
    g.observe_mid(A, 4700.0, NOW + 10 * S)
    assert g.decide(NOW + 19 * S, (order,)).hold == {}  # moved, but not old enough yet
    d = g.decide(NOW + 21 * S, (order,))
    assert list(d.hold) == [(A, "bid")] and "mid moved -300 (5000 → 4700)" in d.hold[(A, "bid")]
    assert g.decide(NOW + 22 * S, ()).hold  # cancelled meanwhile: still held for the cooldown
    assert g.decide(NOW + 21 * S + cfg.stale_quote_hold_ns, ()).hold == {}


def test_jump_refresh_is_rate_limited_per_game() -> None:
    g = AdverseGuards((A, B), GuardConfig(jump_refresh_cooldown_ns=60 * S))
    jump = JumpVerdict("widen", 0.3, 0.07, None, NOW)
    assert g.jump_refresh(A, "mid", JumpVerdict("none", 0.0, 0.0, 1.0, NOW), NOW) is None
    reason = g.jump_refresh(A, "mid", jump, NOW)
    assert reason == f"jump on {A}: mid moved +7.0¢ → widen"
    assert g.jump_refresh(B, "trade", jump, NOW + 59 * S) is None
    assert g.jump_refresh(B, "trade", jump, NOW + 60 * S) is not None


def test_disabled_guards_decide_nothing() -> None:
    g = AdverseGuards((A,), GuardConfig(enabled=False))
    g.observe_mid(A, 5000.0, NOW)
    assert g.decide(NOW, ()) == g.decide(NOW + S, (), {A: "pull"})
    assert g.decide(NOW, ()).widen == {} and g.jump_refresh(A, "mid", JumpVerdict(
        "pull", 1.0, 0.2, 9.0, NOW), NOW) is None


# --- the widen in the quoting -----------------------------------------------------------------


@given(theo=st.floats(0.1, 0.9), w=st.floats(1, 800), bid=st.integers(500, 4500))
def test_widen_moves_a_side_at_least_that_far_past_theo(theo: float, w: float, bid: int) -> None:
    """Flat inventory, a book around theo: a widened bid sits at least ``w`` below theo (past the
    theo cap, not just the model price), the other sides are unchanged."""
    book = tops((bid, bid + 1000), (bid, bid + 1000))
    base = desired_quotes(game(), book, (theo, 1 - theo), GameState(), LIMIT, PARAMS, NOW)
    wide = desired_quotes(game(), book, (theo, 1 - theo), GameState(), LIMIT, PARAMS, NOW,
                          guard_widen={(A, "bid"): w})
    q0, q1 = by_slot(base), by_slot(wide)
    if (A, "bid") in q1:
        assert q1[(A, "bid")].price <= theo * PRICE_ONE - w
    if (A, "bid") in q0 and (A, "bid") in q1:
        assert q1[(A, "bid")].price <= q0[(A, "bid")].price
    for slot in ((A, "ask"), (B, "bid"), (B, "ask")):
        assert (q0.get(slot) and q0[slot].price) == (q1.get(slot) and q1[slot].price)


def test_held_side_is_not_quoted_and_says_why() -> None:
    dq = desired_quotes(game(), tops((5700, 6300), (3700, 4300)), (0.6, 0.4), GameState(), LIMIT,
                        PARAMS, NOW, hold={(A, "ask"): "stale quote"})
    assert (A, "ask") not in by_slot(dq) and (A, "bid") in by_slot(dq)
    assert f"guard hold: {A} ask not quoted (stale quote)" in dq.notes


# --- the running worker against the local exchange ---------------------------------------------

NEWS_JUMP = {"news_rate_per_s": 1 / 15, "news_jump_logit_sd": 0.8}
"""With seed 7 the hidden truth of the home team jumps once before the start, 25 s in
(≈ 0.52 → 0.67), and not again for minutes: informed takers then buy every ask below it."""
SHARP = [{"edge_threshold_price": 100, "rate_per_s": 1.0, "noise_sd_prob": 0.0}]
FAST_MAKERS = [{"half_spread_price": 300, "ceiling_edge_price": 100, "penny": False, "count": 2,
                "estimate_refresh_s": 2.0, "requote_min_s": 1.0, "fair_noise_sd_prob": 0.005,
                "bias_sd_prob": 0.005}]
"""Competing makers that follow the truth within seconds: after the jump the book moves to the new
price while the worker's theo (no odds pull serves its requests here) stays where it was."""
BIG_LIMITS = LimitConfig.from_dict({"sports": {"basketball_nba": {
    "min_contracts": 150 * CONTRACT, "max_contracts": 300 * CONTRACT}}})
"""Room to be picked off several times without INVENTORY_SOFT pulling the side we watch."""


def test_scenario_has_one_news_jump_before_the_start() -> None:
    sc = load_scenario(_scenario(), 0)
    g = sc.games[0]
    jumps = [t for t in g.truth.jump_times if t < g.start_ns]
    assert [round(t / S) for t in jumps] == [25]
    before, after = g.truth.at(jumps[0] - 1)[0], g.truth.at(jumps[0])[0]
    assert after - before > 0.1


def _scenario() -> dict[str, Any]:
    d = scenario_dict(7, 45.0, informed_takers=SHARP, competing_makers=FAST_MAKERS)
    d["truth"] = dict(NEWS_JUMP)
    # the game's randomness derives from (seed, event ticker), and a default ticker carries the
    # date: pinned, the truth path is the same on every day
    d["games"][0]["event_ticker"] = "KXNBAGAME-26DEC04MILMIA"
    return d


@contextlib.asynccontextmanager
async def _worker(tmp_path: Path, cfg: Any) -> AsyncIterator[tuple[WorkerDriver, Path, Path, Any]]:
    """The local exchange with the news-jump scenario, a published theo, and a real worker driver
    whose theo source drops refresh request files (as `mm quote` does)."""
    sc = load_scenario(_scenario(), time.time_ns())
    g = sc.games[0]
    async with SimStack(sc, tmp_path / "data", heartbeat_s=1.0) as stack:
        signer = stack.signer()
        theo_dir, journal_dir = tmp_path / "theo", tmp_path / "journal"
        await publish_theos(stack, [g], theo_dir)
        async with KalshiRest(stack.rest_url, signer, limiter=RateLimiter.for_tier("advanced")) as rest:
            spec = await load_game(rest, g.event_ticker)
            journal = Journal.open(JournalConfig(journal_dir, cfg.worker_id), time.time_ns())
            driver = WorkerDriver(
                rest, lambda markets: KalshiWs(stack.ws_url, signer, markets=markets), spec, cfg,
                FileTheoSource(theo_dir, g.event_ticker, request_files=True),
                journal=journal, cancel_deadline_s=20.0)
            yield driver, theo_dir, journal_dir, g


def _cfg(**kw: Any) -> Any:
    base = worker_config("w-guards")
    return dataclasses.replace(base, limits=BIG_LIMITS,
                               quote=dataclasses.replace(base.quote, clip=5 * CONTRACT), **kw)


def _records(journal_dir: Path, kind: str) -> list[dict[str, Any]]:
    recs = [r for r in read_records(published_segments(journal_dir)) if r["kind"] == kind]
    return sorted(recs, key=lambda r: r["ts_ns"])


MARKOUT_NOTE = re.compile(r"guard markout (\S+) (bid|ask): mean (-?\d+) per contract .* widen \w+ \+(\d+)")


async def test_informed_flow_turns_markouts_negative_and_the_worker_quotes_that_side_wider(
        tmp_path: Path) -> None:
    # Only the markout guard, measured 2 s after each fill; no jump verdicts (so no JUMP pull
    # and no jump widen) and no sweep hold (the informed buyers' 1/s prints would hold the side):
    # what widens is the markout of the side the informed flow picks off.
    cfg = _cfg(guard=GuardConfig(markout_horizon_ns=2 * S, jump_widen_price=0, vol_trigger_price=1e9,
                                 flow_min_contracts=10**9, stale_quote_age_ns=10**15,
                                 sweep_hold_ns=0),
               jump=JumpConfig(min_abs_prob=0.9),
               # the picked-off side adds to the position the jump moves against: the triple
               # barrier's stop would quote it reduce-only (not at all); this test is the guard's
               barrier=BarrierConfig(enabled=False))
    async with _worker(tmp_path, cfg) as (driver, _theo_dir, journal_dir, g):
        widened = asyncio.Event()
        driver.on_output = lambda w, out: widened.set() if any(
            MARKOUT_NOTE.search(n) for r in out.journal if r["kind"] == "quote_decision"
            for n in r["notes"]) else None
        task = asyncio.create_task(driver.run())
        await asyncio.wait_for(widened.wait(), timeout=60)  # the jump is at 25 s
        driver.stop("test done")
        await asyncio.wait_for(task, timeout=40)
    fills = _records(journal_dir, "fill")
    decisions = _records(journal_dir, "quote_decision")
    first = next(d for d in decisions if any(MARKOUT_NOTE.search(n) for n in d["notes"]))
    market, side, mean, w = next(m.groups() for n in first["notes"] if (m := MARKOUT_NOTE.search(n)))
    assert int(mean) < -50 and int(w) > 0
    # the side picked off: the home team's ask (truth jumped up) or the away team's bid (down)
    assert (market, side) in ((g.markets[0], "ask"), (g.markets[1], "bid"))
    hit = [f for f in fills if f["market"] == market and f["side"] == side]
    assert hit and hit[0]["ts_ns"] < first["ts_ns"]
    i = g.markets.index(market)

    def distance(d: dict[str, Any]) -> int | None:
        """How far the decision quoted that side from theo (price units), None if not quoted."""
        q = next((q for q in d["quotes"] if q["market"] == market and q["side"] == side), None)
        if q is None:
            return None
        theo = d["theo"][i] * PRICE_ONE
        return round(q["price"] - theo if side == "ask" else theo - q["price"])

    before = [distance(d) for d in decisions if d["ts_ns"] < hit[0]["ts_ns"]]
    before = [x for x in before if x is not None]
    during = [(distance(d), int(MARKOUT_NOTE.search(n).group(4)))  # type: ignore[union-attr]
              for d in decisions if d["ts_ns"] >= first["ts_ns"] for n in d["notes"]
              if (m := MARKOUT_NOTE.search(n)) and m.group(1) == market and m.group(2) == side]
    quoted = [(x, wn) for x, wn in during if x is not None]
    assert before and quoted, "the worker should quote that side before the fills and while widened"
    for x, wn in quoted:
        assert x >= wn  # the widen moves the side at least that far past theo
    assert max(x for x, _ in quoted) > before[-1]


async def test_news_jump_widens_quotes_and_asks_for_an_odds_repull(tmp_path: Path) -> None:
    # the jump detector's path alone: the sweep guard (next test) would ask for the re-pull and
    # hold the swept sides first
    async with _worker(tmp_path, _cfg(guard=GuardConfig(sweep_hold_ns=0))) as (
            driver, theo_dir, journal_dir, g):
        request = theo_dir / "requests" / f"{g.event_ticker}.json"
        asked = asyncio.Event()
        driver.on_output = lambda w, out: asked.set() if any(
            isinstance(r, RefreshTheo) and r.reason.startswith("jump on ") for r in out.requests
        ) else None
        task = asyncio.create_task(driver.run())
        await asyncio.wait_for(asked.wait(), timeout=60)  # the jump is at 25 s
        deadline = time.monotonic() + 10
        while not request.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the driver writes it right after, in its own task
        driver.stop("test done")
        await asyncio.wait_for(task, timeout=40)
    assert request.exists(), "a jump should make the worker ask for a per-game odds pull"
    body = read_json(request, "refresh request")
    assert body["reason"].startswith("jump on ") and body["event_ticker"] == g.event_ticker
    decisions = _records(journal_dir, "quote_decision")
    # the trade channel reaches the worker: the informed buyers' prints tip the order flow
    assert any(n.startswith("guard flow ") for d in decisions for n in d["notes"])
    jump_decisions = [d for d in decisions if any(n.startswith("guard jump ") for n in d["notes"])]
    assert jump_decisions, "the jump verdict should widen the worker's quotes"
    widen = GuardConfig().jump_widen_price
    for d in jump_decisions:
        jumped = {n.split()[2].rstrip(":") for n in d["notes"] if n.startswith("guard jump ")}
        for q in d["quotes"]:
            if q["market"] in jumped:
                theo = d["theo"][g.markets.index(q["market"])] * PRICE_ONE
                assert abs(q["price"] - theo) >= widen


SWEEP_NOTE = re.compile(r"guard sweep (\S+) (bid|ask): sweep: takers (bought|sold) (\d+) contracts")


async def test_news_sweep_holds_the_swept_sides_at_once_and_asks_for_an_odds_repull(
        tmp_path: Path) -> None:
    # The news at 25 s: informed buyers take the home team's asks (and so, in a two-team game,
    # the away team's bids are next). The first burst of 20+ contracts on one side holds the
    # home ask and the away bid in the worker's next decision (no 3 s persistence, unlike the
    # jump detector's verdicts), and asks for a per-game odds pull with the sweep as the reason.
    async with _worker(tmp_path, _cfg()) as (driver, theo_dir, journal_dir, g):
        request = theo_dir / "requests" / f"{g.event_ticker}.json"
        held, more = asyncio.Event(), asyncio.Event()
        n_held = 0

        def on_output(_w: object, out: Any) -> None:  # counts the decisions taken while held
            nonlocal n_held
            if any(SWEEP_NOTE.search(n) for r in out.journal if r["kind"] == "quote_decision"
                   for n in r["notes"]):
                n_held += 1
                held.set()
                if n_held >= 4:
                    more.set()

        driver.on_output = on_output
        task = asyncio.create_task(driver.run())
        await asyncio.wait_for(held.wait(), timeout=60)
        deadline = time.monotonic() + 10
        while not request.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the driver writes it right after, in its own task
        await asyncio.wait_for(more.wait(), timeout=30)  # a few more decisions while held
        driver.stop("test done")
        await asyncio.wait_for(task, timeout=40)
    body = read_json(request, "refresh request")
    assert "trade sweep: takers bought" in body["reason"], body
    decisions = _records(journal_dir, "quote_decision")
    swept = [d for d in decisions if any(SWEEP_NOTE.search(n) for n in d["notes"])]
    first = swept[0]
    slots = {(m.group(1), m.group(2)) for n in first["notes"] if (m := SWEEP_NOTE.search(n))}
    assert slots == {(g.markets[0], "ask"), (g.markets[1], "bid")}
    sizes = [int(m.group(4)) for n in first["notes"] if (m := SWEEP_NOTE.search(n))]
    assert min(sizes) >= GuardConfig().sweep_min_contracts
    before = [d for d in decisions if d["ts_ns"] < first["ts_ns"]]
    assert any((q["market"], q["side"]) in slots for d in before for q in d["quotes"]), \
        "the worker quoted those sides before the sweep"
    for d in swept:  # while held: not quoted
        assert not any((q["market"], q["side"]) in slots for q in d["quotes"]), d
    # nothing is placed or amended there while held (what rested was filled or is cancelled)
    actions = _records(journal_dir, "order_action")
    assert not [a for a in actions if first["ts_ns"] <= a["ts_ns"] <= swept[-1]["ts_ns"]
                and a["action"] != "cancel" and (a["market"], a["side"]) in slots]
