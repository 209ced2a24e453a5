"""A few recent results of the quoting's pure steps, found again by equal explicit inputs.

Why: a book event that changes nothing the model or the sizing depend on (theo, inventory, our
resting orders, the limit, the account's other games, the prices competition chose) would redo
the same exact-integer worst-case scans (~70 % of a book event's CPU). The quoting steps are pure
functions, so their result for the same inputs is the same result: :class:`Memo` keeps the last
``size`` (inputs, result) pairs per step and returns the stored result when the inputs compare
equal. Nothing is invalidated by hand — a changed input simply does not match.

Rules of this file:

- A key holds **every** input of the step it stands for, as immutable values (tuples, frozen
  dataclasses, numbers, strings); a mutable mapping is copied into a tuple first (a key must not
  change after it is stored). Adding an input to a memoised step means adding it to that step's
  key (see :func:`mmcore.quoting.quotes.desired_quotes`).
- Keys are compared with ``==`` (not hashed), so an input without a hash (a config holding a
  dict) can be part of one; a NaN never matches (a miss, never a wrong hit).
- Stored results are treated as immutable by every caller (tuples, frozen dataclasses).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_SIZE = 8
"""Entries kept per step: enough for a book that flickers between a few states."""


class Memo:
    """Per-step memo of the last few results (most recently used first). One per worker."""

    __slots__ = ("size", "_steps", "hits", "misses")

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._steps: dict[str, list[tuple[Any, Any]]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, step: str, key: Any, compute: Callable[[], T]) -> T:
        """The stored result of ``step`` for inputs equal to ``key``, else ``compute()`` (stored)."""
        entries = self._steps.get(step)
        if entries is None:
            entries = self._steps[step] = []
        for i, (k, v) in enumerate(entries):
            if k == key:
                if i:
                    entries.insert(0, entries.pop(i))
                self.hits += 1
                return v  # type: ignore[no-any-return]
        self.misses += 1
        value = compute()
        entries.insert(0, (key, value))
        del entries[self.size:]
        return value

    def get_ranged(self, step: str, key: Any, at: int,
                   compute: Callable[[], tuple[T, int, float]]) -> T:
        """For a step with one integer input ``at`` left out of ``key`` whose result is known to
        be the same over a range of it: the stored result for inputs equal to ``key`` whose
        range holds ``at``, else ``compute()`` → (result, lo, hi), stored with its range
        ``lo ≤ at ≤ hi`` (``compute`` must return a range holding ``at``; ``hi`` may be inf).

        Why: the game's hard limit follows book liquidity, so it moves on most book events while
        the sizing it bounds stays the same until a quote comes near it (issue 11 item 5: half
        of the sizing steps' misses were the limit alone moving)."""
        entries = self._steps.get(step)
        if entries is None:
            entries = self._steps[step] = []
        for i, (k, v) in enumerate(entries):
            if k[1] <= at <= k[2] and k[0] == key:
                if i:
                    entries.insert(0, entries.pop(i))
                self.hits += 1
                return v  # type: ignore[no-any-return]
        self.misses += 1
        value, lo, hi = compute()
        if not lo <= at <= hi:
            raise ValueError(f"{step}: range [{lo}, {hi}] does not hold {at}")
        entries.insert(0, ((key, lo, hi), value))
        del entries[self.size:]
        return value
