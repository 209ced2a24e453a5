"""Strategy benchmark: ours against each baseline on the same seeded slate, at three toxicity
levels (issue 11 item 6 ``strategy``).

Every strategy quotes the *same* games (same seed → same truth path, participants and latency
legs) through the real :class:`~mmcore.worker.engine.GameWorker` in the in-process backtest
(:func:`mmcore.backtest.runner.run_backtest`); only who decides the quotes differs (the gate,
kill switch, barriers and limits around the decision are the same for all). A game is one
backtest unit: ``--seeds`` slates of ``--games`` games per level.

Figures per level and strategy (per game means): net P&L after fees at settlement, P&L per
contract traded, fills, markouts at +1/+5/+30 s against the hidden truth (per contract, in
cents: positive = the fill was good), time quoted at the best price (bid and ask averaged), max
drawdown of the P&L marked to the book mid, max |inventory| ÷ the worker's hard limit
(:mod:`mmcore.backtest.metrics`). Then the **paired** difference
ours − baseline per game (same seed, same game) with a 95 % confidence interval
(mean ± t₀.₉₇₅·sd/√n over games).

Deterministic: each unit's result depends only on (level, seed, strategy); units run on a
process pool (``--procs``, default 2) and are collected by key, so the order of completion does
not matter.

    .venv/bin/python bench/strategy.py                       # small default (make bench, ~2 min)
    .venv/bin/python bench/strategy.py --seeds 24 --games 3  # the recorded run: 72 games a level (~25 min)
    .venv/bin/python bench/strategy.py --seeds 67 --games 3  # 201 games a level (~70 min)

Default world: ``world_scenario(level)`` (the calibrated dial, bench/world.py) with each game
quoted for ``--minutes`` (default 60) before its start: the flow rates are per second, so a
longer window keeps the calibration and gives each strategy tens of fills a game instead of a
handful. ``truth-val`` is each game's net P&L with the end positions valued at the hidden
truth at the start rather than the outcome: the same expectation as the settled P&L without
its coin flip, so its intervals separate strategies in far fewer games (both are printed).
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LEVELS = ("benign", "default", "toxic")
STRATEGIES = ("ours", "fixed-spread", "inventory-skew", "as-mid")
NS = 1_000_000_000
MARKOUT_S = (1, 5, 30)
DRAWDOWN_STEP_NS = 5 * NS


# --- the world --------------------------------------------------------------------------------


def world(level: str, seed: int, games: int, minutes: float, kind: str = "dial") -> dict[str, Any]:
    """The scenario of one slate: ``mmcore.sim.worlds.world_scenario`` (the toxicity dial) when
    present, else the default slate made busy (the `mm demo` world) with informed flow scaled
    by level (also with ``kind="busy"``). Every game starts ``minutes`` after the scenario start."""
    try:
        from mmcore.sim.worlds import world_scenario  # type: ignore[import-not-found]
    except ImportError:
        world_scenario = None
    if world_scenario is not None and kind == "dial":
        spec = world_scenario(level, games, seed)
        spec = dict(spec) if isinstance(spec, Mapping) else spec.model_dump()
    else:
        spec = _fallback_world(level, seed, games)
    spec["games"] = [{**g, "start_in_s": minutes * 60.0} for g in spec["games"]]
    return spec


def _fallback_world(level: str, seed: int, games: int) -> dict[str, Any]:
    from mmcore.sim.scenario import default_scenario_dict

    spec = default_scenario_dict(seed, games)
    p = spec["participants"]
    p["noise_takers"][0].update(rate_per_s=0.4, size_contracts_max=15)
    informed = {"benign": {"rate_per_s": 0.02, "edge_threshold_price": 500},
                "default": {"rate_per_s": 0.1, "edge_threshold_price": 300},
                "toxic": {"rate_per_s": 0.3, "edge_threshold_price": 200,
                          "size_contracts_max": 40}}[level]
    p["informed_takers"][0].update(informed)
    if level == "toxic":
        spec["truth"] = {"news_rate_per_s": 1 / 300, "news_jump_logit_sd": 0.4}
    return spec


# --- one unit ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GameFigures:
    """One game under one strategy (money in dollars, markouts in cents per contract)."""

    event: str
    pnl: float
    contracts: float
    fills: int
    markouts: tuple[float | None, ...]
    time_at_best: float | None
    drawdown: float
    inv_over_limit: float
    pnl_truth: float = math.nan
    """Net P&L with the positions valued at the hidden truth at the start instead of the
    outcome: the settled P&L's expectation given the game (the truth is a martingale), without
    the settlement coin flip that dominates a game's P&L at this size."""


def _unit(key: tuple[str, int, str, int, float, str]) -> tuple[tuple[str, int, str], list[GameFigures]]:
    level, seed, strategy, games, minutes, kind = key
    from mmcore.backtest.runner import resolve_backtest_scenario, run_backtest

    spec = world(level, seed, games, minutes, kind)
    res = run_backtest(spec, strategy=strategy)
    sc = resolve_backtest_scenario(spec, None)
    return (level, seed, strategy), [_with_truth(sc, g, _figures(sc, g)) for g in res.games]


