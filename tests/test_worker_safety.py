"""Issue 10 (live safety) through the running worker against the local exchange: a restart that
inherits a position above the limit, and the limit that our own resting orders must not raise.

Same harness as :mod:`tests.test_worker_faults` (a real :class:`WorkerDriver` over loopback,
assertions on what the exchange shows, every wait bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

from mmcore.game import directional_inventory
from mmcore.orders import Amend, Place, Quote
from mmcore.risk.gate import GateConfig
from mmcore.risk.limits import available_liquidity, game_limit
from mmcore.sim.engine import OrderRequest
from mmcore.sim.exchange import MM_USER
from mmcore.units import CONTRACT, PRICE_ONE
from tests.test_worker_faults import FAR, NOISE, Run, bounded, finish, hit_mm_order, running
from mmcore.theo.snapshot import TheoSnapshot, path_for, read_snapshot, write_snapshot
from mmcore.worker.driver import load_game
from tests.workerkit import rig

NS = 1_000_000_000


@contextlib.asynccontextmanager
async def restarted_with(tmp_path: Any, contracts: int, *, seed: int = 5,
                         without_theo: bool = False) -> AsyncIterator[Run]:
    """A worker that starts (as after a crash) on an account already long ``contracts`` YES of
    the game's first market, bought from another trader before the worker came up; with
    ``without_theo`` the game's theo snapshot is held back (moved aside; :func:`restore_theo`)."""
    async with rig(tmp_path, seed=seed, start_in_s=FAR) as r:
        if without_theo:
            snap = path_for(r.theo_dir, r.event_ticker)
            snap.rename(snap.with_suffix(".held"))
        ex = r.stack.exchange
        market = (await load_game(r.rest, r.event_ticker)).markets[0]
        ask = ex.engine.best(market)[2]
        price = ask if ask is not None else 5000
        ex.mutate(lambda eng, now: eng.place(OrderRequest(
            user_id=NOISE, ticker=market, side="ask", price=price, count=contracts * CONTRACT), now))
        ex.mutate(lambda eng, now: eng.place(OrderRequest(
            user_id=MM_USER, ticker=market, side="bid", price=price, count=contracts * CONTRACT,
            time_in_force="immediate_or_cancel"), now))
        assert ex.engine.position(MM_USER, market) == contracts * CONTRACT
        driver = await asyncio.wait_for(r.driver(worker_id="w-restart"), timeout=15)
        run = Run(r, driver)
        run.start()
        try:
            yield run
        finally:
            await run.close()


@bounded
async def test_restart_above_the_limit_reduces_and_never_halts(tmp_path):
    """Issue 10 item 3. The account holds 600 contracts of one team (above any sport's cap) when
    the worker starts: it must adopt them, wait for the books before judging its limit, go
    REDUCING (quoting only the sides that reduce) and stay there — not HALTED, no DRAWDOWN from
    marking the position at 0.5, no INVENTORY_BREACH — and actually sell some down on the
    exchange when another trader lifts its offers."""
    async with restarted_with(tmp_path, 600) as run:
        m, other = run.markets
        await run.until(lambda: run.driver.worker is not None and run.worker.books_ready
                        and run.worker.theo is not None
                        and run.worker.ks.state == "REDUCING", 15, "REDUCING with books and theo")
        assert run.worker.positions[m] == 600 * CONTRACT
        assert run.worker.limit().hard_contracts < 600 * CONTRACT
        await run.until(lambda: bool(run.resting()), 10, "reducing quotes resting")
        t0 = run.now()
        await run.until(lambda: run.now() >= t0 + 4 * NS, 10, "four more seconds of quoting")
        # on the exchange: only the sides that reduce long-m (ask m, bid other) ever rest
        sides = {(o.ticker, o.side) for o in run.all_orders() if o.client_order_id}  # not the IOC
        assert sides and sides <= {(m, "ask"), (other, "bid")}, sides
        hit = [o for o in run.resting(m) if o.side == "ask"]
        if hit:  # another trader lifts the offer: inventory goes down, still never halted
            assert hit_mm_order(run, hit[0]) < 0
            await run.until(lambda: run.worker.positions[m] < 600 * CONTRACT, 10, "a reducing fill")
        states = {s for _, s, _ in run.states}
        triggers = {t for _, _, ts in run.states for t in ts}
        assert "HALTED" not in states, run.state_reasons()
        assert not triggers & {"INVENTORY_BREACH", "DRAWDOWN"}, run.state_reasons()
        assert "INVENTORY_SOFT" in triggers
        assert run.worker.ks.state == "REDUCING"
        # the reducing orders go out in the account budget's first class (with cancels)
        assert run.driver._reduces(Place(Quote(m, "ask", 9900, CONTRACT), "x"))
        assert run.driver._reduces(Place(Quote(other, "bid", 100, CONTRACT), "y"))
        assert not run.driver._reduces(Place(Quote(m, "bid", 100, CONTRACT), "z"))
        await finish(run)


