"""Calibration from the record: the depth buckets and mid series out of DuckDB, the fits, and the
published parameter file the next workers read.

Calling order (the ``calibrate`` flow, ``mm calibrate``): journals → ingest (Parquet) →
:func:`run_calibration` → :func:`read_inputs` (``sql/calibrate/depth_buckets.sql`` and
``mid_bins.sql`` on an in-memory DuckDB with the record's views, :func:`mmcore.record.db.connect`,
so no file lock) → :func:`mmcore.quoting.calibrate.fit_intensity` and
:func:`~mmcore.quoting.calibrate.sigma_estimates` → :func:`mmcore.quoting.calibrated.document`
(merged with the previous file) → written whole to :func:`calibration_path` with
:func:`mmcore.atomicfile.write_json_atomic`. A worker reads it with :func:`calibrated_overrides`.

The same journal comes from live and local-exchange workers (:class:`~mmcore.worker.driver.
WorkerDriver`) and from backtests (``run_backtest(journal_dir=…)``), so all three calibrate
alike. Units: as in :mod:`mmcore.quoting.calibrate`; times ns.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcore.atomicfile import read_json, write_json_atomic
from mmcore.errors import InputError, MMError
from mmcore.quoting import calibrate as cal
from mmcore.quoting.calibrated import document, hjb_overrides, intensity_entry, volatility_entry
from mmcore.units import PRICE_ONE

log = logging.getLogger(__name__)

NS = 1_000_000_000
DAY_NS = 86_400 * NS
DEFAULT_BUCKET_DOLLARS = 0.005
"""Half a cent: theo is continuous, so depths from a 1¢ grid spread over every half-cent."""
DEFAULT_MAX_ABS_DELTA = 0.25
DEFAULT_SAMPLE_S = 10.0
"""σ's sampling step: at 1 s the mid's flicker (makers pennying each other, our own quotes)
would be read as volatility; 10 s keeps the diffusion and still gives 90 samples a quarter hour."""


def calibration_path(data_dir: Path) -> Path:
    """``<data_dir>/calibration/hjb.json``: what the workers read."""
    return data_dir / "calibration" / "hjb.json"


@dataclass(frozen=True)
class CalibrationInputs:
    buckets: tuple[cal.DepthBucket, ...]
    series: tuple[tuple[float, ...], ...]
    """Logit mids sampled every ``sample_s``, one tuple per (worker, market)."""
    sample_s: float
    fills_outside: int
    """Maker fills at a depth where no quote was recorded resting (not used by the fit)."""


def read_inputs(data_dir: Path, *, since_ns: int, until_ns: int,
                bucket_dollars: float = DEFAULT_BUCKET_DOLLARS,
                max_abs_delta: float = DEFAULT_MAX_ABS_DELTA,
                sample_s: float = DEFAULT_SAMPLE_S) -> CalibrationInputs:
    """Depth buckets and sampled logit-mid series of the record in [since_ns, until_ns)."""
    from mmcore.record import db
    from mmcore.record.sqlfiles import params_for, read_sql

    if bucket_dollars <= 0 or max_abs_delta <= 0 or sample_s <= 0:
        raise InputError("bucket_dollars, max_abs_delta and sample_s must be > 0")
    sample_ns = round(sample_s * NS)
    params = {"since_ns": since_ns, "until_ns": until_ns, "bucket_dollars": bucket_dollars,
              "max_abs_delta": max_abs_delta, "sample_ns": sample_ns}
    con = db.connect(data_dir)
    try:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        for name in ("depth_buckets", "mid_bins"):
            sql = read_sql(f"calibrate/{name}.sql")
            try:
                rows[name] = con.execute(sql, params_for(sql, params)).fetchall()
            except Exception as exc:  # duckdb.Error: name the file
                raise MMError(f"sql/calibrate/{name}.sql: {exc}") from exc
    finally:
        con.close()
    buckets = tuple(cal.DepthBucket(float(d), float(e), int(n))
                    for _, d, e, n, _ in rows["depth_buckets"] if e > 0)
    outside = sum(int(n) for _, _, e, n, _ in rows["depth_buckets"] if e <= 0)
    by_series: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    for worker, market, at_ns, mid in rows["mid_bins"]:
        by_series[(worker, market)].append((int(at_ns), cal.logit(float(mid) / PRICE_ONE)))
    series = tuple(tuple(cal.grid_samples(obs, sample_ns)) for _, obs in sorted(by_series.items()))
    return CalibrationInputs(buckets, series, sample_s, outside)


@dataclass(frozen=True)
class CalibrationRun:
    """What one run found and whether it published."""

    path: Path
    doc: dict[str, Any]
    intensity: cal.IntensityFit
    sigma: cal.SigmaFit | None
    sigma_rejected: str | None
    inputs: CalibrationInputs
    written: bool
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        i, s = self.intensity, self.sigma
        a = (f"A={i.a_per_s:.5g}/s k={i.k_per_dollar:.5g}/$ (±{i.k_se:.3g})"
             if i.a_per_s is not None and i.k_per_dollar is not None and i.k_se is not None
             else "A,k: no fit")
        a += f" from {i.fills} fills over {i.exposure_s:.0f} quote-s in {i.buckets} depths"
        a += f" [{'refused: ' + i.rejected if i.rejected else 'accepted'}]"
        sig = (f"σ={s.used:.5g} logit/√s ({s.method}) from {s.diffs} diffs" if s
               else "σ: no fit")
        sig += f" [{'refused: ' + self.sigma_rejected if self.sigma_rejected else 'accepted'}]"
        return f"{a}; {sig}; {'written' if self.written else 'not written'} {self.path}"

    def markdown(self) -> str:
        """The run for people: what the workers get, each estimator's answer, the buckets."""
        i, s = self.intensity, self.sigma
        lines = ["# Calibration", "", self.summary(), "",
                 "| estimator | A (1/s) | k (1/$) |", "|---|---|---|"]
        for name, pair in (("likelihood (used)", (i.a_per_s, i.k_per_dollar)),
                           ("log-linear OLS", i.loglinear), ("least squares", i.nls)):
            a, k = pair if pair else (None, None)
            lines.append(f"| {name} | {'' if a is None else f'{a:.5g}'} | "
                         f"{'' if k is None else f'{k:.5g}'} |")
        if s is not None:
            lines += ["", "| σ estimator (logit/√s) | value |", "|---|---|",
                      f"| two-scale, {s.slow_s:g} s vs {s.sample_s:g} s ({s.slow_diffs} diffs)"
                      f"{' (used)' if s.method == 'two-scale' else ''} | "
                      f"{'' if s.two_scale is None else f'{s.two_scale:.5g}'} |",
                      f"| std of differences{' (used)' if s.method == 'std' else ''} | {s.std:.5g} |",
                      f"| instant (Hummingbot) | {s.instant:.5g} |", f"| RMS | {s.rms:.5g} |"]
        lines += ["", "| depth ($) | quote-s | fills | λ̂ (1/s) |", "|---|---|---|---|"]
        lines += [f"| {b.delta_dollars:.4f} | {b.exposure_s:.0f} | {b.fills} | "
                  f"{b.fills / b.exposure_s:.4g} |" for b in self.inputs.buckets]
        return "\n".join(lines) + "\n"


