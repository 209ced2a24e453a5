"""Issue 10 item 5: a dead-man that holds when every process is gone.

Each test runs the real worker (the ``mm quote`` CLI in a child process, or a real
:class:`~mmcore.worker.driver.WorkerDriver` in this process) against the local exchange over
loopback, and reads the exchange's truth straight from its engine (the state REST and WS render).

- orders expire at game start on the exchange: a SIGKILLed worker leaves nothing resting once the
  start passes, with no cancel from anyone;
- a failed order-group creation stops quoting (retries, then a clear reason, cancels allowed);
- the group is watched (``order_group_updates``): triggered or deleted → the worker learns it at
  once, reconciles, and resets or recreates the group before quoting again;
- per-market staleness from frames actually received: one silent market is pulled while the
  other keeps quoting;
- order-to-ack latency is measured per order, and an ack that never comes counts.

Every wait is bounded and polls state; nothing sleeps a fixed time to synchronise.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from mmcore.odds.teams import game_from_markets
from mmcore.sim.exchange import MM_USER
from mmcore.sim.scenario import load_scenario
from mmcore.sim.server import SimStack
from mmcore.theo.pull import pull_theos
from mmcore.venues.oddsapi import OddsApiClient
from tests.test_worker_sigkill import POLL_S, _kill, _mm_env, _until
from tests.workerkit import scenario_dict

NS = 1_000_000_000


# --- 1. orders expire at game start on the exchange ------------------------------------------


async def test_sigkilled_worker_leaves_nothing_resting_after_game_start(tmp_path: Path) -> None:
    """``mm quote`` is SIGKILLed a few seconds before the start with orders resting: no process
    of ours is left to cancel them, and the exchange removes every one at the start because each
    carries ``expiration_time`` = the game's start."""
    sc = load_scenario(scenario_dict(5, start_in_s=22.0), time.time_ns())
    g = sc.games[0]
    event = g.event_ticker
    data_dir = tmp_path / "data"
    log = tmp_path / "mm-quote.log"
    proc: subprocess.Popen | None = None
    async with SimStack(sc, data_dir, heartbeat_s=1.0) as stack:
        eng = stack.exchange.engine
        port = urlsplit(stack.rest_url).port
        async with OddsApiClient(stack.odds_url, stack.odds_api_key,
                                 bookmakers=("pinnacle", "draftkings", "fanduel", "betmgm")) as odds:
            await pull_theos(odds, [g.sim.sport_key],
                             [game_from_markets(event, g.markets, g.start_ns)], data_dir / "theo")

        def resting() -> list:
            return eng.orders(MM_USER, event_ticker=event, status="resting")

        env = _mm_env(data_dir, port)
        env["MM_QUOTE_STOP_BEFORE_START_S"] = "2"  # still quoting when it is killed
        try:
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mmcore.cli", "quote", event, "--venue", "sim"],
                    env=env, cwd=data_dir, stdout=out, stderr=subprocess.STDOUT)
            kill_at = g.start_ns - 7 * NS
            await _until(lambda: len(resting()) >= 2 and time.time_ns() >= kill_at,
                         (g.start_ns - time.time_ns()) / NS, "resting orders shortly before start",
                         proc, log)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            left = resting()
            assert len(left) >= 2, "a SIGKILLed worker runs no cleanup: its orders still rest"
            assert time.time_ns() < g.start_ns - 2 * NS
            # every order we placed carries the game's start as its expiry (whole seconds, down)
            ours = eng.orders(MM_USER, event_ticker=event)
            assert ours and all(o.expiration_ns == g.start_ns // NS * NS for o in ours), \
                [(o.order_id, o.expiration_ns) for o in ours]
            await _until(lambda: time.time_ns() >= g.start_ns and not resting(),
                         (g.start_ns - time.time_ns()) / NS + 5.0,
                         "the exchange to remove every order at game start")
            for o in left:
                done = eng.order(MM_USER, o.order_id)
                assert done.last_update_reason in ("expired", "filled"), \
                    f"{o.order_id} ended {done.last_update_reason}, not by expiry"
                if done.last_update_reason == "expired":
                    assert done.updated_ns >= g.start_ns // NS * NS
            assert any(eng.order(MM_USER, o.order_id).last_update_reason == "expired" for o in left)
        finally:
            _kill(proc)
