"""Jump detection on probability streams, and triple-barrier exit labels. Pure.

Jumps (reference/quoting-math.md §6.2 "velocity logic"; design §3: news moves the true path)
---------------------------------------------------------------------------------------------
Each stream — book mid, trade prints, theo — has its own :class:`JumpState`; the caller keeps one
per stream (or a :class:`JumpMonitor` for all three) and feeds it with :func:`observe`.

* Units: logit ``x = log(p / (1 − p))`` with ``p`` clipped to [0.005, 0.995], so a move is sized
  the same way near 50¢ and near 95¢ and 0¢/100¢ stay finite. Time in int ns.
* Scale: an EWMA of squared *standardised* changes ``z² = Δx² / Δt`` (logit² per second), so a
  change over 10 s counts like ten one-second changes and irregular sampling is fair. The weight
  of a new sample is ``1 − 2^(−Δt / halflife)``, capped at ``2 / (warmup_n + 1)`` so sparse
  samples still average ~``warmup_n`` changes, and at least ``1/n`` during warm-up (a plain mean).
  ``Δt`` is floored at ``min_dt_ns`` (two prints in one millisecond are not infinitely fast;
  an out-of-order stamp also gets the floor). After warm-up the sample entering the EWMA is
  winsorised at ``k_sigma² · var``, so one jump does not blind the detector for a half-life.
* Verdict on each change, judged *before* it enters the EWMA, with ``σ = sqrt(ewma_var)``:
  ``pull`` if ``|Δx| > k_sigma · σ · √Δt``, ``widen`` if ``|Δx| > widen_k_sigma · σ · √Δt``,
  and in both cases only if also ``|Δx| > min_abs_logit`` and ``|Δp| > min_abs_prob`` (tiny moves
  near 50¢ are not jumps however quiet the stream was). During warm-up (``n < warmup_n``) σ is not
  trusted: a move past both absolute gates is ``widen``, never ``pull``.
* Theo stream: a change beyond ``min_abs_prob`` is always at least ``widen`` (:func:`observe_theo`).
* **Persistence** (book and trade streams, in :class:`JumpMonitor`): a thin book flickers — a
  level is eaten and refilled, a sweep prints a few ticks deep, a maker steps away for a requote —
  and in the backtest 23 of 24 raw trips had no move in the truth behind them. So a ``widen`` /
  ``pull`` of those streams is only *pending* until the stream has stayed displaced from where it
  has been (its level, a time-weighted EWMA with half-life ``level_halflife_ns``; same sign, past both absolute gates, at least ``confirm_fraction`` of the
  move) for ``confirm_ns``; a move that reverts first is dropped. :func:`combined` confirms a
  pending verdict from the stream's latest value too, so a quiet book after a real jump needs no
  further event. The theo stream (sportsbooks) needs no persistence. ``confirm_ns = 0`` acts at once.
* The book stream is fed the **depth mid** (:func:`depth_mid`): the midpoint of the volume-weighted
  prices of the best ``mid_depth_contracts`` on each side, our own orders excluded — a 1-lot top
  level or our own quote does not move it.

Triple barrier (López de Prado 2018, ch. 3; reference §6.3, TV12)
----------------------------------------------------------------
A position opened at ``entry_price`` gets a profit-take at ``+take_profit``, a stop-loss at
``−stop_loss`` (both in the price's own units, in the position's favour: ``side`` = +1 long YES,
−1 short) and a vertical barrier at the absolute time ``vertical_ns``. Touching is inclusive
(``≥ TP`` / ``≤ −SL``, with a 1e-9 relative tolerance so float probabilities such as 0.44 − 0.47
touch a 0.03 stop); a price observed at ``vertical_ns`` still counts, one after it does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from mmcore.book import depth_mid_of
from mmcore.errors import InputError

NS_PER_S = 1_000_000_000
P_CLIP = (0.005, 0.995)

JumpLevel = Literal["none", "widen", "pull"]
Stream = Literal["mid", "trade", "theo"]
BarrierLabel = Literal["none", "take_profit", "stop_loss", "vertical"]
_LEVEL_RANK = {"none": 0, "widen": 1, "pull": 2}


@dataclass(frozen=True, slots=True)
class JumpConfig:
    halflife_ns: int = 300 * NS_PER_S
    k_sigma: float = 6.0
    """Move size, in σ·√Δt, beyond which the verdict is ``pull``."""
    min_abs_logit: float = 0.08
    min_abs_prob: float = 0.03
    """Absolute gate in probability (0.03 = 3¢)."""
    warmup_n: int = 20
    """Changes needed before σ is trusted."""
    widen_k_sigma: float = 4.0
    min_dt_ns: int = 1 * NS_PER_S
    hold_ns: int = 30 * NS_PER_S
    """How long a stream's verdict stays in force in :func:`combined`."""
    confirm_ns: int = 3 * NS_PER_S
    """A book or trade move must persist this long before its verdict counts (0: at once)."""
    confirm_fraction: float = 0.5
    """Share of the move (in logit) that must still be there when it is confirmed."""
    level_halflife_ns: int = 30 * NS_PER_S
    """Half-life of the level a pending move is measured from (:attr:`JumpState.level_logit`)."""
    mid_depth_contracts: float = 10.0
    """Contracts per side the depth mid averages over (whole contracts)."""

    def __post_init__(self) -> None:
        if self.halflife_ns <= 0 or self.min_dt_ns <= 0 or self.hold_ns < 0 or self.warmup_n < 1:
            raise InputError(f"JumpConfig: times and warmup_n must be positive: {self!r}")
        if not 0 < self.widen_k_sigma <= self.k_sigma:
            raise InputError(f"JumpConfig: need 0 < widen_k_sigma <= k_sigma: {self!r}")
        if self.min_abs_logit < 0 or self.min_abs_prob < 0:
            raise InputError(f"JumpConfig: absolute gates must be >= 0: {self!r}")
        if self.level_halflife_ns <= 0 or self.confirm_ns < 0 or not 0 < self.confirm_fraction <= 1 or not self.mid_depth_contracts > 0:
            raise InputError(f"JumpConfig: need confirm_ns >= 0, 0 < confirm_fraction <= 1, "
                             f"mid_depth_contracts > 0: {self!r}")


