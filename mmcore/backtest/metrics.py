"""Backtest metrics per game and per run, as pure functions of what the run recorded.

Inputs: our fills (engine records), the per-market top-of-book samples and fill contexts of
:class:`~mmcore.backtest.tape.Tape`, the hidden truth, the game's quoting window. Definitions:

- **P&L per contract**: net P&L after fees at settlement ÷ contracts traded (price units per
  contract; ×/100 for cents).
- **Markout** of a fill at horizon τ: the reference price at ``t + τ`` minus the fill price for a
  bid, the fill price minus it for an ask (positive = good for us), price units per contract.
  Reference ``mid``: the last two-sided book mid at or before ``t + τ`` (our own orders are in the
  book, as on the exchange's public feed); ``truth``: the market's hidden YES probability at
  ``t + τ`` × ``PRICE_ONE``. A game's or run's markout is the count-weighted mean over fills.
- **Time at the best price**, per side: the share of the quoting window (worker start → its stop,
  or the game start if it never stopped) during which one of our resting orders is at that side's
  best price of its market (alone or joined), averaged over the game's markets.
- **Max drawdown**: largest fall from a running peak of the equity marked to the book mid (cash
  after fees + each position × its market's last two-sided mid; before any mid: at the fill
  price) over the quoting window; money, price units, ≥ 0.
- **Max |inventory| ÷ hard limit**: over our fills, the largest |directional inventory| after
  the fill divided by the worker's hard bound in force at that moment. The bound follows the
  book's liquidity, so a sweep can shrink it under inventory acquired inside it: this ratio
  can pass 1 with no order ever sent past the limit.
- **Max |inventory| ÷ limit at send** (what the hard limit promises): over our fills, per
  outcome ``o`` with ``d_o ≠ 0`` after the fill, ``|d_o|`` ÷ the hard bound in force when the
  worker decided an order pushing ``d_o`` that way: the last such place or amend raising an
  order's open count (a cut is always allowed and promises nothing; the runner's ``_adds``) before
  the fill (in the order they happened, :class:`~mmcore.backtest.tape.Tape`'s sequence: not
  by time alone, many share an instant), or any within :data:`IN_FLIGHT_NS` before it if
  larger (an order sent under a larger bound may still rest while a later one travels).
  The gate refuses an order whose worst case (every resting and in-flight order filling) passes
  the bound then, and the worst case cannot grow until the next such order, so this is ≤ 1
  whenever the limit held. **Limit-shrank fills**: fills after which |inventory| is above the
  bound in force at the fill but within the bound at send (the worker may only reduce then).

Units: times int ns; prices int price units; counts int centi-contracts; money int price units.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmcore.backtest.tape import FillContext, TopSample
from mmcore.game import GameBook, directional_inventory
from mmcore.risk.exposure import scaled_order_direction
from mmcore.sim.engine_types import Fill
from mmcore.units import CONTRACT, PRICE_ONE

NS = 1_000_000_000
HORIZONS_S: tuple[int, ...] = (1, 5, 30)
"""Markout horizons (seconds)."""

IN_FLIGHT_NS = 1_000_000_000
"""How long after a send the order it replaced may still be what rests (≥ a round trip)."""

TruthFn = Callable[[str, int], float]
"""``truth(market, t_ns)`` → hidden YES probability."""


@dataclass(frozen=True, slots=True)
class FillMetrics:
    """What one of our fills was worth after the fact, and where it stood in the queue."""

    trade_id: str
    markout_mid: tuple[float | None, ...]
    """Per :data:`HORIZONS_S`: vs the book mid (price units per contract; None: no mid yet)."""
    markout_truth: tuple[float, ...]
    """Per :data:`HORIZONS_S`: vs the hidden truth (price units per contract)."""
    queue_ahead_placed: int | None
    queue_ahead_filled: int | None
    hard_limit: int | None


@dataclass(frozen=True, slots=True)
class GameMetrics:
    """One game's metrics (see the module docstring for each definition)."""

    fills: tuple[FillMetrics, ...]
    """Aligned with the game's fills."""
    pnl_per_contract: float | None
    markout_mid: tuple[float | None, ...]
    markout_truth: tuple[float | None, ...]
    time_at_best_bid: float
    time_at_best_ask: float
    max_drawdown_money: int
    """Marked to the book mid over the quoting window."""
    max_inventory_ratio: float | None
    window_ns: tuple[int, int]
    """The quoting window ``(from, to)``."""
    max_inventory_ratio_at_send: float | None = None
    """Against the bound when the orders were sent (module docstring); None without sends."""
    limit_shrank_fills: int = 0
    """Fills over the bound at the fill but within it at send."""


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """A run's totals: counts and money summed, markouts count-weighted over every fill, time
    at best averaged over games, drawdown of the summed mark-to-mid equity of all games."""

    fills: int
    volume: int
    net_pnl_money: int
    pnl_per_contract: float | None
    markout_mid: tuple[float | None, ...]
    markout_truth: tuple[float | None, ...]
    time_at_best_bid: float | None
    time_at_best_ask: float | None
    max_drawdown_money: int
    max_inventory_ratio: float | None
    queue_ahead_placed_mean: float | None
    """Mean centi-contracts ahead at placement over fills whose placement was seen."""
    nobody_ahead_share: float | None
    """Share of those fills whose order had nobody ahead when it took its place."""
    max_inventory_ratio_at_send: float | None = None
    limit_shrank_fills: int = 0


