"""Estimators for the model's A, k and σ from data (quoting-math.md §1.5, TV10, TV11). Pure.

The fill intensity of a quote resting at depth δ from the reference (theo) is
λ(δ) = A·e^(−kδ) (:func:`mmcore.quoting.hjb.fill_intensity`). The data are **depth buckets**:
for each depth δ (dollars = probability, as in :class:`~mmcore.quoting.hjb.HjbParams`), the
time our quotes rested there (quote-seconds) and the maker fills they collected there.

- :func:`bucket_lambdas`: λ̂ = fills / exposure per bucket. It is the waiting-time estimator with
  censoring: each quote's time at δ is a wait for a fill that either ended in one or was cut
  short by a cancel or a move, and the rate of an exponential wait is events / total waiting.
  :func:`waiting_time_lambda` is the same estimator over explicit waits (TV10's method).
- :func:`loglinear_fit`: OLS of ln λ̂ on δ (hftbacktest); buckets without a fill are dropped.
- :func:`nls_fit`: least squares of λ̂ − A·e^(−kδ) (Levenberg–Marquardt; what scipy's
  ``curve_fit`` does for Hummingbot), started from the log-linear answer.
- :func:`mle_fit`: maximum likelihood on the buckets (the reference's recommendation for our own
  quotes): ℓ(A,k) = Σ nⱼ(ln A − kδⱼ) − A·e^(−kδⱼ)τⱼ. For fixed k the best A is
  Σn / Σ e^(−kδ)τ, and the best k makes the exposure-weighted mean depth under weights
  τ·e^(−kδ) equal the fills' mean depth — a monotone equation, solved by bisection. It uses the
  buckets without fills (censoring) and gives the standard error of k from the Fisher
  information. :func:`fit_intensity` uses it for the answer and reports the other two beside it.

σ is estimated in **logit units per √s** (§3.2: stable across price levels; the model converts
with σ_p = σ_L·p(1−p)). A mid series is sampled on a fixed clock grid by the baselines' sampler
(:class:`mmcore.strategies.volatility.MidVolatility`, reused, not copied) and
:func:`sigma_estimates` gives TV11's three figures over one or more series, pooled, and a
**two-scale** figure, the one published (:attr:`SigmaFit.used`). A book mid is the fair value plus
microstructure noise (makers pennying each other, sides emptying and refilling): E[(Δ_h x)²] =
σ²h + 2η² at horizon h, so the squared differences at the 10 s step read the noise as
volatility (in the simulated world, whose hidden truth diffuses at σ = 0.002 logit/√s pregame
plus news jumps, the 10 s ``std`` figure of a 3-game backtest's journals is 0.005–0.008). The
two-scale estimator differences the mean squared change at a slow horizon (overlapping
differences, every sample used) and at the sampling step, which cancels the 2η²:
σ² = (E[(Δ_slow x)²] − E[(Δ_fast x)²]) / (slow − fast); the same journals give 0.0021–0.0032
(benign, default; toxic 0.0094 against 0.0119: its news jumps are real moves). When noise overwhelms it (≤ 0) or the series are too short for the
slow horizon, ``used`` falls back to ``std``.

Units: depths in dollars per contract (= probability), times in seconds (exposure) or ns
(observations), A per second, k per dollar, σ per √s of the sampled quantity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mmcore.errors import InputError
from mmcore.strategies.volatility import MidVolatility

NS = 1_000_000_000


# --- intensity: A, k ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DepthBucket:
    """Our quotes at one depth: ``delta_dollars`` from theo (negative = through theo), the
    quote-seconds they rested there and the maker fills they got there."""

    delta_dollars: float
    exposure_s: float
    fills: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.delta_dollars) and math.isfinite(self.exposure_s)
                and self.exposure_s >= 0 and self.fills >= 0):
            raise InputError(f"bad depth bucket {self!r}: need a finite depth, exposure >= 0, "
                             "fills >= 0")


def waiting_time_lambda(waits_s: Sequence[float], censored: Sequence[bool] | None = None) -> float:
    """λ̂ = (waits that ended in the event) / (total waiting time): 1 / mean wait when nothing
    is censored. ``censored[i]`` marks a wait cut short before the event happened."""
    if censored is not None and len(censored) != len(waits_s):
        raise InputError("waits and censored flags differ in length")
    total = math.fsum(waits_s)
    events = len(waits_s) - (sum(censored) if censored is not None else 0)
    if total <= 0 or any(w < 0 for w in waits_s):
        raise InputError("waiting times must be >= 0 with a positive total")
    return events / total


def bucket_lambdas(buckets: Sequence[DepthBucket]) -> list[float]:
    """λ̂ per bucket (fills per quote-second); buckets without exposure are refused."""
    if any(b.exposure_s <= 0 for b in buckets):
        raise InputError("a bucket without exposure has no intensity")
    return [b.fills / b.exposure_s for b in buckets]


def loglinear_fit(deltas: Sequence[float], lambdas: Sequence[float]) -> tuple[float, float]:
    """(A, k) from OLS of ln λ on δ over the points with λ > 0; InputError with fewer than two
    such points at different depths."""
    pts = [(d, math.log(lam)) for d, lam in zip(deltas, lambdas, strict=True) if lam > 0]
    if len({d for d, _ in pts}) < 2:
        raise InputError(f"log-linear fit needs fills at two depths or more, got {len(pts)} point(s)")
    n = len(pts)
    mx = math.fsum(d for d, _ in pts) / n
    my = math.fsum(y for _, y in pts) / n
    slope = (math.fsum((d - mx) * (y - my) for d, y in pts)
             / math.fsum((d - mx) ** 2 for d, _ in pts))
    return math.exp(my - slope * mx), -slope


def nls_fit(deltas: Sequence[float], lambdas: Sequence[float],
            start: tuple[float, float] | None = None, *, max_iter: int = 200) -> tuple[float, float]:
    """(A, k) minimising Σ (A·e^(−kδ) − λ)² by Levenberg–Marquardt from ``start`` (default: the
    log-linear fit). Needs two depths or more."""
    ds, ls = list(deltas), list(lambdas)
    if len(ds) != len(ls) or len(set(ds)) < 2:
        raise InputError("least-squares fit needs points at two depths or more")
    a, k = start if start is not None else loglinear_fit(ds, ls)

    def sse(a_: float, k_: float) -> float:
        return math.fsum((a_ * math.exp(-k_ * d) - lam) ** 2 for d, lam in zip(ds, ls))

    cost, damping = sse(a, k), 1e-3
    for _ in range(max_iter):
        # normal equations of the Gauss–Newton step: J = [e^(−kδ), −Aδe^(−kδ)]
        jaa = jak = jkk = ga = gk = 0.0
        for d, lam in zip(ds, ls):
            e = math.exp(-k * d)
            r = a * e - lam
            ja, jk = e, -a * d * e
            jaa, jak, jkk = jaa + ja * ja, jak + ja * jk, jkk + jk * jk
            ga, gk = ga + ja * r, gk + jk * r
        improved = False
        while damping < 1e12:
            m11, m22 = jaa * (1 + damping), jkk * (1 + damping)
            det = m11 * m22 - jak * jak
            if det <= 0:
                damping *= 10
                continue
            da = -(m22 * ga - jak * gk) / det
            dk = -(m11 * gk - jak * ga) / det
            new = sse(a + da, k + dk)
            if new <= cost and a + da > 0:
                step = max(abs(da) / max(abs(a), 1e-300), abs(dk) / max(abs(k), 1e-300))
                a, k, cost, damping, improved = a + da, k + dk, new, max(damping / 10, 1e-12), True
                if step < 1e-13:
                    return a, k
                break
            damping *= 10
        if not improved:
            break
    return a, k


@dataclass(frozen=True, slots=True)
class MleFit:
    a_per_s: float
    k_per_dollar: float
    k_se: float
    """Standard error of k (per dollar) from the Fisher information at the maximum."""


def mle_fit(buckets: Sequence[DepthBucket]) -> MleFit:
    """Maximum-likelihood (A, k) over the buckets (module docstring). InputError when the fills'
    mean depth is not strictly inside the exposed depths' range (k would be ±∞) or nothing
    filled."""
    bs = [b for b in buckets if b.exposure_s > 0]
    n = sum(b.fills for b in bs)
    if n == 0 or len({b.delta_dollars for b in bs}) < 2:
        raise InputError(f"likelihood fit needs fills and exposure at two depths or more "
                         f"(got {n} fill(s) over {len(bs)} exposed bucket(s))")
    if any(b.fills and b.exposure_s <= 0 for b in buckets):
        raise InputError("fills at a depth with no exposure")
    target = math.fsum(b.fills * b.delta_dollars for b in bs) / n
    lo_d, hi_d = min(b.delta_dollars for b in bs), max(b.delta_dollars for b in bs)
    if not lo_d < target < hi_d:
        raise InputError(f"the fills' mean depth {target:.6f} is not inside the quoted depths "
                         f"[{lo_d:.6f}, {hi_d:.6f}]: k is not identified")

    def moments(k: float) -> tuple[float, float, float, float]:
        """(log Σw, weighted mean δ, weighted var δ) with w = τ·e^(−kδ), and max log w."""
        lw = [math.log(b.exposure_s) - k * b.delta_dollars for b in bs]
        top = max(lw)
        w = [math.exp(x - top) for x in lw]
        sw = math.fsum(w)
        mean = math.fsum(wi * b.delta_dollars for wi, b in zip(w, bs)) / sw
        var = math.fsum(wi * (b.delta_dollars - mean) ** 2 for wi, b in zip(w, bs)) / sw
        return math.log(sw), mean, var, top

    lo, hi = -1.0, 1.0  # the weighted mean decreases in k: bracket the root, then bisect
    while moments(hi)[1] > target:
        hi *= 2
        if hi > 1e12:
            raise InputError("likelihood fit: k diverges")
    while moments(lo)[1] < target:
        lo *= 2
        if lo < -1e12:
            raise InputError("likelihood fit: k diverges")
    for _ in range(200):
        mid = (lo + hi) / 2
        if not lo < mid < hi:
            break
        if moments(mid)[1] > target:
            lo = mid
        else:
            hi = mid
    k = (lo + hi) / 2
    log_sw, _, var, top = moments(k)
    a = n / math.exp(log_sw + top)
    se = math.inf if var <= 0 else 1 / math.sqrt(n * var)  # Σμ = n at the maximum
    return MleFit(a, k, se)


@dataclass(frozen=True)
class IntensityLimits:
    """How much data a fit needs, and the values a worker may be given (sanity bounds)."""

    min_fills: int = 30
    min_buckets: int = 3
    """Depths with at least ``min_bucket_exposure_s`` of quoting."""
    min_bucket_exposure_s: float = 30.0
    max_k_rel_se: float = 0.5
    """The fit is refused when SE(k)/k is above this (k not pinned down by the data)."""
    a_bounds_per_s: tuple[float, float] = (1e-5, 10.0)
    k_bounds_per_dollar: tuple[float, float] = (2.0, 5000.0)
    """k = 2/$ decays by e over 50¢; 5000/$ over 0.02¢: outside, the fit is nonsense."""


@dataclass(frozen=True)
class IntensityFit:
    """The MLE answer (``a_per_s``, ``k_per_dollar``) with its data and the other estimators'
    figures for comparison; ``rejected`` says why the answer must not be used (None = usable)."""

    a_per_s: float | None
    k_per_dollar: float | None
    k_se: float | None
    fills: int
    exposure_s: float
    buckets: int
    loglinear: tuple[float, float] | None
    nls: tuple[float, float] | None
    rejected: str | None


def fit_intensity(buckets: Sequence[DepthBucket], limits: IntensityLimits = IntensityLimits()) -> IntensityFit:
    """A and k from depth buckets, refused (with the reason and what is needed) when the data
    are too few or the answer leaves the sanity bounds. Never raises on data."""
    bs = [b for b in buckets if b.exposure_s > 0]
    fills = sum(b.fills for b in bs)
    exposure = math.fsum(b.exposure_s for b in bs)
    solid = sum(1 for b in bs if b.exposure_s >= limits.min_bucket_exposure_s)
    loglin = nls = None
    if len(bs) >= 2:
        deltas, lams = [b.delta_dollars for b in bs], bucket_lambdas(bs)
        try:
            loglin = loglinear_fit(deltas, lams)
            nls = nls_fit(deltas, lams, loglin)
        except (InputError, OverflowError, ZeroDivisionError):
            pass

    def out(reason: str | None, fit: MleFit | None = None) -> IntensityFit:
        return IntensityFit(fit.a_per_s if fit else None, fit.k_per_dollar if fit else None,
                            fit.k_se if fit else None, fills, exposure, len(bs), loglin, nls, reason)

    if fills < limits.min_fills:
        return out(f"{fills} maker fill(s); need at least {limits.min_fills}")
    if solid < limits.min_buckets:
        return out(f"{solid} depth(s) quoted for >= {limits.min_bucket_exposure_s:g} s; need "
                   f"{limits.min_buckets}")
    try:
        fit = mle_fit(bs)
    except InputError as exc:
        return out(str(exc))
    (alo, ahi), (klo, khi) = limits.a_bounds_per_s, limits.k_bounds_per_dollar
    if not alo <= fit.a_per_s <= ahi:
        return out(f"A = {fit.a_per_s:.6g}/s outside [{alo:g}, {ahi:g}]", fit)
    if not klo <= fit.k_per_dollar <= khi:
        return out(f"k = {fit.k_per_dollar:.6g}/$ outside [{klo:g}, {khi:g}]", fit)
    if fit.k_se / fit.k_per_dollar > limits.max_k_rel_se:
        return out(f"k = {fit.k_per_dollar:.4g} ± {fit.k_se:.3g}/$ is too uncertain "
                   f"(SE/k above {limits.max_k_rel_se:g}): more fills over more depths needed", fit)
    return out(None, fit)


# --- volatility: σ ------------------------------------------------------------------------------


def logit(p: float, eps: float = 1e-4) -> float:
    """ln(p/(1−p)), with p clamped to [eps, 1 − eps] (a mid at the edge of the grid)."""
    p = min(1 - eps, max(eps, p))
    return math.log(p / (1 - p))


def grid_samples(observations: Iterable[tuple[int, float]], sample_ns: int) -> list[float]:
    """The value prevailing at every ``sample_ns`` boundary of one series of (ns, value) in time
    order — :class:`MidVolatility`'s sampling, over the whole series (no rolling window)."""
    obs = list(observations)
    if not obs:
        return []
    span = (obs[-1][0] - obs[0][0]) // sample_ns + 2
    vol = MidVolatility(sample_ns, window=max(2, span), min_samples=2)
    for t, v in obs:
        vol.observe(v, t)
    return list(vol.samples)