def run_calibration(data_dir: Path, *, now_ns: int, days: float = 7.0,
                    since_ns: int | None = None, until_ns: int | None = None,
                    intensity_limits: cal.IntensityLimits = cal.IntensityLimits(),
                    sigma_limits: cal.SigmaLimits = cal.SigmaLimits(),
                    sample_s: float = DEFAULT_SAMPLE_S,
                    bucket_dollars: float = DEFAULT_BUCKET_DOLLARS) -> CalibrationRun:
    """Fit A, k and σ on the record of the last ``days`` before ``now_ns`` (or the window
    [since_ns, until_ns)) and publish them at :func:`calibration_path`. A refused group keeps the
    previous file's values; the file is rewritten whenever this run has something to say
    (``last_fit``), and not at all when neither group was fitted nor was there a file."""
    if days <= 0 and since_ns is None:
        raise InputError(f"days must be > 0, got {days!r}")
    until = now_ns if until_ns is None else until_ns
    since = since_ns if since_ns is not None else until - round(days * DAY_NS)
    inputs = read_inputs(data_dir, since_ns=since, until_ns=until, sample_s=sample_s,
                         bucket_dollars=bucket_dollars)
    intensity = cal.fit_intensity(inputs.buckets, intensity_limits)
    try:
        sigma: cal.SigmaFit | None = cal.sigma_estimates(inputs.series, inputs.sample_s)
    except InputError:
        sigma = None
    sigma_rejected = cal.check_sigma(sigma, sigma_limits)
    path = calibration_path(data_dir)
    try:
        previous = read_json(path, "calibration file")
    except InputError as exc:
        log.warning("previous calibration unreadable, replaced: %s", exc)
        previous = None
    # the data window's end is when these parameters were true
    last = min(until, now_ns)
    doc = document(intensity_entry(intensity, last), volatility_entry(sigma, sigma_rejected, last),
                   written_ns=now_ns, since_ns=since, until_ns=until, previous=previous)
    accepted = intensity.rejected is None or sigma_rejected is None
    written = accepted or previous is not None
    if written:
        write_json_atomic(path, doc)
    run = CalibrationRun(path, doc, intensity, sigma, sigma_rejected, inputs, written)
    log.info("calibration: %s", run.summary())
    return run


def calibrated_overrides(data_dir: Path, now_ns: int, max_age_ns: int) -> tuple[dict[str, float], list[str]]:
    """The HjbParams fields the published calibration sets now, with notes on what it does not
    (:func:`mmcore.quoting.calibrated.hjb_overrides`); nothing when there is no file. An
    unreadable file is a note, not an error: a worker must start on its defaults."""
    path = calibration_path(data_dir)
    try:
        doc = read_json(path, "calibration file")
    except InputError as exc:
        return {}, [str(exc)]
    if doc is None:
        return {}, []
    return hjb_overrides(doc, now_ns, max_age_ns)


__all__ = ["CalibrationInputs", "CalibrationRun", "calibrated_overrides", "calibration_path",
           "read_inputs", "run_calibration"]
