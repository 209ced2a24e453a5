"""The hidden true probability path of one game: a martingale logit random walk with jumps.

Model (reference/quoting-math.md §3.2). With ``n`` outcomes (2, or 3 for soccer) ordered
(home, away[, draw]) the state is the vector of log-odds against the last outcome,
``y_i = ln(p_i / p_last)`` for ``i < n − 1``, and ``p = softmax(y, 0)`` — so the probabilities
always lie in (0, 1) and sum to 1. For a 2-way game ``y`` is the ordinary logit of the home win.

- **Diffusion.** Each ``y_i`` moves by ``σ·√dt·Z`` per grid step (independent ``Z``), with
  ``σ = sigma_logit_per_sqrt_s_pregame`` before the start and ``…_inplay`` after it. A small Itô
  drift is added so that every ``p_i`` is a martingale (2-way: ``dy = σ²(p − ½)dt + σ dW``):
  the truth is a real conditional probability, so settling on an outcome drawn from the final
  probabilities is consistent with every earlier value. The price volatility is then
  ``σ_p = σ·p(1−p)``.
- **Jumps.** News (pre-game, ``news_rate_per_s``) and in-play events (``inplay_jump_rate_per_s``)
  arrive as Poisson processes at exact ns times. A jump of size ``a = |N(0, sd)|`` logits moves
  probability toward one outcome ``k``: ``p ← (1 − w_k)·p + w_k·e_k``, with ``w_k`` chosen so that
  ``logit(p_k)`` rises by ``a``, and ``k`` drawn with odds ``∝ p_k / w_k`` — which keeps the jump
  a fair game (``E[p'] = p``) for any number of outcomes.
- **Settlement.** At ``end_ns`` one outcome is drawn from the last probabilities (``winner``).
- **News is private for a while.** Each pre-game news jump stays unknown to the sportsbooks for
  ``news_lag_s × U(0.5, 1.5)`` (drawn per jump, after the winner, so the path and the winner do
  not depend on it; in-play jumps have no lag). :meth:`TruthPath.public_at` is the path with the
  jumps still private taken out (their logit displacement subtracted): what a book prices, and
  what news-informed takers trade against while it differs from the truth.

Units: probabilities are floats; logits are natural-log odds; every time is integer ns since the
epoch; rates are per second. Randomness comes only from the ``random.Random`` passed in.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from mmcore.errors import InputError
from mmcore.sim.slate import SimBook, SimGame, TruthFn

NS_PER_S = 1_000_000_000
LOGIT_CAP = 15.0
"""|y| is capped here (p ≈ 3e-7 from the boundary), keeping every probability strictly inside (0, 1)."""


@dataclass(frozen=True, slots=True)
class TruthParams:
    """Parameters of the hidden path. Defaults: ~0.12 logit of drift per pre-game hour, ~1.4 logit
    over a 2.5 h game, a news item every ~30 min pre-game and a scoring-type event every ~5 min."""

    sigma_logit_per_sqrt_s_pregame: float = 0.002
    sigma_logit_per_sqrt_s_inplay: float = 0.015
    news_rate_per_s: float = 1 / 1800
    news_jump_logit_sd: float = 0.25
    inplay_jump_rate_per_s: float = 1 / 300
    inplay_jump_logit_sd: float = 0.3
    game_length_s: float = 9000.0
    """Start to settlement; :func:`settle_ns` applies it."""
    step_s: float = 1.0
    """Grid spacing of the diffusion (the path is piecewise constant between breakpoints)."""
    news_lag_s: float = 0.0
    """Mean time a pre-game news jump stays private (unknown to the sportsbooks); each jump's lag
    is this × U(0.5, 1.5). 0: books see news at once."""
    inplay_step_s: float | None = None
    """Grid spacing after the start (None: ``step_s``). A coarser in-play grid makes long slates
    cheap to generate when nobody quotes in play."""

    def __post_init__(self) -> None:
        if self.inplay_step_s is not None and not (math.isfinite(self.inplay_step_s)
                                                   and self.inplay_step_s > 0):
            raise InputError(f"TruthParams.inplay_step_s must be > 0, got {self.inplay_step_s!r}")
        for name in ("sigma_logit_per_sqrt_s_pregame", "sigma_logit_per_sqrt_s_inplay",
                     "news_rate_per_s", "news_jump_logit_sd", "inplay_jump_rate_per_s",
                     "inplay_jump_logit_sd", "news_lag_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"TruthParams.{name} must be finite and >= 0, got {value!r}")
        for name in ("game_length_s", "step_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"TruthParams.{name} must be finite and > 0, got {value!r}")


def settle_ns(start_ns: int, params: TruthParams) -> int:
    """Settlement time of a game starting at ``start_ns``: start + ``game_length_s``."""
    return start_ns + round(params.game_length_s * NS_PER_S)


@dataclass(frozen=True)
class TruthPath:
    """A simulated path: probabilities at breakpoint ``times_ns[i]`` hold until the next one.

    ``times_ns[0] == t0_ns`` carries ``p0``; the last breakpoint is ``end_ns`` (the final
    pre-settlement probabilities). :meth:`at` clamps: ``p0`` before ``t0_ns`` and the final
    probabilities from ``end_ns`` on. The result itself is :attr:`winner`.
    """

    t0_ns: int
    start_ns: int
    end_ns: int
    times_ns: tuple[int, ...]
    probs: tuple[tuple[float, ...], ...]
    jump_times: tuple[int, ...]
    """Exact ns of every news / in-play jump, ascending."""
    winner: int
    """Index of the settled outcome in (home, away[, draw])."""
    jump_dy: tuple[tuple[float, ...], ...] = ()
    """Per jump (aligned with ``jump_times``): its displacement of the log-odds state ``y``."""
    jump_lags_ns: tuple[int, ...] = ()
    """Per jump: how long it stays private (0: public at once, e.g. in play)."""

    @property
    def n_outcomes(self) -> int:
        return len(self.probs[0])

    @property
    def final_probs(self) -> tuple[float, ...]:
        return self.probs[-1]

    def at(self, now_ns: int) -> tuple[float, ...]:
        """Probabilities in force at ``now_ns`` (exact lookup, no interpolation)."""
        i = bisect.bisect_right(self.times_ns, now_ns) - 1
        return self.probs[max(i, 0)]

    def settled(self, now_ns: int) -> bool:
        return now_ns >= self.end_ns

    def private_jumps(self, now_ns: int, lag_factor: float = 1.0) -> list[int]:
        """Indices of the jumps at or before ``now_ns`` still private for a book whose lag is
        ``lag_factor`` × each jump's lag (``t_j <= now < t_j + lag_j·factor``)."""
        if not self.jump_lags_ns:
            return []
        hi = bisect.bisect_right(self.jump_times, now_ns)
        out = []
        for j in range(hi - 1, -1, -1):
            age = now_ns - self.jump_times[j]
            if age >= self._max_lag_ns * lag_factor:
                break  # jump_times ascend: every earlier jump is older still
            if age < self.jump_lags_ns[j] * lag_factor:
                out.append(j)
        return out

    @property
    def _max_lag_ns(self) -> int:
        return max(self.jump_lags_ns, default=0)

    def public_at(self, now_ns: int, lag_factor: float = 1.0) -> tuple[float, ...]:
        """What a sportsbook with this ``lag_factor`` knows at ``now_ns``: :meth:`at` with the
        still-private jumps' log-odds displacement taken out (equal to :meth:`at` when none)."""
        p = self.at(now_ns)
        private = self.private_jumps(now_ns, lag_factor)
        if not private:
            return p
        y = _to_y(p)
        for j in private:
            y = [yi - d for yi, d in zip(y, self.jump_dy[j])]
        return _softmax([max(-LOGIT_CAP, min(LOGIT_CAP, v)) for v in y])


