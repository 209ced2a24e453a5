"""The backtest driver: real game workers on the local exchange's engine and participants, on a
virtual clock, in one process — no sockets, no wall clock, no sleeps.

It is a third driver of the same :class:`~mmcore.worker.engine.GameWorker` (design.md "the same
core runs live, against the local exchange, and in the backtest"); only the transport and the
clock differ from :class:`~mmcore.worker.driver.WorkerDriver`:

- **World.** :class:`~mmcore.sim.driver.SimDriver` steps the scenario's participants on a
  :class:`~mmcore.sim.exchange.LocalExchange` whose clock is the :class:`SimClock`, looped by
  :func:`mmcore.sim.driver.run_backtest`; everything below runs as clock timers between its steps.
- **Market data** (after ``latency.market_data_ns``, in exchange order): each batch of engine
  events (one engine call) is applied to a per-market :class:`~mmcore.book.MarketBook` with the
  same ``apply_delta`` the WebSocket client uses, then one :class:`BookEv` per market it touched
  (a burst of deltas from one engine call is one decision, not one per level); our fills →
  :class:`FillEv`, our order updates → :class:`OrderEv`, public trades → :class:`TradeEv`,
  lifecycle → :class:`LifecycleEv`.
- **Order entry.** Each action runs on the engine one order leg after the decision (what
  :meth:`WorkerDriver._execute` sends: post-only GTC, ``expiration_time`` = game start,
  ``cancel_order_on_pause``; no order group) and its :class:`AckEv` (or the engine's refusal)
  comes back one leg later. Legs are fixed + jitter from the seeded RNG (:class:`LatencyModel`).
- **Requests.** ``ReconcileNow`` → a :class:`ReconcileEv` from the engine's own positions and
  resting orders (read one leg later, delivered one leg after that); ``CancelAllVerified`` →
  every resting order of ours in the game cancelled on the engine (one leg later), checked, then
  reconciled; with ``then_exit`` the worker is done. ``RefreshTheo`` → a consensus theo at
  ``theo_pull_ns`` later; ``ResyncBooks`` → a fresh snapshot from ``engine.orderbook``;
  ``RestoreOrderGroup`` → ignored (no order group in the backtest).
- **Theo**: :func:`mmcore.backtest.theo.sim_theo` at the scenario start, every 30 minutes
  (the scheduled pull) and on request.
- **Timers**: the worker's ``next_deadline_ns`` is a clock timer calling ``on_timer``.
- **Metrics**: every engine batch also goes to a :class:`~mmcore.backtest.tape.Tape` (tops, our
  orders at the best price, queue ahead of our orders, the worker's hard limit at each fill);
  :mod:`mmcore.backtest.metrics` turns it into each game's and the run's metrics at the end.

Deterministic: the scenario (with ``seed``) fixes the world; the latency legs come from
``random.Random(derive_seed(seed, "backtest-latency"))``; a ``"now"`` scenario start resolves
against :data:`BACKTEST_EPOCH_NS`, not the wall clock. Same inputs → identical fills.

Units: times int ns; prices int price units; counts int centi-contracts; money int price units.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmcore.backtest.latency import LatencyModel
from mmcore.backtest.metrics import game_metrics, run_metrics
from mmcore.backtest.result import BacktestResult, GameResult, Halt, RunStats
from mmcore.backtest.tape import Tape
from mmcore.backtest.theo import PULL_INTERVAL_NS, sim_theo
from mmcore.book import MarketBook
from mmcore.errors import InputError
from mmcore.game import GameSpec, extra_outcomes_from_rules
from mmcore.odds.teams import TIE_CODE, sport_for_series
from mmcore.orders import Amend, Cancel, LiveOrder, OrderAction, Place
from mmcore.strategies import make_strategy
from mmcore.sim.driver import SimClock, SimDriver
from mmcore.sim.driver import run_backtest as run_world
from mmcore.sim.engine import Engine
from mmcore.sim.engine_types import (
    BookDelta,
    EngineError,
    EngineEvent,
    FillEvent,
    LifecycleEvent,
    OrderEvent,
    OrderRequest,
    TradeEvent,
)
from mmcore.sim.exchange import MM_USER, LocalExchange
from mmcore.sim.scenario import (
    ResolvedGame,
    ResolvedScenario,
    Scenario,
    derive_seed,
    load_scenario,
)
from mmcore.worker.journal import Journal, JournalConfig
from mmcore.worker.engine import (
    AckEv,
    BookEv,
    CancelAllVerified,
    ConnEv,
    Event,
    FillEv,
    GameWorker,
    LifecycleEv,
    OrderEv,
    Output,
    ReconcileEv,
    ReconcileNow,
    RefreshTheo,
    ResyncBooks,
    TradeEv,
    WorkerConfig,
)

NS = 1_000_000_000
BACKTEST_EPOCH_NS = 1_767_225_600 * NS
"""2026-01-01T00:00:00Z: what a scenario's ``"now"`` start means in a backtest (reproducible)."""
DEFAULT_LATENCY = LatencyModel()
DEFAULT_TAIL_NS = 120 * NS
"""The run goes on this long after the last game's start (the verified cancel-alls land)."""

