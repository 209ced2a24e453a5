"""Latency of the backtest's simulated wire: order entry (fixed + seeded jitter) and market data.

Why: the worker's slot locks, ack handling and queue position only mean something when a write
lands some time after the decision and its ack comes back later still; a zero-latency backtest
would overstate how often our quotes are first in the queue.

Units: ns. Randomness only from the ``random.Random`` the runner seeds (never the global one).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mmcore.errors import InputError

MS = 1_000_000


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """One-way delays of the simulated wire.

    - ``order_fixed_ns`` + uniform ``[0, order_jitter_ns]``: each way of a REST write or read
      (request → exchange, exchange → ack), drawn independently per leg;
    - ``market_data_ns``: exchange event → worker (book deltas, fills, order updates, trades,
      lifecycle). Fixed, so the feed stays in exchange order, as one WebSocket does;
    - ``theo_pull_ns``: an on-demand odds pull (``RefreshTheo``) → its theo reaches the worker.
    """

    order_fixed_ns: int = 20 * MS
    order_jitter_ns: int = 10 * MS
    market_data_ns: int = 5 * MS
    theo_pull_ns: int = 2_000 * MS

    def __post_init__(self) -> None:
        for name in ("order_fixed_ns", "order_jitter_ns", "market_data_ns", "theo_pull_ns"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise InputError(f"LatencyModel.{name} must be an int >= 0 (ns), got {value!r}")

    def order_leg_ns(self, rng: random.Random) -> int:
        """One leg of a REST call (ns)."""
        jitter = rng.randint(0, self.order_jitter_ns) if self.order_jitter_ns else 0
        return self.order_fixed_ns + jitter
