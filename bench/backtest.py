"""Benchmark: backtest speed — book events per second on one core, and a sport day's slate.

Question (issue 11 item 6 ``backtest``): how many engine book events per second of CPU does the
in-process backtest (:func:`mmcore.backtest.runner.run_backtest`: real ``GameWorker`` s on the
local exchange's engine and participants, on the virtual clock) get through, and how long does a
full sport day take? Goal: ≥ 200,000 book events per CPU-second.

Run: ``.venv/bin/python bench/backtest.py`` (≈ 1–2 min) —
``[--games 3 --lead-min 15] [--day-games 15 --day-lead-min 20 --day-spacing-min 1] [--seed 7]``;
the full sport day of the issue: ``--day-lead-min 120`` (each game quoted ≥ 2 h before its
start); ``--no-day`` skips it; ``--profile`` always prints the profile (else only when slow).

Two runs, one process, single-threaded (CPU time = ``time.process_time``):

1. **throughput**: ``--games`` games starting ``--lead-min`` minutes after the scenario start
   (spaced a minute apart), quoted from the start until 2 min after the last one starts;
2. **day**: ``--day-games`` games, the first starting ``--day-lead-min`` minutes in and the
   others ``--day-spacing-min`` apart (a sport day's evening slate), quoted the same way.

The world is the default-level world of :func:`mmcore.sim.worlds.world_scenario` when that
generator exists, else the default scenario's participants (:func:`default_scenario_dict`: two
noise takers, one informed taker, two competing makers per market). The header says which.

Figures per run (none asserted):

- **book events**: engine ``BookDelta`` s delivered to the game workers (each market's deltas
  reach its own worker; one engine call's burst is one ``BookEv`` decision) — counted by a
  wrapper around the runner's delivery, which adds a little CPU of its own;
- **decisions**: ``BookEv`` s the workers handled (one per market per engine batch);
- **book events / CPU-s** (the goal's figure) and **CPU-s per simulated hour**;
- **worker share**: CPU inside ``GameWorker.handle`` / ``on_timer`` (``time.process_time``
  around each call) ÷ the run's CPU; **µs per decision**: that worker CPU ÷ decisions;
- fills and steps of the simulated world, as a check that the run traded.

When book events / CPU-s is under the goal (or with ``--profile``) a cProfile of the throughput
run's first game prints its top 5 functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchkit import load_line, print_table  # noqa: E402

from mmcore.backtest.result import RunStats  # noqa: E402

GOAL_EVENTS_PER_CPU_S = 200_000
NS = 1_000_000_000


def machine_line() -> str:
    return (f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, {load_line()}")


def slate(seed: int, games: int, first_start_s: float, spacing_s: float) -> tuple[dict[str, Any], str]:
    """A scenario dict with ``games`` games starting ``first_start_s`` + i × ``spacing_s`` after its
    start, and the name of the world it came from."""
    try:
        from mmcore.sim.worlds import world_scenario  # engineer A's generator, when it lands
    except ImportError:
        world_scenario = None
    d: dict[str, Any] | None = None
    name = "default scenario participants (mmcore.sim.scenario.default_scenario_dict)"
    if world_scenario is not None:
        try:
            made = world_scenario("default", games, seed)
            d = made if isinstance(made, dict) else made.model_dump(exclude_none=True)
            name = "world_scenario('default') (mmcore.sim.worlds)"
        except Exception as exc:  # noqa: BLE001 - a changed signature: fall back, say so
            name += f"; world_scenario failed: {type(exc).__name__}: {exc}"
            d = None
    if d is None:
        from mmcore.sim.scenario import default_scenario_dict

        d = default_scenario_dict(seed, games)
    d = {**d, "start": "now", "games": [dict(g) for g in d["games"][:games]]}
    for i, g in enumerate(d["games"]):
        g.pop("start", None)
        g["start_in_s"] = first_start_s + i * spacing_s
    return d, name


def timed_run(scenario: dict[str, Any], seed: int) -> dict[str, Any]:
    """One backtest with the counters on: figures for the report."""
    from mmcore.backtest.runner import run_backtest

    c0, w0 = time.process_time(), time.perf_counter()
    result = run_backtest(scenario, seed=seed, cpu_clock=time.process_time)
    cpu_s, wall_s = time.process_time() - c0, time.perf_counter() - w0
    counts = result.stats
    assert counts is not None
    starts = [g.start_ns for g in result.games]
    sim_s = (result.end_ns - (min(starts) - round(scenario["games"][0]["start_in_s"] * NS))) / NS
    return {"games": len(result.games), "counts": counts, "cpu_s": cpu_s, "wall_s": wall_s,
            "sim_s": sim_s, "fills": len(result.fills), "steps": result.steps,
            "pnl": result.total_net_pnl_money / 10_000}


def row(label: str, r: dict[str, Any]) -> list[str]:
    c: RunStats = r["counts"]
    per_s = c.book_events / r["cpu_s"] if r["cpu_s"] else 0.0
    return [label, str(r["games"]), f"{r['sim_s'] / 60:,.0f}", f"{c.book_events:,}",
            f"{c.decisions:,}", f"{r['cpu_s']:.1f}", f"{r['wall_s']:.1f}", f"{per_s:,.0f}",
            f"{r['cpu_s'] / (r['sim_s'] / 3600):.1f}",
            f"{100 * c.worker_cpu_s / r['cpu_s']:.0f} %" if r["cpu_s"] else "-",
            f"{1e6 * c.worker_cpu_s / c.decisions:,.0f}" if c.decisions else "-",
            f"{r['fills']:,}", f"{r['steps']:,}"]


def profile_top(scenario: dict[str, Any], seed: int, top: int = 5) -> str:
    from mmcore.backtest.runner import run_backtest

    prof = cProfile.Profile()
    prof.enable()
    run_backtest(scenario, games=1, seed=seed)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start - 1 if start else 0:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--games", type=int, default=3, help="games of the throughput run")
    ap.add_argument("--lead-min", type=float, default=15.0,
                    help="minutes from the scenario start to the first start (throughput run)")
    ap.add_argument("--day-games", type=int, default=15, help="games of the sport-day run")
    ap.add_argument("--day-lead-min", type=float, default=20.0,
                    help="minutes quoted before the first start (the issue's day: 120)")
    ap.add_argument("--day-spacing-min", type=float, default=1.0, help="minutes between starts")
    ap.add_argument("--no-day", action="store_true", help="skip the sport-day run")
    ap.add_argument("--profile", action="store_true", help="print the profile even when fast")
    args = ap.parse_args(argv)

    print(f"backtest bench: {machine_line()}")
    thr, world = slate(args.seed, args.games, args.lead_min * 60, 60.0)
    print(f"world: {world}; seed {args.seed}")
    rows = []
    r1 = timed_run(thr, args.seed)
    rows.append(row(f"throughput ({args.games} games, {args.lead_min:g} min lead)", r1))
    r2 = None
    if not args.no_day:
        day, _ = slate(args.seed, args.day_games, args.day_lead_min * 60, args.day_spacing_min * 60)
        r2 = timed_run(day, args.seed)
        rows.append(row(f"sport day ({args.day_games} games, {args.day_lead_min:g} min lead, "
                        f"{args.day_spacing_min:g} min apart)", r2))
    print_table(["run", "games", "sim min", "book events", "decisions", "CPU s", "wall s",
                 "book events/CPU-s", "CPU-s/sim h", "worker share", "µs/decision", "fills",
                 "world steps"], rows)
    per_s = r1["counts"].book_events / r1["cpu_s"] if r1["cpu_s"] else 0.0
    verdict = "MEETS" if per_s >= GOAL_EVENTS_PER_CPU_S else "BELOW"
    print(f"verdict: {verdict} the {GOAL_EVENTS_PER_CPU_S:,} book events/CPU-s goal "
          f"({per_s:,.0f}/CPU-s)")
    if r2 is not None:
        extra = (args.day_games - 1) * args.day_spacing_min / 2 + 2  # mean later start + tail
        full_s = r2["cpu_s"] * (120 + extra) / (args.day_lead_min + extra)
        print(f"sport day: {r2['wall_s']:.1f} s wall for {args.day_games} games quoted "
              f"{args.day_lead_min:g}+ min each; at this rate 2 h each ≈ {full_s / 60:.1f} min CPU "
              f"(extrapolated linearly; run --day-lead-min 120 to measure)")
    if per_s < GOAL_EVENTS_PER_CPU_S or args.profile:
        print("profile (throughput run, first game; top 5 by own time):")
        print(profile_top(thr, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
