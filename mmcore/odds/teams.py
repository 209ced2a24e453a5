"""Match The Odds API events to Kalshi game events, team by team, or say exactly why not.

A theo is only as good as its mapping: putting the home team's probability on the away team's
Kalshi book is the worst bug this system can have (reference/odds-api.md §4.3, §5). So:

- **Names → codes only through the alias tables** in :mod:`mmcore.odds.team_aliases`, after
  :func:`normalise_name`. No fuzzy matching decides anything; :func:`suggest` exists only to make
  the "no alias" message actionable.
- **Orientation comes from names, never from ticker position.** Kalshi lists away-first for US
  leagues and home-first for soccer; we ignore the order and read each market's own code.
- **A game matches an event only on everything at once**: same league (series), the same two teams
  (set equality of codes, TIE aside), a start time within a window, and the same shape (a 3-way
  soccer event needs a ``-TIE`` market; a 2-way event must not meet one).
- **Anything short of one clear answer is reported** as :class:`Unmatched` with a specific
  reason — unknown team, no game in the window, equally close doubleheader games — never guessed.

Ticker grammar (reference/kalshi.md §6, observed, not documented): event
``{SERIES}-{YY}{MON}{DD}{rest}`` where ``rest`` is the team codes, optionally preceded by a
``HHMM`` Eastern start time (MLB, some NFL/NHL) and followed by ``G1``/``G2`` for doubleheaders;
NCAA codes may contain a hyphen (``M-OH``). Market ticker = event ticker + ``-{CODE}``. The ticker
date is the US Eastern calendar date of the game.

Pure: no I/O, no clock. Times are integer ns since the epoch, UTC.
"""

from __future__ import annotations

import datetime
import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

from mmcore.errors import InputError, InvariantError
from mmcore.odds.events import DRAW, EventOdds
from mmcore.odds.team_aliases import ALTERNATE_CODES, SERIES_BY_SPORT, TEAM_NAMES

TIE_CODE = "TIE"
"""Kalshi's market code for a drawn soccer game; pairs with the Odds API outcome ``"Draw"``."""

EASTERN = ZoneInfo("America/New_York")
"""Kalshi ticker dates are US Eastern calendar dates (an 8 pm ET game is the next day in UTC)."""

DEFAULT_WINDOW_NS = 12 * 3600 * 10**9

_NS_PER_S = 1_000_000_000

# --- name normalisation ----------------------------------------------------------------------

_TRANSLITERATE = str.maketrans(
    {"ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ł": "l", "Ł": "l",
     "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th", "Þ": "th", "ı": "i", "ß": "ss"}
)
"""Latin letters that NFKD does not decompose into base letter + accent (``Bodø``, ``Śląsk``'s ł)."""

_APOSTROPHES = str.maketrans("", "", "'’‘`´")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_DROPPED_TOKENS = frozenset({"fc", "cf", "afc", "sc", "ac"})
_TOKEN_REWRITES = {"st": "saint"}


