"""Jump detector (logit EWMA, irregular time, gates, theo rule) and triple barrier (TV12)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mmcore.errors import InputError
from mmcore.risk.jumps import (
    NS_PER_S, Barrier, JumpConfig, JumpMonitor, JumpState, check_barrier, combined, depth_mid,
    first_touch, observe, observe_stream, observe_theo, observe_trade,
)
from mmcore.units import CENT
from tests.refvectors import quoting_vectors

S = NS_PER_S
CFG = JumpConfig()


def expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def walk(seed: int, n: int, sigma_per_sqrt_s: float, p0: float = 0.5,
         dt_s: tuple[float, float] = (1.0, 1.0)) -> list[tuple[int, float]]:
    """A quiet logit random walk with (optionally irregular) time steps."""
    rng = random.Random(seed)
    x, t = math.log(p0 / (1 - p0)), 0
    out = [(t, p0)]
    for _ in range(n):
        dt = rng.uniform(*dt_s)
        t += int(dt * S)
        x += rng.gauss(0.0, sigma_per_sqrt_s * math.sqrt(dt))
        out.append((t, expit(x)))
    return out


def run(path: list[tuple[int, float]], cfg: JumpConfig, state: JumpState | None = None):
    state = state or JumpState()
    verdicts = []
    for t, p in path:
        state, v = observe(state, p, t, cfg)
        verdicts.append(v)
    return state, verdicts


SENSITIVE = JumpConfig(min_abs_prob=0.0, min_abs_logit=0.0)
"""No absolute gates: only the σ test decides (so the quiet-walk tests exercise it)."""


@pytest.mark.parametrize("seed", range(5))
def test_quiet_walk_never_pulls(seed: int) -> None:
    _, verdicts = run(walk(seed, 2_000, 0.01), SENSITIVE)
    assert not [v for v in verdicts if v.level == "pull"]
    _, verdicts = run(walk(seed, 2_000, 0.01), CFG)
    assert {v.level for v in verdicts} == {"none"}


@pytest.mark.parametrize("seed", range(5))
def test_irregular_time_steps_are_fair(seed: int) -> None:
    # Steps from 0.1 s (floored to min_dt) to 120 s: variance per √s keeps z comparable.
    path = walk(seed, 1_500, 0.004, dt_s=(0.1, 120.0))
    assert all(0.02 < p < 0.98 for _, p in path)  # stays off the logit clip
    state, verdicts = run(path, SENSITIVE)
    assert not [v for v in verdicts if v.level == "pull"]
    sigma = math.sqrt(state.ewma_var)
    assert 0.0025 < sigma < 0.0055  # the per-√s scale is recovered despite irregular sampling


def test_same_move_is_a_jump_over_one_second_but_not_over_fifteen_minutes() -> None:
    state, _ = run(walk(1, 300, 0.01), SENSITIVE)
    t_last, p_last = state.last_ns, expit(state.last_logit)
    x1 = state.last_logit + 0.3
    _, fast = observe(state, expit(x1), t_last + S, SENSITIVE)
    _, slow = observe(state, expit(x1), t_last + 900 * S, SENSITIVE)
    assert fast.level == "pull" and fast.sigmas > 20
    assert slow.level == "none" and slow.sigmas < 2
    assert p_last < expit(x1)


def test_ten_point_jump_after_warmup_pulls() -> None:
    path = walk(7, 200, 0.005)
    state, verdicts = run(path, CFG)
    assert state.n >= CFG.warmup_n and {v.level for v in verdicts} == {"none"}
    t, p = path[-1]
    _, v = observe(state, p + 0.10, t + S, CFG)
    assert v.level == "pull" and v.d_prob == pytest.approx(0.10, abs=1e-9)
    assert v.d_logit > 0.3 and v.sigmas > CFG.k_sigma


def test_jump_during_warmup_only_widens() -> None:
    state, _ = run([(0, 0.5), (S, 0.5)], CFG)
    _, v = observe(state, 0.7, 2 * S, CFG)
    assert v.level == "widen" and v.sigmas is None


def test_winsorised_update_keeps_detector_sharp_after_a_jump() -> None:
    path = walk(3, 200, 0.005)
    state, _ = run(path, CFG)
    t, p = path[-1]
    state, v1 = observe(state, p + 0.10, t + S, CFG)
    _, v2 = observe(state, p + 0.20, t + 2 * S, CFG)
    assert (v1.level, v2.level) == ("pull", "pull")


def test_tiny_moves_near_half_are_not_jumps() -> None:
    # A dead-flat stream (σ ≈ 0) then a 1¢ tick at 50¢: infinite sigmas, but under the gates.
    state, _ = run([(i * S, 0.5) for i in range(50)], CFG)
    assert state.ewma_var == 0.0
    _, v = observe(state, 0.51, 50 * S, CFG)
    assert v.level == "none" and v.sigmas == math.inf
    _, v = observe(state, 0.55, 50 * S, CFG)  # 5¢ from a dead-flat book is a jump
    assert v.level == "pull"


def test_clipping_keeps_extremes_finite() -> None:
    state, _ = observe(JumpState(), 0.0, 0, CFG)
    state, v = observe(state, 1.0, S, CFG)
    assert math.isfinite(v.d_logit) and v.d_prob == pytest.approx(0.99)
    with pytest.raises(InputError):
        observe(state, 1.2, 2 * S, CFG)


def test_theo_change_is_at_least_widen() -> None:
    # A slow 4pp theo move over 30 min is nothing for σ (the theo stream was noisy), but widens.
    state = JumpState()
    for i, p in enumerate([0.50, 0.56, 0.49, 0.55, 0.50] * 5):
        state, _ = observe_theo(state, p, i * 1800 * S, CFG)
    _, plain = observe(state, 0.54, 26 * 1800 * S, CFG)
    _, theo = observe_theo(state, 0.54, 26 * 1800 * S, CFG)
    assert plain.level == "none" and theo.level == "widen"
    _, small = observe_theo(state, 0.51, 26 * 1800 * S, CFG)
    assert small.level == "none"


def test_monitor_combines_streams_with_hold() -> None:
    CFG = JumpConfig(confirm_ns=0)  # verdicts at once (persistence: the tests below)
    mon = JumpMonitor()
    for i, (t, p) in enumerate(walk(5, 100, 0.005)):
        mon, _ = observe_stream(mon, "mid", p, t, CFG)
        mon, _ = observe_stream(mon, "trade", p, t, CFG)
    t_end = mon.mid.last_ns
    assert combined(mon, t_end, CFG) == "none"
    mon, v = observe_stream(mon, "trade", 0.75, t_end + S, CFG)
    assert v.level == "pull" and mon.mid_verdict.level == "none"
    assert combined(mon, t_end + S, CFG) == "pull"
    assert combined(mon, t_end + S + CFG.hold_ns, CFG) == "pull"
    assert combined(mon, t_end + S + CFG.hold_ns + 1, CFG) == "none"
    mon, _ = observe_stream(mon, "theo", 0.5, 0, CFG)
    mon, v = observe_stream(mon, "theo", 0.45, 1800 * S, CFG)
    assert v.level == "widen" and mon.theo_verdict is v
    with pytest.raises(InputError):
        observe_stream(mon, "book", 0.5, 0, CFG)  # type: ignore[arg-type]


def _warm(stream: str = "mid") -> tuple[JumpMonitor, int, float]:
    mon = JumpMonitor()
    for t, p in walk(5, 100, 0.005):
        mon, _ = observe_stream(mon, stream, p, t, CFG)  # type: ignore[arg-type]
    state = getattr(mon, stream)
    return mon, state.last_ns, expit(state.last_logit)


def test_book_flicker_that_reverts_never_trips() -> None:
    # A level eaten and refilled: the mid jumps 8¢ and is back 1 s later, many times over.
    mon, t, p = _warm()
    for k in range(10):
        t0 = t + 10 * k * S
        mon, v1 = observe_stream(mon, "mid", p + 0.08, t0 + S, CFG)
        mon, v2 = observe_stream(mon, "mid", p, t0 + 2 * S, CFG)
        assert (v1.level, v2.level) == ("none", "none")
        assert combined(mon, t0 + 2 * S + CFG.confirm_ns, CFG) == "none"
    assert mon.pending == ()


def test_move_that_persists_trips_after_confirm_ns() -> None:
    mon, t, p = _warm()
    mon, v = observe_stream(mon, "mid", p + 0.10, t + S, CFG)
    assert v.level == "none" and dict(mon.pending)["mid"].verdict.level == "pull"
    assert combined(mon, t + S + CFG.confirm_ns - 1, CFG) == "none"
    # a quiet book after the move: combined confirms it from the latest value, no event needed
    assert combined(mon, t + S + CFG.confirm_ns, CFG) == "pull"
    # the next book event (still moved, half-way back is still the move) confirms it for good
    mon, v = observe_stream(mon, "mid", p + 0.06, t + S + CFG.confirm_ns, CFG)
    assert v.level == "pull" and 0.05 < v.d_prob <= 0.06  # from the level where the walk had been
    assert mon.pending == () and combined(mon, t + S + CFG.confirm_ns + CFG.hold_ns, CFG) == "pull"


def test_sweep_print_deep_in_the_book_is_not_a_jump() -> None:
    mon = JumpMonitor()
    t = 0
    for i in range(40):  # buys at the 52¢ ask, one every 2 s
        t = i * 2 * S
        mon, _ = observe_trade(mon, "bid", 0.52, t, CFG)
    mon, v1 = observe_trade(mon, "bid", 0.60, t + S, CFG)  # a sweep's last print, 8¢ deep
    mon, v2 = observe_trade(mon, "bid", 0.52, t + 5 * S, CFG)
    assert (v1.level, v2.level) == ("none", "none")
    assert combined(mon, t + 10 * S, CFG) == "none"


def test_depth_mid_ignores_thin_top_and_our_orders() -> None:
    bids = {4800: 100, 4700: 2500}
    asks = {5200: 2500, 5300: 2500}
    plain = depth_mid(bids, asks, 1000)
    assert plain == pytest.approx((4800 * 100 + 4700 * 900 + 5200 * 1000) / 1000 / 2)
    # a 1-lot penny bid at 51¢ moves the top mid by 1.5¢ but the depth mid by ~0.1¢
    flicker = depth_mid({**bids, 5100: 100}, asks, 1000)
    assert abs(flicker - plain) < 40
    # our own 10-lot at 50¢ does not count at all
    assert depth_mid({**bids, 5000: 1000}, asks, 1000, exclude=[("bid", 5000, 1000)]) == plain
    assert depth_mid({}, asks, 1000) is None


def test_confirm_config_is_checked() -> None:
    with pytest.raises(InputError):
        JumpConfig(confirm_ns=-1)
    with pytest.raises(InputError):
        JumpConfig(confirm_fraction=0.0)


# --- triple barrier -------------------------------------------------------------------------


def _tv12() -> dict:
    return quoting_vectors()["TV12_triple_barrier"]


@pytest.mark.parametrize("scale", ["price_units", "probability"])
def test_tv12_reproduced(scale: str) -> None:
    tv = _tv12()
    # TV12 is in cents and seconds: price units are exact ints; probabilities exercise the
    # float tolerance (0.44 − 0.47 is not exactly −0.03).
    conv = (lambda c: float(round(c * CENT))) if scale == "price_units" else (lambda c: c / 100)
    path = [(int(t * S), conv(c)) for t, c in tv["path"]]
    for tp, (label, t_s, price_c) in ((tv["tp"], tv["label"]), (1.0, tv["label_tp1"])):
        b = Barrier.with_horizon(conv(tv["entry"]), tv["side"], conv(tp), conv(tv["sl"]),
                                 opened_ns=0, horizon_ns=tv["vertical_s"] * S)
        assert first_touch(b, path) == (label, t_s * S, pytest.approx(conv(price_c)))


def test_first_touch_vertical_none_and_ordering() -> None:
    b = Barrier(4_700.0, 1, 200.0, 300.0, vertical_ns=100 * S, opened_ns=10 * S)
    assert first_touch(b, []) == ("none", 10 * S, 4_700.0)
    assert first_touch(b, [(0, 9_000.0), (20 * S, 4_750.0)]) == ("none", 20 * S, 4_750.0)
    assert first_touch(b, [(20 * S, 4_750.0), (150 * S, 5_000.0)]) == (
        "vertical", 100 * S, 4_750.0)
    assert first_touch(b, [(20 * S, 4_750.0), (100 * S, 4_800.0)]) == (
        "vertical", 100 * S, 4_800.0)
    assert first_touch(b, [(100 * S, 4_900.0)]) == ("take_profit", 100 * S, 4_900.0)
    short = Barrier(4_700.0, -1, 200.0, 300.0, vertical_ns=100 * S, opened_ns=0)
    assert first_touch(short, [(S, 4_900.0), (2 * S, 4_550.0)]) == ("none", 2 * S, 4_550.0)
    assert first_touch(short, [(S, 4_550.0), (2 * S, 4_500.0)]) == ("take_profit", 2 * S, 4_500.0)
    assert first_touch(short, [(S, 5_000.0)]) == ("stop_loss", S, 5_000.0)
    with pytest.raises(InputError):
        first_touch(b, [(20 * S, 4_700.0), (19 * S, 4_700.0)])


def test_with_horizon_caps_at_not_after() -> None:
    b = Barrier.with_horizon(0.47, 1, 0.02, 0.03, opened_ns=0, horizon_ns=600 * S,
                             not_after_ns=300 * S)
    assert b.vertical_ns == 300 * S
    with pytest.raises(InputError):
        Barrier(0.47, 0, 0.02, 0.03, 10, 0)
    with pytest.raises(InputError):
        Barrier(0.47, 1, 0.0, 0.03, 10, 0)


@given(
    entry=st.integers(100, 9_900),
    side=st.sampled_from([1, -1]),
    tp=st.integers(1, 3_000),
    sl=st.integers(1, 3_000),
    price=st.integers(0, 10_000),
    vertical=st.integers(0, 1_000),
    now=st.integers(0, 2_000),
)
def test_check_barrier_labels_consistent_with_thresholds(
    entry: int, side: int, tp: int, sl: int, price: int, vertical: int, now: int
) -> None:
    b = Barrier(float(entry), side, float(tp), float(sl), vertical_ns=vertical, opened_ns=0)
    label = check_barrier(b, float(price), now)
    gain = side * (price - entry)
    if now > vertical:
        assert label == "vertical"
    elif gain >= tp:
        assert label == "take_profit"
    elif gain <= -sl:
        assert label == "stop_loss"
    else:
        assert label == ("vertical" if now == vertical else "none")


@given(
    entry=st.floats(0.05, 0.95), side=st.sampled_from([1, -1]),
    tp=st.floats(0.005, 0.2), sl=st.floats(0.005, 0.2),
    prices=st.lists(st.floats(0.0, 1.0), max_size=30),
)
def test_first_touch_is_first_point_check_barrier_flags(
    entry: float, side: int, tp: float, sl: float, prices: list[float]
) -> None:
    b = Barrier(entry, side, tp, sl, vertical_ns=10**12, opened_ns=0)
    path = [(i * S, p) for i, p in enumerate(prices)]
    flags = [check_barrier(b, p, t) for t, p in path]
    label, t, p = first_touch(b, path)
    hits = [i for i, f in enumerate(flags) if f != "none"]
    assume(all(abs(side * (q - entry) - tp) > 1e-6 for q in prices))
    if hits:
        assert (label, t, p) == (flags[hits[0]], *path[hits[0]])
    else:
        assert label == "none"
