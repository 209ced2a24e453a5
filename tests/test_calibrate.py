"""Calibration estimators (mmcore.quoting.calibrate) against our own TV10/TV11 tables, recovery of
known A, k from seeded synthetic fills, and the published document's rules
(mmcore.quoting.calibrated: a bad fit never replaces a good one; the reader trusts nothing)."""

from __future__ import annotations

import math
import random

import pytest

from mmcore.errors import InputError
from mmcore.quoting.calibrate import (
    DepthBucket,
    IntensityLimits,
    fit_intensity,
    grid_samples,
    loglinear_fit,
    mle_fit,
    nls_fit,
    sigma_estimates,
    two_scale_sigma,
    waiting_time_lambda,
)
from mmcore.quoting.calibrated import (
    FORMAT,
    apply_overrides,
    document,
    hjb_overrides,
    intensity_entry,
    volatility_entry,
)
from mmcore.quoting.config import DEFAULT_HJB
from mmcore.strategies.volatility import MidVolatility

NS = 1_000_000_000
HOUR_NS = 3600 * NS

# TV10 (quoting-math.md): λ(δ) = 1.2·e^(−0.7δ) at these depths, and the waiting-time method's
# λ̂ with seed 12345 and 20,000 waits per level, which fits to A = 1.198980, k = 0.698828
TV10_DELTAS = [0.5, 1.5, 2.5, 3.5, 4.5, 5.5]
TV10_EXACT = [0.845626, 0.419925, 0.208529, 0.103552, 0.051423, 0.025536]
TV10_WAITING = [0.847791, 0.42114, 0.206681, 0.10425, 0.051857, 0.025646]
# TV11: a 1 s mid series in cents and its σ three ways (¢/√s)
TV11_MIDS = [50.0, 50.0, 50.5, 51.0, 51.0, 50.5, 50.5, 51.5, 52.0, 51.5, 51.5]


def test_tv10_loglinear_and_least_squares_recover_a_and_k_from_the_exact_curve() -> None:
    assert [round(1.2 * math.exp(-0.7 * d), 6) for d in TV10_DELTAS] == TV10_EXACT
    a, k = loglinear_fit(TV10_DELTAS, TV10_EXACT)
    assert (a, k) == pytest.approx((1.2, 0.7), abs=1e-5)  # the table has 6 decimals
    a, k = nls_fit(TV10_DELTAS, TV10_EXACT, start=(1.0, 0.3))  # from far away
    assert (a, k) == pytest.approx((1.2, 0.7), abs=1e-5)  # the table has 6 decimals


def test_tv10_waiting_time_table_fits_to_the_published_figures() -> None:
    a, k = loglinear_fit(TV10_DELTAS, TV10_WAITING)
    # the λ̂ table is rounded to 6 decimals, so the fit matches to ~5e-6
    assert a == pytest.approx(1.198980, abs=1e-5)
    assert k == pytest.approx(0.698828, abs=1e-5)


def test_waiting_time_method_on_seeded_waits_recovers_a_and_k() -> None:
    rng = random.Random(12345)
    lams = [waiting_time_lambda([rng.expovariate(1.2 * math.exp(-0.7 * d)) for _ in range(20_000)])
            for d in TV10_DELTAS]
    for got, exact in zip(lams, TV10_EXACT):
        assert got == pytest.approx(exact, rel=0.03)
    a, k = loglinear_fit(TV10_DELTAS, lams)
    assert a == pytest.approx(1.2, rel=0.02) and k == pytest.approx(0.7, rel=0.02)


def test_waiting_time_with_censoring_counts_only_the_waits_that_ended() -> None:
    assert waiting_time_lambda([2.0, 4.0, 4.0], [False, True, False]) == pytest.approx(2 / 10)
    with pytest.raises(InputError):
        waiting_time_lambda([1.0], [True, False])


def _synthetic(a: float, k: float, seed: int, quotes: int = 400) -> list[DepthBucket]:
    """Our quotes at random depths (−1¢ … 6¢ from theo, on half-cents) for random times, each
    collecting Poisson(A·e^(−kδ)·τ) fills — what the worker's record would show."""
    rng = random.Random(seed)
    by_depth: dict[float, list[float]] = {}
    for _ in range(quotes):
        delta = rng.randrange(-2, 13) * 0.005
        tau = rng.uniform(5.0, 120.0)
        n, t = 0, rng.expovariate(1.0)
        while t < a * math.exp(-k * delta) * tau:  # Poisson by unit-rate arrivals
            n, t = n + 1, t + rng.expovariate(1.0)
        cell = by_depth.setdefault(delta, [0.0, 0.0])
        cell[0] += tau
        cell[1] += n
    return [DepthBucket(d, e, int(n)) for d, (e, n) in sorted(by_depth.items())]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_likelihood_fit_on_seeded_synthetic_fills_recovers_known_a_and_k(seed: int) -> None:
    a_true, k_true = 0.05, 80.0  # 0.05 fills/s at theo, e-fold every 1.25¢
    buckets = _synthetic(a_true, k_true, seed)
    fit = mle_fit(buckets)
    assert abs(fit.k_per_dollar - k_true) < 3 * fit.k_se
    assert fit.k_per_dollar == pytest.approx(k_true, rel=0.15)
    assert fit.a_per_s == pytest.approx(a_true, rel=0.15)
    res = fit_intensity(buckets)
    assert res.rejected is None and res.a_per_s == fit.a_per_s
    assert res.fills == sum(b.fills for b in buckets) >= 30
    assert res.loglinear is not None and res.nls is not None  # reported beside it


