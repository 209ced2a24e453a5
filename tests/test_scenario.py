"""Scenario files: strict parsing, exact replay, per-game randomness, Kalshi-shaped tickers."""

from __future__ import annotations

import copy
import datetime
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from mmcore.errors import InputError
from mmcore.models import iso_to_ns
from mmcore.odds.events import EventOdds
from mmcore.odds.teams import EASTERN, game_from_markets, match_games, parse_event_ticker
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServerConfig, OddsSim
from mmcore.sim.participants import CompetingMaker, InformedTaker, NoiseTaker
from mmcore.sim.scenario import (
    ResolvedGame, default_scenario, default_scenario_dict, derive_seed, kalshi_tickers,
    load_scenario, resolve_time,
)
from mmcore.ticks import TickGrid

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "scenario-demo.json"
S = 1_000_000_000
NOW = iso_to_ns("2026-11-24T23:00:00Z")  # 18:00 in New York, Nov 24
QUICK = {"step_s": 30.0}


def game(sport: str, home: str, away: str, start_in_s: float = 600.0, **kw: Any) -> dict[str, Any]:
    return {"sport_key": sport, "home_team": home, "away_team": away, "start_in_s": start_in_s, **kw}


NBA = game("basketball_nba", "Boston Celtics", "New York Knicks", true_probs=[0.6, 0.4])
NHL = game("icehockey_nhl", "Toronto Maple Leafs", "Edmonton Oilers", 1200.0)
EPL = game("soccer_epl", "Arsenal", "Chelsea", -600.0)
MLB = game("baseball_mlb", "Chicago Cubs", "Houston Astros", 3600.0)


def scenario(*games: dict[str, Any], seed: int = 42, **kw: Any) -> dict[str, Any]:
    """A fresh (deep-copied) scenario dict: tests may mutate it."""
    return copy.deepcopy({"seed": seed, "games": list(games), "truth": QUICK,
            "participants": {"noise_takers": [{"rate_per_s": 0.1, "count": 2}],
                             "informed_takers": [{"edge_threshold_price": 300, "rate_per_s": 0.02,
                                                  "games": ["soccer_epl"]}],
                             "competing_makers": [{"penny": True, "requote_min_s": 3.0}]},
            **kw})


def by_ticker(games: tuple[ResolvedGame, ...], sport: str) -> ResolvedGame:
    return next(g for g in games if g.sim.sport_key == sport)


def test_example_file_loads() -> None:
    sc = load_scenario(EXAMPLE, NOW)
    assert [g.sim.sport_key for g in sc.games] == ["basketball_nba", "icehockey_nhl", "soccer_epl"]
    nba, nhl, epl = sc.games
    assert nba.event_ticker == "KXNBAGAME-26NOV24NYKBOS"
    assert nba.markets == ("KXNBAGAME-26NOV24NYKBOS-BOS", "KXNBAGAME-26NOV24NYKBOS-NYK")
    assert nba.sim.true_probs == (0.62, 0.38) and nba.start_ns == NOW + 600 * S
    assert nhl.grid == TickGrid.tapered_deci_cent() and nba.grid == TickGrid.linear_cent()
    assert len(epl.markets) == 3 and epl.markets[2].endswith("-TIE") and epl.start_ns < sc.start_ns
    assert epl.truth_params.inplay_jump_logit_sd == 0.6 and nba.truth_params.step_s == 2.0
    assert [f.at_ns for f in sc.faults] == sorted(f.at_ns for f in sc.faults)
    assert sc.faults[0].kind == "ws_disconnect" and sc.faults[0].at_ns == NOW + 300 * S
    assert sc.faults[3].params == {"ticker": nhl.markets[0]}
    assert sc.users["mm"] == 50_000_000
    assert {p.config.user_id for p in epl.participants} > {p.config.user_id for p in nba.participants}
    assert sc.end_ns == max(g.settle_ns for g in sc.games)
    assert nba.fees.fee_type == "quadratic_with_maker_fees"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(sede=1), "sede"),
        (lambda d: d["games"][0].update(colour="red"), "games.0.colour"),
        (lambda d: d["truth"].update(sigma=0.1), "truth.sigma"),
        (lambda d: d["participants"]["noise_takers"][0].update(rate=1), "noise_takers.0.rate"),
        (lambda d: d["participants"].update(whales=[]), "participants.whales"),
        (lambda d: d.update(faults=[{"at_s": 1, "kind": "ws_disconnect", "when": 3}]),
         "faults.0.when"),
    ],
)
def test_unknown_keys_are_refused_with_their_location(mutate, where: str) -> None:
    raw = scenario(NBA)
    mutate(raw)
    with pytest.raises(InputError, match="Extra inputs are not permitted") as err:
        load_scenario(raw, NOW)
    assert where in str(err.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (scenario({**NBA, "start": "2026-11-25T00:30:00Z"}), "exactly one of start_in_s and start"),
        (scenario({k: v for k, v in NBA.items() if k != "start_in_s"}), "exactly one"),
        (scenario({**NBA, "true_probs": [0.3, 0.3, 0.4]}), "2 outcomes"),
        (scenario({**NBA, "fee_type": "cheap"}), "fee_type"),
        (scenario({**NBA, "home_team": "Springfield Isotopes"}), "no Kalshi code"),
        (scenario(NBA, NBA), "share event ticker"),
        (scenario(NBA, faults=[{"at_s": 5, "kind": "meteor"}]), "kind"),
        (scenario(NBA, faults=[{"at_s": 5, "kind": "pause", "params": {"ticker": "KXNOPE"}}]),
         "unknown ticker"),
        (scenario(NBA, faults=[{"at_s": 5, "kind": "pause", "params": {"game": 3}}]), "index"),
        (scenario({**NBA, "start_in_s": -20000.0}), "settles before"),
        (scenario(NBA, start="yesterday"), "ISO-8601"),
    ],
)
def test_bad_scenarios_are_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_scenario(raw, NOW)


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.json"):
        load_scenario(tmp_path / "missing.json", NOW)
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="bad.json"):
        load_scenario(bad, NOW)


