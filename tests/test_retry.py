"""The shared retry rules (:mod:`mmcore.venues.retry`) and that both REST clients use them.

The schedule is pure: jitter comes in as ``u`` (a fixed value or a seeded ``random.Random``
draw), so every delay is known exactly. The client checks run against a loopback port nobody
listens on (a real connection refused, no mocked transport) with an injected sleep that records
the delays, so no test waits.
"""

from __future__ import annotations

import math
import random
import socket

import pytest

from clocks import Sleeps
from mmcore.errors import (
    AuthError, ConflictError, InputError, InvalidRequestError, InvariantError,
    MalformedPayloadError, NotFoundError, QuotaExhaustedError, RateLimitedError,
    SequenceGapError, VenueTimeoutError, VenueUnavailableError,
)
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.oddsapi import MAX_BACKOFF_S, OddsApiClient
from mmcore.venues.retry import JITTER, backoff_s, should_retry

ALMOST_ONE = 1.0 - 2**-53  # the largest value random.random() can return


def refused_url() -> str:
    with socket.socket() as s:  # bound, never listening: connecting is refused at once
        s.bind(("127.0.0.1", 0))
        return "http://127.0.0.1:%d" % s.getsockname()[1]


def draws(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


# --- the schedule -------------------------------------------------------------------------


def test_jitter_stretches_by_at_most_a_quarter() -> None:
    assert JITTER == 0.25
    for attempt in range(5):
        d = 0.1 * 2**attempt
        assert backoff_s(attempt, base_s=0.1, cap_s=100.0, u=0.0) == pytest.approx(d)
        top = backoff_s(attempt, base_s=0.1, cap_s=100.0, u=ALMOST_ONE)
        assert d * 1.2499 < top <= d * 1.25


def test_exact_value_for_a_given_draw() -> None:
    assert backoff_s(2, base_s=0.1, cap_s=2.0, u=0.5) == pytest.approx(0.1 * 4 * 1.125)
    assert backoff_s(0, base_s=1.0, cap_s=30.0, u=0.2) == pytest.approx(1.05)


def test_seeded_schedule_stays_in_bounds_and_doubles() -> None:
    rng = random.Random(2024)
    for base_s in (0.05, 0.1, 0.5, 1.0):
        delays = [backoff_s(a, base_s=base_s, cap_s=1e9, u=rng.random()) for a in range(8)]
        for a, delay in enumerate(delays):
            assert base_s * 2**a <= delay <= base_s * 2**a * 1.25
        assert all(1.6 <= b / a <= 2.5 for a, b in zip(delays, delays[1:]))


def test_cap_bounds_every_delay() -> None:
    rng = random.Random(7)
    delays = [backoff_s(a, base_s=0.1, cap_s=2.0, u=rng.random()) for a in range(12)]
    assert max(delays) == 2.0 and all(d <= 2.0 for d in delays)
    assert delays[5:] == [2.0] * 7  # 0.1 * 2**5 = 3.2 > 2 whatever the jitter
    assert delays[3] < 2.0  # 0.8..1.0: below the cap, untouched
    assert backoff_s(0, base_s=5.0, cap_s=2.0, u=0.0) == 2.0


def test_floor_raises_the_delay_but_the_cap_wins() -> None:
    assert backoff_s(0, base_s=1.0, cap_s=30.0, u=0.0, floor_s=7.0) == 7.0
    assert backoff_s(0, base_s=1.0, cap_s=30.0, u=0.0, floor_s=0.5) == 1.0  # below: ignored
    assert backoff_s(0, base_s=1.0, cap_s=30.0, u=0.0, floor_s=120.0) == 30.0


def test_zero_base_means_no_wait() -> None:
    assert backoff_s(3, base_s=0.0, cap_s=2.0, u=0.9) == 0.0


# --- the decision -------------------------------------------------------------------------

TRANSIENT = [RateLimitedError("429", status=429), VenueUnavailableError("503", status=503),
             VenueTimeoutError("slow")]
FINAL = [AuthError("401", status=401), QuotaExhaustedError("out", status=401),
         InvalidRequestError("400", status=400), NotFoundError("404", status=404),
         ConflictError("409", status=409), MalformedPayloadError("junk"),
         SequenceGapError("gap"), InvariantError("bug"), InputError("bad"),
         ValueError("not ours"), TimeoutError("builtin, not ours")]


@pytest.mark.parametrize("err", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_errors_are_retried_until_the_limit(err: Exception) -> None:
    assert [should_retry(err, a, 3) for a in range(5)] == [True, True, True, False, False]
    assert not should_retry(err, 0, 0)


@pytest.mark.parametrize("err", FINAL, ids=lambda e: type(e).__name__)
def test_other_errors_are_never_retried(err: Exception) -> None:
    assert not any(should_retry(err, a, 10) for a in range(3))


# --- both clients use it ------------------------------------------------------------------


async def test_kalshi_rest_waits_the_shared_schedule_capped() -> None:
    sleeps = Sleeps()
    async with KalshiRest(refused_url(), None, max_retries=3, backoff_s=1.0, max_backoff_s=1.5,
                          sleep=sleeps, rng=random.Random(11)) as rest:
        with pytest.raises(VenueUnavailableError):
            await rest.get_market("KXNBAGAME-X")
        assert rest.requests == 4 and rest.retries == 3
    expected = [backoff_s(a, base_s=1.0, cap_s=1.5, u=u) for a, u in enumerate(draws(11, 3))]
    assert sleeps.delays == expected
    assert 1.0 <= sleeps.delays[0] <= 1.25 and sleeps.delays[1:] == [1.5, 1.5]


async def test_odds_client_waits_the_shared_schedule_capped() -> None:
    sleeps = Sleeps()
    async with OddsApiClient(refused_url(), "k", bookmakers=("pinnacle",), max_retries=3,
                             backoff_s=10.0, sleep=sleeps, rng=random.Random(5)) as api:
        with pytest.raises(VenueUnavailableError):
            await api.sports()
    expected = [backoff_s(a, base_s=10.0, cap_s=MAX_BACKOFF_S, u=u)
                for a, u in enumerate(draws(5, 3))]
    assert sleeps.delays == expected
    assert 10.0 <= sleeps.delays[0] <= 12.5 and 20.0 <= sleeps.delays[1] <= 25.0
    assert sleeps.delays[2] == MAX_BACKOFF_S == 30.0


async def test_no_retries_means_one_attempt_and_no_wait() -> None:
    sleeps = Sleeps()
    async with KalshiRest(refused_url(), None, max_retries=0, sleep=sleeps) as rest:
        with pytest.raises(VenueUnavailableError):
            await rest.get_market("KXNBAGAME-X")
        assert rest.requests == 1 and rest.retries == 0 and sleeps.delays == []


@pytest.mark.parametrize("bad", [{"backoff_s": math.nan}, {"backoff_s": -1.0},
                                 {"max_backoff_s": math.nan}, {"timeout_s": math.nan}])
def test_kalshi_rest_refuses_bad_retry_settings(bad: dict[str, float]) -> None:
    with pytest.raises(InputError):
        KalshiRest(refused_url(), None, **bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [{"backoff_s": math.nan}, {"backoff_s": -1.0},
                                 {"timeout_s": math.nan}])
def test_odds_client_refuses_bad_retry_settings(bad: dict[str, float]) -> None:
    with pytest.raises(InputError):
        OddsApiClient(refused_url(), "k", bookmakers=("pinnacle",), **bad)  # type: ignore[arg-type]
