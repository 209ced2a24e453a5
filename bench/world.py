"""World calibration benchmark: what the simulated world produces at each toxicity level, beside
the public figures it is calibrated against (reference/market-realism.md).

Per level of the dial (``mmcore.sim.toxicity``), on ``world_scenario(level, games, seed)``:

1. **Who earns** — the world alone (participants only, no market maker of ours) from the
   scenario start to the games' start: makers' and takers' excess return as % of what they paid
   (``mmcore.sim.transfer``), valued at the hidden truth at the start (the low-noise figure: the
   truth is a martingale) and at settlement; the takers' fees as % of the same; the noise
   takers' return; the informed share of taker volume (sharp + news-informed takers).
2. **A naive quoter's markouts** — ``mm backtest --strategy fixed-spread`` (mid ± 2¢ through the
   real worker) on the first ``--bt-games`` games: its fills' markouts vs the book mid at
   +1/+5/+30 s (``mmcore.backtest.metrics``), overall and for fills within ``--news-min``
   minutes after a pre-game news jump of the game.

Prints the figures and the machine line; no assertion. Defaults take ~1-2 minutes::

    .venv/bin/python bench/world.py                               # make bench
    .venv/bin/python bench/world.py --games 200 --bt-games 60 --seeds 1,2,3   # the full run
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchkit import load_line, print_table  # noqa: E402

from mmcore.backtest import run_backtest  # noqa: E402
from mmcore.backtest.metrics import HORIZONS_S, weighted_mean  # noqa: E402
from mmcore.backtest.runner import BACKTEST_EPOCH_NS, resolve_backtest_scenario  # noqa: E402
from mmcore.sim.driver import SimClock, SimDriver  # noqa: E402
from mmcore.sim.driver import run_backtest as run_world  # noqa: E402
from mmcore.sim.exchange import LocalExchange  # noqa: E402
from mmcore.sim.scenario import load_scenario  # noqa: E402
from mmcore.sim.toxicity import dial  # noqa: E402
from mmcore.sim.transfer import Transfer, wealth_transfer  # noqa: E402
from mmcore.sim.worlds import world_scenario  # noqa: E402

NS = 1_000_000_000
LEVELS = ("benign", "default", "toxic")
REFERENCE = {
    "makers": "+1.12 % (Kalshi, all categories; > 7 % in high-engagement ones)",
    "takers": "-1.12 %",
    "naive +30 s": "negative on average, strongly negative around news",
    "toxic share": "toxic periods ~8 % of the time (seed baselines)",
}


def world_transfer(level: str, games: int, seed: int) -> tuple[Transfer, Transfer, float]:
    """(valued at the truth at the start, at settlement, share of the window with news private)."""
    sc = load_scenario(world_scenario(level, games, seed), BACKTEST_EPOCH_NS)
    clock = SimClock(sc.start_ns)
    ex = LocalExchange.from_scenario(sc, clock_ns=clock.now_ns)
    driver = SimDriver(ex, sc)
    run_world(driver, clock, max(g.start_ns for g in sc.games))
    driver.close()
    fills = [f for u in sc.users for f in ex.engine.fills(u)]
    at_start = {m: g.yes_prob(m, g.start_ns) for g in sc.games for m in g.markets}
    settled = {m: float(m == g.winner_market) for g in sc.games for m in g.markets}
    private_ns = window_ns = 0
    for g in sc.games:
        window_ns += g.start_ns - sc.start_ns
        covered: list[tuple[int, int]] = []
        for tj, lag in zip(g.truth.jump_times, g.truth.jump_lags_ns):
            if tj < g.start_ns and lag:
                covered.append((tj, min(tj + lag, g.start_ns)))
        end = sc.start_ns
        for a, b in sorted(covered):  # union of the private windows
            a = max(a, end)
            if b > a:
                private_ns += b - a
                end = b
    return (wealth_transfer(fills, at_start), wealth_transfer(fills, settled),
            private_ns / window_ns if window_ns else 0.0)


def naive_markouts(level: str, games: int, seed: int, news_min: float) -> dict[str, Any]:
    """Fixed-spread through the real worker: markouts vs mid overall and near news (¢)."""
    spec = world_scenario(level, games, seed)
    result = run_backtest(spec, strategy="fixed-spread")
    sc = resolve_backtest_scenario(spec, None)
    every: list[tuple[Any, int]] = []
    near: list[tuple[Any, int]] = []
    for gr, g in zip(result.games, sc.games):
        if gr.metrics is None:
            continue
        news = [t for t in g.truth.jump_times if t < g.start_ns]
        for fm, f in zip(gr.metrics.fills, gr.fills):
            every.append((fm, f.count))
            if any(0 <= f.ts_ns - t <= news_min * 60 * NS for t in news):
                near.append((fm, f.count))

    def marks(rows: list[tuple[Any, int]]) -> list[float | None]:
        return [weighted_mean((fm.markout_mid[i], c) for fm, c in rows)
                for i in range(len(HORIZONS_S))]

    return {"fills": len(every), "near": len(near), "all": marks(every), "news": marks(near),
            "volume": sum(c for _, c in every), "near_volume": sum(c for _, c in near),
            "pnl": result.total_net_pnl_money}


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.2f}"


def cents(xs: list[float | None]) -> str:
    return " / ".join("n/a" if x is None else f"{x / 100:+.2f}" for x in xs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default=",".join(LEVELS))
    ap.add_argument("--games", type=int, default=30, help="games per seed for the world-only run")
    ap.add_argument("--bt-games", type=int, default=10, help="games per seed for fixed-spread")
    ap.add_argument("--seeds", default="1", help="comma-separated")
    ap.add_argument("--news-min", type=float, default=5.0)
    a = ap.parse_args()
    levels = a.levels.split(",")
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"world bench: {platform.node()} {platform.machine()} python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, {load_line()}")
    print(f"world_scenario(level, games, seed): {a.games} games × seeds {seeds} (world only), "
          f"{a.bt_games} games × seeds {seeds} (fixed-spread backtest), 15 min before each start")
    t0 = time.perf_counter()
    rows = []
    naive_rows = []
    for level in levels:
        d = dial(level)
        truth, settle, private = Transfer(), Transfer(), []
        for seed in seeds:
            tr, st, share = world_transfer(level, a.games, seed)
            private.append(share)
            for acc, part in ((truth, tr), (settle, st)):
                for name in ("makers", "takers"):
                    tot, add = getattr(acc, name), getattr(part, name)
                    tot.cost_money += add.cost_money
                    tot.payoff_money += add.payoff_money
                    tot.fees_money += add.fees_money
                    tot.volume += add.volume
                for k, t in part.takers_by_kind.items():
                    tot = acc.takers_by_kind.setdefault(k, type(t)())
                    tot.cost_money += t.cost_money
                    tot.payoff_money += t.payoff_money
                    tot.fees_money += t.fees_money
                    tot.volume += t.volume
        noise = truth.takers_by_kind.get("noise")
        rows.append([
            level, f"{d.truth['news_rate_per_s'] * 3600:.1f}/h", f"{d.truth['news_jump_logit_sd']:.2f}",
            f"{100 * sum(private) / len(private):.0f} %",
            pct(truth.makers.excess_return), pct(truth.takers.excess_return),
            pct(settle.makers.excess_return), pct(truth.takers.fee_share),
            pct(noise.excess_return if noise else None),
            f"{100 * (truth.taker_share('informed', 'news') or 0):.1f} %",
            f"{truth.takers.volume // 100}",
        ])
        agg: dict[str, Any] = {"fills": 0, "near": 0, "volume": 0, "near_volume": 0, "pnl": 0,
                               "all": [], "news": []}
        runs = [naive_markouts(level, a.bt_games, seed, a.news_min) for seed in seeds]
        for key in ("fills", "near", "volume", "near_volume", "pnl"):
            agg[key] = sum(r[key] for r in runs)

        def pooled(key: str, vol: str) -> list[float | None]:
            return [weighted_mean((r[key][i], r[vol]) for r in runs if r[vol])
                    for i in range(len(HORIZONS_S))]

        naive_rows.append([level, str(agg["fills"]), f"{agg['volume'] // 100}",
                           cents(pooled("all", "volume")), str(agg["near"]),
                           cents(pooled("news", "near_volume")), f"{agg['pnl'] / 10_000:+.2f}"])
    print()
    print("who earns (world alone; excess return = Σ(payoff − cost) ÷ Σ cost, % of notional, "
          "before fees; 'truth' = valued at the hidden probability at the start)")
    print_table(["level", "news", "jump sd", "news private", "makers truth %", "takers truth %",
                 "makers settled %", "taker fees %", "noise truth %", "informed share",
                 "taker contracts"], rows)
    print(f"  reference: makers {REFERENCE['makers']}, takers {REFERENCE['takers']}; "
          f"{REFERENCE['toxic share']}")
    print()
    print(f"naive quoter (fixed-spread, mid ± 2¢): markouts vs the book mid, ¢ per contract at "
          f"+1/+5/+30 s; 'news' = fills within {a.news_min:g} min after a news jump")
    print_table(["level", "fills", "contracts", "markout all", "news fills", "markout news",
                 "net P&L $"], naive_rows)
    print(f"  reference: {REFERENCE['naive +30 s']}")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
