"""Scenario files: a seeded slate, its hidden truth, the other traders and a fault timeline.

A scenario file (JSON, see ``examples/scenario-demo.json``) is validated by :class:`Scenario`
(unknown keys are refused) and resolved by :func:`load_scenario` against a ``now_ns`` passed in,
into a :class:`ResolvedScenario` that replays exactly:

- **Randomness per game, by name.** Each game's randomness comes from ``(seed, event ticker)``
  through :func:`derive_seed` (a hash), never from one shared stream: adding, removing or
  reordering games leaves every other game's true probabilities, truth path and participants
  unchanged. Each participant gets its own seed per game, and :meth:`ResolvedParticipant.rng`
  one stream per market.
- **Tickers as Kalshi writes them** (reference/kalshi.md §6), unless given: series from
  :func:`~mmcore.odds.teams.series_for_sport`, event ``{SERIES}-{YY}{MON}{DD}[HHMM]{codes}`` with
  the US Eastern date (MLB adds the Eastern start time), codes away-first for US leagues and
  home-first for soccer, markets ``<event>-<CODE>`` plus ``<event>-TIE`` for soccer. Markets are
  kept in outcome order (home, away[, draw]), aligned with the truth's probabilities. A soccer
  game with ``tie_market: false`` lists only the two team markets (a 2-way listing): a draw then
  settles both NO, and the markets' ``rules_secondary`` says so (issue 10 item 8).
- **Faults** are only parsed and exposed, as a timeline sorted by time (file order on ties).

Units: times are integer ns since the epoch (file: ``*_s`` seconds after the scenario start);
money is price units ($0.0001; file: ``balance_dollars``); participant prices are price units
(``*_price``), sizes whole contracts (``*_contracts``), probabilities floats.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from mmcore.errors import InputError
from mmcore.fees import FeeSchedule, FeeType
from mmcore.models import iso_to_ns
from mmcore.odds.teams import EASTERN, TIE_CODE, parse_event_ticker, series_for_sport, team_codes
from mmcore.sim.participants import (
    CompetingMaker, InformedTaker, NewsTaker, NoiseTaker, ParticipantConfig,
)
from mmcore.sim.toxicity import dial
from mmcore.sim.slate import DEFAULT_SLATE_SPORTS, SPORTS, SimGame, TruthFn
from mmcore.sim.truth import NS_PER_S, TruthParams, TruthPath, settle_ns, simulate_path, truth_fn
from mmcore.ticks import TickGrid
from mmcore.units import parse_dollars

PriceStructure = Literal["linear_cent", "deci_cent", "tapered_deci_cent"]
RateTierName = Literal["basic", "advanced", "expert", "premier", "paragon", "prime", "prestige"]
FaultKind = Literal[
    "ws_disconnect", "seq_gap", "duplicate_delta", "rate_limit_storm", "http_5xx", "slow_replies",
    "cancel_ack_not_applied", "positions_lag", "pause", "reactivate", "early_close",
    "taker_sweep",
]
SPORT_GAME_LENGTH_S: dict[str, float] = {
    "basketball_nba": 9000.0, "icehockey_nhl": 9000.0, "soccer_epl": 6900.0,
    "americanfootball_nfl": 11700.0, "baseball_mlb": 10800.0,
}
"""Start to settlement by sport; :class:`TruthParams` overrides win."""
MM_USER = "mm"
DEFAULT_MM_BALANCE_DOLLARS = "10000"
PARTICIPANT_BALANCE_DOLLARS = "1000000"
"""Other traders are not meant to run out of money; give them a balance explicitly to test that."""
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_NOW = re.compile(r"now\s*(?:([+-])\s*(\d+(?:\.\d*)?))?")

# --- the file ---------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _file_fields(cls: type, *, optional: bool) -> dict[str, Any]:
    """Pydantic fields mirroring a config dataclass (one source of truth for names and defaults).

    ``user_id`` is assigned, not read; a ``*_ns`` field is written ``*_s`` (float seconds) in files.
    With ``optional`` every field defaults to None (an override of that field).
    """
    hints = get_type_hints(cls)
    spec: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "user_id":
            continue
        name, hint, default = f.name, hints[f.name], f.default
        if name.endswith("_ns"):
            name, hint = name[:-3] + "_s", float
            default = default if default is MISSING else default / NS_PER_S
        if optional:
            spec[name] = (hint | None, None)
        else:
            spec[name] = (hint, ... if default is MISSING else default)
    return spec


TruthOverrides = create_model("TruthOverrides", __config__=_STRICT,
                              **_file_fields(TruthParams, optional=True))
"""Any subset of :class:`~mmcore.sim.truth.TruthParams` fields."""


def _apply(overrides: BaseModel | None, params: TruthParams) -> TruthParams:
    return params if overrides is None else replace(params, **overrides.model_dump(exclude_none=True))


class GameIn(BaseModel):
    model_config = _STRICT
    sport_key: str
    home_team: str
    away_team: str
    start_in_s: float | None = None
    """Seconds after the scenario start (negative: already under way). Or give ``start``."""
    start: str | None = None
    """ISO-8601 start time."""
    true_probs: list[float] | None = Field(None, min_length=2, max_length=3)
    """(home, away[, draw]) at the scenario start; drawn from the seed when absent."""
    fee_type: FeeType = "quadratic_with_maker_fees"
    fee_multiplier: float = 1.0
    price_structure: PriceStructure = "linear_cent"
    series_ticker: str | None = None
    event_ticker: str | None = None
    market_tickers: list[str] | None = None
    """In outcome order (home, away[, draw])."""
    truth: TruthOverrides | None = None  # type: ignore[valid-type]
    tie_market: bool = True
    """Three-way sports only: False lists no ``-TIE`` market; a draw settles both markets NO."""

    @model_validator(mode="after")
    def _one_start(self) -> GameIn:
        if (self.start_in_s is None) == (self.start is None):
            raise ValueError("give exactly one of start_in_s and start")
        if not self.tie_market and not _three_way(self.sport_key):
            raise ValueError(f"tie_market: false needs a three-way sport, not {self.sport_key}")
        return self


class _Who(BaseModel):
    model_config = _STRICT
    count: int = Field(1, ge=0)
    """Identical participants per game (each with its own user id and randomness)."""
    games: list[str] | None = None
    """Event tickers or sport keys this entry trades; every game when absent."""


NoiseTakerIn = create_model("NoiseTakerIn", __base__=_Who, **_file_fields(NoiseTaker, optional=False))
InformedTakerIn = create_model("InformedTakerIn", __base__=_Who,
                               **_file_fields(InformedTaker, optional=False))
CompetingMakerIn = create_model("CompetingMakerIn", __base__=_Who,
                                **_file_fields(CompetingMaker, optional=False))
NewsTakerIn = create_model("NewsTakerIn", __base__=_Who, **_file_fields(NewsTaker, optional=False))


class ParticipantsIn(BaseModel):
    model_config = _STRICT
    noise_takers: list[NoiseTakerIn] = Field(default_factory=list)  # type: ignore[valid-type]
    informed_takers: list[InformedTakerIn] = Field(default_factory=list)  # type: ignore[valid-type]
    competing_makers: list[CompetingMakerIn] = Field(default_factory=list)  # type: ignore[valid-type]
    news_takers: list[NewsTakerIn] = Field(default_factory=list)  # type: ignore[valid-type]


class FaultIn(BaseModel):
    model_config = _STRICT
    at_s: float = Field(ge=0)
    """Seconds after the scenario start."""
    kind: FaultKind
    params: dict[str, Any] = Field(default_factory=dict)
    """Kind-specific. A target is ``ticker`` (event or market ticker), or ``game`` (index into
    ``games``) with an optional ``outcome`` (index into its markets), resolved to ``ticker``."""


class UserIn(BaseModel):
    model_config = _STRICT
    balance_dollars: str | float


class Scenario(BaseModel):
    model_config = _STRICT
    seed: int
    start: str = "now"
    """The simulated clock's start: ISO-8601, ``"now"`` or ``"now+<seconds>"``."""
    description: str | None = None
    games: list[GameIn] = Field(min_length=1)
    truth: TruthOverrides = Field(default_factory=TruthOverrides)  # type: ignore[valid-type]
    participants: ParticipantsIn = Field(default_factory=ParticipantsIn)
    faults: list[FaultIn] = Field(default_factory=list)
    users: dict[str, UserIn] = Field(
        default_factory=lambda: {MM_USER: UserIn(balance_dollars=DEFAULT_MM_BALANCE_DOLLARS)})
    rate_tier: RateTierName = "basic"
    """The account's API usage tier: the buckets the exchange enforces and reports at
    ``GET /account/limits``."""
    toxicity: Literal["benign", "default", "toxic"] | Annotated[float, Field(ge=0.0, le=3.0)] | None = None
    """The toxicity dial (:mod:`mmcore.sim.toxicity`): news rate and size and the informed share
    of takers together. Truth fields and participant groups given here win over the dial's."""


