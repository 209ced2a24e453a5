"""The local exchange's shared state: one engine, its clock, its keys, its faults, its event bus.

:class:`LocalExchange` is what the REST routes (:mod:`mmcore.sim.rest`), the WebSocket endpoint
(:mod:`mmcore.sim.ws`) and the participants' driver (:mod:`mmcore.sim.driver`) share. It owns no
sockets. Every engine mutation goes through :meth:`LocalExchange.mutate`, which runs the call at
the exchange clock's ``now_ns`` and then publishes the engine's drained events to every
subscriber (the WebSocket hub), in order — so REST writes, participant flow and lifecycle changes
all reach WebSocket clients the same way.

Everything here runs on one asyncio loop; engine calls never await, so no lock is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from mmcore.sim.engine import Engine
from mmcore.sim.engine_types import EngineEvent
from mmcore.sim.scenario import ResolvedScenario
from mmcore.venues.kalshi.auth import KeyRegistry

T = TypeVar("T")
ClockNs = Callable[[], int]
EventSink = Callable[[list[EngineEvent]], None]

MM_USER = "mm"
"""The user id our market maker trades as on the local exchange."""


@dataclass
class RateTier:
    """Kalshi token buckets (kalshi.md §5): tokens per second and bucket capacity, per kind.
    ``name`` is what ``GET /account/limits`` reports as ``usage_tier``."""

    read_per_s: float = 200.0
    read_capacity: float = 400.0
    write_per_s: float = 100.0
    write_capacity: float = 100.0
    name: str = "basic"


BASIC = RateTier()
ADVANCED = RateTier(300.0, 600.0, 300.0, 600.0, "advanced")
PREMIER = RateTier(1000.0, 1000.0, 1000.0, 2000.0, "premier")
RATE_TIERS: dict[str, RateTier] = {
    # Write buckets above Basic and Basic/Advanced read buckets hold 2 s; the rest 1 s (§5).
    "basic": BASIC,
    "advanced": ADVANCED,
    "expert": RateTier(600.0, 600.0, 600.0, 1200.0, "expert"),
    "premier": PREMIER,
    "paragon": RateTier(2000.0, 2000.0, 2000.0, 4000.0, "paragon"),
    "prime": RateTier(4000.0, 4000.0, 4000.0, 8000.0, "prime"),
    "prestige": RateTier(10000.0, 10000.0, 8000.0, 16000.0, "prestige"),
}
"""The public Predictions tiers by ``usage_tier`` name (a scenario's ``rate_tier`` picks one)."""


@dataclass
class Faults:
    """Faults switched on by the scenario timeline or ``POST /sim/faults``; read by each layer.

    Times are exchange-clock ns; counts are how many more messages/requests are affected.
    """

    http_5xx_remaining: int = 0
    rate_limit_storm_until_ns: int = 0
    slow_reply_s: float = 0.0
    slow_until_ns: int = 0
    cancel_ack_not_applied_s: float = 0.0
    cancel_ack_until_ns: int = 0
    cancel_ack_every: int = 1
    """Under ``cancel_ack_not_applied``, every ``cancel_ack_every``-th cancel lies (2: half)."""
    cancel_ack_seen: int = 0
    """Cancels of resting orders counted under the running ``cancel_ack_not_applied``."""
    positions_lag_s: float = 0.0
    positions_lag_until_ns: int = 0
    ws_disconnect_pending: int = 0
    ws_seq_gap_pending: int = 0
    ws_duplicate_pending: int = 0
    ws_reorder_pending: int = 0
    """How many more ``orderbook_delta`` frames are held back and sent after the next delta
    frame of the same subscription (two frames swapped: the client sees seq n+1, then n)."""
    ws_reorder_held: int = 0
    """Frames held back by ``reorder_delta`` and not yet released (each is released right
    after the next delta frame of its subscription)."""
    route_5xx: dict[str, int] = field(default_factory=dict)
    """REST path (under ``/trade-api/v2``) → how many more requests to it answer 503."""
    ws_silent_until_ns: dict[str, int] = field(default_factory=dict)
    """Market → until when its ``orderbook_delta`` frames (snapshots too) are not sent, the
    socket staying up (a silent feed, not a gap: no ``seq`` is used up)."""
    log: list[dict[str, Any]] = field(default_factory=list)
    """Every fault applied: ``{"at_ns", "kind", "params"}`` (for ``GET /sim/state`` and tests)."""


@dataclass
class LocalExchange:
    """State shared by the local exchange's REST, WebSocket and participant layers."""

    engine: Engine = field(default_factory=Engine)
    clock_ns: ClockNs = time.time_ns
    keys: KeyRegistry = field(default_factory=KeyRegistry)
    key_users: dict[str, str] = field(default_factory=dict)
    """API key id → user id."""
    tier: RateTier = field(default_factory=RateTier)
    faults: Faults = field(default_factory=Faults)
    scenario: ResolvedScenario | None = None
    market_start_ns: dict[str, int] = field(default_factory=dict)
    """Event ticker → game start (the milestone start_date)."""
    _sinks: list[EventSink] = field(default_factory=list)

    # --- time and events -------------------------------------------------------------------

    def now_ns(self) -> int:
        return self.clock_ns()

    def subscribe(self, sink: EventSink) -> Callable[[], None]:
        """Receive every batch of engine events; returns an unsubscribe function."""
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink) if sink in self._sinks else None

    def publish(self) -> list[EngineEvent]:
        """Drain the engine's events and hand them to every sink (in subscription order)."""
        events = self.engine.drain_events()
        if events:
            for sink in list(self._sinks):
                sink(events)
        return events

    def mutate(self, fn: Callable[[Engine, int], T]) -> T:
        """Run ``fn(engine, now_ns)`` and publish what it caused — even when it raises."""
        try:
            return fn(self.engine, self.now_ns())
        finally:
            self.publish()

    # --- accounts --------------------------------------------------------------------------

    def add_key(self, key_id: str, public_key: Any, user_id: str) -> None:
        self.keys.add(key_id, public_key)
        self.key_users[key_id] = user_id

    def user_for_key(self, key_id: str) -> str:
        return self.key_users[key_id]

    # --- reference data ----------------------------------------------------------------------

    @classmethod
    def from_scenario(
        cls, scenario: ResolvedScenario, *, clock_ns: ClockNs = time.time_ns, **kw: Any
    ) -> LocalExchange:
        """An exchange listing every game of the scenario, with its users funded, metering
        REST at the scenario's ``rate_tier`` (unless ``tier=`` is given)."""
        kw.setdefault("tier", RATE_TIERS[scenario.rate_tier])
        ex = cls(clock_ns=clock_ns, scenario=scenario, **kw)
        ex.list_games(scenario)
        for user, balance in scenario.users.items():
            ex.engine.add_user(user, balance=balance)
        ex.publish()
        return ex

    def list_games(self, scenario: ResolvedScenario) -> None:
        eng = self.engine
        for g in scenario.games:
            if g.series_ticker not in eng.series:
                eng.add_series(g.series_ticker, title=g.sim.sport_title, fee_type=g.fee_type,
                               fee_multiplier=g.fee_multiplier)
            eng.add_event(g.event_ticker, series_ticker=g.series_ticker,
                          title=f"{g.sim.away_team} at {g.sim.home_team}",
                          start_ns=g.start_ns)
            self.market_start_ns[g.event_ticker] = g.start_ns
            names = [*g.sim.outcome_names]
            for market, name in zip(g.markets, names):
                eng.add_market(market, event_ticker=g.event_ticker, title=f"{name} wins?",
                               yes_sub_title=name, grid=g.grid, open_ns=scenario.start_ns,
                               close_ns=g.settle_ns, rules_secondary=g.rules_secondary)

    def event_tickers(self) -> Iterable[str]:
        return self.engine.events.keys()
