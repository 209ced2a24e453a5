"""De-vigging: turn one sportsbook's decimal odds on mutually exclusive outcomes into fair probabilities.

Units: **decimal odds in** (European, stake included, always > 1.0), **probabilities out** (floats in
[0, 1] summing to 1, same order as the input). Notation as in reference/odds-api.md §3: implied
``π_i = 1/o_i``, booksum ``Π = Σπ_i``, margin ``M = Π − 1``.

Why several methods: a book does not spread its margin evenly. Longshots carry more of it than
favourites (the favourite–longshot bias, FLB), so plain normalisation (``multiplicative``) leaves too
much probability on longshots. ``shin``, ``power`` and ``odds_ratio`` model the FLB and agree with
each other far better than with ``multiplicative`` on books with a strong favourite — there the
methods differ by 1–3 percentage points, the size of a typical edge. ``shin`` is the default (most
accurate in Štrumbelj 2014). ``additive`` (≡ ``margin_proportional_to_odds``) can go negative and
is refused when it does. :func:`band` gives the spread across methods as a model-risk band.

Every refusal is a :class:`~mmcore.errors.DevigError` saying which outcome and why. An underround
book (``Π < 1``: stale, mixed or arbitrage quotes) is refused by every method. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from numbers import Real
from typing import Literal, get_args

from mmcore.errors import DevigError

Method = Literal[
    "multiplicative", "additive", "power", "shin", "odds_ratio", "logit_shift",
    "margin_proportional_to_odds",
]
METHODS: tuple[Method, ...] = get_args(Method)

MAX_DECIMAL_ODDS = 1000.0
"""Longest decimal price we accept (a 0.1 % outcome); anything longer is a placeholder or a typo."""
BOOKSUM_TOL = 1e-12
"""A booksum within this of 1 is already fair; below ``1 − BOOKSUM_TOL`` it is underround."""
_XTOL = 1e-14
_NEUTRAL: dict[str, dict[str, float]] = {
    "power": {"k": 1.0}, "shin": {"z": 0.0}, "odds_ratio": {"c": 1.0},
    "logit_shift": {"c": 0.0, "equivalent_odds_ratio": 1.0},
}


@dataclass(frozen=True, slots=True)
class Devigged:
    """Fair probabilities from one book. ``booksum = Σ 1/odds``; ``margin = booksum − 1``."""

    method: str
    probs: tuple[float, ...]
    booksum: float
    margin: float
    params: dict[str, float] = field(default_factory=dict)


def american_to_decimal(american: float) -> float:
    """American moneyline → decimal odds: ``+150 → 2.5``, ``−110 → 1.909…``; ``|A| < 100`` is invalid."""
    if isinstance(american, bool) or not isinstance(american, Real) or not math.isfinite(american):
        raise DevigError(f"American odds {american!r} are not a finite number")
    a = float(american)
    if abs(a) < 100:
        raise DevigError(f"American odds {a:g} are invalid: |A| must be >= 100 (+150 or -110, say)")
    return 1.0 + a / 100.0 if a > 0 else 1.0 + 100.0 / -a


def implied_probabilities(odds: Sequence[float]) -> tuple[float, ...]:
    """Validate decimal odds and return raw implied probabilities ``1/o_i`` (they sum to the booksum)."""
    try:
        if isinstance(odds, (str, bytes)):
            raise TypeError
        prices = tuple(odds)
    except TypeError:
        raise DevigError(f"odds must be a sequence of decimal prices, got {type(odds).__name__}") from None
    if len(prices) < 2:
        raise DevigError(f"need at least 2 outcomes to de-vig, got {len(prices)}: {prices!r}")
    out = []
    for i, o in enumerate(prices, start=1):
        if isinstance(o, bool) or not isinstance(o, Real):
            raise DevigError(f"price {o!r} for outcome {i} is a {type(o).__name__}, not a number")
        o = float(o)
        if not math.isfinite(o):
            raise DevigError(f"price {o!r} for outcome {i} is not finite")
        if o == 1.0:
            raise DevigError(f"price 1.0 for outcome {i} is not a usable price "
                             "(odds must be > 1.0; 1.0 means settled or suspended in-play)")
        if o < 1.0:
            raise DevigError(f"price {o!r} for outcome {i} is not a usable price (decimal odds "
                             "must be > 1.0; American odds or a probability passed by mistake?)")
        if o > MAX_DECIMAL_ODDS:
            raise DevigError(f"price {o!r} for outcome {i} is longer than MAX_DECIMAL_ODDS "
                             f"{MAX_DECIMAL_ODDS:g} (a placeholder, not a price)")
        out.append(1.0 / o)
    return tuple(out)


def _prepare(odds: Sequence[float], method: str) -> tuple[tuple[float, ...], float]:
    """Implied probabilities and booksum; refuses an underround book."""
    pi = implied_probabilities(odds)
    total = math.fsum(pi)
    if total < 1.0 - BOOKSUM_TOL:
        raise DevigError(f"{method}: booksum {total:.6f} < 1 (underround): stale, mixed or arbitrage "
                         "quotes; no margin to remove")
    return pi, total


def _result(method: str, probs: Sequence[float], total: float, params: dict[str, float] | None = None
            ) -> Devigged:
    return Devigged(method, tuple(probs), total, total - 1.0, dict(params or {}))


def _fair(method: str, pi: tuple[float, ...], total: float) -> Devigged | None:
    """A book with booksum 1 (within ``BOOKSUM_TOL``) is already fair: implied probabilities."""
    if abs(total - 1.0) > BOOKSUM_TOL:
        return None
    return _result(method, [p / total for p in pi], total, _NEUTRAL.get(method))


def _normalised(ps: Sequence[float]) -> tuple[float, ...]:
    """Divide out the root finder's residual (~1e-14) so the output sums to 1."""
    s = math.fsum(ps)
    return tuple(p / s for p in ps)


