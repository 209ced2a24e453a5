"""The analytics record on disk: immutable Parquet files, one directory per table.

Design §2: nobody holds the DuckDB file for long, and readers never block the record. Every
writer here (the ingest of worker journals, the odds pull, the calendar refresh, the audit)
writes whole Parquet files under ``<data_dir>/record/<table>/`` — to a temporary name in the same
directory, fsync'd, then renamed — so a reader sees a file whole or not at all, a crash leaves at
most a ``.tmp`` that is ignored, and re-running a writer with the same ``name`` is a no-op. The
DuckDB views (``sql/``) read ``<table>/*.parquet`` and deduplicate on natural ids.

Columns are declared per table (:data:`TABLES`), in DuckDB types, so every file of a table has
the same schema whatever rows it carries, and an empty table still has a typed seed file
(``_empty.parquet``) for the views to bind against. Units follow the journal: prices, fees and
money are integers in $0.0001 ("price units"); counts and positions are integers in 0.01 contract
("centi-contracts"); probabilities are floats in [0, 1]; times are integer ns since the epoch.
Nested values are stored as JSON text.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

from mmcore.atomicfile import fsync_dir
from mmcore.errors import InputError

RECORD_DIRNAME = "record"
EMPTY_NAME = "_empty"
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:=+-]*$")

Schema = Mapping[str, str]

# --- tables written outside the journal ---------------------------------------------------------

ODDS_PULLS: Schema = {
    "pull_id": "VARCHAR", "scope": "VARCHAR", "sport_key": "VARCHAR", "event_id": "VARCHAR",
    "fetched_ns": "BIGINT", "url": "VARCHAR", "events": "INTEGER", "priced": "INTEGER",
    "snapshots": "INTEGER", "credits_remaining": "BIGINT", "credits_used": "BIGINT",
    "credits_last": "BIGINT", "status": "VARCHAR", "detail": "VARCHAR", "raw_path": "VARCHAR",
}
"""One row per Odds API request (or per request skipped, ``status`` saying why)."""

BOOK_PRICES: Schema = {
    "pull_id": "VARCHAR", "event_id": "VARCHAR", "sport_key": "VARCHAR", "commence_ns": "BIGINT",
    "book": "VARCHAR", "outcome": "VARCHAR", "outcome_index": "INTEGER", "decimal_odds": "DOUBLE",
    "fair_prob": "DOUBLE", "booksum": "DOUBLE", "age_s": "DOUBLE", "weight": "DOUBLE",
    "last_update_ns": "BIGINT", "used": "BOOLEAN", "dropped_reason": "VARCHAR",
}
"""Each book's price and de-vigged fair probability per outcome (``used`` in the consensus)."""

THEOS: Schema = {
    "pull_id": "VARCHAR", "event_id": "VARCHAR", "sport_key": "VARCHAR", "commence_ns": "BIGINT",
    "outcome": "VARCHAR", "outcome_index": "INTEGER", "theo": "DOUBLE", "uncertainty": "DOUBLE",
    "confidence": "DOUBLE", "mode": "VARCHAR", "anchor": "VARCHAR", "books": "INTEGER",
    "method": "VARCHAR", "as_of_ns": "BIGINT", "reason": "VARCHAR",
}
"""The consensus theo per event and outcome (NULL theo with a ``reason`` when unpriced)."""

THEO_SNAPSHOTS: Schema = {
    "pull_id": "VARCHAR", "event_ticker": "VARCHAR", "market": "VARCHAR", "theo": "DOUBLE",
    "uncertainty": "DOUBLE", "confidence": "DOUBLE", "as_of_ns": "BIGINT", "source": "VARCHAR",
}
"""What the pull published to the workers, per Kalshi market."""

EVENTS: Schema = {
    "refresh_id": "VARCHAR", "observed_ns": "BIGINT", "event_ticker": "VARCHAR",
    "series_ticker": "VARCHAR", "sport_key": "VARCHAR", "title": "VARCHAR", "start_ns": "BIGINT",
    "start_source": "VARCHAR", "fee_type": "VARCHAR", "fee_multiplier": "DOUBLE",
    "markets": "INTEGER", "odds_event_id": "VARCHAR", "match_status": "VARCHAR",
    "match_reason": "VARCHAR",
}
"""Kalshi sports events with start times and their Odds API match (or why none)."""

