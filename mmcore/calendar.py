"""The game calendar: which Kalshi games start soon, when, under which fees, and which Odds API
event prices each one (or why none does).

:func:`refresh_calendar` (hourly, design §2) reads, per sport, the Kalshi game series
(:func:`~mmcore.odds.teams.series_for_sport`): the series' fee schedule, its open events with
nested markets (tick grids), and each event's start time from its milestone (authoritative; an
estimate from ``expected_expiration_time`` only when there is no milestone). It keeps the games
starting within ``horizon_s``, matches them to the Odds API's free event list
(``GET /v4/sports/{sport}/events``, 0 credits) with :func:`~mmcore.odds.teams.match_games`, and

- appends the record tables ``events`` and ``markets`` (one Parquet file each, named by the
  refresh id ``cal-<now_ns>``; :mod:`mmcore.record.store`);
- publishes the current calendar as ``<data_dir>/calendar.json`` (temp file, fsync, rename), which
  :func:`read_calendar` reads back for the odds pull and the launcher.

The calendar holds exactly the sports of the refresh. A sport whose Kalshi listing fails keeps
the games the previous calendar had for it (still ahead), so an outage never empties the
calendar; when every sport fails, nothing is written and the first error is raised.

``calendar.json``::

    {"version": 1, "refresh_id": "cal-1800000000000000000", "refreshed_ns": 1800000000000000000,
     "horizon_s": 172800.0, "sports": ["basketball_nba", ...],
     "games": [{"event_ticker": "KXNBAGAME-26MAY25NYKCLE", "series_ticker": "KXNBAGAME",
                "sport_key": "basketball_nba", "title": "...",
                "markets": ["KXNBAGAME-26MAY25NYKCLE-CLE", "KXNBAGAME-26MAY25NYKCLE-NYK"],
                "start_ns": 1800003600000000000, "start_source": "milestone",
                "fee_type": "quadratic_with_maker_fees", "fee_multiplier": 1.0,
                "odds_event_id": "<32 hex>" | null, "match_reason": "matched: ..." | "<why not>"},
               ...]}

Games are sorted by start, then ticker. Units: times are integer ns since the epoch (UTC),
durations seconds (``_s``); tick grids in the record are price units ($0.0001).
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mmcore.atomicfile import read_json, write_json_atomic
from mmcore.errors import InputError, MalformedPayloadError, MMError, NotFoundError
from mmcore.game import GameSpec
from mmcore.models import OddsEvent, iso_to_ns, ns_to_iso
from mmcore.odds.events import DRAW, EventOdds, Rejection
from mmcore.odds.parse import clean_name
from mmcore.odds.teams import (
    EASTERN,
    KalshiGame,
    MatchReport,
    Unmatched,
    game_from_markets,
    match_games,
    parse_event_ticker,
    series_for_sport,
)
from mmcore.record.store import record_root, write_rows
from mmcore.venues.kalshi import schema as s
from mmcore.venues.kalshi.rest import KalshiRest, game_length_s, start_from_milestones
from mmcore.venues.oddsapi import OddsApiClient

log = logging.getLogger(__name__)

NS = 1_000_000_000
CALENDAR_FILE = "calendar.json"
CALENDAR_VERSION = 1
DEFAULT_HORIZON_S = 48 * 3600.0
MATCHED = "matched"

# --- the calendar ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalendarGame:
    """One Kalshi game event in the calendar."""

    event_ticker: str
    series_ticker: str
    sport_key: str
    markets: tuple[str, ...]
    """Market tickers (one per team, plus ``-TIE`` for soccer), TIE last."""
    start_ns: int
    """Scheduled start, ns since the epoch."""
    fee_type: str
    """Event override, else the series' ``fee_type``."""
    fee_multiplier: float
    odds_event_id: str | None
    """The matched Odds API event id, or None."""
    match_reason: str
    """``"matched: ..."`` or why no Odds API event was matched."""
    start_source: str = "milestone"
    """``milestone`` (authoritative) or ``expected_expiration`` (an estimate)."""
    title: str = ""

    @property
    def matched(self) -> bool:
        return self.odds_event_id is not None

    def kalshi_game(self) -> KalshiGame:
        """The :class:`KalshiGame` the matcher and the odds pull work with."""
        return game_from_markets(self.event_ticker, self.markets, self.start_ns)

    def to_json(self) -> dict[str, Any]:
        return {"event_ticker": self.event_ticker, "series_ticker": self.series_ticker,
                "sport_key": self.sport_key, "title": self.title, "markets": list(self.markets),
                "start_ns": self.start_ns, "start_source": self.start_source,
                "fee_type": self.fee_type, "fee_multiplier": self.fee_multiplier,
                "odds_event_id": self.odds_event_id, "match_reason": self.match_reason}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> CalendarGame:
        """Strict: a missing or mistyped field raises ``KeyError``/``TypeError``/``ValueError``."""
        odds_id = raw["odds_event_id"]
        if odds_id is not None and not isinstance(odds_id, str):
            raise TypeError(f"odds_event_id must be a string or null, got {odds_id!r}")
        markets = raw["markets"]
        if not isinstance(markets, list) or not all(isinstance(m, str) for m in markets):
            raise TypeError("markets must be a list of market tickers")
        start = raw["start_ns"]
        if not isinstance(start, int) or isinstance(start, bool):
            raise TypeError(f"start_ns must be an integer (ns), got {start!r}")
        return cls(_text(raw, "event_ticker"), _text(raw, "series_ticker"), _text(raw, "sport_key"),
                   tuple(markets), start, _text(raw, "fee_type"), float(raw["fee_multiplier"]),
                   odds_id, str(raw.get("match_reason", "")),
                   str(raw.get("start_source", "milestone")), str(raw.get("title", "")))