def test_same_seed_replays_exactly_and_another_seed_does_not() -> None:
    raw = scenario(NBA, NHL, EPL)
    a = load_scenario(raw, NOW)
    assert a == load_scenario(copy.deepcopy(raw), NOW)
    b = load_scenario({**raw, "seed": 43}, NOW)
    assert [g.event_ticker for g in a.games] == [g.event_ticker for g in b.games]
    assert all(ga.truth != gb.truth for ga, gb in zip(a.games, b.games))
    assert by_ticker(a.games, "icehockey_nhl").sim.true_probs != \
        by_ticker(b.games, "icehockey_nhl").sim.true_probs


def test_each_game_keeps_its_randomness_when_games_are_added_or_reordered() -> None:
    base = load_scenario(scenario(NHL), NOW).games[0]
    for games in ((NHL, EPL), (EPL, NHL), (NBA, EPL, NHL, MLB)):
        other = by_ticker(load_scenario(scenario(*games), NOW).games, "icehockey_nhl")
        assert other == base


def test_participants_are_per_game_with_their_own_seeds() -> None:
    sc = load_scenario(scenario(NBA, EPL), NOW)
    nba, epl = sc.games
    assert [type(p.config) for p in nba.participants] == [NoiseTaker, NoiseTaker, CompetingMaker]
    assert [type(p.config) for p in epl.participants] == \
        [NoiseTaker, NoiseTaker, InformedTaker, CompetingMaker]
    assert [p.config.user_id for p in epl.participants] == \
        ["noise-0-0", "noise-0-1", "informed-0-0", "maker-0-0"]
    maker = nba.participants[-1].config
    assert isinstance(maker, CompetingMaker) and maker.requote_min_ns == 3 * S
    assert maker.estimate_refresh_ns == 30 * S  # the dataclass default, in ns
    seeds = [p.seed for g in sc.games for p in g.participants]
    assert len(set(seeds)) == len(seeds)
    p = nba.participants[0]
    assert p.rng(nba.markets[0]).random() == p.rng(nba.markets[0]).random()
    assert p.rng(nba.markets[0]).random() != p.rng(nba.markets[1]).random()
    assert set(sc.users) == {"mm", "noise-0-0", "noise-0-1", "informed-0-0", "maker-0-0"}