ScenarioSource = str | Path | Mapping[str, Any] | Scenario | ResolvedScenario


def game_spec(g: ResolvedGame) -> GameSpec:
    """The worker's view of a scenario game, as :func:`mmcore.worker.driver.load_game` builds it
    from REST (same market order, sport key, fee schedule and extra outcomes)."""
    markets = sorted(g.markets, key=lambda m: (m.endswith(f"-{TIE_CODE}"), m))
    sport = sport_for_series(g.series_ticker) or "default"
    extra = extra_outcomes_from_rules(sport, markets, [g.rules_secondary])
    return GameSpec(g.event_ticker, sport, tuple(markets), tuple(g.grid for _ in markets),
                    g.fees, g.start_ns, extra)


def resolve_backtest_scenario(source: ScenarioSource, seed: int | None,
                              now_ns: int = BACKTEST_EPOCH_NS) -> ResolvedScenario:
    """The scenario with ``seed`` (when given) replacing its own, resolved at ``now_ns``."""
    if isinstance(source, ResolvedScenario):
        if seed is not None and seed != source.seed:
            raise InputError("a resolved scenario has its seed fixed; pass the file or dict")
        return source
    if seed is None:
        return load_scenario(source, now_ns)
    if isinstance(source, Scenario):
        return load_scenario(source.model_copy(update={"seed": seed}), now_ns)
    if isinstance(source, (str, Path)):
        try:
            raw = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"scenario {source}: {exc}") from exc
    else:
        raw = dict(source)
    return load_scenario({**raw, "seed": seed}, now_ns)


def _select(sc: ResolvedScenario, games: int | Sequence[str] | None) -> ResolvedScenario:
    """Only the chosen games (the first ``games``, or those event tickers), with their faults."""
    if games is None:
        return sc
    if isinstance(games, int):
        if games < 1:
            raise InputError(f"games must be >= 1, got {games}")
        chosen = sc.games[:games]
    else:
        wanted = set(games)
        chosen = tuple(g for g in sc.games if g.event_ticker in wanted)
        missing = wanted - {g.event_ticker for g in chosen}
        if missing:
            raise InputError(f"no such games in the scenario: {sorted(missing)}")
    tickers = {t for g in chosen for t in (g.event_ticker, *g.markets)}
    faults = tuple(f for f in sc.faults if f.params.get("ticker") in tickers or "ticker" not in f.params)
    return dataclasses.replace(sc, games=tuple(chosen), faults=faults,
                               end_ns=max(g.settle_ns for g in chosen))


