"""quote-game and cancel-all under a real Prefect (test harness + a Runner), against a real
`mm sim` process: a cancelled or crashed run leaves zero resting orders at the exchange, a run
that starts after its game began exits at once, cancel-all verifies on the exchange."""

from __future__ import annotations

import json
import os
import signal

from flows.cancel_all import cancel_all
from flows.quote_game import quote_game
from mmcore.odds.teams import game_from_markets
from mmcore.theo.pull import pull_theos
from mmcore.venues.oddsapi import OddsApiClient
from tests.prefectkit import RunnerThread, mm_env, resting, scenario, sim_process, wait_state

NS = 1_000_000_000


async def _publish_theo(sim) -> str:
    """A theo snapshot for the sim's first game, as pull-odds would publish it."""
    from mmcore.worker.driver import load_game

    s = sim.settings()
    ev = sim.event_tickers()[0]
    async with sim.rest() as rest:
        game = await load_game(rest, ev)
    async with OddsApiClient(s.odds_url, "sim-odds-api-key", bookmakers=s.odds_bookmakers) as odds:
        report = await pull_theos(odds, [game.sport_key],
                                  [game_from_markets(ev, game.markets, game.start_ns)], s.theo_dir)
    assert [x.event_ticker for x in report.snapshots] == [ev], (
        f"no theo published for {ev}: {report.lines()}")
    return ev


async def _place_resting(sim, event_ticker: str, n: int = 3) -> None:
    from mmcore.orders import Quote
    from mmcore.worker.driver import load_game

    async with sim.rest() as rest:
        game = await load_game(rest, event_ticker)
        for i in range(n):  # far below the book: they rest
            await rest.create_order(Quote(game.markets[0], "bid", 100 + i * 100, 100), f"t-{i}")
    assert len(await resting(sim, event_ticker)) == n


async def test_cancel_all_flow_halts_and_verifies_nothing_rests(prefect_harness, tmp_path) -> None:
    with sim_process(tmp_path, scenario(5, [600.0])) as sim, mm_env(sim):
        ev = sim.event_tickers()[0]
        await _place_resting(sim, ev)
        out = await cancel_all(event_ticker=ev, reason="test")
        assert out["resting_before"] == 3 and out["resting_after"] == 0
        assert await resting(sim, ev) == []
        assert (sim.data_dir / "halt" / ev).is_file()


async def test_a_run_that_starts_after_its_game_began_exits_at_once(prefect_harness, tmp_path) -> None:
    with sim_process(tmp_path, scenario(6, [30.0])) as sim, mm_env(sim):
        ev = sim.event_tickers()[0]
        out = await quote_game(event_ticker=ev)
        assert out["exit_reason"] == "game already started"
        assert out["resting_after"] == 0 and out["fills"] == 0


async def _running_quote_game(sim, watch):
    from prefect.deployments import run_deployment

    ev = await _publish_theo(sim)
    run = await run_deployment("quote-game/quote-game", parameters={"event_ticker": ev},
                               as_subflow=False, timeout=0)
    await wait_state(run.id, {"RUNNING"}, 60)
    await watch.until(bool, 60, "the worker's quotes to rest on the exchange")
    return ev, run


