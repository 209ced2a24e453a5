"""The pure core must not read the clock, draw randomness or do I/O.

Time and randomness are passed in (``now_ns``, a seeded ``random.Random`` owned by a driver), so a
backtest, the local exchange and live trading run the same code. This test reads the source of
every pure module (by AST, not by importing) and fails on any import or call that would break that.
New modules in the pure packages are covered automatically.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "mmcore"
PURE_PACKAGES = ("odds", "quoting", "risk")
PURE_FILES = ("units.py", "errors.py", "models.py", "fees.py", "ticks.py", "orders.py", "book.py",
              "game.py", "worker/engine.py", "venues/kalshi/ws_events.py", "venues/kalshi/ws_session.py")

BANNED_MODULES = {
    "random", "secrets", "time", "uuid", "socket", "asyncio", "threading", "subprocess",
    "httpx", "websockets", "requests", "duckdb", "prefect", "os", "sys", "io", "pathlib",
}
BANNED_ATTR_CALLS = {"now", "utcnow", "today", "time_ns", "monotonic", "perf_counter", "urandom"}
BANNED_NAMES = {"open", "input", "print"}


def pure_modules() -> list[Path]:
    files = [ROOT / f for f in PURE_FILES if (ROOT / f).exists()]
    for pkg in PURE_PACKAGES:
        files.extend(sorted((ROOT / pkg).rglob("*.py")))
    return files


def violations(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in BANNED_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            if node.module and node.module.split(".")[0] in BANNED_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            fn = node.func
            if isinstance(fn, ast.Attribute) and fn.attr in BANNED_ATTR_CALLS:
                found.append(f"line {node.lineno}: call .{fn.attr}()")
            if isinstance(fn, ast.Name) and fn.id in BANNED_NAMES:
                found.append(f"line {node.lineno}: call {fn.id}()")
    return found


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_has_no_clock_randomness_or_io(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "snippet",
    [
        "import time\nx = time.time()",
        "from random import random",
        "from datetime import datetime\nx = datetime.now()",
        "import datetime\nx = datetime.date.today()",
        "with open('f') as f: pass",
        "import httpx",
    ],
)
def test_checker_catches(snippet: str) -> None:
    assert violations(snippet), snippet


def test_checker_allows_pure_code() -> None:
    assert violations("import math\nfrom datetime import date\nx = date(2026, 1, 1)") == []
