"""``mm kill`` never claims a count it did not read (issue 12, defect 1).

The real command (``python -m mmcore.cli kill``, its own process) against the local exchange
(:class:`~mmcore.sim.server.SimStack`, real HTTP over loopback). While the exchange's order
listing fails (the ``route_5xx`` fault on ``GET /portfolio/orders``), ``mm kill`` must exit
non-zero saying "unknown: could not list orders (last error …)" — before the fix it reported
"0 order(s) still resting" while 5 rested. Once the listing works, the same command cancels
them all and verifies zero resting.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from mmcore.sim.engine import OrderRequest
from mmcore.sim.exchange import MM_USER
from mmcore.sim.rest_faults import apply_fault
from mmcore.sim.scenario import load_scenario
from mmcore.sim.server import SimStack
from tests.workerkit import scenario_dict

N_ORDERS = 5


def _mm_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_", "KALSHI_", "ODDS_API"))}
    env.update(MM_DATA_DIR=str(data_dir), MM_SIM_EXCHANGE_PORT=str(port), MM_SIM_HOST="127.0.0.1",
               MM_VENUE="sim")
    return env


async def _mm_kill(data_dir: Path, port: int, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mmcore.cli", "kill", "--all", "--venue", "sim", *args,
        env=_mm_env(data_dir, port), cwd=data_dir, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_mm_kill_reports_unknown_when_it_cannot_list(tmp_path: Path) -> None:
    sc = load_scenario(scenario_dict(11, start_in_s=600.0), time.time_ns())
    data_dir = tmp_path / "data"
    async with SimStack(sc, data_dir, run_participants=False) as stack:
        ex = stack.exchange
        port = urlsplit(stack.rest_url).port
        assert port is not None
        ticker = sc.games[0].markets[0]
        for i in range(N_ORDERS):
            ex.mutate(lambda e, now, i=i: e.place(OrderRequest(
                MM_USER, ticker, "bid", 100 * (i + 1), 100), now))

        def resting() -> int:
            return len(ex.engine.orders(MM_USER, status="resting"))

        assert resting() == N_ORDERS
        apply_fault(ex, "route_5xx", {"path": "/portfolio/orders", "count": 1_000_000})
        code, out = await _mm_kill(data_dir, port, "--deadline-s", "1")
        assert code != 0, out
        assert "unknown: could not list orders (last error" in out, out
        assert "no listing succeeded" in out, out
        assert "0 order(s) still resting" not in out and "resting after" not in out, out
        assert resting() == N_ORDERS  # nothing was cancelled: it could not see them

        ex.faults.route_5xx.clear()  # the listing works again
        code, out = await _mm_kill(data_dir, port, "--deadline-s", "20")
        assert code == 0, out
        assert f"resting before ({N_ORDERS})" in out and "resting after (0)" in out, out
        assert resting() == 0