async def test_cancelling_a_quote_game_run_leaves_nothing_resting(prefect_harness, tmp_path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    with sim_process(tmp_path, scenario(8, [240.0])) as sim, mm_env(sim), RunnerThread((quote_game, "quote-game")):
        async with sim.watch(sim.event_tickers()[0]) as watch:
            ev, run = await _running_quote_game(sim, watch)
            async with get_client() as client:
                await client.set_flow_run_state(run.id, Cancelling(), force=True)
            assert await wait_state(run.id, {"CANCELLED", "CRASHED", "FAILED"}, 60) == "CANCELLED"
            await watch.until(lambda ids: not ids, 30, "nothing resting after the cancellation")
        assert await resting(sim, ev) == []  # the exchange's own list agrees


async def test_a_crashed_quote_game_run_leaves_nothing_resting(prefect_harness, tmp_path) -> None:
    from mmcore.ops.lease import read_leases

    with sim_process(tmp_path, scenario(9, [240.0])) as sim, mm_env(sim), RunnerThread((quote_game, "quote-game")):
        async with sim.watch(sim.event_tickers()[0]) as watch:
            ev, run = await _running_quote_game(sim, watch)
            # the lease is written before the worker starts, so it exists once orders rest
            lease = read_leases(sim.data_dir / "runs")[ev]
            pid = json.loads((sim.data_dir / "runs" / f"{ev}.json").read_text())["pid"]
            assert lease.run_id == str(run.id)
            os.kill(pid, signal.SIGKILL)  # a hard crash of the flow process: no finally, no cleanup
            assert await wait_state(run.id, {"CRASHED", "FAILED", "CANCELLED"}, 60) == "CRASHED"
            await watch.until(lambda ids: not ids, 30, "on_crashed to cancel everything")
        assert await resting(sim, ev) == []
        assert read_leases(sim.data_dir / "runs")[ev].run_id == str(run.id)  # left behind, stale


async def test_the_automation_cancels_a_crashed_runs_orders_even_without_its_hook(prefect_harness, tmp_path) -> None:
    """prefect.yaml's trigger on cancel-all: a quote-game run that ends Crashed (here by the API,
    so no process and no hook) gets its game's orders cancelled by a cancel-all run."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Crashed, Running

    from flows.deployments import load_specs, runner_deployment

    spec = next(s for s in load_specs() if s.name == "cancel-all")
    with sim_process(tmp_path, scenario(10, [600.0])) as sim, mm_env(sim), \
            RunnerThread(deployments=(runner_deployment(spec),)):
        await (await quote_game.to_deployment(name="quote-game")).apply()  # no runner: never executes
        ev = sim.event_tickers()[0]
        async with sim.watch(ev) as watch:
            await _place_resting(sim, ev)
            await watch.until(lambda ids: len(ids) == 3, 30, "the orders to rest")
            run = await run_deployment("quote-game/quote-game", parameters={"event_ticker": ev},
                                       as_subflow=False, timeout=0)
            async with get_client() as client:
                await client.set_flow_run_state(run.id, Running(), force=True)
                await client.set_flow_run_state(run.id, Crashed(message="test crash"), force=True)
            await watch.until(lambda ids: not ids, 60, "the automation's cancel-all")
        assert await resting(sim, ev) == []
        assert not (sim.data_dir / "halt" / ev).exists()  # not halted: the launcher may relaunch


async def test_quote_game_config_parameter_sets_the_workers_clip(prefect_harness, tmp_path) -> None:
    """The flow's ``config`` (a YAML file): the orders the run rested on the exchange are the
    file's 3 contracts, not the default 10; a bad file fails the run naming the key."""
    import datetime

    import pytest

    from mmcore.errors import ConfigError

    cfg = tmp_path / "worker.yaml"
    cfg.write_text("quote: {clip_contracts: 3, min_size_contracts: 1}\n")
    with sim_process(tmp_path, scenario(9, [300.0])) as sim, mm_env(sim):
        ev = await _publish_theo(sim)
        until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=8)).isoformat()
        out = await quote_game(event_ticker=ev, until=until, config=str(cfg))
        assert out["resting_after"] == 0
        async with sim.rest() as rest:
            placed = [o.count() for o in await rest.get_orders_raw(event_ticker=ev, status=None)]
        assert placed and max(placed) == 300, placed
        bad = tmp_path / "bad.yaml"
        bad.write_text("killswitch: {max_drawdown_money: lots}\n")
        with pytest.raises(ConfigError, match="max_drawdown_money"):
            await quote_game(event_ticker=ev, until=until, config=str(bad))
