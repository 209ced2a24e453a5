"""The Odds API client against the real local odds server on a loopback port (no mocked transport).

Retries use an injected sleep that records the delays (and may move the server's clock), so no
test waits real seconds.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from clocks import ManualClock, Sleeps
from mmcore.errors import (
    AuthError, InputError, InvalidRequestError, MalformedPayloadError, NotFoundError,
    QuotaExhaustedError, RateLimitedError, VenueTimeoutError, VenueUnavailableError,
)
from mmcore.models import OddsSport, iso_to_ns
from mmcore.settings import DEFAULT_BOOKMAKERS, Settings
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServer, OddsServerConfig
from mmcore.venues.oddsapi import OddsApiClient, Quota

KEY = "s3cret-test-key-0123456789"
T0 = iso_to_ns("2026-01-10T17:00:30Z")
BOOKS = DEFAULT_BOOKMAKERS  # the 10 default books


@pytest.fixture
def start() -> Iterator[Callable[..., OddsServer]]:
    started: list[OddsServer] = []

    def _start(clock: ManualClock | None = None, **cfg: Any) -> OddsServer:
        cfg.setdefault("api_key", KEY)
        cfg.setdefault("rate_per_s", 1000.0)
        srv = OddsServer(OddsServerConfig(**cfg), clock_ns=clock or ManualClock(T0))
        started.append(srv.start())
        return srv

    yield _start
    for srv in started:
        srv.stop()


@pytest.fixture
def srv(start: Callable[..., OddsServer]) -> OddsServer:
    return start()


class Wire:
    """httpx event hooks on a real client: what actually went over the socket."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    async def on_request(self, request: httpx.Request) -> None:
        self.requests.append(request)

    async def on_response(self, response: httpx.Response) -> None:
        self.responses.append(response)


@pytest.fixture
async def wire() -> AsyncIterator[tuple[Wire, httpx.AsyncClient]]:
    w = Wire()
    hooks = {"request": [w.on_request], "response": [w.on_response]}
    async with httpx.AsyncClient(event_hooks=hooks) as http:  # httpx's own default headers
        yield w, http


def client(srv: OddsServer, **kw: Any) -> OddsApiClient:
    kw.setdefault("sleep", Sleeps())
    kw.setdefault("rng", random.Random(0))
    return OddsApiClient(srv.url, kw.pop("api_key", KEY), bookmakers=kw.pop("bookmakers", BOOKS),
                         **kw)


# --- happy path ---------------------------------------------------------------------------


async def test_sports_is_free_and_reads_the_quota(srv: OddsServer) -> None:
    async with client(srv, clock_ns=lambda: 42) as api:
        sports = await api.sports()
        assert [s.key for s in sports] == ["basketball_nba", "icehockey_nhl", "soccer_epl"]
        assert all(isinstance(s, OddsSport) and s.active for s in sports)
        assert api.quota == Quota(remaining=500, used=0, last=0, observed_ns=42)
        assert len(await api.sports(all=True)) > 3


async def test_odds_returns_raw_payload_quota_and_keyless_url(srv: OddsServer, wire) -> None:
    w, http = wire
    async with client(srv, client=http, clock_ns=lambda: 7) as api:
        pull = await api.odds("basketball_nba")
    assert isinstance(pull.payload, list) and len(pull.payload) == 4
    assert pull.quota == Quota(remaining=499, used=1, last=1, observed_ns=7) == api.quota
    assert pull.fetched_ns == 7
    sent = w.requests[-1].url.params
    assert sent["apiKey"] == KEY
    assert sent["bookmakers"] == ",".join(BOOKS)
    assert (sent["markets"], sent["oddsFormat"], sent["dateFormat"]) == ("h2h", "decimal", "iso")
    books = {b["key"] for ev in pull.payload for b in ev["bookmakers"]}
    assert books <= set(BOOKS) and "pinnacle" in books
    assert KEY not in pull.url and "apiKey" not in pull.url
    assert pull.url.startswith(srv.url + "/v4/sports/basketball_nba/odds?bookmakers=pinnacle")


async def test_odds_filters_are_sent(srv: OddsServer, wire) -> None:
    w, http = wire
    game = srv.sim.slate[0]
    async with client(srv, client=http) as api:
        pull = await api.odds(game.sport_key, event_ids=[game.event_id],
                              commence_from_ns=game.commence_ns - 60 * 10**9,
                              commence_to_ns=game.commence_ns + 60 * 10**9)
    assert [ev["id"] for ev in pull.payload] == [game.event_id]
    assert w.requests[-1].url.params["eventIds"] == game.event_id


