"""The risk gate: typed refusals, kill-switch states, collars, duplicates and hard limits."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mmcore.fees import FeeSchedule
from mmcore.game import GameSpec
from mmcore.orders import Amend, Cancel, LiveOrder, Place, Quote
from mmcore.risk.exposure import exposure_vector_bounds
from mmcore.risk.gate import GateConfig, GateState, RecentPlace, check
from mmcore.risk.killswitch import KillSwitch, Trigger, trip
from mmcore.risk.limits import GameLimit
from mmcore.ticks import TickGrid
from mmcore.units import CONTRACT

S = 1_000_000_000
NOW = 1_900_000_000 * S
GAME = GameSpec("G", "basketball_nba", ("G-A", "G-B"), (TickGrid.linear_cent(),) * 2,
                FeeSchedule.from_series("quadratic"), NOW + 3600 * S)
LIMIT = GameLimit(100 * CONTRACT, 50 * CONTRACT, 100 * 10_000)
ACTIVE = KillSwitch.start(NOW)


def state(**kw):
    d = dict(game=GAME, killswitch=ACTIVE, limit=LIMIT, theo=(0.6, 0.4))
    d.update(kw)
    return GateState(**d)


def place(market, side, price, n, cid="c1"):
    return Place(Quote(market, side, price, n * CONTRACT), cid)


def reasons(result):
    return [r.reason for r in result.refused]


def test_plain_quotes_pass():
    res = check(state(), [place("G-A", "bid", 5800, 10), place("G-A", "ask", 6200, 10, "c2")], NOW)
    assert len(res.approved) == 2 and not res.refused


def test_halted_allows_only_cancels():
    halted = trip(ACTIVE, Trigger.MANUAL, NOW, "operator")
    res = check(state(killswitch=halted),
                [Cancel("o1", "G-A", "bid"), place("G-A", "bid", 5800, 10)], NOW)
    assert [type(a) for a in res.approved] == [Cancel]
    assert len(res.refused) == 1


def test_reducing_allows_only_reducing_orders():
    reducing = trip(ACTIVE, Trigger.JUMP, NOW, "jump")
    assert reducing.state == "REDUCING"
    st_ = state(killswitch=reducing, positions={"G-A": 20 * CONTRACT}, cash=-20 * 6000)
    res = check(st_, [place("G-A", "ask", 6200, 10), place("G-A", "bid", 5800, 10, "c2"),
                      place("G-B", "bid", 3800, 10, "c3")], NOW)
    assert {(a.quote.market, a.quote.side) for a in res.approved} == {("G-A", "ask"), ("G-B", "bid")}


def test_fat_finger_tick_size_and_theo():
    res = check(state(), [place("G-A", "bid", 7500, 10), place("G-A", "bid", 5850, 10, "c2"),
                          place("G-A", "bid", 5800, 500, "c3")], NOW)
    r = reasons(res)
    assert "past theo" in r[0] and "tick grid" in r[1] and "size" in r[2]
    assert "no theo" in reasons(check(state(theo=None), [place("G-A", "bid", 5800, 10)], NOW))[0]


def test_collar_bounds_aggressiveness_never_a_passive_price():
    """Theo 0.60 on G-A: an ask 11¢ under theo and a bid 11¢ over are fat fingers; a bid 15¢
    under or an ask 30¢ over only sit far from the action (refusing them left bigger, worse
    orders resting: issue 10 item 9)."""
    res = check(state(), [place("G-A", "ask", 4900, 10), place("G-A", "bid", 7100, 10, "c2"),
                          place("G-A", "bid", 4500, 10, "c3"), place("G-A", "ask", 9000, 10, "c4")], NOW)
    assert [(a.quote.side, a.quote.price) for a in res.approved] == [("bid", 4500), ("ask", 9000)]
    assert all("past theo" in r for r in reasons(res))


def test_duplicates_refused_within_window():
    recent = (RecentPlace(NOW - 100_000_000, "G-A", "bid", 5800, 10 * CONTRACT),)
    assert "duplicate" in reasons(check(state(recent_places=recent), [place("G-A", "bid", 5800, 10)], NOW))[0]
    later = NOW + GateConfig().duplicate_window_ns
    assert not check(state(recent_places=recent), [place("G-A", "bid", 5800, 10)], later).refused
    # two identical places in one batch: the second is a duplicate
    res = check(state(), [place("G-A", "bid", 5800, 10), place("G-A", "bid", 5800, 10, "c2")], NOW)
    assert len(res.approved) == 1 and "duplicate" in reasons(res)[0]


def test_batch_counts_earlier_approvals_and_resting_against_limit():
    resting = (LiveOrder("o1", None, "G-A", "bid", 5700, 60 * CONTRACT, 0, NOW),)
    # bid on A and ask on B both add to q_E: 60 resting + 30 + 30 > 100
    res = check(state(resting=resting), [place("G-A", "bid", 5800, 30), place("G-B", "ask", 4200, 30, "c2")], NOW)
    assert len(res.approved) == 1 and "breach" in reasons(res)[0]
    # cancelling the resting order in the same batch frees the room
    res = check(state(resting=resting), [Cancel("o1", "G-A", "bid"), place("G-A", "bid", 5800, 30),
                                         place("G-B", "ask", 4200, 30, "c2")], NOW)
    assert not res.refused


def test_amend_uses_remaining_and_replaces_old():
    live = LiveOrder("o1", None, "G-A", "bid", 5700, 50 * CONTRACT, 40 * CONTRACT, NOW)
    ok = check(state(resting=(live,)), [Amend("o1", "G-A", "bid", 5800, 100 * CONTRACT)], NOW)
    assert ok.approved  # 60 remaining, old 50 replaced
    bad = check(state(resting=(live,)), [Amend("o1", "G-A", "bid", 5800, 150 * CONTRACT)], NOW)
    assert "breach" in reasons(bad)[0]
    assert "unknown order" in reasons(check(state(), [Amend("zz", "G-A", "bid", 5800, 100)], NOW))[0]


@given(st.lists(st.tuples(st.sampled_from(["G-A", "G-B"]), st.sampled_from(["bid", "ask"]),
                          st.integers(5500, 6500), st.integers(1, 80)), max_size=12))
def test_approved_batch_never_breaches_hard_limit(orders):
    acts = [place(m, s, (p // 100) * 100 if m == "G-A" else 10_000 - (p // 100) * 100, n, f"c{i}")
            for i, (m, s, p, n) in enumerate(orders)]
    res = check(state(), acts, NOW)
    lo, hi = exposure_vector_bounds(GAME.book, {}, [a.quote for a in res.approved])
    assert max(hi) <= LIMIT.hard_contracts and min(lo) >= -LIMIT.hard_contracts