class _GameRun:
    """One game's worker and the wire around it."""

    def __init__(self, bt: _Backtest, g: ResolvedGame, cfg: WorkerConfig) -> None:
        self.bt = bt
        self.g = g
        self.spec = game_spec(g)
        strategy = None if bt.strategy == "ours" else make_strategy(bt.strategy)  # fresh per game
        self.worker = GameWorker(self.spec, cfg, bt.clock.now_ns(), strategy=strategy)
        self.started_ns = bt.clock.now_ns()
        self.books = {m: MarketBook(m) for m in self.spec.markets}
        self.timer: Any = None
        self.actions = 0
        self.done = False
        self.stop_reason: str | None = None
        self.stopped_ns: int | None = None
        self.resting_after_stop = 0

    # --- into the worker ---------------------------------------------------------------------

    def feed(self, ev: Event) -> None:
        if self.done:
            return
        stats = self.bt.stats
        if type(ev) is BookEv:
            stats.decisions += 1
        cpu = self.bt.cpu_clock
        if cpu is None:
            self.process(self.worker.handle(ev, self.bt.clock.now_ns()))
            return
        t0 = cpu()
        out = self.worker.handle(ev, self.bt.clock.now_ns())
        stats.worker_cpu_s += cpu() - t0
        self.process(out)

    def on_timer(self) -> None:
        self.timer = None
        if not self.done:
            cpu = self.bt.cpu_clock
            t0 = cpu() if cpu is not None else 0.0
            out = self.worker.on_timer(self.bt.clock.now_ns())
            if cpu is not None:
                self.bt.stats.worker_cpu_s += cpu() - t0
            self.process(out)

    def snapshot(self, market: str) -> None:
        yes, no = self.bt.ex.engine.orderbook(market)
        now = self.bt.clock.now_ns()
        self.books[market].apply_snapshot(yes, no, use_yes_price=False, exchange_ns=now,
                                          receipt_ns=now)
        self.feed(BookEv(market, self.books[market], now, now))

    def start(self) -> None:
        now = self.bt.clock.now_ns()
        self.feed(self._reconcile_ev(initial=True))
        theo = sim_theo(self.bt.sc, self.g, self.spec.markets, now)
        if theo is not None:
            self.feed(theo)
        self.feed(ConnEv(True))
        for m in self.spec.markets:
            self.snapshot(m)

    # --- out of the worker -------------------------------------------------------------------

    journal: Journal | None = None
    """Where the worker's journal records go (``run_backtest(journal_dir=…)``), else dropped."""

    def process(self, out: Output) -> None:
        bt = self.bt
        if self.journal is not None and out.journal:
            self.journal.append_batch(out.journal, bt.clock.now_ns())
        hard = None
        for seq, action in out.actions:
            self.actions += 1
            sent = bt.clock.now_ns()
            if _adds(self.worker, action):  # the bound the gate just judged it by
                hard = self.worker.limit().hard_contracts if hard is None else hard
                bt.tape.sent(sent, *action.slot, hard)
            bt.clock.call_at(sent + bt.leg(), lambda s=seq, a=action, t=sent: self.execute(s, a, t))
        for req in out.requests:
            if isinstance(req, CancelAllVerified):
                bt.clock.call_at(bt.clock.now_ns() + bt.leg(), lambda r=req: self.cancel_all(r))
            elif isinstance(req, ReconcileNow):
                bt.clock.call_at(bt.clock.now_ns() + bt.leg(), self.reconcile)
            elif isinstance(req, RefreshTheo):
                bt.clock.call_at(bt.clock.now_ns() + bt.latency.theo_pull_ns, self.pull_theo)
            elif isinstance(req, ResyncBooks):
                for m in req.markets:
                    bt.clock.call_at(bt.clock.now_ns() + bt.leg(), lambda m=m: self.snapshot(m))
            # RestoreOrderGroup: the backtest uses no order group
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None if self.done else bt.clock.call_at(out.next_deadline_ns, self.on_timer)

    def execute(self, seq: int, action: OrderAction, sent_ns: int) -> None:
        """The REST write lands on the engine; its ack returns one leg later."""
        bt = self.bt
        ack = execute_on_engine(bt.ex, seq, action, self.spec.start_ns)
        back = bt.clock.now_ns() + bt.leg()
        ack = dataclasses.replace(ack, latency_ns=back - sent_ns, receipt_ns=back)
        bt.clock.call_at(back, lambda: self.feed(ack))

    def _reconcile_ev(self, *, initial: bool = False) -> ReconcileEv:
        eng = self.bt.ex.engine
        now = self.bt.clock.now_ns()
        resting = tuple(LiveOrder(o.order_id, o.client_order_id, o.ticker, o.side, o.price,
                                  o.remaining, o.filled, o.updated_ns)
                        for o in eng.orders(MM_USER, event_ticker=self.spec.event_ticker,
                                            status="resting"))
        positions = {m: eng.position(MM_USER, m) for m in self.spec.markets}
        return ReconcileEv(positions, resting, now, initial=initial, data_as_of_ns=now)

    def reconcile(self) -> None:
        """REST reads at the engine now; the answer reaches the worker one leg later."""
        ev = self._reconcile_ev()
        self.bt.clock.call_at(self.bt.clock.now_ns() + self.bt.leg(), lambda: self.feed(ev))

    def cancel_all(self, req: CancelAllVerified) -> None:
        """Cancel every resting order of ours in the game and check none is left (the engine
        applies cancels at once, so one pass verifies); then reconcile, or exit."""
        eng = self.bt.ex.engine
        ev_ticker = self.spec.event_ticker

        def run(e: Engine, t: int) -> None:
            for o in e.orders(MM_USER, event_ticker=ev_ticker, status="resting"):
                try:
                    e.cancel(MM_USER, o.order_id, t)
                except EngineError:
                    pass  # e.g. a closed market: the count below says what is left

        self.bt.ex.mutate(run)
        left = len(eng.orders(MM_USER, event_ticker=ev_ticker, status="resting"))
        if req.then_exit:
            self.stop_reason = self.stop_reason or req.reason
            self.stopped_ns = self.bt.clock.now_ns()
            self.resting_after_stop = left
            self.done = True
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
        else:
            self.reconcile()

    def pull_theo(self) -> None:
        theo = sim_theo(self.bt.sc, self.g, self.spec.markets, self.bt.clock.now_ns())
        if theo is not None:
            self.feed(theo)

    # --- market data -------------------------------------------------------------------------

    def deliver(self, events: list[EngineEvent]) -> None:
        """One engine batch reaches the worker (market-data latency already elapsed)."""
        now = self.bt.clock.now_ns()
        touched: list[str] = []
        self.bt.stats.batches += 1
        for e in events:
            if isinstance(e, BookDelta):
                self.bt.stats.book_events += 1
                book = self.books[e.ticker]
                book.apply_delta(e.side, e.price, e.delta, use_yes_price=False,
                                 exchange_ns=e.ts_ns, receipt_ns=now)
                if e.ticker not in touched:
                    touched.append(e.ticker)
        for m in touched:
            self.feed(BookEv(m, self.books[m], self.books[m].exchange_ns, now))
        for e in events:
            if isinstance(e, FillEvent) and e.fill.user_id == MM_USER:
                f = e.fill
                self.feed(FillEv(f.trade_id, f.order_id, f.ticker, f.side, f.price, f.count, f.fee,
                                 f.is_taker, f.post_position, f.ts_ns, now, f.client_order_id))
            elif isinstance(e, OrderEvent) and e.order.user_id == MM_USER:
                o = e.order
                self.feed(OrderEv(o.order_id, o.client_order_id, o.ticker, o.side, o.price,
                                  o.remaining, o.filled, o.status, o.updated_ns, now))
            elif isinstance(e, TradeEvent):
                t = e.trade
                self.feed(TradeEv(t.ticker, t.price, t.count, t.taker_side, t.ts_ns, now))
            elif isinstance(e, LifecycleEvent):
                self.feed(LifecycleEv(e.ticker, e.event_type))

    def result(self) -> tuple[GameResult, list[tuple[int, float]]]:
        """The game's result with its metrics, and its mark-to-mid equity curve."""
        fills = [f for f in self.bt.ex.engine.fills(MM_USER) if f.ticker in self.books]
        res = GameResult.build(self.spec, self.g.winner_market, fills, actions=self.actions,
                               stop_reason=self.stop_reason, stopped_ns=self.stopped_ns,
                               resting_after_stop=self.resting_after_stop,
                               worker_positions=dict(self.worker.positions),
                               worker_cash_money=self.worker.cash)
        window = (self.started_ns,
                  self.stopped_ns if self.stopped_ns is not None else self.spec.start_ns)
        tape = self.bt.tape
        metrics, curve = game_metrics(self.spec.book, self.spec.markets, fills, tape.fills,
                                      tape.tops, self.g.yes_prob, window, res.net_pnl_money,
                                      res.volume, sends=tape.sends)
        halts = tuple(Halt(t.at_ns, tuple(sorted(str(x.value) for x in t.triggers)))
                      for t in self.worker.ks.history if t.to_state == "HALTED")
        return dataclasses.replace(res, metrics=metrics, halts=halts), curve


