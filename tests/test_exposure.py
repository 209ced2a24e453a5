"""Game exposure: TV13 (quoting-math.md §3.6), settlement P&L, worst cases, 3-way soccer, parity."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import InputError
from mmcore.orders import LiveOrder, Quote
from mmcore.risk.exposure import (
    GameBook,
    GamePosition,
    exposure_vector_bounds,
    net_exposure,
    order_pnl,
    outcome_pnl,
    parity_violation,
    signed_inventory,
    synthetic_book,
    worst_case,
    worst_case_inventory,
)
from mmcore.units import CENT, CONTRACT, PRICE_ONE
from tests.refvectors import quoting_vectors

GAME = GameBook(("A", "B"))
SOCCER = GameBook(("HOME", "AWAY", "TIE"))
USD = PRICE_ONE


def live(market: str, side: str, price_cents: int, contracts: int) -> LiveOrder:
    return LiveOrder(f"{market}-{side}", None, market, side, price_cents * CENT,  # type: ignore[arg-type]
                     contracts * CONTRACT, 0, 0)


# --- TV13 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tv13() -> dict[str, Any]:
    raw = quoting_vectors()
    return raw["TV13_event_mapping"]


def test_tv13_reproduced(tv13: dict[str, Any]) -> None:
    a = (tv13["bookA"]["yes_bid"] * CENT, tv13["bookA"]["yes_ask"] * CENT)
    b = (tv13["bookB"]["yes_bid"] * CENT, tv13["bookB"]["yes_ask"] * CENT)
    assert synthetic_book(a, b) == tuple(c * CENT for c in tv13["synthetic_A_wins_book"])
    assert a[0] + b[0] == tv13["parity_sum_of_bids"] * CENT
    assert a[1] + b[1] == tv13["parity_sum_of_asks"] * CENT
    assert parity_violation([a[0], b[0]], [a[1], b[1]]) is None

    positions = {"A": tv13["posA"] * CONTRACT, "B": tv13["posB"] * CONTRACT}
    assert signed_inventory(GAME, positions) == tv13["q_event"] * CONTRACT
    payoff = outcome_pnl(GAME, GamePosition(positions, cash=0))
    assert payoff == (tv13["payoff_if_A_wins_dollars"] * USD, tv13["payoff_if_B_wins_dollars"] * USD)
    assert payoff[0] - payoff[1] == tv13["payoff_difference"] * USD
    assert net_exposure(GAME, positions) == (30 * CONTRACT, 10 * CONTRACT)

    resting = [live(m, s, p, n) for m, s, p, n in tv13["resting"]]
    hi, lo = worst_case_inventory(GAME, positions, resting)
    assert hi == tv13["worst_case_q_if_all_adding_fill"] * CONTRACT
    assert lo == tv13["worst_case_q_if_all_reducing_fill"] * CONTRACT
    mins, maxs = exposure_vector_bounds(GAME, positions, resting)
    assert (mins[0], maxs[0]) == (lo, hi)
    assert (mins[1], maxs[1]) == (-hi, -lo)


def test_a_bid_and_b_ask_count_against_the_same_direction() -> None:
    pos = {"A": 20 * CONTRACT}
    both = [live("A", "bid", 56, 10), live("B", "ask", 45, 10)]
    assert worst_case_inventory(GAME, pos, both) == (40 * CONTRACT, 20 * CONTRACT)
    # Both lose money if B wins: 10×56¢ paid for A, 10×(100−45)¢ lost on the sold B.
    wc = worst_case(GAME, GamePosition(pos, cash=-20 * 50 * CENT), both)
    assert wc.pnl_by_outcome[1] == -10 * USD - 560 * CENT - 550 * CENT
    assert wc.worst_outcome == 1 and wc.worst_loss == -wc.worst_pnl
    # A candidate on the same side is counted too.
    cand = Quote("A", "bid", 55 * CENT, 5 * CONTRACT)
    assert worst_case_inventory(GAME, pos, both, cand)[0] == 45 * CONTRACT
    assert worst_case(GAME, GamePosition(pos, -10 * USD), both, cand).pnl_by_outcome[1] == (
        wc.pnl_by_outcome[1] - 275 * CENT
    )


# --- settlement P&L ---------------------------------------------------------------------------


def test_yes_bought_at_60_pays_40_or_loses_60() -> None:
    pos = GamePosition({"A": CONTRACT}, cash=-60 * CENT)
    assert outcome_pnl(GAME, pos) == (40 * CENT, -60 * CENT)
    assert order_pnl(GAME, "A", "bid", 60 * CENT, CONTRACT) == (40 * CENT, -60 * CENT)


def test_no_is_symmetric() -> None:
    # Sell YES A at 60 (≡ buy NO A at 40): lose 40 if A wins, gain 60 if B wins.
    pos = GamePosition({"A": -CONTRACT}, cash=60 * CENT)
    assert outcome_pnl(GAME, pos) == (-40 * CENT, 60 * CENT)
    assert order_pnl(GAME, "A", "ask", 60 * CENT, CONTRACT) == (-40 * CENT, 60 * CENT)
    # NO on A pays when A loses; net exposure in payout contracts.
    assert net_exposure(GAME, {"A": -CONTRACT}) == (0, CONTRACT)


def test_order_pnl_fees_and_conservative_rounding() -> None:
    assert order_pnl(GAME, "B", "bid", 30 * CENT, 2 * CONTRACT, fees=70) == (
        -60 * CENT - 70, 140 * CENT - 70
    )
    # 0.01 contract at 0.33¢ costs 0.0033¢ → floored towards the loss.
    assert order_pnl(GAME, "A", "bid", 33, 1) == ((PRICE_ONE - 33) // CONTRACT, -1)


def test_three_way_soccer() -> None:
    # Long 10 HOME at 45¢, short 5 TIE at 28¢ (≡ long 5 NO on TIE at 72¢).
    positions = {"HOME": 10 * CONTRACT, "TIE": -5 * CONTRACT}
    pos = GamePosition(positions, cash=-10 * 45 * CENT + 5 * 28 * CENT)
    assert outcome_pnl(SOCCER, pos) == (
        10 * 55 * CENT + 5 * 28 * CENT,  # home: +5.50 + 1.40
        -10 * 45 * CENT + 5 * 28 * CENT,  # away: −4.50 + 1.40
        -10 * 45 * CENT - 5 * 72 * CENT,  # tie:  −4.50 − 3.60
    )
    assert net_exposure(SOCCER, positions) == (15 * CONTRACT, 5 * CONTRACT, 0)
    with pytest.raises(InputError):
        signed_inventory(SOCCER, positions)
    # d_o = payoff_o − mean(others): home 15 − 2.5, away 5 − 7.5, tie 0 − 10.
    mins, maxs = exposure_vector_bounds(SOCCER, positions, [])
    assert mins == (1250, -250, -1000) and maxs == mins
    # A resting bid on AWAY can only push AWAY up and the others down.
    mins, maxs = exposure_vector_bounds(SOCCER, positions, [live("AWAY", "bid", 30, 4)])
    assert maxs == (1250, -250 + 400, -1000) and mins == (1250 - 200, -250, -1000 - 200)
    wc = worst_case(SOCCER, pos, [live("AWAY", "bid", 30, 4)])
    assert wc.worst_outcome == 2 and wc.worst_pnl == -810 * CENT - 120 * CENT


def test_unknown_market_is_refused() -> None:
    with pytest.raises(InputError):
        outcome_pnl(GAME, GamePosition({"C": 1}, 0))
    with pytest.raises(InputError):
        worst_case(GAME, GamePosition({}, 0), [live("C", "bid", 50, 1)])
    with pytest.raises(InputError):
        GameBook(("A",))
    with pytest.raises(InputError):
        GameBook(("A", "A"))


# --- synthetic book and parity ----------------------------------------------------------------


def test_synthetic_book_with_missing_sides() -> None:
    assert synthetic_book((None, None), (41 * CENT, None)) == (None, 59 * CENT)
    assert synthetic_book((None, 62 * CENT), (None, 44 * CENT)) == (56 * CENT, 62 * CENT)
    assert synthetic_book((None, None), (None, None)) == (None, None)


def test_parity_violation() -> None:
    assert parity_violation([57 * CENT, 44 * CENT], [60 * CENT, 47 * CENT]) == 1 * CENT
    assert parity_violation([50 * CENT, 50 * CENT], [51 * CENT, 51 * CENT]) is None
    assert parity_violation([50 * CENT, 50 * CENT], [51 * CENT, 51 * CENT], fees=2 * CENT) == 2 * CENT
    assert parity_violation([None, None], [49 * CENT, 48 * CENT]) == 3 * CENT
    assert parity_violation([None, None], [49 * CENT, None]) is None  # one ask alone locks nothing
    # Soccer: bids on two of three outcomes can already lock a loss.
    assert parity_violation([60 * CENT, 45 * CENT, None], [None] * 3) == 5 * CENT
    assert parity_violation([30 * CENT] * 3, [32 * CENT] * 3) == 4 * CENT


# --- properties -------------------------------------------------------------------------------

orders_st = st.lists(
    st.tuples(st.sampled_from(SOCCER.markets), st.sampled_from(("bid", "ask")),
              st.integers(1, 99), st.integers(0, 20)),
    max_size=6,
)


@given(orders_st, st.lists(st.booleans(), min_size=6, max_size=6),
       st.dictionaries(st.sampled_from(SOCCER.markets), st.integers(-3000, 3000)))
def test_bounds_contain_every_subset_of_fills(orders, mask, positions) -> None:
    resting = [live(*o) for o in orders]
    pos = GamePosition(positions, cash=0)
    wc = worst_case(SOCCER, pos, resting)
    mins, maxs = exposure_vector_bounds(SOCCER, positions, resting)
    filled = dict(positions)
    cash = 0
    for o, take in zip(resting, mask):
        if take:
            filled[o.market] = filled.get(o.market, 0) + (o.remaining if o.side == "bid" else -o.remaining)
            cash += o.price * o.remaining // CONTRACT * (-1 if o.side == "bid" else 1)
    pnl = outcome_pnl(SOCCER, GamePosition(filled, cash))
    assert all(p >= w for p, w in zip(pnl, wc.pnl_by_outcome))
    after = exposure_vector_bounds(SOCCER, filled, [])
    assert all(lo <= d <= hi for lo, d, hi in zip(mins, after[0], maxs))


# --- ties and voids (issue 10 item 8) ---------------------------------------------------------

DRAWABLE = GameBook(("A", "B"), ((0, 0),))
"""A 2-way soccer listing: a draw settles both markets NO."""
VOIDABLE = GameBook(("A", "B"), ((5000, 5000),))
"""A cancelled game settles each market at $0.50."""


def test_both_yes_is_not_riskless_when_neither_can_win() -> None:
    # Long 10 YES A + 10 YES B bought at 0.48 each: riskless in a plain game, −$9.60 in a draw.
    pos = GamePosition({"A": 10 * CONTRACT, "B": 10 * CONTRACT}, cash=-2 * 10 * 4800)
    assert worst_case(GAME, pos, []).worst_pnl == 10 * USD - 9 * USD - 6000  # +$0.40 either way
    wc = worst_case(DRAWABLE, pos, [])
    assert wc.pnl_by_outcome == (4000, 4000, -96_000)
    assert (wc.worst_loss, wc.worst_outcome) == (96_000, 2)
    # A void at $0.50 pays $10 on the 20 contracts: the same +$0.40.
    assert outcome_pnl(VOIDABLE, pos) == (4000, 4000, 4000)


def test_directional_exposure_counts_the_draw() -> None:
    from mmcore.game import directional_inventory

    both = {"A": 10 * CONTRACT, "B": 10 * CONTRACT}
    assert directional_inventory(GAME, both) == (0, 0)
    # d_o = payoff_o − mean of the others: (10 − 5, 10 − 5, 0 − 10) contracts.
    assert directional_inventory(DRAWABLE, both) == (5 * CONTRACT, 5 * CONTRACT, -10 * CONTRACT)
    assert directional_inventory(VOIDABLE, both) == (0, 0, 0)
    mins, maxs = exposure_vector_bounds(DRAWABLE, {}, [live("A", "bid", 48, 10), live("B", "bid", 48, 10)])
    assert mins[2] == -10 * CONTRACT and maxs[:2] == (10 * CONTRACT, 10 * CONTRACT)
    with pytest.raises(InputError, match="two-outcome"):
        signed_inventory(DRAWABLE, both)  # q_E = pos_A − pos_B no longer says it all


def test_order_pnl_settles_at_the_extra_outcomes_values() -> None:
    assert order_pnl(DRAWABLE, "A", "bid", 48 * CENT, 10 * CONTRACT) == (52_000, -48_000, -48_000)
    assert order_pnl(DRAWABLE, "B", "ask", 48 * CENT, 10 * CONTRACT) == (48_000, -52_000, 48_000)
    assert order_pnl(VOIDABLE, "A", "bid", 48 * CENT, 10 * CONTRACT) == (52_000, -48_000, 2_000)
    assert net_exposure(DRAWABLE, {"A": 10 * CONTRACT, "B": -4 * CONTRACT}) == (
        14 * CONTRACT, 0, 4 * CONTRACT)


def test_cap_size_keeps_the_draw_loss_inside_max_loss() -> None:
    from mmcore.risk.limits import GameLimit, cap_size

    limit = GameLimit(hard_contracts=500 * CONTRACT, soft_contracts=250 * CONTRACT, max_loss_money=5 * USD)
    pos = GamePosition({"A": 8 * CONTRACT}, cash=-8 * 4800)  # $3.84 lost in a draw already
    bid_b = Quote("B", "bid", 48 * CENT, 10 * CONTRACT)
    assert cap_size(GAME, pos, [], bid_b, limit) == (10 * CONTRACT, None)  # today's view: riskless
    count, why = cap_size(DRAWABLE, pos, [], bid_b, limit)
    assert count == 2 * CONTRACT  # 2 × 0.48 = $0.96 more: $4.80 ≤ $5; 3 would be $5.28
    assert why is not None and "none of the markets wins" in why


def test_extra_outcomes_from_rules() -> None:
    from mmcore.game import extra_outcomes_from_rules

    two = ["E-A", "E-B"]
    assert extra_outcomes_from_rules("basketball_nba", two, ["If A wins …, resolves to Yes."]) == ()
    assert extra_outcomes_from_rules("soccer_epl", two, []) == ((0, 0),)  # no tie market listed
    assert extra_outcomes_from_rules("soccer_epl", [*two, "E-TIE"], []) == ()
    assert extra_outcomes_from_rules(
        "americanfootball_nfl", two, ["If the game ends in a tie, the market resolves to No."]) == ((0, 0),)
    assert extra_outcomes_from_rules(
        "basketball_nba", two,
        ["If the game is postponed or canceled, the market resolves per the contract terms."]) == ()
    assert extra_outcomes_from_rules(
        "basketball_nba", two, ["If the game is canceled, the market resolves to $0.50."]) == ((5000, 5000),)
    with pytest.raises(InputError):
        GameBook(("A", "B"), ((0,),))


books_st = st.sampled_from((GAME, DRAWABLE, VOIDABLE, GameBook(("A", "B"), ((0, 0), (2500, 2500)))))
two_orders_st = st.lists(
    st.tuples(st.sampled_from(("A", "B")), st.sampled_from(("bid", "ask")),
              st.integers(1, 99), st.integers(0, 20)),
    max_size=6,
)


@given(books_st, two_orders_st, st.lists(st.booleans(), min_size=6, max_size=6),
       st.dictionaries(st.sampled_from(("A", "B")), st.integers(-3000, 3000)),
       st.integers(-50_000, 50_000))
def test_worst_case_bounds_every_fill_subset_with_extra_outcomes(book, orders, mask, positions, cash) -> None:
    """Every outcome (extras included) and every subset of fills stays above the worst case and
    inside the exposure bounds; ``d_o`` matches its definition."""
    from mmcore.game import directional_inventory

    resting = [live(*o) for o in orders]
    wc = worst_case(book, GamePosition(positions, cash), resting)
    assert len(wc.pnl_by_outcome) == book.n_outcomes
    mins, maxs = exposure_vector_bounds(book, positions, resting)
    filled, paid = dict(positions), cash
    for o, take in zip(resting, mask):
        if take:
            filled[o.market] = filled.get(o.market, 0) + (o.remaining if o.side == "bid" else -o.remaining)
            paid += o.price * o.remaining // CONTRACT * (-1 if o.side == "bid" else 1)
    pnl = outcome_pnl(book, GamePosition(filled, paid))
    assert all(p >= w for p, w in zip(pnl, wc.pnl_by_outcome))
    after = exposure_vector_bounds(book, filled, [])
    assert all(lo <= d <= hi for lo, d, hi in zip(mins, after[0], maxs))
    # d_o is payoff_o minus the mean payoff of the other outcomes (in contracts)
    payoff = [sum(q * v for q, v in zip((filled.get("A", 0), filled.get("B", 0)), book.settlement(o)))
              / PRICE_ONE for o in range(book.n_outcomes)]
    k = book.n_outcomes - 1
    exact = [payoff[o] - (sum(payoff) - payoff[o]) / k for o in range(book.n_outcomes)]
    assert all(abs(d - e) < 1 for d, e in zip(directional_inventory(book, filled), exact))


@given(st.integers(2, 4), st.integers(0, 3), st.sampled_from(["bid", "ask"]), st.integers(0, 10_000))
def test_one_order_direction_is_the_position_direction(n, i, side, count):
    """The quick path for a plain game equals the general one (D_o = n·pos_o − Σ pos)."""
    from mmcore.game import GameBook, scaled_direction
    from mmcore.risk.exposure import scaled_order_direction
    book = GameBook(tuple(f"M{k}" for k in range(n)))
    m = book.markets[min(i, n - 1)]
    assert scaled_order_direction(book, m, side, count) == scaled_direction(
        book, {m: count if side == "bid" else -count})
