"""Our tables of reference figures (tests/vectors/) equal ../shared's vectors, figure for figure."""

from __future__ import annotations

import json
from pathlib import Path

from tests.refvectors import devig_vectors, quoting_vectors

DROPPED = {("TV4_GLFT_paper_params", "ode_crosscheck")}
"""Prose, not a figure: left in the reference text."""


def test_our_tables_carry_the_reference_figures(shared_dir: Path) -> None:
    ref = shared_dir / "reference"
    assert devig_vectors() == json.loads((ref / "devig-vectors.json").read_text(encoding="utf-8"))
    want = json.loads((ref / "quoting-vectors.json").read_text(encoding="utf-8"))
    for table, key in DROPPED:
        want[table].pop(key)
    assert quoting_vectors() == want
