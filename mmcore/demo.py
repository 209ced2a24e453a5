"""The main job on the embedded default — what ``make demo`` runs.

1. Start the local Kalshi exchange (REST + WebSocket, simulated flow: noise and informed takers,
   competing makers) and the local Odds API on 127.0.0.1, from one seeded scenario: a few games
   starting minutes from now, each with a hidden true probability path.
2. Pull odds through the real Odds API client, de-vig every book, blend a Pinnacle-anchored theo,
   match each event to its Kalshi game by team and start time, and publish per-game theo
   snapshots — the same files the production odds pull writes.
3. Run one quoting worker per game (real REST and WebSocket clients, signed, over loopback) with
   live progress: quotes, fills, inventory, P&L at theo and kill-switch state per game.
4. Each worker stops itself at its game's start, cancels everything and verifies on the exchange
   that nothing rests; a summary prints at the end.

Prefect orchestration and DuckDB analytics wrap this in later parts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mmcore.odds.teams import game_from_markets
from mmcore.quoting.config import DEFAULT_QUOTE_PARAMS
from mmcore.settings import DEFAULT_BOOKMAKERS
from mmcore.sim.exchange import MM_USER
from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SimStack
from mmcore.theo.pull import pull_theos
from mmcore.units import CONTRACT, PRICE_ONE
from mmcore.venues.kalshi.ratelimit import RateLimiter, TierLimits
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.kalshi.ws import KalshiWs
from mmcore.venues.oddsapi import OddsApiClient
from mmcore.worker.driver import FileTheoSource, WorkerDriver, WorkerReport, load_game
from mmcore.worker.engine import GameWorker, WorkerConfig
from mmcore.worker.journal import Journal, JournalConfig

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class DemoResult:
    games: int
    priced: int
    max_abs_error: float
    """Largest |theo − truth| over every market at the pull (probability units)."""
    reports: tuple[WorkerReport, ...]
    resting_after: int
    """mm's resting orders on the exchange after every worker stopped (must be 0)."""


def _cents(price: int | None) -> str:
    return "—" if price is None else f"{price / 100:g}¢"


def _exit(reason: str) -> str:
    return "game start" if reason.startswith("GAME_START") else reason


def _fmt_money(money: int) -> str:
    return f"{money / PRICE_ONE:+.2f}"


def _progress(drivers: list[WorkerDriver], now_ns: int) -> Table:
    table = Table(title="quoting workers (YES prices; inventory in contracts; P&L marked at theo, $)")
    for col in ("game", "starts in", "state", "theo", "our quotes (bid/ask per market)", "inventory",
                "fills", "P&L", "resting"):
        table.add_column(col)
    for d in drivers:
        w: GameWorker | None = d.worker
        g = d.game
        short = [m.rsplit("-", 1)[-1] for m in g.markets]
        if w is None:
            table.add_row(g.event_ticker, "", "starting", "", "", "", "", "", "")
            continue
        quotes = []
        for m, s in zip(g.markets, short):
            bid = next((o.price for o in w.live.values() if o.market == m and o.side == "bid"), None)
            ask = next((o.price for o in w.live.values() if o.market == m and o.side == "ask"), None)
            quotes.append(f"{s} {_cents(bid)}/{_cents(ask)}")
        theo = " ".join(f"{s} {p:.3f}" for s, p in zip(short, w.theo)) if w.theo else "—"
        inv = " ".join(f"{s} {w.positions[m] / CONTRACT:+.0f}" for s, m in zip(short, g.markets))
        state = "stopped" if d.report.exit_reason else (w.stopping and "stopping" or w.ks.state)
        table.add_row(g.event_ticker, f"{max(0, g.start_ns - now_ns) / NS:.0f}s", state, theo,
                      "  ".join(quotes), inv, str(d.report.fills), _fmt_money(w.pnl_money()),
                      str(len(w.live)))
    return table


