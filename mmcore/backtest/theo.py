"""Theo in the backtest: a consensus over the simulated sportsbooks' prices at the pull time.

What the live path does (odds server → Odds API client → parse → :func:`consensus_theo` →
snapshot), minus the HTTP: each book's h2h back prices come from
:func:`mmcore.sim.slate.quote_h2h` with the same seed and truth the local odds server uses
(``OddsServerConfig(seed=scenario.seed)``, ``scenario.truth_fn()``), so the theo is the one the
odds pull would have published at that instant. Books: the production default list
(:data:`mmcore.settings.DEFAULT_BOOKMAKERS`) as far as the simulator has them.

When: at the scenario start, every 30 minutes after (the scheduled pull), and when the worker
asks (``RefreshTheo``, after the latency model's ``theo_pull_ns``) — chosen in the runner.
"""

from __future__ import annotations

from mmcore.odds.consensus import ConsensusParams, consensus_theo
from mmcore.odds.events import BookLine, EventOdds
from mmcore.settings import DEFAULT_BOOKMAKERS
from mmcore.sim.scenario import ResolvedGame, ResolvedScenario
from mmcore.sim.slate import DEFAULT_BOOKS, SimBook, quote_h2h
from mmcore.worker.engine import TheoEv

PULL_INTERVAL_NS = 30 * 60 * 1_000_000_000
"""The scheduled odds pull's period."""

DEFAULT_CONSENSUS = ConsensusParams()

BACKTEST_BOOKS: tuple[SimBook, ...] = tuple(b for b in DEFAULT_BOOKS if b.key in DEFAULT_BOOKMAKERS)


def sim_theo(scenario: ResolvedScenario, game: ResolvedGame, markets: tuple[str, ...],
             now_ns: int, params: ConsensusParams = DEFAULT_CONSENSUS) -> TheoEv | None:
    """The worker's theo event for ``game`` at ``now_ns`` in the order of ``markets``; None
    when the consensus cannot price the game (too few books)."""
    truth = scenario.truth_fn()
    sim = game.sim
    lines = []
    for book in BACKTEST_BOOKS:
        q = quote_h2h(book, sim, seed=scenario.seed, now_ns=now_ns, truth=truth)
        if q is not None:
            lines.append(BookLine(book.key, book.title, tuple(q.prices), q.last_update_ns))
    event = EventOdds(sim.event_id, sim.sport_key, sim.commence_ns, sim.home_team, sim.away_team,
                      sim.outcome_names, tuple(lines))
    theo = consensus_theo(event, now_ns, params)
    if theo.theo is None:
        return None
    # game.markets are in outcome order (home, away[, draw]); a 2-way listing of a 3-way game
    # has no market for the draw
    by_market = dict(zip(game.markets, theo.theo))
    unc = dict(zip(game.markets, theo.uncertainty or ()))
    return TheoEv(tuple(by_market[m] for m in markets), tuple(unc.get(m, 0.0) for m in markets),
                  now_ns, f"backtest:{sim.event_id}:{params.method}", confidence=theo.confidence)
