"""Four sides on one inventory: gates, skew across markets, limits, parity — and properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mmcore.book import BookTop
from mmcore.fees import FeeSchedule
from mmcore.game import GameSpec
from mmcore.orders import LiveOrder
from mmcore.quoting.hjb import HjbParams
from mmcore.quoting.quotes import GameState, QuoteParams, desired_quotes
from mmcore.risk.exposure import (
    GamePosition,
    exposure_vector_bounds,
    parity_violation,
    worst_case,
)
from mmcore.risk.limits import GameLimit
from mmcore.ticks import TickGrid
from mmcore.units import CENT, CONTRACT

S = 1_000_000_000
NOW = 1_900_000_000 * S
GRID = TickGrid.linear_cent()
HJB = HjbParams(gamma_per_dollar=0.002, sigma_logit_per_sqrt_s=0.0005, a_per_s=0.05,
                k_per_dollar=100, q_max_contracts=200)
PARAMS = QuoteParams(hjb=HJB)
LIMIT = GameLimit(hard_contracts=200 * CONTRACT, soft_contracts=100 * CONTRACT, max_loss_money=200 * 10_000)


def game(n=2, fee="quadratic_with_maker_fees"):
    markets = ("G-AAA", "G-BBB", "G-TIE")[:n]
    return GameSpec("G", "basketball_nba", markets, (GRID,) * n, FeeSchedule.from_series(fee), NOW + 3600 * S)


def tops(*pairs):
    return {m: BookTop(b, 500, a, 500) for m, (b, a) in zip(("G-AAA", "G-BBB", "G-TIE"), pairs)}


def by_slot(dq):
    return {(q.market, q.side): q for q in dq.quotes}


def test_flat_competitive_book_quotes_four_sides():
    dq = desired_quotes(game(), tops((5700, 6300), (3700, 4300)), (0.6, 0.4), GameState(), LIMIT, PARAMS, NOW)
    q = by_slot(dq)
    assert set(q) == {("G-AAA", "bid"), ("G-AAA", "ask"), ("G-BBB", "bid"), ("G-BBB", "ask")}
    assert q["G-AAA", "bid"].price < 6000 < q["G-AAA", "ask"].price
    assert q["G-BBB", "bid"].price < 4000 < q["G-BBB", "ask"].price
    assert all(x.count == PARAMS.clip for x in dq.quotes)


def test_toxicity_size_scale_shrinks_adding_sides_only_never_below_min():
    long_a = GameState(positions={"G-AAA": 20 * CONTRACT}, cash=-20 * 6000, avg_cost={"G-AAA": 6000})
    scale = {("G-AAA", "bid"): 0.5, ("G-AAA", "ask"): 0.5, ("G-BBB", "ask"): 0.01}
    plain = by_slot(desired_quotes(game(), {}, (0.6, 0.4), long_a, LIMIT, PARAMS, NOW))
    dq = desired_quotes(game(), {}, (0.6, 0.4), long_a, LIMIT, PARAMS, NOW, size_scale=scale)
    q = by_slot(dq)
    assert q.keys() == plain.keys()  # same sides, same prices: only sizes change
    assert all(q[s].price == plain[s].price for s in q)
    assert q["G-AAA", "bid"].count == plain["G-AAA", "bid"].count // 2  # adds: halved
    assert q["G-AAA", "ask"].count == plain["G-AAA", "ask"].count  # reduces the long: untouched
    assert q["G-BBB", "ask"].count == PARAMS.min_size  # adds (short B = long A): floored, not dropped
    assert q["G-BBB", "bid"].count == plain["G-BBB", "bid"].count
    assert any("markouts ×0.50" in n for n in dq.notes)


def test_one_inventory_skews_both_markets_opposite_ways():
    flat = by_slot(desired_quotes(game(), {}, (0.6, 0.4), GameState(), LIMIT, PARAMS, NOW))
    long_a = GameState(positions={"G-AAA": 80 * CONTRACT}, cash=-80 * 6000, avg_cost={"G-AAA": 6000})
    dq = desired_quotes(game(), {}, (0.6, 0.4), long_a, LIMIT, PARAMS, NOW)
    skew = by_slot(dq)
    assert dq.inventory == (80 * CONTRACT, -80 * CONTRACT)
    # long A: A quotes move down (sell A more eagerly), B quotes move up (buy B more eagerly)
    assert skew["G-AAA", "ask"].price <= flat["G-AAA", "ask"].price
    assert skew["G-BBB", "bid"].price >= flat["G-BBB", "bid"].price
    # the same exposure held as NO on B gives the same quotes
    short_b = GameState(positions={"G-BBB": -80 * CONTRACT}, cash=-80 * 6000)
    assert by_slot(desired_quotes(game(), {}, (0.6, 0.4), short_b, LIMIT, PARAMS, NOW)).keys() == skew.keys()


def test_gates():
    g = game()
    assert desired_quotes(g, {}, (0.6, 0.4), GameState(), LIMIT, PARAMS, NOW, trading="HALTED").quotes == ()
    late = desired_quotes(g, {}, (0.6, 0.4), GameState(), LIMIT, PARAMS, g.start_ns - 30 * S)
    assert late.quotes == () and "game starts" in late.notes[-1]
    assert desired_quotes(g, {}, None, GameState(), LIMIT, PARAMS, NOW).quotes == ()
    stale = desired_quotes(g, {}, (0.6, 0.4), GameState(), LIMIT, PARAMS, NOW, stale=frozenset({"G-AAA"}))
    assert {q.market for q in stale.quotes} == {"G-BBB"}
    long_a = GameState(positions={"G-AAA": 50 * CONTRACT}, cash=-50 * 6000)
    red = desired_quotes(g, {}, (0.6, 0.4), long_a, LIMIT, PARAMS, NOW, trading="REDUCING")
    assert {q.slot for q in red.quotes} == {("G-AAA", "ask"), ("G-BBB", "bid")}


def test_at_the_hard_limit_adding_sides_vanish():
    at_limit = GameState(positions={"G-AAA": 200 * CONTRACT}, cash=-200 * 5000)
    dq = desired_quotes(game(), {}, (0.6, 0.4), at_limit, LIMIT, PARAMS, NOW)
    assert {q.slot for q in dq.quotes} <= {("G-AAA", "ask"), ("G-BBB", "bid")}
    assert dq.quotes  # the reducing sides remain


def test_parity_guard_never_locks_a_loss():
    # books that disagree: theos sum to 1.10 → raw bids would sum above $1
    dq = desired_quotes(game(), {}, (0.62, 0.48), GameState(), LIMIT, PARAMS, NOW)
    bids = [q.price for q in dq.quotes if q.side == "bid"]
    assert len(bids) == 2 and sum(bids) < 10_000
    assert any(n.startswith("parity") for n in dq.notes)


def test_three_way_soccer_quotes_each_outcome():
    g = game(3)
    dq = desired_quotes(g, {}, (0.45, 0.28, 0.27), GameState(), LIMIT, PARAMS, NOW)
    assert {q.market for q in dq.quotes} == set(g.markets)
    assert parity_violation([q.price for q in dq.quotes if q.side == "bid"], [None] * 3) is None


cents = st.integers(2, 98)


@given(
    theo_a=st.floats(0.05, 0.95), pos_a=st.integers(-250, 250), pos_b=st.integers(-250, 250),
    bid_a=st.one_of(st.none(), cents), bid_b=st.one_of(st.none(), cents), spread=st.integers(1, 8),
    resting=st.lists(st.tuples(st.sampled_from(["G-AAA", "G-BBB"]), st.sampled_from(["bid", "ask"]),
                               cents, st.integers(1, 60)), max_size=3, unique_by=lambda t: (t[0], t[1])),
)
def test_desired_quotes_invariants(theo_a, pos_a, pos_b, bid_a, bid_b, spread, resting):
    g = game()
    t = {}
    for m, b in (("G-AAA", bid_a), ("G-BBB", bid_b)):
        if b is not None:
            t[m] = BookTop(b * CENT, 100, min(99, b + spread) * CENT if b + spread <= 99 else None, 100)
    live = tuple(LiveOrder(f"o{i}", None, m, s, p * CENT, n * CONTRACT, 0, 0)
                 for i, (m, s, p, n) in enumerate(resting))
    positions = {"G-AAA": pos_a * CONTRACT, "G-BBB": pos_b * CONTRACT}
    state = GameState(positions=positions, cash=-(pos_a * 5000 + pos_b * 5000), resting=live)
    dq = desired_quotes(g, t, (theo_a, 1 - theo_a), state, LIMIT, PARAMS, NOW)
    q = by_slot(dq)
    for m in g.markets:
        bid, ask = q.get((m, "bid")), q.get((m, "ask"))
        if bid and ask:
            assert bid.price < ask.price
        top = t.get(m)
        if top and bid and top.ask is not None:
            assert bid.price < top.ask
        if top and ask and top.bid is not None:
            assert ask.price > top.bid
    for x in dq.quotes:
        assert GRID.is_valid(x.price) and x.count > 0
    assert parity_violation([q[m, "bid"].price if (m, "bid") in q else None for m in g.markets],
                            [q[m, "ask"].price if (m, "ask") in q else None for m in g.markets]) is None
    # hard limit: with every new quote (and the live orders it does not replace) filling at once,
    # exposure may not move further past the bound than it already is
    kept = [o for o in live if o.slot not in q]
    lo, hi = exposure_vector_bounds(g.book, positions, kept + list(dq.quotes))
    lo0, hi0 = exposure_vector_bounds(g.book, positions, kept)
    for i in range(2):
        assert hi[i] <= max(LIMIT.hard_contracts, hi0[i])
        assert lo[i] >= min(-LIMIT.hard_contracts, lo0[i])
    base = worst_case(g.book, GamePosition(positions, state.cash), kept)
    after = worst_case(g.book, GamePosition(positions, state.cash), kept + list(dq.quotes))
    assert after.worst_loss <= max(LIMIT.max_loss_money, base.worst_loss)