def _root(f: Callable[[float], float], a: float, b: float, *, grow: bool = False) -> float:
    """Root of ``f`` on ``[a, b]`` by Brent's method (scipy ``brentq`` logic), to ~1e-14.

    With ``grow`` the upper end doubles until ``f`` changes sign (for open-ended ``k`` and ``c``).
    """
    fa, fb = f(a), f(b)
    for _ in range(64):
        if not grow or fa * fb <= 0:
            break
        a, fa, b = b, fb, 2.0 * b
        fb = f(b)
    if fa * fb > 0:
        raise DevigError(f"no root bracketed on [{a:g}, {b:g}] (f = {fa:g}, {fb:g})")
    if fa == 0:
        return a
    xpre, xcur, fpre, fcur = a, b, fa, fb
    xblk = fblk = spre = scur = 0.0
    for _ in range(200):
        if fpre * fcur < 0:
            xblk, fblk, spre = xpre, fpre, xcur - xpre
            scur = spre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (_XTOL + 4 * 2.2e-16 * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # secant
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # inverse quadratic interpolation
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry
            else:
                spre = scur = sbis
        else:
            spre = scur = sbis
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else math.copysign(delta, sbis)
        fcur = f(xcur)
    raise DevigError("root finder did not converge in 200 iterations")  # pragma: no cover


def multiplicative(odds: Sequence[float]) -> Devigged:
    """``p_i = π_i / Π``: spreads the margin pro rata; ignores the FLB (too much on longshots)."""
    pi, total = _prepare(odds, "multiplicative")
    return _result("multiplicative", [p / total for p in pi], total)


def _additive_raw(pi: Sequence[float], total: float) -> list[float]:
    m = (total - 1.0) / len(pi)
    return [p - m for p in pi]


def _refuse_negative(method: str, raw: list[float], total: float) -> None:
    for i, p in enumerate(raw, start=1):
        if p < 0:
            err = DevigError(f"{method}: fair probability for outcome {i} would be {p:.6f} < 0 "
                             f"(booksum {total:.6f}: the longshot cannot carry an equal share of the margin)")
            err.probs = tuple(raw)  # type: ignore[attr-defined]
            raise err


def additive(odds: Sequence[float]) -> Devigged:
    """``p_i = π_i − M/n``: equal margin per outcome. Refused when a longshot would go negative."""
    pi, total = _prepare(odds, "additive")
    raw = _additive_raw(pi, total)
    _refuse_negative("additive", raw, total)
    return _result("additive", raw, total)


def margin_proportional_to_odds(odds: Sequence[float]) -> Devigged:
    """Fair odds ``o*_i = n·o_i / (n − M·o_i)`` (Buchdahl). Algebraically identical to :func:`additive`."""
    pi, total = _prepare(odds, "margin_proportional_to_odds")
    n, m = len(pi), total - 1.0
    raw = [(n - m / p) / (n / p) for p in pi]  # 1/o*_i with o_i = 1/π_i
    _refuse_negative("margin_proportional_to_odds", raw, total)
    return _result("margin_proportional_to_odds", raw, total)


def power(odds: Sequence[float]) -> Devigged:
    """``p_i = π_i^k`` with ``Σπ_i^k = 1`` (k > 1 when overround). Never leaves (0, 1); models the FLB."""
    pi, total = _prepare(odds, "power")
    if (fair := _fair("power", pi, total)) is not None:
        return fair
    k = _root(lambda k: math.fsum(p**k for p in pi) - 1.0, 1.0, 2.0, grow=True)
    return _result("power", _normalised([p**k for p in pi]), total, {"k": k})


def _shin_probs(pi: Sequence[float], total: float, z: float) -> list[float]:
    # p_i = [√(z² + 4(1−z)π_i²/Π) − z] / [2(1−z)], rationalised so z → 1 is stable (p_i → π_i²/Π).
    a = [p * p / total for p in pi]
    return [2 * x / (math.sqrt(z * z + 4 * (1 - z) * x) + z) for x in a]


def shin(odds: Sequence[float]) -> Devigged:
    """Shin (1992/93) insider-trading model; ``z`` ≈ share of insider money. Default method.

    Two outcomes: closed form ``z = (Π−1)(d²−Π) / (Π(d²−1))``, ``d = π_1 − π_2`` (then Shin ≡
    additive). Three or more: bracketed root of ``Σp_i(z) = 1`` on ``z ∈ [0, 1]`` (``Σ = √Π > 1`` at
    0, ``Σπ_i²/Π < 1`` at 1), not the slowly converging fixed-point iteration.
    """
    pi, total = _prepare(odds, "shin")
    if (fair := _fair("shin", pi, total)) is not None:
        return fair
    if len(pi) == 2:
        d2 = (pi[0] - pi[1]) ** 2  # < 1 because both π are in (0, 1); d = 0 gives z = Π − 1
        z = (total - 1.0) * (d2 - total) / (total * (d2 - 1.0))
    else:
        z = _root(lambda z: math.fsum(_shin_probs(pi, total, z)) - 1.0, 0.0, 1.0)
    return _result("shin", _normalised(_shin_probs(pi, total, z)), total, {"z": z})


def _logit_shift_solve(pi: Sequence[float]) -> tuple[float, list[float]]:
    """``s = ln c`` with ``Σ p_i = 1`` where ``p_i = π_i / (π_i + e^s (1 − π_i))``."""
    def probs(s: float) -> list[float]:
        c = math.exp(s)
        return [p / (p + c * (1.0 - p)) for p in pi]

    s = _root(lambda s: math.fsum(probs(s)) - 1.0, 0.0, 1.0, grow=True)
    return s, probs(s)


def odds_ratio(odds: Sequence[float]) -> Devigged:
    """``p_i = π_i / (c + π_i − c·π_i)``, i.e. ``odds(π_i) = c·odds(p_i)``, one ``c`` for all outcomes."""
    pi, total = _prepare(odds, "odds_ratio")
    if (fair := _fair("odds_ratio", pi, total)) is not None:
        return fair
    s, ps = _logit_shift_solve(pi)
    return _result("odds_ratio", _normalised(ps), total, {"c": math.exp(s)})


def logit_shift(odds: Sequence[float]) -> Devigged:
    """``logit p_i = logit π_i − c``: the odds-ratio method in logit space, ``c = ln(odds ratio)``."""
    pi, total = _prepare(odds, "logit_shift")
    if (fair := _fair("logit_shift", pi, total)) is not None:
        return fair
    s, ps = _logit_shift_solve(pi)
    return _result("logit_shift", _normalised(ps), total, {"c": s, "equivalent_odds_ratio": math.exp(s)})


_DISPATCH: dict[str, Callable[[Sequence[float]], Devigged]] = {
    "multiplicative": multiplicative, "additive": additive, "power": power, "shin": shin,
    "odds_ratio": odds_ratio, "logit_shift": logit_shift,
    "margin_proportional_to_odds": margin_proportional_to_odds,
}


def devig(odds: Sequence[float], method: Method = "shin") -> Devigged:
    """Fair probabilities from decimal ``odds`` by ``method`` (one of :data:`METHODS`)."""
    fn = _DISPATCH.get(method) if isinstance(method, str) else None
    if fn is None:
        raise DevigError(f"unknown de-vig method {method!r}; choose one of: {', '.join(METHODS)}")
    return fn(odds)


def worst_case(odds: Sequence[float]) -> tuple[float, ...]:
    """Per outcome, the lowest fair probability over {multiplicative, additive, power, shin}.

    Conservative and per side — NOT a distribution. Uses the raw additive values, which may be
    negative (the devig-calculator convention).
    """
    pi, total = _prepare(odds, "worst_case")
    rows = (multiplicative(odds).probs, _additive_raw(pi, total), power(odds).probs, shin(odds).probs)
    return tuple(min(col) for col in zip(*rows))


def band(odds: Sequence[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(low, high)`` per outcome across every method that succeeds, clamped to [0, 1].

    A model-risk band: its width is how much the choice of de-vig method matters for this book,
    used to widen quotes.
    """
    _prepare(odds, "band")
    rows = []
    for method in METHODS:
        try:
            rows.append(devig(odds, method).probs)
        except DevigError:
            continue
    cols = list(zip(*rows))
    return (tuple(max(0.0, min(c)) for c in cols), tuple(min(1.0, max(c)) for c in cols))