# --- small pure pieces ---------------------------------------------------------------------------

def pnl_per_contract(net_pnl_money: int, volume: int) -> float | None:
    """Price units per contract traded (None with no volume)."""
    return net_pnl_money * CONTRACT / volume if volume else None


def signed_markout(side: str, price: int, reference: float) -> float:
    """Positive = good for us: a bid gains when the reference rises above what we paid."""
    return reference - price if side == "bid" else price - reference


class MidLine:
    """A market's two-sided mids over time, for ``mid at or before t`` lookups."""

    def __init__(self, samples: Sequence[TopSample]) -> None:
        pairs = [(s.ts_ns, s.mid) for s in samples if s.mid is not None]
        self.ts = [t for t, _ in pairs]
        self.mids = [m for _, m in pairs]

    def at(self, t_ns: int) -> float | None:
        i = bisect_right(self.ts, t_ns)
        return self.mids[i - 1] if i else None


def weighted_mean(values: Iterable[tuple[float | None, int]]) -> float | None:
    """Count-weighted mean of ``(value, count)`` pairs, skipping None values."""
    num = den = 0.0
    for v, n in values:
        if v is not None:
            num += v * n
            den += n
    return num / den if den else None


def time_at_best(samples: Sequence[TopSample], side: str, start_ns: int, end_ns: int) -> float:
    """Share of ``[start_ns, end_ns)`` during which our order is at ``side``'s best price."""
    if end_ns <= start_ns:
        return 0.0
    total = 0
    for i, s in enumerate(samples):
        at = s.our_bid_at_best if side == "bid" else s.our_ask_at_best
        if not at:
            continue
        lo = max(s.ts_ns, start_ns)
        hi = min(samples[i + 1].ts_ns if i + 1 < len(samples) else end_ns, end_ns)
        if hi > lo:
            total += hi - lo
    return total / (end_ns - start_ns)


def max_drawdown(curve: Iterable[tuple[int, float]]) -> float:
    """Largest fall from a running peak (the curve starts from a peak of 0), ≥ 0."""
    peak = worst = 0.0
    for _, equity in curve:
        peak = max(peak, equity)
        worst = max(worst, peak - equity)
    return worst


def equity_curve(fills: Sequence[Fill], tops: Mapping[str, Sequence[TopSample]],
                 start_ns: int, end_ns: int) -> list[tuple[int, float]]:
    """``[(t, equity)]`` after each fill and each mid change within ``[start_ns, end_ns]``:
    cash after fees plus positions at their market's last two-sided mid (before any mid: at the
    market's last fill price). Money, price units."""
    events: list[tuple[int, int, int, object]] = []
    for i, f in enumerate(fills):
        events.append((f.ts_ns, 1, i, f))  # at a tie the book change (0) comes first
    for market, samples in tops.items():
        for j, s in enumerate(samples):
            if s.mid is not None:
                events.append((s.ts_ns, 0, j, (market, s.mid)))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    cash = 0
    pos: dict[str, int] = {m: 0 for m in tops}
    mark: dict[str, float] = {}
    value = 0.0  # Σ pos × mark / CONTRACT, kept incrementally
    curve: list[tuple[int, float]] = []
    for t, kind, _, item in events:
        if t > end_ns:
            break
        if kind == 1:
            f = item
            assert isinstance(f, Fill)
            money = f.price * f.count // CONTRACT
            cash += (-money if f.side == "bid" else money) - f.fee
            dq = f.count if f.side == "bid" else -f.count
            old = mark.get(f.ticker)
            if old is None:
                old = mark[f.ticker] = float(f.price)
            pos[f.ticker] = pos.get(f.ticker, 0) + dq
            value += dq * old / CONTRACT
        else:
            market, mid = item  # type: ignore[misc]
            old = mark.get(market)
            value += pos.get(market, 0) * (mid - (old if old is not None else mid)) / CONTRACT
            mark[market] = mid
        if t >= start_ns:
            curve.append((t, cash + value))
    return curve