def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key} must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Calendar:
    """The games of one refresh (sorted by start). Read with :func:`read_calendar`."""

    refresh_id: str
    refreshed_ns: int
    horizon_s: float
    sports: tuple[str, ...]
    games: tuple[CalendarGame, ...]

    def game(self, event_ticker: str) -> CalendarGame | None:
        return next((g for g in self.games if g.event_ticker == event_ticker), None)

    def games_starting(self, now_ns: int, within_s: float) -> tuple[CalendarGame, ...]:
        """Games with ``now_ns <= start_ns <= now_ns + within_s`` (not yet started)."""
        hi = now_ns + int(within_s * NS)
        return tuple(g for g in self.games if now_ns <= g.start_ns <= hi)

    def sports_ahead(self, now_ns: int) -> list[str]:
        """Sport keys with at least one game not yet started, sorted."""
        return sorted({g.sport_key for g in self.games if g.start_ns >= now_ns})

    def kalshi_games(self, now_ns: int | None = None) -> list[KalshiGame]:
        """Every game (or only those not started by ``now_ns``) as :class:`KalshiGame`."""
        return [g.kalshi_game() for g in self.games if now_ns is None or g.start_ns >= now_ns]

    def to_json(self) -> dict[str, Any]:
        return {"version": CALENDAR_VERSION, "refresh_id": self.refresh_id,
                "refreshed_ns": self.refreshed_ns, "horizon_s": self.horizon_s,
                "sports": list(self.sports), "games": [g.to_json() for g in self.games]}


def calendar_path(data_dir: Path) -> Path:
    return data_dir / CALENDAR_FILE


def write_calendar(data_dir: Path, calendar: Calendar) -> Path:
    """Publish ``<data_dir>/calendar.json`` atomically (temp file, fsync, rename)."""
    return write_json_atomic(calendar_path(data_dir), calendar.to_json())


def read_calendar(data_dir: Path) -> Calendar | None:
    """The published calendar, or None when none was published yet. A file that is not a
    calendar raises :class:`InputError` naming the file and the problem."""
    path = calendar_path(data_dir)
    raw = read_json(path, "calendar")
    if raw is None:
        return None
    try:
        if not isinstance(raw, dict):
            raise TypeError(f"expected a JSON object, got {type(raw).__name__}")
        if raw.get("version") != CALENDAR_VERSION:
            raise ValueError(f"version {raw.get('version')!r}, expected {CALENDAR_VERSION}")
        games = raw["games"]
        if not isinstance(games, list):
            raise TypeError("games must be a list")
        parsed = []
        for i, g in enumerate(games):
            if not isinstance(g, dict):
                raise TypeError(f"games[{i}] is not an object")
            try:
                parsed.append(CalendarGame.from_json(g))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"games[{i}]: {_problem(exc)}") from None
        return Calendar(str(raw["refresh_id"]), int(raw["refreshed_ns"]), float(raw["horizon_s"]),
                        tuple(str(x) for x in raw["sports"]), tuple(parsed))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed calendar {path}: {_problem(exc)}") from exc


