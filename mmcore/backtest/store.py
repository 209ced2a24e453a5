"""A backtest's result into DuckDB (``mm backtest --db PATH``): tables ``bt_runs``, ``bt_games`` and
``bt_fills`` (``sql/backtest/000_schema.sql`` says every column and its unit).

Append-only across runs; writing the same run again (same :func:`run_id`: same scenario, seed,
strategy, games and latency) replaces its rows — ``sql/backtest/delete_run.sql`` (by the staged
run row's id) then the three inserts, in one transaction — so a re-run never duplicates fills
(the calibration reads them).
Rows are staged as Arrow tables registered under ``bt_<table>_in`` and inserted by
``sql/backtest/insert_<table>.sql``; the SQL lives in files (:mod:`mmcore.record.sqlfiles`).

Design §2 (nobody holds the DuckDB file for long): the file is opened read-write only for the
write and closed at once; if another process holds it, the error says so and nothing waits.

Inputs from outside the backtest's virtual world (wall-clock start, git revision) are passed in
by the caller; nothing here reads a clock.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mmcore.backtest.metrics import HORIZONS_S, GameMetrics, RunMetrics
from mmcore.backtest.result import BacktestResult, GameResult
from mmcore.errors import InputError
from mmcore.record.sqlfiles import read_sql

DATABASE_NAME = "backtest.duckdb"
TABLES = ("runs", "games", "fills")


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Who and what a run was, beside its result."""

    run_id: str
    scenario_hash: str
    strategy: str
    started_at_ns: int
    """Wall clock when the run started (ns since the epoch)."""
    toxicity: str | None = None
    git_rev: str | None = None


def database_path(data_dir: Path) -> Path:
    return data_dir / DATABASE_NAME


def scenario_identity(source: Any) -> tuple[str, str | None]:
    """``(hash, toxicity)`` of a scenario source: sha256 (16 hex) of a file's bytes or of a
    mapping's canonical JSON; its ``toxicity`` entry when it has one (as text)."""
    if isinstance(source, (str, Path)):
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise InputError(f"scenario {source}: {exc}") from exc
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {}
    elif isinstance(source, Mapping):
        parsed = dict(source)
        raw = json.dumps(parsed, sort_keys=True, separators=(",", ":"), default=str).encode()
    elif hasattr(source, "model_dump"):
        parsed = source.model_dump(mode="json")
        raw = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    else:
        raise InputError(f"cannot identify a scenario of type {type(source).__name__}")
    tox = parsed.get("toxicity") if isinstance(parsed, dict) else None
    return hashlib.sha256(raw).hexdigest()[:16], None if tox is None else str(tox)


def run_id(scenario_hash: str, result: BacktestResult, strategy: str) -> str:
    """The run's identity (16 hex): the same inputs give the same id, so re-writing replaces."""
    lat = result.latency
    key = json.dumps([scenario_hash, result.seed, strategy,
                      [g.event_ticker for g in result.games],
                      [lat.order_fixed_ns, lat.order_jitter_ns, lat.market_data_ns,
                       lat.theo_pull_ns]])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def git_rev(repo: Path | None = None) -> str | None:
    """The checkout's short commit (``+dirty`` with uncommitted changes); None outside git."""
    where = repo or Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, text=True,
                             capture_output=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=where, text=True, capture_output=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}+dirty" if dirty.strip() else rev


def _mo(prefix: str, values: tuple[float | None, ...]) -> dict[str, float | None]:
    return {f"mo_{prefix}_{h}s": v for h, v in zip(HORIZONS_S, values)}


def _run_row(info: RunInfo, r: BacktestResult, m: RunMetrics) -> dict[str, Any]:
    return {
        "run_id": info.run_id, "scenario_hash": info.scenario_hash, "seed": r.seed,
        "strategy": info.strategy, "toxicity": info.toxicity,
        "started_at": info.started_at_ns // 1000,  # µs for TIMESTAMPTZ
        "git_rev": info.git_rev, "games": len(r.games), "fills": m.fills, "volume": m.volume,
        "fees": r.total_fees_money, "net_pnl": m.net_pnl_money,
        "pnl_per_contract": m.pnl_per_contract, **_mo("mid", m.markout_mid),
        **_mo("truth", m.markout_truth), "time_at_best_bid": m.time_at_best_bid,
        "time_at_best_ask": m.time_at_best_ask, "max_drawdown": m.max_drawdown_money,
        "max_inventory_ratio": m.max_inventory_ratio,
        "queue_ahead_placed_mean": m.queue_ahead_placed_mean,
        "nobody_ahead_share": m.nobody_ahead_share,
        "order_fixed_ns": r.latency.order_fixed_ns, "order_jitter_ns": r.latency.order_jitter_ns,
        "market_data_ns": r.latency.market_data_ns, "end_ns": r.end_ns, "steps": r.steps,
    }


