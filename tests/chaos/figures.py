"""Figures of the reliability suite: sizes by scale, and one reported line per guarantee.

Rules of this file:
- ``MM_CHAOS_SCALE`` is ``ci`` (the default, what plain ``pytest`` / ``make test`` use: small sizes,
  ≤ ~2 min per engineer's guarantees) or ``full`` (what ``make chaos`` sets: thousands of games,
  ≥ 10,000 fuzzed bodies). ``size(name, ci=, full=)`` picks one; ``MM_CHAOS_SIZE_<NAME>`` overrides
  it (e.g. ``MM_CHAOS_SIZE_G1_GAMES=500``).
- A guarantee's test calls ``report(...)`` once per figure it measured, *before* asserting the
  bound, so a failing run still prints its figure. Each call appends one JSON line to the file named
  by ``MM_CHAOS_FIGURES`` (default: ``<tmp>/mm-chaos-figures.jsonl``) and keeps it in ``REPORTED``
  for the pytest terminal summary. The runner (``run.py``) folds the lines into one line per
  guarantee: ``G<N> <name>: <figure> (<bound>) PASS|FAIL``.
- Figures are measured against the exchange's own records and times, not the worker's view.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCALES = ("ci", "full")

# The seven guarantees of issue 12, by number (the runner prints one line for each).
GUARANTEES: dict[int, str] = {
    1: "limit under fill storms",
    2: "kill switch under lying cancels",
    3: "stale data",
    4: "nothing lost",
    5: "bad input",
    6: "auth and secrets",
    7: "rate limits",
}


def scale() -> str:
    """``ci`` or ``full`` from ``MM_CHAOS_SCALE`` (default ``ci``); anything else is an error."""
    value = os.environ.get("MM_CHAOS_SCALE", "ci").strip().lower() or "ci"
    if value not in SCALES:
        raise ValueError(f"MM_CHAOS_SCALE must be one of {', '.join(SCALES)} (got {value!r})")
    return value


def full() -> bool:
    return scale() == "full"


def size(name: str, *, ci: int, full: int) -> int:  # noqa: A002 - reads as size(ci=, full=)
    """The size named ``name`` at the current scale; ``MM_CHAOS_SIZE_<NAME>`` (upper case)
    overrides it with a positive int."""
    env = f"MM_CHAOS_SIZE_{name.upper()}"
    raw = os.environ.get(env)
    if raw is not None:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{env} must be a positive integer (got {raw!r})") from None
        if value <= 0:
            raise ValueError(f"{env} must be a positive integer (got {raw!r})")
        return value
    return full if scale() == "full" else ci


def figures_path() -> Path:
    raw = os.environ.get("MM_CHAOS_FIGURES")
    return Path(raw) if raw else Path(tempfile.gettempdir()) / "mm-chaos-figures.jsonl"


@dataclass(frozen=True)
class Figure:
    """One measured figure: ``figure`` is the text (with its unit), ``bound`` the promise it is
    held to (``"≤ 1.00"``), ``ok`` whether it held; ``detail`` is free JSON for the record."""

    guarantee: int
    name: str
    figure: str
    bound: str
    ok: bool
    scale: str
    at_s: float
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"G{self.guarantee} {self.name}: {self.figure} ({self.bound}) {'PASS' if self.ok else 'FAIL'}"


REPORTED: list[Figure] = []


def report(guarantee: int, name: str, figure: str, bound: str, ok: bool, **detail: Any) -> Figure:
    """Record one figure of guarantee ``guarantee`` (1-7); call before asserting the bound.

    ``name`` says what was measured (e.g. ``"REST writes"``) when a guarantee has several figures;
    the runner prints them on the guarantee's one line, joined by ``;``."""
    if guarantee not in GUARANTEES:
        raise ValueError(f"guarantee must be one of {sorted(GUARANTEES)} (got {guarantee})")
    fig = Figure(guarantee, name, figure, bound, bool(ok), scale(), time.time(), detail)
    REPORTED.append(fig)
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(asdict(fig), default=str, ensure_ascii=False) + "\n")
    return fig


def read(path: Path) -> list[Figure]:
    """The figures appended to ``path`` (missing file: none)."""
    if not path.exists():
        return []
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            out.append(Figure(**json.loads(raw)))
    return out


def summary_lines(figs: list[Figure], expected: list[int] | None = None) -> list[tuple[str, bool]]:
    """One ``(line, ok)`` per guarantee: its figures joined by ``;`` and PASS only when every figure
    held. A guarantee in ``expected`` with no figure prints ``no figure reported FAIL``."""
    by_g: dict[int, list[Figure]] = {}
    for fig in figs:
        by_g.setdefault(fig.guarantee, []).append(fig)
    numbers = sorted(set(by_g) | set(expected or []))
    out = []
    for g in numbers:
        title = f"G{g} {GUARANTEES[g]}"
        items = by_g.get(g, [])
        if not items:
            out.append((f"{title}: no figure reported FAIL", False))
            continue
        ok = all(f.ok for f in items)
        parts = [
            f"{f.name + ' ' if f.name else ''}{f.figure} ({f.bound}){'' if f.ok else ' FAIL'}" for f in items
        ]
        out.append((f"{title}: {'; '.join(parts)} {'PASS' if ok else 'FAIL'}", ok))
    return out
