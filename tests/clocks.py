"""Test time: a manual clock and an injected sleep that records instead of waiting."""

from __future__ import annotations


class ManualClock:
    """ns since the epoch, moved only by the test."""

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


class Sleeps:
    """An injected sleep: records each delay (seconds) and returns at once, advancing
    ``clock`` by it when one is given."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.delays: list[float] = []
        self.clock = clock

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)
        if self.clock is not None:
            self.clock.advance(delay_s)
