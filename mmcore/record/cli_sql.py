"""``mm sql "<query>"``: run SQL against the record's views and print the result.

The connection is in memory (:func:`mmcore.record.db.connect`), so it takes no file lock and can
neither block nor be blocked by an ingest or a ``duckdb`` shell. Output: a rich table (default;
at most :data:`TABLE_MAX_ROWS` rows, the rest counted), ``csv`` (header row, NULL as empty) or
``json`` (an array of objects; dates and decimals as strings). Exit codes: 0 ok, 2 bad SQL (one
line on stderr, never a traceback), 1 the record could not be opened.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

import duckdb

from mmcore.errors import MMError
from mmcore.record.db import connect

TABLE_MAX_ROWS = 1000
Format = Literal["table", "csv", "json"]


def sql_command(data_dir: Path, query: str, fmt: Format = "table") -> int:
    """Run ``query`` over the record of ``data_dir`` and print it as ``fmt``; the exit code."""
    try:
        con = connect(data_dir)
    except (MMError, duckdb.Error, OSError) as exc:
        print(f"error: cannot open the record in {data_dir}: {_one_line(exc)}", file=sys.stderr)
        return 1
    try:
        try:
            cur = con.execute(query)
            columns = [d[0] for d in cur.description] if cur.description else []
            rows = cur.fetchall() if columns else []
        except duckdb.Error as exc:
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return 2
    finally:
        con.close()
    if not columns:
        return 0
    if fmt == "csv":
        write_csv(sys.stdout, columns, rows)
    elif fmt == "json":
        write_json(sys.stdout, columns, rows)
    else:
        write_table(columns, rows)
    return 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def write_csv(out: TextIO, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else (json.dumps(_plain(v)) if isinstance(v, (list, dict))
                                               else _plain(v)) for v in row])


def write_json(out: TextIO, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    json.dump([{c: _plain(v) for c, v in zip(columns, row)} for row in rows], out, indent=1)
    out.write("\n")


def write_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for c in columns:
        table.add_column(c)
    for row in rows[:TABLE_MAX_ROWS]:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    console = Console(file=sys.stdout)
    if not console.is_terminal:  # piped or captured: no terminal width to fit, don't cut cells
        console = Console(file=sys.stdout, width=max(120, min(400, 4 + sum(
            3 + max([len(str(c))] + [len("NULL" if v is None else str(v)) for v in col])
            for c, col in zip(columns, zip(*rows[:TABLE_MAX_ROWS]) if rows else [()] * len(columns))))))
    console.print(table)
    if len(rows) > TABLE_MAX_ROWS:
        print(f"({len(rows) - TABLE_MAX_ROWS} more rows; use --csv or --json for all)",
              file=sys.stderr)