async def _demo(seed: int, n_games: int, first_start_s: float, spacing_s: float,
                stop_before_start_s: float, console: Console, data_dir: Path) -> DemoResult:
    now = time.time_ns()
    spec = default_scenario_dict(seed, n_games)
    for i, game in enumerate(spec["games"]):
        game["start_in_s"] = first_start_s + i * spacing_s
    # a busier market than the default slate, so a few minutes show fills and inventory
    spec["participants"]["noise_takers"][0].update(rate_per_s=0.4, size_contracts_max=15)
    spec["participants"]["informed_takers"][0].update(rate_per_s=0.1)
    sc = load_scenario(spec, now)
    theo_dir, journal_dir = data_dir / "theo", data_dir / "journal"
    async with SimStack(sc, data_dir, heartbeat_s=2.0) as stack:
        console.print(f"[bold]local Kalshi[/] {stack.rest_url}  [bold]WS[/] {stack.ws_url}  "
                      f"[bold]local Odds API[/] {stack.odds_url}  (seed {seed})")
        games = [game_from_markets(g.event_ticker, g.markets, g.start_ns) for g in sc.games]
        sports = sorted({g.sim.sport_key for g in sc.games})
        async with OddsApiClient(stack.odds_url, stack.odds_api_key, bookmakers=DEFAULT_BOOKMAKERS) as odds:
            pull = await pull_theos(odds, sports, games, theo_dir)
        worst = _print_theos(console, sc, pull)
        signer = stack.signer()
        # one client for every game: room for each game's four quotes in the per-order pools
        async with KalshiRest(stack.rest_url, signer, limiter=RateLimiter.for_tier("basic"),
                              presign_order_cap=max(16, 4 * len(sc.games))) as rest:
            got = await rest.get_account_limits()  # the tier the exchange enforces, not a guess
            rest.limiter.set_tier(got.usage_tier, TierLimits(
                got.read.refill_rate, got.read.bucket_capacity, got.write.refill_rate,
                got.write.bucket_capacity))
            quote = dataclasses.replace(DEFAULT_QUOTE_PARAMS, stop_before_start_ns=int(stop_before_start_s * NS))
            drivers = []
            for g in sc.games:
                wid = f"demo-{g.event_ticker}"
                drivers.append(WorkerDriver(
                    rest, lambda markets: KalshiWs(stack.ws_url, signer, markets=markets),
                    await load_game(rest, g.event_ticker), WorkerConfig(wid, quote=quote),
                    FileTheoSource(theo_dir, g.event_ticker),
                    journal=Journal.open(JournalConfig(journal_dir, wid), time.time_ns())))
            tasks = [asyncio.create_task(d.run()) for d in drivers]
            last_line = 0.0
            with Live(_progress(drivers, time.time_ns()), console=console, refresh_per_second=2,
                      transient=False) as live:
                while not all(t.done() for t in tasks):
                    await asyncio.wait(tasks, timeout=0.5)
                    live.update(_progress(drivers, time.time_ns()))
                    if not console.is_terminal and time.monotonic() - last_line > 15:
                        last_line = time.monotonic()
                        console.print(_progress(drivers, time.time_ns()))
            reports = tuple(t.result() for t in tasks)
        eng = stack.exchange.engine
        resting_after = sum(len(eng.orders(MM_USER, event_ticker=g.event_ticker, status="resting"))
                            for g in sc.games)
        _print_summary(console, reports, resting_after, data_dir)
        priced = sum(1 for s in pull.snapshots)
    return DemoResult(len(sc.games), priced, worst, reports, resting_after)


def _print_theos(console: Console, sc: Any, pull: Any) -> float:
    table = Table(title="theo from sportsbooks (Shin de-vig, Pinnacle-anchored) vs the hidden truth")
    for col in ("game", "market", "truth", "theo", "±unc"):
        table.add_column(col)
    snaps = {s.event_ticker: s for s in pull.snapshots}
    worst = 0.0
    for g in sc.games:
        snap = snaps.get(g.event_ticker)
        truth = g.truth.at(snap.as_of_ns if snap else sc.start_ns)
        for i, m in enumerate(g.markets):
            theo = snap.markets.get(m) if snap else None
            if theo is not None:
                worst = max(worst, abs(theo - truth[i]))
            table.add_row(g.event_ticker if i == 0 else "", m.rsplit("-", 1)[-1], f"{truth[i]:.3f}",
                          "—" if theo is None else f"{theo:.3f}",
                          f"{snap.uncertainty.get(m, 0):.3f}" if snap else "")
    console.print(table)
    console.print(f"{len(pull.snapshots)}/{len(sc.games)} games priced · max |theo − truth| {worst:.4f} · "
                  f"odds credits remaining {pull.credits_remaining}")
    for why in pull.unpriced:  # that game's worker has nothing to quote around until a pull prices it
        console.print(f"[yellow]no theo[/] {why}")
    return worst


def _print_summary(console: Console, reports: tuple[WorkerReport, ...], resting_after: int,
                   data_dir: Path) -> None:
    table = Table(title="summary")
    for col in ("game", "exit", "state", "actions", "fills", "refusals", "positions", "P&L at theo",
                "resting after (verified)"):
        table.add_column(col)
    for r in reports:
        table.add_row(r.event_ticker, _exit(r.exit_reason), r.final_state, str(r.actions), str(r.fills),
                      str(r.refusals), " ".join(f"{m.rsplit('-', 1)[-1]} {q / CONTRACT:+.0f}"
                                                for m, q in r.positions.items()),
                      _fmt_money(r.pnl_money), str(len(r.kill.after)) if r.kill else "?")
    console.print(table)
    verdict = "[green]nothing resting[/]" if resting_after == 0 else f"[red]{resting_after} ORDERS RESTING[/]"
    console.print(f"exchange-side check after all workers stopped: {verdict}. "
                  f"Journals: {data_dir / 'journal'}")


def run_demo(seed: int = 7, n_games: int = 3, console: Console | None = None, *,
             first_start_s: float = 75.0, spacing_s: float = 45.0, stop_before_start_s: float = 10.0,
             data_dir: Path | None = None) -> DemoResult:
    """Run the demo (about ``first_start_s + (n_games − 1) × spacing_s`` seconds)."""
    if console is None:
        probe = Console()
        console = Console(width=max(probe.width, 140))
    if data_dir is None:
        from mmcore.settings import get_settings

        data_dir = get_settings().data_dir / "demo" / time.strftime("%Y%m%d-%H%M%S")
    return asyncio.run(_demo(seed, n_games, first_start_s, spacing_s, stop_before_start_s,
                             console, data_dir))