@dataclass(frozen=True, slots=True)
class JumpState:
    """One stream's memory. ``ewma_var`` in logit² per second; ``n`` = changes folded in."""

    last_logit: float | None = None
    ewma_var: float = 0.0
    n: int = 0
    last_ns: int | None = None
    level_logit: float | None = None
    """Time-weighted EWMA of the stream's level (logit, half-life ``level_halflife_ns``): where
    the stream has *been*, the reference a pending move must stay away from."""


@dataclass(frozen=True, slots=True)
class JumpVerdict:
    level: JumpLevel
    d_logit: float
    """Signed change in logit units."""
    d_prob: float
    """Signed change in probability (of the clipped values)."""
    sigmas: float | None
    """``|Δx| / (σ·√Δt)``; ``None`` during warm-up or on the first observation."""
    at_ns: int


def _logit(p: float) -> float:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise InputError(f"probability must be a number in [0, 1], got {p!r}")
    p = min(max(p, P_CLIP[0]), P_CLIP[1])
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def observe(state: JumpState, prob: float, now_ns: int, cfg: JumpConfig
            ) -> tuple[JumpState, JumpVerdict]:
    """Fold one observation (a probability, or a price converted to one) into ``state``."""
    x = _logit(prob)
    if state.last_logit is None or state.last_ns is None:
        return JumpState(x, 0.0, 0, now_ns, x), JumpVerdict("none", 0.0, 0.0, None, now_ns)
    dt_ns = max(now_ns - state.last_ns, cfg.min_dt_ns)
    dt_s = dt_ns / NS_PER_S
    dx = x - state.last_logit
    dp = _expit(x) - _expit(state.last_logit)
    gated = abs(dx) > cfg.min_abs_logit and abs(dp) > cfg.min_abs_prob
    warm = state.n >= cfg.warmup_n
    sigmas: float | None = None
    level: JumpLevel = "widen" if gated else "none"
    if warm:
        scale = math.sqrt(state.ewma_var * dt_s)
        sigmas = abs(dx) / scale if scale > 0 else (math.inf if dx else 0.0)
        level = ("pull" if gated and sigmas > cfg.k_sigma
                 else "widen" if gated and sigmas > cfg.widen_k_sigma else "none")
    z2 = dx * dx / dt_s
    if warm and state.ewma_var > 0:
        z2 = min(z2, cfg.k_sigma**2 * state.ewma_var)
    alpha = min(1.0 - 2.0 ** (-dt_ns / cfg.halflife_ns), 2.0 / (cfg.warmup_n + 1))
    if not warm:
        alpha = max(alpha, 1.0 / (state.n + 1))
    lvl = state.last_logit if state.level_logit is None else state.level_logit
    lvl += (1.0 - 2.0 ** (-max(0, now_ns - state.last_ns) / cfg.level_halflife_ns)) * (
        state.last_logit - lvl)  # the previous value was in force until now
    new = JumpState(x, state.ewma_var + alpha * (z2 - state.ewma_var), state.n + 1,
                    max(now_ns, state.last_ns), lvl)
    return new, JumpVerdict(level, dx, dp, sigmas, now_ns)


