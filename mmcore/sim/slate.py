"""A seeded slate of games with hidden true probabilities, and the simulated books that price them.

Everything here is deterministic given its inputs: randomness comes from ``random.Random`` seeded
with explicit values (the slate seed; or seed, book, event and time bucket for a quote), and the
time is passed in as ``now_ns`` (integer ns since the epoch, UTC). Nothing reads the clock.

Units: probabilities are floats in (0, 1) summing to 1, ordered (home, away[, draw]); prices are
decimal odds (> 1.0, two decimals); timestamps are integer ns.

The hidden probability path is pluggable: the odds server calls a :class:`TruthFn`
``truth(game, now_ns, book) -> probs`` (what ``book`` knows at ``now_ns``: books learn news late,
each after its own ``news_lag_factor``); :func:`static_truth` (the default) returns the game's
fixed ``true_probs``. The backtest's theo prices through the same :func:`quote_h2h`, so it lags
news exactly as the odds server does.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from mmcore.errors import InputError

NS_PER_S = 1_000_000_000
PRICE_BUCKET_NS = 60 * NS_PER_S
"""Quotes are fixed within one bucket: the same request in the same minute gets the same prices."""
STALE_AGE_S = (900.0, 5400.0)
"""A stale book last moved between 15 and 90 minutes ago (and prices the truth of that time)."""
FRESH_AGE_S = 45.0
"""A fresh book's ``last_update`` is up to this many seconds before the start of the bucket."""
DRAW = "Draw"


@dataclass(frozen=True, slots=True)
class SportInfo:
    """A sport key as listed by ``GET /v4/sports``, plus what the slate needs to invent games."""

    key: str
    group: str
    title: str
    description: str
    teams: tuple[str, ...]
    three_way: bool = False
    home_logit_mu: float = 0.15
    """Mean home-win logit (home advantage) for 2-way sports; home share of non-draw for soccer."""
    logit_sd: float = 0.8


SPORTS: dict[str, SportInfo] = {
    s.key: s
    for s in (
        SportInfo("basketball_nba", "Basketball", "NBA", "US Basketball", (
            "Atlanta Hawks", "Boston Celtics", "Brooklyn Nets", "Chicago Bulls",
            "Cleveland Cavaliers", "Dallas Mavericks", "Denver Nuggets", "Golden State Warriors",
            "Los Angeles Lakers", "Miami Heat", "Milwaukee Bucks", "New York Knicks",
            "Oklahoma City Thunder", "Philadelphia 76ers", "Phoenix Suns", "Sacramento Kings",
        ), home_logit_mu=0.2, logit_sd=1.0),
        SportInfo("icehockey_nhl", "Ice Hockey", "NHL", "US Ice Hockey", (
            "Boston Bruins", "Carolina Hurricanes", "Colorado Avalanche", "Dallas Stars",
            "Edmonton Oilers", "Florida Panthers", "Los Angeles Kings", "Montréal Canadiens",
            "New York Rangers", "St Louis Blues", "Tampa Bay Lightning", "Toronto Maple Leafs",
            "Vegas Golden Knights", "Winnipeg Jets",
        ), home_logit_mu=0.1, logit_sd=0.45),
        SportInfo("soccer_epl", "Soccer", "EPL", "Premier League - UK", (
            "Arsenal", "Aston Villa", "Bournemouth", "Brentford", "Brighton and Hove Albion",
            "Chelsea", "Crystal Palace", "Everton", "Fulham", "Liverpool", "Manchester City",
            "Manchester United", "Newcastle United", "Nottingham Forest", "Tottenham Hotspur",
            "West Ham United", "Wolverhampton Wanderers",
        ), three_way=True, home_logit_mu=0.25, logit_sd=0.9),
        SportInfo("americanfootball_nfl", "American Football", "NFL", "US Football", (
            "Baltimore Ravens", "Buffalo Bills", "Cincinnati Bengals", "Dallas Cowboys",
            "Detroit Lions", "Green Bay Packers", "Kansas City Chiefs", "Los Angeles Rams",
            "Miami Dolphins", "Philadelphia Eagles", "Pittsburgh Steelers", "San Francisco 49ers",
        ), home_logit_mu=0.15, logit_sd=0.9),
        SportInfo("baseball_mlb", "Baseball", "MLB", "Major League Baseball", (
            "Atlanta Braves", "Baltimore Orioles", "Boston Red Sox", "Chicago Cubs",
            "Houston Astros", "Los Angeles Dodgers", "New York Yankees", "Philadelphia Phillies",
            "San Diego Padres", "Seattle Mariners", "Texas Rangers", "Toronto Blue Jays",
        ), home_logit_mu=0.1, logit_sd=0.4),
    )
}
DEFAULT_SLATE_SPORTS = ("basketball_nba", "icehockey_nhl", "soccer_epl")