def _softmax(y: list[float]) -> tuple[float, ...]:
    """(y_1..y_{n-1}, 0) → probabilities summing to 1."""
    top = max(0.0, *y)
    weights = [math.exp(v - top) for v in y] + [math.exp(-top)]
    total = math.fsum(weights)
    return tuple(w / total for w in weights)


def _to_y(p: tuple[float, ...]) -> list[float]:
    last = math.log(p[-1])
    return [max(-LOGIT_CAP, min(LOGIT_CAP, math.log(pi) - last)) for pi in p[:-1]]


def _martingale_drift(p: tuple[float, ...], sigma: float) -> list[float]:
    """Drift of each y_i (per second) making every p_i driftless under independent diffusion.

    With ``c_i = ½σ² Σ_{j<n−1} [(δ_ij − p_j)² − p_j(1 − p_j)]`` the drift is ``μ_i = c_last − c_i``
    (Itô on the softmax; 2-way reduces to ``σ²(p − ½)``).
    """
    m = len(p) - 1
    half = 0.5 * sigma * sigma

    def c(i: int) -> float:
        return half * sum(((1.0 if i == j else 0.0) - p[j]) ** 2 - p[j] * (1 - p[j])
                          for j in range(m))

    c_last = c(m)
    return [c_last - c(i) for i in range(m)]


def _jump(p: tuple[float, ...], a: float, rng: random.Random) -> tuple[float, ...]:
    """Move ``a`` logits toward an outcome drawn so that the expected probabilities are unchanged."""
    if a <= 0.0:
        return p
    weights: list[float] = []
    for pk in p:
        raised = 1.0 / (1.0 + math.exp(-(math.log(pk / (1.0 - pk)) + a)))
        weights.append((raised - pk) / (1.0 - pk))
    odds = [pk / wk if wk > 0 else 0.0 for pk, wk in zip(p, weights)]
    if not any(odds):
        return p
    k = rng.choices(range(len(p)), weights=odds)[0]
    w = weights[k]
    return tuple((1.0 - w) * pi + (w if i == k else 0.0) for i, pi in enumerate(p))


