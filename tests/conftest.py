"""Shared test fixtures.

Reference material lives in ``../shared`` beside the repository (CI always has it). Tests that need
it use the ``shared_dir`` fixture, which skips with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MM_SHARED_DIR", REPO.parent / "shared"))

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "reference").is_dir():
        pytest.skip(f"reference material not found at {SHARED} (set MM_SHARED_DIR or place ../shared)")
    return SHARED


@pytest.fixture(scope="session")
def odds_samples(shared_dir: Path) -> list[Path]:
    files = sorted((shared_dir / "reference" / "odds-samples").glob("*.json"))
    if not files:
        pytest.skip("no odds samples in shared/reference/odds-samples")
    return files


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the session, flow heartbeats off (design §5: a sync flow call
    otherwise waits ~1 s on its heartbeat thread)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield
