"""Team-name ↔ Kalshi code mapping and Odds API ↔ Kalshi game matching.

Orientation is the thing under test: a home team's theo on the away team's book is the worst bug
a sports market maker can have, so every match test checks which market each outcome lands on.
"""

from __future__ import annotations

import datetime
import json

import pytest

from mmcore.errors import InputError
from mmcore.models import iso_to_ns
from mmcore.odds.events import DRAW, EventOdds
from mmcore.odds.parse import parse_odds
from mmcore.odds.team_aliases import ALTERNATE_CODES, SERIES_BY_SPORT, TEAM_NAMES
from mmcore.odds.teams import (
    TIE_CODE,
    GameMatch,
    KalshiGame,
    alias_problems,
    game_from_markets,
    match_games,
    normalise_name,
    parse_event_ticker,
    series_for_sport,
    sport_for_series,
    suggest,
    team_code,
    team_codes,
)

HOUR = 3600 * 10**9


def event(
    home: str,
    away: str,
    commence: str | None,
    *,
    sport: str | None = "basketball_nba",
    event_id: str = "ev1",
    three_way: bool = False,
) -> EventOdds:
    outcomes = (home, away, DRAW) if three_way else (home, away)
    start = iso_to_ns(commence) if commence is not None else None
    return EventOdds(event_id, sport, start, home, away, outcomes, ())


def game(event_ticker: str, codes: tuple[str, ...], start: str | None) -> KalshiGame:
    start_ns = iso_to_ns(start) if start is not None else None
    return game_from_markets(event_ticker, [f"{event_ticker}-{c}" for c in codes], start_ns)


def only_match(report) -> GameMatch:
    assert len(report.matched) == 1, report
    return report.matched[0]


def event_reasons(report) -> dict[str, str]:
    return {u.event_id: u.reason for u in report.unmatched if u.event_id is not None}


# --- alias data --------------------------------------------------------------------------------


@pytest.mark.parametrize("sport", sorted(TEAM_NAMES))
def test_alias_tables_have_no_collisions(sport):
    # a normalised name maps to one team, a code to one team, within each league
    assert alias_problems(sport) == []


@pytest.mark.parametrize(
    "sport,count",
    [("basketball_nba", 30), ("americanfootball_nfl", 32), ("icehockey_nhl", 32), ("baseball_mlb", 30)],
)
def test_us_league_tables_have_every_team(sport, count):
    assert len(TEAM_NAMES[sport]) == count


def test_soccer_tables_cover_at_least_a_season():
    assert len(TEAM_NAMES["soccer_epl"]) >= 20
    assert len(TEAM_NAMES["soccer_italy_serie_a"]) >= 20
    assert len(TEAM_NAMES["soccer_spain_la_liga"]) >= 20


def test_alternate_codes_belong_to_known_teams():
    for sport, table in ALTERNATE_CODES.items():
        assert sport in TEAM_NAMES
        assert set(table) <= set(TEAM_NAMES[sport])


def test_kalshi_codes_we_were_told_about():
    nba = {"NYK", "CLE", "BKN", "CHA", "GSW", "LAL", "LAC", "NOP", "PHX", "SAS", "OKC", "UTA", "WAS"}
    assert nba <= set(TEAM_NAMES["basketball_nba"])
    assert not {"BRK", "CHO"} & set(TEAM_NAMES["basketball_nba"])
    assert team_code("basketball_nba", "Brooklyn Nets") == "BKN"
    assert team_code("americanfootball_nfl", "Los Angeles Rams") == "LA"
    assert team_code("americanfootball_nfl", "Los Angeles Chargers") == "LAC"
    assert set(team_codes("soccer_epl", "Chelsea")) == {"CFC", "CHE"}


def test_series_map_both_ways():
    assert series_for_sport("basketball_nba") == "KXNBAGAME"
    assert series_for_sport("soccer_italy_serie_a") == "KXSERIEAGAME"
    assert series_for_sport("soccer_xyz") is None
    for sport, series in SERIES_BY_SPORT.items():
        assert sport_for_series(series) == sport
    assert sport_for_series("KXNOPE") is None


