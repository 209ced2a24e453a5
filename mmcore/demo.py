"""The main job on the embedded default — what ``make demo`` runs.

Today: start the local Odds-API-shaped server on 127.0.0.1, pull every sport of a seeded slate
through the real Odds API client (real HTTP, real quota headers), de-vig every book, blend them
into a Pinnacle-anchored theo, and print each game's theo next to the hidden truth the books were
priced from. Later parts (local exchange, quoting workers, Prefect, DuckDB) extend this run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from mmcore.odds.consensus import ConsensusParams
from mmcore.odds.report import theo_report
from mmcore.settings import DEFAULT_BOOKMAKERS
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServer, OddsServerConfig
from mmcore.venues.oddsapi import OddsApiClient


@dataclass(frozen=True, slots=True)
class DemoResult:
    games: int
    priced: int
    max_abs_error: float
    """Largest |theo − truth| over every priced outcome (probability units)."""
    credits_used: int


async def _pull_all(url: str, sports: tuple[str, ...]) -> list[tuple[Any, int, int | None]]:
    out = []
    async with OddsApiClient(url, SIM_ODDS_API_KEY, bookmakers=DEFAULT_BOOKMAKERS) as client:
        for sport in sports:
            pull = await client.odds(sport)
            out.append((pull.payload, pull.fetched_ns, pull.quota.remaining))
    return out


def run_demo(seed: int = 7, n_games: int = 6, console: Console | None = None) -> DemoResult:
    """Run the demo and print a table; returns the figures for callers and tests."""
    if console is None:
        probe = Console()
        console = Console(width=max(probe.width, 120))
    sports = ("basketball_nba", "icehockey_nhl", "soccer_epl")
    per_sport = max(1, -(-n_games // len(sports)))
    config = OddsServerConfig(seed=seed, n_games=per_sport, sports=sports)
    t0 = time.perf_counter()
    with OddsServer(config) as server:
        console.print(f"[bold]local odds server[/] {server.url}  (seed {seed}, {len(server.sim.slate)} games)")
        truth = {g.event_id: g for g in server.sim.slate}
        pulls = asyncio.run(_pull_all(server.url, sports))
        used = server.sim.used

    table = Table(title="Consensus theo vs hidden truth", show_lines=False)
    for col in ("game", "outcome", "truth", "theo", "pinnacle", "±unc", "books", "dropped", "mode"):
        table.add_column(col, justify="right" if col not in ("game", "outcome", "mode") else "left")
    games = priced = 0
    worst = 0.0
    remaining = None
    for payload, fetched_ns, remaining in pulls:
        report = theo_report(payload, now_ns=fetched_ns, params=ConsensusParams())
        for ev in report["events"]:
            games += 1
            game = truth.get(ev["event_id"])
            label = f"{ev['away_team']} @ {ev['home_team']}"
            if ev["reason"]:
                table.add_row(label, "—", "", "", "", "", "", str(len(ev["dropped"])), f"none: {ev['reason']}")
                continue
            priced += 1
            for i, o in enumerate(ev["outcomes"]):
                true_p = game.true_probs[i] if game else None
                if true_p is not None:
                    worst = max(worst, abs(o["theo"] - true_p))
                table.add_row(
                    label if i == 0 else "",
                    o["name"],
                    f"{true_p:.3f}" if true_p is not None else "?",
                    f"{o['theo']:.3f}",
                    f"{o['books']['pinnacle']:.3f}" if "pinnacle" in o["books"] else "—",
                    f"{o['uncertainty']:.3f}",
                    str(len(o["books"])) if i == 0 else "",
                    str(len(ev["dropped"])) if i == 0 else "",
                    ev["mode"] if i == 0 else "",
                )
    console.print(table)
    console.print(
        f"{priced}/{games} games priced · max |theo − truth| {worst:.4f} · "
        f"credits used {used}, remaining {remaining} · {time.perf_counter() - t0:.1f}s"
    )
    return DemoResult(games, priced, worst, used)
