"""Per-game theo refresh on demand: the request-file protocol, serving requests with a per-game
pull, the in-process refresher (rate-limited; calendar or free event list), and how a worker
built by ``build_worker`` wires both — against the local odds server and exchange over loopback."""

from __future__ import annotations

import json
import time

import pytest

from clocks import ManualClock
from mmcore.calendar import Calendar, CalendarGame, write_calendar
from mmcore.settings import DEFAULT_BOOKMAKERS, Settings
from mmcore.sim.odds_server import OddsServer, OddsServerConfig
from mmcore.sim.scenario import default_scenario
from mmcore.sim.server import SimStack
from mmcore.theo.refresh import (
    clear_request, make_local_refresher, pending_requests, request_refresh, requests_dir,
    serve_pending,
)
from mmcore.theo.snapshot import read_snapshot, theo_dir
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.oddsapi import OddsApiClient
from mmcore.worker.driver import FileTheoSource
from mmcore.worker.venue import build_worker

NS = 1_000_000_000
EV = "KXNBAGAME-26MAY25NYKCLE"


def _game(g, *, matched: bool = True) -> CalendarGame:
    return CalendarGame(g.event_ticker, g.series_ticker, g.sim.sport_key,
                        tuple(sorted(g.markets, key=lambda m: (m.endswith("-TIE"), m))), g.start_ns,
                        g.fee_type, g.fee_multiplier, g.sim.event_id if matched else None,
                        "matched" if matched else "not matched yet")


def _settings(tmp_path, odds_url: str, **kw) -> Settings:
    port = int(odds_url.rsplit(":", 1)[1])
    return Settings(_env_file=None, data_dir=tmp_path / "data", sim_odds_port=port,  # type: ignore[call-arg]
                    odds_min_quota_remaining=0, **kw)


@pytest.fixture(autouse=True)
def _no_real_odds_key(monkeypatch):
    monkeypatch.delenv("ODDS_API_KEY", raising=False)
    monkeypatch.delenv("MM_ODDS_API_KEY", raising=False)
    monkeypatch.delenv("MM_ODDS_API_BASE_URL", raising=False)


@pytest.fixture
async def odds():
    now = time.time_ns()
    clock = ManualClock(now)
    sc = default_scenario(8, now, 2)  # NBA, NHL
    async with OddsServer(OddsServerConfig(seed=8), truth=sc.truth_fn(), slate=sc.slate(),
                          clock_ns=clock) as server:
        yield sc, server, clock


def test_request_files_round_trip(tmp_path):
    assert pending_requests(tmp_path) == []
    request_refresh(tmp_path, EV, 100, "inventory past 60%")
    request_refresh(tmp_path, EV, 250, "again")
    request_refresh(tmp_path, "KXNHLGAME-26MAY25BOSNYR", 200, "other")
    (requests_dir(theo_dir(tmp_path)) / "garbage.json").write_text("{")
    pending = pending_requests(tmp_path)
    assert [(r.event_ticker, r.first_requested_ns, r.requested_ns, r.count, r.reason)
            for r in pending] == [(EV, 100, 250, 2, "again"),
                                  ("KXNHLGAME-26MAY25BOSNYR", 200, 200, 1, "other")]
    raw = json.loads((requests_dir(theo_dir(tmp_path)) / f"{EV}.json").read_text())
    assert raw == {"event_ticker": EV, "requested_ns": 250, "first_requested_ns": 100, "count": 2,
                   "reason": "again"}
    assert not clear_request(tmp_path, EV, served_up_to_ns=200)  # a newer request came in
    assert clear_request(tmp_path, EV, served_up_to_ns=250)
    assert not clear_request(tmp_path, EV)
    assert [r.event_ticker for r in pending_requests(tmp_path)] == ["KXNHLGAME-26MAY25BOSNYR"]


async def test_file_theo_source_requests_and_calls_the_refresher(tmp_path):
    calls = []

    async def refresher() -> None:
        calls.append(1)

    src = FileTheoSource(theo_dir(tmp_path), EV, refresher, request_files=True, clock_ns=lambda: 7)
    await src.refresh("news risk")
    assert calls == [1]
    assert [(r.event_ticker, r.requested_ns, r.reason) for r in pending_requests(tmp_path)] == [
        (EV, 7, "news risk")]


