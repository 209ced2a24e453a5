"""Per-game theo refresh on demand: how a worker whose inventory is skewed hard (news risk) gets a
fresh odds pull for its game within a minute.

Two paths, both started by :meth:`mmcore.worker.driver.FileTheoSource.refresh` when the worker
emits ``RefreshTheo``:

1. **Request files** (always): the worker drops ``<data_dir>/theo/requests/<event_ticker>.json``
   (atomic). An orchestrator (the Prefect path) lists them with :func:`pending_requests`, runs the
   per-game pull (:func:`serve_pending` does both) and removes each with :func:`clear_request`.
2. **In process** (a worker run standalone by ``mm quote`` with an Odds API reachable):
   :func:`make_local_refresher` returns a callback that runs :func:`~mmcore.theo.pull.pull_odds`
   for that one game directly, at most once per ``min_interval_s``.

Either way the new snapshot lands in ``<data_dir>/theo/`` and the worker's snapshot poll picks it
up (every ``theo_poll_s``, 2 s by default).

Request file::

    {"event_ticker": "KXNBAGAME-26MAY25NYKCLE", "requested_ns": 1800000000000000000,
     "first_requested_ns": 1799999990000000000, "count": 2, "reason": "inventory 180 contracts ..."}

``requested_ns`` is the latest request, ``first_requested_ns`` the oldest one not yet served and
``count`` how many were merged into this file. :func:`clear_request` with ``served_up_to_ns``
removes the file only when no newer request came in after the pull began (a request arriving in
the instant between that check and the removal can be lost; the worker asks again after its
cooldown).

Times are integer ns since the epoch; intervals are seconds (``_s``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmcore.atomicfile import read_json, write_json_atomic
from mmcore.errors import InputError, MMError
from mmcore.odds.consensus import ConsensusParams
from mmcore.theo.snapshot import path_for, theo_dir

if TYPE_CHECKING:
    from mmcore.calendar import CalendarGame
    from mmcore.settings import Settings
    from mmcore.theo.pull import PullReport
    from mmcore.venues.oddsapi import OddsApiClient

# The calendar, the odds pull and the Odds API client (and through them DuckDB) are imported
# where a pull runs, not here: every game worker imports this module for write_request and
# Refresher, and pays each import at start-up (issue 11 item 5, 50 workers on one box).

log = logging.getLogger(__name__)

NS = 1_000_000_000
REQUESTS_DIRNAME = "requests"
Refresher = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RefreshRequest:
    event_ticker: str
    requested_ns: int
    first_requested_ns: int
    count: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"event_ticker": self.event_ticker, "requested_ns": self.requested_ns,
                "first_requested_ns": self.first_requested_ns, "count": self.count,
                "reason": self.reason}


def requests_dir(theo_directory: Path) -> Path:
    return theo_directory / REQUESTS_DIRNAME


def _read(path: Path) -> RefreshRequest | None:
    """The request in ``path``; None if it is gone; InputError if it is not a request."""
    raw = read_json(path, "refresh request")
    if raw is None:
        return None
    try:
        return RefreshRequest(str(raw["event_ticker"]), int(raw["requested_ns"]),
                              int(raw.get("first_requested_ns", raw["requested_ns"])),
                              int(raw.get("count", 1)), str(raw.get("reason", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed refresh request {path}: {exc}") from exc


def write_request(theo_directory: Path, event_ticker: str, now_ns: int, reason: str) -> Path:
    """Drop (or refresh) the request file of one game under ``theo_directory/requests``."""
    path = path_for(requests_dir(theo_directory), event_ticker)
    try:
        prior = _read(path)
    except InputError:
        prior = None  # overwrite garbage with a good request
    first = prior.first_requested_ns if prior is not None else now_ns
    count = prior.count + 1 if prior is not None else 1
    req = RefreshRequest(event_ticker, now_ns, min(first, now_ns), count, reason)
    return write_json_atomic(path, req.to_json())


def request_refresh(data_dir: Path, event_ticker: str, now_ns: int, reason: str) -> Path:
    """Ask for a fresh pull of one game: ``<data_dir>/theo/requests/<event_ticker>.json``."""
    return write_request(theo_dir(data_dir), event_ticker, now_ns, reason)


def pending_requests(data_dir: Path) -> list[RefreshRequest]:
    """Every pending request, oldest first. A file that is not a request is skipped (logged)."""
    directory = requests_dir(theo_dir(data_dir))
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            req = _read(path)
        except InputError as exc:
            log.warning("skipping %s", exc)
            continue
        if req is not None:
            out.append(req)
    return sorted(out, key=lambda r: (r.first_requested_ns, r.event_ticker))


def clear_request(data_dir: Path, event_ticker: str, *, served_up_to_ns: int | None = None) -> bool:
    """Remove a game's request (True if removed). With ``served_up_to_ns``, only when its latest
    request is not newer than that (a request that came in during the pull stays pending)."""
    path = path_for(requests_dir(theo_dir(data_dir)), event_ticker)
    if served_up_to_ns is not None:
        try:
            req = _read(path)
        except InputError:
            req = None  # garbage: remove it
        else:
            if req is None:
                return False
            if req.requested_ns > served_up_to_ns:
                return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Served:
    """What :func:`serve_pending` did with one request: the pull's report, or why not."""

    request: RefreshRequest
    report: PullReport | None
    detail: str
    cleared: bool


