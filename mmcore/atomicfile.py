"""Small files published whole: how one process hands a JSON document to others without locks
(theo snapshots, the calendar, refresh requests, run leases).

A writer publishes with :func:`write_json_atomic` (temp file in the same directory, fsync,
rename, fsync the directory): a reader sees the old file or the new one, never half of one, and a
crash leaves at most a dot-prefixed ``.tmp`` behind. A reader uses :func:`read_json`: None when
nothing was published yet, :class:`InputError` naming the file when it cannot be read or parsed.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mmcore.errors import InputError


def fsync_dir(path: Path) -> None:
    """Make a rename or a new name in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(target: Path, data: Any) -> Path:
    """Publish ``data`` as JSON at ``target`` (see the module docstring)."""
    directory = target.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(directory)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def read_json(path: Path, what: str) -> Any | None:
    """The JSON document at ``path``; None if there is none; InputError ("unreadable <what>")."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable {what} {path}: {exc}") from exc
