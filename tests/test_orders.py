"""Tests for :func:`mmcore.orders.reconcile`: rules by example, then properties on a tiny simulator."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import InputError
from mmcore.orders import (
    Amend,
    Cancel,
    LiveOrder,
    OrderAction,
    Place,
    Quote,
    ReconcileParams,
    ReconcilePlan,
    reconcile,
)

M = "KXNBAGAME-26MAY25NYKCLE-NYK"
NOW = 10_000_000_000
SEC = 1_000_000_000


def order(oid: str, side: str = "bid", price: int = 5000, remaining: int = 1000, filled: int = 0,
          placed_ns: int = 0, market: str = M) -> LiveOrder:
    return LiveOrder(oid, None, market, side, price, remaining, filled, placed_ns)  # type: ignore[arg-type]


def apply(live: list[LiveOrder], actions: tuple[OrderAction, ...], now_ns: int) -> list[LiveOrder]:
    """What the exchange would hold after the actions (no fills, no rejects)."""
    book = {o.order_id: o for o in live if o.remaining > 0}
    for a in actions:
        if isinstance(a, Cancel):
            del book[a.order_id]
        elif isinstance(a, Amend):
            o = book[a.order_id]
            book[a.order_id] = replace(o, price=a.price, remaining=a.count - o.filled, placed_ns=now_ns)
        else:
            assert a.client_order_id not in book
            q = a.quote
            book[a.client_order_id] = LiveOrder(a.client_order_id, a.client_order_id, q.market,
                                                q.side, q.price, q.count, 0, now_ns)
    return list(book.values())


# --- rules by example -----------------------------------------------------------------------


def test_no_op_when_live_matches_desired():
    plan = reconcile([Quote(M, "bid", 5000, 1000)], [order("a")], NOW, id_seq=7)
    assert plan == ReconcilePlan((), (), 7, 0)


def test_sub_tick_risk_adding_change_is_suppressed():
    # Bid up by 50 units (< min_price_move 100) and size up by 20% (< 25%): not worth an amend.
    assert reconcile([Quote(M, "bid", 5050, 1200)], [order("a")], NOW).actions == ()


def test_big_move_amends_to_new_total():
    plan = reconcile([Quote(M, "bid", 5200, 1000)], [order("a")], NOW)
    assert plan.actions == (Amend("a", M, "bid", 5200, 1000),)
    assert plan.tokens == 10


def test_amend_count_on_partly_filled_order_is_filled_plus_desired():
    live = [order("a", remaining=700, filled=300)]
    plan = reconcile([Quote(M, "bid", 5300, 1000)], live, NOW)
    assert plan.actions == (Amend("a", M, "bid", 5300, 1300),)
    assert apply(live, plan.actions, NOW)[0].remaining == 1000


@pytest.mark.parametrize(
    "live, want",
    [
        (order("a", "bid", price=5010), Quote(M, "bid", 5000, 1000)),  # bid too high
        (order("a", "ask", price=4990), Quote(M, "ask", 5000, 1000)),  # ask too low
        (order("a", "bid", remaining=1010), Quote(M, "bid", 5000, 1000)),  # too big
    ],
)
def test_more_aggressive_live_order_is_pulled_back_at_once(live, want):
    params = ReconcileParams(min_rest_ns=60 * SEC)  # rested 0 ns, move < min_price_move
    plan = reconcile([want], [replace(live, placed_ns=NOW)], NOW, params)
    assert plan.actions == (Amend("a", M, want.side, want.price, want.count),)


def test_more_aggressive_desired_move_respects_min_rest():
    params = ReconcileParams(min_rest_ns=5 * SEC)
    live, want = [order("a", placed_ns=NOW - 4 * SEC)], [Quote(M, "bid", 5500, 1000)]
    assert reconcile(want, live, NOW, params).actions == ()
    assert reconcile(want, live, NOW + SEC, params).actions == (Amend("a", M, "bid", 5500, 1000),)


def test_extras_cancelled_keeping_the_closest():
    live = [order("far", price=4000), order("near", price=5100), order("dup", price=6000)]
    plan = reconcile([Quote(M, "bid", 5100, 1000)], live, NOW)
    assert plan.actions == (Cancel("dup", M, "bid", "extra order in slot"),
                            Cancel("far", M, "bid", "extra order in slot"))


def test_missing_or_empty_desired_cancels():
    live = [order("a"), order("b", side="ask", price=5200)]
    plan = reconcile([Quote(M, "ask", 5200, 0)], live, NOW)
    assert [a.order_id for a in plan.actions] == ["b", "a"]  # sorted by slot: ask < bid
    assert all(isinstance(a, Cancel) and a.reason == "no desired quote" for a in plan.actions)
    assert plan.tokens == 4


def test_new_slots_are_placed_with_sequential_ids():
    want = [Quote("B", "bid", 4000, 500), Quote("A", "ask", 6000, 500), Quote("A", "bid", 4000, 500)]
    plan = reconcile(want, [], NOW, id_prefix="g1", id_seq=41)
    assert [(a.slot, a.client_order_id) for a in plan.actions] == [
        (("A", "ask"), "g1-41"), (("A", "bid"), "g1-42"), (("B", "bid"), "g1-43")]
    assert plan.next_id_seq == 44 and plan.tokens == 30


def test_budget_short_sends_cancels_then_risk_reducing_moves():
    live = [order("stale", market="A"), order("risky", market="C", price=5500),
            order("lazy", market="B", price=4000)]
    want = [Quote("B", "bid", 5000, 1000), Quote("C", "bid", 5000, 1000), Quote("D", "bid", 5000, 100)]
    plan = reconcile(want, live, NOW, budget_tokens=15)
    assert plan.actions == (Cancel("stale", "A", "bid", "no desired quote"),
                            Amend("risky", "C", "bid", 5000, 1000))  # C before B: risk first
    assert plan.deferred == (Amend("lazy", "B", "bid", 5000, 1000),
                             Place(Quote("D", "bid", 5000, 100), "mm-0"))
    assert plan.tokens == 12 and plan.next_id_seq == 1
    tight = reconcile(want, live + [order("x", market="E")], NOW, budget_tokens=3)
    assert [type(a) for a in tight.actions] == [Cancel]
    assert isinstance(tight.deferred[0], Cancel) and len(tight.deferred) == 4


def test_prefer_amend_false_cancels_and_places():
    plan = reconcile([Quote(M, "bid", 5200, 1000)], [order("a")], NOW,
                     ReconcileParams(prefer_amend=False))
    assert plan.actions == (Cancel("a", M, "bid", "replace"), Place(Quote(M, "bid", 5200, 1000), "mm-0"))
    assert plan.tokens == 12


def test_two_desired_quotes_for_one_slot_is_an_input_error():
    with pytest.raises(InputError):
        reconcile([Quote(M, "bid", 5000, 100), Quote(M, "bid", 5100, 0)], [], NOW)


# --- properties -----------------------------------------------------------------------------

SLOTS = [(m, s) for m in ("A", "B", "C") for s in ("bid", "ask")]
prices = st.integers(40, 60).map(lambda c: c * 100)  # whole cents around 50c
subticks = st.integers(-2, 2).map(lambda k: k * 30)
counts = st.integers(-1, 20).map(lambda n: n * 50)


@st.composite
def scenarios(draw):
    desired = [Quote(m, s, draw(prices) + draw(subticks), draw(counts))
               for m, s in draw(st.lists(st.sampled_from(SLOTS), unique=True))]
    live = [LiveOrder(f"L{i}", None, m, s, draw(prices), draw(st.integers(1, 1000)),
                      draw(st.integers(0, 500)), draw(st.sampled_from([0, NOW - SEC, NOW])))
            for i, (m, s) in enumerate(draw(st.lists(st.sampled_from(SLOTS), max_size=8)))]
    params = ReconcileParams(min_price_move=draw(st.sampled_from([0, 100, 200])),
                             min_size_change_frac=draw(st.sampled_from([0.0, 0.25])),
                             min_rest_ns=draw(st.sampled_from([0, 2 * SEC])),
                             prefer_amend=draw(st.booleans()))
    return desired, live, params


@given(scenarios())
def test_plan_converges_and_is_idempotent(scenario):
    desired, live, params = scenario
    plan = reconcile(desired, live, NOW, params)
    after = apply(live, plan.actions, NOW)
    by_slot = {}
    for o in after:
        assert o.slot not in by_slot, "two orders in one slot"
        by_slot[o.slot] = o
    want = {q.slot: q for q in desired if q.count > 0}
    assert set(by_slot) == set(want)
    for a in plan.actions:
        if not isinstance(a, Cancel):
            o, q = by_slot[a.slot], want[a.slot]
            assert (o.price, o.remaining) == (q.price, q.count)
    assert reconcile(desired, after, NOW, params).actions == ()
    assert reconcile(desired[::-1], live[::-1], NOW, params) == plan  # input order is irrelevant


@given(scenarios(), st.integers(0, 80))
def test_order_tokens_and_budget(scenario, budget):
    desired, live, params = scenario
    full = reconcile(desired, live, NOW, params, id_seq=3)
    rank = [{Cancel: 0, Amend: 1, Place: 2}[type(a)] for a in full.actions]
    assert rank == sorted(rank)
    costs = {Cancel: params.cost_cancel, Amend: params.cost_amend, Place: params.cost_place}
    assert full.tokens == sum(costs[type(a)] for a in full.actions)
    assert full.next_id_seq == 3 + sum(isinstance(a, Place) for a in full.actions)
    part = reconcile(desired, live, NOW, params, budget_tokens=budget, id_seq=3)
    assert part.tokens <= budget and part.next_id_seq == full.next_id_seq
    assert sorted(map(repr, part.actions + part.deferred)) == sorted(map(repr, full.actions))
    if any(isinstance(a, Cancel) for a in part.deferred):
        assert all(isinstance(a, Cancel) for a in part.actions)
