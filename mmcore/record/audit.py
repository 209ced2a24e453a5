"""The nightly audit: markouts, markout flags, fee audit, viability and P&L with attribution.

Calling order (quoting-math §5.4, design §2 "nightly_audit"): :func:`run_audit` opens an
in-memory DuckDB with the record's views (:func:`mmcore.record.db.connect`, no file lock), puts
the per-fill markouts on it as ``audit_markouts_input`` (step 0, by ``engine``), runs
``sql/audit/00[1-3]_*.sql`` (materialise the audited fills once: ``audit_game_fills``,
``audit_fills``, ``audit_fee_fills``), then each result query ``sql/audit/<name>.sql``; each
result is checked against :data:`mmcore.record.store.AUDIT_TABLES` and published as
``record/audit_<name>/<run_id>.parquet`` (so the ``audit_<name>`` views show every run). It
returns the tables as lists of dicts, a markdown summary and one plot (markout curve per side and
cumulative P&L): PNG with matplotlib when importable, else an SVG drawn here.

Step 0, the markouts (``engine``):

- ``"polars"`` (default): :mod:`mmcore.record.markouts_polars` reads the fills, book mids, theos
  and quote decisions through Arrow, computes with polars ``join_asof`` and registers the result;
- ``"duckdb"``: ``sql/audit/000_markouts_duckdb.sql``, a view of ``v_markouts`` (DuckDB ASOF JOIN).

Both give the same tables (tests/test_record_markouts_polars.py). polars is the default because
``bench/audit.py`` measured it fastest (1 M fills × 20 M book tops, 3 horizons, 2 vCPUs: polars
``join_asof`` 3.3–3.8 s, DuckDB ASOF JOIN 4.8–5.7 s, pandas ``merge_asof`` 9.6–12.7 s); the
audit's own path (every column, 4 horizons) took 3.8 s and 2.5 GB against 6.8 s and 3.4 GB for
the ``v_markouts`` view in the same run (bench/README.md). ``v_markouts`` stays the view
``mm sql`` and the ``duckdb`` shell query.

Units: money in price units ($0.0001; the markdown shows dollars or cents, saying which),
``*_c`` columns in cents per contract, counts in centi-contracts, times ns since the epoch (UTC).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb

from mmcore.errors import InputError, MMError
from mmcore.record import db, markouts_polars, store
from mmcore.record.plots import write_plot
from mmcore.record.sqlfiles import params_for, read_sql, sql_dir

Engine = Literal["polars", "duckdb"]
ENGINES: tuple[Engine, ...] = ("polars", "duckdb")
DUCKDB_MARKOUTS_STEP = "000_markouts_duckdb"
"""Step 0 for engine ``"duckdb"``: ``audit_markouts_input`` = ``v_markouts``."""
PREPARE_STEPS = ("001_game_fills", "002_day_fills", "003_fee_fills")
RESULTS = ("markouts", "markout_curve", "flags", "fees", "viability", "pnl", "pnl_curve")
"""Result queries, in run order; each writes table ``audit_<name>``."""
MARKDOWN_ROWS = 40

Row = dict[str, Any]


@dataclass(frozen=True)
class AuditResult:
    run_id: str
    day: str | None
    tables: Mapping[str, list[Row]]
    """``RESULTS`` name → rows (column → value)."""
    files: Mapping[str, Path]
    """``RESULTS`` name → the Parquet file written (absent when it already existed)."""
    markdown: str
    plot: Path | None
    elapsed_s: float


def run_id_for(day: str | None, now_ns: int) -> str:
    """``<day or 'all'>--<now_ns>``: one run per day audited and start time."""
    return f"{day or 'all'}--{now_ns}"


def run_audit(data_dir: Path, *, day: str | None = None, now_ns: int,
              engine: Engine = "polars") -> AuditResult:
    """Audit the fills of UTC day ``day`` (``YYYY-MM-DD``; None = every day recorded); P&L covers
    the games traded that day. ``now_ns`` (ns since the epoch) names the run and stamps its rows.
    ``engine`` computes the markouts (module docstring); the tables do not depend on it.
    Idempotent for the same (day, now_ns): files that exist are kept."""
    started = time.perf_counter()
    _check_day(day)
    if engine not in ENGINES:
        raise InputError(f"audit engine must be one of {ENGINES}, got {engine!r}")
    run_id = run_id_for(day, now_ns)
    params = {"day": day, "run_id": run_id, "run_ns": now_ns}
    root = store.record_root(data_dir)
    con = db.connect(data_dir)
    try:
        if engine == "polars":
            markouts_polars.register(con, markouts_polars.markouts(con, day=day))
        else:
            _execute(con, f"audit/{DUCKDB_MARKOUTS_STEP}.sql", params)
        for step in PREPARE_STEPS:
            _execute(con, f"audit/{step}.sql", params)
        tables = {name: _result(con, name, params) for name in RESULTS}
    finally:
        con.close()
    files: dict[str, Path] = {}
    for name, rows in tables.items():
        table = f"audit_{name}"
        written = store.write_rows(root, table, run_id, rows, store.AUDIT_TABLES[table])
        if written is not None:
            files[name] = written
    plot = write_plot(root / "plots", run_id, tables["markout_curve"], tables["pnl_curve"])
    return AuditResult(run_id, day, tables, files, summary_markdown(run_id, day, tables), plot,
                       time.perf_counter() - started)


def _check_day(day: str | None) -> None:
    if day is None:
        return
    try:
        dt.date.fromisoformat(day)
    except ValueError:
        raise InputError(f"audit day must be YYYY-MM-DD, got {day!r}") from None


def _execute(con: duckdb.DuckDBPyConnection, relative: str,
             params: Mapping[str, Any]) -> duckdb.DuckDBPyConnection:
    sql = read_sql(relative)
    try:
        return con.execute(sql, params_for(sql, params))
    except duckdb.Error as exc:
        raise MMError(f"{sql_dir() / relative}: {exc}") from exc


def _result(con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any]) -> list[Row]:
    cur = _execute(con, f"audit/{name}.sql", params)
    columns = [d[0] for d in cur.description]
    expected = list(store.AUDIT_TABLES[f"audit_{name}"])
    if columns != expected:
        raise MMError(f"sql/audit/{name}.sql returns {columns}, store.AUDIT_TABLES says {expected}")
    return [dict(zip(columns, row)) for row in cur.fetchall()]


# --- markdown ----------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _dollars(price_units: Any) -> str:
    return "–" if price_units is None else f"{price_units / 10_000:,.2f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(r) + " |" for r in rows[:MARKDOWN_ROWS]]
    if len(rows) > MARKDOWN_ROWS:
        lines.append(f"\n({len(rows) - MARKDOWN_ROWS} more rows in the Parquet table)")
    return lines


def summary_markdown(run_id: str, day: str | None, tables: Mapping[str, list[Row]]) -> str:
    """The audit as markdown: headline, viability, markout curve, P&L by market, fees, flags."""
    via, curve, pnl, fees, flags = (tables[k] for k in ("viability", "markout_curve", "pnl",
                                                         "fees", "flags"))
    fills = sum(r["fills"] for r in via)
    net = sum(r["net"] for r in via)
    out = [f"# Audit {run_id}", "",
           f"Day: {day or 'all days'} (UTC). {fills} fill(s) in {len(via)} market-day(s); "
           f"net after fees at +30 s: {_dollars(net)} $; "
           f"{sum(1 for r in via if not r['viable'])} market-day(s) not viable; "
           f"{len(flags)} fill(s) flagged (markout worse than half the quoted spread).", "",
           "## Viability at h* = 30 s (¢ per contract; net in $)", ""]
    out += _table(["day", "market", "fills", "contracts", "spread", "adverse", "fees", "net",
                   "net $", "viable"],
                  [[_fmt(r["day"]), r["market"], _fmt(r["fills"]), _fmt(r["contracts"]),
                    _fmt(r["spread_capture_c_per_contract"]),
                    _fmt(r["adverse_selection_c_per_contract"]), _fmt(r["fees_c_per_contract"]),
                    _fmt(r["net_c_per_contract"]), _dollars(r["net"]), _fmt(r["viable"])]
                   for r in via])
    out += ["", "## Markout curve (¢ per contract, contract-weighted; h = 0 is the edge)", ""]
    out += _table(["side", "h (s)", "fills", "vs mid", "vs theo"],
                  [[r["side"], _fmt(r["h_s"]), _fmt(r["fills"]), _fmt(r["markout_mid_c"], 3),
                    _fmt(r["markout_theo_c"], 3)] for r in curve])
    out += ["", "## P&L by market ($): pnl = spread − adverse + carry − fees", ""]
    out += _table(["game", "market", "position (contracts)", "pnl", "mark", "spread", "adverse",
                   "carry", "fees"],
                  [[r["event_ticker"], r["market"], _fmt(r["position"] / 100),
                    _dollars(r["pnl"]), r["mark_source"] or "–", _dollars(r["spread_capture"]),
                    _dollars(r["adverse_selection"]), _dollars(r["inventory_carry"]),
                    _dollars(r["fees"])] for r in pnl])
    out += ["", "## Fees ($0.0001 price units)", ""]
    out += _table(["day", "market", "fee type", "fills", "charged", "schedule", "diff",
                   "fills ≠", "orders > 1¢", "unknown"],
                  [[_fmt(r["day"]), r["market"], r["fee_type"] or "–", _fmt(r["fills"]),
                    _fmt(r["fee_charged"]), _fmt(r["fee_schedule"]), _fmt(r["fee_diff"]),
                    _fmt(r["fills_mismatched"]), _fmt(r["orders_alert"]),
                    _fmt(r["fills_fee_unknown"])] for r in fees])
    if flags:
        out += ["", "## Flagged fills (markout in price units per contract)", ""]
        out += _table(["trade", "market", "side", "price", "quoted spread", "+1 s", "+5 s", "+30 s"],
                      [[r["trade_id"], r["market"], r["side"], _fmt(r["price"]),
                        _fmt(r["quoted_spread"]), _fmt(r["markout_mid_1s"], 1),
                        _fmt(r["markout_mid_5s"], 1), _fmt(r["markout_mid_30s"], 1)]
                       for r in flags])
    return "\n".join(out) + "\n"
