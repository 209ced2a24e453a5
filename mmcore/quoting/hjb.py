"""Inventory-aware model quotes from the market-making HJB: A-S, GLFT and the binary adaptation.

Reference: quoting-math.md §1 (Avellaneda–Stoikov), §2 (GLFT, Guéant c₁/c₂), §3 (binaries).
Pure functions; rounding to the tick grid is :func:`to_grid`, clamping to the book is elsewhere.

Two layers, two unit conventions:

- **Formula layer** (``as_*``, ``glft_*``, ``fill_intensity``) is unit-agnostic, as in the papers:
  every price-like argument and result is in the unit of ``s`` (call it U: ticks, cents, dollars);
  ``gamma`` and ``k`` are per U, ``sigma`` is U/√time, ``a`` per time, ``tau`` in time, ``q`` in
  lots. The test vectors use ticks and cents and call this layer directly.
- **Model layer** (:class:`HjbParams`, :func:`model_quotes`, the binary helpers) fixes U =
  **dollars per contract = probability** (a contract pays $1) and time = **seconds**; field names
  carry the units. :func:`to_grid` converts probability to integer price units ($0.0001).

Design decision (§3.3): a pre-game book's binding risk is holding inventory at the game start,
which then carries the settlement variance p(1−p) per contract. Plain A-S with horizon = start
would shrink the skew exactly as that risk arrives, so :func:`model_quotes` uses GLFT stationary
quotes and, when ``carry_to_settlement``, adds the settlement skew γ·p(1−p) per contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

from mmcore.errors import ConfigError, InputError
from mmcore.ticks import TickGrid
from mmcore.units import prob_to_price

INF = math.inf


def _c1(gamma: float, k: float) -> float:
    """(1/γ)·ln(1 + γ/k), with its γ → 0 limit 1/k."""
    return 1.0 / k if gamma == 0 else math.log1p(gamma / k) / gamma


def fill_intensity(delta: float, a: float, k: float) -> float:
    """λ(δ) = A·e^(−kδ): fill rate (per time) of a quote at depth δ (U) from the reference."""
    return a * math.exp(-k * delta)


# --- Avellaneda–Stoikov ------------------------------------------------------------------------


class AsQuote(NamedTuple):
    """Reservation price and depths from ``s`` (bid = s − delta_b, ask = s + delta_a), in U."""
    reservation: float
    delta_b: float
    delta_a: float


def as_finite(s: float, q: float, gamma: float, sigma: float, k: float, tau: float) -> AsQuote:
    """A-S finite horizon (§1.3): r = s − qγσ²τ, spread γσ²τ + (2/γ)ln(1 + γ/k), centred on r."""
    if gamma < 0 or sigma < 0 or k <= 0 or tau < 0:
        raise InputError("as_finite needs gamma >= 0, sigma >= 0, k > 0, tau >= 0")
    inv = gamma * sigma * sigma * tau
    c = _c1(gamma, k)
    return AsQuote(s - q * inv, (1 + 2 * q) * inv / 2 + c, (1 - 2 * q) * inv / 2 + c)


class AsStationaryQuote(NamedTuple):
    """A-S stationary (§1.4), in U. An infinite reservation means that side is absent (None)."""
    r_b: float
    r_a: float
    bid: float | None
    ask: float | None
    omega: float


def as_stationary(
    s: float, q: float, gamma: float, sigma: float, k: float, q_max: float
) -> AsStationaryQuote:
    """A-S infinite horizon with ω = ½γ²σ²(q_max+1)² and the **exact** reservation ask (§1.4).

    σ cancels from the prices: r̄_b − s = (1/γ)ln(1 − (1+2q)/D), r̄_a − s = −(1/γ)ln(1 + (2q−1)/D)
    with D = (q_max+1)² − q². r̄_b = −∞ at q = +q_max (no bid), r̄_a = +∞ at q = −q_max (no ask).
    """
    if gamma <= 0 or sigma < 0 or k <= 0 or q_max <= 0:
        raise InputError("as_stationary needs gamma > 0, sigma >= 0, k > 0, q_max > 0")
    if abs(q) > q_max:
        raise InputError(f"as_stationary is defined for |q| <= q_max ({q_max}), got {q}")
    d = (q_max + 1) ** 2 - q * q
    xb, xa = 1 - (1 + 2 * q) / d, 1 + (2 * q - 1) / d
    r_b = s + math.log(xb) / gamma if xb > 0 else -INF
    r_a = s - math.log(xa) / gamma if xa > 0 else INF
    c = _c1(gamma, k)
    bid = r_b - c if math.isfinite(r_b) else None
    ask = r_a + c if math.isfinite(r_a) else None
    return AsStationaryQuote(r_b, r_a, bid, ask, 0.5 * (gamma * sigma * (q_max + 1)) ** 2)


# --- GLFT ----------------------------------------------------------------------------------------


class GlftCoefficients(NamedTuple):
    """Guéant (2017) c₁ (U) and c₂ (U⁻¹ per unit σ, i.e. skew = σ·c₂)."""
    c1: float
    c2: float


def glft_coefficients(
    *, gamma: float, a: float, k: float, delta_lot: float = 1.0, xi: float | None = None
) -> GlftCoefficients:
    """c₁ = ln(1 + ξΔ/k)/(ξΔ), c₂ = √(γ/(2AΔk)·(1 + ξΔ/k)^(k/(ξΔ)+1)) (§2.3); ξ defaults to γ.

    σ does not enter c₁/c₂ (it multiplies c₂ in the quotes). ξ = 0 takes the limits
    c₁ = 1/k, c₂ = √(γe/(2AΔk)).
    """
    xi = gamma if xi is None else xi
    if gamma < 0 or xi < 0 or a <= 0 or k <= 0 or delta_lot <= 0:
        raise InputError("glft_coefficients needs gamma, xi >= 0 and a, k, delta_lot > 0")
    x = xi * delta_lot
    c1 = _c1(x, k)
    growth = math.e if x == 0 else math.exp((k / x + 1) * math.log1p(x / k))
    return GlftCoefficients(c1, math.sqrt(gamma / (2 * a * delta_lot * k) * growth))


class GlftQuote(NamedTuple):
    """Closed-form GLFT quote in U: bid/ask (None past the bound), half-spread, skew per unit q."""
    bid: float | None
    ask: float | None
    half_spread: float
    skew: float
    reservation: float


def glft_quotes(
    theo: float, q: float, coeffs: GlftCoefficients, sigma: float, q_max: float,
    delta_lot: float = 1.0,
) -> GlftQuote:
    """r = theo − σc₂·q; bid = r − half, ask = r + half, half = c₁ + (Δ/2)σc₂ (§2.3).

    Hard bound: no bid if q + Δ > Q, no ask if q − Δ < −Q. Depths: δᵇ = half + skew·q,
    δᵃ = half − skew·q.
    """
    skew = sigma * coeffs.c2
    half = coeffs.c1 + delta_lot / 2 * skew
    r = theo - skew * q
    bid = None if q + delta_lot > q_max else r - half
    ask = None if q - delta_lot < -q_max else r + half
    return GlftQuote(bid, ask, half, skew, r)


def _pivots(diag: list[float], eta: float, x: float) -> list[float]:
    """LDLᵀ pivots of (tridiag(−η, diag, −η) − x·I), first row first. Their negative count is
    the number of eigenvalues below x (Sturm), and at an eigenvalue x = λ they are the
    eigenvector's ratios: f_{i+1}/f_i = d_i/η."""
    d = [diag[0] - x]
    for a in diag[1:]:
        prev = d[-1] if d[-1] != 0 else 1e-300
        d.append(a - x - eta * eta / prev)
    return d


