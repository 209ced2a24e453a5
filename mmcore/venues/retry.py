"""When a venue client retries a failed request, and how long it waits first (pure).

Shared by the REST clients (:mod:`mmcore.venues.kalshi.rest`, :mod:`mmcore.venues.oddsapi`);
each keeps its own attempt loop, log line and extra rules (Kalshi's non-idempotent calls, the
Odds API's ``Retry-After``), and asks this module the two questions they have in common:

- :func:`should_retry`: is this failure worth another attempt? Only transient venue errors
  (:func:`mmcore.errors.is_retryable`: 429, 5xx, connection trouble, timeouts), and only while
  fewer than ``max_retries`` retries were made.
- :func:`backoff_s`: the wait before the next attempt, ``base_s · 2**attempt · U(1, 1.25)``
  seconds, at least ``floor_s`` and at most ``cap_s``.

Randomness is passed in (``u``, one uniform draw in [0, 1) per retry) so the schedule is
deterministic under test. Units: every duration here is seconds (``_s``), as float.
"""

from __future__ import annotations

from mmcore.errors import is_retryable

__all__ = ["JITTER", "backoff_s", "should_retry"]

JITTER = 0.25
"""Largest stretch of a delay by jitter, as a fraction: the delay is multiplied by 1 + JITTER·u."""


def backoff_s(attempt: int, *, base_s: float, cap_s: float, u: float,
              floor_s: float = 0.0) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    ``attempt`` counts the retries already made (0 before the first retry); ``base_s`` is the
    first delay before jitter (seconds); ``u`` is a uniform draw in [0, 1) (e.g.
    ``rng.random()``), stretching the delay by ``1 + JITTER·u``; ``floor_s`` is a lower bound
    from the venue (a ``Retry-After`` hint, seconds; 0 for none); ``cap_s`` bounds the result
    (seconds) and wins over ``floor_s``. So, for ``d = base_s · 2**attempt``, the result lies
    in ``[min(cap_s, max(d, floor_s)), min(cap_s, max(1.25·d, floor_s))]``.
    """
    delay = base_s * (2**attempt) * (1.0 + JITTER * u)
    return min(cap_s, max(delay, floor_s))


def should_retry(err: BaseException, attempt: int, max_retries: int) -> bool:
    """True when ``err`` is transient (:func:`~mmcore.errors.is_retryable`) and ``attempt``, the
    retries already made, is below ``max_retries``; a False means raise ``err`` now."""
    return is_retryable(err) and attempt < max_retries