# --- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Leganés", "leganes"),
        ("Bodø/Glimt", "bodo glimt"),
        ("Śląsk Wrocław", "slask wroclaw"),
        ("Górnik Zabrze", "gornik zabrze"),
        ("Atlético Madrid", "atletico madrid"),
        ("St. Louis Blues", "saint louis blues"),
        ("Paris Saint-Germain", "paris saint germain"),
        ("AC Milan", "milan"),
        ("Hellas Verona FC", "hellas verona"),
        ("AFC Bournemouth", "bournemouth"),
        ("SC Freiburg", "freiburg"),
        ("  Inter   Milan ", "inter milan"),
        ("FC", "fc"),  # never normalise a name to nothing
    ],
)
def test_normalise_examples(raw, expected):
    assert normalise_name(raw) == expected


@pytest.mark.parametrize(
    "a,b",
    [
        ("Brighton & Hove Albion", "Brighton and Hove Albion"),
        ("St Louis Blues", "Saint Louis Blues"),
        ("Paris Saint Germain", "Paris Saint-Germain"),
        ("Bodø/Glimt", "Bodo Glimt"),
        ("LEGANÉS", "leganes"),
        ("Leganés", "Lega\u0301nes"),  # composed vs decomposed accent
    ],
)
def test_normalise_makes_variants_equal(a, b):
    assert normalise_name(a) == normalise_name(b)


def test_normalise_keeps_words_that_tell_clubs_apart():
    assert normalise_name("Manchester City") != normalise_name("Manchester United")
    assert normalise_name("Inter Milan") != normalise_name("AC Milan")


# --- lookups -----------------------------------------------------------------------------------


def test_team_code_is_exact_after_normalisation():
    assert team_code("basketball_nba", "LA Clippers") == "LAC"
    assert team_code("basketball_nba", "los angeles clippers") == "LAC"
    assert team_code("soccer_epl", "Brighton & Hove Albion") == "BHA"
    assert team_code("soccer_italy_serie_a", "Internazionale Milano") == "INT"
    assert team_code("soccer_italy_serie_a", "AC Milan") == "ACM"
    assert team_code("soccer_spain_la_liga", "Atletico Madrid") == "ATM"
    assert team_code("soccer_spain_la_liga", "Leganés") == "LEG"
    assert team_code("icehockey_nhl", "Montreal Canadiens") == "MTL"
    assert team_code("baseball_mlb", "St Louis Cardinals") == "STL"
    # no fuzzy guesses
    assert team_code("basketball_nba", "LA Clipers") is None
    assert team_code("basketball_nba", "Los Angeles") is None
    assert team_code("no_such_sport", "Boston Celtics") is None
    assert team_codes("basketball_nba", "LA Clipers") == ()


def test_suggest_is_for_messages_only():
    assert any("LAC" in s for s in suggest("basketball_nba", "LA Clipers"))
    assert suggest("no_such_sport", "x") == []


def _sample_events(odds_samples, sport):
    files = [p for p in odds_samples if sport in p.name]
    if not files:
        pytest.skip(f"no {sport} sample file")
    return [e for p in files for e in json.loads(p.read_text())]


@pytest.mark.parametrize(
    "sport", ["basketball_nba", "americanfootball_nfl", "soccer_serie_a"]
)
def test_every_team_in_the_samples_resolves(odds_samples, sport):
    # 2021 data: includes e.g. "Washington Football Team", "Inter Milan", "Hellas Verona FC"
    raw = _sample_events(odds_samples, sport)
    assert raw
    for ev in raw:
        for name in (ev["home_team"], ev["away_team"]):
            assert team_code(ev["sport_key"], name), (ev["sport_key"], name)


def test_soccer_names_in_multi_league_sample_resolve(odds_samples):
    files = [p for p in odds_samples if "upcoming" in p.name]
    if not files:
        pytest.skip("no multi-league sample")
    checked = 0
    for ev in json.loads(files[0].read_text()):
        if ev.get("sport_key") in ("soccer_spain_la_liga", "soccer_italy_serie_a", "soccer_epl"):
            for name in (ev["home_team"], ev["away_team"]):
                assert team_code(ev["sport_key"], name), (ev["sport_key"], name)
                checked += 1
    assert checked