@dataclass(frozen=True, slots=True)
class SigmaFit:
    """TV11's three estimators per √s, pooled over series: ``std`` (hftbacktest: the std of the
    sample differences, each series about its own mean), ``instant`` (Hummingbot:
    √(Σd²/number of samples)), ``rms`` (√(Σd²/number of differences))."""

    std: float
    instant: float
    rms: float
    diffs: int
    series: int
    sample_s: float
    two_scale: float | None = None
    """σ per √s with the noise term cancelled (module docstring); None when it could not be
    formed (no series spans ``slow_s``, or noise swamps the difference)."""
    slow_s: float = 0.0
    slow_diffs: int = 0
    """Overlapping differences at the slow horizon (``slow_s`` seconds) behind ``two_scale``."""

    @property
    def used(self) -> float:
        """The figure workers get: ``two_scale`` when formed, else ``std``."""
        return self.two_scale if self.two_scale is not None else self.std

    @property
    def method(self) -> str:
        return "two-scale" if self.two_scale is not None else "std"


DEFAULT_SLOW_S = 300.0
"""The two-scale estimator's slow horizon: long enough that the book's flicker (seconds to a
minute or two) is a small share of the squared change, short enough that a quarter hour of
quoting still gives overlapping differences."""
MIN_SLOW_DIFFS = 30