MARKETS: Schema = {
    "refresh_id": "VARCHAR", "observed_ns": "BIGINT", "market": "VARCHAR",
    "event_ticker": "VARCHAR", "title": "VARCHAR", "outcome": "VARCHAR", "status": "VARCHAR",
    "tick_grid": "VARCHAR", "min_tick": "BIGINT", "close_ns": "BIGINT", "result": "VARCHAR",
}
"""Kalshi markets of those events; ``tick_grid`` JSON ``[[start, end, tick], …]`` price units."""

SETTLEMENTS: Schema = {
    "market": "VARCHAR", "event_ticker": "VARCHAR", "result": "VARCHAR", "settled_ns": "BIGINT",
    "yes_count": "BIGINT", "no_count": "BIGINT", "revenue": "BIGINT", "fee": "BIGINT",
    "observed_ns": "BIGINT",
}
"""Our settlements as the exchange reports them (counts centi-contracts, money price units)."""

# --- tables the ingest fills from worker journals (one per journal kind) -------------------------

_J = {"id": "VARCHAR", "worker_id": "VARCHAR", "ts_ns": "BIGINT", "segment": "VARCHAR"}
JOURNAL_TABLES: dict[str, Schema] = {
    "book_top": {**_J, "market": "VARCHAR", "bid": "BIGINT", "bid_size": "BIGINT", "ask": "BIGINT",
                 "ask_size": "BIGINT", "sid": "BIGINT", "seq": "BIGINT", "exchange_ns": "BIGINT",
                 "receipt_ns": "BIGINT"},
    "theo": {**_J, "event_ticker": "VARCHAR", "probs": "JSON", "uncertainty": "JSON",
             "source": "VARCHAR", "as_of_ns": "BIGINT"},
    "quote_decision": {**_J, "decision_seq": "BIGINT", "quotes": "JSON", "notes": "JSON"},
    "order_action": {**_J, "action_seq": "BIGINT", "action": "VARCHAR", "market": "VARCHAR",
                     "side": "VARCHAR", "price": "BIGINT", "count": "BIGINT",
                     "client_order_id": "VARCHAR", "order_id": "VARCHAR", "reason": "VARCHAR"},
    "ack": {**_J, "action_seq": "BIGINT", "request_id": "VARCHAR", "order_id": "VARCHAR",
            "status": "VARCHAR", "latency_ns": "BIGINT", "body": "VARCHAR"},
    "fill": {**_J, "trade_id": "VARCHAR", "order_id": "VARCHAR", "market": "VARCHAR",
             "side": "VARCHAR", "price": "BIGINT", "count": "BIGINT", "fee": "BIGINT",
             "is_taker": "BOOLEAN", "post_position": "BIGINT", "exchange_ns": "BIGINT",
             "receipt_ns": "BIGINT", "backfill": "BOOLEAN"},
    "state_change": {**_J, "n": "BIGINT", "from_state": "VARCHAR", "to_state": "VARCHAR",
                     "triggers": "JSON", "reason": "VARCHAR"},
    "refusal": {**_J, "n": "BIGINT", "action": "JSON", "reason": "VARCHAR"},
    "reconcile": {**_J, "n": "BIGINT", "position_drift": "JSON", "resting_drift": "JSON",
                  "notes": "VARCHAR"},
    "error": {**_J, "n": "BIGINT", "where": "VARCHAR", "error_type": "VARCHAR",
              "message": "VARCHAR"},
}

TABLES: dict[str, Schema] = {
    "odds_pulls": ODDS_PULLS, "book_prices": BOOK_PRICES, "theos": THEOS,
    "theo_snapshots": THEO_SNAPSHOTS, "events": EVENTS, "markets": MARKETS,
    "settlements": SETTLEMENTS,
    **{f"j_{kind}": schema for kind, schema in JOURNAL_TABLES.items()},
}
"""Every table of the record: directory name → columns (DuckDB types)."""

