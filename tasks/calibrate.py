"""Task of the calibration: fit A, k and σ on the record and publish them for the next workers."""

from __future__ import annotations

import time
from typing import Any

from prefect import task

from tasks.runtime import settings


@task(name="fit-calibration")
def calibrate_task(days: float = 7.0, min_fills: int = 30, max_k_rel_se: float = 0.5,
                   sample_s: float = 10.0) -> Any:
    """:func:`mmcore.record.calibration.run_calibration` over the last ``days`` of the record."""
    from mmcore.quoting.calibrate import IntensityLimits
    from mmcore.record.calibration import run_calibration

    limits = IntensityLimits(min_fills=min_fills, max_k_rel_se=max_k_rel_se)
    return run_calibration(settings().data_dir, now_ns=time.time_ns(), days=days,
                           intensity_limits=limits, sample_s=sample_s)