@pytest.mark.parametrize("sport", ["basketball_nba", "americanfootball_nfl", "soccer_serie_a"])
def test_samples_match_synthetic_kalshi_games_with_right_orientation(odds_samples, sport):
    """Real events against Kalshi games built from their own codes, listed away-first (the US
    ticker order) for US leagues and home-first for soccer; every outcome must land on its own
    team's market."""
    files = [p for p in odds_samples if sport in p.name]
    if not files:
        pytest.skip(f"no {sport} sample file")
    parsed = parse_odds(json.loads(files[0].read_text()))
    games = []
    for ev in parsed.events:
        home = team_code(ev.sport_key, ev.home_team)
        away = team_code(ev.sport_key, ev.away_team)
        day = datetime.datetime.fromtimestamp(ev.commence_ns // 10**9, tz=datetime.UTC)
        pair = (home, away) if ev.three_way else (away, home)
        ticker = f"{series_for_sport(ev.sport_key)}-{day:%y%b%d}".upper() + "".join(pair)
        codes = (*pair, TIE_CODE) if ev.three_way else pair
        games.append(game_from_markets(ticker, [f"{ticker}-{c}" for c in codes], ev.commence_ns))
    report = match_games(parsed.events, games)
    assert report.unmatched == ()
    assert len(report.matched) == len(parsed.events)
    by_id = {e.event_id: e for e in parsed.events}
    for m in report.matched:
        ev = by_id[m.event_id]
        assert m.outcome_markets[ev.home_team].endswith("-" + team_code(ev.sport_key, ev.home_team))
        assert m.outcome_markets[ev.away_team].endswith("-" + team_code(ev.sport_key, ev.away_team))
        if ev.three_way:
            assert m.outcome_markets[DRAW].endswith("-TIE")


# --- tickers -----------------------------------------------------------------------------------


def test_parse_event_ticker():
    assert parse_event_ticker("KXNBAGAME-26MAY25NYKCLE") == (
        "KXNBAGAME", datetime.date(2026, 5, 25), "NYKCLE"
    )
    assert parse_event_ticker("KXMLBGAME-26APR291840COLCIN") == (
        "KXMLBGAME", datetime.date(2026, 4, 29), "1840COLCIN"
    )
    assert parse_event_ticker("KXMLBGAME-25APR26BALDETG1")[2] == "BALDETG1"
    assert parse_event_ticker("KXNCAAFGAME-25DEC27M-OHFRES")[2] == "M-OHFRES"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "garbage",
        "KXNBAGAME",
        "KXNBAGAME-",
        "KXNBAGAME-26MAY25",  # no teams
        "KXNBAGAME-26XYZ25NYKCLE",  # no such month
        "KXNBAGAME-26FEB30NYKCLE",  # no such day
        "kxnbagame-26may25nykcle",  # tickers are upper-case
        "KXNBAGAME 26MAY25NYKCLE",
        None,
    ],
)
def test_parse_event_ticker_rejects_garbage(bad):
    with pytest.raises(InputError):
        parse_event_ticker(bad)


def test_game_from_markets_reads_codes_per_market():
    g = game("KXNBAGAME-26MAY25NYKCLE", ("NYK", "CLE"), "2026-05-25T23:00:00Z")
    assert g.series == "KXNBAGAME"
    assert g.markets == {"NYK": "KXNBAGAME-26MAY25NYKCLE-NYK", "CLE": "KXNBAGAME-26MAY25NYKCLE-CLE"}
    assert g.team_codes == {"NYK", "CLE"} and not g.has_tie
    assert g.ticker_date == datetime.date(2026, 5, 25)
    soccer = game("KXEPLGAME-26OCT10ARSLEE", ("ARS", "LEE", "TIE"), None)
    assert soccer.has_tie and soccer.team_codes == {"ARS", "LEE"}


@pytest.mark.parametrize(
    "markets",
    [
        ["KXNBAGAME-26MAY25NYKCLE-NYK", "KXNBAGAME-26MAY26NYKCLE-CLE"],  # other event
        ["KXNBAGAME-26MAY25NYKCLE-NYK", "KXNBAGAME-26MAY25NYKCLE-NYK"],  # duplicate
        ["KXNBAGAME-26MAY25NYKCLE-"],  # empty code
        ["KXNBAGAME-26MAY25NYKCLE-nyk"],
    ],
)
def test_game_from_markets_rejects_foreign_or_bad_markets(markets):
    with pytest.raises(InputError):
        game_from_markets("KXNBAGAME-26MAY25NYKCLE", markets, None)