# --- tables the nightly audit writes (mmcore.record.audit; one file per run, sql/audit/*.sql) ----

_A = {"run_id": "VARCHAR", "run_ns": "BIGINT", "audit_day": "DATE"}
AUDIT_TABLES: dict[str, Schema] = {
    "audit_markouts": {**_A, "event_ticker": "VARCHAR", "market": "VARCHAR", "side": "VARCHAR",
                       "hour": "TIMESTAMP", "fills": "BIGINT", "contracts": "DOUBLE",
                       "edge_mid_c": "DOUBLE", "markout_mid_1s_c": "DOUBLE",
                       "markout_mid_5s_c": "DOUBLE", "markout_mid_30s_c": "DOUBLE",
                       "edge_theo_c": "DOUBLE", "markout_theo_1s_c": "DOUBLE",
                       "markout_theo_5s_c": "DOUBLE", "markout_theo_30s_c": "DOUBLE",
                       "flagged_fills": "BIGINT"},
    "audit_markout_curve": {**_A, "side": "VARCHAR", "h_s": "INTEGER", "fills": "BIGINT",
                            "contracts": "DOUBLE", "markout_mid_c": "DOUBLE",
                            "markout_theo_c": "DOUBLE"},
    "audit_flags": {**_A, "trade_id": "VARCHAR", "worker_id": "VARCHAR", "event_ticker": "VARCHAR",
                    "market": "VARCHAR", "side": "VARCHAR", "price": "BIGINT", "count": "BIGINT",
                    "fill_ns": "BIGINT", "quoted_spread": "BIGINT",
                    "quoted_spread_source": "VARCHAR", "markout_mid_1s": "DOUBLE",
                    "markout_mid_5s": "DOUBLE", "markout_mid_30s": "DOUBLE", "flag_1s": "BOOLEAN",
                    "flag_5s": "BOOLEAN", "flag_30s": "BOOLEAN"},
    "audit_fees": {**_A, "day": "DATE", "event_ticker": "VARCHAR", "market": "VARCHAR",
                   "fee_type": "VARCHAR", "fills": "BIGINT", "orders": "BIGINT",
                   "fee_charged": "BIGINT", "fee_schedule": "BIGINT", "fee_diff": "BIGINT",
                   "fills_mismatched": "BIGINT", "orders_alert": "BIGINT",
                   "fills_fee_unknown": "BIGINT"},
    "audit_viability": {**_A, "day": "DATE", "event_ticker": "VARCHAR", "market": "VARCHAR",
                        "fills": "BIGINT", "contracts": "DOUBLE", "fills_unmarked": "BIGINT",
                        "flagged_fills": "BIGINT", "spread_capture": "DOUBLE",
                        "adverse_selection": "DOUBLE", "fees": "BIGINT", "net": "DOUBLE",
                        "net_theo": "DOUBLE", "spread_capture_c_per_contract": "DOUBLE",
                        "adverse_selection_c_per_contract": "DOUBLE",
                        "fees_c_per_contract": "DOUBLE", "net_c_per_contract": "DOUBLE",
                        "viable": "BOOLEAN"},
    "audit_pnl": {**_A, "event_ticker": "VARCHAR", "market": "VARCHAR", "fills": "BIGINT",
                  "position": "BIGINT", "trading_cash": "DOUBLE", "fees": "BIGINT",
                  "realised_cash": "DOUBLE", "mark": "DOUBLE", "mark_source": "VARCHAR",
                  "settle_value": "DOUBLE", "theo_value": "DOUBLE", "mid_value": "DOUBLE",
                  "position_value": "DOUBLE", "pnl": "DOUBLE", "pnl_theo": "DOUBLE",
                  "pnl_settled": "DOUBLE", "spread_capture": "DOUBLE",
                  "adverse_selection": "DOUBLE", "inventory_carry": "DOUBLE",
                  "residual": "DOUBLE", "first_fill_ns": "BIGINT", "last_fill_ns": "BIGINT"},
    "audit_pnl_curve": {**_A, "minute": "TIMESTAMP", "fills": "BIGINT", "pnl_cum": "DOUBLE",
                        "net_markout_cum": "DOUBLE"},
}
"""The audit's result tables (``audit_<name>`` ← ``sql/audit/<name>.sql``): money in price units,
``*_c`` in cents per contract, counts in centi-contracts (``contracts`` in contracts)."""