def merged_curve(curves: Sequence[Sequence[tuple[int, float]]]) -> list[tuple[int, float]]:
    """The sum of several equity curves (each holds its last value between its points)."""
    last = [0.0] * len(curves)
    total = 0.0
    out: list[tuple[int, float]] = []
    tagged = ([(t, k, e) for t, e in c] for k, c in enumerate(curves))
    for t, k, e in heapq.merge(*tagged):
        total += e - last[k]
        last[k] = e
        out.append((t, total))
    return out


# --- a game and a run ----------------------------------------------------------------------------

def game_metrics(book: GameBook, markets: Sequence[str], fills: Sequence[Fill],
                 contexts: Mapping[str, FillContext], tops: Mapping[str, Sequence[TopSample]],
                 truth: TruthFn, window: tuple[int, int], net_pnl_money: int, volume: int,
                 sends: Mapping[str, Sequence[tuple[int, ...]]] | None = None,
                 ) -> tuple[GameMetrics, list[tuple[int, float]]]:
    """One game's metrics and its equity curve (for the run's drawdown). ``sends``: per market,
    ``(decision time, side, hard bound then[, sequence number])`` of our places and amends
    (:attr:`Tape.sends`; the fills' numbers are in their contexts' ``seq``)."""
    lines = {m: MidLine(tops.get(m, ())) for m in markets}
    positions = {m: 0 for m in markets}
    per_fill: list[FillMetrics] = []
    ratio: float | None = None
    at_send = _SendBound(book, markets, sends) if sends is not None else None
    ratio_send: float | None = None
    shrank = 0
    for f in fills:
        horizons = [f.ts_ns + h * NS for h in HORIZONS_S]
        mids = tuple(None if (ref := lines[f.ticker].at(t)) is None
                     else signed_markout(f.side, f.price, ref) for t in horizons)
        truths = tuple(signed_markout(f.side, f.price, truth(f.ticker, t) * PRICE_ONE)
                       for t in horizons)
        ctx = contexts.get(f.trade_id, FillContext(None, None, None))
        per_fill.append(FillMetrics(f.trade_id, mids, truths, ctx.queue_ahead_placed,
                                    ctx.queue_ahead_filled, ctx.hard_limit))
        positions[f.ticker] += f.count if f.side == "bid" else -f.count
        inv = directional_inventory(book, positions)
        r = None
        if ctx.hard_limit:
            r = max(map(abs, inv)) / ctx.hard_limit
            ratio = r if ratio is None else max(ratio, r)
        if at_send is not None:
            rs = at_send.ratio(f.ts_ns, inv, ctx.seq)
            if rs is not None:
                ratio_send = rs if ratio_send is None else max(ratio_send, rs)
                shrank += r is not None and r > 1 >= rs
    start, end = window
    curve = equity_curve(fills, {m: tops.get(m, ()) for m in markets}, start, end)
    k = len(HORIZONS_S)
    metrics = GameMetrics(
        tuple(per_fill), pnl_per_contract(net_pnl_money, volume),
        tuple(weighted_mean((p.markout_mid[i], f.count) for p, f in zip(per_fill, fills))
              for i in range(k)),
        tuple(weighted_mean((p.markout_truth[i], f.count) for p, f in zip(per_fill, fills))
              for i in range(k)),
        _mean(time_at_best(tops.get(m, ()), "bid", start, end) for m in markets) or 0.0,
        _mean(time_at_best(tops.get(m, ()), "ask", start, end) for m in markets) or 0.0,
        round(max_drawdown(curve)), ratio, window, ratio_send, shrank)
    return metrics, curve


