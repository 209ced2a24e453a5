"""Limits: per-game bounds, config parsing, and cap_size keeping the limits hard under fill storms."""

from __future__ import annotations

from dataclasses import fields

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import ConfigError, InputError
from mmcore.orders import LiveOrder, Quote
from mmcore.risk.exposure import (
    GameBook,
    GamePosition,
    WorstCase,
    exposure_vector_bounds,
    outcome_pnl,
    signed_inventory,
    worst_case,
    worst_case_inventory,
)
from mmcore.risk.limits import (
    DEFAULT_LIMIT_CONFIG,
    DEFAULT_SPORT_LIMITS,
    GameLimit,
    LimitConfig,
    SportLimits,
    aggregate_worst_loss,
    available_liquidity,
    cap_size,
    game_limit,
    headroom,
)
from mmcore.units import CENT, CONTRACT, PRICE_ONE

GAME = GameBook(("A", "B"))
SOCCER = GameBook(("HOME", "AWAY", "TIE"))
USD = PRICE_ONE
FLAT = GamePosition({}, 0)
BIG_LOSS = 10**9


def live(market: str, side: str, price_cents: int, contracts: int) -> LiveOrder:
    return LiveOrder(f"{market}-{side}-{price_cents}", None, market, side,  # type: ignore[arg-type]
                     price_cents * CENT, contracts * CONTRACT, 0, 0)


def bid(market: str, price_cents: int, count: int) -> Quote:
    return Quote(market, "bid", price_cents * CENT, count)


def ask(market: str, price_cents: int, count: int) -> Quote:
    return Quote(market, "ask", price_cents * CENT, count)


# --- game_limit and config ----------------------------------------------------------------------


def test_game_limit_floor_fraction_and_cap() -> None:
    nba = DEFAULT_SPORT_LIMITS["basketball_nba"]
    assert game_limit("basketball_nba", 0, DEFAULT_LIMIT_CONFIG).hard_contracts == nba.min_contracts
    mid = game_limit("basketball_nba", 1000 * CONTRACT, DEFAULT_LIMIT_CONFIG)
    assert mid.hard_contracts == int(nba.liquidity_fraction * 1000 * CONTRACT)
    assert mid.soft_contracts == mid.hard_contracts // 2
    assert mid.max_loss_money == nba.max_loss_money
    assert game_limit("basketball_nba", 10**9, DEFAULT_LIMIT_CONFIG).hard_contracts == nba.max_contracts
    with pytest.raises(InputError):
        game_limit("basketball_nba", -1, DEFAULT_LIMIT_CONFIG)


NICHE = ["mma_mixed_martial_arts", "tennis_atp_wimbledon", "soccer_norway_eliteserien"]


@pytest.mark.parametrize("niche", NICHE)
def test_niche_sports_are_stricter(niche: str) -> None:
    cfg = DEFAULT_LIMIT_CONFIG
    assert niche not in cfg.sports
    for major in DEFAULT_SPORT_LIMITS:
        for liq in (0, 300 * CONTRACT, 10**9):
            a, b = game_limit(niche, liq, cfg), game_limit(major, liq, cfg)
            assert a.hard_contracts <= b.hard_contracts and a.max_loss_money < b.max_loss_money
    for f in fields(SportLimits):
        for major in DEFAULT_SPORT_LIMITS.values():
            assert getattr(cfg.default, f.name) <= getattr(major, f.name), f.name


def test_from_dict_defaults_overrides_and_unknown_keys() -> None:
    assert LimitConfig.from_dict({}) == DEFAULT_LIMIT_CONFIG
    cfg = LimitConfig.from_dict(
        {"sports": {"basketball_nba": {"max_loss_money": 5 * USD},
                    "mma_mixed_martial_arts": {"max_contracts": 800}},
         "default": {"liquidity_fraction": 0.05}, "aggregate_max_loss_money": 50 * USD}
    )
    assert cfg.sports["basketball_nba"].max_loss_money == 5 * USD
    assert cfg.sports["basketball_nba"].max_contracts == DEFAULT_SPORT_LIMITS["basketball_nba"].max_contracts
    assert cfg.sports["mma_mixed_martial_arts"].liquidity_fraction == 0.05  # inherits the new default
    assert cfg.aggregate_max_loss_money == 50 * USD
    for bad in (
        {"max_inventory": 1},
        {"sports": {"basketball_nba": {"max_loss": 1}}},
        {"default": {"liquidity_fraction": 0.1, "extra": 1}},
        {"default": {"liquidity_fraction": 1.5}},
        {"default": {"min_contracts": 500, "max_contracts": 100}},
        {"sports": {"basketball_nba": {"max_contracts": "lots"}}},
        {"aggregate_max_contracts": -1},
        {"sports": ["basketball_nba"]},
    ):
        with pytest.raises(ConfigError):
            LimitConfig.from_dict(bad)


