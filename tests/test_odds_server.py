"""The local Odds-API-shaped server, over real loopback sockets (no mocked transports)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from statistics import mean
from typing import Any

import httpx
import pytest

from clocks import ManualClock
from mmcore.models import OddsEvent, iso_to_ns
from mmcore.odds.parse import parse_odds
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServer, OddsServerConfig
from mmcore.sim.slate import DEFAULT_BOOKS, SOFT_BOOK_KEYS, SPORTS, make_slate

KEY = SIM_ODDS_API_KEY
T0 = iso_to_ns("2026-01-10T17:00:30Z")
TEN = ",".join(b.key for b in DEFAULT_BOOKS[:10])
ALL = ",".join(b.key for b in DEFAULT_BOOKS)
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


StartFn = Callable[..., OddsServer]


@pytest.fixture
def start() -> Iterator[StartFn]:
    started: list[OddsServer] = []

    def _start(clock: ManualClock | None = None, **cfg: Any) -> OddsServer:
        cfg.setdefault("rate_per_s", 1000.0)
        srv = OddsServer(OddsServerConfig(**cfg), clock_ns=clock or ManualClock(T0))
        started.append(srv.start())
        return srv

    yield _start
    for srv in started:
        srv.stop()


_http: list[httpx.Client] = []


@pytest.fixture(autouse=True, scope="module")
def _one_http_client() -> Iterator[None]:
    """One keep-alive client for the module (creating an httpx client costs ~30 ms)."""
    with httpx.Client(timeout=5) as client:
        _http.append(client)
        yield
        _http.clear()


def get(srv: OddsServer, path: str, **params: str) -> httpx.Response:
    return _http[0].get(srv.url + path, params=params)


def odds(srv: OddsServer, sport: str = "basketball_nba", **params: str) -> httpx.Response:
    params = {"apiKey": KEY, "bookmakers": TEN, **params}
    return get(srv, f"/v4/sports/{sport}/odds", **params)


# --- shape --------------------------------------------------------------------------------


def test_odds_response_has_the_v4_shape(start: StartFn) -> None:
    srv = start()
    for sport in ("basketball_nba", "icehockey_nhl", "soccer_epl"):
        events = odds(srv, sport, bookmakers=ALL).json()
        assert isinstance(events, list) and len(events) == 4
        for ev in events:
            assert set(ev) == {"id", "sport_key", "sport_title", "commence_time", "home_team",
                               "away_team", "bookmakers"}
            assert re.fullmatch(r"[0-9a-f]{32}", ev["id"])
            assert ev["sport_key"] == sport and ev["sport_title"] == SPORTS[sport].title
            assert ISO_Z.match(ev["commence_time"]) and iso_to_ns(ev["commence_time"]) > T0
            OddsEvent.model_validate(ev)
            assert ev["bookmakers"], "every game is priced by some book"
            for book in ev["bookmakers"]:
                assert set(book) == {"key", "title", "last_update", "markets"}
                assert ISO_Z.match(book["last_update"]) and iso_to_ns(book["last_update"]) <= T0
                for m in book["markets"]:
                    assert set(m) == {"key", "last_update", "outcomes"}
                    assert m["key"] in ({"h2h", "h2h_lay"} if book["key"] == "betfair_ex_eu"
                                        else {"h2h"})
                    for o in m["outcomes"]:
                        assert set(o) == {"name", "price"}
        parsed = parse_odds(events)  # the project's own parser accepts every book
        assert parsed.rejections == () and len(parsed.events) == 4


def test_event_odds_is_one_object_with_last_update_only_on_markets(start: StartFn) -> None:
    srv = start()
    first = odds(srv, "soccer_epl").json()[0]
    r = get(srv, f"/v4/sports/soccer_epl/events/{first['id']}/odds", apiKey=KEY, bookmakers=TEN)
    assert r.status_code == 200
    ev = r.json()
    assert isinstance(ev, dict) and ev["id"] == first["id"]
    assert set(ev) == set(first)
    for book in ev["bookmakers"]:
        assert set(book) == {"key", "title", "markets"}
        assert all(ISO_Z.match(m["last_update"]) for m in book["markets"])
    assert [b["key"] for b in ev["bookmakers"]] == [b["key"] for b in first["bookmakers"]]


def test_soccer_is_three_way_with_draw_and_us_sports_two_way(start: StartFn) -> None:
    srv = start()
    for sport, n in (("soccer_epl", 3), ("basketball_nba", 2), ("icehockey_nhl", 2)):
        for ev in odds(srv, sport).json():
            for book in ev["bookmakers"]:
                names = [o["name"] for o in book["markets"][0]["outcomes"]]
                expected = [ev["home_team"], ev["away_team"]] + (["Draw"] if n == 3 else [])
                assert names == expected


def test_prices_above_one_and_booksum_at_least_one(start: StartFn) -> None:
    clock = ManualClock(T0)
    srv = start(clock)
    seen_lay = 0
    for _ in range(5):
        for sport in ("basketball_nba", "icehockey_nhl", "soccer_epl"):
            for ev in odds(srv, sport, bookmakers=ALL).json():
                for book in ev["bookmakers"]:
                    mk = {m["key"]: [o["price"] for o in m["outcomes"]] for m in book["markets"]}
                    assert all(p > 1.0 and round(p, 2) == p for p in mk["h2h"])
                    assert sum(1 / p for p in mk["h2h"]) >= 1.0
                    if "h2h_lay" in mk:
                        seen_lay += 1
                        assert all(lay > back for lay, back in zip(mk["h2h_lay"], mk["h2h"]))
        clock.advance(60)
    assert seen_lay > 0


def test_same_seed_same_prices_and_different_seed_different(start: StartFn) -> None:
    a, b, c = start(seed=11), start(seed=11), start(seed=12)
    body_a = odds(a).json()
    assert odds(a).json() == body_a, "same request in the same minute: same body"
    assert odds(b).json() == body_a, "same seed and clock: same body"
    assert odds(c).json() != body_a


def test_slate_is_deterministic_and_sane() -> None:
    s1, s2 = make_slate(5, T0), make_slate(5, T0)
    assert s1 == s2 and make_slate(6, T0) != s1
    assert len(s1) == 12 and len({g.event_id for g in s1}) == 12
    assert [g.commence_ns for g in s1] == sorted(g.commence_ns for g in s1)
    for sport in ("basketball_nba", "icehockey_nhl", "soccer_epl"):
        teams = [t for g in s1 if g.sport_key == sport for t in (g.home_team, g.away_team)]
        assert len(teams) == len(set(teams)) == 8
    for g in s1:
        assert abs(sum(g.true_probs) - 1.0) < 1e-12 and min(g.true_probs) > 0.0
        if g.sport_key == "soccer_epl":
            assert 0.22 <= g.true_probs[2] <= 0.30


def test_pinnacle_devigged_is_closer_to_truth_than_soft_books(start: StartFn) -> None:
    clock = ManualClock(T0)
    srv = start(clock, seed=3, books=DEFAULT_BOOKS)
    truth = {g.event_id: g.true_probs for g in srv.sim.slate}
    errors: dict[str, list[float]] = {}
    for _ in range(20):
        for sport in ("basketball_nba", "icehockey_nhl", "soccer_epl"):
            for ev in odds(srv, sport, bookmakers="pinnacle,draftkings," + ",".join(SOFT_BOOK_KEYS)).json():
                for book in ev["bookmakers"]:
                    implied = [1 / o["price"] for o in book["markets"][0]["outcomes"]]
                    fair = [q / sum(implied) for q in implied]
                    err = mean(abs(f - t) for f, t in zip(fair, truth[ev["id"]]))
                    errors.setdefault(book["key"], []).append(err)
        clock.advance(60)
    pin = mean(errors["pinnacle"])
    for soft in (*SOFT_BOOK_KEYS, "draftkings"):
        assert pin < mean(errors[soft]), (soft, pin, mean(errors[soft]))
    assert pin < 0.01


# --- errors and quota ---------------------------------------------------------------------


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json() == {
        "message": r.json()["message"],
        "error_code": code,
        "details_url": "https://the-odds-api.com/liveapi/guides/v4/api-error-codes.html#"
        + code.lower(),
    }
    assert r.json()["message"]
    assert r.headers["x-requests-last"] == "0"


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v4/sports/basketball_nba/odds", {"bookmakers": "pinnacle"}, 401, "MISSING_KEY"),
        ("/v4/sports/basketball_nba/odds", {"apiKey": "nope", "bookmakers": "pinnacle"}, 401,
         "INVALID_KEY"),
        ("/v4/sports", {"apiKey": "nope"}, 401, "INVALID_KEY"),
        ("/v4/sports/curling_world/odds", {"apiKey": KEY, "bookmakers": "pinnacle"}, 404,
         "UNKNOWN_SPORT"),
        ("/v4/sports/basketball_nba/odds", {"apiKey": KEY, "bookmakers": "pinnacle",
                                            "markets": "h2h,player_points"}, 422, "INVALID_MARKET"),
        ("/v4/sports/basketball_nba/odds", {"apiKey": KEY}, 422, "MISSING_REGION"),
        ("/v4/sports/basketball_nba/odds", {"apiKey": KEY, "bookmakers": "pinnacle,circa"}, 422,
         "INVALID_BOOKMAKERS"),
        ("/v4/sports/basketball_nba/odds", {"apiKey": KEY, "regions": "mars"}, 422,
         "INVALID_REGION"),
        ("/v4/sports/basketball_nba/events/" + "0" * 32 + "/odds",
         {"apiKey": KEY, "bookmakers": "pinnacle"}, 404, "EVENT_NOT_FOUND"),
    ],
)
def test_error_statuses_and_bodies(
    start: StartFn, path: str, params: dict[str, str], status: int, code: str
) -> None:
    srv = start()
    assert_error(get(srv, path, **params), status, code)
    assert srv.sim.used == 0


def test_out_of_credits_is_401_with_the_real_code(start: StartFn) -> None:
    srv = start(credits=2)
    assert odds(srv).headers["x-requests-remaining"] == "1"
    assert odds(srv).headers["x-requests-remaining"] == "0"
    r = odds(srv)
    assert_error(r, 401, "OUT_OF_USAGE_CREDITS")
    assert r.headers["x-requests-remaining"] == "0" and r.headers["x-requests-used"] == "2"
    assert get(srv, "/v4/sports", apiKey=KEY).status_code == 200  # free calls still answer


def test_rate_limit_is_a_token_bucket_on_the_injected_clock(start: StartFn) -> None:
    clock = ManualClock(T0)
    srv = start(clock, rate_per_s=2.0)
    assert [get(srv, "/v4/sports", apiKey=KEY).status_code for _ in range(3)] == [200, 200, 429]
    assert_error(get(srv, "/v4/sports", apiKey=KEY), 429, "EXCEEDED_FREQ_LIMIT")
    clock.advance(0.5)  # one token back
    assert [get(srv, "/v4/sports", apiKey=KEY).status_code for _ in range(2)] == [200, 429]
    assert srv.sim.requests == 6


def test_usage_headers_fall_by_the_cost(start: StartFn) -> None:
    srv = start(credits=100)

    def cost(r: httpx.Response) -> tuple[int, int, int]:
        assert r.status_code == 200, r.text
        h = r.headers
        return int(h["x-requests-last"]), int(h["x-requests-used"]), int(h["x-requests-remaining"])

    assert cost(get(srv, "/v4/sports", apiKey=KEY)) == (0, 0, 100)
    assert cost(odds(srv)) == (1, 1, 99)  # 1 market × 10 books
    assert cost(odds(srv, bookmakers=ALL)) == (2, 3, 97)  # 12 books = 2 region-equivalents
    assert cost(odds(srv, markets="h2h,spreads,totals")) == (3, 6, 94)
    by_region = get(srv, "/v4/sports/basketball_nba/odds", apiKey=KEY, regions="us,eu")
    assert cost(by_region) == (2, 8, 92)  # 1 market × 2 regions
    assert cost(odds(srv, "americanfootball_nfl")) == (0, 8, 92)  # off the slate: [] is free
    eid = srv.sim.slate[0].event_id
    r = get(srv, f"/v4/sports/{srv.sim.slate[0].sport_key}/events/{eid}/odds", apiKey=KEY,
            bookmakers=TEN)
    assert cost(r) == (1, 9, 91)
    assert srv.sim.remaining == 91


def test_regions_select_books_by_region(start: StartFn) -> None:
    srv = start()
    ev = get(srv, "/v4/sports/basketball_nba/odds", apiKey=KEY, regions="eu").json()[0]
    assert {b["key"] for b in ev["bookmakers"]} <= {"pinnacle", "betfair_ex_eu"}


def test_forced_fault_answers_the_next_requests(start: StartFn) -> None:
    srv = start()
    srv.sim.faults.fail_next(503, n=2)
    assert odds(srv).status_code == 503
    assert odds(srv).json()["error_code"] == "SIMULATED_FAULT"
    assert odds(srv).status_code == 200
    assert srv.sim.used == 1 and srv.sim.requests == 3


def test_gzip_when_asked(start: StartFn) -> None:
    srv = start()
    url, params = srv.url + "/v4/sports/soccer_epl/odds", {"apiKey": KEY, "bookmakers": TEN}
    r = _http[0].get(url, params=params, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and len(r.json()) == 4
    r = _http[0].get(url, params=params, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in r.headers


async def test_async_variant_runs_in_the_current_loop() -> None:
    async with OddsServer(OddsServerConfig(seed=1), clock_ns=ManualClock(T0)) as srv:
        assert srv.url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient() as client:
            r = await client.get(srv.url + "/v4/sports", params={"apiKey": KEY})
        assert r.status_code == 200 and len(r.json()) == 3