def observe_theo(state: JumpState, prob: float, now_ns: int, cfg: JumpConfig
                 ) -> tuple[JumpState, JumpVerdict]:
    """:func:`observe` for the theo stream: a change beyond ``min_abs_prob`` is at least widen."""
    new, v = observe(state, prob, now_ns, cfg)
    if v.level == "none" and abs(v.d_prob) > cfg.min_abs_prob:
        v = replace(v, level="widen")
    return new, v


@dataclass(frozen=True, slots=True)
class Pending:
    """A book or trade verdict waiting for its move to persist: the raw verdict (strongest seen
    while pending, ``at_ns`` = when the move was first seen) and the stream's logit before it."""

    verdict: JumpVerdict
    base_logit: float
    """The stream's level (:attr:`JumpState.level_logit`) when the move was seen."""


@dataclass(frozen=True, slots=True)
class JumpMonitor:
    """The three streams of one market, with each stream's verdict in force.

    A stream's verdict in force is its latest one, unless an earlier, stronger verdict of that
    stream is still within ``hold_ns``: a ``widen`` is not cleared by the next quiet book change
    a second later. Trade prints keep one series per taker side (``trade`` for buys, which print
    at the ask; ``trade_sell`` for sells, at the bid), so the bid-ask bounce is not a move.
    Book and trade verdicts wait in ``pending`` (per series) until their move has persisted
    (module docstring, "Persistence")."""

    mid: JumpState = JumpState()
    trade: JumpState = JumpState()
    theo: JumpState = JumpState()
    mid_verdict: JumpVerdict | None = None
    trade_verdict: JumpVerdict | None = None
    theo_verdict: JumpVerdict | None = None
    trade_sell: JumpState = JumpState()
    pending: tuple[tuple[str, Pending], ...] = ()
    """(series name, pending verdict) for the series with a move awaiting confirmation."""


def _in_force(held: JumpVerdict | None, new: JumpVerdict, cfg: JumpConfig) -> JumpVerdict:
    """The verdict a stream keeps after ``new``: ``held`` while stronger and within hold."""
    if (held is not None and _LEVEL_RANK[held.level] > _LEVEL_RANK[new.level]
            and new.at_ns - held.at_ns <= cfg.hold_ns):
        return held
    return new


def _displaced(p: Pending, x: float, cfg: JumpConfig) -> bool:
    """Whether logit ``x`` is still moved from ``p.base_logit`` the way the pending verdict went:
    same sign, past both absolute gates, and at least ``confirm_fraction`` of the move."""
    dx = x - p.base_logit
    move = p.verdict.d_logit
    if dx * move <= 0 or abs(dx) < cfg.confirm_fraction * abs(move):
        return False
    return abs(dx) > cfg.min_abs_logit and abs(_expit(x) - _expit(p.base_logit)) > cfg.min_abs_prob


def _confirm(pend: Pending | None, raw: JumpVerdict, before: float | None, x: float,
             now_ns: int, cfg: JumpConfig) -> tuple[Pending | None, JumpVerdict]:
    """(pending after this observation, the verdict that counts now) for a book/trade series."""
    quiet = raw if raw.level == "none" else replace(raw, level="none")  # (equal; no copy)
    if pend is not None and not _displaced(pend, x, cfg):
        return None, quiet  # reverted: flicker (and the way back is not a move of its own)
    if pend is None:
        if raw.level == "none" or before is None:
            return None, raw
        pend = Pending(raw, before)
        if not _displaced(pend, x, cfg):
            return None, quiet  # a step back towards where the stream has been
    elif _LEVEL_RANK[raw.level] > _LEVEL_RANK[pend.verdict.level] and raw.d_logit * pend.verdict.d_logit > 0:
        pend = replace(pend, verdict=replace(pend.verdict, level=raw.level, sigmas=raw.sigmas))
    if now_ns - pend.verdict.at_ns >= cfg.confirm_ns:
        dx = x - pend.base_logit
        return None, replace(pend.verdict, d_logit=dx, d_prob=_expit(x) - _expit(pend.base_logit),
                             at_ns=now_ns)
    return pend, quiet


