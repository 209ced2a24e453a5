"""Fifty game workers on one box (issue 11 item 5, scale): what each real ``quote-game`` process
costs to start, and that it stops itself on time.

- Fifty workers on a Basic account: the periodic reconciles of ``MM_MAX_CONCURRENT_GAMES``
  workers take at most half the account's read budget (50 × 3 reads every 10 s was 15 of the
  18 metered reads/s, and starting workers got the rest: 48 of 50 never finished starting).
- A worker process (``python -m mmcore.cli run quote-game``, the flow's own code, against the
  local exchange over loopback) never imports what a game worker does not use: the exchange
  server (Starlette, uvicorn, the odds server), the calendar and DuckDB, polars, pyarrow. Each
  was paid by every one of the fifty processes at start-up (~0.3 s of CPU and ~18 MB of RSS
  each on this box); ``-X importtime`` of the real process is the evidence.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mmcore.sim.scenario import default_scenario_dict, load_scenario
from mmcore.sim.server import SimStack

NS = 1_000_000_000
NOT_IN_A_WORKER = ("mmcore.sim.server", "mmcore.sim.odds_server", "mmcore.sim.exchange",
                   "uvicorn", "mmcore.calendar", "mmcore.record.store", "duckdb", "polars",
                   "pyarrow", "mmcore.theo.pull")


def worker_env(data_dir: Path, stack: SimStack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MM_", "KALSHI_", "ODDS_API", "PREFECT_API_URL"))}
    env.update(MM_DATA_DIR=str(data_dir), MM_SIM_EXCHANGE_PORT=str(urlsplit(stack.rest_url).port),
               MM_SIM_ODDS_PORT=str(urlsplit(stack.odds_url).port), MM_SIM_HOST="127.0.0.1",
               MM_VENUE="sim", PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1")
    return env


def iso_in(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(time.time() + seconds) + 1))


def _scenario(games: int = 1, start_in_s: float = 3600):
    d = default_scenario_dict(7, games)
    for g in d["games"]:
        g["start_in_s"] = start_in_s
    return load_scenario(d, time.time_ns())


async def test_a_worker_process_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    import asyncio

    async with SimStack(_scenario(), tmp_path, run_participants=False) as stack:
        ev = stack.scenario.games[0].event_ticker
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-X", "importtime", "-m", "mmcore.cli", "run", "quote-game",
            f"event_ticker={ev}", f"until={iso_in(3)}",
            env={**worker_env(tmp_path, stack), "MM_MAX_CONCURRENT_GAMES": "50"},
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, (out.decode()[-2000:], err.decode()[-3000:])
    assert '--until reached' in out.decode()
    imported = {line.rsplit("|", 1)[1].strip() for line in err.decode().splitlines()
                if line.startswith("import time:") and "|" in line}
    assert not imported & set(NOT_IN_A_WORKER), sorted(imported & set(NOT_IN_A_WORKER))
    assert "mmcore.worker.driver" in imported  # the log is the worker's own
    result = json.loads(out.decode()[out.decode().index("{"):])
    # 50 games on Basic (180 read tokens/s metered, 10 a read): 50 × 3 / (0.5 × 18) s
    assert result["reconcile_every_s"] == pytest.approx(50 * 3 / 9, abs=0.01)


def test_reconcile_interval_keeps_the_reconciles_inside_half_the_read_budget() -> None:
    from tasks.quoting import reconcile_interval_ns

    assert reconcile_interval_ns(10 * NS, 5, 18.0) == 10 * NS  # few games: unchanged
    for games, reads in ((50, 18.0), (200, 18.0), (50, 27.0), (200, 900.0)):
        every = reconcile_interval_ns(10 * NS, games, reads)
        assert games * 3 / (every / NS) <= 0.5 * reads + 1e-9
    assert reconcile_interval_ns(10 * NS, 50, 0.0) == 10 * NS  # unmetered


async def test_a_worker_stops_at_its_stop_time_even_while_starting(tmp_path: Path) -> None:
    """Every REST reply takes 3 s, so the worker's start-up (~11 sequential calls) runs far past
    its ``until``. It must stop at its stop time anyway, with the verified cancel-all, instead of
    when start-up happens to finish (before: the stop was seen only by the run loop, ~45 s
    after launch here; 48 starving workers had not stopped 400 s after it in bench/scale.py)."""
    import asyncio
    import calendar

    from mmcore.sim.rest_faults import apply_fault

    async with SimStack(_scenario(), tmp_path, run_participants=False) as stack:
        ev = stack.scenario.games[0].event_ticker
        apply_fault(stack.exchange, "slow_replies", {"seconds": 300, "delay_s": 3.0})
        until = iso_in(4)
        until_s = calendar.timegm(time.strptime(until, "%Y-%m-%dT%H:%M:%SZ")) - time.time()
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mmcore.cli", "run", "quote-game", f"event_ticker={ev}",
            f"until={until}", env=worker_env(tmp_path, stack), cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 180)
        took = time.monotonic() - t0
        resting = stack.exchange.engine.orders("mm", event_ticker=ev, status="resting")
    assert proc.returncode == 0, (out.decode()[-2000:], err.decode()[-3000:])
    result = json.loads(out.decode()[out.decode().index("{"):])
    assert "stop time reached" in result["exit_reason"], result
    assert result["resting_after"] == 0 and not resting
    # stop time + 2 s grace + the cancel-all's own slow calls (3 s each), not the start-up's end
    assert took < until_s + 20, (took, until_s, err.decode()[-2000:])