def record_root(data_dir: Path) -> Path:
    return data_dir / RECORD_DIRNAME


def table_dir(root: Path, table: str) -> Path:
    if table not in TABLES and not table.startswith("audit_"):
        raise InputError(f"unknown record table {table!r}")
    return root / table


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name) or name.startswith(EMPTY_NAME) and name != EMPTY_NAME:
        raise InputError(f"bad record file name {name!r}: letters, digits, _ . : = + -")


def _columns_sql(schema: Schema) -> str:
    return "{" + ", ".join(f"'{c}': '{t}'" for c, t in schema.items()) + "}"


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _prepare(row: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    return {col: row.get(col) for col in schema}  # nested values stay JSON (read as JSON type)


def publish_parquet(target: Path, write: Any) -> bool:
    """Write ``target`` atomically with ``write(tmp_path)``; False (nothing done) if it exists."""
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    os.unlink(tmp)  # DuckDB's COPY creates the file itself
    try:
        write(Path(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def copy_to_parquet(con: duckdb.DuckDBPyConnection, select_sql: str, path: Path,
                    params: list[Any] | None = None) -> None:
    """``COPY (select_sql) TO path`` as Parquet (zstd)."""
    quoted = str(path).replace("'", "''")
    con.execute(f"COPY ({select_sql}) TO '{quoted}' (FORMAT parquet, COMPRESSION zstd)", params or [])


def write_rows(root: Path, table: str, name: str, rows: Iterable[Mapping[str, Any]],
               schema: Schema | None = None) -> Path | None:
    """Publish ``rows`` as ``<root>/<table>/<name>.parquet`` with the table's columns (missing
    keys are NULL, extra keys ignored). Returns the path, or None when that file already exists
    (idempotent re-run). ``schema`` is required for ``audit_*`` tables only."""
    _check_name(name)
    schema = schema or TABLES.get(table)
    if schema is None:
        raise InputError(f"record table {table!r} needs a schema")
    target = table_dir(root, table) / f"{name}.parquet"
    prepared = [_prepare(r, schema) for r in rows]

    def write(tmp: Path) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", dir=target.parent,
                                         prefix=".rows.", delete=False, encoding="utf-8") as fh:
            for r in prepared:
                fh.write(json.dumps(r, default=_json_default, allow_nan=True) + "\n")
            jsonl = fh.name
        try:
            con = duckdb.connect(":memory:")
            try:
                src = jsonl.replace("'", "''")
                cols = ", ".join(f'"{c}"' for c in schema)
                select = (f"SELECT {cols} FROM read_json('{src}', format='newline_delimited', "
                          f"columns={_columns_sql(schema)})") if prepared else \
                    _empty_select(schema)
                copy_to_parquet(con, select, tmp)
            finally:
                con.close()
        finally:
            os.unlink(jsonl)

    return target if publish_parquet(target, write) else None


def _empty_select(schema: Schema) -> str:
    cols = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in schema.items())
    return f"SELECT {cols} LIMIT 0"


def ensure_seeds(root: Path, tables: Mapping[str, Schema] = TABLES) -> None:
    """A typed, empty ``_empty.parquet`` in every table directory, so views bind before the first
    real file arrives (``read_parquet`` of an empty glob is an error). Only missing seeds are
    written, all through one DuckDB connection."""
    missing = {t: s for t, s in tables.items()
               if not (table_dir(root, t) / f"{EMPTY_NAME}.parquet").exists()}
    if not missing:
        return
    con = duckdb.connect(":memory:")
    try:
        for table, schema in missing.items():
            select = _empty_select(schema)
            publish_parquet(table_dir(root, table) / f"{EMPTY_NAME}.parquet",
                            lambda tmp, sel=select: copy_to_parquet(con, sel, tmp))
    finally:
        con.close()