@dataclass(frozen=True, slots=True)
class SimGame:
    """One game of the slate. ``true_probs`` is (home, away[, draw]) and sums to 1."""

    event_id: str
    """32 lowercase hex characters, derived from the seed, sport and teams."""
    sport_key: str
    sport_title: str
    home_team: str
    away_team: str
    commence_ns: int
    true_probs: tuple[float, ...]

    @property
    def outcome_names(self) -> tuple[str, ...]:
        """Outcome names as the API prices them, in ``true_probs`` order."""
        names = (self.home_team, self.away_team)
        return names + (DRAW,) if len(self.true_probs) == 3 else names


class TruthFn(Protocol):
    """``truth(game, now_ns) -> probs``: the hidden true probabilities of a game at a time;
    ``truth(game, now_ns, book)``: what that sportsbook knows then (news it has not yet heard of
    left out)."""

    def __call__(self, game: SimGame, now_ns: int,
                 book: SimBook | None = None) -> tuple[float, ...]: ...


def static_truth(game: SimGame, now_ns: int, book: SimBook | None = None) -> tuple[float, ...]:
    """The default :data:`TruthFn`: the game's fixed ``true_probs`` at every time."""
    return game.true_probs


def event_id_for(seed: int, sport_key: str, home: str, away: str) -> str:
    """A stable 32-hex event id (the real API derives ids from sport, teams and start time)."""
    return hashlib.md5(f"{seed}|{sport_key}|{home}|{away}".encode()).hexdigest()


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _draw_truth(rng: random.Random, sport: SportInfo) -> tuple[float, ...]:
    share = min(0.9, max(0.1, _sigmoid(rng.gauss(sport.home_logit_mu, sport.logit_sd))))
    if not sport.three_way:
        return (share, 1.0 - share)
    draw = rng.uniform(0.22, 0.30)
    home = (1.0 - draw) * share
    return (home, 1.0 - draw - home, draw)