# --- resolved ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedParticipant:
    config: ParticipantConfig
    seed: int
    """Sub-seed for this participant in this game."""

    def rng(self, market_ticker: str) -> random.Random:
        """A fresh stream for one market: the driver keeps it for the (participant, market) pair."""
        return random.Random(derive_seed(self.seed, market_ticker))


@dataclass(frozen=True)
class ResolvedGame:
    sim: SimGame
    """The odds-server view; ``true_probs`` are the probabilities at the scenario start."""
    series_ticker: str
    event_ticker: str
    markets: tuple[str, ...]
    """Market tickers in outcome order (home, away[, draw])."""
    fee_type: str
    fee_multiplier: float
    price_structure: str
    grid: TickGrid
    start_ns: int
    settle_ns: int
    truth_params: TruthParams
    truth: TruthPath
    seed: int
    participants: tuple[ResolvedParticipant, ...]
    rules_secondary: str = ""
    """The markets' settlement rules beyond "this team wins" (empty: the generic text)."""

    @property
    def fees(self) -> FeeSchedule:
        return FeeSchedule.from_series(self.fee_type, self.fee_multiplier)

    @property
    def winner_market(self) -> str | None:
        """The market that settles YES; None when the outcome has no market (a draw in a 2-way
        soccer listing): every market then settles NO."""
        w = self.truth.winner
        return self.markets[w] if w < len(self.markets) else None

    def yes_prob(self, market: str, now_ns: int) -> float:
        """Hidden YES probability of one of this game's markets at ``now_ns``."""
        return self.truth.at(now_ns)[self.markets.index(market)]

    def public_prob(self, market: str, now_ns: int) -> float:
        """The YES probability the sharpest sportsbook prices at ``now_ns`` (news still private
        left out, :meth:`~mmcore.sim.truth.TruthPath.public_at`)."""
        return self.truth.public_at(now_ns)[self.markets.index(market)]