def test_game_from_markets_rejects_bad_event_ticker():
    with pytest.raises(InputError):
        game_from_markets("nonsense", [], None)


# --- matching ----------------------------------------------------------------------------------


def test_two_way_match_orientation_from_names_not_ticker_order():
    # ticker lists the AWAY team first (NYK at CLE); Cleveland is home
    ev = event("Cleveland Cavaliers", "New York Knicks", "2026-05-25T23:00:00Z")
    g = game("KXNBAGAME-26MAY25NYKCLE", ("NYK", "CLE"), "2026-05-25T23:10:00Z")
    m = only_match(match_games([ev], [g]))
    assert m.event_id == "ev1" and m.event_ticker == "KXNBAGAME-26MAY25NYKCLE"
    assert m.outcome_markets == {
        "Cleveland Cavaliers": "KXNBAGAME-26MAY25NYKCLE-CLE",
        "New York Knicks": "KXNBAGAME-26MAY25NYKCLE-NYK",
    }


def test_orientation_is_the_same_whichever_order_markets_arrive():
    ev = event("Cleveland Cavaliers", "New York Knicks", "2026-05-25T23:00:00Z")
    g = game("KXNBAGAME-26MAY25NYKCLE", ("CLE", "NYK"), "2026-05-25T23:00:00Z")
    m = only_match(match_games([ev], [g]))
    assert m.outcome_markets["Cleveland Cavaliers"].endswith("-CLE")
    assert m.outcome_markets["New York Knicks"].endswith("-NYK")


def test_three_way_soccer_maps_draw_to_tie():
    ev = event("Arsenal", "Leeds United", "2026-10-10T14:00:00Z", sport="soccer_epl", three_way=True)
    g = game("KXEPLGAME-26OCT10ARSLEE", ("ARS", "LEE", "TIE"), "2026-10-10T14:00:00Z")
    m = only_match(match_games([ev], [g]))
    assert m.outcome_markets == {
        "Arsenal": "KXEPLGAME-26OCT10ARSLEE-ARS",
        "Leeds United": "KXEPLGAME-26OCT10ARSLEE-LEE",
        DRAW: "KXEPLGAME-26OCT10ARSLEE-TIE",
    }


def test_alternate_kalshi_code_is_accepted():
    ev = event("Arsenal", "Chelsea", "2026-01-15T20:00:00Z", sport="soccer_epl", three_way=True)
    g = game("KXEPLGAME-26JAN15ARSCHE", ("ARS", "CHE", "TIE"), "2026-01-15T20:00:00Z")
    m = only_match(match_games([ev], [g]))
    assert m.outcome_markets["Chelsea"] == "KXEPLGAME-26JAN15ARSCHE-CHE"


def test_unknown_team_is_unmatched_with_reason():
    ev = event("Cleveland Cavaliers", "New York Knickerbockers", "2026-05-25T23:00:00Z")
    g = game("KXNBAGAME-26MAY25NYKCLE", ("NYK", "CLE"), "2026-05-25T23:00:00Z")
    report = match_games([ev], [g])
    assert report.matched == ()
    reason = event_reasons(report)["ev1"]
    assert "no alias for team 'New York Knickerbockers' in basketball_nba" in reason
    assert "did you mean" in reason and "NYK" in reason
    # the game is reported too, never silently dropped
    assert any(u.event_ticker == "KXNBAGAME-26MAY25NYKCLE" for u in report.unmatched)


def test_start_outside_window_is_unmatched():
    ev = event("Cleveland Cavaliers", "New York Knicks", "2026-05-25T23:00:00Z")
    g = game("KXNBAGAME-26MAY27NYKCLE", ("NYK", "CLE"), "2026-05-27T23:00:00Z")
    report = match_games([ev], [g])
    assert report.matched == ()
    reason = event_reasons(report)["ev1"]
    assert reason.startswith("no Kalshi game for NYK-CLE within 12h of 2026-05-25T23:00Z")
    assert "KXNBAGAME-26MAY27NYKCLE" in reason


