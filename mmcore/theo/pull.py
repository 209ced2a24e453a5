"""The odds pull: The Odds API → parse → consensus → match to Kalshi games → theo snapshots.

Two entry points share one pricing path (:func:`price_payload`):

- :func:`pull_odds` — the **recorded** pull the scheduled task runs every 30 minutes, and for one
  game on demand (``event_ticker``). It takes its games from the calendar
  (:mod:`mmcore.calendar`), makes one paid request per sport with games ahead (the client sends
  ≤ 10 bookmakers incl. Pinnacle, so each costs 1 credit) or one event-odds request for that
  game's matched Odds API event, and records everything (below).
- :func:`pull_theos` — the unrecorded pull of the demo and the test kits: given sports and games,
  publish snapshots; nothing else is written.

What :func:`pull_odds` writes under ``data_dir`` (one run = one call, id ``odds-<now_ns>`` or
``odds-<now_ns>-<event_ticker>``; each request has a ``pull_id``, ``<run id>-<sport_key>`` for
sport pulls and the run id itself for a game pull):

- ``record/raw_odds/<pull_id>.json`` — the response as received, atomically:
  ``{"pull_id", "url" (no key), "fetched_ns", "quota": {"remaining", "used", "last"},
  "payload": <the API's JSON>}``;
- record tables (one Parquet file per table, named by the run id): ``odds_pulls`` (one row per
  request, or per request skipped: ``status`` ``ok`` | ``paused`` | ``error`` with ``detail``;
  credits from the usage headers; ``raw_path`` relative to ``record/``), ``book_prices``,
  ``theos``, ``theo_snapshots`` (:mod:`mmcore.theo.rows`);
- ``theo/<event_ticker>.json`` — the per-game snapshots the workers read
  (:mod:`mmcore.theo.snapshot`).

Quota floor: before each paid request the last known remaining credits (the client's, else read
for free from ``GET /v4/sports``) are compared with ``min_quota_remaining``; below it, or once the
API said ``OUT_OF_USAGE_CREDITS``, no paid request is made and the row says ``paused``.

Errors: a failed request is recorded (``error``) and listed in the report; the other requests go
on. Only when every request attempted failed (nothing at all was done) is the first error raised,
after recording — so a scheduler retries transient failures. Asking for a game that is not in the
calendar, or has no matched Odds API event, is an :class:`~mmcore.errors.InputError`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mmcore.atomicfile import write_json_atomic
from mmcore.calendar import Calendar, CalendarGame
from mmcore.errors import InputError, MMError, QuotaExhaustedError
from mmcore.models import ns_to_iso
from mmcore.odds.consensus import ConsensusParams, EventTheo, consensus_theo
from mmcore.odds.events import EventOdds, Rejection
from mmcore.odds.parse import parse_odds
from mmcore.odds.teams import KalshiGame, MatchReport, match_games
from mmcore.record.store import record_root, write_rows
from mmcore.theo import rows as R
from mmcore.theo.snapshot import TheoSnapshot, snapshots_from, theo_dir, write_snapshot
from mmcore.venues.oddsapi import OddsApiClient, OddsPull, Quota

log = logging.getLogger(__name__)

RAW_DIRNAME = "raw_odds"
Status = str  # "ok" | "paused" | "error"


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One Odds API request of a pull (or one skipped), as recorded in ``odds_pulls``."""

    pull_id: str
    scope: str
    """``sport`` (``/odds``) or ``event`` (event odds of one game)."""
    sport_key: str
    event_id: str | None
    status: Status
    detail: str = ""
    url: str | None = None
    fetched_ns: int | None = None
    events: int = 0
    priced: int = 0
    snapshots: int = 0
    credits_remaining: int | None = None
    credits_used: int | None = None
    credits_last: int | None = None
    raw_path: str | None = None

    def row(self) -> dict[str, Any]:
        return {"pull_id": self.pull_id, "scope": self.scope, "sport_key": self.sport_key,
                "event_id": self.event_id, "fetched_ns": self.fetched_ns, "url": self.url,
                "events": self.events, "priced": self.priced, "snapshots": self.snapshots,
                "credits_remaining": self.credits_remaining, "credits_used": self.credits_used,
                "credits_last": self.credits_last, "status": self.status, "detail": self.detail,
                "raw_path": self.raw_path}