class _Backtest:
    def __init__(self, sc: ResolvedScenario, seed: int, latency: LatencyModel,
                 cfg: WorkerConfig | None, strategy: str = "ours") -> None:
        self.sc = sc
        self.strategy = strategy
        self.latency = latency
        self.rng = random.Random(derive_seed(seed, "backtest-latency"))
        self.stats = RunStats()
        self.cpu_clock: Callable[[], float] | None = None
        self.clock = SimClock(sc.start_ns)
        self.ex = LocalExchange.from_scenario(sc, clock_ns=self.clock.now_ns)
        self.world = SimDriver(self.ex, sc)
        # one worker id per game: client_order_ids derive from it and must not collide
        self.runs = [_GameRun(self, g, dataclasses.replace(cfg, worker_id=f"{cfg.worker_id}-{g.event_ticker}")
                              if cfg is not None else WorkerConfig(f"bt-{g.event_ticker}"))
                     for g in sc.games]
        self.by_market = {m: r for r in self.runs for m in r.spec.markets}
        self.tape = Tape(self.ex.engine, MM_USER, self.by_market,
                         lambda m: self.by_market[m].worker.limit().hard_contracts)
        self.ex.subscribe(self._on_events)

    def leg(self) -> int:
        return self.latency.order_leg_ns(self.rng)

    def _on_events(self, events: list[EngineEvent]) -> None:
        self.tape.record(self.clock.now_ns(), events)
        per_run: dict[int, list[EngineEvent]] = {}
        for e in events:
            ticker = _ticker(e)
            run = self.by_market.get(ticker) if ticker is not None else None
            if run is not None and not run.done:
                per_run.setdefault(id(run), []).append(e)
        at = self.clock.now_ns() + self.latency.market_data_ns
        for run in self.runs:
            batch = per_run.get(id(run))
            if batch:
                self.clock.call_at(at, lambda r=run, b=batch: r.deliver(b))

    def _schedule_pulls(self, until_ns: int) -> None:
        t = self.sc.start_ns + PULL_INTERVAL_NS
        while t <= until_ns:
            for run in self.runs:
                self.clock.call_at(t, run.pull_theo)
            t += PULL_INTERVAL_NS

    def run(self, until_ns: int) -> BacktestResult:
        for run in self.runs:
            run.start()
        self._schedule_pulls(until_ns)
        summary = run_world(self.world, self.clock, until_ns)
        self.world.close()
        done = [r.result() for r in self.runs]
        games = tuple(g for g, _ in done)
        total = run_metrics([(g.metrics, g.fills, g.net_pnl_money) for g in games
                             if g.metrics is not None], [c for _, c in done])
        return BacktestResult(self.sc.seed, self.latency, games, summary.end_ns, summary.steps,
                              metrics=total, stats=self.stats)