async def serve_pending(odds: OddsApiClient, data_dir: Path, now_ns: int, *,
                        min_quota_remaining: int,
                        params: ConsensusParams = ConsensusParams()) -> list[Served]:
    """Serve every pending request with a per-game :func:`pull_odds` from the published calendar.

    A request is cleared once its pull succeeded, or when it cannot be served at all (game not in
    the calendar, started, or unmatched: said in ``detail``). It stays pending when the quota floor
    paused the pull or the venue failed (the next call tries again)."""
    from mmcore.calendar import read_calendar
    from mmcore.theo.pull import pull_odds

    calendar = read_calendar(data_dir)
    out: list[Served] = []
    for req in pending_requests(data_dir):
        if calendar is None:
            out.append(Served(req, None, "no calendar published yet", False))
            continue
        try:
            report = await pull_odds(odds, calendar, data_dir, now_ns, event_ticker=req.event_ticker,
                                     min_quota_remaining=min_quota_remaining, params=params)
        except InputError as exc:
            cleared = clear_request(data_dir, req.event_ticker, served_up_to_ns=req.requested_ns)
            out.append(Served(req, None, f"cannot serve: {exc}", cleared))
            log.warning("refresh request for %s dropped: %s", req.event_ticker, exc)
            continue
        except MMError as exc:
            out.append(Served(req, None, f"pull failed: {type(exc).__name__}: {exc}", False))
            continue
        cleared = not report.paused and clear_request(data_dir, req.event_ticker,
                                                      served_up_to_ns=req.requested_ns)
        out.append(Served(req, report, report.text(), cleared))
    return out


def make_local_refresher(
    settings: Settings,
    event_ticker: str,
    *,
    game: CalendarGame | None = None,
    min_interval_s: float = 60.0,
    params: ConsensusParams = ConsensusParams(),
    odds: OddsApiClient | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
) -> Refresher:
    """A callback that pulls odds for ``event_ticker`` in this process (``mm quote`` standalone).

    Each call runs :func:`pull_odds` for the game (one event-odds request, 1 credit, recorded
    under ``settings.data_dir``) with the floor ``settings.odds_min_quota_remaining`` — unless a
    pull ran less than ``min_interval_s`` ago or one is in flight (then it returns at once). The
    game's Odds API event comes from the published calendar, else (with ``game``) from the free
    event list. ``odds`` is a client to use (kept open); by default one is made from settings per
    call. Failures are logged, never raised (the worker goes on with its current theo)."""
    state: dict[str, int | None] = {"last_ns": None}
    lock = asyncio.Lock()

    async def refresh() -> None:
        now = clock_ns()
        last = state["last_ns"]
        if lock.locked() or (last is not None and now - last < min_interval_s * NS):
            log.info("theo refresh of %s skipped: one ran %.0f s ago (min %.0f s)", event_ticker,
                     (now - (last or now)) / NS, min_interval_s)
            return
        async with lock:
            state["last_ns"] = now
            try:
                from mmcore.venues.oddsapi import OddsApiClient

                client = odds or OddsApiClient.from_settings(settings)
                try:
                    report = await _pull_one(client, settings, event_ticker, game, now, params)
                finally:
                    if odds is None:
                        await client.aclose()
            except MMError as exc:
                log.warning("theo refresh of %s failed: %s", event_ticker, exc)
                return
            log.info("theo refresh of %s: %s", event_ticker, report.text())

    return refresh


async def _pull_one(odds: OddsApiClient, settings: Settings, event_ticker: str,
                    game: CalendarGame | None, now_ns: int, params: ConsensusParams) -> PullReport:
    from mmcore.calendar import Calendar, match_one, read_calendar
    from mmcore.theo.pull import pull_odds

    calendar = read_calendar(settings.data_dir)
    entry = calendar.game(event_ticker) if calendar is not None else None
    if calendar is None or entry is None or entry.odds_event_id is None:
        if game is None:
            why = "no calendar" if calendar is None else (
                f"{event_ticker} not in the calendar" if entry is None else entry.match_reason)
            raise InputError(f"cannot refresh {event_ticker}: {why}")
        matched = await match_one(odds, game)
        calendar = Calendar(f"adhoc-{now_ns}", now_ns, 0.0, (matched.sport_key,), (matched,))
    return await pull_odds(odds, calendar, settings.data_dir, now_ns, event_ticker=event_ticker,
                           min_quota_remaining=settings.odds_min_quota_remaining, params=params)
