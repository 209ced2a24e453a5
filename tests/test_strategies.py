"""Strategies behind one interface: each baseline behaves as seed-baselines.md describes, plain A-S
matches TV1/TV2, ours is exactly ``desired_quotes``, the registry refuses bad params — and
properties every strategy's quotes must keep (pure unit tests; no exchange needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcore.book import BookTop
from mmcore.errors import ConfigError, InputError
from mmcore.fees import FeeSchedule
from mmcore.game import GameSpec
from mmcore.quoting.config import DEFAULT_QUOTE_PARAMS
from mmcore.quoting.quotes import GameState, desired_quotes
from mmcore.risk.limits import GameLimit
from mmcore.strategies import (
    STRATEGIES,
    AsMid,
    AsMidParams,
    FixedSpread,
    FixedSpreadParams,
    InventorySkew,
    InventorySkewParams,
    Strategy,
    StrategyInput,
    make_strategy,
)
from mmcore.strategies.as_mid import as_mid_prices
from mmcore.strategies.volatility import MidVolatility
from mmcore.ticks import TickGrid
from mmcore.units import CENT, CONTRACT, PRICE_ONE
from tests.refvectors import quoting_vectors
from tests.test_purity import violations

S = 1_000_000_000
NOW = 1_900_000_000 * S
A, B = "G-AAA", "G-BBB"
LINEAR, DECI, TAPERED = TickGrid.linear_cent(), TickGrid.deci_cent(), TickGrid.tapered_deci_cent()
VECTORS = quoting_vectors()


def game(grid: TickGrid = LINEAR, start_ns: int = NOW + 3600 * S) -> GameSpec:
    return GameSpec("G", "basketball_nba", (A, B), (grid, grid), FeeSchedule.from_series("quadratic"),
                    start_ns)


def inp(tops=None, pos=None, *, g=None, now=NOW, theo=None, **kw) -> StrategyInput:
    if tops is None:
        tops = {A: BookTop(5500, 5000, 5700, 5000), B: BookTop(4300, 5000, 4500, 5000)}
    return StrategyInput(g or game(), tops, theo, GameState(pos or {}), now, **kw)


def slots(dq):
    return {(q.market, q.side): q for q in dq.quotes}


def prices(dq, market=A):
    s = slots(dq)
    return tuple(s[(market, side)].price if (market, side) in s else None for side in ("bid", "ask"))


def sizes(dq, market=A):
    s = slots(dq)
    return tuple(s[(market, side)].count if (market, side) in s else None for side in ("bid", "ask"))


def long_a(contracts: float) -> dict[str, int]:
    """A position whose directional inventory is +contracts on A (−contracts on B)."""
    return {A: int(contracts * CONTRACT)}


# --- fixed spread --------------------------------------------------------------------------


def test_fixed_spread_is_symmetric_around_the_mid_with_a_fixed_size():
    dq = FixedSpread().quote(inp())
    assert prices(dq, A) == (5400, 5800)  # mid 56¢ ± 2¢
    assert prices(dq, B) == (4200, 4600)  # mid 44¢ ± 2¢
    assert {q.count for q in dq.quotes} == {10 * CONTRACT}
    assert dq.inventory[:2] == (0, 0)


def test_fixed_spread_rounds_bids_down_and_asks_up_onto_each_grid():
    odd = {A: BookTop(5500, 100, 5800, 100), B: BookTop(4200, 100, 4500, 100)}  # mid 56.5¢
    assert prices(FixedSpread().quote(inp(odd)), A) == (5400, 5900)  # 54.5 → 54, 58.5 → 59
    assert prices(FixedSpread().quote(inp(odd, g=game(DECI))), A) == (5450, 5850)
    # tapered: 0.1¢ steps below 10¢ — mid 6.75¢ ± 2¢ = 4.75 / 8.75 → 4.7 / 8.8
    low = {A: BookTop(650, 100, 700, 100), B: BookTop(9300, 100, 9350, 100)}
    assert prices(FixedSpread().quote(inp(low, g=game(TAPERED))), A) == (470, 880)


def test_fixed_spread_stops_the_adding_side_at_max_inventory():
    fs = FixedSpread()
    assert prices(fs.quote(inp(pos=long_a(99))), A) == (5400, 5800)
    at_max = fs.quote(inp(pos=long_a(100)))
    assert prices(at_max, A) == (None, 5800)  # long A: no more buying A
    assert prices(at_max, B) == (4200, None)  # −100 on B: no more selling B
    assert any("at max" in n for n in at_max.markets[A].notes)
    short = fs.quote(inp(pos=long_a(-150)))
    assert prices(short, A) == (5400, None)
    every = FixedSpread(FixedSpreadParams(stop_all_at_max=True)).quote(inp(pos=long_a(100)))
    assert every.quotes == ()  # the seed's literal "stops quoting entirely"


def test_no_quote_without_a_two_sided_book():
    one_sided = {A: BookTop(5500, 100, None, 0), B: BookTop(4300, 100, 4500, 100)}
    crossed = {A: BookTop(5600, 100, 5600, 100), B: BookTop(4300, 100, 4500, 100)}
    for strategy in (FixedSpread(), InventorySkew(), AsMid()):
        for tops in (one_sided, crossed, {B: BookTop(4300, 100, 4500, 100)}):
            dq = strategy.quote(inp(tops))
            assert prices(dq, A) == (None, None), strategy.name
            assert prices(dq, B) != (None, None)
            assert "no two-sided book" in dq.markets[A].notes[0]


def test_baselines_obey_the_workers_trading_state_stale_books_and_the_start():
    for make in (FixedSpread, InventorySkew, AsMid):
        assert make().quote(inp(trading="HALTED")).quotes == ()
        late = make().quote(inp(now=NOW + 3600 * S - 30 * S))
        assert late.quotes == () and "game starts in 30s" in late.notes[0]
        assert {q.market for q in make().quote(inp(stale=frozenset({A}))).quotes} == {B}
        red = slots(make().quote(inp(pos=long_a(20), trading="REDUCING")))
        assert set(red) == {(A, "ask"), (B, "bid")}, make.name  # only what reduces q_E
        assert make().quote(inp(trading="REDUCING")).quotes == ()  # flat: every side adds


# --- inventory skew ------------------------------------------------------------------------


def test_inventory_skew_flat_and_quiet_is_the_fixed_spread():
    assert slots(InventorySkew().quote(inp())) == slots(FixedSpread().quote(inp()))


def test_inventory_skew_moves_both_quotes_up_when_long_as_published():
    g = game(DECI)
    flat = InventorySkew().quote(inp(g=g))
    long = InventorySkew().quote(inp(g=g, pos=long_a(50)))  # q/Q = 0.5 → centre +2.5¢
    assert prices(flat, A) == (5400, 5800)
    assert prices(long, A) == (5650, 6050)  # long → both up (seed-baselines.md)
    assert prices(long, B) == (3950, 4350)  # B carries −q_E: both down
    short = InventorySkew().quote(inp(g=g, pos=long_a(-50)))
    assert prices(short, A) == (5150, 5550)
    reducing = InventorySkew(InventorySkewParams(skew_sign=-1)).quote(inp(g=g, pos=long_a(50)))
    assert prices(reducing, A) == (5150, 5550)  # the A-S-like variant leans out of the position


def test_inventory_skew_shapes_sizes_toward_reducing_with_a_floor_and_the_headroom_cap():
    skew = InventorySkew()
    assert sizes(skew.quote(inp())) == (1000, 1000)
    assert sizes(skew.quote(inp(pos=long_a(40)))) == (800, 1200)  # f = 0.4: adding ×0.8, reducing ×1.2
    assert sizes(skew.quote(inp(pos=long_a(40))), B) == (1200, 800)  # B: −40, its bid reduces
    assert sizes(skew.quote(inp(pos=long_a(-40)))) == (1200, 800)
    floored = InventorySkew(InventorySkewParams(size_floor_contracts=9))
    assert sizes(floored.quote(inp(pos=long_a(40)))) == (900, 1200)
    assert sizes(skew.quote(inp(pos=long_a(98))))[0] == 200  # shaped 5, headroom 2 contracts
    assert sizes(skew.quote(inp(pos=long_a(100)))) == (None, 1500)  # at max: no adding side


def test_inventory_skew_widens_with_recent_volatility():
    g = game(DECI)
    busy, quiet = InventorySkew(), InventorySkew()
    calm = {A: BookTop(5500, 100, 5700, 100), B: BookTop(4300, 100, 4500, 100)}
    jumpy = {A: BookTop(5700, 100, 5900, 100), B: BookTop(4100, 100, 4300, 100)}
    for t in range(32):  # the mid jumps 2¢ every second, ending calm (mid 56¢)
        wide = busy.quote(inp(calm if t % 2 else jumpy, g=g, now=NOW + t * S))
        narrow = quiet.quote(inp(calm, g=g, now=NOW + t * S))
    assert quiet.volatility(A) == 0.0
    sigma = busy.volatility(A)
    assert sigma == pytest.approx(0.02, rel=1e-3)  # diffs ±2¢ each second → ≈ 0.02 $/√s
    half = 200 * (1 + 10 * sigma)  # h × (1 + 10 × vol) ≈ 2.4¢
    assert prices(wide, A) == (DECI.round_down(int(5600 - half)), DECI.round_up(int(5600 + half) + 1))
    assert prices(narrow, A) == (5400, 5800)
    assert prices(wide, A) == (5360, 5840)


def test_quotes_that_would_cross_are_held_one_tick_off_the_book():
    # published sign, long 80 of 100: centre +4¢ → bid at mid + 2¢ would cross the 57¢ ask
    dq = InventorySkew().quote(inp(pos=long_a(80)))
    assert prices(dq, A) == (5600, 6200)
    assert "bid held below best ask 5700" in dq.markets[A].notes


def test_mid_volatility_matches_tv11_and_samples_on_the_clock_grid():
    mids = [50.0, 50.0, 50.5, 51.0, 51.0, 50.5, 50.5, 51.5, 52.0, 51.5, 51.5]  # TV11, cents, 1 s
    v = MidVolatility(S, 60, 5)
    for i, m in enumerate(mids):
        v.observe(m / 100, NOW + i * S)
    assert v.sigma() == pytest.approx(0.0045)  # hftbacktest style: 0.45 ¢/√s
    assert v.sigma() * 100 == pytest.approx(VECTORS["TV11_vol"]["hftbacktest_style"])
    # between boundaries only the mid prevailing at each boundary counts; a gap repeats it
    w = MidVolatility(S, 60, 2)
    w.observe(0.50, NOW + S // 2)
    w.observe(0.60, NOW + S + S // 4)  # boundary NOW+S saw 0.50
    w.observe(0.70, NOW + 3 * S)  # boundary NOW+2S saw 0.60, NOW+3S sees 0.70
    assert w.samples == (0.50, 0.60, 0.70)
    with pytest.raises(InputError):
        w.observe(0.5, NOW)


# --- plain A-S around the mid ----------------------------------------------------------------


TV1 = [  # s = 100, σ = 2, γ = 0.1, k = 1.5: (q, T − t, r, bid, ask)
    (0, 1.0, 100.0, 99.154615, 100.845385),
    (3, 1.0, 98.8, 97.954615, 99.645385),
    (-2, 1.0, 100.8, 99.954615, 101.645385),
    (3, 0.5, 99.4, 98.654615, 100.145385),
    (0, 0.0, 100.0, 99.354615, 100.645385),
]
TV2 = [  # s = 100, σ = 2, γ = 0.1, k = 1.5, q_max = 5: (q, bid, ask)
    (-5, 105.332985, None),
    (-2, 100.250736, 102.344376),
    (0, 99.072906, 100.927094),
    (1, 98.458493, 100.363676),
    (2, 97.655624, 99.749264),
    (5, None, 94.667015),
]


@pytest.mark.parametrize("q, tau, r, bid, ask", TV1)
def test_as_mid_finite_matches_tv1(q, tau, r, bid, ask):
    params = AsMidParams(gamma_per_dollar=0.1, k_per_dollar=1.5)
    b, a, res = as_mid_prices(100.0, q, tau, 2.0, params)
    assert (b, a, res) == pytest.approx((bid, ask, r), abs=1e-6)


@pytest.mark.parametrize("q, bid, ask", TV2)
def test_as_mid_stationary_matches_tv2(q, bid, ask):
    params = AsMidParams(gamma_per_dollar=0.1, k_per_dollar=1.5, model="stationary",
                         max_inventory_contracts=5)
    b, a, _ = as_mid_prices(100.0, q, 0.0, 2.0, params)
    assert (b is None, a is None) == (bid is None, ask is None)
    assert (b, a) == pytest.approx((bid, ask), abs=1e-6)


def test_as_mid_quotes_tv1_in_dollars_through_the_strategy():
    # TV1's q = 3, T − t = 1 row with every price scaled by c = 0.005 (100 → 50¢):
    # σ·c, γ/c, k/c; quotes scale by c: bid 48.977¢ → 48.9¢, ask 49.823¢ → 49.9¢ (deci grid)
    c = 0.005
    params = AsMidParams(gamma_per_dollar=0.1 / c, k_per_dollar=1.5 / c, sigma_dollars_per_sqrt_s=2 * c,
                         sigma_source="fixed", stop_before_start_s=0)
    g = game(DECI, start_ns=NOW + S)
    tops = {A: BookTop(4950, 100, 5050, 100), B: BookTop(4950, 100, 5050, 100)}
    dq = AsMid(params).quote(inp(tops, long_a(3), g=g))
    assert prices(dq, A) == (4890, 4990)
    assert prices(dq, A) == (DECI.round_down(int(97.954615 * c * PRICE_ONE)),
                             DECI.round_up(int(99.645385 * c * PRICE_ONE) + 1))


def test_as_mid_skews_down_when_long_less_as_the_start_nears_and_stops_at_max():
    params = AsMidParams(sigma_source="fixed", sigma_dollars_per_sqrt_s=0.002)  # σ²τ = 1.44¢² at 1 h
    g = game(DECI)
    flat, long = AsMid(params).quote(inp(g=g)), AsMid(params).quote(inp(g=g, pos=long_a(50)))
    assert prices(long, A)[0] < prices(flat, A)[0] and prices(long, A)[1] < prices(flat, A)[1]
    assert prices(long, B)[0] > prices(flat, B)[0]  # B carries −q_E: up
    near = AsMid(params).quote(inp(g=g, pos=long_a(50), now=NOW + 3000 * S))
    assert prices(long, A)[1] < prices(near, A)[1] <= prices(flat, A)[1]  # skew shrinks with τ
    assert prices(AsMid(params).quote(inp(g=g, pos=long_a(100))), A)[0] is None
    assert {q.count for q in flat.quotes} == {10 * CONTRACT}


def test_as_mid_takes_sigma_from_the_book_once_it_has_samples():
    asm = AsMid()
    asm.quote(inp())
    assert asm.sigma(A) == AsMidParams().sigma_dollars_per_sqrt_s  # fallback until 5 samples
    for t in range(1, 10):
        asm.quote(inp(now=NOW + t * S))
    assert asm.sigma(A) == 0.0  # a still book
    fixed = AsMid(AsMidParams(sigma_source="fixed"))
    for t in range(10):
        fixed.quote(inp(now=NOW + t * S))
    assert fixed.sigma(A) == AsMidParams().sigma_dollars_per_sqrt_s


# --- ours ----------------------------------------------------------------------------------


def test_ours_is_desired_quotes_through_the_adapter():
    limit = GameLimit(200 * CONTRACT, 100 * CONTRACT, 200 * PRICE_ONE)
    theo = (0.56, 0.44)
    state = GameState(long_a(20))
    tops = {A: BookTop(5400, 5000, 5800, 5000), B: BookTop(4200, 5000, 4600, 5000)}
    ours = make_strategy("ours")
    got = ours.quote(StrategyInput(game(), tops, theo, state, NOW, limit=limit, confidence=0.9))
    want = desired_quotes(game(), tops, theo, state, limit, DEFAULT_QUOTE_PARAMS, NOW, confidence=0.9)
    assert got == want and got.quotes
    assert ours.quote(inp(tops)).quotes == ()  # no theo: ours does not quote (R8)
    derived = ours.quote(StrategyInput(game(), tops, theo, GameState(), NOW))  # limit from the tops
    assert derived.quotes


# --- registry and params -------------------------------------------------------------------


def test_registry_names_and_fresh_instances():
    assert set(STRATEGIES) == {"ours", "fixed-spread", "inventory-skew", "as-mid"}
    for name in STRATEGIES:
        s = make_strategy(name)
        assert isinstance(s, Strategy) and s.name == name
        assert make_strategy(name) is not s  # one per game: state is never shared
    fs = make_strategy("fixed-spread", {"half_spread_cents": 3})
    assert prices(fs.quote(inp()), A) == (5300, 5900)
    params = InventorySkewParams(skew_sign=-1)
    assert make_strategy("inventory-skew", params).params is params  # type: ignore[attr-defined]
    ours = make_strategy("ours", {"quote": {"clip_contracts": 5}, "limits": {"default": {"max_contracts": 5000}}})
    assert ours.params.quote.clip == 5 * CONTRACT  # type: ignore[attr-defined]


@pytest.mark.parametrize("name, raw", [
    ("fixed-spread", {"half_spread_cents": 0}),
    ("fixed-spread", {"half_spread_cents": "2"}),
    ("fixed-spread", {"size_contracts": -1}),
    ("fixed-spread", {"stop_all_at_max": "yes"}),
    ("fixed-spread", {"half_spread": 2}),
    ("inventory-skew", {"skew_sign": 0}),
    ("inventory-skew", {"size_floor_contracts": 20}),
    ("inventory-skew", {"vol_multiplier": float("nan")}),
    ("inventory-skew", {"vol_window_s": 1}),
    ("as-mid", {"model": "glft"}),
    ("as-mid", {"sigma_source": "theo"}),
    ("as-mid", {"gamma_per_dollar": True}),
    ("ours", {"quote": {"clip": 0}}),
    ("ours", {"nope": {}}),
    ("ours", [1, 2]),
    ("martingale", None),
])
def test_bad_strategy_params_are_config_errors(name, raw):
    with pytest.raises(ConfigError):
        make_strategy(name, raw)


def test_strategies_are_pure():
    root = Path(__file__).resolve().parent.parent / "mmcore" / "strategies"
    files = sorted(root.glob("*.py"))
    assert len(files) >= 6
    for path in files:
        assert violations(path.read_text(encoding="utf-8")) == [], path.name


# --- properties ----------------------------------------------------------------------------

GRIDS = st.sampled_from([LINEAR, DECI, TAPERED])


@st.composite
def books(draw, grid: TickGrid):
    """A two-sided or one-sided top on ``grid`` (sizes in centi-contracts)."""
    lo = draw(st.integers(grid.min_price, grid.max_price - 1))
    bid = grid.round_down(lo)
    ask = grid.next_above(draw(st.integers(bid, min(grid.max_price - 1, bid + 3000))))  # type: ignore[arg-type]
    top = BookTop(bid, 500, ask, 500)
    one_sided = draw(st.sampled_from(["both", "both", "both", "bid", "ask"]))
    if one_sided == "bid":
        return BookTop(bid, 500, None, 0)
    if one_sided == "ask":
        return BookTop(None, 0, ask, 500)
    return top


@st.composite
def scenarios(draw):
    grid = draw(GRIDS)
    g = game(grid)
    steps = draw(st.integers(1, 6))
    seq, now = [], NOW
    for _ in range(steps):
        tops = {A: draw(books(grid)), B: draw(books(grid))}
        pos = {A: draw(st.integers(-250, 250)) * CONTRACT, B: draw(st.integers(-250, 250)) * CONTRACT}
        now += draw(st.integers(0, 3 * S))
        seq.append(inp(tops, pos, g=g, now=now))
    return seq


def check(dq, i: StrategyInput, max_count: int) -> None:
    by = slots(dq)
    for idx, market in enumerate(i.game.markets):
        grid, top = i.game.grids[idx], i.tops.get(market)
        bid, ask = by.get((market, "bid")), by.get((market, "ask"))
        if top is None or top.bid is None or top.ask is None:
            assert bid is None and ask is None
        for q in (bid, ask):
            if q is not None:
                assert grid.is_valid(q.price) and 0 < q.price < PRICE_ONE
                assert q.count > 0 and q.count % CONTRACT == 0
        if bid is not None:
            assert top.ask is None or bid.price < top.ask  # post-only: would rest
            assert dq.inventory[idx] < max_count  # no adding past the bound
        if ask is not None:
            assert top.bid is None or ask.price > top.bid
            assert dq.inventory[idx] > -max_count
        if bid is not None and ask is not None:
            assert bid.price < ask.price


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.sampled_from(["fixed-spread", "inventory-skew", "as-mid"]))
def test_baseline_quotes_are_orderable_one_sided_per_price_and_bounded(seq, name):
    strategy, twin = make_strategy(name), make_strategy(name)
    for i in seq:
        dq = strategy.quote(i)
        check(dq, i, 100 * CONTRACT)
        assert twin.quote(i) == dq  # same inputs in the same order, same quotes


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 99), st.integers(1, 40), st.integers(-100, 100), st.floats(0.5, 5.0))
def test_fixed_spread_is_exactly_symmetric_on_a_fine_grid(bid_c, width, q, half_c):
    ask_c = min(99, bid_c + width)
    if ask_c <= bid_c:
        return
    tops = {A: BookTop(bid_c * CENT, 100, ask_c * CENT, 100), B: BookTop(4000, 100, 4200, 100)}
    fs = FixedSpread(FixedSpreadParams(half_spread_cents=half_c))
    dq = fs.quote(inp(tops, long_a(q / 2), g=game(TickGrid(((0, PRICE_ONE, 1),)))))  # $0.0001 grid
    mid = (bid_c + ask_c) * CENT / 2
    b, a = prices(dq, A)
    h = half_c * CENT
    if b is not None and mid - h >= 1 and b < ask_c * CENT - 1:
        assert abs((mid - b) - h) <= 1
    if a is not None and mid + h < PRICE_ONE and a > bid_c * CENT + 1:
        assert abs((a - mid) - h) <= 1
