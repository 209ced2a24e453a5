"""Recent volatility of a market's mid, sampled on a fixed clock grid from the decisions' inputs.

The baselines need "recent volatility" (the inventory-skewing quoter widens with it; plain A-S
uses it as σ). It is measured as hftbacktest does (quoting-math.md §1.5, TV11): the mid
prevailing at every ``sample_ns`` boundary, and σ = the population standard deviation of the
differences between consecutive samples over the last ``window`` samples, divided by
√(sample length in seconds). Units: the mid in **dollars = probability** (a 1¢ move is 0.01, the
return on the contract's $1 payout), σ in dollars per √s.

Pure and deterministic: :meth:`MidVolatility.observe` is fed ``(mid, now_ns)`` from each
decision, in time order. The mid prevailing at a boundary ``b`` is the last mid observed at or
before ``b`` (an observation exactly at ``b`` counts); boundaries with no mid yet (or a one-sided
book: ``mid=None``) are skipped, so a gap never invents a move.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from mmcore.errors import InputError

NS = 1_000_000_000


@dataclass(slots=True)
class MidVolatility:
    """Rolling σ of one mid (see the module docstring). ``window`` samples, ``min_samples`` before
    :meth:`sigma` answers."""

    sample_ns: int = NS
    window: int = 60
    min_samples: int = 5
    _samples: deque[float] = field(default_factory=deque)
    _last_mid: float | None = None
    _next_ns: int | None = None
    _last_ns: int | None = None

    def __post_init__(self) -> None:
        if self.sample_ns <= 0 or self.window < 2 or not 2 <= self.min_samples <= self.window:
            raise InputError(f"MidVolatility needs sample_ns > 0, window >= 2, "
                             f"2 <= min_samples <= window: {self!r}")
        self._samples = deque(maxlen=self.window)

    def observe(self, mid: float | None, now_ns: int) -> None:
        """Record the mid (probability, or None when the book is one-sided) seen at ``now_ns``."""
        if self._last_ns is not None and now_ns < self._last_ns:
            raise InputError(f"observations must be in time order: {now_ns} < {self._last_ns}")
        self._last_ns = now_ns
        if self._next_ns is None:
            self._next_ns = now_ns - now_ns % self.sample_ns
            if self._next_ns < now_ns:
                self._next_ns += self.sample_ns
        # boundaries strictly before now see the previous mid; skip ahead past long gaps
        # (a full window of identical samples is all they could add)
        behind = (now_ns - self._next_ns) // self.sample_ns if now_ns > self._next_ns else 0
        if behind > self.window:
            self._next_ns += (behind - self.window) * self.sample_ns
        while self._next_ns < now_ns:
            if self._last_mid is not None:
                self._samples.append(self._last_mid)
            self._next_ns += self.sample_ns
        if self._next_ns == now_ns:
            if mid is not None:
                self._samples.append(mid)
            self._next_ns += self.sample_ns
        self._last_mid = mid

    @property
    def samples(self) -> tuple[float, ...]:
        return tuple(self._samples)

    def sigma(self) -> float | None:
        """σ of the mid in dollars per √s, or None with fewer than ``min_samples`` samples."""
        xs = self._samples
        if len(xs) < self.min_samples:
            return None
        diffs = [b - a for a, b in zip(xs, list(xs)[1:])]
        mean = sum(diffs) / len(diffs)
        var = sum((d - mean) ** 2 for d in diffs) / len(diffs)
        return math.sqrt(var) / math.sqrt(self.sample_ns / NS)


class MarketVolatility:
    """One :class:`MidVolatility` per market, fed with each decision's mids (probability; None
    when a market's book is one-sided). Baselines that widen or skew by the book's σ share it;
    one instance per game, fed in time order."""

    def __init__(self, sample_ns: int, window: int) -> None:
        self.sample_ns, self.window = sample_ns, window
        self._by_market: dict[str, MidVolatility] = {}

    def observe(self, mids: dict[str, float | None], now_ns: int) -> None:
        for market, mid in mids.items():
            vol = self._by_market.get(market)
            if vol is None:
                vol = self._by_market[market] = MidVolatility(
                    self.sample_ns, self.window, min(5, self.window))
            vol.observe(mid, now_ns)

    def sigma(self, market: str) -> float | None:
        """The market's σ (dollars per √s), or None until it has enough samples."""
        vol = self._by_market.get(market)
        return vol.sigma() if vol is not None else None