def _problem(exc: Exception) -> str:
    return f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)


def game_from_spec(spec: GameSpec, title: str = "") -> CalendarGame:
    """A calendar entry (not yet matched) for a game a worker loaded from the venue."""
    series = parse_event_ticker(spec.event_ticker)[0]
    return CalendarGame(spec.event_ticker, series, spec.sport_key, tuple(spec.markets),
                        spec.start_ns, spec.fees.fee_type, float(spec.fees.fee_multiplier), None,
                        "not matched yet", "milestone", title)


async def match_one(odds: OddsApiClient, game: CalendarGame, *,
                    window_s: float = 12 * 3600.0) -> CalendarGame:
    """``game`` with its Odds API event id (or the reason there is none), from the free event
    list of its sport around its start (± ``window_s``). For a worker running without a
    published calendar; costs no credits."""
    window_ns = int(window_s * NS)
    pull = await odds.events(game.sport_key, commence_from_ns=game.start_ns - window_ns,
                             commence_to_ns=game.start_ns + window_ns)
    events, _ = parse_event_list(pull.payload)
    result = match_games(events, [game.kalshi_game()], window_ns=window_ns)
    if result.matched:
        return replace(game, odds_event_id=result.matched[0].event_id, match_reason=MATCHED)
    reasons = [u.reason for u in result.unmatched if u.event_ticker == game.event_ticker]
    return replace(game, odds_event_id=None, match_reason=reasons[0] if reasons else "not matched")


# --- the Odds API's free event list ----------------------------------------------------------


def parse_event_list(payload: Any) -> tuple[list[EventOdds], list[Rejection]]:
    """``GET /v4/sports/{sport}/events`` → bookless :class:`EventOdds` for :func:`match_games`.

    An event is 3-way when its sport is soccer (there are no prices to tell otherwise). Never
    raises on bad data: unusable items become rejections."""
    if not isinstance(payload, list):
        return [], [Rejection(None, None, f"payload is a {type(payload).__name__}, not a list")]
    events: list[EventOdds] = []
    rejections: list[Rejection] = []
    for i, raw in enumerate(payload):
        try:
            ev = OddsEvent.model_validate(raw)
        except ValidationError as exc:
            eid = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
            rejections.append(Rejection(eid, None, f"item {i}: malformed event ({exc.errors()[0]['msg']})"))
            continue
        if not ev.home_team or not ev.away_team:
            rejections.append(Rejection(ev.id, None, "no home_team/away_team (not a game)"))
            continue
        try:
            commence = None if ev.commence_time is None else iso_to_ns(ev.commence_time)
        except (ValueError, TypeError, OverflowError):
            rejections.append(Rejection(ev.id, None, f"unparsable commence_time {ev.commence_time!r}"))
            continue
        home, away = clean_name(ev.home_team), clean_name(ev.away_team)
        three = (ev.sport_key or "").startswith("soccer")
        events.append(EventOdds(ev.id, ev.sport_key, commence, home, away,
                                (home, away, DRAW) if three else (home, away), ()))
    return events, rejections


# --- refresh ----------------------------------------------------------------------------------


