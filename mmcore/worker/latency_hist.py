"""A bounded latency histogram for the driver's hot path: record in O(1), read percentiles later.

Why: the scale benchmark (issue 11: "decision p99 ≤ 5 ms" with fifty workers on one box) needs
each worker's own view of how long a book event waited and was decided, for a whole run, without
keeping every sample (a worker quotes for hours) and without slowing the loop that records it.

Buckets are HDR-style: values below 32 ns exactly; above, 16 buckets per power of two, so a
reported percentile is the upper edge of its bucket, at most 1/16 (6.25 %) above the true sample.
Memory stays below ~600 buckets whatever the run length. Units: ns in, ns out.
"""

from __future__ import annotations

from typing import Any

_SUB = 4
"""log2 of the buckets per power of two."""


def _index(ns: int) -> int:
    bl = ns.bit_length()
    if bl <= _SUB + 1:
        return ns
    shift = bl - _SUB - 1
    return (shift << _SUB) + (ns >> shift)


def _upper(idx: int) -> int:
    """The largest value that falls in bucket ``idx``."""
    if idx < 2 << _SUB:
        return idx
    shift = (idx >> _SUB) - 1
    return (((idx & ((1 << _SUB) - 1)) | (1 << _SUB)) << shift) + (1 << shift) - 1


class LatencyHistogram:
    """Counts of ns values in log-linear buckets; :meth:`quantile` reads nearest-rank percentiles."""

    __slots__ = ("buckets", "count", "max_ns", "total_ns")

    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}
        self.count = 0
        self.max_ns = 0
        self.total_ns = 0

    def record(self, ns: int) -> None:
        """One sample (negative values, from clocks that stepped back, count as 0)."""
        if ns < 0:
            ns = 0
        i = _index(ns)
        self.buckets[i] = self.buckets.get(i, 0) + 1
        self.count += 1
        self.total_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    def quantile(self, q: float) -> int | None:
        """The ``q`` quantile (0–1, nearest rank) as its bucket's upper edge (capped at the
        largest sample); None when empty."""
        if not self.count:
            return None
        rank = min(self.count, max(1, round(q * self.count + 0.5)))
        seen = 0
        for i in sorted(self.buckets):
            seen += self.buckets[i]
            if seen >= rank:
                return min(_upper(i), self.max_ns)
        return self.max_ns  # pragma: no cover - counts always add up

    def summary_ms(self) -> dict[str, Any]:
        """``{"count", "p50_ms", "p99_ms", "max_ms", "mean_ms"}`` (None for an empty histogram)."""
        def ms(v: int | None) -> float | None:
            return None if v is None else round(v / 1e6, 4)

        return {"count": self.count, "p50_ms": ms(self.quantile(0.5)),
                "p99_ms": ms(self.quantile(0.99)), "max_ms": ms(self.max_ns if self.count else None),
                "mean_ms": ms(self.total_ns // self.count if self.count else None)}


__all__ = ["LatencyHistogram"]