def _with_truth(sc: Any, g: Any, f: GameFigures) -> GameFigures:
    """``f`` with :attr:`GameFigures.pnl_truth`: trading cash (fees paid) plus each market's
    position valued at the hidden YES probability at the game's start."""
    from dataclasses import replace

    from mmcore.units import CONTRACT, PRICE_ONE

    rg = sc.game(g.event_ticker)
    value = sum(q * rg.yes_prob(m, g.start_ns) * PRICE_ONE / CONTRACT
                for m, q in g.positions.items())
    return replace(f, pnl_truth=(g.cash_money + value) / PRICE_ONE)


def _figures(sc: Any, g: Any) -> GameFigures:
    """From the game's :mod:`mmcore.backtest.metrics` (markouts vs the hidden truth, time at the
    best bid/ask averaged, drawdown marked to the book mid, max |inventory| ÷ the worker's hard
    limit); without them, from the fills and the truth (drawdown marked to the truth, inventory
    ÷ the sport's cap)."""
    from mmcore.units import CONTRACT, PRICE_ONE

    m = getattr(g, "metrics", None)
    if m is not None:
        return GameFigures(
            g.event_ticker, g.net_pnl_money / PRICE_ONE, g.volume / CONTRACT, len(g.fills),
            tuple(None if x is None else x / 100 for x in m.markout_truth),
            (m.time_at_best_bid + m.time_at_best_ask) / 2, m.max_drawdown_money / PRICE_ONE,
            m.max_inventory_ratio or 0.0)
    return _figures_from_fills(sc, g)


def _figures_from_fills(sc: Any, g: Any) -> GameFigures:
    from mmcore.risk.limits import DEFAULT_LIMIT_CONFIG
    from mmcore.units import CONTRACT, PRICE_ONE

    rg = sc.game(g.event_ticker)
    spec_markets = rg.markets
    fills = sorted(g.fills, key=lambda f: f.ts_ns)
    mk: list[float | None] = []
    for h in MARKOUT_S:
        num = den = 0.0
        for f in fills:
            p = rg.yes_prob(f.market, f.ts_ns + h * NS) * PRICE_ONE
            num += ((p - f.price) if f.side == "bid" else (f.price - p)) * f.count
            den += f.count
        mk.append(num / den / 100 if den else None)  # price units → cents
    # P&L marked at the truth on a 5 s grid and at each fill: its largest peak-to-trough fall
    pos = {m: 0 for m in spec_markets}
    cash = 0
    peak = worst = 0.0
    t = fills[0].ts_ns if fills else g.start_ns
    i = 0
    while fills and t <= g.start_ns:
        while i < len(fills) and fills[i].ts_ns <= t:
            f = fills[i]
            money = f.price * f.count // CONTRACT
            cash += -money if f.side == "bid" else money
            cash -= f.fee
            pos[f.market] += f.count if f.side == "bid" else -f.count
            i += 1
        val = cash + sum(q * rg.yes_prob(m, t) * PRICE_ONE / CONTRACT for m, q in pos.items())
        peak = max(peak, val)
        worst = max(worst, peak - val)
        t += DRAWDOWN_STEP_NS
    sport = sc.game(g.event_ticker).sim.sport_key
    cap = DEFAULT_LIMIT_CONFIG.sports.get(sport, DEFAULT_LIMIT_CONFIG.default).max_contracts
    return GameFigures(g.event_ticker, g.net_pnl_money / PRICE_ONE, g.volume / CONTRACT,
                       len(fills), tuple(mk), _time_at_best(g), worst / PRICE_ONE,
                       g.max_inventory / cap)


def _time_at_best(g: Any) -> float | None:
    v = getattr(g, "time_at_best", None)
    return float(v) if isinstance(v, (int, float)) else None


# --- statistics -------------------------------------------------------------------------------


def _t975(n: int) -> float:
    """Student-t 97.5 % quantile for ``n − 1`` degrees of freedom (table, then 1.96)."""
    table = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
             10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 30: 2.04, 60: 2.00}
    df = n - 1
    if df < 1:
        return math.nan
    for k in sorted(table):
        if df <= k:
            return table[k]
    return 1.96