def _game_row(run: str, g: GameResult, m: GameMetrics) -> dict[str, Any]:
    return {
        "run_id": run, "event_ticker": g.event_ticker, "start_ns": g.start_ns,
        "winner": g.winner, "fills": len(g.fills), "volume": g.volume, "fees": g.fees_money,
        "cash": g.cash_money, "settlement": g.settlement_money, "net_pnl": g.net_pnl_money,
        "pnl_per_contract": m.pnl_per_contract, "max_inventory": g.max_inventory,
        "max_inventory_ratio": m.max_inventory_ratio, "max_drawdown": m.max_drawdown_money,
        **_mo("mid", m.markout_mid), **_mo("truth", m.markout_truth),
        "time_at_best_bid": m.time_at_best_bid, "time_at_best_ask": m.time_at_best_ask,
        "window_from_ns": m.window_ns[0], "window_to_ns": m.window_ns[1],
        "actions": g.actions, "stop_reason": g.stop_reason, "stopped_ns": g.stopped_ns,
        "resting_after_stop": g.resting_after_stop,
    }


def _fill_rows(run: str, g: GameResult, m: GameMetrics) -> list[dict[str, Any]]:
    return [{
        "run_id": run, "event_ticker": g.event_ticker, "trade_id": f.trade_id,
        "order_id": f.order_id, "ts_ns": f.ts_ns, "market": f.market, "side": f.side,
        "price": f.price, "count": f.count, "fee": f.fee, "is_taker": f.is_taker,
        **_mo("mid", p.markout_mid), **_mo("truth", p.markout_truth),
        "queue_ahead_placed": p.queue_ahead_placed, "queue_ahead_filled": p.queue_ahead_filled,
        "hard_limit": p.hard_limit,
    } for f, p in zip(g.fills, m.fills)]


def _staged(con: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows as an Arrow table with the target table's column types (an empty list works too)."""
    cols = con.execute(f"DESCRIBE bt_{table}").fetchall()
    arrays = {}
    for name, dtype, *_ in cols:
        values = [row.get(name) for row in rows]
        if dtype == "TIMESTAMP WITH TIME ZONE":
            arrays[name] = pa.array(values, pa.timestamp("us", tz="UTC"))
        elif dtype == "BIGINT":
            arrays[name] = pa.array(values, pa.int64())
        elif dtype == "DOUBLE":
            arrays[name] = pa.array(values, pa.float64())
        elif dtype == "BOOLEAN":
            arrays[name] = pa.array(values, pa.bool_())
        else:
            arrays[name] = pa.array(values, pa.string())
    return pa.table(arrays)


def write_result(path: Path, result: BacktestResult, info: RunInfo) -> None:
    """Write (or re-write) one run into the DuckDB file at ``path`` (created if missing)."""
    if result.metrics is None or any(g.metrics is None for g in result.games):
        raise InputError("the backtest result has no metrics to store")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        raise InputError(f"backtest database {path} is held by another process (close it, or "
                         f"pass another --db): {exc}") from exc
    try:
        con.execute(read_sql("backtest/000_schema.sql"))
        rows = {
            "runs": [_run_row(info, result, result.metrics)],
            "games": [_game_row(info.run_id, g, g.metrics) for g in result.games
                      if g.metrics is not None],
            "fills": [r for g in result.games if g.metrics is not None
                      for r in _fill_rows(info.run_id, g, g.metrics)],
        }
        staged = {t: _staged(con, t, rows[t]) for t in TABLES}
        for t in TABLES:
            con.register(f"bt_{t}_in", staged[t])
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(read_sql("backtest/delete_run.sql"))
            for t in TABLES:
                con.execute(read_sql(f"backtest/insert_{t}.sql"))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()


__all__ = ["DATABASE_NAME", "RunInfo", "database_path", "git_rev", "run_id", "scenario_identity",
           "write_result"]