def test_more_than_ten_books_or_none_are_refused() -> None:
    eleven = [*BOOKS, "mybookieag"]
    with pytest.raises(InputError, match="at most 10"):
        OddsApiClient("http://127.0.0.1:1", KEY, bookmakers=eleven)
    with pytest.raises(InputError):
        OddsApiClient("http://127.0.0.1:1", KEY, bookmakers=[])


async def test_gzip_is_negotiated(srv: OddsServer, wire) -> None:
    w, http = wire
    async with client(srv, client=http) as api:
        pull = await api.odds("soccer_epl")
    resp = w.responses[-1]
    assert resp.request.headers["accept-encoding"] == "gzip"  # ours, not httpx's default
    assert resp.headers["content-encoding"] == "gzip"
    assert len(pull.payload) == 4


async def test_event_odds_returns_one_dict_and_404_for_unknown(srv: OddsServer) -> None:
    game = srv.sim.slate[2]
    async with client(srv) as api:
        pull = await api.event_odds(game.sport_key, game.event_id)
        assert isinstance(pull.payload, dict) and pull.payload["id"] == game.event_id
        assert pull.payload["home_team"] == game.home_team
        with pytest.raises(NotFoundError) as info:
            await api.event_odds(game.sport_key, "f" * 32)
    assert info.value.status == 404 and info.value.code == "EVENT_NOT_FOUND"


# --- refusals -----------------------------------------------------------------------------


async def test_invalid_key_is_an_auth_error_not_retried(srv: OddsServer) -> None:
    sleeps = Sleeps()
    async with client(srv, api_key="wrong", sleep=sleeps) as api:
        with pytest.raises(AuthError) as info:
            await api.odds("basketball_nba")
    assert type(info.value) is AuthError
    assert (info.value.status, info.value.code) == (401, "INVALID_KEY")
    assert srv.sim.requests == 1 and sleeps.delays == []


async def test_out_of_credits_is_sticky_and_stops_requests(start) -> None:
    srv = start(credits=1)
    async with client(srv) as api:
        await api.odds("basketball_nba")
        with pytest.raises(QuotaExhaustedError) as info:
            await api.odds("icehockey_nhl")
        assert info.value.code == "OUT_OF_USAGE_CREDITS" and api.exhausted
        before = srv.sim.requests
        with pytest.raises(QuotaExhaustedError):
            await api.odds("soccer_epl")
        with pytest.raises(QuotaExhaustedError):
            await api.event_odds("soccer_epl", srv.sim.slate[0].event_id)
        assert srv.sim.requests == before, "refused without a request"
        await api.sports()  # free calls still go through
        assert srv.sim.requests == before + 1


async def test_min_quota_floor_refuses_without_a_request(start) -> None:
    srv = start(credits=3)
    async with client(srv, min_quota_remaining=5) as api:
        await api.odds("basketball_nba")  # quota unknown yet: allowed
        assert api.quota.remaining == 2
        before = srv.sim.requests
        with pytest.raises(QuotaExhaustedError, match="below the floor"):
            await api.odds("basketball_nba")
        assert srv.sim.requests == before and not api.exhausted


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [({"markets": "btts"}, "INVALID_MARKET"), ({"odds_format": "fractional"}, "INVALID_ODDS_FORMAT")],
)
async def test_422_is_an_invalid_request_with_its_code(srv: OddsServer, kwargs, code) -> None:
    async with client(srv) as api:
        with pytest.raises(InvalidRequestError) as info:
            await api.odds("basketball_nba", **kwargs)
    assert (info.value.status, info.value.code) == (422, code)
    assert srv.sim.requests == 1


async def test_unknown_bookmaker_is_422(srv: OddsServer) -> None:
    async with client(srv, bookmakers=["pinnacle", "circa"]) as api:
        with pytest.raises(InvalidRequestError) as info:
            await api.odds("basketball_nba")
    assert info.value.code == "INVALID_BOOKMAKERS"


async def test_unknown_sport_is_not_found(srv: OddsServer) -> None:
    async with client(srv) as api:
        with pytest.raises(NotFoundError) as info:
            await api.odds("curling_world")
    assert info.value.code == "UNKNOWN_SPORT"


async def test_wrong_top_level_type_is_malformed(srv: OddsServer) -> None:
    srv.sim.faults.fail_next(200)  # a 200 whose body is an error object, not a list
    async with client(srv) as api:
        with pytest.raises(MalformedPayloadError, match="expected a JSON list"):
            await api.odds("basketball_nba")


async def test_non_json_200_is_malformed(srv: OddsServer) -> None:
    srv.sim.faults.fail_next(200, body="<html>maintenance</html>")
    async with client(srv) as api:
        with pytest.raises(MalformedPayloadError, match="not JSON"):
            await api.odds("basketball_nba")


