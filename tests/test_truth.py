"""The hidden truth path: reproducible, a valid probability vector, the configured volatility and
jump rates, a fair game (winners as often as the initial probabilities say), exact lookups."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmcore.errors import InputError
from mmcore.sim.slate import SimGame
from mmcore.sim.truth import NS_PER_S, TruthParams, TruthPath, settle_ns, simulate_path, truth_fn

T0 = 1_800_000_000 * NS_PER_S
QUIET = TruthParams(news_rate_per_s=0.0, inplay_jump_rate_per_s=0.0)


def _path(p0=(0.6, 0.4), seed=1, pregame_s=3600.0, params=TruthParams(), t0=T0) -> TruthPath:
    start = t0 + round(pregame_s * NS_PER_S)
    return simulate_path(p0, start, settle_ns(start, params), t0, params, random.Random(seed))


def _logit_increments(path: TruthPath, lo_ns: int, hi_ns: int) -> list[float]:
    """Increments of ln(p_0 / p_last) between consecutive breakpoints inside [lo, hi]."""
    xs = [math.log(p[0] / p[-1]) for t, p in zip(path.times_ns, path.probs) if lo_ns <= t <= hi_ns]
    return [b - a for a, b in zip(xs, xs[1:])]


def test_same_seed_same_path_and_different_seed_differs() -> None:
    assert _path(seed=7) == _path(seed=7)
    assert _path((0.4, 0.3, 0.3), seed=7) == _path((0.4, 0.3, 0.3), seed=7)
    assert _path(seed=7).probs != _path(seed=8).probs


@given(
    seed=st.integers(0, 2**32),
    p0=st.sampled_from([(0.5, 0.5), (0.93, 0.07), (0.02, 0.98), (0.45, 0.3, 0.25), (0.8, 0.1, 0.1)]),
)
def test_probabilities_stay_inside_and_sum_to_one(seed: int, p0: tuple[float, ...]) -> None:
    params = TruthParams(step_s=30.0, game_length_s=3600.0, news_rate_per_s=0.01,
                         news_jump_logit_sd=1.0, inplay_jump_rate_per_s=0.02,
                         inplay_jump_logit_sd=1.5, sigma_logit_per_sqrt_s_inplay=0.05)
    path = _path(p0, seed, pregame_s=1800.0, params=params)
    assert path.probs[0] == pytest.approx(p0)
    assert all(a < b for a, b in zip(path.times_ns, path.times_ns[1:]))
    for probs in path.probs:
        assert len(probs) == len(p0)
        assert all(0.0 < p < 1.0 for p in probs)
        assert math.fsum(probs) == pytest.approx(1.0, abs=1e-12)
    assert 0 <= path.winner < len(p0)


@pytest.mark.parametrize("p0", [(0.6, 0.4), (0.45, 0.3, 0.25)])
def test_realised_logit_volatility_matches_sigma(p0: tuple[float, ...]) -> None:
    params = TruthParams(sigma_logit_per_sqrt_s_pregame=0.01, sigma_logit_per_sqrt_s_inplay=0.03,
                         news_rate_per_s=0.0, inplay_jump_rate_per_s=0.0, step_s=1.0,
                         game_length_s=4000.0)
    path = _path(p0, seed=3, pregame_s=4000.0, params=params)
    pre = _logit_increments(path, path.t0_ns, path.start_ns)
    live = _logit_increments(path, path.start_ns, path.end_ns)
    assert len(pre) == len(live) == 4000
    assert statistics.pstdev(pre) == pytest.approx(0.01, rel=0.06)
    assert statistics.pstdev(live) == pytest.approx(0.03, rel=0.06)


def test_realised_volatility_scales_with_step() -> None:
    params = TruthParams(sigma_logit_per_sqrt_s_pregame=0.01, news_rate_per_s=0.0, step_s=25.0)
    path = _path((0.5, 0.5), seed=4, pregame_s=100_000.0, params=params)
    pre = _logit_increments(path, path.t0_ns, path.start_ns)
    assert statistics.pstdev(pre) / math.sqrt(25.0) == pytest.approx(0.01, rel=0.08)


def test_inplay_moves_more_than_pregame_by_default() -> None:
    path = _path((0.55, 0.45), seed=5, pregame_s=9000.0)
    pre = _logit_increments(path, path.t0_ns, path.start_ns)
    live = _logit_increments(path, path.start_ns, path.end_ns)
    per_s = lambda xs, span_s: math.sqrt(sum(x * x for x in xs) / span_s)  # noqa: E731
    assert per_s(live, 9000.0) > 2 * per_s(pre, 9000.0)


def test_jumps_arrive_at_the_configured_rates() -> None:
    params = TruthParams(news_rate_per_s=0.01, inplay_jump_rate_per_s=0.05, game_length_s=10_000.0,
                         step_s=10.0)
    path = _path(seed=6, pregame_s=20_000.0, params=params)
    pre = [t for t in path.jump_times if t < path.start_ns]
    live = [t for t in path.jump_times if t >= path.start_ns]
    assert len(pre) == pytest.approx(200, rel=0.2)
    assert len(live) == pytest.approx(500, rel=0.15)
    assert list(path.jump_times) == sorted(path.jump_times)
    assert set(path.jump_times) <= set(path.times_ns)
    assert all(path.t0_ns < t < path.end_ns for t in path.jump_times)


def test_no_jumps_when_rates_are_zero() -> None:
    assert _path(params=QUIET).jump_times == ()


def test_jumps_move_the_path() -> None:
    params = TruthParams(sigma_logit_per_sqrt_s_pregame=0.0, sigma_logit_per_sqrt_s_inplay=0.0,
                         news_rate_per_s=0.01, news_jump_logit_sd=0.5, inplay_jump_rate_per_s=0.0,
                         step_s=60.0)
    path = _path(seed=9, pregame_s=3600.0, params=params)
    moves = {path.times_ns[i] for i in range(1, len(path.probs)) if path.probs[i] != path.probs[i - 1]}
    assert moves and moves == set(path.jump_times)


@pytest.mark.parametrize("p0", [(0.7, 0.3), (0.45, 0.25, 0.30)])
def test_winners_and_final_probabilities_are_fair(p0: tuple[float, ...]) -> None:
    params = TruthParams(sigma_logit_per_sqrt_s_pregame=0.01, sigma_logit_per_sqrt_s_inplay=0.03,
                         news_rate_per_s=0.005, news_jump_logit_sd=0.8, inplay_jump_rate_per_s=0.01,
                         inplay_jump_logit_sd=1.0, game_length_s=1800.0, step_s=60.0)
    n = 3000
    paths = [_path(p0, seed, pregame_s=600.0, params=params) for seed in range(n)]
    for i, p in enumerate(p0):
        won = sum(path.winner == i for path in paths) / n
        assert won == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / n))
        finals = [path.final_probs[i] for path in paths]  # a martingale: the mean stays at p0
        assert statistics.fmean(finals) == pytest.approx(p, abs=4 * statistics.stdev(finals) / math.sqrt(n))


def test_at_is_piecewise_constant_and_clamps() -> None:
    path = _path((0.3, 0.7), seed=2, pregame_s=60.0,
                 params=TruthParams(game_length_s=120.0, step_s=7.0, inplay_jump_rate_per_s=0.1))
    assert path.at(path.t0_ns - 10**12) == path.probs[0] == (0.3, 0.7)
    assert path.at(path.end_ns) == path.final_probs
    assert path.at(path.end_ns + 10**15) == path.final_probs
    assert path.settled(path.end_ns) and not path.settled(path.end_ns - 1)
    for i, t in enumerate(path.times_ns[:-1]):
        nxt = path.times_ns[i + 1]
        assert path.at(t) == path.probs[i]
        assert path.at((t + nxt) // 2) == path.probs[i]
        assert path.at(nxt - 1) == path.probs[i]
    assert path.at(path.start_ns) is path.probs[path.times_ns.index(path.start_ns)]


def test_game_already_under_way_is_inplay_from_t0() -> None:
    params = TruthParams(sigma_logit_per_sqrt_s_pregame=0.001, sigma_logit_per_sqrt_s_inplay=0.02,
                         inplay_jump_rate_per_s=0.0, game_length_s=6000.0)
    path = simulate_path((0.5, 0.5), T0 - 1000 * NS_PER_S, T0 + 5000 * NS_PER_S, T0, params,
                         random.Random(11))
    incs = _logit_increments(path, path.t0_ns, path.end_ns)
    assert statistics.pstdev(incs) == pytest.approx(0.02, rel=0.08)


def test_bad_inputs_are_refused() -> None:
    rng = random.Random(0)
    with pytest.raises(InputError):
        simulate_path((0.5, 0.6), T0, T0 + NS_PER_S, T0 - NS_PER_S, TruthParams(), rng)
    with pytest.raises(InputError):
        simulate_path((1.0, 0.0), T0, T0 + NS_PER_S, T0 - NS_PER_S, TruthParams(), rng)
    with pytest.raises(InputError):
        simulate_path((0.25,) * 4, T0, T0 + NS_PER_S, T0 - NS_PER_S, TruthParams(), rng)
    with pytest.raises(InputError):
        simulate_path((0.5, 0.5), T0, T0, T0, TruthParams(), rng)
    with pytest.raises(InputError):
        TruthParams(step_s=0.0)
    with pytest.raises(InputError):
        TruthParams(news_rate_per_s=-1.0)


def test_truth_fn_reads_the_path_and_falls_back_to_static() -> None:
    path = _path((0.6, 0.4), seed=12, pregame_s=600.0)
    game = SimGame("a" * 32, "basketball_nba", "NBA", "Boston Celtics", "New York Knicks",
                   path.start_ns, (0.6, 0.4))
    other = SimGame("b" * 32, "basketball_nba", "NBA", "Miami Heat", "Chicago Bulls",
                    path.start_ns, (0.55, 0.45))
    fn = truth_fn({game.event_id: path})
    later = path.start_ns + 3000 * NS_PER_S
    assert fn(game, later) == path.at(later) != (0.6, 0.4)
    assert fn(other, later) == (0.55, 0.45)