class GlftExactDepths(NamedTuple):
    """Exact stationary GLFT depths in U, indexed by q = −Q…Q; None where the side is absent."""
    q_max: int
    delta_b: tuple[float | None, ...]
    delta_a: tuple[float | None, ...]

    def at(self, q: int) -> tuple[float | None, float | None]:
        return self.delta_b[q + self.q_max], self.delta_a[q + self.q_max]


def glft_exact_stationary(
    gamma: float, sigma: float, a: float, k: float, q_max: int
) -> GlftExactDepths:
    """GLFT Thm. 2 (§2.2): depths from f⁰, the eigenvector of M's smallest eigenvalue λ₀.

    M is (2Q+1)² tridiagonal: diagonal α·q² with α = (k/2)γσ², off-diagonals −η with
    η = A(1 + γ/k)^(−(1+k/γ)); δᵇ(q) = c + (1/k)ln(f_q/f_{q+1}), δᵃ(q) = c + (1/k)ln(f_q/f_{q−1}),
    c = (1/γ)ln(1 + γ/k). λ₀ comes from Sturm-count bisection; the ratios f_{q+1}/f_q for q < 0
    are the elimination pivots at λ₀ divided by η, computed from the edge q = −Q inward (the
    stable direction), and M is symmetric in q ↔ −q, so δᵃ(q) = δᵇ(−q). Working with ratios,
    never with f itself, nothing underflows however thin the tails of f are.
    """
    if gamma <= 0 or sigma < 0 or a <= 0 or k <= 0 or q_max < 1:
        raise InputError("glft_exact_stationary needs gamma, a, k > 0, sigma >= 0, q_max >= 1")
    alpha = k / 2 * gamma * sigma * sigma
    eta = a * math.exp(-(1 + k / gamma) * math.log1p(gamma / k))
    diag = [alpha * q * q for q in range(-q_max, q_max + 1)]
    lo, hi = -2 * eta, diag[0] + 2 * eta  # Gershgorin bounds on λ₀
    for _ in range(200):  # bisection to adjacent floats (≈ 60 steps unless λ₀ ≈ 0)
        mid = (lo + hi) / 2
        if not lo < mid < hi:
            break
        if any(p < 0 for p in _pivots(diag, eta, mid)):
            hi = mid
        else:
            lo = mid
    piv = _pivots(diag, eta, lo)[:q_max]  # f_{q+1}/f_q · η for q = −Q … −1, all > 0
    c = _c1(gamma, k)
    left = [c + math.log(eta / d) / k for d in piv]  # δᵇ(q), q = −Q … −1
    db = (*left, *(c + math.log(d / eta) / k for d in reversed(piv)), None)
    return GlftExactDepths(q_max, db, tuple(reversed(db)))


