"""Every .sql file under sql/ runs against a real temporary DuckDB database file (style §12),
after the files it depends on; result columns match the declared table schemas."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from test_record_kit import DAY, MA, T0, tiny_dataset, write_journal

from mmcore.record import db, store
from mmcore.record.ingest import ingest
from mmcore.record.sqlfiles import (
    params_for,
    render,
    schema_files,
    select_body,
    sql_dir,
)
from mmcore.worker import journal as jr

SQL = sql_dir()
FILES = sorted(p.relative_to(SQL).as_posix() for p in SQL.rglob("*.sql"))
PARAMS = {"day": DAY, "run_id": "test-run", "run_ns": T0, "schema_version": "test",
          "record_root": "/nowhere", "built_ns": T0,
          "n": 2_000, "markets": 4, "seed": 1, "t0": T0, "span_ns": 600 * 1_000_000_000,
          # sql/calibrate/ (mmcore/record/calibration.py): the journal window, depth buckets in
          # dollars, the mid sampling step
          "since_ns": 0, "until_ns": 2**62, "bucket_dollars": 0.005, "max_abs_delta": 0.2,
          "sample_ns": 10 * 1_000_000_000}


def one_of_each() -> list[tuple[int, dict]]:
    return [(T0, r) for r in (
        jr.book_top(MA, 5_500, 200, 5_700, 300, seq=1, sid=1, exchange_ns=T0, receipt_ns=T0 + 5),
        jr.theo("EV", {MA: 0.56}, 0.01, "consensus", T0),
        jr.quote_decision("w", 1, [{"market": MA, "side": "bid", "price": 5_600, "count": 100}]),
        jr.order_action("w", 1, "place", market=MA, side="bid", price=5_600, count=100),
        jr.ack("w", 1, request_id="c", order_id="o", status=201, latency_ns=1),
        jr.fill("t", "o", MA, "bid", 5_600, 100, 7, False, 100, exchange_ns=T0, receipt_ns=T0),
        jr.state_change("w", 1, "ACTIVE", "HALTED", ["MANUAL"], "stop"),
        jr.refusal("w", 1, {"action": "place", "market": MA}, "collar"),
        jr.reconcile("w", 1, {MA: 100}, [], "n"),
        jr.error("w", 1, ValueError("boom"), where="ws"),
    )]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sqlfiles")
    tiny_dataset(d)
    write_journal(d, "all-kinds", one_of_each())
    ingest(d, now_ns=T0, database=False)
    db.connect(d).close()  # seeds of the audit tables too
    return d


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory) -> Path:
    """bench/audit.py's synthetic fills.parquet and tops.parquet, small."""
    d = tmp_path_factory.mktemp("bench")
    con = duckdb.connect()
    for name in ("tops", "fills"):
        sql = (SQL / f"bench/generate_{name}.sql").read_text()
        store.copy_to_parquet(con, select_body(sql), d / f"{name}.parquet", params_for(sql, PARAMS))
    con.close()
    return d


def run(con: duckdb.DuckDBPyConnection, relative: str, data_dir: Path, extra: dict | None = None,
        record: Path | None = None):
    """Execute ``sql/<relative>`` with ``${RECORD}`` = ``record`` (default the data dir's record)."""
    text = render((SQL / relative).read_text(), record or store.record_root(data_dir))
    return con.execute(text, params_for(text, {**PARAMS, **(extra or {})}))