class _SendBound:
    """The hard bound in force when the worker last sent an order pushing each outcome's
    ``d_o`` up (or down), replayed in sequence alongside the fills.

    "Last" is sequence-exact: sends and fills carry the tape's sequence numbers (the order in
    which they happened; many share one instant on the virtual clock). Sends recorded without
    one (a 3-tuple) keep their per-market order and are placed before a fill of the same
    instant. Before, same-instant sends were ordered by market name, so a fill could be judged
    against an earlier decision's smaller bound (chaos G1: 1.60 for a game at 0.80)."""

    def __init__(self, book: GameBook, markets: Sequence[str],
                 sends: Mapping[str, Sequence[tuple[int, ...]]]) -> None:
        self.book = book
        evs: list[tuple[int, int, int, str, str, int]] = []
        for mi, m in enumerate(markets):
            for i, s in enumerate(sends.get(m, ())):
                t, side, hard = s[0], s[1], s[2]
                seq = s[3] if len(s) > 3 else i - (1 << 62)  # unknown: before any known seq
                evs.append((t, seq, mi, side, m, hard))  # type: ignore[arg-type]
        self.events = sorted(evs, key=lambda e: (e[0], e[1], e[2]))
        self.i = 0
        self.last: dict[tuple[int, bool], list[tuple[int, int]]] = {}
        """(outcome, pushes up) → recent (send time, bound), the newest (in sequence) last."""

    def ratio(self, t_ns: int, inv: Sequence[int], seq: int | None = None) -> float | None:
        """Largest ``|d_o| ÷ bound at send`` after a fill at ``t_ns`` (``seq``: its place in the
        tape's sequence; None: after every send of that instant). None: nothing to judge."""
        ev = self.events
        while self.i < len(ev) and (ev[self.i][0] < t_ns or (
                ev[self.i][0] == t_ns and (seq is None or ev[self.i][1] < seq))):
            t, _, _, side, market, hard = ev[self.i]
            for o, u in enumerate(scaled_order_direction(self.book, market, side, 1)):  # type: ignore[arg-type]
                if u:
                    self.last.setdefault((o, u > 0), []).append((t, hard))
            self.i += 1
        out: float | None = None
        for o, d in enumerate(inv):
            recent = self.last.get((o, d > 0)) if d else None
            if not recent:
                continue
            while len(recent) > 1 and recent[0][0] < t_ns - IN_FLIGHT_NS:
                recent.pop(0)  # out of flight: only the newest send of that way still speaks
            bound = max([recent[-1][1], *(h for t, h in recent if t >= t_ns - IN_FLIGHT_NS)])
            if bound:
                r = abs(d) / bound
                out = r if out is None else max(out, r)
        return out


def run_metrics(games: Sequence[tuple[GameMetrics, Sequence[Any], int]],
                curves: Sequence[Sequence[tuple[int, float]]]) -> RunMetrics:
    """Totals over ``(metrics, fills, net_pnl_money)`` per game and their equity curves."""
    pairs = [(p, f) for m, fills, _ in games for p, f in zip(m.fills, fills)]
    volume = sum(f.count for _, f in pairs)
    net = sum(n for _, _, n in games)
    k = len(HORIZONS_S)
    placed = [p.queue_ahead_placed for p, _ in pairs if p.queue_ahead_placed is not None]
    ratios = [m.max_inventory_ratio for m, _, _ in games if m.max_inventory_ratio is not None]
    at_send = [m.max_inventory_ratio_at_send for m, _, _ in games
               if m.max_inventory_ratio_at_send is not None]
    return RunMetrics(
        len(pairs), volume, net, pnl_per_contract(net, volume),
        tuple(weighted_mean((p.markout_mid[i], f.count) for p, f in pairs) for i in range(k)),
        tuple(weighted_mean((p.markout_truth[i], f.count) for p, f in pairs) for i in range(k)),
        _mean(m.time_at_best_bid for m, _, _ in games),
        _mean(m.time_at_best_ask for m, _, _ in games),
        round(max_drawdown(merged_curve(curves))),
        max(ratios) if ratios else None,
        sum(placed) / len(placed) if placed else None,
        sum(1 for q in placed if q == 0) / len(placed) if placed else None,
        max(at_send) if at_send else None, sum(m.limit_shrank_fills for m, _, _ in games))


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None


__all__ = [
    "HORIZONS_S", "FillMetrics", "GameMetrics", "MidLine", "RunMetrics", "equity_curve",
    "game_metrics", "max_drawdown", "merged_curve", "pnl_per_contract", "run_metrics",
    "signed_markout", "time_at_best", "weighted_mean",
]
