"""Seeded worlds for the backtest and the strategy benchmark: N games at one toxicity level.

:func:`world_scenario` writes a scenario (the JSON shape :class:`~mmcore.sim.scenario.Scenario`
reads) of ``games`` games cycling through the sports, every game starting ``lead_s`` after the
scenario start (plus ``i × spacing_s``), with ``toxicity`` set so the dial
(:mod:`mmcore.sim.toxicity`) supplies the news and the traders: noise takers leaning toward YES
and longshots, sharp takers, news-informed takers and two competing makers per market.

Why every game starts together: a backtest runs from the scenario start, so a game starting
days later would cost days of simulated time; instead the games are independent draws sharing
one short horizon, and any subset (``run_backtest(games=…)``) is as cheap as its size. Teams are
distinct ordered pairs within a sport (unique Kalshi event tickers on one date; a team may
appear in several games — they are independent worlds, not a schedule).

Cheap: writing the dict is microseconds per game; resolving it simulates each truth path with
a 1 s pre-game grid and a coarse in-play grid (:data:`INPLAY_STEP_S`), ~5 ms a game.
Deterministic in its arguments. Units: times in seconds (file fields).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from mmcore.errors import InputError
from mmcore.sim.scenario import MM_USER, derive_seed
from mmcore.sim.slate import SPORTS
from mmcore.sim.toxicity import level_of

WORLD_SPORTS: tuple[str, ...] = ("basketball_nba", "icehockey_nhl", "soccer_epl",
                                 "americanfootball_nfl", "baseball_mlb")
DEFAULT_LEAD_S = 900.0
"""Games start 15 minutes after the scenario start (the quoting window before each start)."""
INPLAY_STEP_S = 30.0
"""In-play grid of the truth path: nobody quotes in play in a backtest; only the winner
needs the in-play path."""
MM_BALANCE_PER_GAME_DOLLARS = 5000


def world_scenario(toxicity: str | float = "default", games: int = 3, seed: int = 7, *,
                   lead_s: float = DEFAULT_LEAD_S, spacing_s: float = 0.0,
                   sports: Sequence[str] = WORLD_SPORTS) -> dict[str, Any]:
    """A scenario dict of ``games`` games at this ``toxicity`` (see the module docstring)."""
    level_of(toxicity)  # a bad level fails here
    if games < 1:
        raise InputError(f"games must be >= 1, got {games}")
    if lead_s <= 0 or spacing_s < 0:
        raise InputError("lead_s must be > 0 and spacing_s >= 0")
    if not sports:
        raise InputError("no sports given")
    rng = random.Random(derive_seed(seed, "world-slate"))
    pairs: dict[str, list[tuple[str, str]]] = {}
    for key in sports:
        sport = SPORTS.get(key)
        if sport is None:
            raise InputError(f"unknown sport key {key!r}; known: {', '.join(sorted(SPORTS))}")
        ordered = [(h, a) for h in sport.teams for a in sport.teams if h != a]
        rng.shuffle(ordered)
        pairs[key] = ordered
    out = []
    for i in range(games):
        key = sports[i % len(sports)]
        if not pairs[key]:
            raise InputError(f"{games} games need more {key} team pairings than exist")
        home, away = pairs[key].pop()
        out.append({"sport_key": key, "home_team": home, "away_team": away,
                    "start_in_s": lead_s + i * spacing_s})
    return {
        "seed": seed, "start": "now",
        "description": f"world: {games} games at toxicity {toxicity!r}",
        "toxicity": toxicity,
        "games": out,
        "truth": {"inplay_step_s": INPLAY_STEP_S},
        "users": {MM_USER: {"balance_dollars": str(max(10_000, MM_BALANCE_PER_GAME_DOLLARS * games))}},
    }


__all__ = ["DEFAULT_LEAD_S", "WORLD_SPORTS", "world_scenario"]
