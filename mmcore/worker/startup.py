"""Start-up stages of one game worker: how long each took and how much of it was the rate budget.

Why: a worker that has not quoted yet is invisible from the outside, and on a busy account its
start-up is a dozen REST calls behind the account's shared read budget (bench/scale.py N = 50 at
Basic: most workers never got through start-up in 110 s, and nobody could say what they were
awaiting). Each stage logs one INFO line on ``mmcore.worker.startup`` when it ends (its wall
time, its REST requests and the part of it this process spent queued for rate-budget tokens),
the whole start-up one line, and :attr:`StartupTimer.current` names the stage a worker is
stuck in (the stop watchdog says it).

Calling order: ``with timer.stage("name"):`` around each awaited step, in order; :meth:`done`
once the worker is quoting-ready. Times int ns (``time.perf_counter_ns``); the budget wait is the
limiter's ``waited_ns`` counter, read before and after (0 when there is no limiter).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)
NS_PER_MS = 1_000_000


class StartupTimer:
    """Wall time and rate-budget wait per start-up stage of one worker (ms in :meth:`summary`)."""

    def __init__(self, label: str, limiter: Any = None) -> None:
        self.label = label
        self.limiter = limiter
        self.t0_ns = time.perf_counter_ns()
        self.stages: dict[str, tuple[int, int, int]] = {}
        """Stage → (wall ns, ns queued for rate-budget tokens, REST requests let through by the
        limiter), in the order they ended."""
        self.current: str | None = None
        """The stage under way (None between stages and after :meth:`done`)."""
        self.total_ns: int | None = None

    def _waited(self) -> int:
        return int(getattr(self.limiter, "waited_ns", 0) or 0)

    def _requests(self) -> int:
        return int(getattr(self.limiter, "acquired", 0) or 0)

    @property
    def requests(self) -> int:
        """REST requests the stages so far made (metered by the rate budget)."""
        return sum(r for _w, _b, r in self.stages.values())

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0, w0, r0 = time.perf_counter_ns(), self._waited(), self._requests()
        self.current = name
        try:
            yield
        finally:
            wall, waited = time.perf_counter_ns() - t0, self._waited() - w0
            reqs = self._requests() - r0
            prev = self.stages.get(name, (0, 0, 0))
            self.stages[name] = (prev[0] + wall, prev[1] + waited, prev[2] + reqs)
            self.current = None
            log.info("%s start-up: %s took %.1f ms, %d request(s), %.1f ms of it waiting for the "
                     "rate budget", self.label, name, wall / NS_PER_MS, reqs, waited / NS_PER_MS)

    def done(self) -> None:
        """Start-up over: one INFO line with every stage."""
        self.total_ns = time.perf_counter_ns() - self.t0_ns
        log.info("%s start-up done in %.1f ms, %d request(s): %s", self.label,
                 self.total_ns / NS_PER_MS, self.requests,
                 ", ".join(f"{k} {w / NS_PER_MS:.0f} ms ({r} req, budget {b / NS_PER_MS:.0f})"
                           for k, (w, b, r) in self.stages.items()))

    def summary(self) -> dict[str, Any]:
        """For reports: ``{"total_ms", "done", "in" (stage under way, or None), "requests",
        "stages": {name: [wall ms, budget-wait ms, requests]}}``; ``total_ms`` so far when not
        done."""
        total = self.total_ns if self.total_ns is not None else time.perf_counter_ns() - self.t0_ns
        return {"total_ms": round(total / NS_PER_MS, 1), "done": self.total_ns is not None,
                "in": self.current, "requests": self.requests,
                "stages": {k: [round(w / NS_PER_MS, 1), round(b / NS_PER_MS, 1), r]
                           for k, (w, b, r) in self.stages.items()}}