def make_slate(
    seed: int,
    now_ns: int,
    n_games: int = 4,
    sports: Sequence[str] = DEFAULT_SLATE_SPORTS,
    first_start_s: float = 2 * 3600.0,
    spacing_s: float = 1800.0,
) -> list[SimGame]:
    """``n_games`` games **per sport**, starting ``first_start_s`` after ``now_ns`` and
    ``spacing_s`` apart (interleaved across sports, each start rounded up to a whole minute).

    No team plays twice in one slate. Deterministic in (seed, now_ns, arguments).
    """
    rng = random.Random(seed)
    per_sport: list[list[SimGame]] = []
    for key in sports:
        sport = SPORTS.get(key)
        if sport is None:
            raise InputError(f"unknown sport key {key!r}; known: {', '.join(sorted(SPORTS))}")
        if 2 * n_games > len(sport.teams):
            raise InputError(f"{n_games} {key} games need {2 * n_games} teams; have {len(sport.teams)}")
        teams = rng.sample(sport.teams, 2 * n_games)
        games = []
        for i in range(n_games):
            home, away = teams[2 * i], teams[2 * i + 1]
            games.append(SimGame(event_id_for(seed, key, home, away), key, sport.title, home, away,
                                 0, _draw_truth(rng, sport)))
        per_sport.append(games)
    slate: list[SimGame] = []
    minute = 60 * NS_PER_S
    for i in range(n_games):
        for games in per_sport:
            start = now_ns + int((first_start_s + len(slate) * spacing_s) * NS_PER_S)
            start = -(-start // minute) * minute
            g = games[i]
            slate.append(SimGame(g.event_id, g.sport_key, g.sport_title, g.home_team, g.away_team,
                                 start, g.true_probs))
    return slate


# --- books --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimBook:
    """A simulated sportsbook.

    ``margin`` is the overround of its back prices (booksum − 1, e.g. 0.025); ``noise_sd`` the sd
    of the Gaussian noise added to each outcome's log-probability before the margin;
    ``stale_prob`` / ``missing_prob`` the chance, per game and minute, that it shows an old quote
    or no quote. Exchanges also publish ``h2h_lay`` (booksum 1 − margin).
    """

    key: str
    title: str
    margin: float
    noise_sd: float
    stale_prob: float = 0.0
    missing_prob: float = 0.0
    region: str = "us"
    exchange: bool = False
    news_lag_factor: float = 1.0
    """How late this book hears news, as a multiple of each news item's private window
    (:attr:`~mmcore.sim.truth.TruthParams.news_lag_s`): the sharp books move first (1.0)."""


DEFAULT_BOOKS: tuple[SimBook, ...] = (
    SimBook("pinnacle", "Pinnacle", 0.025, 0.015, 0.01, 0.03, region="eu"),
    SimBook("betfair_ex_eu", "Betfair", 0.012, 0.03, 0.03, 0.05, region="eu", exchange=True,
            news_lag_factor=1.05),
    SimBook("draftkings", "DraftKings", 0.045, 0.05, 0.03, 0.02, news_lag_factor=1.2),
    SimBook("fanduel", "FanDuel", 0.045, 0.05, 0.03, 0.02, news_lag_factor=1.2),
    SimBook("betmgm", "BetMGM", 0.05, 0.06, 0.04, 0.03, news_lag_factor=1.3),
    SimBook("williamhill_us", "Caesars", 0.05, 0.06, 0.04, 0.03, news_lag_factor=1.3),
    SimBook("betonlineag", "BetOnline.ag", 0.04, 0.045, 0.03, 0.03, news_lag_factor=1.1),
    SimBook("lowvig", "LowVig.ag", 0.02, 0.045, 0.03, 0.05, news_lag_factor=1.1),
    SimBook("betrivers", "BetRivers", 0.055, 0.06, 0.05, 0.04, news_lag_factor=1.4),
    SimBook("bovada", "Bovada", 0.055, 0.07, 0.05, 0.04, news_lag_factor=1.4),
    SimBook("mybookieag", "MyBookie.ag", 0.08, 0.11, 0.08, 0.06, news_lag_factor=1.6),
    SimBook("betus", "BetUS", 0.09, 0.12, 0.08, 0.06, news_lag_factor=1.6),
)
SOFT_BOOK_KEYS = ("mybookieag", "betus")
REGIONS = ("us", "us2", "uk", "eu", "au")


@dataclass(frozen=True, slots=True)
class BookQuote:
    """One book's h2h quote for one game: decimal odds in ``outcome_names`` order."""

    book: SimBook
    prices: tuple[float, ...]
    lay_prices: tuple[float, ...] | None
    last_update_ns: int


def power_margin(probs: Sequence[float], booksum: float) -> tuple[float, ...]:
    """Implied probabilities ``p_i ** k`` with k solved so that they sum to ``booksum``.

    k < 1 for an overround (booksum > 1): longshots carry more of the margin, the
    favourite-longshot bias real books show. k > 1 for an underround (exchange lay side).
    """
    lo, hi = 1e-6, 60.0
    for _ in range(50):  # bracket width 60 / 2**50: far below a price tick
        k = 0.5 * (lo + hi)
        if sum(p**k for p in probs) > booksum:
            lo = k
        else:
            hi = k
    k = 0.5 * (lo + hi)
    return tuple(p**k for p in probs)


def _floor2(x: float) -> float:
    return math.floor(x * 100.0 + 1e-9) / 100.0


def _ceil2(x: float) -> float:
    return math.ceil(x * 100.0 - 1e-9) / 100.0


def quote_h2h(
    book: SimBook, game: SimGame, *, seed: int, now_ns: int, truth: TruthFn = static_truth
) -> BookQuote | None:
    """The book's h2h quote at ``now_ns`` (None when it has no quote for this game right now).

    Deterministic per (seed, book, game, minute bucket). Back prices are rounded down to 2
    decimals (in the book's favour, so booksum ≥ 1 + margin ≥ 1) and are at least 1.01; lay
    prices are rounded up and at least one tick above the back price.
    """
    bucket = now_ns // PRICE_BUCKET_NS
    rng = random.Random(f"{seed}|{book.key}|{game.event_id}|{bucket}")
    if rng.random() < book.missing_prob:
        return None
    bucket_start = bucket * PRICE_BUCKET_NS
    if rng.random() < book.stale_prob:
        priced_at = bucket_start - int(rng.uniform(*STALE_AGE_S) * NS_PER_S)
    else:
        priced_at = bucket_start - int(rng.uniform(0.0, FRESH_AGE_S) * NS_PER_S)
    priced_at = (priced_at // NS_PER_S) * NS_PER_S  # the API reports whole seconds
    probs = truth(game, priced_at, book)
    logs = [math.log(max(p, 1e-9)) + rng.gauss(0.0, book.noise_sd) for p in probs]
    top = max(logs)
    weights = [math.exp(v - top) for v in logs]
    noisy = [w / sum(weights) for w in weights]
    back = tuple(max(1.01, _floor2(1.0 / q)) for q in power_margin(noisy, 1.0 + book.margin))
    lay = None
    if book.exchange:
        lay = tuple(
            max(b + 0.01, _ceil2(1.0 / q))
            for b, q in zip(back, power_margin(noisy, 1.0 - book.margin))
        )
        lay = tuple(round(x, 2) for x in lay)
    return BookQuote(book, back, lay, priced_at)
