"""Account-wide risk across worker processes, through the real path: the local exchange over
loopback, real ``KalshiRest``/``KalshiWs``, real ``WorkerDriver``s on two games, sharing one
account ledger on disk (:mod:`mmcore.worker.account_ledger`).

- the second game's quotes are cut because of the first game's exposure (aggregate cap);
- a daily-loss halt fires in every worker and still holds after a restart;
- a SIGKILLed worker's exposure (its orders left resting) is still counted by the others.

Every wait polls a condition with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mmcore.models import ns_to_iso
from mmcore.orders import Place, Quote
from mmcore.risk.exposure import GamePosition
from mmcore.risk.killswitch import Trigger
from mmcore.risk.limits import game_usage
from mmcore.sim.engine import OrderRequest
from mmcore.sim.exchange import MM_USER
from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SimStack
from mmcore.theo.snapshot import TheoSnapshot, read_snapshot, write_snapshot
from mmcore.units import CONTRACT
from mmcore.venues.kalshi.ratelimit import RateLimiter
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.venues.kalshi.ws import KalshiWs
from mmcore.worker.account_ledger import AccountLedger
from mmcore.worker.driver import FileTheoSource, WorkerDriver, load_game
from mmcore.worker.engine import GameWorker, Output, WorkerConfig
from mmcore.worker.journal import Journal, JournalConfig, published_segments, read_records
from tests.accountkit import wait_until as until
from tests.workerkit import publish_theos, worker_config

NS = 1_000_000_000
HITTER = "noise-0-1"
CAP = 30 * CONTRACT
"""Aggregate contract cap of the tests: one game quoting four sides at the 10-contract clip
uses 20 (a bid on A and an ask on B both add to "A wins"), so a second game has 10 left."""


def config(worker_id: str, *, cap: int | None = None, daily_loss: int | None = None) -> WorkerConfig:
    cfg = worker_config(worker_id)
    if cap is not None:
        cfg = dataclasses.replace(cfg, limits=dataclasses.replace(cfg.limits, aggregate_max_contracts=cap))
    if daily_loss is not None:
        cfg = dataclasses.replace(cfg, killswitch=dataclasses.replace(
            cfg.killswitch, daily_loss_limit_money=daily_loss))
    return cfg


@dataclass
class Run:
    driver: WorkerDriver
    task: asyncio.Task[Any]
    outputs: list[Output] = field(default_factory=list)

    @property
    def worker(self) -> GameWorker:
        assert self.driver.worker is not None
        return self.driver.worker

    def records(self, pred: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        return [r for out in self.outputs for r in out.journal if pred(r)]

    async def stop(self) -> None:
        self.driver.stop("test done")
        await asyncio.wait_for(self.task, timeout=40)


@dataclass
class Kit:
    stack: SimStack
    rest: KalshiRest
    data_dir: Path
    events: list[str]
    runs: list[Run] = field(default_factory=list)

    @property
    def account_dir(self) -> Path:
        return self.data_dir / "account" / "sim"  # where `mm quote --venue sim` keeps it

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    async def start(self, event: str, cfg: WorkerConfig) -> Run:
        game = await load_game(self.rest, event)
        signer = self.stack.signer()
        journal = Journal.open(JournalConfig(self.journal_dir, cfg.worker_id), time.time_ns())
        driver = WorkerDriver(
            self.rest, lambda markets: KalshiWs(self.stack.ws_url, signer, markets=markets),
            game, cfg, FileTheoSource(self.data_dir / "theo", event), journal=journal,
            cancel_deadline_s=20.0, account=AccountLedger(self.account_dir), account_poll_s=0.2)
        run = Run(driver, asyncio.Future())  # type: ignore[arg-type]
        driver.on_output = lambda w, out: run.outputs.append(out)
        run.task = asyncio.create_task(driver.run())
        self.runs.append(run)
        return run

    def entry(self, event: str) -> Any:
        """The newest ledger entry of ``event`` (None before its first publish)."""
        found = [e for e in AccountLedger(self.account_dir).read_all() if e.event_ticker == event]
        return max(found, key=lambda e: e.started_ns) if found else None

    def exchange_contracts(self, event: str) -> int:
        """Largest |d_o| of ``event`` by the exchange's own resting orders and positions."""
        eng = self.stack.exchange.engine
        markets = tuple(m.ticker for m in sorted(eng.event_markets(event), key=lambda m: m.ticker))
        game = next(r.worker.game for r in self.runs if r.driver.game.event_ticker == event)
        resting = [Quote(o.ticker, o.side, o.price, o.remaining)
                   for o in eng.orders(MM_USER, event_ticker=event, status="resting")]
        pos = GamePosition({m: eng.position(MM_USER, m) for m in markets})
        return game_usage(game.book, pos, resting)[1]


