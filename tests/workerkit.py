"""Test kit: the local exchange + odds server, a theo snapshot, and a real worker driver wired to
them over loopback — the same code path as `mm quote` against the embedded default."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmcore.odds.teams import game_from_markets
from mmcore.quoting.config import DEFAULT_QUOTE_PARAMS
from mmcore.settings import DEFAULT_BOOKMAKERS
from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SimStack
from mmcore.theo.pull import pull_theos
from mmcore.venues.kalshi.ratelimit import RateLimiter
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.kalshi.ws import KalshiWs
from mmcore.venues.oddsapi import OddsApiClient
from mmcore.worker.driver import FileTheoSource, WorkerDriver, load_game
from mmcore.worker.engine import WorkerConfig
from mmcore.worker.journal import Journal, JournalConfig


def worker_config(worker_id: str) -> WorkerConfig:
    """Short games in tests: stop adding quotes 3 s (not 60 s) before the start."""
    return WorkerConfig(worker_id, quote=dataclasses.replace(DEFAULT_QUOTE_PARAMS, stop_before_start_ns=3 * 10**9))


def scenario_dict(seed: int, start_in_s: float, game: dict[str, Any] | None = None,
                  **participants: Any) -> dict[str, Any]:
    """One game (``game`` overrides its fields, e.g. a soccer game without a tie market)."""
    d = default_scenario_dict(seed, 1)
    d["games"][0]["start_in_s"] = start_in_s
    d["games"][0].update(game or {})
    if participants:
        d["participants"].update(participants)
    return d


async def publish_theos(stack: SimStack, games: Sequence[Any], theo_dir: Path) -> None:
    """Theo snapshots for the scenario's ``games`` from the local odds server, as the odds pull
    publishes them: the product's default books (with four, a minute in which Pinnacle and one
    other are missing or stale left no theo, ~1 pull in 100, and the worker never quoted)."""
    async with OddsApiClient(stack.odds_url, stack.odds_api_key, bookmakers=DEFAULT_BOOKMAKERS) as odds:
        report = await pull_theos(odds, sorted({g.sim.sport_key for g in games}),
                                  [game_from_markets(g.event_ticker, g.markets, g.start_ns) for g in games],
                                  theo_dir)
    assert sorted(s.event_ticker for s in report.snapshots) == sorted(g.event_ticker for g in games), (
        f"no theo for every game: {report.lines()}")


@dataclass
class Rig:
    stack: SimStack
    rest: KalshiRest
    theo_dir: Path
    journal_dir: Path
    event_ticker: str

    def driver(self, *, worker_id: str = "w-test", **kw: Any) -> WorkerDriver:
        raise NotImplementedError  # replaced in rig()


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, seed: int = 3, start_in_s: float = 20.0,
              game: dict[str, Any] | None = None, **participants: Any) -> AsyncIterator[Rig]:
    sc = load_scenario(scenario_dict(seed, start_in_s, game, **participants), time.time_ns())
    async with SimStack(sc, tmp_path / "data", heartbeat_s=1.0) as stack:
        signer = stack.signer()
        theo_dir, journal_dir = tmp_path / "theo", tmp_path / "journal"
        g = sc.games[0]
        await publish_theos(stack, [g], theo_dir)
        async with KalshiRest(stack.rest_url, signer, limiter=RateLimiter.for_tier("advanced")) as rest:
            r = Rig(stack, rest, theo_dir, journal_dir, g.event_ticker)

            async def make(worker_id: str = "w-test", **kw: Any) -> WorkerDriver:
                game = await load_game(rest, g.event_ticker)
                journal = Journal.open(JournalConfig(journal_dir, worker_id), time.time_ns())
                return WorkerDriver(
                    rest, lambda markets: KalshiWs(stack.ws_url, signer, markets=markets),
                    game, kw.pop("cfg", None) or worker_config(worker_id),
                    FileTheoSource(theo_dir, g.event_ticker),
                    journal=journal, cancel_deadline_s=kw.pop("cancel_deadline_s", 20.0), **kw)

            r.driver = make  # type: ignore[method-assign]
            yield r