@dataclass(slots=True)
class CalendarReport:
    """What one refresh saw. ``unmatched`` lists Kalshi games (``event_ticker``) and Odds API
    events (``event_id``) left without a partner, and events left out of the calendar (no start
    time, malformed markets), each with its reason. ``errors`` are venue failures per sport."""

    refresh_id: str
    calendar: Calendar | None = None
    path: Path | None = None
    events_seen: int = 0
    """Open Kalshi events listed across the sports' series."""
    outside_horizon: int = 0
    """Of those, events already started or starting after the horizon."""
    unmatched: list[Unmatched] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    carried_over: list[str] = field(default_factory=list)
    """Sports whose games were kept from the previous calendar (their listing failed)."""
    absent: list[str] = field(default_factory=list)
    """Sports whose game series this exchange does not list (404): no games, not an error."""

    @property
    def games(self) -> tuple[CalendarGame, ...]:
        return self.calendar.games if self.calendar is not None else ()

    def summary(self) -> dict[str, Any]:
        """JSON-friendly counts (a flow's return value)."""
        return {"refresh_id": self.refresh_id, "games": len(self.games),
                "matched": sum(g.matched for g in self.games), "unmatched": len(self.unmatched),
                "events_seen": self.events_seen, "outside_horizon": self.outside_horizon,
                "carried_over": list(self.carried_over), "errors": list(self.errors),
                "absent": list(self.absent),
                "path": str(self.path) if self.path is not None else None}

    def lines(self) -> list[str]:
        """For a log: one summary line, then every unmatched item and error with its reason."""
        s = self.summary()
        out = [f"calendar {self.refresh_id}: {s['games']} game(s) ahead, {s['matched']} matched "
               f"to Odds API events; {self.events_seen} open event(s) seen, "
               f"{self.outside_horizon} outside the horizon"]
        out += [f"unmatched {u.event_ticker or u.event_id}: {u.reason}" for u in self.unmatched]
        out += [f"error: {e}" for e in self.errors]
        out += [f"not listed on this exchange: {a}" for a in self.absent]
        if self.carried_over:
            out.append(f"kept from the previous calendar: {', '.join(self.carried_over)}")
        return out

    def game_rows(self) -> list[dict[str, Any]]:
        """One row per game for a table (start as ISO UTC)."""
        return [{"event_ticker": g.event_ticker, "sport": g.sport_key,
                 "start": ns_to_iso(g.start_ns), "start_source": g.start_source,
                 "markets": len(g.markets), "fee": f"{g.fee_type} x{g.fee_multiplier:g}",
                 "odds_event_id": g.odds_event_id or "", "match": g.match_reason}
                for g in self.games]


@dataclass(frozen=True, slots=True)
class _Listed:
    """One open Kalshi event of the horizon (or left out of it, with ``left_out`` saying why)."""

    event: s.EventData
    series: s.Series
    sport_key: str
    start_ns: int | None
    start_source: str
    left_out: str | None = None


async def refresh_calendar(
    rest: KalshiRest,
    odds: OddsApiClient | None,
    data_dir: Path,
    now_ns: int,
    *,
    sports: Sequence[str],
    horizon_s: float = DEFAULT_HORIZON_S,
) -> CalendarReport:
    """Refresh the calendar of games starting in ``[now_ns, now_ns + horizon_s]``; write the
    record tables ``events`` and ``markets`` and ``<data_dir>/calendar.json``.

    Without ``odds`` (no Odds API available) games are listed unmatched. Costs no Odds API
    credits. Raises the first venue error only when every sport's Kalshi listing failed."""
    if horizon_s <= 0:
        raise InputError(f"horizon_s must be positive, got {horizon_s}")
    refresh_id = f"cal-{now_ns}"
    report = CalendarReport(refresh_id)
    hi_ns = now_ns + int(horizon_s * NS)
    listed: list[_Listed] = []
    failed: dict[str, MMError] = {}
    for sport in dict.fromkeys(sports):
        try:
            got, seen, outside = await _list_sport(rest, sport, now_ns, hi_ns)
        except NotFoundError as exc:  # e.g. the local exchange lists only some sports
            report.absent.append(f"{sport}: {exc}")
            log.info("calendar: %s has no series on this exchange: %s", sport, exc)
            continue
        except MMError as exc:
            failed[sport] = exc
            report.errors.append(f"{sport}: Kalshi listing failed: {exc}")
            log.warning("calendar: %s listing failed: %s", sport, exc)
            continue
        listed += got
        report.events_seen += seen
        report.outside_horizon += outside
    if failed and len(failed) == len(dict.fromkeys(sports)):
        raise next(iter(failed.values()))

    games: list[CalendarGame] = []
    event_rows: list[dict[str, Any]] = []
    market_rows: list[dict[str, Any]] = []
    in_horizon = [x for x in listed if x.left_out is None]
    for x in listed:
        if x.left_out is not None:
            report.unmatched.append(Unmatched(None, x.event.event_ticker, x.left_out))
    matches = await _match(odds, in_horizon, now_ns, hi_ns, report)
    for x in in_horizon:
        odds_id, reason = matches.get(x.event.event_ticker, (None, "not matched"))
        games.append(_calendar_game(x, odds_id, reason))
    for x in listed:
        odds_id, reason = matches.get(x.event.event_ticker, (None, x.left_out or ""))
        event_rows.append(_event_row(x, refresh_id, now_ns, odds_id, reason, odds is not None))
        market_rows += [_market_row(m, refresh_id, now_ns) for m in x.event.markets or ()]

    previous = read_calendar(data_dir) if failed else None
    if previous is not None:
        kept = [g for g in previous.games if g.sport_key in failed and now_ns <= g.start_ns <= hi_ns]
        games += kept
        report.carried_over = sorted({g.sport_key for g in kept})
    games.sort(key=lambda g: (g.start_ns, g.event_ticker))
    root = record_root(data_dir)
    write_rows(root, "events", refresh_id, event_rows)
    write_rows(root, "markets", refresh_id, market_rows)
    report.calendar = Calendar(refresh_id, now_ns, float(horizon_s), tuple(dict.fromkeys(sports)),
                               tuple(games))
    report.path = write_calendar(data_dir, report.calendar)
    log.info("calendar %s: %d game(s) within %.0f h (%d matched), %d unmatched item(s), "
             "%d error(s)", refresh_id, len(games), horizon_s / 3600,
             sum(g.matched for g in games), len(report.unmatched), len(report.errors))
    return report