def test_available_liquidity_headroom_and_aggregate() -> None:
    assert available_liquidity([500, 0, 1200]) == 1700
    with pytest.raises(InputError):
        available_liquidity([100, -1])
    assert headroom(True, (4000, 0), 5000) == 1000
    assert headroom(False, (4000, -4500), 5000) == 500
    assert headroom(True, (6000, 0), 5000) == 0
    games = [WorstCase((5, -7), -7, 1), WorstCase((3, 2), 2, 1)]
    assert aggregate_worst_loss(games) == 7


# --- cap_size -------------------------------------------------------------------------------------


def test_at_the_bound_the_size_is_zero_with_a_reason() -> None:
    limit = GameLimit(50 * CONTRACT, 25 * CONTRACT, BIG_LOSS)
    pos = GamePosition({"A": 50 * CONTRACT}, -25 * USD)
    n, why = cap_size(GAME, pos, [], bid("A", 50, 10 * CONTRACT), limit)
    assert n == 0 and why is not None and "hard limit 5000" in why
    assert cap_size(GAME, pos, [], ask("B", 50, 10 * CONTRACT), limit)[0] == 0  # same direction
    short = GamePosition({"B": 50 * CONTRACT}, -25 * USD)
    assert cap_size(GAME, short, [live("A", "ask", 60, 5)], bid("B", 50, 100), limit) == (
        0, "cut 100→0: hard limit 5000 on B wins with inventory 5000 and 500 resting on the adding side"
    )
    # The reducing side is free (up to flipping to the other bound).
    assert cap_size(GAME, pos, [], ask("A", 50, 10 * CONTRACT), limit) == (10 * CONTRACT, None)
    assert cap_size(GAME, pos, [], bid("B", 50, 200 * CONTRACT), limit)[0] == 100 * CONTRACT


def test_resting_orders_on_the_adding_side_are_counted() -> None:
    limit = GameLimit(50 * CONTRACT, 25 * CONTRACT, BIG_LOSS)
    resting = [live("B", "ask", 45, 30), live("A", "ask", 61, 40)]  # only the B ask adds
    n, why = cap_size(GAME, FLAT, resting, bid("A", 56, 40 * CONTRACT), limit)
    assert n == 20 * CONTRACT
    assert why == (
        "cut 4000→2000: hard limit 5000 on A wins with inventory 0 and 3000 resting on the adding side"
    )
    assert worst_case_inventory(GAME, {}, resting, bid("A", 56, n))[0] == limit.hard_contracts


def test_beyond_the_bound_reducing_orders_pass() -> None:
    limit = GameLimit(50 * CONTRACT, 25 * CONTRACT, BIG_LOSS)
    pos = GamePosition({"A": 60 * CONTRACT}, -30 * USD)
    assert cap_size(GAME, pos, [], ask("A", 50, 200 * CONTRACT), limit)[0] == 110 * CONTRACT


def test_max_loss_cuts_and_rounds_whole_contracts_down() -> None:
    limit = GameLimit(10**6, 10**6, 10 * USD)
    n, why = cap_size(GAME, FLAT, [], bid("A", 30, 100 * CONTRACT), limit)
    assert n == 33 * CONTRACT and why is not None and "max loss 100000 if B wins" in why
    n, _ = cap_size(GAME, FLAT, [], bid("A", 30, 100 * CONTRACT + 1), limit)
    assert n == 3333  # a fractional candidate is cut to the centi-contract
    n, _ = cap_size(GAME, FLAT, [], bid("A", 30, 100 * CONTRACT), limit, fee_per_contract=2 * CENT)
    assert n == 31 * CONTRACT  # 10 / 0.32
    assert cap_size(GAME, FLAT, [], bid("A", 30, 0), limit) == (0, None)
    assert cap_size(GAME, FLAT, [], bid("A", 30, 10 * CONTRACT), limit) == (10 * CONTRACT, None)