def execute_on_engine(ex: LocalExchange, seq: int, action: OrderAction,
                      expiration_ns: int) -> AckEv:
    """One order action of ours on the exchange's engine now, as the REST write the worker's
    driver sends would do it (post-only as the action says, ``cancel_order_on_pause``,
    ``expiration_ns`` = game start, no order group), published to the exchange's subscribers;
    the worker's :class:`AckEv` for it (a refusal is ``ok=False``, not an exception)."""

    def run(eng: Engine, t: int) -> AckEv:
        if isinstance(action, Place):
            q = action.quote
            r = eng.place(OrderRequest(MM_USER, q.market, q.side, q.price, q.count,
                                       client_order_id=action.client_order_id,
                                       post_only=action.post_only, cancel_order_on_pause=True,
                                       expiration_ns=expiration_ns), t)
            return AckEv(seq, True, order_id=r.order.order_id, remaining=r.remaining,
                         filled=r.fill_count)
        if isinstance(action, Amend):
            r = eng.amend(MM_USER, action.order_id, ticker=action.market, side=action.side,
                          price=action.price, count=action.count, now_ns=t)
            return AckEv(seq, True, order_id=r.order.order_id, remaining=r.remaining,
                         filled=r.fill_count)
        assert isinstance(action, Cancel)
        eng.cancel(MM_USER, action.order_id, t)
        return AckEv(seq, True, order_id=action.order_id)

    try:
        return ex.mutate(run)
    except EngineError as exc:
        return AckEv(seq, False, error=str(exc), retryable=exc.status >= 500,
                     rate_limited=exc.status == 429)