async def _list_sport(rest: KalshiRest, sport: str, now_ns: int, hi_ns: int
                      ) -> tuple[list[_Listed], int, int]:
    """(events in the horizon or left out with a reason, events seen, events outside)."""
    series_ticker = series_for_sport(sport)
    if series_ticker is None:
        raise InputError(f"sport {sport!r} has no Kalshi game series")
    series = await rest.get_series(series_ticker)
    events = await rest.get_events(series_ticker=series_ticker, status="open",
                                   with_nested_markets=True)
    out: list[_Listed] = []
    outside = 0
    for ev in events:
        if not _ticker_date_near(ev.event_ticker, now_ns, hi_ns):
            outside += 1
            continue
        start, source = await _start_of(rest, ev)
        if start is None:
            out.append(_Listed(ev, series, sport, None, "", "no start time: no milestone and no "
                                                            "expected_expiration_time"))
        elif not now_ns <= start <= hi_ns:
            outside += 1
        else:
            left_out = _markets_problem(ev, start)
            out.append(_Listed(ev, series, sport, start, source, left_out))
    return out, len(events), outside


def _ticker_date_near(event_ticker: str, now_ns: int, hi_ns: int) -> bool:
    """Cheap pre-filter before asking for milestones: the ticker's Eastern date is within a day
    of the horizon (a ticker we cannot parse is kept: its milestone decides)."""
    try:
        day = parse_event_ticker(event_ticker)[1]
    except InputError:
        return True

    def eastern(ns: int) -> datetime.date:
        return datetime.datetime.fromtimestamp(ns // NS, tz=EASTERN).date()

    one = datetime.timedelta(days=1)
    return eastern(now_ns) - one <= day <= eastern(hi_ns) + one


async def _start_of(rest: KalshiRest, ev: s.EventData) -> tuple[int | None, str]:
    """(start ns, source): the milestone's ``start_date``, else the earliest market
    ``expected_expiration_time`` minus the series' typical game length."""
    try:
        start = start_from_milestones(ev.event_ticker, await rest.get_milestones(ev.event_ticker))
    except MMError as exc:
        log.warning("calendar: milestones of %s unavailable: %s", ev.event_ticker, exc)
        start = None
    if start is not None:
        return start, "milestone"
    expiries = [t for m in ev.markets or () if (t := m.expected_expiration_ns()) is not None]
    if not expiries:
        return None, ""
    length_s = game_length_s(ev.series_ticker or ev.event_ticker)
    return min(expiries) - int(length_s * NS), "expected_expiration"


def _markets_problem(ev: s.EventData, start_ns: int) -> str | None:
    """Why the event's markets cannot make a game (None when they can)."""
    try:
        game_from_markets(ev.event_ticker, [m.ticker for m in ev.markets or ()], start_ns)
    except InputError as exc:
        return f"markets unusable: {exc}"
    return None if ev.markets else "event lists no markets"


async def _match(odds: OddsApiClient | None, listed: list[_Listed], now_ns: int, hi_ns: int,
                 report: CalendarReport) -> dict[str, tuple[str | None, str]]:
    """event ticker → (Odds API event id or None, reason), per sport from the free event list."""
    out: dict[str, tuple[str | None, str]] = {}
    by_sport: dict[str, list[_Listed]] = {}
    for x in listed:
        by_sport.setdefault(x.sport_key, []).append(x)
    for sport, xs in by_sport.items():
        games = [game_from_markets(x.event.event_ticker, [m.ticker for m in x.event.markets or ()],
                                   x.start_ns) for x in xs]
        why_not = "no Odds API client: games not matched" if odds is None else ""
        if odds is not None:
            try:
                pull = await odds.events(sport, commence_from_ns=now_ns, commence_to_ns=hi_ns)
            except MMError as exc:
                report.errors.append(f"{sport}: Odds API event list failed: {exc}")
                why_not = f"Odds API event list failed: {exc}"
        if why_not:
            for g in games:
                out[g.event_ticker] = (None, why_not)
                report.unmatched.append(Unmatched(None, g.event_ticker, why_not))
            continue
        events, rejections = parse_event_list(pull.payload)
        report.unmatched += [Unmatched(r.event_id, None, r.reason) for r in rejections]
        result: MatchReport = match_games(events, games)
        commence = {e.event_id: e.commence_ns for e in events}
        starts = {g.event_ticker: g.start_ns for g in games}
        for m in result.matched:
            delta_s = abs((commence[m.event_id] or 0) - (starts[m.event_ticker] or 0)) / NS
            out[m.event_ticker] = (m.event_id, f"{MATCHED}: teams agree, starts {delta_s:.0f} s apart")
        for u in result.unmatched:
            if u.event_ticker is not None:
                out[u.event_ticker] = (None, u.reason)
            report.unmatched.append(u)
    return out


def _fees(x: _Listed) -> tuple[str, float]:
    ev, series = x.event, x.series
    fee_type = ev.fee_type_override or series.fee_type
    mult = ev.fee_multiplier_override if ev.fee_multiplier_override is not None else series.fee_multiplier
    return fee_type, float(mult)


def _calendar_game(x: _Listed, odds_id: str | None, reason: str) -> CalendarGame:
    assert x.start_ns is not None
    fee_type, mult = _fees(x)
    markets = sorted((m.ticker for m in x.event.markets or ()),
                     key=lambda t: (t.endswith("-TIE"), t))
    return CalendarGame(x.event.event_ticker, x.event.series_ticker, x.sport_key, tuple(markets),
                        x.start_ns, fee_type, mult, odds_id, reason, x.start_source, x.event.title)


def _event_row(x: _Listed, refresh_id: str, now_ns: int, odds_id: str | None, reason: str,
               have_odds: bool) -> dict[str, Any]:
    fee_type, mult = _fees(x)
    if x.left_out is not None:
        status = "no_start" if x.start_ns is None else "invalid"
    elif odds_id is not None:
        status = "matched"
    else:
        status = "unmatched" if have_odds else "no_odds"
    return {"refresh_id": refresh_id, "observed_ns": now_ns, "event_ticker": x.event.event_ticker,
            "series_ticker": x.event.series_ticker, "sport_key": x.sport_key,
            "title": x.event.title, "start_ns": x.start_ns, "start_source": x.start_source or None,
            "fee_type": fee_type, "fee_multiplier": mult, "markets": len(x.event.markets or ()),
            "odds_event_id": odds_id, "match_status": status, "match_reason": reason}


def _market_row(m: s.Market, refresh_id: str, now_ns: int) -> dict[str, Any]:
    try:
        ranges = [list(r) for r in m.tick_grid().ranges]
    except MalformedPayloadError:
        ranges = None
    code = m.ticker[len(m.event_ticker) + 1:] if m.ticker.startswith(m.event_ticker + "-") else None
    return {"refresh_id": refresh_id, "observed_ns": now_ns, "market": m.ticker,
            "event_ticker": m.event_ticker, "title": m.yes_sub_title or m.title or "",
            "outcome": code, "status": m.status,
            "tick_grid": json.dumps(ranges) if ranges is not None else None,
            "min_tick": min(r[2] for r in ranges) if ranges else None,
            "close_ns": m.close_time_ns(), "result": m.result or None}
