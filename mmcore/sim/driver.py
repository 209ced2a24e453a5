"""The participants' driver: one sans-I/O stepper shared by the local exchange and the backtest.

:class:`SimDriver` moves the simulated world of a :class:`~mmcore.sim.scenario.ResolvedScenario`
forward on a :class:`~mmcore.sim.exchange.LocalExchange`: the fault timeline, the lifecycle
(settlement) and the other traders (:mod:`mmcore.sim.participants`). It reads no clock, sleeps
never and draws randomness only from the per-(participant, market) streams the scenario derives.
Only the loop around it differs (design.md "the same core runs live, against the local exchange,
and in the backtest"):

- :func:`run_live` — the local exchange server's task: step at the exchange's wall clock, sleep
  until :meth:`SimDriver.next_wake_ns` (capped), repeat until ``stop`` is set;
- :func:`run_backtest` — in-process and fast: a :class:`SimClock` jumps straight to the next wake
  (or ``step_ns`` later, or the clock's next timer), the driver steps, and ``on_step(now_ns)``
  lets an in-process market maker act at the same virtual times.

Rules of this file:

- **Calling order of one** :meth:`SimDriver.step`: (1) faults due (``at_ns <= now``, timeline
  order) through ``fault_handler`` (default: :func:`mmcore.sim.rest_faults.apply_fault`, the
  same code ``POST /sim/faults`` runs); (2) lifecycle: ``engine.expire(now)``, then every game whose
  ``settle_ns <= now`` is closed, determined and settled (the winner market YES, the others NO) —
  game start changes nothing, markets stay open in play as on Kalshi; (3) agents whose wake is due,
  earliest first (ties by agent index), one decision each — a taker handles one arrival per call
  and goes back in the queue, so a late step catches up arrival by arrival; (4) makers whose
  market changed since their last decision, once each, in agent index order.
- **Agents.** One per (game, participant, market), in that order; each keeps its own
  ``rng = participant.rng(market)`` and ``state = config.initial_state(scenario.start_ns, rng)``.
  An agent retires when its game settles, or at its next wake once its market has left
  ``active``/``paused``/``unopened`` (an early close); a paused market's agents keep waking
  (``MarketView.is_open`` is False, so they do nothing).
- **Book changes.** The driver subscribes to the exchange's events; a ``BookDelta`` or lifecycle
  event bumps the market's version. A maker has seen its market's version as of the end of its
  own last decision (its own orders do not wake it); a change by anyone else — another maker, a
  taker's fill, our market maker's REST write — makes it decide again at the next step (or later
  in this one). A maker that is still dirty after a step is due at ``now + 1``.
- **Engine writes** go through :meth:`LocalExchange.mutate` (one call per decision, intents in
  list order, each refusal caught and recorded as a :class:`Refusal` — participants may
  legitimately be refused: post-only cross, balance, a paused market). Engine calls carry the
  exchange clock's time, so in a backtest the exchange must read the :class:`SimClock`
  (``LocalExchange.from_scenario(sc, clock_ns=clock.now_ns)``) and steps must be at its time.
- **Time never goes backwards**: a step earlier than the previous one runs at the previous time.
  After a step, :meth:`SimDriver.next_wake_ns` is strictly later than that step.
- **Deterministic**: the same scenario and the same sequence of step times (and the same outside
  writes in between) give the same engine calls, ids, records and events.

Units: times ``int`` ns since the epoch; prices ``int`` price units; counts centi-contracts.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mmcore.errors import InputError
from mmcore.sim import rest_faults
from mmcore.sim.engine import Engine
from mmcore.sim.engine_types import (
    BookDelta, EngineError, EngineEvent, LifecycleEvent, MarketStatus, OrderRequest,
)
from mmcore.sim.exchange import LocalExchange
from mmcore.sim.participants import (
    BookView, CancelAllIntent, CancelIntent, CompetingMaker, Intent, MarketView, NewsTaker,
    OwnOrder, ParticipantConfig, ParticipantState, PlaceIntent,
)
from mmcore.sim.scenario import Fault, ResolvedGame, ResolvedScenario
from mmcore.sim.truth import NS_PER_S

log = logging.getLogger(__name__)

FaultHandler = Callable[[str, Mapping[str, Any], int], None]
"""``fault_handler(kind, params, now_ns)``: apply one fault of the timeline."""

DEFAULT_FAULT_SECONDS = 30.0
"""How long a timed fault lasts when its params give neither ``seconds`` nor ``duration_s``."""
DEFAULT_DELAY_S = 1.0
"""``delay_s`` / ``lag_s`` of slow replies, unapplied cancel acks and lagging positions."""
DEFAULT_STEP_NS = NS_PER_S
"""The backtest steps at least this often (so an in-process market maker acts every second)."""
DEFAULT_MAX_SLEEP_S = 0.05
"""The live loop sleeps at most this long (outside writes may wake makers at any time)."""

_LIVE: tuple[MarketStatus, ...] = ("unopened", "active", "paused")
"""Statuses in which a market's agents keep running."""