def test_window_is_a_parameter():
    ev = event("Cleveland Cavaliers", "New York Knicks", "2026-05-25T23:00:00Z")
    g = game("KXNBAGAME-26MAY25NYKCLE", ("NYK", "CLE"), "2026-05-26T01:00:00Z")
    assert match_games([ev], [g]).matched
    assert not match_games([ev], [g], window_ns=1 * HOUR).matched


def test_unknown_game_start_falls_back_to_eastern_ticker_date():
    # 00:30Z on the 26th is 20:30 ET on the 25th: the ticker says 25MAY
    ev = event("Cleveland Cavaliers", "New York Knicks", "2026-05-26T00:30:00Z")
    right = game("KXNBAGAME-26MAY25NYKCLE", ("NYK", "CLE"), None)
    assert only_match(match_games([ev], [right])).event_ticker == right.event_ticker
    wrong = game("KXNBAGAME-26MAY26NYKCLE", ("NYK", "CLE"), None)
    report = match_games([ev], [wrong])
    assert report.matched == ()
    assert "dated 2026-05-26 ET, event is 2026-05-25 ET" in event_reasons(report)["ev1"]


def test_doubleheader_disambiguated_by_start_time():
    early = game("KXMLBGAME-26APR261310BALDET", ("BAL", "DET"), "2026-04-26T17:10:00Z")
    late = game("KXMLBGAME-26APR261840BALDET", ("BAL", "DET"), "2026-04-26T22:40:00Z")
    ev1 = event("Detroit Tigers", "Baltimore Orioles", "2026-04-26T22:45:00Z",
                sport="baseball_mlb", event_id="late")
    ev2 = event("Detroit Tigers", "Baltimore Orioles", "2026-04-26T17:05:00Z",
                sport="baseball_mlb", event_id="early")
    report = match_games([ev1, ev2], [late, early])
    assert report.unmatched == ()
    got = {m.event_id: m.event_ticker for m in report.matched}
    assert got == {"late": late.event_ticker, "early": early.event_ticker}
    # one event alone still takes the closer game, and the other game is reported
    report = match_games([ev1], [early, late])
    assert only_match(report).event_ticker == late.event_ticker
    assert [u.event_ticker for u in report.unmatched] == [early.event_ticker]


def test_doubleheader_tie_is_ambiguous():
    a = game("KXMLBGAME-26APR26BALDETG1", ("BAL", "DET"), "2026-04-26T17:00:00Z")
    b = game("KXMLBGAME-26APR26BALDETG2", ("BAL", "DET"), "2026-04-26T23:00:00Z")
    ev = event("Detroit Tigers", "Baltimore Orioles", "2026-04-26T20:00:00Z", sport="baseball_mlb")
    report = match_games([ev], [a, b])
    assert report.matched == ()
    assert event_reasons(report)["ev1"].startswith("ambiguous")


def test_date_only_doubleheader_is_ambiguous():
    a = game("KXMLBGAME-26APR26BALDETG1", ("BAL", "DET"), None)
    b = game("KXMLBGAME-26APR26BALDETG2", ("BAL", "DET"), None)
    ev = event("Detroit Tigers", "Baltimore Orioles", "2026-04-26T17:00:00Z", sport="baseball_mlb")
    report = match_games([ev], [a, b])
    assert report.matched == ()
    assert event_reasons(report)["ev1"].startswith("ambiguous")


def test_two_events_equally_close_to_one_game_are_ambiguous():
    g = game("KXNBAGAME-26MAY25NYKCLE", ("NYK", "CLE"), "2026-05-25T23:00:00Z")
    ev1 = event("Cleveland Cavaliers", "New York Knicks", "2026-05-25T22:00:00Z", event_id="a")
    ev2 = event("Cleveland Cavaliers", "New York Knicks", "2026-05-26T00:00:00Z", event_id="b")
    report = match_games([ev1, ev2], [g])
    assert report.matched == ()
    reasons = event_reasons(report)
    assert reasons["a"].startswith("ambiguous") and reasons["b"].startswith("ambiguous")