def prepare(con: duckdb.DuckDBPyConnection, relative: str, data_dir: Path, bench: Path) -> None:
    """Run what ``relative`` depends on: earlier schema files; for audit queries the whole schema
    and the audit's numbered steps before it; for ingest queries the segment's lines; for the
    benchmark's queries its loaded data."""
    folder, name = relative.split("/", 1)
    schema = [p.relative_to(SQL).as_posix() for p in schema_files()]
    if folder == "bench" and name != "markouts_view.sql":
        if not name.startswith("generate_") and name != "load.sql":
            run(con, "bench/load.sql", data_dir, record=bench)
    elif folder == "schema":
        for dep in schema:
            if dep < relative:
                run(con, dep, data_dir)
    elif folder == "backtest":  # mmcore/backtest/store.py: the tables, then empty staged rows
        run(con, "backtest/000_schema.sql", data_dir)
        for table in ("runs", "games", "fills"):
            con.execute(f"CREATE TEMP TABLE bt_{table}_in AS FROM bt_{table} LIMIT 0")
    elif folder == "ingest":
        if name != "000_segment_lines.sql":
            run(con, "ingest/000_segment_lines.sql", data_dir, segment_params(data_dir))
    else:  # audit, db and any query over the views (e.g. sql/demo/)
        for dep in schema:
            run(con, dep, data_dir)
        for dep in sorted(f for f in FILES if f.startswith("audit/0")):
            if folder == "audit" and dep < relative:
                run(con, dep, data_dir)
        if relative == "db/read_meta.sql":
            run(con, "db/write_meta.sql", data_dir)


def segment_params(data_dir: Path) -> dict[str, str]:
    seg = next(s for s in jr.published_segments(data_dir / "journal") if s.parent.name == "all-kinds")
    return {"path": str(seg), "segment": seg.name}


def test_every_file_is_covered():
    assert any(f.startswith("schema/") for f in FILES) and any(f.startswith("audit/") for f in FILES)
    assert {f"ingest/j_{k}.sql" for k in store.JOURNAL_TABLES} <= set(FILES)


@pytest.mark.parametrize("relative", FILES)
def test_sql_file_runs_against_a_real_duckdb(relative, data_dir, bench_dir, tmp_path):
    con = duckdb.connect(str(tmp_path / "t.duckdb"))
    try:
        prepare(con, relative, data_dir, bench_dir)
        extra = segment_params(data_dir) if relative == "ingest/000_segment_lines.sql" else {}
        cur = run(con, relative, data_dir, extra,
                  record=bench_dir if relative.startswith("bench/") else None)
        folder, name = relative.split("/", 1)
        stem = name.removesuffix(".sql")
        text = (SQL / relative).read_text()
        if folder == "schema":
            for view in re.findall(r"CREATE OR REPLACE VIEW (\w+)", text):
                con.execute(f"SELECT * FROM {view} LIMIT 1").fetchall()  # binds and runs
        elif folder == "ingest" and stem.startswith("j_"):
            schema = store.JOURNAL_TABLES[stem.removeprefix("j_")]
            got = [(d[0], str(d[1])) for d in cur.description]
            data = cur.fetchall()
            types = [r[1] for r in con.execute(
                "DESCRIBE " + text.strip().rstrip(";")).fetchall()]
            assert [c for c, _ in got] == list(schema)
            assert types == list(schema.values())
            assert len(data) == 1 and data[0][list(schema).index("segment")].startswith("seg-")
        elif folder == "audit" and not stem[0].isdigit():
            assert [d[0] for d in cur.description] == list(store.AUDIT_TABLES[f"audit_{stem}"])
            assert cur.fetchall()  # the tiny dataset gives every audit table rows
            types = [r[1] for r in con.execute(
                "DESCRIBE " + text.strip().rstrip(";"), params_for(text, PARAMS)).fetchall()]
            assert types == list(store.AUDIT_TABLES[f"audit_{stem}"].values())
        elif relative == "db/read_meta.sql":
            assert cur.fetchall() == [("test",)]
        elif relative in ("bench/markouts.sql", "bench/markouts_view.sql"):
            assert [r[0] for r in cur.fetchall()] == [1, 5, 30]
        elif relative.startswith("bench/record_"):
            table = {"fills": "fill", "tops": "book_top"}[stem.removeprefix("record_")]
            assert [d[0] for d in cur.description] == list(store.JOURNAL_TABLES[table])
            assert len(cur.fetchall()) == PARAMS["n"]
    finally:
        con.close()
