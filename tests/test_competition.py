"""Competitive quoting rules R1–R7 + hysteresis, against TV9 and as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.book import BookTop
from mmcore.fees import FeeSchedule
from mmcore.orders import LiveOrder
from mmcore.quoting.competition import CompetitionParams, MarketInputs, quote_market
from mmcore.ticks import TickGrid
from mmcore.units import CENT, CONTRACT
from tests.refvectors import quoting_vectors

GRID = TickGrid.linear_cent()
NO_MAKER = FeeSchedule.from_series("quadratic")
MAKER = FeeSchedule.from_series("quadratic_with_maker_fees")


def inputs_from_tv9(i: dict) -> MarketInputs:
    c = lambda x: None if x is None else int(round(x * CENT))  # noqa: E731
    return MarketInputs(
        theo=i["theo"] * CENT,
        reservation=i["r"] * CENT,
        half_bid=i["half_b"] * CENT,
        half_ask=i["half_a"] * CENT,
        e_min=i["e_min"] * CENT,
        q=i["q"] * CONTRACT,
        q_soft=i["Q_soft"] * CONTRACT,
        q_hard=i["Q"] * CONTRACT,
        clip=i["clip"] * CONTRACT,
        avg_cost=None if i.get("avg_cost") is None else i["avg_cost"] * CENT,
        top=BookTop(c(i["best_bid"]), 100, c(i["best_ask"]), 100),
    )


@pytest.mark.parametrize("schedule", [NO_MAKER, MAKER], ids=["no-maker-fee", "maker-fee"])
def test_tv9_rule_table(schedule):
    cases = quoting_vectors()["TV9_quote_rules"]
    assert len(cases) >= 10
    for case in cases:
        inp = inputs_from_tv9(case["inputs"])
        params = CompetitionParams(improve_ticks=1 if case["inputs"].get("improve") else 0)
        got = quote_market(inp, GRID, schedule, params)
        want_bid = None if case["bid"] is None else case["bid"] * CENT
        want_ask = None if case["ask"] is None else case["ask"] * CENT
        assert (got.bid, got.ask) == (want_bid, want_ask), (case["case"], got.notes)


def base(**kw) -> MarketInputs:
    d = dict(theo=6000.0, reservation=6000.0, half_bid=220.0, half_ask=220.0, e_min=150.0, q=0,
             q_soft=5000, q_hard=10000, clip=1000, avg_cost=None, top=BookTop(5700, 100, 6300, 100))
    d.update(kw)
    return MarketInputs(**d)


def live(side, price, placed_ns=0):
    return LiveOrder("o", None, "M", side, price, 1000, 0, placed_ns)


def test_hysteresis_holds_small_retreat_but_not_past_limit():
    params = CompetitionParams(hysteresis_ticks=1)
    inp = base(top=BookTop(5600, 100, 6400, 100))  # target bid 5600 (top), cap 5700
    held = quote_market(inp, GRID, NO_MAKER, params, live_bid=live("bid", 5700), now_ns=10**12)
    assert held.bid == 5700 and any(n.startswith("H bid stays") for n in held.notes)
    # a resting bid past the cap (e.g. theo moved down) always retreats
    moved = quote_market(base(theo=5800.0, reservation=5800.0, top=BookTop(5600, 100, 6400, 100)),
                         GRID, NO_MAKER, params, live_bid=live("bid", 5700), now_ns=10**12)
    assert moved.bid == 5500  # cap is now ⌊58 − 2.2⌋ = 55


def test_min_rest_delays_more_aggressive_moves_only():
    params = CompetitionParams(min_rest_ns=5 * 10**9)
    inp = base(top=BookTop(5700, 100, 6300, 100))  # target joins 5700
    young = quote_market(inp, GRID, NO_MAKER, params, live_bid=live("bid", 5500, placed_ns=0), now_ns=10**9)
    assert young.bid == 5500
    old = quote_market(inp, GRID, NO_MAKER, params, live_bid=live("bid", 5500, placed_ns=0), now_ns=6 * 10**9)
    assert old.bid == 5700


def test_alone_at_top_sits_one_step_above_next_competitor_when_improving():
    params = CompetitionParams(improve_ticks=1)
    got = quote_market(base(top=BookTop(5300, 100, 6700, 100)), GRID, NO_MAKER, params)
    assert (got.bid, got.ask) == (5400, 6600)


def test_empty_book_quotes_cap_and_floor():
    got = quote_market(base(top=BookTop.empty()), GRID, NO_MAKER)
    assert (got.bid, got.ask) == (5700, 6300)


price_c = st.integers(1, 99)


@given(
    theo=st.floats(3, 97), skew=st.floats(-10, 10), half=st.floats(0.5, 6), e_min=st.floats(0, 3),
    q=st.integers(-120, 120), bid=st.one_of(st.none(), price_c), spread=st.integers(1, 20),
    improve=st.booleans(), avg=st.one_of(st.none(), st.floats(2, 98)),
)
def test_quote_properties(theo, skew, half, e_min, q, bid, spread, improve, avg):
    ask = None if bid is None else bid + spread
    if ask is not None and ask > 99:
        ask = None
    inp = MarketInputs(
        theo=theo * CENT, reservation=(theo + skew) * CENT, half_bid=half * CENT, half_ask=half * CENT,
        e_min=e_min * CENT, q=q * CONTRACT, q_soft=50 * CONTRACT, q_hard=100 * CONTRACT,
        clip=10 * CONTRACT, avg_cost=None if avg is None else avg * CENT,
        top=BookTop(None if bid is None else bid * CENT, 100, None if ask is None else ask * CENT, 100),
    )
    got = quote_market(inp, GRID, MAKER, CompetitionParams(improve_ticks=int(improve)))
    for p in (got.bid, got.ask):
        assert p is None or GRID.is_valid(p)
    if got.bid is not None and got.ask is not None:
        assert got.bid < got.ask
    if got.bid is not None and inp.top.ask is not None:
        assert got.bid < inp.top.ask  # never crosses: post-only safe
    if got.ask is not None and inp.top.bid is not None:
        assert got.ask > inp.top.bid
    if got.bid is not None:
        assert inp.q + inp.clip <= inp.q_hard
        if not inp.q < -inp.q_soft:  # without R3 the bid never pays through theo − e_min
            assert got.bid <= inp.theo - inp.e_min + 1e-6
    if got.ask is not None:
        assert inp.q - inp.clip >= -inp.q_hard
        if not inp.q > inp.q_soft:
            assert got.ask >= inp.theo + inp.e_min - 1e-6


@given(q1=st.integers(0, 49), dq=st.integers(1, 40), theo=st.floats(20, 80))
def test_skew_moves_quotes_down_as_long_inventory_grows(q1, dq, theo):
    def q_at(q, skew_per_contract=0.2):
        inp = base(theo=theo * CENT, reservation=(theo - skew_per_contract * q) * CENT, q=q * CONTRACT,
                   top=BookTop.empty())
        return quote_market(inp, GRID, NO_MAKER)
    a, b = q_at(q1), q_at(q1 + dq)
    if a.bid is not None and b.bid is not None:
        assert b.bid <= a.bid
    if a.ask is not None and b.ask is not None:
        assert b.ask <= a.ask