def test_likelihood_fit_maximises_the_likelihood() -> None:
    buckets = _synthetic(0.05, 80.0, 9)
    fit = mle_fit(buckets)

    def loglik(a: float, k: float) -> float:
        return sum(b.fills * (math.log(a) - k * b.delta_dollars)
                   - a * math.exp(-k * b.delta_dollars) * b.exposure_s for b in buckets)

    best = loglik(fit.a_per_s, fit.k_per_dollar)
    for da, dk in [(1.01, 0), (0.99, 0), (1, 1.0), (1, -1.0), (1.01, 1.0)]:
        assert loglik(fit.a_per_s * da, fit.k_per_dollar + dk) < best


def test_too_little_data_is_refused_saying_what_is_needed() -> None:
    few = [DepthBucket(0.01, 600.0, 3), DepthBucket(0.02, 600.0, 1), DepthBucket(0.03, 600.0, 1)]
    res = fit_intensity(few)
    assert res.a_per_s is None and "5 maker fill(s); need at least 30" in (res.rejected or "")
    one_depth = [DepthBucket(0.01, 5000.0, 40), DepthBucket(0.02, 5.0, 0)]
    assert "need 3" in (fit_intensity(one_depth).rejected or "")
    with pytest.raises(InputError, match="not identified"):
        mle_fit([DepthBucket(0.01, 100.0, 5), DepthBucket(0.02, 100.0, 0)])  # fills only at an edge


def test_an_uncertain_or_absurd_fit_is_refused() -> None:
    buckets = _synthetic(0.05, 80.0, 4, quotes=60)
    res = fit_intensity(buckets, IntensityLimits(min_fills=1, max_k_rel_se=0.01))
    assert res.k_per_dollar is not None and "too uncertain" in (res.rejected or "")
    res = fit_intensity(buckets, IntensityLimits(min_fills=1, k_bounds_per_dollar=(200.0, 300.0)))
    assert "outside" in (res.rejected or "")