def two_scale_sigma(series: Sequence[Sequence[float]], sample_s: float,
                    slow_s: float = DEFAULT_SLOW_S) -> tuple[float | None, int]:
    """σ per √s from the mean squared change at ``slow_s`` (overlapping differences) minus that
    at the sampling step, over (slow − fast) seconds; and how many slow differences it used.
    None when fewer than :data:`MIN_SLOW_DIFFS` slow differences exist or the difference is
    not positive (noise dominates: no diffusion measurable)."""
    lag = round(slow_s / sample_s)
    if sample_s <= 0 or lag < 2:
        return None, 0
    slow_sq = fast_sq = 0.0
    n_slow = n_fast = 0
    for xs in series:
        if len(xs) <= lag:
            continue
        slow_sq += math.fsum((b - a) ** 2 for a, b in zip(xs, xs[lag:]))
        fast_sq += math.fsum((b - a) ** 2 for a, b in zip(xs, xs[1:]))
        n_slow += len(xs) - lag
        n_fast += len(xs) - 1
    if n_slow < MIN_SLOW_DIFFS:
        return None, n_slow
    var = (slow_sq / n_slow - fast_sq / n_fast) / ((lag - 1) * sample_s)
    return (math.sqrt(var) if var > 0 else None), n_slow


def sigma_estimates(series: Sequence[Sequence[float]], sample_s: float,
                    slow_s: float = DEFAULT_SLOW_S) -> SigmaFit:
    """σ per √s from sampled series (``sample_s`` seconds apart): TV11's three figures and the
    two-scale one at ``slow_s``; InputError with no difference."""
    if sample_s <= 0:
        raise InputError(f"sample_s must be > 0, got {sample_s!r}")
    sq = centred = 0.0
    n_diffs = n_samples = used = 0
    for xs in series:
        if len(xs) < 2:
            continue
        d = [b - a for a, b in zip(xs, xs[1:])]
        mean = math.fsum(d) / len(d)
        sq += math.fsum(x * x for x in d)
        centred += math.fsum((x - mean) ** 2 for x in d)
        n_diffs, n_samples, used = n_diffs + len(d), n_samples + len(xs), used + 1
    if n_diffs == 0:
        raise InputError("no series with two samples or more: no volatility")
    root = math.sqrt(sample_s)
    two, n_slow = two_scale_sigma(series, sample_s, slow_s)
    return SigmaFit(math.sqrt(centred / n_diffs) / root, math.sqrt(sq / n_samples) / root,
                    math.sqrt(sq / n_diffs) / root, n_diffs, used, sample_s,
                    two, slow_s, n_slow)