async def test_non_json_error_body_is_read_leniently(srv: OddsServer) -> None:
    srv.sim.faults.fail_next(502, n=10, body="Bad Gateway")
    async with client(srv, max_retries=0) as api:
        with pytest.raises(VenueUnavailableError) as info:
            await api.odds("basketball_nba")
    assert (info.value.status, info.value.code, str(info.value)) == (
        502, None, "Bad Gateway status=502")


# --- retries ------------------------------------------------------------------------------


async def test_429_is_retried_with_exponential_backoff_then_raised(start) -> None:
    clock = ManualClock(T0)  # frozen: the bucket never refills
    srv = start(clock, rate_per_s=1.0)
    sleeps = Sleeps()
    async with client(srv, sleep=sleeps, max_retries=3, backoff_s=0.5) as api:
        await api.sports()  # takes the only token
        with pytest.raises(RateLimitedError) as info:
            await api.odds("basketball_nba")
    assert info.value.code == "EXCEEDED_FREQ_LIMIT"
    assert srv.sim.requests == 1 + 4  # first try + 3 retries
    d = sleeps.delays
    assert len(d) == 3
    for i, delay in enumerate(d):
        assert 0.5 * 2**i <= delay <= 0.5 * 2**i * 1.25
    assert all(1.6 <= b / a <= 2.5 for a, b in zip(d, d[1:]))


async def test_429_then_success_once_the_bucket_refills(start) -> None:
    clock = ManualClock(T0)
    srv = start(clock, rate_per_s=1.0)
    sleeps = Sleeps(clock)  # sleeping moves the server's clock
    async with client(srv, sleep=sleeps) as api:
        await api.sports()
        pull = await api.odds("basketball_nba")
    assert len(pull.payload) == 4 and len(sleeps.delays) == 1


async def test_5xx_is_retried_then_succeeds(srv: OddsServer) -> None:
    srv.sim.faults.fail_next(503, n=2)
    sleeps = Sleeps()
    async with client(srv, sleep=sleeps) as api:
        pull = await api.odds("basketball_nba")
    assert len(pull.payload) == 4 and len(sleeps.delays) == 2
    assert srv.sim.requests == 3 and pull.quota.used == 1


async def test_5xx_beyond_max_retries_raises_unavailable(srv: OddsServer) -> None:
    srv.sim.faults.fail_next(502, n=10)
    async with client(srv, max_retries=2) as api:
        with pytest.raises(VenueUnavailableError) as info:
            await api.odds("basketball_nba")
    assert info.value.status == 502 and srv.sim.requests == 3


async def test_connection_refused_is_unavailable_and_retried() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = Sleeps()
    api = OddsApiClient(f"http://127.0.0.1:{port}", KEY, bookmakers=BOOKS, sleep=sleeps,
                        max_retries=2, rng=random.Random(1))
    async with api:
        with pytest.raises(VenueUnavailableError):
            await api.odds("basketball_nba")
    assert len(sleeps.delays) == 2


async def test_no_answer_is_a_timeout_retried_then_raised() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        sleeps = Sleeps()
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        async with OddsApiClient(url, KEY, bookmakers=BOOKS, timeout_s=0.2, max_retries=1,
                                 sleep=sleeps) as api:
            with pytest.raises(VenueTimeoutError):
                await api.odds("basketball_nba")
    assert len(sleeps.delays) == 1


# --- secrecy and settings -----------------------------------------------------------------


async def test_key_never_in_repr_url_or_logs(srv: OddsServer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    async with client(srv) as api:
        assert KEY not in repr(api) and "****" in repr(api)
        pull = await api.odds("basketball_nba")
        with pytest.raises(NotFoundError):
            await api.event_odds("basketball_nba", "0" * 32)
    assert KEY not in pull.url
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "mmcore.venues.oddsapi" in {r.name for r in caplog.records}
    assert "quota remaining=499" in text
    assert KEY not in text


async def test_from_settings_uses_the_sim_server_and_its_key(start, monkeypatch) -> None:
    monkeypatch.delenv("ODDS_API_KEY", raising=False)
    monkeypatch.delenv("MM_ODDS_API_KEY", raising=False)
    srv = start(api_key=SIM_ODDS_API_KEY)
    port = int(srv.url.rsplit(":", 1)[1])
    settings = Settings(_env_file=None, sim_odds_port=port)  # type: ignore[call-arg]
    async with OddsApiClient.from_settings(settings) as api:
        assert api.base_url == srv.url and api.min_quota_remaining == 10
        pull = await api.odds("soccer_epl")
    assert len(pull.payload) == 4