# --- the virtual clock ------------------------------------------------------------------------


@dataclass(order=True)
class _Timer:
    ts_ns: int
    seq: int
    fn: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        """Forget the timer if it has not fired yet."""
        self.cancelled = True


class SimClock:
    """A virtual clock: ``now_ns()`` moves only by :meth:`advance_to`, which fires due timers.

    Timers fire in time order (ties in scheduling order) with ``now_ns()`` set to their time; a
    timer scheduled in the past fires at the next :meth:`advance_to`, at the current time. Timers
    scheduled by a firing timer fire in the same :meth:`advance_to` when they are due by its end.
    Pass ``clock.now_ns`` as the exchange's ``clock_ns``.
    """

    def __init__(self, start_ns: int) -> None:
        self._now = start_ns
        self._timers: list[_Timer] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now

    def call_at(self, ts_ns: int, fn: Callable[[], None]) -> _Timer:
        """Run ``fn()`` when the clock reaches ``ts_ns``; returns a handle with ``cancel()``."""
        timer = _Timer(ts_ns, next(self._seq), fn)
        heapq.heappush(self._timers, timer)
        return timer

    def next_timer_ns(self) -> int | None:
        """When the earliest pending timer is due (None when there is none)."""
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)
        return self._timers[0].ts_ns if self._timers else None

    def advance_to(self, ts_ns: int) -> None:
        """Move to ``ts_ns``, firing every timer due by then in order; never backwards."""
        if ts_ns < self._now:
            raise InputError(f"SimClock cannot go back from {self._now} to {ts_ns}")
        while self._timers and self._timers[0].ts_ns <= ts_ns:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, timer.ts_ns)
            timer.fn()
        self._now = ts_ns


# --- faults -----------------------------------------------------------------------------------