# --- binary contracts (U = dollars = probability) ---------------------------------------------


def sigma_price(p: float, sigma_logit: float) -> float:
    """σ_p = σ_L·p(1−p): logit volatility → probability (dollar) volatility, same time unit."""
    return sigma_logit * p * (1 - p)


def settlement_variance(p: float) -> float:
    """p(1−p) ($²/contract): the remaining variance of a contract held to settlement at theo p."""
    return p * (1 - p)


def cara_settlement_reservation(p: float, q: float, gamma_per_dollar: float) -> tuple[float, float]:
    """Exact CARA (r_b, r_a) in dollars for inventory q held to settlement (§3.2, TV6).

    CE(q) = −(1/γ)ln(p·e^(−γq) + 1 − p); r_b = CE(q+1) − CE(q), r_a = CE(q) − CE(q−1).
    Computed as r_b(q) = −(1/γ)·ln(1 − w(1 − e^(−γ))) = 1 − (1/γ)·ln(1 + (1 − w)(e^γ − 1)) with
    w = σ(logit p − γq), using the second form when w > ½, so no large numbers are subtracted and
    both prices stay strictly inside (0, 1) while their distance to 0 or 1 exceeds float spacing
    (1 − r underflows the 1e-16 spacing near 1 only when γ|q| is beyond ~35).
    """
    if not 0 < p < 1:
        raise InputError(f"p must be in (0, 1), got {p!r}")
    if not 0 <= gamma_per_dollar <= 700:  # e^γ must stay inside the float range
        raise InputError(f"gamma_per_dollar must be in [0, 700], got {gamma_per_dollar!r}")
    if gamma_per_dollar == 0:
        return p, p
    g, logit = gamma_per_dollar, math.log(p) - math.log1p(-p)

    def r_buy(qq: float) -> float:
        if g * (abs(qq) + 1) < 1e-6:
            # first order in γ, error O(γ²(q² + 1)) < 1e-12: the exact forms lose precision as
            # γ → 0, and rounding in σ(logit − γq) is then larger than the step γ between
            # neighbouring q, which could order r_b above r_a; this form is monotone in q
            return p - g * p * (1 - p) * (qq + 0.5)
        z = logit - g * qq  # w = σ(z) is the risk-adjusted probability of YES
        w = math.exp(z) / (1 + math.exp(z)) if z <= 0 else 1 / (1 + math.exp(-z))
        u = math.exp(-z) / (1 + math.exp(-z)) if z > 0 else 1 - w  # 1 − w without cancellation
        if g < 1e-9:  # first order in γ; the exact forms lose precision as γ → 0
            return w - g * w * u / 2 if z <= 0 else 1 - (u + g * w * u / 2)
        if z <= 0:
            return -math.log1p(w * math.expm1(-g)) / g
        return 1 - math.log1p(u * math.expm1(g)) / g

    return r_buy(q), r_buy(q - 1)