@dataclass(frozen=True)
class SigmaLimits:
    min_diffs: int = 30
    sigma_bounds_per_sqrt_s: tuple[float, float] = (1e-6, 0.5)
    """Logit per √s: 0.5/√s moves a 50¢ contract ~12¢ a second — a broken feed, not a market."""


def check_sigma(fit: SigmaFit | None, limits: SigmaLimits = SigmaLimits()) -> str | None:
    """Why the σ fit (its :attr:`~SigmaFit.used` figure) must not be used, or None."""
    if fit is None or fit.diffs < limits.min_diffs:
        got = 0 if fit is None else fit.diffs
        return f"{got} sampled mid difference(s); need at least {limits.min_diffs}"
    lo, hi = limits.sigma_bounds_per_sqrt_s
    if not lo <= fit.used <= hi:
        return f"σ = {fit.used:.6g} logit/√s ({fit.method}) outside [{lo:g}, {hi:g}]"
    return None


__all__ = ["DepthBucket", "IntensityFit", "IntensityLimits", "MleFit", "SigmaFit", "SigmaLimits",
           "bucket_lambdas", "check_sigma", "fit_intensity", "grid_samples", "logit",
           "loglinear_fit", "mle_fit", "nls_fit", "sigma_estimates", "two_scale_sigma",
           "waiting_time_lambda"]