def scenario_fault_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A scenario file's fault params completed for :func:`mmcore.sim.rest_faults.apply_fault`,
    which wants every parameter spelled out: ``count`` defaults to 1; ``seconds`` comes from
    ``duration_s`` (the example scenario's spelling) or :data:`DEFAULT_FAULT_SECONDS`;
    ``delay_s`` / ``lag_s`` default to :data:`DEFAULT_DELAY_S`. Other keys pass through (they
    end up in the fault log). Engine-level kinds must name their ``ticker`` (the scenario
    resolves ``game``/``outcome`` to it)."""
    out = dict(params)
    needs = rest_faults.FAULT_KINDS.get(kind, ())
    if "count" in needs:
        out.setdefault("count", 1)
    if "seconds" in needs and "seconds" not in out:
        out["seconds"] = out.get("duration_s", DEFAULT_FAULT_SECONDS)
    for name in ("delay_s", "lag_s"):
        if name in needs:
            out.setdefault(name, DEFAULT_DELAY_S)
    return out


def default_fault_handler(ex: LocalExchange) -> FaultHandler:
    """The timeline's default: :func:`mmcore.sim.rest_faults.apply_fault` — the one place a
    fault is switched on, shared with ``POST /sim/faults`` — with :func:`scenario_fault_params`.
    It applies the fault at the exchange clock (the step's time in a backtest) and appends it to
    ``ex.faults.log``; a bad kind or parameter raises :class:`EngineError` before any change."""

    def handle(kind: str, params: Mapping[str, Any], now_ns: int) -> None:
        rest_faults.apply_fault(ex, kind, scenario_fault_params(kind, params))

    return handle


# --- reports ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An engine refusal met while applying ``action``: an intent, ``"settle"`` or
    ``"fault:<kind>"``."""

    user_id: str | None
    ticker: str | None
    action: Intent | str
    error: EngineError


@dataclass(frozen=True)
class StepReport:
    """What one :meth:`SimDriver.step` did: intents the engine accepted (in order), refusals,
    faults fired and markets settled."""

    now_ns: int
    intents_applied: tuple[Intent, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    faults_fired: tuple[Fault, ...] = ()
    settled_markets: tuple[str, ...] = ()


@dataclass
class _Agent:
    index: int
    config: ParticipantConfig
    game: ResolvedGame
    market: str
    rng: random.Random
    state: ParticipantState
    maker: bool
    public: bool = False
    """Its view carries ``public_p`` (news takers, makers following the books)."""
    seen_version: int = -1
    last_decided_ns: int | None = None
    live: bool = True

    @property
    def wake_ns(self) -> int:
        """When the agent is next due; a maker decides at most once per ns in the due pass."""
        wake = self.state.wake_ns
        if self.maker and self.last_decided_ns is not None:
            wake = max(wake, self.last_decided_ns + 1)
        return wake


# --- the driver -------------------------------------------------------------------------------


class SimDriver:
    """Steps a scenario's faults, lifecycle and participants on a :class:`LocalExchange`.

    ``fault_handler(kind, params, now_ns)`` defaults to :func:`default_fault_handler` (``ex``); a
    custom handler is responsible for ``ex.faults.log``. An :class:`EngineError` it raises is
    recorded as a :class:`Refusal`; any other exception propagates out of :meth:`step` (either
    way the fault counts as fired). Call :meth:`close` to stop listening to the
    exchange's events.
    """

    def __init__(self, ex: LocalExchange, scenario: ResolvedScenario, *,
                 fault_handler: FaultHandler | None = None) -> None:
        self.ex = ex
        self.scenario = scenario
        self.fault_handler: FaultHandler = fault_handler or default_fault_handler(ex)
        self.last_report: StepReport | None = None
        self._now: int | None = None
        self._faults = list(scenario.faults)
        self._next_fault = 0
        self._to_settle = sorted(scenario.games, key=lambda g: (g.settle_ns, g.event_ticker))
        self._next_settle = 0
        self._versions: dict[str, int] = {m: 0 for g in scenario.games for m in g.markets}
        self._agents: list[_Agent] = []
        t0 = scenario.start_ns
        for g in scenario.games:
            for p in g.participants:
                for m in g.markets:
                    rng = p.rng(m)
                    cfg = p.config
                    self._agents.append(_Agent(
                        len(self._agents), cfg, g, m, rng, cfg.initial_state(t0, rng),
                        isinstance(cfg, CompetingMaker),
                        isinstance(cfg, NewsTaker) or getattr(cfg, "follows_books", False)))
        self._by_market: dict[str, list[_Agent]] = {}
        for a in self._agents:
            self._by_market.setdefault(a.market, []).append(a)
        self._makers = [a for a in self._agents if a.maker]
        self._queue: list[tuple[int, int]] = [(a.wake_ns, a.index) for a in self._agents]
        heapq.heapify(self._queue)
        self._unsubscribe = ex.subscribe(self._on_events)

    def close(self) -> None:
        """Stop listening to the exchange (the driver should not be stepped afterwards)."""
        self._unsubscribe()

    # --- event sink ---------------------------------------------------------------------------

    def _on_events(self, events: list[EngineEvent]) -> None:
        versions = self._versions
        for e in events:
            if isinstance(e, (BookDelta, LifecycleEvent)) and e.ticker in versions:
                versions[e.ticker] += 1

    # --- stepping -----------------------------------------------------------------------------

    def step(self, now_ns: int) -> StepReport:
        """Advance the simulated world to ``now_ns`` (see the module rules for the order)."""
        now = now_ns if self._now is None else max(now_ns, self._now)
        self._now = now
        applied: list[Intent] = []
        refusals: list[Refusal] = []
        fired: list[Fault] = []
        settled: list[str] = []

        while self._next_fault < len(self._faults) and self._faults[self._next_fault].at_ns <= now:
            fault = self._faults[self._next_fault]
            self._next_fault += 1
            try:
                self.fault_handler(fault.kind, fault.params, now)
            except EngineError as exc:  # bad params, or a market in no state for it
                refusals.append(Refusal(None, fault.params.get("ticker"), f"fault:{fault.kind}",
                                        exc))
            fired.append(fault)

        self.ex.mutate(lambda eng, t: eng.expire(t))
        while (self._next_settle < len(self._to_settle)
               and self._to_settle[self._next_settle].settle_ns <= now):
            game = self._to_settle[self._next_settle]
            self._next_settle += 1
            self._settle(game, settled, refusals)
            for m in game.markets:
                for agent in self._by_market.get(m, ()):
                    agent.live = False

        statuses: dict[str, MarketStatus] = {}  # participants' orders never change a status
        queue = self._queue
        while queue and queue[0][0] <= now:
            wake, idx = heapq.heappop(queue)
            agent = self._agents[idx]
            if not agent.live or agent.wake_ns != wake:
                continue  # stale entry: the agent was rescheduled or retired
            self._decide(agent, now, statuses, applied, refusals)
        for agent in self._makers:
            if agent.live and agent.seen_version != self._versions[agent.market]:
                self._decide(agent, now, statuses, applied, refusals)

        report = StepReport(now, tuple(applied), tuple(refusals), tuple(fired), tuple(settled))
        self.last_report = report
        return report

    def next_wake_ns(self) -> int | None:
        """The earliest time anything is pending: an agent's wake, a maker with an unseen book
        change (``last step + 1``), a fault or a settlement. None when nothing is left."""
        queue = self._queue
        while queue and (not self._agents[queue[0][1]].live
                         or self._agents[queue[0][1]].wake_ns != queue[0][0]):
            heapq.heappop(queue)
        candidates = []
        if queue:
            candidates.append(queue[0][0])
        if self._next_fault < len(self._faults):
            candidates.append(self._faults[self._next_fault].at_ns)
        if self._next_settle < len(self._to_settle):
            candidates.append(self._to_settle[self._next_settle].settle_ns)
        if self._now is not None and any(
                a.live and a.seen_version != self._versions[a.market] for a in self._makers):
            candidates.append(self._now + 1)
        if not candidates:
            return None
        wake = min(candidates)
        return wake if self._now is None else max(wake, self._now + 1)

    @property
    def done(self) -> bool:
        """Every game settled, every fault fired."""
        return (self._next_settle == len(self._to_settle)
                and self._next_fault == len(self._faults))

    # --- internals ----------------------------------------------------------------------------

    def _settle(self, game: ResolvedGame, settled: list[str], refusals: list[Refusal]) -> None:
        winner = game.winner_market

        def run(eng: Engine, t: int) -> None:
            for m in game.markets:
                result = "yes" if m == winner else "no"
                try:
                    eng.close(m, t)
                    eng.determine(m, result, t)
                    eng.settle(m, result, t)
                except EngineError as exc:  # e.g. determined otherwise through an admin route
                    refusals.append(Refusal(None, m, "settle", exc))
                else:
                    settled.append(m)

        self.ex.mutate(run)

    def _decide(self, agent: _Agent, now: int, statuses: dict[str, MarketStatus],
                applied: list[Intent], refusals: list[Refusal]) -> None:
        eng = self.ex.engine
        m = agent.market
        status = statuses.get(m)
        if status is None:
            status = statuses[m] = eng.get_market(m).status
        if status not in _LIVE:
            agent.live = False
            return
        user = agent.config.user_id
        own = tuple(OwnOrder(o.order_id, o.side, o.price, o.remaining)
                    for o in eng.orders(user, ticker=m, status="resting"))
        # only news takers and book-following makers look at what the books know
        public = agent.game.public_prob(m, now) if agent.public else None
        view = MarketView(m, BookView.from_best(eng.best(m)), own, agent.game.grid,
                          is_open=status == "active", public_p=public)
        state, intents = agent.config.decide(agent.state, view, agent.game.yes_prob(m, now),
                                             now, agent.rng)
        agent.state = state
        agent.last_decided_ns = now
        if intents:
            self.ex.mutate(lambda e, t: self._apply(e, t, intents, applied, refusals))
        agent.seen_version = self._versions[m]
        heapq.heappush(self._queue, (agent.wake_ns, agent.index))

    @staticmethod
    def _apply(eng: Engine, t: int, intents: list[Intent], applied: list[Intent],
               refusals: list[Refusal]) -> None:
        for intent in intents:
            try:
                if isinstance(intent, PlaceIntent):
                    eng.place(OrderRequest(intent.user_id, intent.ticker, intent.side,
                                           intent.price, intent.count, intent.time_in_force,
                                           post_only=intent.post_only), t)
                elif isinstance(intent, CancelIntent):
                    eng.cancel(intent.user_id, intent.order_id, t)
                elif isinstance(intent, CancelAllIntent):
                    for o in eng.orders(intent.user_id, ticker=intent.ticker, status="resting"):
                        eng.cancel(intent.user_id, o.order_id, t)
                else:  # pragma: no cover - the Intent union is closed
                    raise InputError(f"unknown intent {intent!r}")
            except EngineError as exc:
                ticker = getattr(intent, "ticker", None)
                refusals.append(Refusal(intent.user_id, ticker, intent, exc))
            else:
                applied.append(intent)


# --- the loops --------------------------------------------------------------------------------


async def run_live(driver: SimDriver, *, stop: asyncio.Event,
                   max_sleep_s: float = DEFAULT_MAX_SLEEP_S) -> None:
    """The local exchange server's participant task: step at ``ex.now_ns()`` (the wall clock),
    then sleep until the next wake, at most ``max_sleep_s``, until ``stop`` is set."""
    ex = driver.ex
    while not stop.is_set():
        try:
            driver.step(ex.now_ns())
        except Exception:
            log.exception("simulated participants: step failed")
            raise
        wake = driver.next_wake_ns()
        delay = max_sleep_s if wake is None else min(max_sleep_s,
                                                     max(0.0, (wake - ex.now_ns()) / NS_PER_S))
        if delay <= 0:
            await asyncio.sleep(0)  # let REST/WS handlers run between back-to-back steps
            continue
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except asyncio.TimeoutError:
            pass


@dataclass
class BacktestSummary:
    """Totals of a :func:`run_backtest` run."""

    end_ns: int
    steps: int = 0
    intents_applied: int = 0
    refusals_by_code: dict[str, int] = field(default_factory=dict)
    faults_fired: list[Fault] = field(default_factory=list)
    settled_markets: list[str] = field(default_factory=list)


def run_backtest(driver: SimDriver, clock: SimClock, until_ns: int, *,
                 on_step: Callable[[int], None] | None = None,
                 step_ns: int = DEFAULT_STEP_NS) -> BacktestSummary:
    """Run the driver on virtual time from ``clock.now_ns()`` through ``until_ns``.

    Steps at the clock's current time, then repeatedly advances the clock (firing its timers) to
    the earliest of the driver's next wake, the clock's next timer, ``step_ns`` later and
    ``until_ns`` — always forward — and steps there; ``on_step(now_ns)`` runs after every step
    (the step's :class:`StepReport` is ``driver.last_report``). The exchange must read ``clock``.
    """
    if step_ns <= 0:
        raise InputError(f"step_ns must be > 0, got {step_ns}")
    now = clock.now_ns()
    summary = BacktestSummary(now)
    while True:
        report = driver.step(now)
        summary.steps += 1
        summary.intents_applied += len(report.intents_applied)
        for r in report.refusals:
            summary.refusals_by_code[r.error.code] = summary.refusals_by_code.get(
                r.error.code, 0) + 1
        summary.faults_fired.extend(report.faults_fired)
        summary.settled_markets.extend(report.settled_markets)
        if on_step is not None:
            on_step(now)
        if now >= until_ns:
            break
        target = min(now + step_ns, until_ns)
        for t in (driver.next_wake_ns(), clock.next_timer_ns()):
            if t is not None:
                target = min(target, t)
        clock.advance_to(max(target, now + 1))
        now = clock.now_ns()
    summary.end_ns = now
    return summary


__all__ = [
    "BacktestSummary", "FaultHandler", "Refusal", "SimClock", "SimDriver", "StepReport",
    "default_fault_handler", "run_backtest", "run_live", "scenario_fault_params",
]