def test_tv11_sigma_three_ways_and_the_std_is_the_baselines_sampler() -> None:
    fit = sigma_estimates([TV11_MIDS], 1.0)
    assert fit.std == pytest.approx(0.45, abs=1e-6)
    assert fit.instant == pytest.approx(0.452267, abs=1e-6)
    assert fit.rms == pytest.approx(0.474342, abs=1e-6)
    # the series sampled on the 1 s grid by the reused MidVolatility is the series itself
    obs = [(i * NS + NS // 3, m) for i, m in enumerate(TV11_MIDS)]  # updates between boundaries
    samples = grid_samples([(0, TV11_MIDS[0]), *obs], NS)
    assert samples[1:] == TV11_MIDS[:-1]
    vol = MidVolatility(NS, window=len(TV11_MIDS), min_samples=2)
    for i, m in enumerate(TV11_MIDS):
        vol.observe(m, i * NS)
    assert vol.sigma() == pytest.approx(fit.std, abs=1e-12)
    # per √s: the same series sampled 4 s apart is half as volatile per √s
    assert sigma_estimates([TV11_MIDS], 4.0).std == pytest.approx(0.225, abs=1e-6)
    # pooled over series: each about its own mean
    two = sigma_estimates([TV11_MIDS, [x + 3 for x in TV11_MIDS]], 1.0)
    assert (two.std, two.diffs, two.series) == (pytest.approx(0.45), 20, 2)
    with pytest.raises(InputError):
        sigma_estimates([[50.0]], 1.0)


def _noisy_walk(rng: random.Random, n: int, sigma: float, eta: float, step_s: float) -> list[float]:
    """A random walk of σ per √s sampled every ``step_s`` plus i.i.d. noise of sd ``eta``."""
    x, out = 0.0, []
    for _ in range(n):
        x += rng.gauss(0.0, sigma * math.sqrt(step_s))
        out.append(x + rng.gauss(0.0, eta))
    return out


def test_two_scale_sigma_sees_through_book_noise_that_inflates_the_tv11_figures() -> None:
    """σ = 0.002/√s under noise of 0.03 logit (about 0.75¢ at 50¢) sampled every 10 s: the
    step-size figures read the noise (≈ 0.0073), the two-scale one finds the diffusion."""
    rng = random.Random(11)
    series = [_noisy_walk(rng, 1_000, 0.002, 0.03, 10.0) for _ in range(12)]
    fit = sigma_estimates(series, 10.0)
    assert fit.std > 3 * 0.002  # the noise read as volatility
    assert fit.two_scale == pytest.approx(0.002, rel=0.15)
    assert fit.used == fit.two_scale and fit.method == "two-scale"
    assert fit.slow_diffs == 12 * (1_000 - 30)
    clean = sigma_estimates([_noisy_walk(rng, 1_000, 0.002, 0.0, 10.0) for _ in range(12)], 10.0)
    assert clean.two_scale == pytest.approx(clean.std, rel=0.15)  # no noise: both agree


def test_two_scale_sigma_falls_back_to_std_when_it_cannot_be_formed() -> None:
    rng = random.Random(12)
    short = [_noisy_walk(rng, 25, 0.002, 0.03, 10.0) for _ in range(3)]  # < 300 s each
    fit = sigma_estimates(short, 10.0)
    assert fit.two_scale is None and fit.slow_diffs == 0 and fit.used == fit.std
    assert fit.method == "std"
    noise = [[rng.gauss(0.0, 0.03) for _ in range(400)] for _ in range(3)]  # no diffusion at all
    two, n = two_scale_sigma(noise, 10.0)
    assert n == 3 * 370
    assert two is None or two < 0.1 * sigma_estimates(noise, 10.0).std
    assert two_scale_sigma(noise, 10.0, slow_s=10.0) == (None, 0)  # no slower horizon


def test_the_document_publishes_the_two_scale_figure() -> None:
    rng = random.Random(13)
    fit = sigma_estimates([_noisy_walk(rng, 1_000, 0.002, 0.03, 10.0) for _ in range(6)], 10.0)
    entry = volatility_entry(fit, None, 5)
    assert entry["sigma_logit_per_sqrt_s"] == fit.two_scale and entry["method"] == "two-scale"
    assert entry["std"] == fit.std and entry["slow_diffs"] == fit.slow_diffs


# --- the published document ---------------------------------------------------------------------


def _good_doc(now_ns: int) -> dict:
    fit = fit_intensity(_synthetic(0.05, 80.0, 1))
    vol = sigma_estimates([[0.0, 0.01, 0.0, 0.02] * 20], 10.0)
    return document(intensity_entry(fit, now_ns), volatility_entry(vol, None, now_ns),
                    written_ns=now_ns, since_ns=now_ns - 24 * HOUR_NS, until_ns=now_ns,
                    previous=None)


def test_the_overlay_sets_a_k_sigma_from_a_fresh_sane_document() -> None:
    now = 1_800_000_000 * NS
    doc = _good_doc(now)
    overrides, notes = hjb_overrides(doc, now + HOUR_NS, 24 * HOUR_NS)
    assert notes == []
    assert overrides == {"a_per_s": doc["intensity"]["a_per_s"],
                         "k_per_dollar": doc["intensity"]["k_per_dollar"],
                         "sigma_logit_per_sqrt_s": doc["volatility"]["sigma_logit_per_sqrt_s"]}
    hjb = apply_overrides(DEFAULT_HJB, overrides)
    assert (hjb.a_per_s, hjb.k_per_dollar, hjb.gamma_per_dollar) == (
        overrides["a_per_s"], overrides["k_per_dollar"], DEFAULT_HJB.gamma_per_dollar)


def test_a_stale_absurd_or_foreign_document_leaves_the_defaults() -> None:
    now = 1_800_000_000 * NS
    doc = _good_doc(now)
    overrides, notes = hjb_overrides(doc, now + 48 * HOUR_NS, 24 * HOUR_NS)
    assert overrides == {} and all("older than" in n for n in notes) and len(notes) == 2
    bad = {**doc, "intensity": {**doc["intensity"], "k_per_dollar": float("nan")},
           "volatility": {**doc["volatility"], "sigma_logit_per_sqrt_s": 3.0}}
    overrides, notes = hjb_overrides(bad, now, 24 * HOUR_NS)
    assert overrides == {} and len(notes) == 2
    assert hjb_overrides({"format": "other"}, now, HOUR_NS) == ({}, [f"not a {FORMAT} document"])
    assert hjb_overrides(["x"], now, HOUR_NS)[0] == {}


def test_a_refused_fit_keeps_the_previous_values_and_says_why() -> None:
    now = 1_800_000_000 * NS
    good = _good_doc(now)
    later = now + 24 * HOUR_NS
    refused = fit_intensity([DepthBucket(0.01, 600.0, 2), DepthBucket(0.02, 600.0, 1)])
    doc = document(intensity_entry(refused, later), volatility_entry(None, "0 sampled", later),
                   written_ns=later, since_ns=now, until_ns=later, previous=good)
    assert doc["intensity"] == good["intensity"] and doc["volatility"] == good["volatility"]
    assert "need at least 30" in doc["last_fit"]["intensity"]["rejected"]
    assert doc["last_fit"]["volatility"]["rejected"] == "0 sampled"
    # the kept values keep their own age: the reader refuses them once they are too old
    assert hjb_overrides(doc, later, 12 * HOUR_NS)[0] == {}
    # no previous document: nothing to keep
    fresh = document(intensity_entry(refused, later), volatility_entry(None, "x", later),
                     written_ns=later, since_ns=now, until_ns=later, previous=None)
    assert fresh["intensity"] is None and fresh["volatility"] is None
