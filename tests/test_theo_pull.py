"""Odds pull → theo snapshots, end to end against the local odds server priced from a scenario's
hidden truth; snapshots are keyed by Kalshi market ticker and published atomically."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlsplit

import duckdb
import pytest

from clocks import ManualClock
from mmcore.calendar import Calendar, CalendarGame
from mmcore.errors import InputError, VenueUnavailableError
from mmcore.odds.teams import game_from_markets
from mmcore.record.store import ensure_seeds, record_root
from mmcore.settings import DEFAULT_BOOKMAKERS
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServer, OddsServerConfig
from mmcore.sim.scenario import default_scenario
from mmcore.theo.pull import pull_odds, pull_theos
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


async def test_a_pull_says_why_an_event_has_no_theo(tmp_path):
    """Two books and no Pinnacle cannot price an event (three are needed without the anchor):
    the report says so per event instead of a bare "0 priced"."""
    now = time.time_ns()
    sc = default_scenario(5, now, 2)
    games = [game_from_markets(g.event_ticker, g.markets, g.start_ns) for g in sc.games]
    server = OddsServer(OddsServerConfig(seed=5), truth=sc.truth_fn(), slate=sc.slate())
    async with server:
        async with OddsApiClient(server.url, SIM_ODDS_API_KEY, bookmakers=("draftkings", "fanduel")) as client:
            report = await pull_theos(client, sorted({g.sim.sport_key for g in sc.games}), games, tmp_path)
    assert report.events == len(sc.games) and report.priced == 0 and report.snapshots == []
    assert len(report.unpriced) == len(sc.games), report.unpriced
    ids = {g.sim.event_id for g in sc.games}
    for why in report.unpriced:
        assert why.split(":")[0] in ids and "usable book" in why and "need 3" in why, why
    assert f"0 priced ({len(sc.games)} not)" in report.text()
    assert report.summary()["unpriced"] == len(sc.games)
    assert [x for x in report.lines() if x.startswith("unpriced ")] == [f"unpriced {w}" for w in report.unpriced]


def test_snapshot_round_trip_and_atomic_replace(tmp_path):
    snap = TheoSnapshot("EV-1", {"EV-1-A": 0.6, "EV-1-B": 0.4}, {"EV-1-A": 0.01}, 0.5, 123, "test")
    path = write_snapshot(tmp_path, snap)
    assert read_snapshot(tmp_path, "EV-1") == snap
    newer = TheoSnapshot("EV-1", {"EV-1-A": 0.55, "EV-1-B": 0.45}, {}, 0.5, 456, "test")
    write_snapshot(tmp_path, newer)
    assert read_snapshot(tmp_path, "EV-1").as_of_ns == 456
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind
    assert read_snapshot(tmp_path, "EV-2") is None


# --- the recorded pull (pull_odds) -------------------------------------------------------------


def _calendar(sc, now_ns: int) -> Calendar:
    """The calendar a refresh would publish for this scenario (every game matched)."""
    games = tuple(CalendarGame(g.event_ticker, g.series_ticker, g.sim.sport_key,
                               tuple(sorted(g.markets, key=lambda m: (m.endswith("-TIE"), m))),
                               g.start_ns, g.fee_type, g.fee_multiplier, g.sim.event_id, "matched")
                  for g in sc.games)
    return Calendar(f"cal-{now_ns}", now_ns, 3600.0, tuple(sorted({g.sport_key for g in games})),
                    games)


@pytest.fixture
async def odds_rig():
    """A scenario (NBA, NHL, EPL), the local odds server pricing it and a client on the default
    ten books, sharing one manual clock (ns)."""
    now = time.time_ns()
    clock = ManualClock(now)
    sc = default_scenario(5, now, 3)
    server = OddsServer(OddsServerConfig(seed=5), truth=sc.truth_fn(), slate=sc.slate(), clock_ns=clock)
    async with server:
        async with OddsApiClient(server.url, SIM_ODDS_API_KEY, bookmakers=DEFAULT_BOOKMAKERS,
                                 clock_ns=clock, max_retries=0) as client:
            yield sc, server, client, clock


def _sql(data_dir, query: str) -> list[tuple]:
    root = record_root(data_dir)
    ensure_seeds(root)  # typed empty files, as the DuckDB views of sql/ expect
    con = duckdb.connect()
    for table in ("odds_pulls", "book_prices", "theos", "theo_snapshots"):
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{root}/{table}/*.parquet')")
    return con.execute(query).fetchall()


async def test_pull_odds_records_one_request_per_sport(odds_rig, tmp_path):
    sc, server, client, clock = odds_rig
    cal = _calendar(sc, clock())
    report = await pull_odds(client, cal, tmp_path, clock(), min_quota_remaining=10)

    assert report.ok and sorted(report.sports) == ["basketball_nba", "icehockey_nhl", "soccer_epl"]
    assert server.sim.used == 3  # one credit per sport: h2h × ≤ 10 books
    assert server.sim.requests == 4  # plus one free /v4/sports to learn the quota
    assert report.credits_remaining == server.sim.remaining
    assert {s.event_ticker for s in report.snapshots} == {g.event_ticker for g in sc.games}
    for g in sc.games:
        snap = read_snapshot(tmp_path / "theo", g.event_ticker)
        assert snap.probs_for(g.markets) == pytest.approx(g.truth.at(snap.as_of_ns), abs=0.03)

    pulls = _sql(tmp_path, "SELECT pull_id, scope, status, credits_last, credits_remaining, raw_path, "
                           "events, snapshots FROM odds_pulls ORDER BY pull_id")
    assert [(p[1], p[2], p[3], p[7]) for p in pulls] == [("sport", "ok", 1, 1)] * 3
    assert [p[4] for p in pulls] == [499, 498, 497]
    for p in pulls:
        raw = json.loads((record_root(tmp_path) / p[5]).read_text())
        assert raw["pull_id"] == p[0] and len(raw["payload"]) == p[6] and "apiKey" not in raw["url"]
        asked = parse_qs(urlsplit(raw["url"]).query)["bookmakers"][0].split(",")
        assert "pinnacle" in asked and len(asked) <= 10
    books = _sql(tmp_path, "SELECT event_id, count(DISTINCT book), bool_or(book = 'pinnacle'), "
                           "bool_and(fair_prob BETWEEN 0 AND 1 OR NOT used) FROM book_prices "
                           "GROUP BY event_id")
    assert len(books) == 3 and all(0 < n <= 10 and ok for _, n, _pin, ok in books)
    assert any(pin for _, _n, pin, _ok in books)  # a book may skip an event, Pinnacle included
    used = _sql(tmp_path, "SELECT event_id, round(sum(fair_prob), 9) FROM book_prices "
                          "WHERE used AND book = 'pinnacle' GROUP BY event_id")
    assert all(total == 1.0 for _, total in used)
    theos = _sql(tmp_path, "SELECT event_id, round(sum(theo), 9), max(mode), coalesce(bool_or(anchor = 'pinnacle'), false) "
                           "FROM theos GROUP BY event_id")
    assert all(total == 1.0 and (mode == "anchored") == anchored for _, total, mode, anchored in theos)
    assert any(anchored for *_, anchored in theos)
    published = _sql(tmp_path, "SELECT count(*), count(DISTINCT event_ticker) FROM theo_snapshots")
    assert published == [(7, 3)]  # 2 + 2 + 3 (soccer has a TIE market)
    assert len(report.snapshot_rows()) == 7 and report.summary()["requests"]["ok"] == 3
    assert len(report.lines()) == 1 + 3 + len(report.unmatched)


async def test_quota_floor_pauses_without_a_paid_request(odds_rig, tmp_path):
    sc, server, client, clock = odds_rig
    cal = _calendar(sc, clock())
    report = await pull_odds(client, cal, tmp_path, clock(), min_quota_remaining=501)
    assert report.paused and not report.snapshots and "PAUSED" in report.text()
    assert server.sim.used == 0 and server.sim.requests == 1  # only the free quota read
    requests_before = server.sim.requests
    clock.advance(1)
    again = await pull_odds(client, cal, tmp_path, clock(), min_quota_remaining=501)
    assert again.paused and server.sim.requests == requests_before  # quota known: no request at all
    rows = _sql(tmp_path, "SELECT status, credits_remaining, detail FROM odds_pulls")
    assert len(rows) == 6 and all(r[0] == "paused" and r[1] == 500 and "floor" in r[2] for r in rows)


async def test_per_game_refresh_writes_only_that_games_snapshot(odds_rig, tmp_path):
    sc, server, client, clock = odds_rig
    cal = _calendar(sc, clock())
    await pull_odds(client, cal, tmp_path, clock(), min_quota_remaining=0)
    before = {g.event_ticker: read_snapshot(tmp_path / "theo", g.event_ticker) for g in sc.games}
    clock.advance(90)
    target = sc.games[2]  # the soccer game: three markets
    report = await pull_odds(client, cal, tmp_path, clock(), event_ticker=target.event_ticker,
                             min_quota_remaining=0)
    assert [s.event_ticker for s in report.snapshots] == [target.event_ticker]
    assert server.sim.used == 4  # one more credit
    for g in sc.games:
        snap = read_snapshot(tmp_path / "theo", g.event_ticker)
        if g is target:
            assert snap.as_of_ns == clock() and snap.as_of_ns > before[g.event_ticker].as_of_ns
        else:
            assert snap == before[g.event_ticker]
    rows = _sql(tmp_path, f"SELECT scope, event_id, status FROM odds_pulls WHERE pull_id = '{report.run_id}'")
    assert rows == [("event", target.sim.event_id, "ok")]
    with pytest.raises(InputError, match="not in the calendar"):
        await pull_odds(client, cal, tmp_path, clock(), event_ticker="KXNBAGAME-26JAN01AAABBB",
                        min_quota_remaining=0)


async def test_api_errors_are_recorded_and_only_total_failure_raises(odds_rig, tmp_path):
    sc, server, client, clock = odds_rig
    cal = _calendar(sc, clock())
    await client.sports()  # quota known: the next request is the first paid one
    server.sim.faults.fail_next(404)
    report = await pull_odds(client, cal, tmp_path, clock(), min_quota_remaining=0)
    assert [r.status for r in report.requests] == ["error", "ok", "ok"]
    assert len(report.errors) == 1 and "NotFoundError" in report.errors[0]
    assert len(report.snapshots) == 2

    clock.advance(1)
    server.sim.faults.fail_next(503, n=3)
    with pytest.raises(VenueUnavailableError):
        await pull_odds(client, cal, tmp_path, clock(), min_quota_remaining=0)
    rows = _sql(tmp_path, "SELECT status, count(*) FROM odds_pulls GROUP BY status ORDER BY status")
    assert rows == [("error", 4), ("ok", 2)]  # the failed run is recorded before raising
