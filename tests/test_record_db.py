"""The views' database: in-memory connections, and the mm.duckdb file for the duckdb shell —
written when missing or stale, left alone (never waited on) while another process holds it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest
from test_record_kit import T0, tiny_dataset

from mmcore.errors import InputError
from mmcore.record import db
from mmcore.record.ingest import ingest


def test_connect_in_memory_has_every_view_and_takes_no_file(tmp_path):
    con = db.connect(tmp_path)
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert {"fills", "orders", "decisions", "book_tops", "theos", "odds_snapshots", "odds_pulls",
            "book_prices", "consensus_theos", "events", "markets", "kill_events", "settlements",
            "refusals", "v_markouts", "v_fees", "v_viability", "v_pnl", "v_kill_events"} <= views
    assert con.execute("SELECT count(*) FROM v_markouts").fetchone() == (0,)
    assert not db.database_path(tmp_path).exists()
    con.close()


def test_database_file_is_written_once_then_current_then_rebuilt_for_another_root(tmp_path):
    first = db.refresh_database_file(tmp_path)
    assert first.written and first.path.exists()
    assert db.ensure_database_file(tmp_path) is None  # current
    # the same file copied under another data dir has the wrong record root → rebuilt there
    other = tmp_path / "moved"
    other.mkdir()
    (other / db.DATABASE_NAME).write_bytes(first.path.read_bytes())
    assert db.ensure_database_file(other) == other / db.DATABASE_NAME
    con = duckdb.connect(str(other / db.DATABASE_NAME), read_only=True)
    root = con.execute("SELECT record_root FROM mm_meta").fetchone()[0]
    con.close()
    assert root == str((other / "record").resolve())


def test_a_file_held_read_write_by_another_process_is_left_alone(tmp_path):
    db.refresh_database_file(tmp_path)
    path = db.database_path(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({str(path)!r})   # read-write, like a plain `duckdb` shell
            print("held", flush=True)
            sys.stdin.readline()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = db.refresh_database_file(tmp_path)
        assert not result.written and "another process holds it" in result.message
        tiny_dataset(tmp_path)
        report = ingest(tmp_path, now_ns=T0)  # ingest never needs the file
        assert report.total_rows > 0 and "another process holds it" in report.database
    finally:
        holder.communicate("\n", timeout=30)


def test_memory_false_opens_the_file_read_only(tmp_path):
    tiny_dataset(tmp_path)
    ingest(tmp_path, now_ns=T0, database=False)
    con = db.connect(tmp_path, memory=False)
    assert con.execute("SELECT count(*) FROM fills").fetchone() == (2,)
    with pytest.raises(duckdb.Error):
        con.execute("CREATE TABLE x (a INT)")
    con.close()


def test_record_paths_with_glob_characters_are_refused(tmp_path):
    with pytest.raises(InputError, match="glob"):
        db.connect(tmp_path / "a[1]")
