"""launch-quoting under a real Prefect (test harness) against a real `mm sim`: one run per game
however often it runs (idempotency), a run a hard kill left RUNNING is found, its game's orders
cancelled with verification, the run marked crashed and the game relaunched."""

from __future__ import annotations

import time

from flows.launch_quoting import launch_quoting
from flows.quote_game import quote_game
from mmcore.calendar import read_calendar
from mmcore.ops.lease import write_lease
from tests.prefectkit import mm_env, resting, scenario, sim_process
from tests.test_flows_quote_game import _place_resting, _publish_theo

NS = 1_000_000_000


async def _quote_runs(ev: str) -> list:
    from tasks.launch import quote_game_runs

    return [r for r in await quote_game_runs() if r.event_ticker == ev]


async def _setup(sim) -> str:
    """Deployment (no runner: its runs stay SCHEDULED), calendar, theo."""
    from flows.refresh_calendar import refresh_calendar

    await (await quote_game.to_deployment(name="quote-game")).apply()
    await refresh_calendar()
    ev = await _publish_theo(sim)
    cal = read_calendar(sim.data_dir)
    assert cal is not None and cal.game(ev) is not None
    return ev


async def test_launcher_starts_one_run_per_game_however_often_it_runs(prefect_harness, tmp_path) -> None:
    with sim_process(tmp_path, scenario(21, [900.0])) as sim, mm_env(sim):
        ev = await _setup(sim)
        first = await launch_quoting()
        assert [x["event_ticker"] for x in first["launched"]] == [ev]
        second = await launch_quoting()
        assert second["launched"] == []
        assert any(s["game"] == ev and "SCHEDULED" in s["reason"] for s in second["skipped"])
        runs = await _quote_runs(ev)
        assert len(runs) == 1 and runs[0].run_id == first["launched"][0]["run_id"]

        # the same idempotency key (deployment + game + start + attempt) never makes a second run
        from tasks.launch import start_run

        key = [x for x in (await _plan_keys())][0]
        assert await start_run.fn(ev, 0, key) == runs[0].run_id


async def _plan_keys() -> list[str]:
    from mmcore.ops.launch import idempotency_key
    from tasks.launch import QUOTE_DEPLOYMENT
    from tasks.runtime import settings

    cal = read_calendar(settings().data_dir)
    return [idempotency_key(QUOTE_DEPLOYMENT, g.event_ticker, g.start_ns, 0) for g in cal.games]


async def test_a_run_left_running_by_a_hard_kill_is_recovered_and_relaunched(prefect_harness, tmp_path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    with sim_process(tmp_path, scenario(22, [900.0])) as sim, mm_env(sim, MM_QUOTE_LEASE_TIMEOUT_S="30"):
        ev = await _setup(sim)
        first = await launch_quoting()
        stuck_id = first["launched"][0]["run_id"]
        async with get_client() as client:  # what a SIGKILLed serve leaves: RUNNING forever
            await client.set_flow_run_state(stuck_id, Running(), force=True)
        await _place_resting(sim, ev)  # the dead worker's orders
        write_lease(sim.data_dir / "runs", ev, stuck_id, time.time_ns() - 120 * NS)  # last seen 2 min ago

        out = await launch_quoting()
        assert [r["run_id"] for r in out["recovered"]] == [stuck_id]
        assert out["recovered"][0]["resting_before"] == 3 and out["recovered"][0]["resting_after"] == 0
        assert await resting(sim, ev) == []
        assert [x["event_ticker"] for x in out["launched"]] == [ev]
        assert out["launched"][0]["attempt"] == 1
        runs = {r.run_id: r for r in await _quote_runs(ev)}
        assert runs[stuck_id].state == "CRASHED"
        assert runs[out["launched"][0]["run_id"]].state == "SCHEDULED"
