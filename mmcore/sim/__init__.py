"""The embedded default: local stand-ins for the outside venues, started on 127.0.0.1.

- :mod:`mmcore.sim.slate` — a seeded slate of games with hidden true probabilities, and the
  simulated sportsbooks that price them (per-book margin, noise, staleness, gaps).
- :mod:`mmcore.sim.odds_server` — an HTTP server shaped like The Odds API v4 serving that slate
  (:class:`~mmcore.sim.odds_server.OddsServer`).

This package file stays import-light on purpose (no Starlette/uvicorn): client code may read
:data:`SIM_ODDS_API_KEY` without pulling in the server.
"""

from __future__ import annotations

SIM_ODDS_API_KEY = "sim-odds-api-key"
"""The API key the local odds server accepts unless configured otherwise (not a secret)."""

__all__ = ["SIM_ODDS_API_KEY"]