@dataclass(frozen=True)
class Fault:
    at_ns: int
    kind: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class ResolvedScenario:
    seed: int
    start_ns: int
    end_ns: int
    """Last settlement."""
    games: tuple[ResolvedGame, ...]
    faults: tuple[Fault, ...]
    """Sorted by ``at_ns``."""
    users: Mapping[str, int]
    """User id → starting balance (price units): ``mm`` and every participant."""
    rate_tier: str = "basic"
    """The API usage tier the exchange meters (and reports) REST requests with."""

    def slate(self) -> list[SimGame]:
        """The games for :class:`~mmcore.sim.odds_server.OddsSim` (``slate=``)."""
        return [g.sim for g in self.games]

    def truth_fn(self) -> TruthFn:
        """The hidden paths as the odds server's ``truth=`` hook."""
        return truth_fn({g.sim.event_id: g.truth for g in self.games})

    def game(self, ticker: str) -> ResolvedGame:
        """The game with this event ticker, or owning this market ticker."""
        for g in self.games:
            if ticker == g.event_ticker or ticker in g.markets:
                return g
        raise InputError(f"no game or market {ticker!r} in this scenario")


# --- resolution -------------------------------------------------------------------------------


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from named parts (stable across runs and Python versions)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def resolve_time(text: str, now_ns: int) -> int:
    """``"now"``, ``"now+90"`` / ``"now-30"`` (seconds) or ISO-8601 → ns since the epoch."""
    found = _NOW.fullmatch(text.strip())
    if found:
        sign, secs = found.groups()
        offset = 0 if secs is None else round(float(secs) * NS_PER_S)
        return now_ns - offset if sign == "-" else now_ns + offset
    try:
        return iso_to_ns(text)
    except ValueError as exc:
        raise InputError(f"time {text!r}: expected ISO-8601, 'now' or 'now+<seconds>'") from exc


