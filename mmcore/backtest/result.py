"""What a backtest reports: per game our fills, net P&L after fees at settlement, max inventory.

Money is YES-terms cash in price units ($0.0001): a bid pays ``price × count / CONTRACT``, an ask
receives it, fees are paid; at settlement each market's position is worth ``PRICE_ONE`` per
contract if it won, 0 if not. Counts are centi-contracts; times ns.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmcore.backtest.latency import LatencyModel
from mmcore.backtest.metrics import GameMetrics, RunMetrics
from mmcore.game import GameSpec, directional_inventory
from mmcore.sim.engine_types import Fill
from mmcore.units import CONTRACT, PRICE_ONE


@dataclass(frozen=True, slots=True)
class BtFill:
    """One of our fills as the exchange recorded it (engine time)."""

    ts_ns: int
    trade_id: str
    order_id: str
    market: str
    side: str
    price: int
    count: int
    fee: int
    is_taker: bool

    @classmethod
    def of(cls, f: Fill) -> BtFill:
        return cls(f.ts_ns, f.trade_id, f.order_id, f.ticker, f.side, f.price, f.count, f.fee,
                   f.is_taker)


@dataclass(frozen=True, slots=True)
class Halt:
    """The worker's kill switch went HALTED (virtual clock ns) for these triggers
    (:class:`mmcore.risk.killswitch.Trigger` values)."""

    at_ns: int
    triggers: tuple[str, ...]


@dataclass(slots=True)
class RunStats:
    """What the run cost: book deltas delivered to workers, engine batches delivered, book
    decisions (a ``BookEv`` fed to a live worker: one per touched market per batch) and the CPU
    seconds spent inside the workers (the ``cpu_clock`` given to ``run_backtest`` read around
    each call: decisions, acks, fills, timers; 0 without one)."""

    book_events: int = 0
    batches: int = 0
    decisions: int = 0
    worker_cpu_s: float = 0.0


@dataclass(frozen=True, slots=True)
class GameResult:
    """One game: what our worker traded and what it was worth at settlement."""

    event_ticker: str
    start_ns: int
    winner: str | None
    """The market that settles YES (None: every market settles NO)."""
    fills: tuple[BtFill, ...]
    positions: dict[str, int]
    """Signed centi-contracts per market at the end (what rides to settlement)."""
    cash_money: int
    """Trading cash, fees included (YES terms, price units)."""
    fees_money: int
    settlement_money: int
    net_pnl_money: int
    """``cash_money + settlement_money``: net P&L after fees, at settlement."""
    max_inventory: int
    """Largest |directional inventory| over the game's fills (centi-contracts)."""
    volume: int
    """Centi-contracts traded."""
    actions: int
    """Order actions the worker sent (place, amend, cancel)."""
    stop_reason: str | None
    """Why the worker stopped (its cancel-all with exit); None if it never did in the run."""
    stopped_ns: int | None
    """When that verified cancel-all ran on the engine."""
    resting_after_stop: int
    """Our orders in the game still resting right after that cancel-all (must be 0)."""
    worker_positions: dict[str, int]
    """The worker's own positions at the end (from the fills it was fed): equal to
    ``positions`` unless the simulated feed lost or garbled something."""
    worker_cash_money: int
    """The worker's own trading cash at the end (same convention as ``cash_money``)."""
    metrics: GameMetrics | None = None
    """Markouts, time at best, drawdown, inventory ÷ limit, queue (:mod:`.metrics`)."""
    halts: tuple[Halt, ...] = ()
    """Each time the worker's kill switch went HALTED, in order."""

    @classmethod
    def build(cls, spec: GameSpec, winner: str | None, fills: list[Fill], *, actions: int,
              stop_reason: str | None, stopped_ns: int | None,
              resting_after_stop: int, worker_positions: dict[str, int],
              worker_cash_money: int) -> GameResult:
        positions = {m: 0 for m in spec.markets}
        cash = fees = volume = worst = 0
        book = spec.book
        for f in fills:
            money = f.price * f.count // CONTRACT
            cash += -money if f.side == "bid" else money
            cash -= f.fee
            fees += f.fee
            volume += f.count
            positions[f.ticker] += f.count if f.side == "bid" else -f.count
            worst = max(worst, max(map(abs, directional_inventory(book, positions))))
        settlement = sum(q * (PRICE_ONE if m == winner else 0) // CONTRACT
                         for m, q in positions.items())
        return cls(spec.event_ticker, spec.start_ns, winner, tuple(BtFill.of(f) for f in fills),
                   positions, cash, fees, settlement, cash + settlement, worst, volume, actions,
                   stop_reason, stopped_ns, resting_after_stop, worker_positions,
                   worker_cash_money)


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """A whole run: per-game results (scenario order) and totals."""

    seed: int
    latency: LatencyModel
    games: tuple[GameResult, ...]
    end_ns: int
    steps: int
    """Participant steps the simulated world took."""
    metrics: RunMetrics | None = None
    """The run's totals of the per-game metrics (:mod:`.metrics`)."""
    stats: RunStats | None = None
    """Work counters of the run (book events, decisions, worker CPU): what benches report."""

    @property
    def fills(self) -> tuple[BtFill, ...]:
        return tuple(f for g in self.games for f in g.fills)

    @property
    def total_net_pnl_money(self) -> int:
        return sum(g.net_pnl_money for g in self.games)

    @property
    def total_fees_money(self) -> int:
        return sum(g.fees_money for g in self.games)

    @property
    def total_volume(self) -> int:
        return sum(g.volume for g in self.games)
