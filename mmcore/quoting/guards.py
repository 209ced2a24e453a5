"""Adverse-selection guards: how much wider to quote each side, and which sides to hold back.

The seeds' toxicity guards (reference/seed-baselines.md "The adverse-selection guards", and
quoting-math.md §5.3 markouts, §6.2 "adverse selection" row), turned into a per-side *widen*
that :func:`mmcore.quoting.quotes.desired_quotes` adds to the half-spreads, and a *hold* that
leaves a side unquoted for a short cooldown. The worker (:class:`mmcore.worker.engine.GameWorker`)
feeds one :class:`AdverseGuards` per game and asks it for a :class:`GuardDecision` at every
requote. No clock, no I/O: every call takes ``now_ns``.

Calling order (the engine's)::

    g = AdverseGuards(game.markets, cfg)
    g.observe_mid(market, mid, now_ns)            # every book change (mid of the whole book)
    g.observe_fill(market, side, price, count, now_ns)   # every fill of ours
    reason = g.observe_trade(market, count, taker_side, now_ns, price)  # every public print;
                                                  # a reason: a sweep → re-pull odds
    g.observe_theo(market, theo_price, now_ns)    # every theo (releases caught-up sweeps)
    reason = g.jump_refresh(market, stream, verdict, now_ns)  # re-pull odds on a jump?
    d = g.decide(now_ns, live_orders, jump_levels)  # → widen per slot, holds, notes

The guards, each with its numbers in ``d.notes`` (journaled with the quote decision):

======================  =========================================================================
markout (per side)      each fill's markout ``s·(m(t+h) − P)`` (s = +1 bought, −1 sold; m the
                        mid in force ``markout_horizon_ns`` later) enters a contract-weighted
                        mean whose weights halve every ``markout_halflife_ns``. While the decayed
                        weight is at least ``markout_min_contracts`` and the mean is below
                        ``−markout_trigger_price``, that side widens by ``markout_widen_k × |mean|``
                        (at most ``markout_widen_max_price``) — GLFT §5.2: if fills move the
                        reference against us by ξ, the half-spread must grow.
order flow (per side)   signed taker volume over ``flow_window_ns`` (taker buys YES +, sells −);
                        ``|imbalance| ≥ flow_imbalance_trigger`` with at least
                        ``flow_min_contracts`` traded widens the side being hit (buyers lift
                        asks: the ask) by ``flow_widen_price``.
volatility (both)       realised mid volatility over ``vol_window_ns``, ``sqrt(Σ Δm²)``; past
                        ``vol_trigger_price`` both sides widen by ``vol_widen_k × vol`` (capped).
jump (both)             a market whose jump verdict (:mod:`mmcore.risk.jumps`) is ``widen`` or
                        ``pull`` widens both sides by ``jump_widen_price``.
markout size (per side) the same decayed markout mean sizes the side: at ``≥ −size_markout_full_price``
                        full size, at ``≤ −size_markout_floor_price`` ``size_floor_fraction`` of it,
                        linear between (:attr:`GuardDecision.size`). Sizing from the measured
                        toxicity instead of stepping away: benign flow gets the full clip, toxic
                        flow the minimum, never nothing (quotes.py keeps ``min_size``).
sweep (hold, per side)  a taker who trades ``sweep_min_contracts`` or more through at least
                        ``sweep_min_levels`` prices of one side within ``sweep_window_ns`` (one
                        IOC sweeping the book: news-informed flow; noise takes ≤ 10 contracts at
                        the touch) holds that side of that market at once — no persistence, unlike
                        the jump detector's book/trade verdicts — for ``sweep_hold_ns`` after the
                        last sweep, or until a theo reaches the sweep's far price
                        (:meth:`AdverseGuards.observe_theo`): news stays private for minutes and
                        the next news taker sweeps whatever rests at the old price again.
stale quote (hold)      a live order older than ``stale_quote_age_ns`` while the mid moved at
                        least ``stale_quote_move_price`` since it was placed is held back (not
                        quoted, so the reconcile cancels it) for ``stale_quote_hold_ns``.
======================  =========================================================================

The widen of a side is the sum, capped at ``max_widen_price``. Times are the worker's clock at
receipt (``now_ns``), so the mid path, our fills and the trade prints share one clock.

Units: prices and widens are price units ($0.0001, YES terms; floats where they are averages),
counts centi-contracts, times int ns.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields

from mmcore.errors import InputError
from mmcore.orders import LiveOrder, Side, Slot
from mmcore.risk.jumps import JumpVerdict
from mmcore.units import CONTRACT

NS = 1_000_000_000
SIDES: tuple[Side, Side] = ("bid", "ask")


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Thresholds of the guards (units in the names; see the module table)."""

    enabled: bool = True
    markout_horizon_ns: int = 5 * NS
    markout_halflife_ns: int = 120 * NS
    markout_min_contracts: float = 5.0
    """Decayed contract weight needed before the mean markout counts (whole contracts)."""
    markout_trigger_price: float = 50.0
    markout_widen_k: float = 1.0
    markout_widen_max_price: float = 500.0
    size_markout_full_price: float = 0.0
    """Mean markout (per contract, adverse side negative) down to which a side gets full size."""
    size_markout_floor_price: float = 200.0
    """Adverse mean markout at which a side is down to ``size_floor_fraction`` of its size."""
    size_floor_fraction: float = 0.1
    flow_window_ns: int = 10 * NS
    flow_min_contracts: int = 30 * CONTRACT
    """Traded volume in the window needed before imbalance counts (centi-contracts)."""
    flow_imbalance_trigger: float = 0.7
    flow_widen_price: float = 100.0
    vol_window_ns: int = 10 * NS
    vol_trigger_price: float = 200.0
    vol_widen_k: float = 0.5
    vol_widen_max_price: float = 300.0
    jump_widen_price: float = 200.0
    jump_refresh_cooldown_ns: int = 60 * NS
    """At most one odds re-pull per game per this long for jumps."""
    stale_quote_age_ns: int = 20 * NS
    stale_quote_move_price: float = 200.0
    stale_quote_hold_ns: int = 2 * NS
    max_widen_price: float = 1000.0
    sweep_min_contracts: float = 20.0
    """Taker volume on one side within ``sweep_window_ns`` that makes a sweep (whole contracts):
    above a noise order (≤ 10), at or below a news taker's (30–100) and a sharp sweep's (5–25)."""
    sweep_min_levels: int = 1
    """Distinct prices that volume must have traded at (2: only a trade-through of the touch;
    1: size alone — a news sweep often fills entirely at a touch where several makers rest)."""
    sweep_window_ns: int = 1 * NS
    sweep_hold_ns: int = 60 * NS
    """How long the swept side stays held after the last sweep (0: the sweep guard is off)."""
    sweep_other_markets: bool = True
    """Hold the other outcomes' opposite side too (a sweep buying YES of one team sells the
    others': their bids are next)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("enabled", "sweep_other_markets"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise InputError(f"GuardConfig.{f.name} must be a finite number >= 0, got {v!r}")
        for name in ("markout_horizon_ns", "markout_halflife_ns", "flow_window_ns", "vol_window_ns"):
            if getattr(self, name) <= 0:
                raise InputError(f"GuardConfig.{name} must be > 0")
        if not 0 < self.size_floor_fraction <= 1:
            raise InputError("GuardConfig.size_floor_fraction must be in (0, 1]")
        if self.size_markout_floor_price <= self.size_markout_full_price:
            raise InputError("GuardConfig.size_markout_floor_price must be > size_markout_full_price")
        if not 0 < self.flow_imbalance_trigger <= 1:
            raise InputError("GuardConfig.flow_imbalance_trigger must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class GuardDecision:
    widen: Mapping[Slot, float]
    """Extra half-spread per side (price units), only for sides that widen."""
    hold: Mapping[Slot, str]
    """Sides not to quote now, with why."""
    notes: tuple[str, ...]
    size: Mapping[Slot, float] = field(default_factory=dict)
    """Fraction of its size each side is quoted at (only sides below 1), from its markouts."""


# --- pure pieces ------------------------------------------------------------------------------


def markout(side: Side, price: int, mid: float) -> float:
    """Markout of one fill per contract (price units): positive means the fill was good."""
    return (mid - price) if side == "bid" else (price - mid)


def size_fraction(mean_markout: float | None, cfg: GuardConfig) -> float:
    """Share of a side's size to quote given its mean markout (price units per contract; None:
    not enough measured → 1): 1 down to ``−size_markout_full_price``, ``size_floor_fraction``
    from ``−size_markout_floor_price``, linear between."""
    if mean_markout is None or mean_markout >= -cfg.size_markout_full_price:
        return 1.0
    x = (-mean_markout - cfg.size_markout_full_price) / (
        cfg.size_markout_floor_price - cfg.size_markout_full_price)
    return max(cfg.size_floor_fraction, 1.0 - (1.0 - cfg.size_floor_fraction) * min(1.0, x))


def decay(value: float, dt_ns: int, halflife_ns: int) -> float:
    """``value`` after ``dt_ns`` of exponential decay (negative ``dt_ns`` decays nothing)."""
    return value * 2.0 ** (-max(0, dt_ns) / halflife_ns)


def imbalance(signed_counts: Iterable[int]) -> tuple[float, int]:
    """(Σ signed / Σ |count|, Σ |count|); (0, 0) without volume. In [−1, 1]."""
    total = net = 0
    for c in signed_counts:
        total += abs(c)
        net += c
    return (net / total if total else 0.0), total


def realized_vol(mids: Iterable[float]) -> float:
    """``sqrt(Σ Δm²)`` of a time-ordered mid series (price units)."""
    prev: float | None = None
    acc = 0.0
    for m in mids:
        if prev is not None:
            acc += (m - prev) ** 2
        prev = m
    return math.sqrt(acc)


@dataclass(slots=True)
class _Markouts:
    """Contract-weighted, time-decayed markout sums of one side (as of ``at_ns``)."""

    weighted: float = 0.0
    """Σ w·count·markout (centi-contracts × price units)."""
    weight: float = 0.0
    """Σ w·count (centi-contracts)."""
    n: int = 0
    at_ns: int = 0

    def add(self, value: float, count: int, at_ns: int, halflife_ns: int) -> None:
        dt = at_ns - self.at_ns
        self.weighted = decay(self.weighted, dt, halflife_ns) + count * value
        self.weight = decay(self.weight, dt, halflife_ns) + count
        self.n += 1
        self.at_ns = max(self.at_ns, at_ns)

    def mean_and_weight(self, now_ns: int, halflife_ns: int) -> tuple[float | None, float]:
        if self.weight <= 0:
            return None, 0.0
        return self.weighted / self.weight, decay(self.weight, now_ns - self.at_ns, halflife_ns)


@dataclass(slots=True)
class _Market:
    times: list[int] = field(default_factory=list)
    mids: list[float] = field(default_factory=list)
    pending: deque[tuple[int, Side, int, int]] = field(default_factory=deque)
    """Fills awaiting their markout: (due_ns, side, price, count)."""
    flow: deque[tuple[int, int]] = field(default_factory=deque)
    """(time, signed taker count) of recent trade prints."""
    burst: dict[str, deque[tuple[int, int, int]]] = field(
        default_factory=lambda: {"bid": deque(), "ask": deque()})
    """Per taker side: (time, count, price) of prints within ``sweep_window_ns``."""
    sweeps: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """Per taker side: (held until ns, far price of the sweeps, why) while in force."""

    def mid_at(self, t_ns: int) -> float | None:
        """The mid in force at ``t_ns`` (last observation at or before it)."""
        i = bisect_right(self.times, t_ns)
        return self.mids[i - 1] if i else None


# --- the guards -------------------------------------------------------------------------------


class AdverseGuards:
    """One game's guard state (see the module docstring for the calling order)."""

    def __init__(self, markets: Iterable[str], cfg: GuardConfig = GuardConfig()) -> None:
        self.cfg = cfg
        self.markets = tuple(markets)
        self._m: dict[str, _Market] = {m: _Market() for m in self.markets}
        self._markouts: dict[Slot, _Markouts] = {(m, s): _Markouts() for m in self.markets for s in SIDES}
        self._held: dict[Slot, tuple[int, str]] = {}
        self._last_jump_refresh_ns: int | None = None
        self._last_key: tuple[frozenset[tuple[Slot, int]], frozenset[Slot]] = (frozenset(), frozenset())
        self._keep_ns = max(cfg.vol_window_ns, 2 * cfg.stale_quote_age_ns, 2 * cfg.markout_horizon_ns)

    # --- observations ---

    def observe_mid(self, market: str, mid: float | None, now_ns: int) -> None:
        """A book change: the mid of the whole book (price units), None when one side is empty."""
        st = self._m.get(market)
        if st is None or mid is None:
            return
        if st.mids and st.mids[-1] == mid:
            self._resolve(market, now_ns)
            return
        if st.times and now_ns < st.times[-1]:
            now_ns = st.times[-1]  # a clock step back: keep the series ordered
        self._resolve(market, now_ns)  # before this change: it may be after their horizon
        st.times.append(now_ns)
        st.mids.append(mid)
        # keep one observation at or before the horizon start: mid_at stays exact inside it
        cut = bisect_right(st.times, now_ns - self._keep_ns) - 1
        if cut > 0:
            del st.times[:cut]
            del st.mids[:cut]

    def observe_fill(self, market: str, side: Side, price: int, count: int, now_ns: int) -> None:
        """One of our fills (YES price, centi-contracts): its markout is taken a horizon later."""
        st = self._m.get(market)
        if st is None or count <= 0:
            return
        st.pending.append((now_ns + self.cfg.markout_horizon_ns, side, price, count))

    def observe_trade(self, market: str, count: int, taker_side: Side, now_ns: int,
                      price: int | None = None) -> str | None:
        """A public trade print; ``taker_side`` "bid" = the taker bought YES; ``price`` its YES
        price (price units; None: the sweep guard does not see it). Returns the reason for an
        odds re-pull when this print completes a sweep (module table), else None."""
        st = self._m.get(market)
        if st is None or count <= 0:
            return None
        st.flow.append((now_ns, count if taker_side == "bid" else -count))
        self._prune_flow(st, now_ns)
        cfg = self.cfg
        if not cfg.enabled or price is None or cfg.sweep_hold_ns <= 0:
            return None
        burst = st.burst[taker_side]
        burst.append((now_ns, count, price))
        while burst and burst[0][0] <= now_ns - cfg.sweep_window_ns:
            burst.popleft()
        total = sum(c for _, c, _ in burst)
        prices = {p for _, _, p in burst}
        if total < cfg.sweep_min_contracts * CONTRACT or len(prices) < cfg.sweep_min_levels:
            return None
        far = max(prices) if taker_side == "bid" else min(prices)
        held = st.sweeps.get(taker_side)
        if held is not None and now_ns < held[0]:
            far = max(far, held[1]) if taker_side == "bid" else min(far, held[1])
        verb = "bought" if taker_side == "bid" else "sold"
        why = (f"sweep: takers {verb} {total / CONTRACT:.0f} contracts through {len(prices)} "
               f"prices to {far}")
        first = held is None or now_ns >= held[0]
        st.sweeps[taker_side] = (now_ns + cfg.sweep_hold_ns, far, why)
        if not first:
            return None
        last = self._last_jump_refresh_ns
        if last is not None and now_ns - last < cfg.jump_refresh_cooldown_ns:
            return None
        self._last_jump_refresh_ns = now_ns
        return f"jump on {market}: trade {why}"  # the same re-pull (and cooldown) as a jump

    def observe_theo(self, market: str, theo_price: float, now_ns: int) -> None:
        """A new theo of ``market`` (YES, price units): a sweep it has caught up with (a buy
        sweep's far price at or below theo, a sell's at or above) is released — the books
        now know what the sweepers knew."""
        st = self._m.get(market)
        if st is None:
            return
        for taker_side, (until, far, _) in list(st.sweeps.items()):
            if now_ns >= until or (far <= theo_price if taker_side == "bid" else far >= theo_price):
                del st.sweeps[taker_side]

    def jump_refresh(self, market: str, stream: str, verdict: JumpVerdict | None,
                     now_ns: int) -> str | None:
        """A jump verdict of ``widen``/``pull`` on ``stream`` → the reason for an odds re-pull of
        the game, or None (no jump, or one was asked within ``jump_refresh_cooldown_ns``)."""
        if not self.cfg.enabled or verdict is None or verdict.level not in ("widen", "pull"):
            return None
        last = self._last_jump_refresh_ns
        if last is not None and now_ns - last < self.cfg.jump_refresh_cooldown_ns:
            return None
        self._last_jump_refresh_ns = now_ns
        s = verdict.sigmas
        size = f", {s:.1f}σ" if s is not None and math.isfinite(s) else ""
        return f"jump on {market}: {stream} moved {verdict.d_prob * 100:+.1f}¢{size} → {verdict.level}"

    # --- the decision ---

    def markout_stats(self, slot: Slot, now_ns: int) -> tuple[float | None, float, int]:
        """(mean markout per contract in price units or None, decayed weight in contracts,
        fills measured) of one side, as of ``now_ns``."""
        self._resolve(slot[0], now_ns)
        return self._stats(slot, now_ns)

    def _stats(self, slot: Slot, now_ns: int) -> tuple[float | None, float, int]:
        """:meth:`markout_stats` once ``slot``'s market is resolved up to ``now_ns``."""
        mo = self._markouts[slot]
        mean, weight = mo.mean_and_weight(now_ns, self.cfg.markout_halflife_ns)
        return mean, weight / CONTRACT, mo.n

    def decide(self, now_ns: int, live: Iterable[LiveOrder],
               jump_levels: Mapping[str, str] | None = None) -> GuardDecision:
        """Widen per side and holds for the requote at ``now_ns``."""
        cfg = self.cfg
        if not cfg.enabled:
            return GuardDecision({}, {}, ())
        widen: dict[Slot, float] = {}
        size: dict[Slot, float] = {}
        notes: list[str] = []
        for m in self.markets:
            st = self._m[m]
            self._resolve(m, now_ns)
            both = 0.0
            vol = realized_vol(self._window_mids(st, now_ns - cfg.vol_window_ns))
            if vol > cfg.vol_trigger_price:
                w = min(cfg.vol_widen_max_price, cfg.vol_widen_k * vol)
                both += w
                notes.append(f"guard vol {m}: mid moved {vol:.0f} (√ΣΔm²) in "
                             f"{cfg.vol_window_ns / NS:.0f}s > {cfg.vol_trigger_price:.0f} → widen both +{w:.0f}")
            level = (jump_levels or {}).get(m, "none")
            if level in ("widen", "pull"):
                both += cfg.jump_widen_price
                notes.append(f"guard jump {m}: verdict {level} → widen both +{cfg.jump_widen_price:.0f}")
            self._prune_flow(st, now_ns)
            imb, total = imbalance(c for _, c in st.flow)
            hit: Side | None = None
            if total >= cfg.flow_min_contracts and abs(imb) >= cfg.flow_imbalance_trigger:
                hit = "ask" if imb > 0 else "bid"
                notes.append(f"guard flow {m}: imbalance {imb:+.2f} of {total / CONTRACT:.0f} contracts "
                             f"in {cfg.flow_window_ns / NS:.0f}s → widen {hit} +{cfg.flow_widen_price:.0f}")
            for side in SIDES:
                w = both + (cfg.flow_widen_price if side == hit else 0.0)
                mean, weight, n = self._stats((m, side), now_ns)  # (m resolved above)
                if (mean is not None and weight >= cfg.markout_min_contracts
                        and mean < -cfg.markout_trigger_price):
                    wm = min(cfg.markout_widen_max_price, cfg.markout_widen_k * -mean)
                    w += wm
                    notes.append(f"guard markout {m} {side}: mean {mean:+.0f} per contract at "
                                 f"{cfg.markout_horizon_ns / NS:.0f}s over {weight:.1f} decayed contracts "
                                 f"({n} fills) < −{cfg.markout_trigger_price:.0f} → widen {side} +{wm:.0f}")
                if w > 0:
                    widen[(m, side)] = min(w, cfg.max_widen_price)
                f = size_fraction(mean if weight >= cfg.markout_min_contracts else None, cfg)
                if f < 1.0:
                    size[(m, side)] = f
                    notes.append(f"guard size {m} {side}: mean markout {mean:+.0f} → size ×{f:.2f}")
        hold = self._holds(now_ns, live, notes)
        return GuardDecision(widen, hold, tuple(notes), size)

    def changed(self, d: GuardDecision) -> bool:
        """Whether ``d`` differs from the decision last passed here in which sides widen (to the
        nearest 100 price units) or are held: the worker journals such a change even when no
        order has to move, so every guard verdict is on the record with its numbers."""
        key = (frozenset((s, round(w / 100)) for s, w in d.widen.items()), frozenset(d.hold))
        if key == self._last_key:
            return False
        self._last_key = key
        return True

    # --- internals ---

    def _holds(self, now_ns: int, live: Iterable[LiveOrder], notes: list[str]) -> dict[Slot, str]:
        cfg = self.cfg
        for o in live:
            st = self._m.get(o.market)
            if st is None or now_ns - o.placed_ns < cfg.stale_quote_age_ns:
                continue
            then, now = st.mid_at(o.placed_ns), st.mid_at(now_ns)
            if then is None or now is None or abs(now - then) < cfg.stale_quote_move_price:
                continue
            why = (f"rested {(now_ns - o.placed_ns) / NS:.0f}s while the mid moved {now - then:+.0f} "
                   f"({then:.0f} → {now:.0f})")
            self._held[o.slot] = (now_ns + cfg.stale_quote_hold_ns, why)
        out: dict[Slot, str] = {}
        for m, st in self._m.items():  # a swept side: the side the sweepers took (buyers: asks)
            for taker_side, (until, _, why) in list(st.sweeps.items()):
                if now_ns >= until:
                    del st.sweeps[taker_side]
                    continue
                took: Side = "ask" if taker_side == "bid" else "bid"
                slots: list[Slot] = [(m, took)]
                if cfg.sweep_other_markets:  # YES up here is YES down in the other outcomes
                    other: Side = "bid" if took == "ask" else "ask"
                    slots += [(o, other) for o in self.markets if o != m]
                for slot in slots:
                    out[slot] = (f"{why} on {m}: held {(until - now_ns) / NS:.0f}s or until "
                                 f"theo gets there")
                    notes.append(f"guard sweep {slot[0]} {slot[1]}: {out[slot]}")
        for slot, (until, why) in list(self._held.items()):
            if now_ns >= until:
                del self._held[slot]
                continue
            out[slot] = f"stale quote {why}: held {(until - now_ns) / NS:.1f}s"
            notes.append(f"guard stale {slot[0]} {slot[1]}: {out[slot]}")
        return out

    def _resolve(self, market: str, now_ns: int) -> None:
        """Take the markouts of fills whose horizon has passed."""
        st = self._m[market]
        while st.pending and st.pending[0][0] <= now_ns:
            due, side, price, count = st.pending.popleft()
            mid = st.mid_at(due)
            if mid is None:
                continue  # no two-sided book yet: nothing to measure against
            self._markouts[(market, side)].add(markout(side, price, mid), count, due,
                                               self.cfg.markout_halflife_ns)

    def _window_mids(self, st: _Market, since_ns: int) -> list[float]:
        """Mids in force from ``since_ns`` on (the one in force at ``since_ns`` first)."""
        i = max(0, bisect_right(st.times, since_ns) - 1)
        return st.mids[i:]

    def _prune_flow(self, st: _Market, now_ns: int) -> None:
        while st.flow and st.flow[0][0] <= now_ns - self.cfg.flow_window_ns:
            st.flow.popleft()