def kalshi_tickers(sport_key: str, home: str, away: str,
                   start_ns: int) -> tuple[str, str, tuple[str, ...]]:
    """(series, event, markets in outcome order) as Kalshi would list this game."""
    series = series_for_sport(sport_key)
    if series is None:
        raise InputError(f"sport {sport_key!r} has no Kalshi series; give the tickers explicitly")
    codes = []
    for name in (home, away):
        found = team_codes(sport_key, name)
        if not found:
            raise InputError(f"no Kalshi code for team {name!r} in {sport_key}; give the tickers")
        codes.append(found[0])
    home_code, away_code = codes
    when = datetime.datetime.fromtimestamp(start_ns // NS_PER_S, tz=EASTERN)
    date = f"{when.year % 100:02d}{_MONTHS[when.month - 1]}{when.day:02d}"
    if sport_key == "baseball_mlb":
        date += f"{when.hour:02d}{when.minute:02d}"
    three = _three_way(sport_key)
    teams = home_code + away_code if three else away_code + home_code
    event = f"{series}-{date}{teams}"
    markets = (f"{event}-{home_code}", f"{event}-{away_code}")
    return series, event, markets + ((f"{event}-{TIE_CODE}",) if three else ())


def _three_way(sport_key: str) -> bool:
    sport = SPORTS.get(sport_key)
    return sport.three_way if sport is not None else sport_key.startswith("soccer_")


def _draw_probs(rng: random.Random, sport_key: str) -> tuple[float, ...]:
    sport = SPORTS.get(sport_key)
    mu, sd = (sport.home_logit_mu, sport.logit_sd) if sport else (0.15, 0.8)
    share = min(0.9, max(0.1, 1.0 / (1.0 + math.exp(-rng.gauss(mu, sd)))))
    if not _three_way(sport_key):
        return (share, 1.0 - share)
    draw = rng.uniform(0.22, 0.30)
    return ((1.0 - draw) * share, (1.0 - draw) * (1.0 - share), draw)


def _game_tickers(g: GameIn, start_ns: int, n: int) -> tuple[str, str, tuple[str, ...]]:
    if g.event_ticker is None:
        if g.series_ticker or g.market_tickers:
            raise InputError("series_ticker / market_tickers need event_ticker as well")
        return kalshi_tickers(g.sport_key, g.home_team, g.away_team, start_ns)
    series = parse_event_ticker(g.event_ticker)[0]
    if g.series_ticker is not None and g.series_ticker != series:
        raise InputError(f"event {g.event_ticker} is not in series {g.series_ticker}")
    if g.market_tickers is not None:
        markets = tuple(g.market_tickers)
    else:
        generated = kalshi_tickers(g.sport_key, g.home_team, g.away_team, start_ns)[2]
        markets = tuple(g.event_ticker + m[m.rindex("-"):] for m in generated)
    if len(markets) != n or any(not m.startswith(g.event_ticker + "-") for m in markets):
        raise InputError(f"event {g.event_ticker} needs {n} markets '<event>-<CODE>' in outcome "
                         f"order, got {list(markets)}")
    return series, g.event_ticker, markets


DRAW_SETTLES_NO = "If the match ends in a draw, the market resolves to No."
"""``rules_secondary`` of a 2-way soccer listing (no tie market)."""


def _resolve_game(sc: Scenario, g: GameIn, t0_ns: int, now_ns: int) -> ResolvedGame:
    start_ns = (t0_ns + round(g.start_in_s * NS_PER_S) if g.start_in_s is not None
                else resolve_time(g.start or "", now_ns))
    n = 3 if _three_way(g.sport_key) else 2
    listed = n if g.tie_market else 2
    if g.tie_market or g.market_tickers is not None:
        series, event, markets = _game_tickers(g, start_ns, listed)
    else:  # a 2-way listing of a 3-way sport: the generated tickers without the -TIE market
        series, event, markets = _game_tickers(g, start_ns, n)
        markets = markets[:2]
    game_seed = derive_seed(sc.seed, "game", event)
    if g.true_probs is not None:
        if len(g.true_probs) != n:
            raise InputError(f"{event}: {g.sport_key} has {n} outcomes, true_probs has "
                             f"{len(g.true_probs)}")
        p0 = tuple(g.true_probs)
    else:
        p0 = _draw_probs(random.Random(derive_seed(game_seed, "probs")), g.sport_key)
    params = TruthParams(game_length_s=SPORT_GAME_LENGTH_S.get(g.sport_key, 9000.0))
    params = _apply(g.truth, _apply(sc.truth, params))
    end_ns = settle_ns(start_ns, params)
    if end_ns <= t0_ns:
        raise InputError(f"{event} settles before the scenario starts")
    path = simulate_path(p0, start_ns, end_ns, t0_ns, params,
                         random.Random(derive_seed(game_seed, "truth")))
    sport = SPORTS.get(g.sport_key)
    event_id = hashlib.md5(f"{sc.seed}|{event}".encode()).hexdigest()
    sim = SimGame(event_id, g.sport_key, sport.title if sport else g.sport_key, g.home_team,
                  g.away_team, start_ns, path.probs[0])
    grid = getattr(TickGrid, g.price_structure)()
    return ResolvedGame(sim, series, event, markets, g.fee_type, g.fee_multiplier,
                        g.price_structure, grid, start_ns, end_ns, params, path, game_seed,
                        _participants(sc.participants, g.sport_key, event, game_seed),
                        "" if g.tie_market else DRAW_SETTLES_NO)


def _participants(spec: ParticipantsIn, sport_key: str, event: str,
                  game_seed: int) -> tuple[ResolvedParticipant, ...]:
    out: list[ResolvedParticipant] = []
    groups: tuple[tuple[str, list[Any]], ...] = (
        ("noise", spec.noise_takers), ("informed", spec.informed_takers),
        ("maker", spec.competing_makers), ("news", spec.news_takers))
    for kind, entries in groups:
        for i, entry in enumerate(entries):
            if entry.games is not None and not {event, sport_key} & set(entry.games):
                continue
            for k in range(entry.count):
                user = f"{kind}-{i}-{k}"
                out.append(ResolvedParticipant(_config(kind, entry, user),
                                               derive_seed(game_seed, "participant", user)))
    return tuple(out)


def _config(kind: str, entry: Any, user: str) -> ParticipantConfig:
    cls = {"noise": NoiseTaker, "informed": InformedTaker, "maker": CompetingMaker,
           "news": NewsTaker}[kind]
    raw = entry.model_dump(exclude={"count", "games"})
    ns_fields = {f.name for f in fields(cls) if f.name.endswith("_ns")}
    for name in ns_fields:
        raw[name] = round(raw.pop(name[:-3] + "_s") * NS_PER_S)
    return cls(user_id=user, **raw)


def _fault_params(fault: FaultIn, games: tuple[ResolvedGame, ...]) -> dict[str, Any]:
    """Params as given, with ``game`` (index into ``games``) and optional ``outcome`` (index)
    replaced by the ``ticker`` they name; a given ``ticker`` must belong to the scenario."""
    params = dict(fault.params)
    where = f"fault {fault.kind} at {fault.at_s}s"
    if "game" in params:
        gi, outcome = params.pop("game"), params.pop("outcome", None)
        if not isinstance(gi, int) or not 0 <= gi < len(games):
            raise InputError(f"{where}: game must be an index below {len(games)}, got {gi!r}")
        markets = games[gi].markets
        if outcome is not None and (not isinstance(outcome, int) or not 0 <= outcome < len(markets)):
            raise InputError(f"{where}: outcome must be an index below {len(markets)}")
        params["ticker"] = games[gi].event_ticker if outcome is None else markets[outcome]
    ticker = params.get("ticker")
    if ticker is not None:
        known = {t for g in games for t in (g.event_ticker, *g.markets)}
        if ticker not in known:
            raise InputError(f"{where}: unknown ticker {ticker!r}")
    return params


def with_toxicity(sc: Scenario) -> Scenario:
    """The scenario with its toxicity dial filled in under what the file gives: the dial's truth
    fields under ``truth``, its participant groups where the file names none (a group the file
    names, even empty, replaces the dial's). Unchanged without ``toxicity``."""
    if sc.toxicity is None:
        return sc
    d = dial(sc.toxicity)
    truth = TruthOverrides(**{**d.truth, **sc.truth.model_dump(exclude_none=True)})
    given = {k: getattr(sc.participants, k) for k in sc.participants.model_fields_set}
    participants = ParticipantsIn.model_validate({**d.participants, **given})
    return sc.model_copy(update={"truth": truth, "participants": participants})


def resolve(sc: Scenario, now_ns: int) -> ResolvedScenario:
    """Resolve a validated scenario against ``now_ns``: concrete games, truth, participants."""
    sc = with_toxicity(sc)
    t0_ns = resolve_time(sc.start, now_ns)
    games = tuple(_resolve_game(sc, g, t0_ns, now_ns) for g in sc.games)
    seen: set[str] = set()
    for g in games:
        if g.event_ticker in seen:
            raise InputError(f"two games share event ticker {g.event_ticker}; give tickers")
        seen.add(g.event_ticker)
    faults = tuple(sorted((Fault(t0_ns + round(f.at_s * NS_PER_S), f.kind, _fault_params(f, games))
                           for f in sc.faults), key=lambda f: f.at_ns))
    users = {p.config.user_id: parse_dollars(PARTICIPANT_BALANCE_DOLLARS)
             for g in games for p in g.participants}
    users.setdefault(MM_USER, parse_dollars(DEFAULT_MM_BALANCE_DOLLARS))
    for user, spec in sc.users.items():
        users[user] = parse_dollars(spec.balance_dollars, rounding="down")
    return ResolvedScenario(sc.seed, t0_ns, max(g.settle_ns for g in games), games, faults, users,
                            rate_tier=sc.rate_tier)


def load_scenario(source: str | Path | Mapping[str, Any] | Scenario,
                  now_ns: int) -> ResolvedScenario:
    """Read (a path to a JSON file, a dict, or a :class:`Scenario`), validate and resolve.

    Raises :class:`~mmcore.errors.InputError` naming the file and the offending key.
    """
    if isinstance(source, Scenario):
        return resolve(source, now_ns)
    where = "scenario"
    if isinstance(source, (str, Path)):
        where = f"scenario {source}"
        try:
            raw = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{where}: {exc}") from exc
    else:
        raw = source
    try:
        sc = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise InputError(f"{where}: {exc}") from exc
    return resolve(sc, now_ns)


def default_scenario_dict(seed: int, n_games: int = 3) -> dict[str, Any]:
    """A small demo slate cycling NBA, NHL and EPL, games 5, 10, 15… minutes after the start."""
    rng = random.Random(derive_seed(seed, "default-slate"))
    pools = {key: rng.sample(SPORTS[key].teams, len(SPORTS[key].teams))
             for key in DEFAULT_SLATE_SPORTS}
    games = []
    for i in range(n_games):
        key = DEFAULT_SLATE_SPORTS[i % len(DEFAULT_SLATE_SPORTS)]
        if len(pools[key]) < 2:
            raise InputError(f"not enough {key} teams for {n_games} games")
        home, away = pools[key].pop(), pools[key].pop()
        games.append({"sport_key": key, "home_team": home, "away_team": away,
                      "start_in_s": 300.0 * (i + 1)})
    return {
        "seed": seed, "start": "now", "games": games,
        "participants": {
            "noise_takers": [{"count": 2, "rate_per_s": 0.05, "size_contracts_min": 1,
                              "size_contracts_max": 10, "max_spread_price": 1500}],
            "informed_takers": [{"edge_threshold_price": 300, "rate_per_s": 0.02,
                                 "noise_sd_prob": 0.01}],
            "competing_makers": [
                {"half_spread_price": 400, "ceiling_edge_price": 150, "penny": True},
                {"half_spread_price": 300, "ceiling_edge_price": 200, "penny": False,
                 "requote_min_s": 10.0},
            ],
        },
        "users": {MM_USER: {"balance_dollars": DEFAULT_MM_BALANCE_DOLLARS}},
    }


def default_scenario(seed: int, now_ns: int, n_games: int = 3) -> ResolvedScenario:
    """:func:`default_scenario_dict` resolved against ``now_ns``."""
    return load_scenario(default_scenario_dict(seed, n_games), now_ns)


__all__ = [
    "Fault", "FaultKind", "ResolvedGame", "ResolvedParticipant", "ResolvedScenario", "Scenario",
    "default_scenario", "default_scenario_dict", "derive_seed", "kalshi_tickers", "load_scenario",
    "resolve", "resolve_time", "with_toxicity",
]
