"""``calibrate`` (daily, 05:00 America/New_York, after the nightly audit): the freshest record
(ingest first), then A and k from our quotes' fills against their depth from theo and σ from the
book mid (quoting-math §1.5), published to ``<data_dir>/calibration/hjb.json`` for the workers
started afterwards — a refused fit keeps the previous values (:mod:`mmcore.record.calibration`).
A markdown artifact shows the fits, the estimators side by side and what was refused, and why."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.calibrate import calibrate_task
from tasks.record import ingest_task
from tasks.runtime import call, logger, markdown_artifact


@flow(name="calibrate")
def calibrate(days: float = 7.0, min_fills: int = 30, max_k_rel_se: float = 0.5,
              sample_s: float = 10.0) -> dict[str, Any]:
    """``days`` of record to fit on; ``min_fills`` and ``max_k_rel_se`` (SE(k)/k) decide when the
    intensity fit is good enough to publish; ``sample_s`` is σ's sampling step."""
    call(ingest_task)
    run = call(calibrate_task, days, min_fills, max_k_rel_se, sample_s)
    logger().info(run.summary())
    markdown_artifact("calibration", run.markdown(), "calibrated A, k and σ")
    return {"written": run.written, "path": str(run.path),
            "intensity": run.doc.get("intensity"), "volatility": run.doc.get("volatility"),
            "intensity_rejected": run.intensity.rejected, "volatility_rejected": run.sigma_rejected}

