"""DuckDB over the record: views from ``sql/schema/``, in memory or in ``<data_dir>/mm.duckdb``.

Design §2: nobody holds a DuckDB file for long and readers never block the record. The record is
Parquet (:mod:`.store`); a "database" is only the views of ``sql/schema/*.sql`` (applied in name
order, ``${RECORD}`` = the record root) over ``read_parquet('<record>/<table>/*.parquet')``.

- :func:`connect` gives an **in-memory** connection with the views (what ``mm sql``, the audit
  and the tests use): no file lock is taken, so it can never block or be blocked.
- :func:`ensure_database_file` keeps ``<data_dir>/mm.duckdb`` for people who open the record with
  the ``duckdb`` shell. It is (re)built only when missing or built from other schema files or
  another record root (``mm_meta.schema_version``, a digest of both), into a temporary file that
  is then renamed over the old one: a reader that holds the old file keeps reading it (its views
  still see new Parquet files); a new reader gets the new one. If another process holds the file
  read-write (a ``duckdb`` shell opened without ``-readonly``), it is left alone and the answer
  says so: nothing here waits for a lock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from mmcore.errors import InputError
from mmcore.record import store
from mmcore.record.sqlfiles import read_sql, render, schema_files, sql_literal_body

log = logging.getLogger(__name__)

DATABASE_NAME = "mm.duckdb"


@dataclass(frozen=True)
class DatabaseFileResult:
    """What :func:`refresh_database_file` did: ``written`` (path set), or why not."""

    path: Path
    written: bool
    message: str


def database_path(data_dir: Path) -> Path:
    return data_dir / DATABASE_NAME


def schema_version(data_dir: Path) -> str:
    """Digest (16 hex) of the schema files' names and text and of the record root."""
    h = hashlib.sha256(sql_literal_body(store.record_root(data_dir)).encode())
    for path in schema_files():
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def apply_schema(con: duckdb.DuckDBPyConnection, data_dir: Path, *, now_ns: int | None = None) -> None:
    """Create every view of ``sql/schema/`` (in name order) and ``mm_meta`` on ``con``. Writes the
    record's typed seed files first (:func:`store.ensure_seeds`) so every view binds."""
    root = store.record_root(data_dir)
    store.ensure_seeds(root)
    store.ensure_seeds(root, store.AUDIT_TABLES)
    for path in schema_files():
        try:
            con.execute(render(path.read_text(encoding="utf-8"), root))
        except duckdb.Error as exc:
            raise InputError(f"{path.name}: {exc}") from exc
    con.execute(read_sql("db/write_meta.sql"), {
        "schema_version": schema_version(data_dir), "record_root": str(root.resolve()),
        "built_ns": time.time_ns() if now_ns is None else now_ns})


def connect(data_dir: Path, *, memory: bool = True) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the record's views. ``memory=True`` (default): in memory, no file
    lock. ``memory=False``: ``<data_dir>/mm.duckdb`` opened read-only (refreshed first when it
    can be; fails with DuckDB's error if a writer holds it)."""
    if not memory:
        refresh_database_file(data_dir)
        return duckdb.connect(str(database_path(data_dir)), read_only=True)
    con = duckdb.connect(":memory:")
    try:
        apply_schema(con, data_dir)
    except BaseException:
        con.close()
        raise
    return con


def ensure_database_file(data_dir: Path) -> Path | None:
    """Write ``<data_dir>/mm.duckdb`` when missing or built from other schema files; the path if
    it was written, None if it was current or had to be left alone (logged)."""
    result = refresh_database_file(data_dir)
    return result.path if result.written else None


def refresh_database_file(data_dir: Path) -> DatabaseFileResult:
    """:func:`ensure_database_file` with its reason (see the module docstring)."""
    path = database_path(data_dir)
    want = schema_version(data_dir)
    if path.exists():
        try:
            have = _read_version(path)
        except duckdb.Error as exc:
            msg = f"{path} left as it is: another process holds it ({_first_line(exc)})"
            log.warning("%s", msg)
            return DatabaseFileResult(path, False, msg)
        if have == want:
            return DatabaseFileResult(path, False, f"{path} is current (schema {want})")
    _build(data_dir, path)
    msg = f"{path} written (schema {want})"
    log.info("%s", msg)
    return DatabaseFileResult(path, True, msg)


def _read_version(path: Path) -> str | None:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(read_sql("db/read_meta.sql")).fetchone()
    except duckdb.CatalogException:
        return None  # not one of ours, or from before mm_meta
    finally:
        con.close()
    return None if row is None else str(row[0])


def _build(data_dir: Path, path: Path) -> None:
    """Build the views into a temporary file beside ``path``, then rename it over ``path``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{DATABASE_NAME}.", suffix=".tmp", dir=data_dir)
    os.close(fd)
    os.unlink(tmp)  # DuckDB creates the file itself
    try:
        con = duckdb.connect(tmp)
        try:
            apply_schema(con, data_dir)
        finally:  # closing the only connection checkpoints: no .wal is left
            con.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dfd = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        for leftover in (tmp, f"{tmp}.wal"):
            if os.path.exists(leftover):
                os.unlink(leftover)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