def composite_variance(theo: float, sigma_p: float, tau: float, carry_to_settlement: bool) -> float:
    """V = σ_p²τ + χ·p(1−p) ($²): diffusion to the start plus settlement when carried (§3.3)."""
    return sigma_p * sigma_p * tau + (settlement_variance(theo) if carry_to_settlement else 0.0)


def composite_reservation(
    theo: float, q: float, gamma_per_dollar: float, sigma_p: float, tau: float,
    carry_to_settlement: bool,
) -> float:
    """Mean-variance reservation r = p* − qγ[σ_p²τ + χ·p*(1−p*)] in dollars (§3.3, TV6c).

    ``sigma_p`` is $/√(time unit of ``tau``); any time unit works if the two agree.
    """
    var = composite_variance(theo, sigma_p, tau, carry_to_settlement)
    return theo - q * gamma_per_dollar * var


# --- the model the quoting engine calls --------------------------------------------------------

Model = Literal["glft", "as_finite", "as_stationary"]
SkewMode = Literal["glft", "linear"]


@dataclass(frozen=True)
class HjbParams:
    """Model parameters; prices in dollars (= probability), time in seconds, sizes in contracts.

    ``skew_mode="linear"`` replaces the model's diffusive skew (GLFT σ_p·c₂ or A-S γσ_p²τ) by
    ``linear_skew_dollars_per_contract``; the settlement skew γ·p(1−p) is still added when
    ``carry_to_settlement``. ``xi_per_dollar=None`` means ξ = γ (GLFT's own CARA model).
    """

    gamma_per_dollar: float
    sigma_logit_per_sqrt_s: float
    a_per_s: float
    k_per_dollar: float
    q_max_contracts: float
    model: Model = "glft"
    carry_to_settlement: bool = True
    skew_mode: SkewMode = "glft"
    linear_skew_dollars_per_contract: float = 0.0
    lot_contracts: float = 1.0
    xi_per_dollar: float | None = None

    def __post_init__(self) -> None:
        optional = (self.sigma_logit_per_sqrt_s, self.linear_skew_dollars_per_contract,
                    0.0 if self.xi_per_dollar is None else self.xi_per_dollar)
        required = (self.gamma_per_dollar, self.a_per_s, self.k_per_dollar,
                    self.q_max_contracts, self.lot_contracts)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in optional + required):
            raise ConfigError(f"HjbParams values must be finite numbers: {self!r}")
        if min(required) <= 0 or min(optional) < 0:
            raise ConfigError(f"need gamma, a, k, q_max, lot > 0; sigma, skew, xi >= 0: {self!r}")
        if self.model not in ("glft", "as_finite", "as_stationary"):
            raise ConfigError(f"unknown model {self.model!r}")
        if self.skew_mode not in ("glft", "linear"):
            raise ConfigError(f"unknown skew_mode {self.skew_mode!r}")
        if self.model == "as_stationary" and self.skew_mode == "linear":
            raise ConfigError("as_stationary has its own non-linear skew; use skew_mode='glft'")


