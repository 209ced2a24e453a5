"""The ``sql/`` directory: where the analytics SQL lives, and its one template variable.

Every query of the record is a ``.sql`` file under ``<repo>/sql/`` (design §1):

- ``sql/ingest/``  the journal → Parquet statements (:mod:`.ingest`), named parameters only;
- ``sql/schema/``  numbered files of views, applied in name order (:mod:`.db`);
- ``sql/audit/``   the nightly audit's queries (:mod:`.audit`), named parameters only.

Python substitutes exactly one thing into SQL text: ``${RECORD}``, the record root as the body
of a single-quoted SQL string literal (quotes doubled). Everything else is a DuckDB parameter.
The directory is found next to the package (``Path(__file__).parents[2] / "sql"``), which is
the repository root for a source checkout or an editable install.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmcore.errors import ConfigError, InputError

RECORD_VAR = "${RECORD}"
_GLOB_CHARS = frozenset("*?[]{}")
_PARAM_RE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def sql_dir() -> Path:
    """``<repo>/sql``; ConfigError naming the path when it is absent (a non-editable install)."""
    path = Path(__file__).resolve().parents[2] / "sql"
    if not (path / "schema").is_dir():
        raise ConfigError(f"SQL files not found at {path}: the record's views and queries live "
                          "in the repository's sql/ directory (install the project editable: "
                          "pip install -e .)")
    return path


def read_sql(relative: str) -> str:
    """The text of ``sql/<relative>``; InputError if there is no such file."""
    path = sql_dir() / relative
    if not path.is_file():
        raise InputError(f"no SQL file {path}")
    return path.read_text(encoding="utf-8")


def schema_files() -> list[Path]:
    """``sql/schema/*.sql`` in name (= application) order."""
    return sorted((sql_dir() / "schema").glob("*.sql"))


def sql_literal_body(record_root: Path) -> str:
    """The record root as it goes between single quotes in SQL (quotes doubled). Paths with glob
    characters are refused: the views glob ``${RECORD}/<table>/*.parquet``."""
    text = str(record_root.resolve())
    if _GLOB_CHARS & set(text):
        raise InputError(f"record path {text!r} contains a glob character ({''.join(sorted(_GLOB_CHARS))})")
    return text.replace("'", "''")


def render(text: str, record_root: Path) -> str:
    """``text`` with every ``${RECORD}`` replaced by the quoted record root."""
    return text.replace(RECORD_VAR, sql_literal_body(record_root))


def select_body(text: str) -> str:
    """A single SELECT statement's text without its trailing ``;`` (for ``COPY (…) TO``)."""
    return text.strip().rstrip(";").strip()


def params_for(text: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The named parameters (``$name``) that ``text`` uses outside ``--`` comments, taken from
    ``params`` (DuckDB refuses extra ones); InputError naming any that ``params`` lacks."""
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    names = {n for n in _PARAM_RE.findall(code) if n != "RECORD"}
    missing = names - set(params)
    if missing:
        raise InputError(f"SQL needs parameters {sorted(missing)}")
    return {k: v for k, v in params.items() if k in names}
