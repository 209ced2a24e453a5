"""The in-process backtest (issue 11 item 1): real game workers on the local exchange's engine and
participants, on the virtual clock, seeded and exactly reproducible."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from mmcore.backtest import BacktestResult, LatencyModel, run_backtest
from mmcore.backtest.runner import game_spec, resolve_backtest_scenario
from mmcore.errors import InputError
from mmcore.sim.scenario import default_scenario_dict
from mmcore.units import CONTRACT, PRICE_ONE

SEED = 7
NS = 1_000_000_000


@pytest.fixture(scope="module")
def slate() -> BacktestResult:
    """The default scenario's three games (starting 5, 10 and 15 minutes in), quoted from the
    scenario start until two minutes after the last start."""
    return run_backtest(default_scenario_dict(SEED, 3), seed=SEED)


def test_the_worker_trades_every_game_of_the_default_scenario(slate: BacktestResult) -> None:
    assert len(slate.games) == 3
    for g in slate.games:
        assert len(g.fills) > 0, g.event_ticker
        assert g.actions > 0
        assert g.volume == sum(f.count for f in g.fills)
        assert g.max_inventory > 0
    assert slate.total_volume > 0


def test_nothing_rests_or_fills_after_each_game_start(slate: BacktestResult) -> None:
    for g in slate.games:
        # the worker stopped itself at the start, cancelled everything and the engine shows none
        assert g.stop_reason is not None and g.stop_reason.startswith("GAME_START"), g.stop_reason
        assert g.start_ns <= g.stopped_ns < g.start_ns + NS
        assert g.resting_after_stop == 0
        assert all(f.ts_ns < g.start_ns for f in g.fills), g.event_ticker


def test_worker_saw_every_fill_and_pnl_is_settled_by_the_outcome(slate: BacktestResult) -> None:
    for g in slate.games:
        # the simulated feed delivered each fill once: the worker's own book matches the engine
        assert g.worker_positions == g.positions
        assert g.worker_cash_money == g.cash_money
        assert sum(f.fee for f in g.fills) == g.fees_money
        value = {m: (PRICE_ONE if m == g.winner else 0) for m in g.positions}
        assert g.settlement_money == sum(q * value[m] // CONTRACT for m, q in g.positions.items())
        assert g.net_pnl_money == g.cash_money + g.settlement_money
    assert slate.total_net_pnl_money == sum(g.net_pnl_money for g in slate.games)


def test_same_seed_same_fills_from_a_file_or_a_dict(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({**default_scenario_dict(SEED, 3), "seed": 1}), encoding="utf-8")
    a = run_backtest(default_scenario_dict(SEED, 3), games=1, seed=SEED)
    b = run_backtest(path, games=1, seed=SEED)  # the file's own seed (1) is replaced
    assert len(a.fills) > 0
    assert a.fills == b.fills
    assert a.games == b.games
    assert a.metrics == b.metrics and a.metrics is not None  # markouts, queue, drawdown too
    assert (a.end_ns, a.steps) == (b.end_ns, b.steps)


def test_a_different_seed_gives_a_different_run() -> None:
    a = run_backtest(default_scenario_dict(SEED, 3), games=1, seed=SEED)
    b = run_backtest(default_scenario_dict(SEED, 3), games=1, seed=SEED + 1)
    assert a.fills != b.fills


def test_latency_changes_when_orders_land() -> None:
    slow = LatencyModel(order_fixed_ns=400_000_000, order_jitter_ns=0)
    a = run_backtest(default_scenario_dict(SEED, 3), games=1, seed=SEED)
    b = run_backtest(default_scenario_dict(SEED, 3), games=1, seed=SEED, latency=slow)
    assert a.fills != b.fills


def test_game_spec_matches_what_load_game_builds() -> None:
    sc = resolve_backtest_scenario(default_scenario_dict(SEED, 3), None)
    soccer = game_spec(sc.games[2])
    assert soccer.markets[-1].endswith("-TIE")  # load_game's order: the tie market last
    assert soccer.sport_key == "soccer_epl"
    assert soccer.start_ns == sc.games[2].start_ns


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(InputError):
        run_backtest(default_scenario_dict(SEED, 1), games=0)
    with pytest.raises(InputError):
        run_backtest(default_scenario_dict(SEED, 1), games=["NOPE"])
    with pytest.raises(InputError):
        LatencyModel(order_fixed_ns=-1)


def test_backtest_package_reads_no_wall_clock_and_opens_no_socket() -> None:
    banned_modules = {"time", "asyncio", "socket", "httpx", "websockets", "threading", "datetime"}
    root = Path(__file__).resolve().parent.parent / "mmcore" / "backtest"
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_modules, path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in banned_modules, path
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in {"time_ns", "now", "utcnow", "sleep"}, path


def test_mm_backtest_prints_a_per_game_table(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mmcore.cli import app

    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(default_scenario_dict(SEED, 3)), encoding="utf-8")
    out = CliRunner().invoke(app, ["backtest", "--scenario", str(path), "--games", "1",
                                   "--seed", str(SEED), "--no-db"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].split()[:3] == ["game", "fills", "volume"]
    first = run_backtest(path, games=1, seed=SEED).games[0]
    assert lines[1].split()[:2] == [first.event_ticker, str(len(first.fills))]
    assert lines[2].startswith("total")
    assert "mid markout" in lines[4] and lines[6].startswith("total")  # the quality table
    bad = CliRunner().invoke(app, ["backtest", "--scenario", str(tmp_path / "missing.json")])
    assert bad.exit_code == 1 and "error" in bad.output


@pytest.mark.parametrize("name", ["fixed-spread", "inventory-skew", "as-mid"])
def test_each_baseline_quotes_through_the_same_worker_and_is_reproducible(name: str) -> None:
    """Issue 11 item 3 in the backtest: a baseline decides the quotes of the same GameWorker
    (gate, kill switch, limits unchanged), trades, stops at the start with nothing resting, and
    the same seed gives the same fills; and it is not ours (different fills)."""
    a = run_backtest(default_scenario_dict(SEED, 3), games=1, seed=SEED, strategy=name)
    b = run_backtest(default_scenario_dict(SEED, 3), games=1, seed=SEED, strategy=name)
    ours = run_backtest(default_scenario_dict(SEED, 3), games=1, seed=SEED)
    g = a.games[0]
    assert g.fills and g.resting_after_stop == 0
    assert [f for f in g.fills] == [f for f in b.games[0].fills]
    assert g.fills != ours.games[0].fills


def test_unknown_strategy_is_a_config_error() -> None:
    from mmcore.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown strategy"):
        run_backtest(default_scenario_dict(SEED, 1), games=1, seed=SEED, strategy="nope")


def test_the_run_counts_its_work_and_reports_each_halt() -> None:
    """``result.stats`` counts what benches report (worker CPU only with a CPU clock), and each
    game's ``halts`` lists its kill switch going HALTED: in the toxic world a $0.50 drawdown
    limit halts the game on DRAWDOWN before its start; without it the game halts only on
    GAME_START at its stop."""
    import dataclasses

    from mmcore.sim.worlds import world_scenario
    from mmcore.worker.engine import WORKER_KILLSWITCH, WorkerConfig

    ticks = iter(range(10**9))
    world = world_scenario("toxic", 1, SEED)
    plain = run_backtest(world, seed=SEED)
    cfg = WorkerConfig("bt", killswitch=dataclasses.replace(WORKER_KILLSWITCH, max_drawdown_money=5000))
    tight = run_backtest(world, seed=SEED, worker_config=cfg, cpu_clock=lambda: float(next(ticks)))
    s = plain.stats
    assert s is not None and s.worker_cpu_s == 0.0  # no clock given: nothing timed
    assert s.batches > 0 and s.book_events >= s.batches and s.decisions > 0
    assert tight.stats is not None and tight.stats.worker_cpu_s > 0  # the given clock was read
    g = plain.games[0]
    assert [h.triggers for h in g.halts] == [("GAME_START",)], g.halts
    assert g.stopped_ns is not None and g.halts[0].at_ns <= g.stopped_ns
    t = tight.games[0]
    assert t.halts and t.halts[0].triggers == ("DRAWDOWN",) and t.halts[0].at_ns < t.start_ns, t.halts
    assert len(t.fills) < len(g.fills)  # the halt stopped the trading