def _observe_series(mon: JumpMonitor, name: str, verdict_field: str, prob: float, now_ns: int,
                    cfg: JumpConfig) -> tuple[JumpMonitor, JumpVerdict]:
    st: JumpState = getattr(mon, name)
    state, v = observe(st, prob, now_ns, cfg)
    pending = dict(mon.pending)
    if cfg.confirm_ns > 0:
        p, v = _confirm(pending.pop(name, None), v, state.level_logit, state.last_logit or 0.0,
                        now_ns, cfg)
        if p is not None:
            pending[name] = p
    kept = _in_force(getattr(mon, verdict_field), v, cfg)
    return _with_series(mon, name, state, verdict_field, kept, tuple(sorted(pending.items()))), v


def _with_series(mon: JumpMonitor, name: str, state: JumpState, verdict_field: str,
                 kept: JumpVerdict, pending: tuple[tuple[str, Pending], ...]) -> JumpMonitor:
    """``replace(mon, **{name: state, verdict_field: kept, "pending": pending})``, built
    directly: this runs on every book event and ``dataclasses.replace`` costs a few µs."""
    mid, trade, trade_sell = mon.mid, mon.trade, mon.trade_sell
    mid_v, trade_v = mon.mid_verdict, mon.trade_verdict
    if name == "mid":
        mid = state
    elif name == "trade":
        trade = state
    elif name == "trade_sell":
        trade_sell = state
    else:
        return replace(mon, **{name: state, verdict_field: kept, "pending": pending})
    if verdict_field == "mid_verdict":
        mid_v = kept
    elif verdict_field == "trade_verdict":
        trade_v = kept
    else:
        return replace(mon, **{name: state, verdict_field: kept, "pending": pending})
    return JumpMonitor(mid, trade, mon.theo, mid_v, trade_v, mon.theo_verdict, trade_sell, pending)


def observe_stream(mon: JumpMonitor, stream: Stream, prob: float, now_ns: int, cfg: JumpConfig
                   ) -> tuple[JumpMonitor, JumpVerdict]:
    """Feed one stream of ``mon``; one ``cfg`` per stream may be passed by the caller. Returns
    this observation's verdict as it counts now (a book/trade move still awaiting persistence
    reads ``none``); the monitor keeps the one in force."""
    if stream not in ("mid", "trade", "theo"):
        raise InputError(f"unknown jump stream {stream!r}")
    if stream == "theo":
        state, v = observe_theo(mon.theo, prob, now_ns, cfg)
        # (``replace(mon, theo=..., theo_verdict=...)``, built directly: see _with_series)
        return JumpMonitor(mon.mid, mon.trade, state, mon.mid_verdict, mon.trade_verdict,
                           _in_force(mon.theo_verdict, v, cfg), mon.trade_sell, mon.pending), v
    return _observe_series(mon, stream, f"{stream}_verdict", prob, now_ns, cfg)


def observe_trade(mon: JumpMonitor, taker_side: Literal["bid", "ask"], prob: float, now_ns: int,
                  cfg: JumpConfig) -> tuple[JumpMonitor, JumpVerdict]:
    """Feed one trade print (YES price as a probability; ``taker_side`` "bid" = the taker bought
    YES) into the series of its taker side; the verdict lands in ``trade_verdict``."""
    name = "trade" if taker_side == "bid" else "trade_sell"
    return _observe_series(mon, name, "trade_verdict", prob, now_ns, cfg)