def _adds(worker: GameWorker, action: OrderAction) -> bool:
    """A place, or an amend that raises its order's open count (as the worker knows it): what
    can add to a direction's worst case, so what the limit at send is judged by. An amend that
    cuts or only moves an order reduces nothing the gate must pass and is always allowed; as a
    "send" under a since-shrunk bound it made the metric read past 1 (chaos G1, seed 1067)."""
    if isinstance(action, Place):
        return True
    if not isinstance(action, Amend):
        return False
    old = worker.live.get(action.order_id)
    return old is None or action.count > old.filled + old.remaining


def _ticker(e: EngineEvent) -> str | None:
    if isinstance(e, (BookDelta, LifecycleEvent)):
        return e.ticker
    if isinstance(e, FillEvent):
        return e.fill.ticker
    if isinstance(e, OrderEvent):
        return e.order.ticker
    if isinstance(e, TradeEvent):
        return e.trade.ticker
    return None


def run_backtest(scenario: ScenarioSource, *, games: int | Sequence[str] | None = None,
                 seed: int | None = None, latency: LatencyModel = DEFAULT_LATENCY,
                 worker_config: WorkerConfig | None = None,
                 tail_ns: int = DEFAULT_TAIL_NS, strategy: str = "ours",
                 journal_dir: Path | None = None,
                 cpu_clock: Callable[[], float] | None = None) -> BacktestResult:
    """Quote the scenario's games (the first ``games``, or those event tickers; all by default)
    with one real :class:`GameWorker` each on the simulated world, from the scenario start until
    ``tail_ns`` after the last chosen game's start; P&L at each game's true outcome.

    ``seed`` replaces the scenario's own (world, books, participants) and seeds the latency
    legs; ``worker_config`` (default ``WorkerConfig("bt-<event>")``) is shared by every game.
    ``strategy`` names who decides the quotes (:data:`mmcore.strategies.STRATEGIES`: ``ours``,
    ``fixed-spread``, ``inventory-skew``, ``as-mid``); the worker's risk machinery around the
    decision (gate, kill switch, barriers, limits) is the same for all.
    Same arguments → the same :class:`BacktestResult`, fill for fill.

    ``journal_dir``: each game's worker writes the same journal a live worker writes
    (:mod:`mmcore.worker.journal`, ``<journal_dir>/<worker_id>/``, stamped with the virtual
    clock; fsync'd at the end, not per decision), so ingest, the audit and calibration read a
    backtest like a live run.

    ``cpu_clock`` (e.g. ``time.process_time``, seconds): when given, the CPU spent inside the
    workers is summed into ``result.stats.worker_cpu_s`` (benches); it never changes a decision.
    """
    make_strategy(strategy)  # an unknown name fails here, before any work (ConfigError)
    sc = _select(resolve_backtest_scenario(scenario, seed), games)
    bt = _Backtest(sc, sc.seed, latency, worker_config, strategy)
    bt.cpu_clock = cpu_clock
    if journal_dir is None:
        return bt.run(max(g.start_ns for g in sc.games) + tail_ns)
    for run in bt.runs:
        run.journal = Journal.open(JournalConfig(
            Path(journal_dir), run.worker.cfg.worker_id, segment_max_age_ns=1 << 62,
            fsync_every_records=1 << 30), bt.clock.now_ns())
    try:
        return bt.run(max(g.start_ns for g in sc.games) + tail_ns)
    finally:
        for run in bt.runs:
            if run.journal is not None:
                run.journal.close(bt.clock.now_ns())


__all__ = ["BACKTEST_EPOCH_NS", "execute_on_engine", "game_spec", "resolve_backtest_scenario", "run_backtest"]