@dataclass(slots=True)
class PullReport:
    sports: list[str] = field(default_factory=list)
    events: int = 0
    priced: int = 0
    snapshots: list[TheoSnapshot] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)
    """``event_id: why`` for each parsed event the consensus could not price (e.g. too few
    usable books once the stale, missing and outlying ones are dropped): no theo this pull."""
    credits_remaining: int | None = None
    run_id: str = ""
    """``odds-<now_ns>[-<event_ticker>]`` (recorded pulls only)."""
    requests: list[RequestRecord] = field(default_factory=list)
    paused: bool = False
    """True when the quota floor (or exhausted credits) stopped at least one paid request."""
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every request made succeeded and none was paused."""
        return not self.paused and not self.errors

    def summary(self) -> dict[str, Any]:
        """JSON-friendly counts (a flow's return value)."""
        return {"run_id": self.run_id, "sports": list(self.sports),
                "requests": {s: sum(r.status == s for r in self.requests)
                             for s in ("ok", "paused", "error")},
                "events": self.events, "priced": self.priced, "snapshots": len(self.snapshots),
                "unmatched": len(self.unmatched), "unpriced": len(self.unpriced),
                "credits_remaining": self.credits_remaining,
                "paused": self.paused, "errors": list(self.errors)}

    def lines(self) -> list[str]:
        """For a log: the one-line text, then each request, each unpriced and each unmatched item."""
        out = [self.text()]
        out += [f"{r.pull_id}: {r.status} {r.sport_key}{'/' + r.event_id if r.event_id else ''}: "
                f"{r.events} event(s), {r.snapshots} snapshot(s), credits last={r.credits_last} "
                f"left={r.credits_remaining}" + (f" ({r.detail})" if r.detail else "")
                for r in self.requests]
        out += [f"unpriced {u}" for u in self.unpriced]
        out += [f"unmatched {u}" for u in self.unmatched]
        return out

    def snapshot_rows(self) -> list[dict[str, Any]]:
        """One row per published market theo (probabilities; ``as_of`` ISO UTC)."""
        return [{"event_ticker": s.event_ticker, "market": m, "theo": round(p, 4),
                 "uncertainty": round(s.uncertainty.get(m, 0.0), 4),
                 "confidence": round(s.confidence, 3), "as_of": ns_to_iso(s.as_of_ns),
                 "source": s.source}
                for s in self.snapshots for m, p in sorted(s.markets.items())]

    def text(self) -> str:
        credits = "?" if self.credits_remaining is None else str(self.credits_remaining)
        text = (f"{len(self.requests)} request(s) for {', '.join(self.sports) or 'nothing'}: "
                f"{self.events} event(s), {self.priced} priced"
                + (f" ({len(self.unpriced)} not)" if self.unpriced else "")
                + f", {len(self.snapshots)} snapshot(s), "
                f"{len(self.unmatched)} unmatched; {credits} credits left")
        if self.paused:
            text += "; PAUSED: " + "; ".join(r.detail for r in self.requests if r.status == "paused")
        if self.errors:
            text += "; errors: " + "; ".join(self.errors)
        return text


# --- pricing (shared) -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Priced:
    """One payload priced and matched: every parsed event's theo and the snapshots it makes."""

    events: tuple[EventOdds, ...]
    rejections: tuple[Rejection, ...]
    theos: tuple[EventTheo, ...]
    matches: MatchReport
    snapshots: tuple[TheoSnapshot, ...]


def price_payload(payload: Any, fetched_ns: int, games: Sequence[KalshiGame],
                  params: ConsensusParams) -> Priced:
    """Parse, take the consensus of each event at ``fetched_ns``, match to ``games`` and build
    one snapshot per matched, priced game (pure)."""
    parsed = parse_odds(payload)
    theos = tuple(consensus_theo(ev, fetched_ns, params) for ev in parsed.events)
    matches = match_games(parsed.events, games)
    snaps = tuple(snapshots_from(theos, matches.matched, fetched_ns, params.method))
    return Priced(parsed.events, parsed.rejections, theos, matches, snaps)


def _note(report: PullReport, priced: Priced) -> None:
    report.events += len(priced.events)
    report.priced += sum(t.theo is not None for t in priced.theos)
    report.rejections += [f"{r.event_id}:{r.book or '-'}: {r.reason}" for r in priced.rejections]
    report.unpriced += [_why_unpriced(t) for t in priced.theos if t.theo is None]
    report.unmatched += [f"{u.event_id or u.event_ticker}: {u.reason}" for u in priced.matches.unmatched]


def _why_unpriced(t: EventTheo) -> str:
    why = f"{t.event_id}: {t.reason or 'no theo'}"
    if t.dropped:
        why += " (dropped: " + "; ".join(f"{r.book}: {r.reason}" for r in t.dropped) + ")"
    return why


async def pull_theos(
    client: OddsApiClient,
    sports: Sequence[str],
    games: Iterable[KalshiGame],
    directory: Path,
    *,
    params: ConsensusParams = ConsensusParams(),
    event_id: str | None = None,
) -> PullReport:
    """Pull each sport (or one event with ``event_id``, for the first sport), compute theos,
    match them to ``games`` and publish one snapshot per matched game into ``directory``.
    Unrecorded, no quota floor beyond the client's own; errors are raised."""
    report = PullReport(sports=list(sports))
    games = list(games)
    for sport in sports:
        pull = await (client.event_odds(sport, event_id) if event_id else client.odds(sport))
        report.credits_remaining = pull.quota.remaining
        priced = price_payload(pull.payload, pull.fetched_ns, games, params)
        _note(report, priced)
        for snap in priced.snapshots:
            write_snapshot(directory, snap)
            report.snapshots.append(snap)
        if event_id:
            break
    log.info("odds pull: %d events, %d priced, %d snapshots, %d unmatched",
             report.events, report.priced, len(report.snapshots), len(report.unmatched))
    for why in report.unpriced:
        log.warning("odds pull: no theo for %s", why)
    return report


# --- the recorded pull ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    pull_id: str
    scope: str
    sport_key: str
    event_id: str | None
    games: tuple[CalendarGame, ...]
    """The calendar games this request prices."""


def plan_requests(calendar: Calendar, now_ns: int, run_id: str,
                  event_ticker: str | None = None) -> list[PlannedRequest]:
    """The requests of one pull (pure): one per sport with games not yet started, or the one
    event-odds request of ``event_ticker`` (InputError if it is not in the calendar, already
    started, or has no matched Odds API event)."""
    if event_ticker is not None:
        game = calendar.game(event_ticker)
        if game is None:
            raise InputError(f"{event_ticker} is not in the calendar {calendar.refresh_id} "
                             f"(refresh the calendar first)")
        if game.odds_event_id is None:
            raise InputError(f"{event_ticker} has no matched Odds API event: {game.match_reason}")
        if game.start_ns < now_ns:
            raise InputError(f"{event_ticker} has already started; no pre-game theo to pull")
        return [PlannedRequest(run_id, "event", game.sport_key, game.odds_event_id, (game,))]
    ahead = [g for g in calendar.games if g.start_ns >= now_ns]
    return [PlannedRequest(f"{run_id}-{sport}", "sport", sport, None,
                           tuple(g for g in ahead if g.sport_key == sport))
            for sport in sorted({g.sport_key for g in ahead})]


async def pull_odds(
    odds: OddsApiClient,
    calendar: Calendar,
    data_dir: Path,
    now_ns: int,
    *,
    event_ticker: str | None = None,
    min_quota_remaining: int,
    params: ConsensusParams = ConsensusParams(),
) -> PullReport:
    """The recorded pull (see the module docstring): theos for the calendar's games not started
    by ``now_ns`` (ns), or for ``event_ticker`` alone; ``min_quota_remaining`` in credits."""
    run_id = f"odds-{now_ns}" + (f"-{event_ticker}" if event_ticker else "")
    plan = plan_requests(calendar, now_ns, run_id, event_ticker)
    report = PullReport(sports=[p.sport_key for p in plan], run_id=run_id)
    if "pinnacle" not in odds.bookmakers:
        log.warning("odds pull without pinnacle: the consensus falls back to the median of books")
    rows: dict[str, list[dict[str, Any]]] = {"book_prices": [], "theos": [], "theo_snapshots": []}
    first_error: MMError | None = None
    for req in plan:
        rec, error = await _request(odds, req, data_dir, now_ns, min_quota_remaining, params,
                                    report, rows)
        report.requests.append(rec)
        if rec.status == "paused":
            report.paused = True
        elif rec.status == "error":
            report.errors.append(f"{req.pull_id}: {rec.detail}")
            first_error = first_error or error
    report.credits_remaining = odds.quota.remaining
    _write_record(data_dir, run_id, report, rows)
    log.info("odds pull %s: %s", run_id, report.text())
    attempted = [r for r in report.requests if r.status != "paused"]
    if first_error is not None and all(r.status == "error" for r in attempted):
        raise first_error
    return report


async def _known_remaining(odds: OddsApiClient) -> int | None:
    """The client's last known remaining credits; if it has none yet, read them for free."""
    if odds.quota.remaining is None:
        try:
            await odds.sports()
        except MMError as exc:
            log.warning("could not read the Odds API quota (free /v4/sports): %s", exc)
    return odds.quota.remaining


async def _request(odds: OddsApiClient, req: PlannedRequest, data_dir: Path, now_ns: int,
                   floor: int, params: ConsensusParams, report: PullReport,
                   rows: dict[str, list[dict[str, Any]]]) -> tuple[RequestRecord, MMError | None]:
    base = RequestRecord(req.pull_id, req.scope, req.sport_key, req.event_id, "ok",
                         fetched_ns=now_ns)
    remaining = await _known_remaining(odds)
    why_paused = None
    if odds.exhausted:
        why_paused = "Odds API credits exhausted (OUT_OF_USAGE_CREDITS): no paid request until reset"
    elif remaining is not None and remaining < floor:
        why_paused = (f"quota floor: {remaining} credits left < min_quota_remaining {floor}; "
                      "no paid request made")
    if why_paused is not None:
        return _with(base, status="paused", detail=why_paused, credits_remaining=remaining), None
    before = odds.quota
    try:
        if req.scope == "event":
            assert req.event_id is not None
            pull = await odds.event_odds(req.sport_key, req.event_id)
        else:
            pull = await odds.odds(req.sport_key)
    except QuotaExhaustedError as exc:  # the client's own floor, or the API said so
        return _with(base, status="paused", detail=f"quota: {exc}",
                     **_credits(odds.quota if odds.quota is not before else None)), None
    except MMError as exc:
        return _with(base, status="error", detail=f"{type(exc).__name__}: {exc}",
                     **_credits(odds.quota if odds.quota is not before else None)), exc
    raw_rel = f"{RAW_DIRNAME}/{req.pull_id}.json"
    write_json_atomic(record_root(data_dir) / raw_rel, _raw_envelope(req.pull_id, pull))
    priced = price_payload(pull.payload, pull.fetched_ns, [g.kalshi_game() for g in req.games],
                           params)
    _note(report, priced)
    for snap in priced.snapshots:
        write_snapshot(theo_dir(data_dir), snap)
        report.snapshots.append(snap)
    by_id = {e.event_id: e for e in priced.events}
    for ev, theo in zip(priced.events, priced.theos, strict=True):
        rows["book_prices"] += R.book_price_rows(req.pull_id, ev, theo, pull.fetched_ns)
        rows["theos"] += R.theo_rows(req.pull_id, theo, pull.fetched_ns, params.method)
    rows["book_prices"] += R.rejection_rows(req.pull_id, req.sport_key, priced.rejections, by_id)
    for snap in priced.snapshots:
        rows["theo_snapshots"] += R.snapshot_rows(req.pull_id, snap)
    return _with(base, url=pull.url, fetched_ns=pull.fetched_ns, events=len(priced.events),
                 priced=sum(t.theo is not None for t in priced.theos),
                 snapshots=len(priced.snapshots), raw_path=raw_rel, **_credits(pull.quota)), None


def _with(rec: RequestRecord, **changes: Any) -> RequestRecord:
    return replace(rec, **changes)


def _credits(quota: Quota | None) -> dict[str, int | None]:
    if quota is None:
        return {}
    return {"credits_remaining": quota.remaining, "credits_used": quota.used,
            "credits_last": quota.last}


def _raw_envelope(pull_id: str, pull: OddsPull) -> dict[str, Any]:
    q = pull.quota
    return {"pull_id": pull_id, "url": pull.url, "fetched_ns": pull.fetched_ns,
            "quota": {"remaining": q.remaining, "used": q.used, "last": q.last},
            "payload": pull.payload}


def _write_record(data_dir: Path, run_id: str, report: PullReport,
                  rows: dict[str, list[dict[str, Any]]]) -> None:
    root = record_root(data_dir)
    if report.requests:
        write_rows(root, "odds_pulls", run_id, [r.row() for r in report.requests])
    for table, table_rows in rows.items():
        if table_rows:
            write_rows(root, table, run_id, table_rows)
