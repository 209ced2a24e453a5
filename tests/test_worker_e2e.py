"""The quoting worker end to end against the local exchange over loopback: it quotes, trades
with the simulated flow, stops at game start and leaves nothing resting — with faults."""

from __future__ import annotations

import asyncio

from mmcore.sim.exchange import MM_USER
from mmcore.worker.journal import published_segments, read_records
from tests.workerkit import rig


def resting_mm(stack, event_ticker):
    eng = stack.exchange.engine
    return [o for o in eng.orders(MM_USER, event_ticker=event_ticker, status="resting")]


async def test_worker_quotes_then_stops_at_game_start_with_nothing_resting(tmp_path):
    async with rig(tmp_path, seed=4, start_in_s=16.0) as r:  # 13 s to quote, even on a busy machine
        driver = await r.driver()
        quoted = asyncio.Event()

        def watch(worker, out):
            if worker.live:
                quoted.set()

        driver.on_output = watch
        task = asyncio.create_task(driver.run())
        await asyncio.wait_for(quoted.wait(), timeout=15)
        assert resting_mm(r.stack, r.event_ticker), "worker should have orders resting on the exchange"
        report = await asyncio.wait_for(task, timeout=60)
        assert resting_mm(r.stack, r.event_ticker) == []
        assert report.final_state == "HALTED"
        assert report.kill is not None and report.kill.after == []
        assert report.actions > 0
        kinds = {rec["kind"] for rec in read_records(published_segments(r.journal_dir))}
        assert {"quote_decision", "order_action", "ack", "theo"} <= kinds


async def test_kill_verifies_even_when_cancel_acks_lie(tmp_path):
    async with rig(tmp_path, seed=5, start_in_s=600.0) as r:
        driver = await r.driver()
        quoted = asyncio.Event()
        driver.on_output = lambda w, out: quoted.set() if len(w.live) >= 2 else None
        task = asyncio.create_task(driver.run())
        await asyncio.wait_for(quoted.wait(), timeout=15)
        from mmcore.sim.rest import apply_fault
        apply_fault(r.stack.exchange, "cancel_ack_not_applied", {"seconds": 30, "delay_s": 3.0})
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        driver.stop("test kill")
        await asyncio.wait_for(task, timeout=30)
        assert resting_mm(r.stack, r.event_ticker) == []
        assert loop.time() - t0 < 10.0