def test_aggregate_caps() -> None:
    limit = GameLimit(10**6, 10**6, BIG_LOSS)
    cfg = LimitConfig(DEFAULT_SPORT_LIMITS, DEFAULT_LIMIT_CONFIG.default, 100 * USD, 1000 * CONTRACT)
    n, why = cap_size(GAME, FLAT, [], bid("A", 50, 100 * CONTRACT), limit,
                      aggregate_used_loss=95 * USD, cfg=cfg)
    assert n == 10 * CONTRACT and why is not None and "aggregate max loss" in why
    n, why = cap_size(GAME, FLAT, [], bid("A", 50, 100 * CONTRACT), limit,
                      aggregate_used_contracts=990 * CONTRACT, cfg=cfg)
    assert n == 10 * CONTRACT and why is not None and "aggregate max contracts" in why
    # Without cfg the aggregate is not checked.
    uncapped = cap_size(GAME, FLAT, [], bid("A", 50, 100 * CONTRACT), limit, aggregate_used_loss=95 * USD)
    assert uncapped == (100 * CONTRACT, None)


def test_three_way_hard_bound() -> None:
    limit = GameLimit(20 * CONTRACT, 10 * CONTRACT, BIG_LOSS)
    # d_HOME = payoff_HOME − mean(others): 10 YES HOME gives d = 10; another 10 would make it 20.
    pos = GamePosition({"HOME": 10 * CONTRACT}, -5 * USD)
    n, why = cap_size(SOCCER, pos, [], bid("HOME", 50, 30 * CONTRACT), limit)
    assert n == 10 * CONTRACT and why is not None and "HOME wins" in why
    # Buying the TIE offsets HOME only half (d_HOME = 10 − 10/2) but adds to the TIE direction.
    n, _ = cap_size(SOCCER, pos, [], bid("TIE", 30, 100 * CONTRACT), limit)
    mins, maxs = exposure_vector_bounds(SOCCER, {"HOME": 10 * CONTRACT}, [bid("TIE", 30, n)])
    assert max(maxs) <= limit.hard_contracts and min(mins) >= -limit.hard_contracts


# --- the key property: the limits are hard under any fill sequence ---------------------------------

place = st.tuples(st.just("place"), st.integers(0, 2), st.sampled_from(("bid", "ask")),
                  st.integers(1, 99), st.integers(1, 4000))
fill = st.tuples(st.just("fill"), st.integers(0, 99), st.integers(1, 4000))
cancel = st.tuples(st.just("cancel"), st.integers(0, 99))


@given(
    st.sampled_from((GAME, SOCCER)),
    st.integers(0, 40 * CONTRACT),
    st.integers(0, 20 * USD),
    st.lists(st.one_of(place, fill, cancel), max_size=60),
)
def test_capped_quotes_never_breach_limits_under_any_fills(book, hard, max_loss, ops) -> None:
    limit = GameLimit(hard, hard // 2, max_loss)
    positions: dict[str, int] = {}
    cash = 0
    resting: list[LiveOrder] = []

    def check() -> None:
        pos = GamePosition(positions, cash)
        # Realised: what the game is now.
        assert min(outcome_pnl(book, pos)) >= -max_loss
        if book.n == 2:
            assert abs(signed_inventory(book, positions)) <= hard
        mins, maxs = exposure_vector_bounds(book, positions, [])
        assert min(mins) >= -hard and max(maxs) <= hard
        # And what any further subset of fills could make it.
        assert worst_case(book, pos, resting).worst_pnl >= -max_loss
        mins, maxs = exposure_vector_bounds(book, positions, resting)
        assert min(mins) >= -hard and max(maxs) <= hard

    for i, op in enumerate(ops):
        if op[0] == "place":
            _, m, side, price, count = op
            q = Quote(book.markets[m % book.n], side, price * CENT, count)
            n, why = cap_size(book, GamePosition(positions, cash), resting, q, limit)
            assert 0 <= n <= count and (why is None) == (n == count)
            if n:
                resting.append(LiveOrder(str(i), None, q.market, q.side, q.price, n, 0, 0))
        elif op[0] == "fill" and resting:
            j = op[1] % len(resting)
            o = resting[j]
            f = min(op[2], o.remaining)
            sign = 1 if o.side == "bid" else -1
            positions[o.market] = positions.get(o.market, 0) + sign * f
            cash -= sign * o.price * f // CONTRACT  # exact: whole-cent prices
            if f == o.remaining:
                resting.pop(j)
            else:
                resting[j] = LiveOrder(o.order_id, None, o.market, o.side, o.price, o.remaining - f, f, 0)
        elif op[0] == "cancel" and resting:
            resting.pop(op[1] % len(resting))
        check()
    # Finally let every adding order fill at once: still inside.
    for o in resting:
        sign = 1 if o.side == "bid" else -1
        if book.n == 2 and sign * (1 if o.market == book.markets[0] else -1) > 0:
            positions[o.market] = positions.get(o.market, 0) + sign * o.remaining
            cash -= sign * o.price * o.remaining // CONTRACT
    if book.n == 2:
        assert abs(signed_inventory(book, positions)) <= hard