def mean_ci(xs: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95 % interval); half-width NaN with fewer than 2 values."""
    if not xs:
        return math.nan, math.nan
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, math.nan
    return m, _t975(len(xs)) * statistics.stdev(xs) / math.sqrt(len(xs))


def _avg(xs: list[float | None]) -> float | None:
    v = [x for x in xs if x is not None]
    return statistics.fmean(v) if v else None


def _wavg(xs: list[tuple[float | None, float]]) -> float | None:
    """Contract-weighted mean (a game without fills has no markout)."""
    v = [(x, w) for x, w in xs if x is not None and w > 0]
    total = sum(w for _, w in v)
    return sum(x * w for x, w in v) / total if total else None


def _f(x: float | None, fmt: str = "{:+.2f}") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


# --- report -----------------------------------------------------------------------------------


def report(results: dict[tuple[str, int, str], list[GameFigures]], levels: list[str],
           strategies: list[str], seeds: list[int]) -> str:
    lines: list[str] = []
    for level in levels:
        per = {s: [f for seed in seeds for f in results[(level, seed, s)]] for s in strategies}
        n = len(per[strategies[0]])
        lines.append(f"\n## level {level}: {n} games ({len(seeds)} seeds)")
        lines.append(f"  {'strategy':<15}{'P&L $/game':>14}{'truth-val $':>15}{'¢/contract':>11}{'fills':>7}"
                     f"{'mk+1s':>7}{'mk+5s':>7}{'mk+30s':>7}{'at best':>8}{'max DD $':>9}"
                     f"{'inv/lim':>8}")
        for s in strategies:
            fs = per[s]
            pnl, ci = mean_ci([f.pnl for f in fs])
            tv, tci = mean_ci([f.pnl_truth for f in fs])
            vol = sum(f.contracts for f in fs)
            ppc = 100 * sum(f.pnl_truth for f in fs) / vol if vol else None
            mks = [_wavg([(f.markouts[k], f.contracts) for f in fs]) for k in range(len(MARKOUT_S))]
            lines.append(
                f"  {s:<15}{_f(pnl):>7} ±{_f(ci, '{:.2f}'):<6}{_f(tv):>8} ±{_f(tci, '{:.2f}'):<5}"
                f"{_f(ppc):>11}"
                f"{statistics.fmean([f.fills for f in fs]):>7.0f}"
                + "".join(f"{_f(m):>7}" for m in mks)
                + f"{_f(_avg([f.time_at_best for f in fs]), '{:.0%}'):>8}"
                f"{_f(statistics.fmean([f.drawdown for f in fs]), '{:.2f}'):>9}"
                f"{_f(statistics.fmean([f.inv_over_limit for f in fs]), '{:.2f}'):>8}")
        if "ours" in strategies:
            lines.append(f"  paired ours − baseline (per game, 95 % CI):")
            for s in strategies:
                if s == "ours":
                    continue
                d_pnl = [a.pnl - b.pnl for a, b in zip(per["ours"], per[s])]
                d_tv = [a.pnl_truth - b.pnl_truth for a, b in zip(per["ours"], per[s])]
                d_dd = [a.drawdown - b.drawdown for a, b in zip(per["ours"], per[s])]
                m, ci = mean_ci(d_pnl)
                mtv, citv = mean_ci(d_tv)
                mdd, cidd = mean_ci(d_dd)
                wins = sum(1 for d in d_pnl if d > 0)
                wtv = sum(1 for d in d_tv if d > 0)
                lines.append(f"    vs {s:<15} net P&L {_f(m)} ± {_f(ci, '{:.2f}')} $/game "
                             f"(ahead {wins}/{len(d_pnl)});  truth-valued {_f(mtv)} ± "
                             f"{_f(citv, '{:.2f}')} (ahead {wtv}/{len(d_tv)});  max DD "
                             f"{_f(mdd)} ± {_f(cidd, '{:.2f}')} $")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=2, help="slates per level (default 2)")
    ap.add_argument("--games", type=int, default=3, help="games per slate (default 3)")
    ap.add_argument("--minutes", type=float, default=60.0,
                    help="quoting time before each game's start (default 60: in the calibrated "
                         "world a 10-15 min window gives each strategy ~1-13 fills a game)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--world", choices=("dial", "busy"), default="dial",
                    help="dial: world_scenario(level) (default); busy: the mm demo slate, "
                         "informed flow by level")
    ap.add_argument("--levels", default=",".join(LEVELS))
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--procs", type=int, default=min(2, os.cpu_count() or 1))
    a = ap.parse_args(argv)
    levels = a.levels.split(",")
    strategies = a.strategies.split(",")
    seeds = list(range(a.first_seed, a.first_seed + a.seeds))
    keys = [(lv, sd, st, a.games, a.minutes, a.world) for lv in levels for sd in seeds for st in strategies]
    keys.sort(key=lambda k: k[2] != "ours")  # the slow ones first: better packing
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    print(f"strategy bench: {platform.node()} {platform.machine()} python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load average before run "
          f"{load:.2f}; {a.procs} procs; {len(seeds)} seeds × {a.games} games × "
          f"{len(levels)} levels × {len(strategies)} strategies, {a.minutes:g} min quoting each")
    world_src = "world_scenario" if _has_world() and a.world == "dial" else "fallback (busy default slate, informed flow by level)"
    print(f"world: {world_src}")
    t0 = time.perf_counter()
    if a.procs > 1:
        with mp.get_context("spawn").Pool(a.procs) as pool:
            results = dict(pool.imap_unordered(_unit, keys))
    else:
        results = dict(map(_unit, keys))
    print(report(results, levels, strategies, seeds))
    print(f"\nwall {time.perf_counter() - t0:.0f} s")
    return 0


def _has_world() -> bool:
    try:
        from mmcore.sim.worlds import world_scenario  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
