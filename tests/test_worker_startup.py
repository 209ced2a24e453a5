"""A game worker's start-up, through the real path against the local exchange over loopback.

1. The quote-game task (``run_game_worker``, what every ``quote-game`` run executes) reports its
   start-up stages and the REST requests each made, and makes no avoidable ones: one
   ``GET /milestones`` (not two), no ``GET /account/limits`` when another process of the account
   read the tier moments ago, no ``GET /portfolio/fills`` before its first quote. Before: 11
   requests per worker, now 8 (7 for every worker after the first) — at N = 50 on Basic they
   are queued behind one 18-reads/s budget (bench/scale.py).
2. A start-up slower than the WebSocket grace (``connectivity_grace_ns``) still quotes: the
   worker used to be born before the start-up REST calls, so its socket counted as "down" from
   then, and a slow start-up HALTED it on CONNECTIVITY before the socket was opened (7 of 50
   workers at N = 50 on Basic never quoted).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from urllib.parse import urlsplit

from mmcore.sim.exchange import MM_USER
from mmcore.sim.rest_faults import apply_fault
from mmcore.sim.server import SimStack
from tests.accountkit import wait_until
from tests.workerkit import publish_theos, rig, scenario_dict, worker_config

NS = 1_000_000_000


async def test_quote_game_start_up_makes_no_avoidable_requests(tmp_path: Path, monkeypatch) -> None:
    from mmcore.settings import get_settings
    from mmcore.sim.scenario import load_scenario
    from tasks.quoting import run_game_worker

    sc = load_scenario(scenario_dict(11, 600.0), time.time_ns())
    data_dir = tmp_path / "data"
    async with SimStack(sc, data_dir, heartbeat_s=1.0, run_participants=False) as stack:
        ev = sc.games[0].event_ticker
        await publish_theos(stack, sc.games, data_dir / "theo")
        for k, v in {"MM_DATA_DIR": str(data_dir), "MM_VENUE": "sim", "MM_SIM_HOST": "127.0.0.1",
                     "MM_SIM_EXCHANGE_PORT": str(urlsplit(stack.rest_url).port),
                     "MM_SIM_ODDS_PORT": str(urlsplit(stack.odds_url).port)}.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        try:
            runs = []
            for _ in range(2):  # the second run finds the tier the first one read
                until = time.time_ns() + 4 * NS
                runs.append(await run_game_worker.fn(ev, f"run-{len(runs)}", until_ns=until))
        finally:
            get_settings.cache_clear()
    for r in runs:
        assert r.exit_reason.endswith("--until reached") and r.resting_after == 0, r
        assert r.actions > 0, r  # it quoted
        up = r.startup
        assert up["done"] and up["in"] is None, up
        req = {k: v[2] for k, v in up["stages"].items()}
        # GET /milestones; [GET /account/limits]; GET /events/{t}, GET /series/{s};
        # POST order group; user_data_timestamp, positions, resting orders
        assert req["game start"] == 1 and req["game"] == 2 and req["order group"] == 1, req
        assert req["reconcile"] == 3, req
    assert runs[0].startup["stages"]["rate tier"][2] == 1
    assert runs[1].startup["stages"]["rate tier"][2] == 0
    assert [r.startup["requests"] for r in runs] == [8, 7]


async def test_a_start_up_slower_than_the_socket_grace_still_quotes(tmp_path: Path) -> None:
    async with rig(tmp_path, seed=5, start_in_s=120.0) as r:
        cfg = dataclasses.replace(worker_config("w-slow"), connectivity_grace_ns=1 * NS)
        driver = await r.driver("w-slow", cfg=cfg, until_ns=time.time_ns() + 20 * NS)
        # every REST reply waits 0.6 s: order group + 3 reconcile reads ≈ 2.4 s > the 1 s grace
        apply_fault(r.stack.exchange, "slow_replies", {"seconds": 3.0, "delay_s": 0.6})
        task = asyncio.create_task(driver.run())
        try:
            await wait_until(lambda: driver.startup.total_ns is not None or task.done(), 20,
                         "start-up to end")
            assert driver.startup.stages["reconcile"][0] >= 1.5 * NS, driver.startup.summary()
            ex = r.stack.exchange
            await wait_until(lambda: bool(ex.engine.orders(MM_USER, event_ticker=r.event_ticker,
                                                       status="resting")) or task.done(),
                         20, "the worker's first resting order")
            assert not task.done(), task.result()
            assert driver.worker is not None and driver.worker.ks.state == "ACTIVE", (
                driver.worker.ks.history if driver.worker else None)
        finally:
            driver.stop("test over")
            report = await asyncio.wait_for(task, 60)
        assert report.kill is not None and not report.kill.after
