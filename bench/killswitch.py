"""Benchmark: what the drawdown halt is worth — income given up against loss avoided, per level.

Question (issue 11 item 6 ``killswitch``): the same market twice — same seed, so the same income
and the same toxic episodes — once without the drawdown halt and once with it, over a sweep of
halt levels: when a game's worker halts on DRAWDOWN (HALTED: cancels only; the position rides to
settlement), does the rest of that game cost more than it would have earned?

Run: ``.venv/bin/python bench/killswitch.py`` (≈ 1–2 min) —
``[--seeds 7,8,9 --games 3 --lead-min 15 --levels 0.5,1,2,5 --toxicity toxic]``.

Each seed is one backtest slate (:func:`mmcore.backtest.runner.run_backtest`, the real
``GameWorker`` with its kill switch): ``--games`` games starting ``--lead-min`` minutes after the
scenario start, a minute apart. The world is ``world_scenario(--toxicity)`` from
:mod:`mmcore.sim.worlds` when that generator exists; otherwise this bench's own toxic world: the
default scenario's participants plus news every ~5 min (0.5 logit s.d.) and sharper, larger
informed takers (the header says which). The worker config is the default with only
``killswitch.max_drawdown_money`` changed: "no halt" is $1,000,000 (never reached); each level
is the halt in dollars of peak-to-trough P&L marked at theo.

Per level, over every seed and game (paired: the same game with and without the halt):

- **halted**: games whose worker went HALTED on DRAWDOWN before the start;
- **loss avoided**: Σ over halted games of (P&L with halt − P&L without) where positive;
- **income given up**: Σ of (P&L without − P&L with halt) where positive;
- **net**: loss avoided − income given up (> 0: the halt paid at this level);
- **worst game** with and without the halt (the tail the halt is for), and total P&L.

P&L is net after fees at settlement (:class:`~mmcore.backtest.result.GameResult`), in dollars.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchkit import load_line, print_table  # noqa: E402

PRICE_ONE = 10_000
NO_HALT_MONEY = 1_000_000 * PRICE_ONE


def machine_line() -> str:
    return (f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, {load_line()}")


def toxic_world(seed: int, games: int, lead_s: float, toxicity: str) -> tuple[dict[str, Any], str]:
    """The scenario dict for one seed and the name of its world."""
    d: dict[str, Any] | None = None
    name = ""
    try:
        from mmcore.sim.worlds import world_scenario  # engineer A's generator, when it lands
    except ImportError:
        world_scenario = None
    if world_scenario is not None:
        try:
            made = world_scenario(toxicity, games, seed)
            d = made if isinstance(made, dict) else made.model_dump(exclude_none=True)
            name = f"world_scenario({toxicity!r}) (mmcore.sim.worlds)"
        except Exception as exc:  # noqa: BLE001 - a changed signature: fall back, say so
            name = f"world_scenario failed ({type(exc).__name__}: {exc}); "
            d = None
    if d is None:
        from mmcore.sim.scenario import default_scenario_dict

        d = default_scenario_dict(seed, games)
        d["truth"] = {"news_rate_per_s": 1 / 300, "news_jump_logit_sd": 0.5}
        d["participants"] = {**d["participants"], "informed_takers": [
            {"edge_threshold_price": 150, "rate_per_s": 0.05, "size_contracts_min": 5,
             "size_contracts_max": 30, "noise_sd_prob": 0.005}]}
        name += ("bench toxic world: default participants, news every ~5 min (0.5 logit s.d.), "
                 "informed takers 1.5¢ edge, 0.05/s, 5–30 contracts")
    d = {**d, "start": "now", "games": [dict(g) for g in d["games"][:games]]}
    for i, g in enumerate(d["games"]):
        g.pop("start", None)
        g["start_in_s"] = lead_s + 60.0 * i
    return d, name


@dataclasses.dataclass(frozen=True)
class Game:
    seed: int
    event: str
    pnl: int
    """Net P&L after fees at settlement, price units."""
    halted_ns: int | None
    """When the worker went HALTED on DRAWDOWN (None: it did not)."""


def run_slate(scenario: dict[str, Any], seed: int, drawdown_money: int) -> list[Game]:
    """One backtest; per game its P&L and whether (when) the drawdown halt fired."""
    from mmcore.backtest import runner
    from mmcore.risk.killswitch import Trigger
    from mmcore.worker.engine import WORKER_KILLSWITCH, WorkerConfig

    cfg = WorkerConfig("ks", killswitch=dataclasses.replace(WORKER_KILLSWITCH,
                                                            max_drawdown_money=drawdown_money))
    res = runner.run_backtest(scenario, seed=seed, worker_config=cfg)
    drawdown = str(Trigger.DRAWDOWN.value)
    halts = {g.event_ticker: next((h.at_ns for h in g.halts if drawdown in h.triggers), None)
             for g in res.games}
    return [Game(seed, g.event_ticker, g.net_pnl_money, halts.get(g.event_ticker)) for g in res.games]


def dollars(money: float) -> str:
    return f"{money / PRICE_ONE:+,.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="7,8,9", help="comma-separated seeds (one slate each)")
    ap.add_argument("--games", type=int, default=3, help="games per slate")
    ap.add_argument("--lead-min", type=float, default=15.0, help="minutes quoted before the first start")
    ap.add_argument("--levels", default="0.5,1,2,5", help="halt levels, dollars of drawdown")
    ap.add_argument("--toxicity", default="toxic", help="world_scenario's level, when it exists")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    levels = [float(x) for x in args.levels.split(",") if x]

    print(f"killswitch bench: {machine_line()}")
    t0 = time.perf_counter()
    base: dict[tuple[int, str], Game] = {}
    with_halt: dict[float, dict[tuple[int, str], Game]] = {lv: {} for lv in levels}
    world = ""
    for seed in seeds:
        sc, world = toxic_world(seed, args.games, args.lead_min * 60, args.toxicity)
        for g in run_slate(sc, seed, NO_HALT_MONEY):
            base[(seed, g.event)] = g
        for lv in levels:
            for g in run_slate(sc, seed, round(lv * PRICE_ONE)):
                with_halt[lv][(seed, g.event)] = g
    print(f"world: {world}")
    print(f"{len(seeds)} seed(s) × {args.games} game(s), {args.lead_min:g} min before the first "
          f"start; {len(seeds) * (1 + len(levels))} backtests in {time.perf_counter() - t0:.0f} s")
    no_halt_fired = sum(g.halted_ns is not None for g in base.values())
    total_base = sum(g.pnl for g in base.values())
    rows = [["no halt", "-", "-", "-", "-", dollars(min(g.pnl for g in base.values())),
             dollars(total_base), dollars(total_base / len(base))]]
    for lv in levels:
        games = with_halt[lv]
        halted = [k for k, g in games.items() if g.halted_ns is not None]
        deltas = [games[k].pnl - base[k].pnl for k in games]
        avoided = sum(d for d in deltas if d > 0)
        given_up = sum(-d for d in deltas if d < 0)
        total = sum(g.pnl for g in games.values())
        rows.append([f"halt at ${lv:g}", f"{len(halted)} / {len(games)}", dollars(avoided),
                     dollars(-given_up), dollars(avoided - given_up),
                     dollars(min(g.pnl for g in games.values())), dollars(total),
                     dollars(total / len(games))])
    print_table(["level", "halted", "loss avoided", "income given up", "net", "worst game",
                 "total P&L", "per game"], rows)
    if no_halt_fired:
        print(f"note: {no_halt_fired} game(s) halted on DRAWDOWN even at $1,000,000 (unexpected)")
    print("per game P&L without halt → with each level ($):")
    print_table(["seed/game"] + [f"${lv:g}" for lv in levels] + ["no halt"],
                [[f"{s} {ev}"] + [dollars(with_halt[lv][(s, ev)].pnl)
                                  + ("*" if with_halt[lv][(s, ev)].halted_ns else "")
                                  for lv in levels] + [dollars(base[(s, ev)].pnl)]
                 for (s, ev) in base])
    print("(* = halted on DRAWDOWN)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