async def test_serve_pending_runs_the_per_game_pull_and_clears(odds, tmp_path):
    sc, server, clock = odds
    nba, nhl = sc.games
    data = tmp_path / "data"
    write_calendar(data, Calendar("cal-1", clock(), 3600.0, ("basketball_nba", "icehockey_nhl"),
                                  (_game(nba), _game(nhl, matched=False))))
    request_refresh(data, nba.event_ticker, clock(), "skewed")
    request_refresh(data, nhl.event_ticker, clock(), "skewed")
    request_refresh(data, "KXNBAGAME-26JAN01AAABBB", clock(), "unknown game")
    async with OddsApiClient(server.url, server.config.api_key, bookmakers=DEFAULT_BOOKMAKERS,
                             clock_ns=clock) as client:
        served = await serve_pending(client, data, clock(), min_quota_remaining=0)
    by_event = {s.request.event_ticker: s for s in served}
    assert by_event[nba.event_ticker].cleared and by_event[nba.event_ticker].report.snapshots
    assert read_snapshot(theo_dir(data), nba.event_ticker).as_of_ns == clock()
    assert "no matched Odds API event" in by_event[nhl.event_ticker].detail
    assert "not in the calendar" in by_event["KXNBAGAME-26JAN01AAABBB"].detail
    assert pending_requests(data) == []  # unservable requests are dropped, with the reason
    assert server.sim.used == 1  # one event-odds request, one credit


async def test_local_refresher_pulls_one_game_at_most_once_a_minute(odds, tmp_path):
    sc, server, clock = odds
    nba, nhl = sc.games
    settings = _settings(tmp_path, server.url)
    write_calendar(settings.data_dir, Calendar("cal-1", clock(), 3600.0, ("basketball_nba",),
                                               (_game(nba),)))
    refresh = make_local_refresher(settings, nba.event_ticker, clock_ns=clock)
    await refresh()
    await refresh()  # within the minute: skipped
    assert server.sim.used == 1
    first = read_snapshot(settings.theo_dir, nba.event_ticker)
    assert first is not None  # as of the client's (wall-clock) receipt time
    clock.advance(61)
    await refresh()
    assert server.sim.used == 2
    assert read_snapshot(settings.theo_dir, nba.event_ticker).as_of_ns > first.as_of_ns

    # no calendar entry: the game is matched through the free event list, then pulled
    other = make_local_refresher(settings, nhl.event_ticker, game=_game(nhl, matched=False),
                                 clock_ns=clock)
    await other()
    snap = read_snapshot(settings.theo_dir, nhl.event_ticker)
    assert snap is not None and snap.source.startswith(f"odds:{nhl.sim.event_id}")
    assert server.sim.used == 3
    # without a calendar entry and without the game it cannot work: logged, not raised
    await make_local_refresher(settings, "KXNBAGAME-26JAN01AAABBB", clock_ns=clock)()
    assert server.sim.used == 3


async def test_build_worker_wires_request_files_and_the_local_refresher(tmp_path):
    now = time.time_ns()
    sc = default_scenario(9, now, 1)
    data = tmp_path / "data"
    async with SimStack(sc, data, run_participants=False) as stack:
        settings = Settings(_env_file=None, data_dir=data,  # type: ignore[call-arg]
                            sim_exchange_port=int(stack.rest_url.split(":")[2].split("/")[0]),
                            sim_odds_port=int(stack.odds_url.rsplit(":", 1)[1]),
                            odds_min_quota_remaining=0)
        g = sc.games[0]
        signer = stack.signer()
        async with KalshiRest(settings.kalshi_url, signer) as rest:
            driver = await build_worker(settings, rest, signer, g.event_ticker, local_refresh=True)
            try:
                await driver.theo.refresh("inventory past 60% of the limit")
            finally:
                driver.journal.close(time.time_ns())
    assert [r.event_ticker for r in pending_requests(data)] == [g.event_ticker]
    snap = read_snapshot(settings.theo_dir, g.event_ticker)  # pulled in process, no calendar
    assert snap is not None and set(snap.markets) == set(g.markets)
    assert stack.odds.sim.used == 1