@contextlib.asynccontextmanager
async def two_games(tmp_path: Path, seed: int = 21) -> AsyncIterator[Kit]:
    d = default_scenario_dict(seed, 2)  # an NBA and an NHL game
    for g in d["games"]:
        g["start_in_s"] = 900.0
    # quiet takers (the users must exist: one of them is the test's hitter); the makers give books
    d["participants"]["noise_takers"] = [{"count": 2, "rate_per_s": 0.0001, "size_contracts_min": 1,
                                          "size_contracts_max": 1, "max_spread_price": 1}]
    d["participants"]["informed_takers"] = []
    sc = load_scenario(d, time.time_ns())
    data_dir = tmp_path / "data"
    async with SimStack(sc, data_dir, heartbeat_s=1.0) as stack:
        await publish_theos(stack, sc.games, data_dir / "theo")
        async with KalshiRest(stack.rest_url, stack.signer(),
                              limiter=RateLimiter.for_tier("basic")) as rest:
            kit = Kit(stack, rest, data_dir, [g.event_ticker for g in sc.games])
            try:
                yield kit
            finally:
                for run in kit.runs:
                    if not run.task.done():
                        run.driver.stop("teardown")
                        with contextlib.suppress(BaseException):
                            await asyncio.wait_for(run.task, timeout=40)


def aggregate_cut(rec: dict[str, Any]) -> bool:
    return "aggregate max contracts" in json.dumps(rec)


def journal_records(kit: Kit, worker_id: str) -> list[dict[str, Any]]:
    return [r for r in read_records(published_segments(kit.journal_dir)) if r.get("worker_id") == worker_id]


async def test_second_game_is_cut_by_the_first_games_exposure(tmp_path: Path) -> None:
    async with two_games(tmp_path) as k:
        g1, g2 = k.events
        a = await k.start(g1, config("w-a", cap=CAP))
        await until(lambda: (e := k.entry(g1)) is not None and e.contracts >= 20 * CONTRACT, 30,
                    "game 1 quoting four sides, its exposure in the ledger")
        assert not a.records(aggregate_cut), "game 1 alone fits the cap"
        b = await k.start(g2, config("w-b", cap=CAP))
        await until(lambda: b.records(aggregate_cut) and b.driver.worker is not None
                    and b.worker.live, 30, "game 2 quoting, cut by the aggregate cap")
        used_a = k.exchange_contracts(g1)
        used_b = k.exchange_contracts(g2)
        assert used_a >= 20 * CONTRACT
        assert 0 < used_b <= CAP - used_a, (used_a, used_b)
        assert b.worker.account is not None and b.worker.account.others.contracts >= 20 * CONTRACT
        await b.stop()
        await a.stop()
        # the journal shows why game 2 quoted less than its clip allows
        assert any(aggregate_cut(r) for r in journal_records(k, "w-b")
                   if r["kind"] in ("quote_decision", "refusal"))
        # clean ends: nothing rests, and the final entries say so
        assert k.entry(g2).final and k.entry(g2).contracts == 0


def sweep_bid(k: Kit, market: str, price: int) -> None:
    """Another trader sells YES into every bid at or above ``price`` (ours included)."""
    def go(eng: Any, now: int) -> Any:
        yes_bids, _ = eng.orderbook(market)
        size = sum(n for p, n in yes_bids if p >= price)
        return eng.place(OrderRequest(user_id=HITTER, ticker=market, side="ask", price=price,
                                      count=size, time_in_force="immediate_or_cancel"), now)
    k.stack.exchange.mutate(go)


def move_theo(k: Kit, event: str, market: str, by: float) -> None:
    snap = read_snapshot(k.data_dir / "theo", event)
    assert snap is not None
    probs = dict(snap.markets)
    others = [m for m in probs if m != market]
    probs[market] += by
    for m in others:
        probs[m] -= by / len(others)
    write_snapshot(k.data_dir / "theo", TheoSnapshot(event, probs, snap.uncertainty, snap.confidence,
                                                     time.time_ns(), snap.source + ":moved"))


def halted_by_daily_loss(run: Run) -> bool:
    return (run.driver.worker is not None and run.worker.ks.state == "HALTED"
            and Trigger.DAILY_LOSS in run.worker.ks.active_triggers)