class ModelQuote(NamedTuple):
    """Reservation and half-depths from it, in probability units; an infinite depth = no quote."""
    reservation: float
    half_bid: float
    half_ask: float

    @property
    def bid(self) -> float | None:
        return self.reservation - self.half_bid if math.isfinite(self.half_bid) else None

    @property
    def ask(self) -> float | None:
        return self.reservation + self.half_ask if math.isfinite(self.half_ask) else None


def model_quotes(theo: float, q_contracts: float, tau_s: float, params: HjbParams) -> ModelQuote:
    """Model reservation and half-depths (probability units) for theo p* and signed inventory q.

    With S = γ·p*(1−p*) if ``carry_to_settlement`` else 0 (settlement skew per contract) and Δ the
    lot: ``glft``: r = p* − q(σ_p c₂ + S), half = c₁ + (Δ/2)(σ_p c₂ + S); ``as_finite``:
    V = σ_p²τ + χp*(1−p*), r = p* − qγV, half = γV/2 + (1/γ)ln(1+γ/k); ``as_stationary``:
    A-S stationary prices shifted by −qS, widened by S/2. A linear skew replaces the diffusive
    part of the reservation shift only. Beyond the hard bound (q + Δ > Q: bid; q − Δ < −Q: ask)
    the half-depth is +inf. ``tau_s`` (seconds to the horizon) matters only for ``as_finite``.
    """
    if not 0 < theo < 1:
        raise InputError(f"theo must be a probability in (0, 1), got {theo!r}")
    if tau_s < 0:
        raise InputError(f"tau_s must be >= 0, got {tau_s!r}")
    pr, g, lot, qm = params, params.gamma_per_dollar, params.lot_contracts, params.q_max_contracts
    sig = sigma_price(theo, pr.sigma_logit_per_sqrt_s)
    settle = g * settlement_variance(theo) if pr.carry_to_settlement else 0.0
    linear = pr.linear_skew_dollars_per_contract
    if pr.model == "as_stationary":
        base = as_stationary(theo, max(-qm, min(qm, q_contracts)), g, sig, pr.k_per_dollar, qm)
        bid = None if base.bid is None else base.bid - q_contracts * settle - settle / 2
        ask = None if base.ask is None else base.ask - q_contracts * settle + settle / 2
        finite = [x for x in (base.r_b, base.r_a) if math.isfinite(x)]
        r = sum(finite) / len(finite) - q_contracts * settle
        half_bid = INF if bid is None else r - bid
        half_ask = INF if ask is None else ask - r
    else:
        if pr.model == "glft":
            c = glft_coefficients(gamma=g, a=pr.a_per_s, k=pr.k_per_dollar, delta_lot=lot,
                                  xi=pr.xi_per_dollar)
            diffusive, half = sig * c.c2, c.c1 + lot / 2 * (sig * c.c2 + settle)
        else:
            diffusive = g * sig * sig * tau_s
            half = diffusive / 2 + settle / 2 + _c1(g, pr.k_per_dollar)
        skew = (linear if pr.skew_mode == "linear" else diffusive) + settle
        r = theo - q_contracts * skew
        half_bid = half_ask = half
    if q_contracts + lot > qm:
        half_bid = INF
    if q_contracts - lot < -qm:
        half_ask = INF
    return ModelQuote(r, half_bid, half_ask)


def to_grid(
    bid_prob: float | None, ask_prob: float | None, grid: TickGrid
) -> tuple[int | None, int | None]:
    """Probability quotes → valid grid prices (price units): bid rounded down, ask rounded up.

    A side that is None, NaN, or falls off the grid (bid below the lowest price, ask above the
    highest) is None. Probabilities outside [0, 1] are clamped first, so a bid above $1 becomes
    the top price; book clamps and theo caps are the caller's job.
    """
    bid = ask = None
    if bid_prob is not None and not math.isnan(bid_prob):
        bid = grid.round_down(prob_to_price(min(1.0, max(0.0, bid_prob)), "down"))
    if ask_prob is not None and not math.isnan(ask_prob):
        ask = grid.round_up(prob_to_price(min(1.0, max(0.0, ask_prob)), "up"))
    return bid, ask

