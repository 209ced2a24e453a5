"""Order-group bookkeeping for the matching engine: the rolling 15-second matched-contracts window.

Rules of this file (counts in centi-contracts, times in ns):

- A group belongs to one user and holds a ``contracts_limit`` > 0.
- Every fill of an order in the group adds its count to the window; entries older than
  ``WINDOW_NS`` before the latest time drop out (the window is ``(now − 15 s, now]``).
- The group **triggers** when the window sum exceeds the limit (``>``), when the limit is lowered
  below the window sum, or on a manual trigger. A triggered group stays triggered until reset;
  reset clears the window. The engine cancels the group's resting orders on trigger and refuses
  new orders naming a triggered group — this module only keeps the numbers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from mmcore.sim.engine_types import OrderGroup

WINDOW_NS = 15 * 1_000_000_000
"""The rolling window of matched contracts (15 s)."""


@dataclass
class GroupState:
    """Mutable state of one order group."""

    order_group_id: str
    user_id: str
    contracts_limit: int
    created_ns: int
    triggered: bool = False
    resting: dict[str, None] = field(default_factory=dict)
    """Ids of the group's resting orders, in the order they started resting."""
    _window: deque[tuple[int, int]] = field(default_factory=deque)
    _window_sum: int = 0

    def _prune(self, now_ns: int) -> None:
        while self._window and self._window[0][0] <= now_ns - WINDOW_NS:
            _, count = self._window.popleft()
            self._window_sum -= count

    def matched(self, now_ns: int) -> int:
        """Centi-contracts matched in the window ending at ``now_ns``."""
        self._prune(now_ns)
        return self._window_sum

    def record_fill(self, count: int, now_ns: int) -> bool:
        """Add a fill; True when this fill makes an untriggered group trigger."""
        self._window.append((now_ns, count))
        self._window_sum += count
        return not self.triggered and self.matched(now_ns) > self.contracts_limit

    def over_limit(self, now_ns: int) -> bool:
        return self.matched(now_ns) > self.contracts_limit

    def reset(self) -> None:
        self.triggered = False
        self._window.clear()
        self._window_sum = 0

    def snapshot(self, now_ns: int | None = None) -> OrderGroup:
        matched = self._window_sum if now_ns is None else self.matched(now_ns)
        return OrderGroup(self.order_group_id, self.user_id, self.contracts_limit,
                          self.created_ns, self.triggered, tuple(self.resting), matched)
