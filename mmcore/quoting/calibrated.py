"""Calibrated model parameters: the document the ``calibrate`` flow publishes and the overlay the
next workers apply to their :class:`~mmcore.quoting.hjb.HjbParams`. Pure (no I/O, no clock).

The document (JSON, ``<data_dir>/calibration/hjb.json``, written whole by
:mod:`mmcore.record.calibration`)::

    {"format": "mm-calibration/1", "written_ns": …, "window": {"since_ns": …, "until_ns": …},
     "intensity":  {"a_per_s": …, "k_per_dollar": …, "as_of_ns": …, "method": "mle", "k_se": …,
                    "fills": …, "exposure_s": …, "buckets": …, "loglinear": {…}, "nls": {…}},
     "volatility": {"sigma_logit_per_sqrt_s": …, "as_of_ns": …, "method": "two-scale"|"std",
                    "std": …, "instant": …, "rms": …, "two_scale": …, "diffs": …, "series": …,
                    "sample_s": …, "slow_s": …, "slow_diffs": …},
     "last_fit":   {"intensity": {…, "rejected": reason or null}, "volatility": {…}}}

Rules of this file:

- Two groups, fitted and accepted separately: ``intensity`` (A and k together, they are one fit)
  and ``volatility`` (σ). A group's ``as_of_ns`` is the end of the data window it was fitted on.
- **A bad fit never replaces a good one** (:func:`document`): a group whose new fit is refused
  keeps the previous document's values (and their ``as_of_ns``); ``last_fit`` says what the
  latest run found and why it was refused.
- **The reader trusts nothing** (:func:`hjb_overrides`): a group is applied only when its values
  are finite, inside the sanity bounds and younger than ``max_age_ns``; otherwise the defaults
  stay and a note says why.
- Order of precedence for a worker (:func:`mmcore.worker.venue.default_worker_config`): module
  defaults, then this overlay, then an explicit worker config file (``MM_WORKER_CONFIG``,
  ``mm quote --config``), whose keys win.

Units: A per second, k per dollar (= per unit probability), σ in logit per √s, times ns.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from mmcore.quoting.calibrate import IntensityFit, IntensityLimits, SigmaFit, SigmaLimits
from mmcore.quoting.hjb import HjbParams

FORMAT = "mm-calibration/1"
INTENSITY_KEYS = ("a_per_s", "k_per_dollar")
VOLATILITY_KEYS = ("sigma_logit_per_sqrt_s",)


def _pair(p: tuple[float, float] | None) -> dict[str, float] | None:
    return None if p is None else {"a_per_s": p[0], "k_per_dollar": p[1]}


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def intensity_entry(fit: IntensityFit, as_of_ns: int) -> dict[str, Any]:
    """A fit as the document records it (``rejected`` None when accepted)."""
    return {"a_per_s": fit.a_per_s, "k_per_dollar": fit.k_per_dollar, "k_se": _finite(fit.k_se),
            "as_of_ns": as_of_ns, "method": "mle", "fills": fit.fills,
            "exposure_s": round(fit.exposure_s, 3), "buckets": fit.buckets,
            "loglinear": _pair(fit.loglinear), "nls": _pair(fit.nls), "rejected": fit.rejected}


def volatility_entry(fit: SigmaFit | None, rejected: str | None, as_of_ns: int) -> dict[str, Any]:
    if fit is None:
        return {"sigma_logit_per_sqrt_s": None, "as_of_ns": as_of_ns, "method": "std",
                "diffs": 0, "rejected": rejected}
    return {"sigma_logit_per_sqrt_s": fit.used, "as_of_ns": as_of_ns, "method": fit.method,
            "std": fit.std, "instant": fit.instant, "rms": fit.rms, "two_scale": fit.two_scale,
            "diffs": fit.diffs, "series": fit.series, "sample_s": fit.sample_s,
            "slow_s": fit.slow_s, "slow_diffs": fit.slow_diffs, "rejected": rejected}


def document(intensity: dict[str, Any], volatility: dict[str, Any], *, written_ns: int,
             since_ns: int, until_ns: int, previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """The new document: each group from this run's entry when it was accepted (``rejected``
    None), else from ``previous`` (a document, or None)."""
    prev = previous if isinstance(previous, Mapping) and previous.get("format") == FORMAT else {}

    def keep(new: dict[str, Any], group: str) -> dict[str, Any] | None:
        if new.get("rejected") is None:
            return {k: v for k, v in new.items() if k != "rejected"}
        old = prev.get(group)
        return dict(old) if isinstance(old, Mapping) else None

    return {"format": FORMAT, "written_ns": written_ns,
            "window": {"since_ns": since_ns, "until_ns": until_ns},
            "intensity": keep(intensity, "intensity"), "volatility": keep(volatility, "volatility"),
            "last_fit": {"intensity": intensity, "volatility": volatility}}


def hjb_overrides(doc: object, now_ns: int, max_age_ns: int,
                  intensity_limits: IntensityLimits = IntensityLimits(),
                  sigma_limits: SigmaLimits = SigmaLimits()) -> tuple[dict[str, float], list[str]]:
    """The HjbParams fields the document may set now, and a note per group left out (why)."""
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        return {}, [f"not a {FORMAT} document"]
    out: dict[str, float] = {}
    notes: list[str] = []
    (alo, ahi), (klo, khi) = intensity_limits.a_bounds_per_s, intensity_limits.k_bounds_per_dollar
    slo, shi = sigma_limits.sigma_bounds_per_sqrt_s
    groups = (("intensity", {"a_per_s": (alo, ahi), "k_per_dollar": (klo, khi)}),
              ("volatility", {"sigma_logit_per_sqrt_s": (slo, shi)}))
    for group, bounds in groups:
        entry = doc.get(group)
        if not isinstance(entry, Mapping):
            notes.append(f"{group}: none calibrated")
            continue
        as_of = entry.get("as_of_ns")
        if not isinstance(as_of, int) or isinstance(as_of, bool):
            notes.append(f"{group}: no as_of_ns")
            continue
        age = now_ns - as_of
        if age > max_age_ns:
            notes.append(f"{group}: fitted {age / 3.6e12:.1f} h ago, older than the "
                         f"{max_age_ns / 3.6e12:.1f} h allowed")
            continue
        values = {}
        for key, (lo, hi) in bounds.items():
            v = entry.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) \
                    and lo <= v <= hi:
                values[key] = float(v)
            else:
                notes.append(f"{group}: {key}={v!r} is not a number in [{lo:g}, {hi:g}]")
                break
        else:
            out.update(values)
    return out, notes


def apply_overrides(hjb: HjbParams, overrides: Mapping[str, float]) -> HjbParams:
    """``hjb`` with the calibrated fields replaced (HjbParams validates them again)."""
    return dataclasses.replace(hjb, **overrides) if overrides else hjb


__all__ = ["FORMAT", "apply_overrides", "document", "hjb_overrides", "intensity_entry",
           "volatility_entry"]