def test_each_game_used_once():
    g = game("KXNBAGAME-26MAY25NYKCLE", ("NYK", "CLE"), "2026-05-25T23:00:00Z")
    near = event("Cleveland Cavaliers", "New York Knicks", "2026-05-25T23:00:00Z", event_id="near")
    far = event("Cleveland Cavaliers", "New York Knicks", "2026-05-26T03:00:00Z", event_id="far")
    report = match_games([far, near], [g])
    assert only_match(report).event_id == "near"
    assert "already matched" in event_reasons(report)["far"]


def test_two_way_event_never_matches_a_game_with_tie():
    ev = event("Arsenal", "Leeds United", "2026-10-10T14:00:00Z", sport="soccer_epl")
    g = game("KXEPLGAME-26OCT10ARSLEE", ("ARS", "LEE", "TIE"), "2026-10-10T14:00:00Z")
    report = match_games([ev], [g])
    assert report.matched == ()
    assert "2-way event" in event_reasons(report)["ev1"]


def test_same_codes_in_another_league_do_not_match():
    # PHI/DET exist in NBA and NFL; the series decides
    ev = event("Philadelphia 76ers", "Detroit Pistons", "2026-11-01T23:00:00Z")
    g = game("KXNFLGAME-26NOV01DETPHI", ("DET", "PHI"), "2026-11-01T23:00:00Z")
    report = match_games([ev], [g])
    assert report.matched == ()
    assert "no KXNBAGAME game lists both teams" in event_reasons(report)["ev1"]


def test_game_with_a_third_team_does_not_match():
    ev = event("Cleveland Cavaliers", "New York Knicks", "2026-05-25T23:00:00Z")
    g = game("KXNBAGAME-26MAY25NYKCLE", ("NYK", "CLE", "BOS"), "2026-05-25T23:00:00Z")
    report = match_games([ev], [g])
    assert report.matched == ()
    game_reason = next(u.reason for u in report.unmatched if u.event_ticker == g.event_ticker)
    assert "3 team market(s)" in game_reason


def test_sport_without_series_or_aliases_is_reported():
    report = match_games(
        [
            event("A", "B", "2026-05-25T23:00:00Z", sport="soccer_xyz", event_id="x"),
            event("Israel Adesanya", "Robert Whittaker", "2026-05-25T23:00:00Z",
                  sport="mma_mixed_martial_arts", event_id="mma"),
            event("A", "B", "2026-05-25T23:00:00Z", sport=None, event_id="none"),
            event("Cleveland Cavaliers", "New York Knicks", None, event_id="notime"),
        ],
        [],
    )
    reasons = event_reasons(report)
    assert reasons["x"] == "sport key soccer_xyz has no Kalshi series"
    assert "no team alias table for mma_mixed_martial_arts" in reasons["mma"]
    assert reasons["none"] == "event has no sport key"
    assert "no commence time" in reasons["notime"]


def test_unknown_kalshi_code_is_named_in_game_reason():
    g = game("KXNBAGAME-26MAY25NYKXYZ", ("NYK", "XYZ"), "2026-05-25T23:00:00Z")
    report = match_games([], [g])
    assert report.unmatched[0].event_ticker == g.event_ticker
    assert "XYZ not in the basketball_nba alias table" in report.unmatched[0].reason


def test_game_in_unknown_series_is_reported():
    g = game("KXFOOGAME-26MAY25AAABBB", ("AAA", "BBB"), None)
    report = match_games([], [g])
    assert report.unmatched[0].reason == "series KXFOOGAME has no Odds API sport key"


def test_three_way_event_prices_a_two_way_listing_without_its_draw():
    """A soccer game listed without a TIE market (a draw settles both NO, issue 10 item 8): the
    team markets take their own outcomes' probabilities; the draw maps to no market."""
    ev = event("Arsenal", "Leeds United", "2026-10-10T14:00:00Z", sport="soccer_epl", three_way=True)
    g = game("KXEPLGAME-26OCT10ARSLEE", ("ARS", "LEE"), "2026-10-10T14:00:00Z")
    m = only_match(match_games([ev], [g]))
    assert m.outcome_markets == {
        "Arsenal": "KXEPLGAME-26OCT10ARSLEE-ARS",
        "Leeds United": "KXEPLGAME-26OCT10ARSLEE-LEE",
    }