@bounded
async def test_own_resting_orders_do_not_raise_the_game_limit(tmp_path):
    """Issue 10 item 4. While the worker quotes, its hard limit is what *others'* liquidity near
    the top allows: recomputed here from the exchange's book minus mm's own resting orders."""
    async with running(tmp_path, seed=7, worker_id="w-liq") as run:
        driver = run.driver
        await run.quoting(per_market=2)
        await run.settled()
        w = run.worker
        own: dict[tuple[str, str, int], int] = {}
        for o in run.resting():
            key = (o.ticker, o.side, o.price)
            own[key] = own.get(key, 0) + o.remaining
        sizes: list[int] = []
        window = w.cfg.liquidity_window_price
        own_total = 0
        for m in run.markets:
            yes_bids, no_bids = run.ex.engine.orderbook(m)
            bids = dict(yes_bids)
            asks = {PRICE_ONE - p: n for p, n in no_bids}
            if bids:
                top = max(bids)
                for p, n in bids.items():
                    if p >= top - window:
                        sizes.append(n - own.get((m, "bid", p), 0))
                        own_total += own.get((m, "bid", p), 0)
            if asks:
                top = min(asks)
                for p, n in asks.items():
                    if p <= top + window:
                        sizes.append(n - own.get((m, "ask", p), 0))
                        own_total += own.get((m, "ask", p), 0)
        assert own_total > 0, "mm's quotes rest near the top (else the test shows nothing)"
        expected = game_limit(driver.game.sport_key, available_liquidity(sizes), w.cfg.limits)
        assert w.limit() == expected
        # and the exchange-side inventory respects it whatever the quotes
        inv = max(map(abs, directional_inventory(driver.game.book, run.positions())))
        assert inv <= w.limit().hard_contracts
        assert not [a for _, a in run.actions if isinstance(a, (Place, Amend))
                    and a.slot[0] not in run.markets]
        await finish(run)


@bounded
async def test_stop_loss_barrier_exits_reduce_only_on_the_exchange(tmp_path):
    """Issue 10 item 6 (triple barrier): mm gets long one team (another trader hits its bid),
    then the odds move 8¢ against it. The stop-loss barrier quotes that market reduce-only: its
    bid goes from the exchange, its ask stays for at most the position, and the quote decision
    says which barrier and why."""
    async with running(tmp_path, seed=11, worker_id="w-barrier") as run:
        r = run.r
        await run.quoting(per_market=2)
        await run.settled()
        m, other = run.markets
        bid = next(o for o in run.resting(m) if o.side == "bid")
        assert hit_mm_order(run, bid) > 0
        await run.until(lambda: run.worker.positions[m] > 0, 10, "the fill reaches the worker")
        snap = read_snapshot(r.theo_dir, r.event_ticker)
        assert snap is not None
        p = run.worker.theo[run.markets.index(m)] - 0.08  # 8¢ against the entry mark
        write_snapshot(r.theo_dir, TheoSnapshot(r.event_ticker, {m: p, other: 1 - p},
                                                snap.uncertainty, snap.confidence,
                                                time.time_ns(), "test: odds moved"))
        await run.until(lambda: run.worker.lots[m] is not None
                        and run.worker.lots[m].hit == "stop_loss", 10, "stop-loss barrier")
        notes = [n for _, rec in run.journal if rec["kind"] == "quote_decision"
                 for n in rec["notes"] if n.startswith(f"barrier {m}")]
        assert any("stop_loss" in n for n in notes), notes
        await run.settled()
        position = run.positions()[m]
        assert not [o for o in run.resting(m) if o.side == "bid"]
        asks = [o for o in run.resting(m) if o.side == "ask"]
        assert all(o.remaining <= position for o in asks)
        await finish(run)


