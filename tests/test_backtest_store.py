"""``mm backtest --db``: the run, its games and its fills in DuckDB, read back through SQL and equal
to what the command printed; a re-written run replaces its rows, another run appends."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from mmcore.backtest import run_backtest
from mmcore.backtest.store import RunInfo, run_id, scenario_identity, write_result
from mmcore.cli import app
from mmcore.errors import InputError
from mmcore.record.sqlfiles import read_sql
from mmcore.sim.scenario import default_scenario_dict
from mmcore.units import CONTRACT, PRICE_ONE

SEED = 7


def _mm_backtest(scenario: Path, db: Path, seed: int = SEED) -> list[str]:
    out = CliRunner().invoke(app, ["backtest", "--scenario", str(scenario), "--games", "2",
                                   "--seed", str(seed), "--db", str(db)])
    assert out.exit_code == 0, out.output
    return out.output.splitlines()


def _query(db: Path, sql: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bt") / "scenario.json"
    path.write_text(json.dumps({**default_scenario_dict(SEED, 3), "toxicity": "benign"}),
                    encoding="utf-8")
    return path


def test_what_mm_backtest_prints_is_what_sql_reads_back(scenario: Path, tmp_path: Path) -> None:
    db = tmp_path / "bt.duckdb"
    lines = _mm_backtest(scenario, db)
    printed = {ln.split()[0]: ln.split() for ln in lines[1:4]}  # the trading table's rows
    games = _query(db, "SELECT event_ticker, fills, volume, fees, net_pnl, pnl_per_contract, "
                       "max_drawdown FROM bt_games ORDER BY start_ns")
    assert len(games) == 2
    for ticker, fills, volume, fees, net, per_ct, dd in games:
        row = printed[ticker]
        assert row[1:6] == [str(fills), f"{volume / CONTRACT:g}", printed[ticker][3],
                            f"{fees / PRICE_ONE:.2f}", f"{net / PRICE_ONE:+.2f}"]
        assert row[6:8] == [f"{per_ct / 100:+.2f}", f"{dd / PRICE_ONE:.2f}"]
    total = printed["total"]
    [(run, strategy, seed, tox, n_fills, net, mo, git_rev)] = _query(
        db, "SELECT run_id, strategy, seed, toxicity, fills, net_pnl, "
            "[mo_mid_1s, mo_mid_5s, mo_mid_30s, mo_truth_1s, mo_truth_5s, mo_truth_30s], "
            "git_rev FROM bt_runs")
    assert (strategy, seed, tox) == ("ours", SEED, "benign")
    assert git_rev  # a checkout
    assert [str(n_fills), f"{net / PRICE_ONE:+.2f}"] == [total[1], total[4]]  # max inv blank
    quality_total = [ln for ln in lines if ln.startswith("total")][1].split()
    assert [f"{v / 100:+.2f}" for v in mo] == quality_total[1:7]
    assert lines[-1] == f"written to {db} (run {run})"
    # the fills, one row each, add up to the games; the stored markouts to the run's
    [totals] = _query(db, read_sql("backtest/run_totals.sql"))
    (_, _, _, _, run_games, n_games, g_fills, f_fills, g_vol, f_vol, g_net, r_net, _, r_mo5,
     f_mo5) = totals
    assert (run_games, n_games, g_fills, g_vol, g_net) == (2, 2, f_fills, f_vol, r_net)
    assert r_mo5 == f_mo5
    # and all of it equals the result object of the same run
    res = run_backtest(scenario, games=2, seed=SEED)
    assert res.metrics is not None and res.metrics.net_pnl_money == net
    fills = _query(db, "SELECT trade_id, ts_ns, market, side, price, count, fee, mo_truth_5s, "
                       "queue_ahead_placed FROM bt_fills ORDER BY ts_ns, trade_id")
    want = sorted(((f.trade_id, f.ts_ns, f.market, f.side, f.price, f.count, f.fee,
                    p.markout_truth[1], p.queue_ahead_placed)
                   for g in res.games if g.metrics for f, p in zip(g.fills, g.metrics.fills)),
                  key=lambda r: (r[1], r[0]))
    assert fills == want


def test_a_rewritten_run_replaces_its_rows_and_another_run_appends(scenario: Path,
                                                                    tmp_path: Path) -> None:
    db = tmp_path / "bt.duckdb"
    _mm_backtest(scenario, db)
    counts = "SELECT (SELECT count(*) FROM bt_runs), (SELECT count(*) FROM bt_games), " \
             "(SELECT count(*) FROM bt_fills)"
    first = _query(db, counts)[0]
    _mm_backtest(scenario, db)  # the same run again: nothing doubles
    assert _query(db, counts)[0] == first
    _mm_backtest(scenario, db, seed=SEED + 1)  # another seed: a second run beside the first
    runs, games, fills = _query(db, counts)[0]
    assert (runs, games) == (2, 4) and fills > first[2]
    assert _query(db, "SELECT count(DISTINCT seed) FROM bt_runs") == [(2,)]


def test_a_failed_write_leaves_the_previous_rows(scenario: Path, tmp_path: Path) -> None:
    db = tmp_path / "bt.duckdb"
    res = run_backtest(scenario, games=1, seed=SEED)
    digest, tox = scenario_identity(scenario)
    info = RunInfo(run_id(digest, res, "ours"), digest, "ours", 0, tox)
    write_result(db, res, info)
    before = _query(db, "SELECT count(*) FROM bt_fills")
    games = list(res.games)
    bad = type(res)(res.seed, res.latency, (games[0], games[0]), res.end_ns, res.steps,
                    metrics=res.metrics)  # the same game twice: the primary key refuses
    with pytest.raises(duckdb.ConstraintException):
        write_result(db, bad, info)
    assert _query(db, "SELECT count(*) FROM bt_fills") == before  # the transaction rolled back
    with pytest.raises(InputError):
        write_result(db, type(res)(res.seed, res.latency, res.games, 0, 0), info)  # no metrics
