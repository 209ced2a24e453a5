"""Other traders as pure policies: deterministic, on the grid, and each doing only what it says."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import InputError
from mmcore.sim.participants import (
    BookView, CancelIntent, CompetingMaker, InformedTaker, Intent, MarketView, NewsTaker,
    NoiseTaker, OwnOrder, PlaceIntent, TakerState,
)
from mmcore.ticks import TickGrid
from mmcore.units import CONTRACT, PRICE_ONE

S = 1_000_000_000
T0 = 1_800_000_000 * S
LINEAR = TickGrid.linear_cent()
TAPERED = TickGrid.tapered_deci_cent()


def view(bid: int | None = 4800, ask: int | None = 5200, *, bid_size: int = 1000,
         ask_size: int = 1000, own: tuple[OwnOrder, ...] = (), grid: TickGrid = LINEAR,
         is_open: bool = True) -> MarketView:
    return MarketView("KXNBAGAME-26NOV24NYKBOS-BOS", BookView(bid, bid_size if bid else 0, ask,
                      ask_size if ask else 0), own, grid, is_open)


def run(participant, seconds: float, step_s: float, mv: MarketView, truth_p: float = 0.5,
        seed: int = 1) -> list[tuple[int, list[Intent]]]:
    """Drive one participant on a static book, calling it every ``step_s`` and again while due."""
    rng = random.Random(seed)
    state = participant.initial_state(T0, rng)
    out = []
    t = T0
    while t <= T0 + seconds * S:
        while True:
            state, intents = participant.decide(state, mv, truth_p, t, rng)
            if intents:
                out.append((t, intents))
            if getattr(state, "wake_ns", t + 1) > t or not isinstance(state, TakerState):
                break
        t += round(step_s * S)
    return out


def places(batches: list[tuple[int, list[Intent]]]) -> list[PlaceIntent]:
    return [i for _, b in batches for i in b if isinstance(i, PlaceIntent)]


# --- noise taker --------------------------------------------------------------------------------


def test_noise_taker_is_deterministic_and_independent_of_call_cadence() -> None:
    taker = NoiseTaker("noise-0", rate_per_s=0.2)
    fine = run(taker, 600, 0.1, view())
    assert fine == run(taker, 600, 0.1, view())
    assert fine != run(taker, 600, 0.1, view(), seed=2)
    coarse = run(taker, 600, 7.0, view())
    assert [i for _, b in fine for i in b] == [i for _, b in coarse for i in b]


def test_noise_taker_arrivals_match_rate_and_take_the_touch() -> None:
    taker = NoiseTaker("noise-0", rate_per_s=0.5, size_contracts_min=2, size_contracts_max=7)
    orders = places(run(taker, 2000, 1.0, view()))
    assert len(orders) == pytest.approx(1000, rel=0.1)
    buys = [o for o in orders if o.side == "bid"]
    assert len(buys) / len(orders) == pytest.approx(0.5, abs=0.06)
    for o in orders:
        assert o.price == (5200 if o.side == "bid" else 4800)
        assert o.time_in_force == "immediate_or_cancel" and not o.post_only and o.tag == "noise"
        assert o.count % CONTRACT == 0 and 2 <= o.count // CONTRACT <= 7
    assert {o.count for o in orders} == {n * CONTRACT for n in range(2, 8)}


def test_noise_taker_side_bias_spread_cap_and_closed_market() -> None:
    assert {o.side for o in places(run(NoiseTaker("n", 1.0, side_bias=1.0), 100, 1.0, view()))} == {"bid"}
    capped = NoiseTaker("n", 1.0, max_spread_price=300)
    assert places(run(capped, 100, 1.0, view(4800, 5200))) == []
    assert places(run(capped, 100, 1.0, view(4900, 5100)))
    assert places(run(capped, 100, 1.0, view(4900, None))) == []
    assert places(run(NoiseTaker("n", 1.0), 100, 1.0, view(is_open=False))) == []
    only_ask = places(run(NoiseTaker("n", 1.0), 100, 1.0, view(None, 5200)))
    assert only_ask and {o.side for o in only_ask} == {"bid"}


def test_taker_waits_for_its_arrival() -> None:
    taker = NoiseTaker("n", 0.01)
    state = taker.initial_state(T0, random.Random(0))
    assert state.wake_ns > T0
    same, intents = taker.decide(state, view(), 0.5, state.wake_ns - 1, random.Random(0))
    assert same == state and intents == []


def test_taker_configs_are_checked() -> None:
    with pytest.raises(InputError):
        NoiseTaker("n", 0.0)
    with pytest.raises(InputError):
        NoiseTaker("n", 1.0, size_contracts_min=5, size_contracts_max=2)
    with pytest.raises(InputError):
        NoiseTaker("n", 1.0, side_bias=1.5)
    with pytest.raises(InputError):
        InformedTaker("i", -1, 1.0)


# --- informed taker -----------------------------------------------------------------------------


@given(
    truth=st.floats(0.02, 0.98),
    bid=st.integers(1, 98).map(lambda c: c * 100),
    width=st.integers(1, 30).map(lambda c: c * 100),
    threshold=st.integers(0, 800),
)
def test_informed_taker_trades_only_on_mispricing_and_always_with_the_truth(
    truth: float, bid: int, width: int, threshold: int
) -> None:
    ask = min(bid + width, 9900)
    taker = InformedTaker("sharp", edge_threshold_price=threshold, rate_per_s=1.0)
    state = taker.initial_state(T0, random.Random(0))
    _, intents = taker.decide(state, view(bid, ask), truth, state.wake_ns, random.Random(0))
    fair = truth * PRICE_ONE
    if ask < fair - threshold:
        assert len(intents) == 1 and isinstance(intents[0], PlaceIntent)
        assert (intents[0].side, intents[0].price) == ("bid", ask)
        assert intents[0].price < fair
    elif bid > fair + threshold:
        assert len(intents) == 1 and isinstance(intents[0], PlaceIntent)
        assert (intents[0].side, intents[0].price) == ("ask", bid)
        assert intents[0].price > fair
    else:
        assert intents == []
    for i in intents:
        assert isinstance(i, PlaceIntent) and i.time_in_force == "immediate_or_cancel"


def test_noisy_informed_taker_still_trades_the_right_way() -> None:
    taker = InformedTaker("sharp", edge_threshold_price=300, rate_per_s=1.0, noise_sd_prob=0.005)
    rng = random.Random(3)
    trades = []
    for k in range(3000):
        truth = rng.uniform(0.1, 0.9)
        mid = round(truth * 100 + rng.uniform(-8, 8)) * 100
        mv = view(max(100, mid - 100), min(9900, mid + 100))
        state = TakerState(T0)
        _, intents = taker.decide(state, mv, truth, T0, random.Random(k))
        trades += [(truth, o) for o in intents if isinstance(o, PlaceIntent)]
    assert len(trades) > 500
    for truth, o in trades:
        assert (o.price < truth * PRICE_ONE) if o.side == "bid" else (o.price > truth * PRICE_ONE)


# --- competing maker ----------------------------------------------------------------------------


def exact_maker(**kw) -> CompetingMaker:
    """A maker whose estimate is exactly the truth (no bias, no noise)."""
    base = dict(fair_noise_sd_prob=0.0, bias_sd_prob=0.0, half_spread_price=300,
                ceiling_edge_price=100, size_contracts=10)
    return CompetingMaker("maker", **{**base, **kw})


def quotes(maker: CompetingMaker, mv: MarketView, truth: float) -> dict[str, int]:
    rng = random.Random(0)
    _, intents = maker.decide(maker.initial_state(T0, rng), mv, truth, T0, rng)
    return {i.side: i.price for i in intents if isinstance(i, PlaceIntent)}


def test_maker_pennies_by_exactly_one_tick_within_its_ceiling() -> None:
    assert quotes(exact_maker(penny=True), view(4800, 5200), 0.5) == {"bid": 4900, "ask": 5100}
    assert quotes(exact_maker(penny=False), view(4800, 5200), 0.5) == {"bid": 4800, "ask": 5200}
    # Pennying would pass the ceiling (49 / 51): it joins at the ceiling instead.
    assert quotes(exact_maker(penny=True), view(4900, 5100), 0.5) == {"bid": 4900, "ask": 5100}
    # Others beyond its ceiling: it stays at the ceiling, behind them.
    assert quotes(exact_maker(penny=True, ceiling_edge_price=200), view(4900, 5100), 0.5) == \
        {"bid": 4800, "ask": 5200}
    # Others far back: its natural quotes (truth ± half spread).
    assert quotes(exact_maker(penny=True), view(3000, 7000), 0.5) == {"bid": 4700, "ask": 5300}
    assert quotes(exact_maker(penny=True), view(None, None), 0.5) == {"bid": 4700, "ask": 5300}


def test_maker_pennies_by_the_fine_tick_in_the_tails() -> None:
    got = quotes(exact_maker(penny=True), view(9250, 9700, grid=TAPERED), 0.95)
    assert got == {"bid": 9260, "ask": 9690}


def test_maker_does_not_penny_itself_when_alone_at_the_top() -> None:
    own = (OwnOrder("b1", "bid", 4900, 1000), OwnOrder("a1", "ask", 5100, 1000))
    mv = view(4900, 5100, bid_size=1000, ask_size=1000, own=own)
    rng = random.Random(0)
    maker = exact_maker(penny=True, ceiling_edge_price=50)
    _, intents = maker.decide(maker.initial_state(T0, rng), mv, 0.5, T0, rng)
    assert intents == []
    # Someone joined it at 49¢: pennying to 50¢ would pass its ceiling (49.5¢, so 49¢ on the
    # grid), and it already sits there.
    joined = view(4900, 5100, bid_size=1500, ask_size=1000, own=own)
    _, intents = maker.decide(maker.initial_state(T0, rng), joined, 0.5, T0, rng)
    assert intents == []


def test_maker_replaces_by_cancel_then_place_and_respects_requote_min() -> None:
    maker = exact_maker(penny=True, requote_min_ns=10 * S, estimate_refresh_ns=0)
    rng = random.Random(0)
    state = maker.initial_state(T0, rng)
    state, first = maker.decide(state, view(4800, 5200), 0.5, T0, rng)
    assert [type(i) for i in first] == [PlaceIntent, PlaceIntent]
    assert all(i.post_only and i.time_in_force == "good_till_canceled" and i.count == 1000
               for i in first if isinstance(i, PlaceIntent))
    own = (OwnOrder("b1", "bid", 4900, 1000), OwnOrder("a1", "ask", 5100, 1000))
    moved = view(4800, 5200, own=own)
    for dt in (1, 5, 9):  # the truth moved, but it is cooling down
        state, intents = maker.decide(state, moved, 0.6, T0 + dt * S, rng)
        assert intents == []
    assert state.wake_ns == T0 + 10 * S
    state, intents = maker.decide(state, moved, 0.6, T0 + 10 * S, rng)
    assert [type(i) for i in intents] == [CancelIntent, CancelIntent, PlaceIntent, PlaceIntent]
    assert {i.order_id for i in intents if isinstance(i, CancelIntent)} == {"b1", "a1"}
    # Nothing changed: no churn even when allowed.
    again = view(5700, 6300, own=(OwnOrder("b2", "bid", 5700, 1000),
                                  OwnOrder("a2", "ask", 6300, 1000)))
    state, intents = maker.decide(state, again, 0.6, T0 + 60 * S, rng)
    assert intents == []


def test_maker_tops_up_only_below_half_size() -> None:
    maker = exact_maker(penny=False)
    rng = random.Random(0)
    half = view(4700, 5300, own=(OwnOrder("b", "bid", 4700, 500), OwnOrder("a", "ask", 5300, 1000)))
    _, intents = maker.decide(maker.initial_state(T0, rng), half, 0.5, T0, rng)
    assert intents == []
    low = view(4700, 5300, own=(OwnOrder("b", "bid", 4700, 400), OwnOrder("a", "ask", 5300, 1000)))
    _, intents = maker.decide(maker.initial_state(T0, rng), low, 0.5, T0, rng)
    assert intents == [CancelIntent("maker", "b"), PlaceIntent(
        "maker", low.ticker, "bid", 4700, 1000, "good_till_canceled", True, "maker")]


def test_maker_estimate_lags_until_refresh() -> None:
    maker = exact_maker(penny=False, requote_min_ns=0, estimate_refresh_ns=60 * S)
    rng = random.Random(0)
    state = maker.initial_state(T0, rng)
    state, _ = maker.decide(state, view(None, None), 0.5, T0, rng)
    assert state.est_prob == 0.5
    state, intents = maker.decide(state, view(None, None), 0.8, T0 + 30 * S, rng)
    assert state.est_prob == 0.5
    state, intents = maker.decide(state, view(None, None), 0.8, T0 + 60 * S, rng)
    assert state.est_prob == 0.8


def test_maker_bias_is_persistent_and_seeded() -> None:
    maker = CompetingMaker("m", bias_sd_prob=0.02)
    biases = {maker.initial_state(T0, random.Random(s)).bias_prob for s in range(50)}
    assert len(biases) == 50
    assert maker.initial_state(T0, random.Random(4)) == maker.initial_state(T0, random.Random(4))


@given(
    truth=st.floats(0.0, 1.0),
    bid=st.one_of(st.none(), st.integers(1, 999).map(lambda x: x * 10)),
    width=st.integers(1, 400).map(lambda x: x * 10),
    penny=st.booleans(),
    tapered=st.booleans(),
    half=st.integers(100, 800),
    edge=st.integers(0, 100),
    own_top=st.booleans(),
)
def test_maker_never_passes_its_ceiling_never_crosses_and_stays_on_grid(
    truth: float, bid: int | None, width: int, penny: bool, tapered: bool, half: int, edge: int,
    own_top: bool,
) -> None:
    grid = TAPERED if tapered else LINEAR
    bid = None if bid is None else grid.round_down(bid)
    ask = None if bid is None else grid.round_up(min(bid + width, PRICE_ONE - 10))
    if ask is not None and bid is not None and ask <= bid:
        ask = grid.next_above(bid)
    own = ((OwnOrder("b", "bid", bid, 1000),) if own_top and bid is not None else ())
    mv = view(bid, ask, own=own, grid=grid)
    maker = exact_maker(penny=penny, half_spread_price=half, ceiling_edge_price=min(edge, half))
    got = quotes(maker, mv, truth)
    e = min(0.99, max(0.01, truth)) * PRICE_ONE
    if "bid" in got:
        assert grid.is_valid(got["bid"])
        assert got["bid"] <= e - maker.ceiling_edge_price
        assert ask is None or got["bid"] < ask
    if "ask" in got:
        assert grid.is_valid(got["ask"])
        assert got["ask"] >= e + maker.ceiling_edge_price
        assert bid is None or got["ask"] > bid
    if "bid" in got and "ask" in got:
        assert got["bid"] < got["ask"]


def test_maker_does_nothing_on_a_closed_market_and_config_is_checked() -> None:
    assert quotes(exact_maker(), view(is_open=False), 0.5) == {}
    with pytest.raises(InputError):
        CompetingMaker("m", half_spread_price=100, ceiling_edge_price=200)


def test_maker_run_is_deterministic() -> None:
    maker = CompetingMaker("m", requote_min_ns=2 * S, estimate_refresh_ns=5 * S)
    a = run(maker, 120, 1.0, view(4800, 5200), truth_p=0.52, seed=5)
    assert a == run(maker, 120, 1.0, view(4800, 5200), truth_p=0.52, seed=5)
    assert a != run(maker, 120, 1.0, view(4800, 5200), truth_p=0.52, seed=6)


# --- leaning noise, sweeping sharps, news-informed takers (issue 11 item 2) -----------------------


def test_noise_leans_toward_yes_and_longshots() -> None:
    noise = NoiseTaker("n", rate_per_s=1.0, side_bias=0.55, longshot_bias=0.15)
    assert noise.buy_prob(view(900, 1100).book) == pytest.approx(0.55 + 0.15 * 0.8)
    assert noise.buy_prob(view(4900, 5100).book) == pytest.approx(0.55)
    assert noise.buy_prob(view(8900, 9100).book) == pytest.approx(0.55 - 0.15 * 0.8)
    assert noise.buy_prob(view(None, 1100).book) == 0.55  # one-sided: no mid, no lean
    for bid, ask, lo, hi in ((900, 1100, 0.62, 0.72), (8900, 9100, 0.38, 0.48)):
        buys = [i.side == "bid" for i in places(run(noise, 4000, 1.0, view(bid, ask)))]
        assert lo < sum(buys) / len(buys) < hi, (bid, sum(buys) / len(buys))
    with pytest.raises(InputError):
        NoiseTaker("n", rate_per_s=1.0, longshot_bias=1.5)


def test_sweeping_informed_taker_takes_every_level_inside_its_edge() -> None:
    touch = InformedTaker("i", edge_threshold_price=100, rate_per_s=1.0)
    sweep = InformedTaker("i", edge_threshold_price=100, rate_per_s=1.0, sweep=True)
    mv = view(4800, 5200)
    assert {i.price for i in places(run(touch, 30, 1.0, mv, truth_p=0.60))} == {5200}
    assert {i.price for i in places(run(sweep, 30, 1.0, mv, truth_p=0.60))} == {5800}
    assert {i.price for i in places(run(sweep, 30, 1.0, mv, truth_p=0.40))} == {4200}
    assert places(run(sweep, 30, 1.0, mv, truth_p=0.5)) == []


def news_view(public_p: float | None, bid: int = 4800, ask: int = 5200) -> MarketView:
    mv = view(bid, ask)
    return MarketView(mv.ticker, mv.book, (), mv.grid, True, public_p)


def test_news_taker_trades_only_while_the_books_do_not_know() -> None:
    news = NewsTaker("x", rate_per_s=1.0, edge_price=200)
    # truth jumped to 0.60 while the books still price 0.50: buy, sweeping up to 58¢
    bought = places(run(news, 60, 1.0, news_view(0.50), truth_p=0.60))
    assert bought and {(i.side, i.price, i.time_in_force) for i in bought} == {
        ("bid", 5800, "immediate_or_cancel")}
    assert all(10 * CONTRACT <= i.count <= 50 * CONTRACT for i in bought)
    sold = places(run(news, 60, 1.0, news_view(0.50), truth_p=0.40))
    assert sold and {(i.side, i.price) for i in sold} == {("ask", 4200)}
    # once the books know (public == truth) it stops, however wrong the exchange's book is
    assert places(run(news, 60, 1.0, news_view(0.60), truth_p=0.60)) == []
    assert places(run(news, 60, 1.0, news_view(None), truth_p=0.60)) == []
    # news smaller than its edge: the book already prices it
    assert places(run(news, 60, 1.0, news_view(0.50), truth_p=0.53)) == []


def test_book_following_maker_estimates_from_what_the_books_price() -> None:
    sharp = CompetingMaker("m", half_spread_price=300, ceiling_edge_price=100, bias_sd_prob=0.0,
                           fair_noise_sd_prob=0.0)
    follower = CompetingMaker("m", half_spread_price=300, ceiling_edge_price=100, bias_sd_prob=0.0,
                              fair_noise_sd_prob=0.0, follows_books=True)
    mv = news_view(0.50, bid=None, ask=None)
    rng = random.Random(1)
    s_sharp, _ = sharp.decide(sharp.initial_state(T0, rng), mv, 0.60, T0, rng)
    s_follow, _ = follower.decide(follower.initial_state(T0, rng), mv, 0.60, T0, rng)
    assert s_sharp.est_prob == pytest.approx(0.60)
    assert s_follow.est_prob == pytest.approx(0.50)