def combined(mon: JumpMonitor, now_ns: int, cfg: JumpConfig) -> JumpLevel:
    """Highest level among the streams' verdicts issued within ``cfg.hold_ns`` of ``now_ns``,
    and of pending book/trade verdicts whose move has persisted ``confirm_ns`` by ``now_ns``
    (judged on the series' latest value).

    ``combined(...) == "pull"`` is what the worker passes as ``RiskMetrics.jump``; ``widen``
    feeds the quoting width.
    """
    best: JumpLevel = "none"
    for v in (mon.mid_verdict, mon.trade_verdict, mon.theo_verdict):
        if v is not None and now_ns - v.at_ns <= cfg.hold_ns and (
                _LEVEL_RANK[v.level] > _LEVEL_RANK[best]):
            best = v.level
    for name, p in mon.pending:
        x = getattr(mon, name).last_logit
        if (x is not None and now_ns - p.verdict.at_ns >= cfg.confirm_ns
                and now_ns - p.verdict.at_ns <= cfg.confirm_ns + cfg.hold_ns
                and _displaced(p, x, cfg) and _LEVEL_RANK[p.verdict.level] > _LEVEL_RANK[best]):
            best = p.verdict.level
    return best


def depth_mid(bids: Mapping[int, int], asks: Mapping[int, int], depth: int,
              exclude: Iterable[tuple[str, int, int]] = ()) -> float | None:
    """The book's depth mid (price units): the midpoint of the volume-weighted average prices of
    the best ``depth`` centi-contracts on each side (all of a side when it holds less), after
    taking out ``exclude`` — our own orders as (side "bid"|"ask", price, size). None when a side
    is empty. A 1-lot top level moves it by ~1/depth of the gap, not by the whole gap.
    (:meth:`mmcore.book.MarketBook.depth_mid` keeps it between changes that cannot move it.)"""
    return depth_mid_of(bids, asks, depth, exclude)[0]


# --- triple barrier -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Barrier:
    """Barriers of one position. Prices in any one unit (price units, cents or probability), as
    long as ``take_profit``/``stop_loss`` (both > 0, distances from entry) use the same one."""

    entry_price: float
    side: int
    """+1 long YES, −1 short YES."""
    take_profit: float
    stop_loss: float
    vertical_ns: int
    """Absolute time of the vertical (time) barrier."""
    opened_ns: int

    def __post_init__(self) -> None:
        if self.side not in (1, -1):
            raise InputError(f"Barrier.side must be +1 or -1, got {self.side!r}")
        if not (self.take_profit > 0 and self.stop_loss > 0):
            raise InputError(f"Barrier distances must be > 0: {self!r}")
        if self.vertical_ns < self.opened_ns:
            raise InputError(f"Barrier.vertical_ns before opened_ns: {self!r}")

    @classmethod
    def with_horizon(cls, entry_price: float, side: int, take_profit: float, stop_loss: float,
                     opened_ns: int, horizon_ns: int, not_after_ns: int | None = None) -> Barrier:
        """Vertical barrier at ``min(opened + horizon, not_after)`` (e.g. game start − buffer)."""
        v = opened_ns + horizon_ns
        if not_after_ns is not None:
            v = max(opened_ns, min(v, not_after_ns))
        return cls(entry_price, side, take_profit, stop_loss, v, opened_ns)


def check_barrier(b: Barrier, price: float, now_ns: int) -> BarrierLabel:
    """Which barrier a price observed at ``now_ns`` touches (``none`` while inside)."""
    if now_ns > b.vertical_ns:
        return "vertical"
    gain = b.side * (price - b.entry_price)
    tol = 1e-9 * max(1.0, abs(b.entry_price))
    if gain >= b.take_profit - tol:
        return "take_profit"
    if gain <= -b.stop_loss + tol:
        return "stop_loss"
    return "vertical" if now_ns == b.vertical_ns else "none"


def first_touch(b: Barrier, path: Iterable[tuple[int, float]]) -> tuple[BarrierLabel, int, float]:
    """The first barrier a time-ordered ``(t_ns, price)`` path touches, with when and at what.

    Points before ``opened_ns`` are skipped. Past ``vertical_ns`` the answer is
    ``("vertical", vertical_ns, last price seen)``; a path that ends inside all barriers gives
    ``("none", t, price)`` of its last point (``(opened_ns, entry_price)`` when empty).
    """
    last_t, last_p = b.opened_ns, b.entry_price
    prev_t: int | None = None
    for t, p in path:
        if prev_t is not None and t < prev_t:
            raise InputError(f"path not time-ordered: {t} after {prev_t}")
        prev_t = t
        if t < b.opened_ns:
            continue
        label = check_barrier(b, p, t)
        if label == "vertical" and t > b.vertical_ns:
            return "vertical", b.vertical_ns, last_p
        if label != "none":
            return label, t, p
        last_t, last_p = t, p
    return "none", last_t, last_p