def test_generated_tickers_follow_kalshi_and_match_back_to_the_teams() -> None:
    sc = load_scenario(scenario(NBA, NHL, EPL, MLB), NOW)
    pattern = re.compile(r"^(KX[A-Z]+GAME)-(\d{2})([A-Z]{3})(\d{2})(\d{4})?([A-Z]+)$")
    for g in sc.games:
        found = pattern.fullmatch(g.event_ticker)
        assert found, g.event_ticker
        series, day, rest = parse_event_ticker(g.event_ticker)
        assert series == g.series_ticker
        assert day == datetime.datetime.fromtimestamp(g.start_ns // S, tz=EASTERN).date()
        assert all(m.startswith(g.event_ticker + "-") for m in g.markets)
    nba = by_ticker(sc.games, "basketball_nba")
    assert nba.event_ticker.endswith("NYKBOS")  # away first in US leagues
    epl = by_ticker(sc.games, "soccer_epl")
    assert parse_event_ticker(epl.event_ticker)[2].startswith("ARS")  # home first in soccer
    mlb = by_ticker(sc.games, "baseball_mlb")
    assert parse_event_ticker(mlb.event_ticker)[2].startswith("1900")  # 19:00 ET start

    events = [EventOdds(g.sim.event_id, g.sim.sport_key, g.start_ns, g.sim.home_team,
                        g.sim.away_team, g.sim.outcome_names, ()) for g in sc.games]
    kalshi = [game_from_markets(g.event_ticker, g.markets, g.start_ns) for g in sc.games]
    report = match_games(events, kalshi)
    assert report.unmatched == ()
    for m in report.matched:
        g = sc.game(m.event_ticker)
        assert m.event_id == g.sim.event_id
        assert m.outcome_markets == dict(zip(g.sim.outcome_names, g.markets))


def test_ticker_date_is_the_eastern_date() -> None:
    late = iso_to_ns("2026-11-25T03:30:00Z")  # 22:30 on Nov 24 in New York
    _, event, markets = kalshi_tickers("americanfootball_nfl", "Buffalo Bills", "Detroit Lions", late)
    assert event == "KXNFLGAME-26NOV24DETBUF"
    assert markets == ("KXNFLGAME-26NOV24DETBUF-BUF", "KXNFLGAME-26NOV24DETBUF-DET")


def test_explicit_tickers_are_kept() -> None:
    raw = scenario({**NBA, "event_ticker": "KXNBAGAME-26NOV24NYKBOS"},
                   {**NHL, "event_ticker": "KXNHLGAME-26NOV24EDMTOR",
                    "market_tickers": ["KXNHLGAME-26NOV24EDMTOR-TOR", "KXNHLGAME-26NOV24EDMTOR-EDM"]})
    nba, nhl = load_scenario(raw, NOW).games
    assert nba.markets == ("KXNBAGAME-26NOV24NYKBOS-BOS", "KXNBAGAME-26NOV24NYKBOS-NYK")
    assert nhl.markets[1].endswith("-EDM")
    with pytest.raises(InputError, match="markets"):
        load_scenario(scenario({**NHL, "event_ticker": "KXNHLGAME-26NOV24EDMTOR",
                                "market_tickers": ["KXNHLGAME-26NOV24EDMTOR-TOR"]}), NOW)


def test_times_resolve_against_the_given_now() -> None:
    assert resolve_time("now", NOW) == NOW
    assert resolve_time("now+90", NOW) == NOW + 90 * S
    assert resolve_time("now - 1.5", NOW) == NOW - 1_500_000_000
    assert resolve_time("2026-11-24T23:00:00Z", 0) == NOW
    sc = load_scenario(scenario({**NBA, "start_in_s": None, "start": "2026-11-25T00:30:00Z"},
                                start="now+60"), NOW)
    assert sc.start_ns == NOW + 60 * S
    assert sc.games[0].start_ns == iso_to_ns("2026-11-25T00:30:00Z")
    assert sc.games[0].truth.t0_ns == sc.start_ns


def test_truth_hooks_line_up_with_the_games() -> None:
    sc = load_scenario(scenario(NBA, EPL), NOW)
    fn = sc.truth_fn()
    for g in sc.games:
        t = g.start_ns + 1234 * S
        assert fn(g.sim, t) == g.truth.at(t)
        assert g.yes_prob(g.markets[1], t) == g.truth.at(t)[1]
        assert g.winner_market == g.markets[g.truth.winner]
    assert sc.slate() == [g.sim for g in sc.games]
    assert sc.game(sc.games[1].markets[2]) is sc.games[1]


def test_default_scenario_is_a_small_demo_slate() -> None:
    sc = default_scenario(7, NOW, 4)
    assert [g.sim.sport_key for g in sc.games] == \
        ["basketball_nba", "icehockey_nhl", "soccer_epl", "basketball_nba"]
    assert all(0 < g.start_ns - NOW <= 20 * 60 * S for g in sc.games)
    assert len({g.sim.home_team for g in sc.games} | {g.sim.away_team for g in sc.games}) == 8
    assert all(g.participants for g in sc.games)
    assert sc == default_scenario(7, NOW, 4)
    assert default_scenario_dict(7, 4) != default_scenario_dict(8, 4)


def test_derive_seed_is_stable() -> None:
    assert derive_seed(1, "game", "KXNBAGAME-26NOV24NYKBOS") == \
        derive_seed(1, "game", "KXNBAGAME-26NOV24NYKBOS")
    assert derive_seed(1, "a") != derive_seed(2, "a")
    assert 0 <= derive_seed("x") < 2**64


async def test_odds_server_prices_books_from_the_hidden_path() -> None:
    sc = load_scenario(scenario(NBA), NOW)
    nba = sc.games[0]
    clock = [nba.start_ns + 3000 * S]
    sim = OddsSim(OddsServerConfig(credits=10_000), clock_ns=lambda: clock[0],
                  truth=sc.truth_fn(), slate=sc.slate())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://odds.test") as client:
        reply = await client.get("/v4/sports/basketball_nba/odds", params={
            "apiKey": SIM_ODDS_API_KEY, "regions": "eu", "markets": "h2h"})
    body = reply.json()
    (event,) = body
    assert event["id"] == nba.sim.event_id
    book = next(b for b in event["bookmakers"] if b["key"] == "pinnacle")
    prices = {o["name"]: o["price"] for o in book["markets"][0]["outcomes"]}
    implied = 1 / prices[nba.sim.home_team]
    home = implied / sum(1 / p for p in prices.values())
    truth = nba.truth.at(iso_to_ns(book["last_update"]))[0]
    assert abs(truth - 0.6) > 0.05  # the path has moved away from the opening probability
    assert home == pytest.approx(truth, abs=0.03)