def _check_p0(p0: tuple[float, ...]) -> tuple[float, ...]:
    if len(p0) not in (2, 3):
        raise InputError(f"a game has 2 or 3 outcomes, got {len(p0)} probabilities")
    if any(not (math.isfinite(p) and 0.0 < p < 1.0) for p in p0):
        raise InputError(f"initial probabilities must lie in (0, 1), got {p0!r}")
    total = math.fsum(p0)
    if abs(total - 1.0) > 1e-6:
        raise InputError(f"initial probabilities must sum to 1, got {total!r}")
    return tuple(p / total for p in p0)


def simulate_path(
    p0: tuple[float, ...],
    start_ns: int,
    end_ns: int,
    t0_ns: int,
    params: TruthParams,
    rng: random.Random,
) -> TruthPath:
    """Simulate one game's truth from ``t0_ns`` (value ``p0``) to settlement at ``end_ns``.

    ``start_ns`` (game start) switches the regime from pre-game to in-play; it may lie before
    ``t0_ns`` (a game already under way). Diffusion is applied at every grid point
    ``t0 + k·step`` and at ``start_ns``; jumps at their own exact times. Deterministic in
    (arguments, rng state).
    """
    p = _check_p0(tuple(float(x) for x in p0))
    if end_ns <= t0_ns:
        raise InputError(f"settlement {end_ns} must be after the path's start {t0_ns}")
    step_ns = max(1, round(params.step_s * NS_PER_S))
    if params.inplay_step_s is None:
        grid = list(range(t0_ns + step_ns, end_ns, step_ns))
    else:  # the pre-game grid, then the in-play grid from the start
        inplay_ns = max(1, round(params.inplay_step_s * NS_PER_S))
        switch = max(t0_ns, start_ns)
        grid = list(range(t0_ns + step_ns, min(switch, end_ns), step_ns))
        grid += list(range(switch + inplay_ns, end_ns, inplay_ns))
    if t0_ns < start_ns < end_ns:
        bisect.insort(grid, start_ns)
        if grid.count(start_ns) > 1:
            grid.remove(start_ns)
    grid.append(end_ns)

    def regime(t: int) -> tuple[float, float, float]:
        if t < start_ns:
            return (params.sigma_logit_per_sqrt_s_pregame, params.news_rate_per_s,
                    params.news_jump_logit_sd)
        return (params.sigma_logit_per_sqrt_s_inplay, params.inplay_jump_rate_per_s,
                params.inplay_jump_logit_sd)

    def next_jump(after: int, rate: float) -> int | None:
        return None if rate <= 0 else after + max(1, round(rng.expovariate(rate) * NS_PER_S))

    times: list[int] = [t0_ns]
    path: list[tuple[float, ...]] = [p]
    jumps: list[int] = []
    jump_dy: list[tuple[float, ...]] = []
    y = _to_y(p)
    prev = t0_ns
    sigma, rate, jump_sd = regime(prev)
    pending = next_jump(prev, rate)
    for t in grid:
        # Jumps strictly inside (prev, t): each is its own breakpoint.
        while pending is not None and pending < t:
            p = _jump(p, abs(rng.gauss(0.0, jump_sd)), rng)
            before, y = y, _to_y(p)
            jump_dy.append(tuple(b - a for a, b in zip(before, y)))
            p = _softmax(y)
            times.append(pending)
            path.append(p)
            jumps.append(pending)
            pending = next_jump(pending, rate)
        dt_s = (t - prev) / NS_PER_S
        drift = _martingale_drift(p, sigma)
        scale = sigma * math.sqrt(dt_s)
        y = [max(-LOGIT_CAP, min(LOGIT_CAP, yi + mu * dt_s + scale * rng.gauss(0.0, 1.0)))
             for yi, mu in zip(y, drift)]
        p = _softmax(y)
        times.append(t)
        path.append(p)
        prev = t
        if pending == t:
            pending += 1  # keep breakpoints strictly increasing
        new_regime = regime(t)
        if new_regime != (sigma, rate, jump_sd):
            sigma, rate, jump_sd = new_regime
            pending = next_jump(t, rate)  # memoryless: redraw at the regime change
    winner = rng.choices(range(len(p)), weights=p)[0]
    # drawn after the winner: the path and the result do not depend on the lags
    lags = tuple(round(params.news_lag_s * rng.uniform(0.5, 1.5) * NS_PER_S)
                 if params.news_lag_s > 0 and t < start_ns else 0 for t in jumps)
    return TruthPath(t0_ns, start_ns, end_ns, tuple(times), tuple(path), tuple(jumps), winner,
                     tuple(jump_dy), lags)


def truth_fn(paths: Mapping[str, TruthPath]) -> TruthFn:
    """A :data:`~mmcore.sim.slate.TruthFn` reading each game's hidden path by ``event_id``.

    Games without a path fall back to their static ``true_probs``; so the odds server prices
    its books from the same truth the exchange participants see. Asked for a ``book``, it answers
    what that book knows (:meth:`TruthPath.public_at` with the book's ``news_lag_factor``).
    """

    def truth(game: SimGame, now_ns: int, book: SimBook | None = None) -> tuple[float, ...]:
        path = paths.get(game.event_id)
        if path is None:
            return game.true_probs
        return path.at(now_ns) if book is None else path.public_at(now_ns, book.news_lag_factor)

    return truth
