"""The calendar refresh against the local exchange and the local Odds API over loopback: events,
milestone start times, fees, tick grids, the match to Odds API events (and why not), the record
tables read back by DuckDB, and the published calendar file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import duckdb
import pytest

from mmcore.calendar import (
    Calendar, CalendarGame, calendar_path, parse_event_list, read_calendar, refresh_calendar,
    write_calendar,
)
from mmcore.errors import InputError
from mmcore.record.store import record_root
from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SimStack
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.oddsapi import OddsApiClient

NS = 1_000_000_000
BOOKS = ("pinnacle", "draftkings", "fanduel")


def scenario(now_ns: int, n_games: int = 4):
    """NBA, NHL, EPL, NBA starting 300, 600, 900, 1200 s after ``now_ns``; the EPL game's
    series has a fee override (multiplier 0.5)."""
    spec = default_scenario_dict(21, n_games)
    spec["games"][2]["fee_multiplier"] = 0.5
    return load_scenario(spec, now_ns)


@pytest.fixture
async def stack(tmp_path):
    # whole seconds: the milestone's RFC 3339 start (µs) then equals the scenario's start exactly
    now = time.time_ns() // NS * NS
    sc = scenario(now)
    st = SimStack(sc, tmp_path / "sim", run_participants=False)
    # the Odds API does not list the NHL game: it must come out unmatched, with the reason
    nhl = sc.games[1]
    st.odds.sim.slate = tuple(g for g in st.odds.sim.slate if g.event_id != nhl.sim.event_id)
    async with st:
        yield st, sc, now


async def _refresh(st, data_dir: Path, now: int, *, horizon_s: float = 1000.0, odds: bool = True):
    async with KalshiRest(st.rest_url, None) as rest, \
            OddsApiClient(st.odds_url, st.odds_api_key, bookmakers=BOOKS) as client:
        sports = ["basketball_nba", "icehockey_nhl", "soccer_epl"]
        return await refresh_calendar(rest, client if odds else None, data_dir, now,
                                      sports=sports, horizon_s=horizon_s)


async def test_calendar_from_the_local_exchange_matches_odds_events(stack, tmp_path):
    st, sc, now = stack
    data_dir = tmp_path / "data"
    credits_before = st.odds.sim.used
    report = await _refresh(st, data_dir, now)

    nba, nhl, epl, late = sc.games
    cal = report.calendar
    assert cal is not None and report.errors == []
    assert [g.event_ticker for g in cal.games] == [nba.event_ticker, nhl.event_ticker, epl.event_ticker]
    assert report.outside_horizon == 1  # the 1200 s game is beyond the 1000 s horizon
    for g in (nba, nhl, epl):
        got = cal.game(g.event_ticker)
        assert got is not None
        assert got.start_ns == g.start_ns and got.start_source == "milestone"
        assert set(got.markets) == set(g.markets)
        assert got.sport_key == g.sim.sport_key and got.series_ticker == g.series_ticker
        assert got.fee_type == g.fee_type
    assert cal.game(epl.event_ticker).fee_multiplier == 0.5
    assert cal.game(epl.event_ticker).markets[-1].endswith("-TIE")

    assert cal.game(nba.event_ticker).odds_event_id == nba.sim.event_id
    assert cal.game(epl.event_ticker).odds_event_id == epl.sim.event_id
    assert cal.game(nba.event_ticker).match_reason.startswith("matched")
    unmatched_nhl = cal.game(nhl.event_ticker)
    assert unmatched_nhl.odds_event_id is None
    assert "no Odds API icehockey_nhl event" in unmatched_nhl.match_reason
    assert [u.event_ticker for u in report.unmatched] == [nhl.event_ticker]
    assert st.odds.sim.used == credits_before  # the event list is free
    assert report.summary()["matched"] == 2 and len(report.game_rows()) == 3
    assert any(nhl.event_ticker in ln and "no Odds API" in ln for ln in report.lines())

    # the published file reads back equal; helpers for the pull and the launcher
    assert read_calendar(data_dir) == cal
    assert [g.event_ticker for g in cal.games_starting(now, 400)] == [nba.event_ticker]
    assert cal.sports_ahead(now) == ["basketball_nba", "icehockey_nhl", "soccer_epl"]
    kg = cal.game(epl.event_ticker).kalshi_game()
    assert kg.has_tie and kg.start_ns == epl.start_ns

    # the record, read by DuckDB
    root = record_root(data_dir)
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT event_ticker, start_ns, fee_multiplier, odds_event_id, match_status, match_reason "
        f"FROM read_parquet('{root}/events/*.parquet') ORDER BY start_ns").fetchall()
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        (nba.event_ticker, nba.start_ns, nba.sim.event_id, "matched"),
        (nhl.event_ticker, nhl.start_ns, None, "unmatched"),
        (epl.event_ticker, epl.start_ns, epl.sim.event_id, "matched")]
    markets = con.execute(
        f"SELECT market, outcome, tick_grid, min_tick FROM read_parquet('{root}/markets/*.parquet') "
        f"ORDER BY market").fetchall()
    assert {m[0] for m in markets} == {*nba.markets, *nhl.markets, *epl.markets}
    assert all(json.loads(m[2]) == [[0, 10_000, 100]] and m[3] == 100 for m in markets)  # 1¢ grid
    assert {m[1] for m in markets if m[0].startswith(epl.event_ticker)} >= {"TIE"}


async def test_without_an_odds_client_games_are_listed_unmatched(stack, tmp_path):
    st, sc, now = stack
    report = await _refresh(st, tmp_path / "data", now, odds=False)
    assert report.calendar is not None and len(report.games) == 3
    assert all(g.odds_event_id is None and "no Odds API client" in g.match_reason
               for g in report.games)


async def test_a_failed_sport_keeps_its_previous_games(stack, tmp_path):
    st, sc, now = stack
    data_dir = tmp_path / "data"
    kept = CalendarGame("KXATPMATCH-26MAY25ABCXYZ", "KXATPMATCH", "tennis_atp_nowhere",
                        ("KXATPMATCH-26MAY25ABCXYZ-ABC", "KXATPMATCH-26MAY25ABCXYZ-XYZ"),
                        now + 60 * NS, "quadratic", 1.0, None, "earlier")
    write_calendar(data_dir, Calendar("cal-0", now - NS, 1000.0, ("tennis_atp_nowhere",), (kept,)))
    async with KalshiRest(st.rest_url, None) as rest:
        # a sport whose listing fails (here: no Kalshi series) keeps its games from the previous
        # calendar; the others refresh; failing alone raises and publishes nothing
        with pytest.raises(InputError, match="no Kalshi game series"):
            await refresh_calendar(rest, None, data_dir, now, sports=["tennis_atp_nowhere"])
        report = await refresh_calendar(rest, None, data_dir, now, horizon_s=400,
                                        sports=["basketball_nba", "tennis_atp_nowhere"])
    assert [g.event_ticker for g in report.games] == [kept.event_ticker, sc.games[0].event_ticker]
    assert report.carried_over == ["tennis_atp_nowhere"]
    assert report.errors and "tennis_atp_nowhere" in report.errors[0]
    assert read_calendar(data_dir) == report.calendar


def test_malformed_calendar_file_is_a_clear_input_error(tmp_path):
    assert read_calendar(tmp_path) is None
    path = calendar_path(tmp_path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="unreadable calendar"):
        read_calendar(tmp_path)
    good = Calendar("cal-1", 1, 60.0, ("basketball_nba",), (CalendarGame(
        "KXNBAGAME-26MAY25NYKCLE", "KXNBAGAME", "basketball_nba",
        ("KXNBAGAME-26MAY25NYKCLE-CLE", "KXNBAGAME-26MAY25NYKCLE-NYK"), 5 * NS, "quadratic", 1.0,
        None, "why"),))
    raw = good.to_json()
    raw["games"][0]["start_ns"] = "soon"
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match=r"malformed calendar .*games\[0\].*start_ns"):
        read_calendar(tmp_path)
    del raw["games"][0]["markets"]
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError, match="missing key 'markets'"):
        read_calendar(tmp_path)
    path.write_text(json.dumps(good.to_json()))
    assert read_calendar(tmp_path) == good


def test_event_list_parses_to_bookless_events():
    events, rejected = parse_event_list([
        {"id": "a" * 32, "sport_key": "soccer_epl", "commence_time": "2026-01-10T15:00:00Z",
         "home_team": "Arsenal", "away_team": "Chelsea"},
        {"id": "b" * 32, "sport_key": "basketball_nba", "commence_time": "2026-01-10T15:00:00Z",
         "home_team": None, "away_team": None},
        "garbage",
    ])
    assert [(e.event_id, e.outcomes, e.books) for e in events] == [
        ("a" * 32, ("Arsenal", "Chelsea", "Draw"), ())]
    assert [r.event_id for r in rejected] == ["b" * 32, None]