async def test_daily_loss_halts_every_worker_and_holds_after_a_restart(tmp_path: Path) -> None:
    limit = 5_000  # $0.50
    async with two_games(tmp_path, seed=22) as k:
        g1, g2 = k.events
        a = await k.start(g1, config("w-a", daily_loss=limit))
        b = await k.start(g2, config("w-b", daily_loss=limit))
        await until(lambda: all(r.driver.worker is not None and r.worker.live for r in (a, b)), 30,
                    "both games quoting")
        m = a.worker.game.markets[0]
        await until(lambda: any(o.market == m and o.side == "bid" for o in a.worker.live.values()),
                    10, f"a bid of ours on {m}")
        bid = next(o for o in a.worker.live.values() if o.market == m and o.side == "bid")
        sweep_bid(k, m, bid.price)
        await until(lambda: a.worker.positions[m] > 0, 10, "game 1's bid filled")
        held = a.worker.positions[m]
        move_theo(k, g1, m, -0.25)  # the position now marks ~25¢ a contract lower
        await until(lambda: halted_by_daily_loss(a) and halted_by_daily_loss(b), 15,
                    "DAILY_LOSS in both workers")
        assert b.worker.day_pnl_money() > -limit, "game 2 halts on the account's loss, not its own"
        await a.stop()
        await b.stop()
        loss_a = k.entry(g1)
        assert loss_a.day_pnl_money <= -limit and loss_a.final
        # --- restart game 1: it starts from the day's P&L and the persisted peak --------------
        a2 = await k.start(g1, config("w-a2", daily_loss=limit))
        await until(lambda: halted_by_daily_loss(a2), 10, "the restarted worker halted by DAILY_LOSS")
        w = a2.worker
        await until(lambda: w.theo is not None and all(w.books[x] is not None for x in w.game.markets),
                    15, "theo and books (it would quote now if it were not halted)")
        assert w.positions[m] == held  # adopted, and not marked from zero
        assert w.account is not None and w.account.day_pnl_others_money <= -limit
        assert w.ks.peak_pnl_money >= loss_a.game_peak_money
        assert not [x for out in a2.outputs for _, x in out.actions if isinstance(x, Place)]
        await a2.stop()
        changes = [r for r in journal_records(k, "w-a2") if r["kind"] == "state_change"]
        assert changes and "DAILY_LOSS" in changes[0]["reason"]


def _spawn_quote(event: str, data_dir: Path, port: int, log: Path, env_extra: dict[str, str]
                 ) -> subprocess.Popen[bytes]:
    until = ns_to_iso(-(-(time.time_ns() + 90 * NS) // NS) * NS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_", "KALSHI_", "ODDS_API"))}
    env.update(MM_DATA_DIR=str(data_dir), MM_SIM_EXCHANGE_PORT=str(port), MM_SIM_HOST="127.0.0.1",
               MM_VENUE="sim", **env_extra)
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mmcore.cli", "quote", event, "--venue", "sim", "--until", until],
            env=env, cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)


async def test_a_crashed_workers_exposure_still_counts_for_the_others(tmp_path: Path) -> None:
    async with two_games(tmp_path, seed=23) as k:
        g1, g2 = k.events
        port = urlsplit(k.stack.rest_url).port
        assert port is not None
        log = tmp_path / "mm-quote.log"
        proc = _spawn_quote(g1, k.data_dir, port, log, {"MM_AGGREGATE_MAX_CONTRACTS": str(CAP // CONTRACT)})
        try:
            def quoting() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"mm quote exited early:\n{log.read_text(errors='replace')[-3000:]}")
                e = k.entry(g1)
                return e is not None and e.contracts >= 20 * CONTRACT
            await until(quoting, 40, "mm quote on game 1 quoting four sides, in the ledger")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        eng = k.stack.exchange.engine
        assert eng.orders(MM_USER, event_ticker=g1, status="resting"), "a SIGKILL leaves orders resting"
        crashed = k.entry(g1)
        assert not crashed.final
        b = await k.start(g2, config("w-b", cap=CAP))
        await until(lambda: b.records(aggregate_cut) and b.driver.worker is not None
                    and b.worker.live, 30, "game 2 quoting, cut by the crashed game's exposure")
        assert b.worker.account is not None and b.worker.account.stale == (g1,)
        assert b.worker.account.others.contracts == crashed.contracts
        assert 0 < k.exchange_contracts(g2) <= CAP - crashed.contracts
        await b.stop()
