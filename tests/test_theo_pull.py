"""Odds pull → theo snapshots, end to end against the local odds server priced from a scenario's
hidden truth; snapshots are keyed by Kalshi market ticker and published atomically."""

from __future__ import annotations

import time

import pytest

from mmcore.odds.teams import game_from_markets
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServer, OddsServerConfig
from mmcore.sim.scenario import default_scenario
from mmcore.theo.pull import pull_theos
from mmcore.theo.snapshot import TheoSnapshot, read_snapshot, write_snapshot
from mmcore.venues.oddsapi import OddsApiClient


async def test_pull_publishes_one_snapshot_per_game_close_to_truth(tmp_path):
    now = time.time_ns()
    sc = default_scenario(5, now, 3)
    games = [game_from_markets(g.event_ticker, g.markets, g.start_ns) for g in sc.games]
    server = OddsServer(OddsServerConfig(seed=5), truth=sc.truth_fn(), slate=sc.slate())
    async with server:
        async with OddsApiClient(server.url, SIM_ODDS_API_KEY, bookmakers=("pinnacle", "draftkings",
                                 "fanduel", "betmgm", "betonlineag")) as client:
            sports = sorted({g.sim.sport_key for g in sc.games})
            report = await pull_theos(client, sports, games, tmp_path)
    assert len(report.snapshots) == len(sc.games), report.unmatched
    for g in sc.games:
        snap = read_snapshot(tmp_path, g.event_ticker)
        assert snap is not None
        probs = snap.probs_for(g.markets)
        assert sum(probs) == pytest.approx(1.0, abs=1e-6)
        truth = g.truth.at(snap.as_of_ns)
        assert probs == pytest.approx(truth, abs=0.03)  # orientation right: each market its own team


def test_snapshot_round_trip_and_atomic_replace(tmp_path):
    snap = TheoSnapshot("EV-1", {"EV-1-A": 0.6, "EV-1-B": 0.4}, {"EV-1-A": 0.01}, 0.5, 123, "test")
    path = write_snapshot(tmp_path, snap)
    assert read_snapshot(tmp_path, "EV-1") == snap
    newer = TheoSnapshot("EV-1", {"EV-1-A": 0.55, "EV-1-B": 0.45}, {}, 0.5, 456, "test")
    write_snapshot(tmp_path, newer)
    assert read_snapshot(tmp_path, "EV-1").as_of_ns == 456
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind
    assert read_snapshot(tmp_path, "EV-2") is None
