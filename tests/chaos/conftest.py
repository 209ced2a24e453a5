"""Fixtures of the reliability suite: the scale, and the figures printed at the end of a run."""

from __future__ import annotations

import pytest

from tests.chaos import figures


@pytest.fixture(scope="session")
def chaos_scale() -> str:
    """``ci`` (default) or ``full`` (``make chaos``); see ``tests/chaos/figures.py``."""
    return figures.scale()


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Print the figures measured in this session, one line per guarantee."""
    if not figures.REPORTED:
        return
    terminalreporter.section(f"chaos figures (scale {figures.scale()})")
    for line, _ok in figures.summary_lines(figures.REPORTED):
        terminalreporter.write_line(line)
