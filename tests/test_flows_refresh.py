"""A worker's request for a fresh theo (news risk) goes through Prefect: quote-game's refresh
callback runs the per-game pull-odds deployment, and the new snapshot for that game — and only
that game — is published within a minute (the worker polls the snapshot every 2 s)."""

from __future__ import annotations

import time

from flows.pull_odds import pull_odds
from flows.quote_game import _refresh_via_deployment
from flows.refresh_calendar import refresh_calendar
from mmcore.theo.refresh import pending_requests, request_refresh
from mmcore.theo.snapshot import read_snapshot
from tests.prefectkit import RunnerThread, mm_env, scenario, sim_process, wait_state


async def test_a_worker_refresh_reaches_its_snapshot_within_a_minute(prefect_harness, tmp_path) -> None:
    with sim_process(tmp_path, scenario(17, [600.0, 660.0])) as sim, mm_env(sim), \
            RunnerThread((pull_odds, "pull-odds")):
        await refresh_calendar()
        await pull_odds()
        theo_dir = sim.data_dir / "theo"
        ev, other = sim.event_tickers()
        before = read_snapshot(theo_dir, ev).as_of_ns
        other_before = read_snapshot(theo_dir, other).as_of_ns
        request_refresh(sim.data_dir, ev, time.time_ns(), "inventory skewed")  # what the worker drops
        t0 = time.monotonic()
        run_id = await _refresh_via_deployment(ev)
        assert await wait_state(run_id, {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}, 60) == "COMPLETED"
        assert time.monotonic() - t0 < 60
        assert read_snapshot(theo_dir, ev).as_of_ns > before
        assert pending_requests(sim.data_dir) == []  # the pull that published it served the request
        assert read_snapshot(theo_dir, other).as_of_ns == other_before  # one game's pull only