@bounded
async def test_an_order_whose_amend_the_gate_refuses_is_cancelled_on_the_exchange(tmp_path):
    """Issue 10 item 9. While the worker quotes, its gate is tightened so that it refuses every
    order larger than 0.01 contract; then the odds move, and the worker wants to amend each of
    its orders. A refused amend must not leave the old order resting (sized and priced for the
    old theo): every order whose amend was refused is cancelled on the exchange. (Not every
    order that rested before: one whose price the move does not change, e.g. pinned at the top
    of the book, needs no amend — the world, and so which, changes with the date.)"""
    async with running(tmp_path, seed=13, worker_id="w-refuse") as run:
        r = run.r
        await run.quoting(per_market=2)
        await run.settled()
        before = {o.order_id for o in run.resting()}
        run.worker.cfg = dataclasses.replace(run.worker.cfg, gate=GateConfig(max_order_contracts=1))
        snap = read_snapshot(r.theo_dir, r.event_ticker)
        assert snap is not None
        m, other = run.markets
        p = snap.markets[m] + 0.03
        write_snapshot(r.theo_dir, TheoSnapshot(r.event_ticker, {m: p, other: 1 - p},
                                                snap.uncertainty, snap.confidence,
                                                time.time_ns(), "test: odds moved"))
        def refused() -> set[str]:
            return {rec["action"]["order_id"] for _, rec in run.journal
                    if rec["kind"] == "refusal" and rec["action"]["action"] == "amend"}

        await run.until(lambda: bool(refused()), 15, "a refused amend")
        await run.until(lambda: not refused() & {o.order_id for o in run.resting()}, 15,
                        "every order whose amend was refused cancelled on the exchange")
        assert refused() <= before, "only orders that rested before the move were amended"
        await finish(run)


@bounded
async def test_pnl_without_theo_counts_positions_and_says_at_what(tmp_path):
    """Issue 10 item 11. Restarted on 50 contracts before any theo is published: the P&L the
    worker judges (and shows) counts the position — at its cost, flat, and says so — instead of
    cash alone (−$25 and change, which read as a loss and then as a jump when theo came). Once
    theo is published, the position is marked at theo, still flat."""
    async with restarted_with(tmp_path, 50, without_theo=True) as run:
        await run.until(lambda: run.driver.worker is not None and run.worker.books_ready, 15,
                        "books in, no theo")
        st = run.driver.status()
        assert run.worker.theo is None and run.worker.positions[run.markets[0]] == 50 * CONTRACT
        assert st.marked_at == "cost" and st.pnl_money == 0, st
        held = path_for(run.r.theo_dir, run.r.event_ticker).with_suffix(".held")
        held.rename(held.with_suffix(".json"))
        await run.until(lambda: run.worker.theo is not None, 10, "theo published")
        st = run.driver.status()
        assert st.marked_at == "theo" and abs(st.pnl_money) <= 50 * 100, st  # within 1¢ a contract
        assert "DRAWDOWN" not in {t for _, _, ts in run.states for t in ts}
        await finish(run)