def normalise_name(name: str) -> str:
    """Canonical form of a team name, so spelling variants of one club compare equal.

    Steps, in order (reference/odds-api.md §5, step 3):

    1. Unicode NFKD, then drop combining marks (``Leganés`` → ``Leganes``), and transliterate the
       few letters NFKD leaves alone (``ø``→``o``, ``ł``→``l``, ``æ``→``ae``, ``ß``→``ss``…).
    2. ``casefold`` (stronger than ``lower`` for non-ASCII).
    3. ``&`` → ``and``; apostrophes are deleted (``Newell's`` → ``newells``); every other run of
       non-alphanumerics becomes one space (``Bodø/Glimt`` → ``bodo glimt``,
       ``Paris Saint-Germain`` → ``paris saint germain``), spaces collapse.
    4. Token rewrites: ``st`` → ``saint`` (``St. Louis``, ``St Louis``, ``Saint Louis`` agree).
    5. Whole-word club-form tags ``fc``, ``cf``, ``afc``, ``sc``, ``ac`` are dropped wherever they
       stand (``AC Milan`` → ``milan``, ``Hellas Verona FC`` → ``hellas verona``) — unless that
       would leave nothing.

    Deliberately *not* done: dropping other words (``united``, ``city``, ``real``) or
    abbreviating — those distinguish clubs (Manchester City/United). Variants like "Man Utd" go in
    the alias table instead.
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.translate(_TRANSLITERATE).casefold()
    text = text.replace("&", " and ").translate(_APOSTROPHES)
    tokens = [_TOKEN_REWRITES.get(t, t) for t in _NON_ALNUM.sub(" ", text).split()]
    kept = [t for t in tokens if t not in _DROPPED_TOKENS]
    return " ".join(kept or tokens)


# --- alias lookups ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _League:
    """Lookup tables for one sport key, built once from the alias data."""

    by_name: dict[str, str]
    """normalised alias → primary code"""
    codes: dict[str, tuple[str, ...]]
    """primary code → (primary, *alternates)"""
    owner: dict[str, str]
    """any accepted code → primary code"""
    display: dict[str, str]
    """normalised alias → alias as written (for suggestions)"""


def alias_problems(sport_key: str) -> list[str]:
    """Everything wrong with one league's alias data: names or codes claimed by two teams.

    Empty for good data. Used by the tests, and by :func:`_league` to refuse a table that would
    make a lookup ambiguous.
    """
    names = TEAM_NAMES.get(sport_key, {})
    alternates = ALTERNATE_CODES.get(sport_key, {})
    problems: list[str] = []
    by_name: dict[str, str] = {}
    owner: dict[str, str] = {}
    for code in alternates:
        if code not in names:
            problems.append(f"{sport_key}: alternate codes given for unknown team {code}")
    for primary, aliases in names.items():
        if not aliases:
            problems.append(f"{sport_key}: {primary} has no names")
        for code in (primary, *alternates.get(primary, ())):
            if code == TIE_CODE or not re.fullmatch(r"[A-Z0-9][A-Z0-9-]*", code):
                problems.append(f"{sport_key}: bad code {code!r} for {primary}")
            if owner.setdefault(code, primary) != primary:
                problems.append(f"{sport_key}: code {code} used by {owner[code]} and {primary}")
        for alias in aliases:
            key = normalise_name(alias)
            if not key:
                problems.append(f"{sport_key}: alias {alias!r} of {primary} normalises to ''")
            elif by_name.setdefault(key, primary) != primary:
                problems.append(
                    f"{sport_key}: name {alias!r} ({key!r}) maps to {by_name[key]} and {primary}"
                )
    return problems


@cache
def _league(sport_key: str) -> _League | None:
    names = TEAM_NAMES.get(sport_key)
    if names is None:
        return None
    problems = alias_problems(sport_key)
    if problems:
        raise InvariantError("alias table is ambiguous: " + "; ".join(problems))
    alternates = ALTERNATE_CODES.get(sport_key, {})
    by_name: dict[str, str] = {}
    display: dict[str, str] = {}
    codes: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for primary, aliases in names.items():
        codes[primary] = (primary, *alternates.get(primary, ()))
        for code in codes[primary]:
            owner[code] = primary
        for alias in aliases:
            key = normalise_name(alias)
            by_name[key] = primary
            display.setdefault(key, alias)
    return _League(by_name, codes, owner, display)


def series_for_sport(sport_key: str) -> str | None:
    """The Kalshi full-game winner series for an Odds API sport key, or None if we have none."""
    return SERIES_BY_SPORT.get(sport_key)


def sport_for_series(series: str) -> str | None:
    """The Odds API sport key for a Kalshi game series, or None."""
    for sport, known in SERIES_BY_SPORT.items():
        if known == series:
            return sport
    return None


def has_alias_table(sport_key: str) -> bool:
    return sport_key in TEAM_NAMES


def team_code(sport_key: str, name: str) -> str | None:
    """The primary Kalshi code for a team name: exact lookup after normalisation, never a guess."""
    league = _league(sport_key)
    if league is None:
        return None
    return league.by_name.get(normalise_name(name))


def team_codes(sport_key: str, name: str) -> tuple[str, ...]:
    """Every Kalshi code accepted for this team (primary first); empty if the name is unknown."""
    league = _league(sport_key)
    primary = team_code(sport_key, name)
    if league is None or primary is None:
        return ()
    return league.codes[primary]


def code_owner(sport_key: str, code: str) -> str | None:
    """The primary code of the team a (possibly alternate) Kalshi code belongs to, or None."""
    league = _league(sport_key)
    return None if league is None else league.owner.get(code)


def suggest(sport_key: str, name: str, *, limit: int = 3) -> list[str]:
    """Close alias names for an error message ONLY — never used to match anything.

    Uses :mod:`difflib` on normalised names, plus aliases sharing a whole word with ``name``
    (so "Clippers" suggests "Los Angeles Clippers"). Each suggestion reads ``"Name (CODE)"``.
    """
    league = _league(sport_key)
    if league is None:
        return []
    key = normalise_name(name)
    keys = list(league.by_name)
    ranked = difflib.get_close_matches(key, keys, n=limit, cutoff=0.6)
    words = set(key.split())
    ranked += [k for k in keys if words & set(k.split()) and k not in ranked]
    out: list[str] = []
    seen_codes: set[str] = set()
    for k in ranked:
        code = league.by_name[k]
        if code in seen_codes:
            continue
        seen_codes.add(code)
        out.append(f"{league.display[k]} ({code})")
        if len(out) == limit:
            break
    return out


# --- Kalshi tickers --------------------------------------------------------------------------

_MONTHS = {m: i for i, m in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1
)}
_EVENT_TICKER = re.compile(r"([A-Z][A-Z0-9]*)-(\d{2})([A-Z]{3})(\d{2})([A-Z0-9][A-Z0-9-]*)")
_MARKET_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]*")


def parse_event_ticker(event_ticker: str) -> tuple[str, datetime.date, str]:
    """``"KXNBAGAME-26MAY25NYKCLE"`` → ``("KXNBAGAME", date(2026, 5, 25), "NYKCLE")``.

    The rest is returned unsplit (``"1840COLCIN"`` for MLB, ``"DETCLEG1"`` for a doubleheader):
    codes have no fixed length, so splitting ``"LACLAL"`` needs the market tickers, which
    :func:`game_from_markets` uses instead. The date is the US Eastern game date.
    Raises :class:`InputError` on anything else (tickers are upper-case).
    """
    if not isinstance(event_ticker, str):
        raise InputError(f"event ticker must be a string, got {type(event_ticker).__name__}")
    found = _EVENT_TICKER.fullmatch(event_ticker)
    if found is None:
        raise InputError(
            f"malformed Kalshi event ticker {event_ticker!r}: expected SERIES-YYMONDD<teams>, "
            "e.g. KXNBAGAME-26MAY25NYKCLE"
        )
    series, yy, mon, dd, rest = found.groups()
    month = _MONTHS.get(mon)
    if month is None:
        raise InputError(f"malformed Kalshi event ticker {event_ticker!r}: unknown month {mon!r}")
    try:
        day = datetime.date(2000 + int(yy), month, int(dd))
    except ValueError as exc:
        raise InputError(f"malformed Kalshi event ticker {event_ticker!r}: {exc}") from None
    return series, day, rest


@dataclass(frozen=True, slots=True)
class KalshiGame:
    """What we know about one Kalshi game event (one binary market per team, plus TIE)."""

    event_ticker: str
    """e.g. ``"KXNBAGAME-26MAY25NYKCLE"``"""
    series: str
    """e.g. ``"KXNBAGAME"``"""
    start_ns: int | None
    """Scheduled start (from milestones), ns since epoch UTC; None if unknown."""
    markets: dict[str, str]
    """Team code (or ``"TIE"``) → market ticker."""

    @property
    def team_codes(self) -> frozenset[str]:
        """The market codes that name a team (everything but TIE)."""
        return frozenset(code for code in self.markets if code != TIE_CODE)

    @property
    def has_tie(self) -> bool:
        return TIE_CODE in self.markets

    @property
    def ticker_date(self) -> datetime.date:
        """The US Eastern game date encoded in the event ticker."""
        return parse_event_ticker(self.event_ticker)[1]


def game_from_markets(
    event_ticker: str, market_tickers: Iterable[str], start_ns: int | None
) -> KalshiGame:
    """Build a :class:`KalshiGame` from an event ticker and its markets' tickers.

    Each market's code is whatever follows ``event_ticker + "-"`` — read per market, so teams are
    identified without splitting the concatenated codes in the event ticker. Raises
    :class:`InputError` for a malformed event ticker, a market of another event, an empty or
    malformed code, or the same code twice. The number of markets is not checked here;
    :func:`match_games` reports a game without exactly two team markets as unmatched.
    """
    series, _, _ = parse_event_ticker(event_ticker)
    prefix = event_ticker + "-"
    markets: dict[str, str] = {}
    for ticker in market_tickers:
        if not isinstance(ticker, str) or not ticker.startswith(prefix):
            raise InputError(f"market {ticker!r} does not belong to event {event_ticker}")
        code = ticker[len(prefix):]
        if not _MARKET_CODE.fullmatch(code):
            raise InputError(f"market {ticker!r} has a malformed team code {code!r}")
        if code in markets:
            raise InputError(f"event {event_ticker} lists market {ticker} twice")
        markets[code] = ticker
    return KalshiGame(event_ticker=event_ticker, series=series, start_ns=start_ns, markets=markets)


# --- matching --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GameMatch:
    """One Odds API event bound to one Kalshi game, outcome by outcome."""

    event_id: str
    event_ticker: str
    outcome_markets: dict[str, str]
    """Odds API outcome name (team full name, or ``"Draw"``) → Kalshi market ticker."""


@dataclass(frozen=True, slots=True)
class Unmatched:
    """An event (``event_id``) or a game (``event_ticker``) left unmatched, and why."""

    event_id: str | None
    event_ticker: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class MatchReport:
    matched: tuple[GameMatch, ...]
    unmatched: tuple[Unmatched, ...]


@dataclass(frozen=True, slots=True)
class _Candidate:
    game: int
    distance_ns: int | None
    """|game start − event start|, or None when only the ticker date was compared."""
    outcome_markets: dict[str, str]


def _fmt_ns(ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns // _NS_PER_S, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%MZ")


def _eastern_date(ns: int) -> datetime.date:
    return datetime.datetime.fromtimestamp(ns // _NS_PER_S, tz=EASTERN).date()


def _fmt_window(window_ns: int) -> str:
    hours = window_ns / (3600 * _NS_PER_S)
    return f"{hours:g}h"


def _game_ticker_date(game: KalshiGame) -> datetime.date | None:
    try:
        return game.ticker_date
    except InputError:
        return None


def _assign_sides(
    home_codes: tuple[str, ...], away_codes: tuple[str, ...], game: KalshiGame
) -> tuple[str, str] | None:
    """(home market code, away market code) if the game's two team markets are exactly these two
    teams, each once; None otherwise. Orientation comes from the codes, never from position."""
    codes = game.team_codes
    if len(codes) != 2:
        return None
    home = [c for c in codes if c in home_codes]
    away = [c for c in codes if c in away_codes]
    if len(home) != 1 or len(away) != 1 or home[0] == away[0]:
        return None
    return home[0], away[0]


def match_games(
    events: Iterable[EventOdds],
    games: Iterable[KalshiGame],
    *,
    window_ns: int = DEFAULT_WINDOW_NS,
) -> MatchReport:
    """Pair Odds API events with Kalshi games; report every event and game left over, with why.

    A pair is *possible* when: the event's sport maps to the game's series; both team names
    resolve through the aliases and the game's team markets are exactly those two teams (any of
    each team's accepted codes; TIE aside); a game with a TIE market needs a 3-way event (a 3-way
    event may price a 2-way listing whose draw settles both markets NO: Draw maps to no market); and
    the start agrees — ``|game.start_ns − commence_ns| <= window_ns``, or, when the game's start
    is unknown, the ticker date equals the event's commence date in America/New_York.

    Each event and each game is used at most once. Possible pairs are taken closest-start first,
    so in a doubleheader each event gets its own game. When an event's best remaining games are
    equally close — or a date-only game is in play, whose distance is unknown — the event is
    reported ambiguous instead of guessed; likewise when two events tie for one game.
    """
    event_list = list(events)
    game_list = list(games)
    by_series: dict[str, list[int]] = {}
    for gi, game in enumerate(game_list):
        by_series.setdefault(game.series, []).append(gi)

    candidates: dict[int, list[_Candidate]] = {}
    failure: dict[int, str] = {}
    for ei, event in enumerate(event_list):
        found, why = _candidates(event, game_list, by_series, window_ns)
        if found:
            candidates[ei] = found
        else:
            failure[ei] = why

    matched, ambiguous, taken_by = _resolve(
        candidates, [e.event_id for e in event_list], [g.event_ticker for g in game_list]
    )

    matches: list[GameMatch] = []
    unmatched: list[Unmatched] = []
    for ei, event in enumerate(event_list):
        if ei in matched:
            cand = matched[ei]
            matches.append(
                GameMatch(event.event_id, game_list[cand.game].event_ticker, cand.outcome_markets)
            )
        elif ei in ambiguous:
            unmatched.append(Unmatched(event.event_id, None, ambiguous[ei]))
        elif ei in failure:
            unmatched.append(Unmatched(event.event_id, None, failure[ei]))
        else:
            others = sorted(
                {event_list[taken_by[c.game]].event_id for c in candidates[ei] if c.game in taken_by}
            )
            tickers = ", ".join(sorted(game_list[c.game].event_ticker for c in candidates[ei]))
            unmatched.append(
                Unmatched(
                    event.event_id,
                    None,
                    f"every matching Kalshi game ({tickers}) is already matched to a closer "
                    f"event ({', '.join(others)})",
                )
            )

    used_games = {cand.game for cand in matched.values()}
    possible_for = {c.game for cands in candidates.values() for c in cands}
    for gi, game in enumerate(game_list):
        if gi in used_games:
            continue
        unmatched.append(Unmatched(None, game.event_ticker, _game_reason(game, gi in possible_for)))

    return MatchReport(tuple(matches), tuple(unmatched))


def _candidates(
    event: EventOdds,
    game_list: list[KalshiGame],
    by_series: dict[str, list[int]],
    window_ns: int,
) -> tuple[list[_Candidate], str]:
    """Every game this event could be, or (no games, the most specific reason why none)."""
    sport = event.sport_key
    if not sport:
        return [], "event has no sport key"
    series = series_for_sport(sport)
    if series is None:
        return [], f"sport key {sport} has no Kalshi series"
    if not has_alias_table(sport):
        return [], f"no team alias table for {sport} (series {series}); names cannot be mapped"

    home_codes = team_codes(sport, event.home_team)
    away_codes = team_codes(sport, event.away_team)
    missing = [name for name, codes in ((event.home_team, home_codes), (event.away_team, away_codes))
               if not codes]
    if missing:
        parts = []
        for name in missing:
            hints = suggest(sport, name)
            hint = f" (did you mean: {', '.join(hints)})" if hints else ""
            parts.append(f"no alias for team {name!r} in {sport}{hint}")
        return [], "; ".join(parts)
    if home_codes[0] == away_codes[0]:
        return [], (
            f"home {event.home_team!r} and away {event.away_team!r} both map to {home_codes[0]}"
        )
    if event.commence_ns is None:
        return [], "event has no commence time, so its Kalshi game cannot be told by date"

    teams = f"{away_codes[0]}-{home_codes[0]}"
    when = _fmt_ns(event.commence_ns)
    event_day = _eastern_date(event.commence_ns)
    same_teams = 0
    near_misses: list[str] = []
    shape_misses: list[str] = []
    found: list[_Candidate] = []
    for gi in by_series.get(series, ()):
        game = game_list[gi]
        sides = _assign_sides(home_codes, away_codes, game)
        if sides is None:
            continue
        same_teams += 1
        distance: int | None = None
        if game.start_ns is not None:
            distance = abs(game.start_ns - event.commence_ns)
            if distance > window_ns:
                near_misses.append(f"{game.event_ticker} starts {_fmt_ns(game.start_ns)}")
                continue
        else:
            # No milestone start: the ticker's US Eastern date is all we can compare.
            game_day = _game_ticker_date(game)
            if game_day != event_day:
                near_misses.append(
                    f"{game.event_ticker} is dated {game_day} ET, event is {event_day} ET"
                )
                continue
        # A 3-way event may price a 2-way listing (no TIE market; a draw settles both team
        # markets NO): each team market's theo is its own outcome's probability, the draw's is
        # left unlisted, and the worker counts the draw as an extra outcome (issue 10 item 8).
        if not event.three_way and game.has_tie:
            shape_misses.append(f"2-way event but {game.event_ticker} has a {TIE_CODE} market")
            continue
        home_code, away_code = sides
        outcome_markets = {
            event.home_team: game.markets[home_code],
            event.away_team: game.markets[away_code],
        }
        if event.three_way and game.has_tie:
            outcome_markets[DRAW] = game.markets[TIE_CODE]
        found.append(_Candidate(gi, distance, outcome_markets))

    if found:
        return found, ""
    if shape_misses:
        return [], "; ".join(shape_misses)
    reason = f"no Kalshi game for {teams} within {_fmt_window(window_ns)} of {when}"
    if same_teams == 0:
        return [], f"{reason} (no {series} game lists both teams)"
    return [], f"{reason} (nearest misses: {'; '.join(near_misses)})"


def _rank(candidate: _Candidate) -> tuple[int, int]:
    """Sort key: known distances first, closest first; date-only candidates last."""
    if candidate.distance_ns is None:
        return (1, 0)
    return (0, candidate.distance_ns)


def _tied(a: _Candidate, b: _Candidate) -> bool:
    """True when a and b cannot be told apart by start time (equal, or either unknown)."""
    return a.distance_ns is None or b.distance_ns is None or a.distance_ns == b.distance_ns


def _resolve(
    candidates: dict[int, list[_Candidate]],
    event_ids: list[str],
    game_tickers: list[str],
) -> tuple[dict[int, _Candidate], dict[int, str], dict[int, int]]:
    """Closest-first one-to-one assignment that refuses ties.

    Pairs are visited closest start first. A pair is taken unless the event has another still-free
    game it cannot tell apart from this one (equal distance, or a date-only game), or another
    still-open event is equally close to this game — then the event(s) are reported ambiguous and
    the games stay free for others. Returns (event → chosen candidate, event → ambiguity reason,
    game → event it went to).
    """
    pairs = sorted(
        ((ei, cand) for ei, cands in candidates.items() for cand in cands),
        key=lambda pair: (_rank(pair[1]), pair[0], pair[1].game),
    )
    by_game: dict[int, list[tuple[int, _Candidate]]] = {}
    for ei, cand in pairs:
        by_game.setdefault(cand.game, []).append((ei, cand))

    matched: dict[int, _Candidate] = {}
    ambiguous: dict[int, str] = {}
    taken_by: dict[int, int] = {}
    done: set[int] = set()
    for ei, cand in pairs:
        if ei in done or cand.game in taken_by:
            continue
        rival_games = [
            other.game for other in candidates[ei]
            if other.game != cand.game and other.game not in taken_by and _tied(other, cand)
        ]
        if rival_games:
            done.add(ei)
            tickers = ", ".join(sorted(game_tickers[g] for g in (cand.game, *rival_games)))
            ambiguous[ei] = (
                f"ambiguous: Kalshi games {tickers} are equally close to the event's start "
                "(or a start is unknown); not guessing"
            )
            continue
        rival_events = [
            other_ei for other_ei, other in by_game[cand.game]
            if other_ei != ei and other_ei not in done and _tied(other, cand)
        ]
        if rival_events:
            tied = (ei, *rival_events)
            ids = ", ".join(sorted(event_ids[e] for e in tied))
            for other_ei in tied:
                done.add(other_ei)
                ambiguous[other_ei] = (
                    f"ambiguous: events {ids} are equally close to Kalshi game "
                    f"{game_tickers[cand.game]}; not guessing"
                )
            continue
        matched[ei] = cand
        taken_by[cand.game] = ei
        done.add(ei)
    return matched, ambiguous, taken_by


def _game_reason(game: KalshiGame, had_candidate: bool) -> str:
    sport = sport_for_series(game.series)
    if sport is None:
        return f"series {game.series} has no Odds API sport key"
    codes = sorted(game.team_codes)
    if len(codes) != 2:
        return f"game has {len(codes)} team market(s) ({', '.join(codes) or 'none'}); need 2"
    if has_alias_table(sport):
        unknown = [c for c in codes if code_owner(sport, c) is None]
        if unknown:
            return f"Kalshi code(s) {', '.join(unknown)} not in the {sport} alias table"
    if had_candidate:
        return "matching Odds API event was ambiguous or went to a closer game"
    return f"no Odds API {sport} event for {'-'.join(codes)} matched this game"
