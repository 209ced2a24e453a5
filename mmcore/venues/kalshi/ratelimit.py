"""Client-side token buckets that mirror Kalshi's account tier, so we never earn a 429.

Kalshi meters REST with two token buckets per account (reference/kalshi.md §5): **read** (GETs and
anything that is not a write) and **write** (order create/amend/decrease/cancel, order-group
writes). Buckets refill continuously at ``rate_per_s`` tokens per second up to ``capacity``; a
request costs :func:`endpoint_cost` tokens (default 10; single cancel 2; batch cancel 2 per item;
batch create 10 per item; single-order GET 2). A 429 carries no ``Retry-After`` and no
``X-RateLimit-*`` headers, so the only way to stay under the limit is to count ourselves.

:class:`TokenBucket` is the pure arithmetic (time is passed in as ``now_ns``).
:class:`RateLimiter` is the async gate the REST client awaits before **every attempt** (retries
pay again, as they do at the server); it owns an injectable clock and sleep.

Priority policy (write bucket; the same rules hold on the read bucket but nobody cancels there):

1. **Cancels are served first.** Waiters queue in two FIFO classes, ``cancel`` then ``normal``;
   only the head of the combined queue may take tokens, and a cancel is always ahead of every
   normal waiter, whenever it arrived. A waiting normal request holds no tokens, so it cannot
   delay a cancel: a cancel waits only for earlier cancels and for its own cost to refill.
2. **Cancels may borrow ahead.** A normal request may take tokens only while it leaves
   ``cancel_reserve`` tokens in the bucket (capped so that a normal request can still fit); a
   cancel may spend the reserve. So during a burst of creates the bucket never drains below the
   reserve, and a cancel that arrives mid-burst goes out at once, spending tokens the queued
   creates would otherwise have taken next; they pay for it by waiting longer.
3. **No overdraft.** Nothing is sent that the mirrored bucket cannot pay for; an overdrawn cancel
   would only come back as a 429. Headroom for clock skew and network jitter comes from
   ``safety`` in :meth:`RateLimiter.for_tier` (the client bucket is that fraction of the
   server's, in rate and in capacity).
4. **After a 429** call :meth:`RateLimiter.penalize`: the server's bucket is empty, so ours is
   emptied too and every waiter then waits for a real refill.

A request whose cost exceeds the bucket's capacity can never be sent (the server would refuse a
batch that large too): :class:`~mmcore.errors.InputError`, at once.

**One account, one budget.** With ``account=`` (a :class:`SharedBudget`, e.g.
:class:`~mmcore.venues.kalshi.account_file.AccountBudgetFile`) the tokens come from the bucket
every process of the account shares instead of this process's own: the local queue still orders
this process's waiters (cancels first), and its head asks the shared record, which applies the
same four rules across processes (:mod:`mmcore.venues.kalshi.account_budget`). A waiting head
re-asks at least every :data:`SHARED_POLL_MAX_S` (other processes take tokens meanwhile, and the
poll keeps its slot's heartbeat fresh). :meth:`RateLimiter.set_tier` resizes both.

Units: times are integer ns from the limiter's clock (``time.monotonic_ns`` by default; the
buckets must be created with the same time base), rates tokens per second, costs tokens.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from mmcore.errors import InputError

__all__ = [
    "Kind", "Priority", "DEFAULT_COST", "COST_CANCEL", "COST_BATCH_CANCEL_PER_ITEM",
    "COST_BATCH_CREATE_PER_ITEM", "COST_GET_ORDER", "TierLimits", "TIERS", "endpoint_cost",
    "TokenBucket", "RateLimiter", "SharedBudget", "SHARED_POLL_MAX_S",
]

Kind = Literal["read", "write"]
Priority = Literal["cancel", "normal"]

DEFAULT_COST = 10
COST_CANCEL = 2
COST_BATCH_CANCEL_PER_ITEM = 2
COST_BATCH_CREATE_PER_ITEM = 10
COST_GET_ORDER = 2

_PREFIX = "/trade-api/v2"
_NS_PER_S = 1_000_000_000
SHARED_POLL_MAX_S = 0.25
"""Longest a head waiting on a shared budget sleeps before asking again (s)."""


@dataclass(frozen=True, slots=True)
class TierLimits:
    """Budgets of one tier: tokens per second and bucket capacity (tokens), per bucket."""

    read_per_s: float
    read_capacity: float
    write_per_s: float
    write_capacity: float


TIERS: dict[str, TierLimits] = {
    # Write buckets above Basic and the Basic/Advanced read buckets hold 2 s of budget;
    # Basic write and higher-tier read buckets hold 1 s (kalshi.md §5).
    "basic": TierLimits(200, 400, 100, 100),
    "advanced": TierLimits(300, 600, 300, 600),
    "expert": TierLimits(600, 600, 600, 1200),
    "premier": TierLimits(1000, 1000, 1000, 2000),
    "paragon": TierLimits(2000, 2000, 2000, 4000),
    "prime": TierLimits(4000, 4000, 4000, 8000),
    "prestige": TierLimits(10000, 10000, 8000, 16000),
}


def endpoint_cost(method: str, path: str, *, items: int = 1) -> tuple[Kind, int]:
    """Bucket and token cost of one request (kalshi.md §5).

    ``path`` may include the ``/trade-api/v2`` prefix and a query; ``items`` is the number of
    orders in a batch. Writes: V2 and legacy order writes, order-group writes. Costs: batch create
    10/item, batch cancel 2/item, single cancel 2, single-order GET 2, everything else 10.
    """
    method = method.upper()
    p = path.split("?", 1)[0].rstrip("/")
    if p.startswith(_PREFIX):
        p = p[len(_PREFIX):]
    if items < 1:
        raise InputError(f"items must be >= 1, got {items}")
    if method == "GET":
        parts = p.split("/")
        # /portfolio/orders/{id} (not /portfolio/orders, not .../queue_position)
        if len(parts) == 4 and parts[1:3] == ["portfolio", "orders"]:
            return "read", COST_GET_ORDER
        return "read", DEFAULT_COST
    is_order_write = p.startswith("/portfolio/events/orders") or p.startswith("/portfolio/orders")
    if not (is_order_write or p.startswith("/portfolio/order_groups")):
        return "read", DEFAULT_COST
    if p.endswith("/orders/batched"):
        per = COST_BATCH_CANCEL_PER_ITEM if method == "DELETE" else COST_BATCH_CREATE_PER_ITEM
        return "write", per * items
    if method == "DELETE" and is_order_write:
        return "write", COST_CANCEL
    return "write", DEFAULT_COST


class TokenBucket:
    """A continuously refilling token bucket. Pure: every call takes ``now_ns``.

    Starts full at ``now_ns``. ``tokens`` never exceeds ``capacity`` and never goes below zero
    except through :meth:`take_unchecked`. A clock that steps backwards is ignored (no refill).
    """

    __slots__ = ("rate_per_s", "capacity", "_tokens", "_last_ns")

    def __init__(self, rate_per_s: float, capacity: float, now_ns: int) -> None:
        if not (rate_per_s > 0 and math.isfinite(rate_per_s)):
            raise InputError(f"rate_per_s must be a positive number, got {rate_per_s!r}")
        if not (capacity > 0 and math.isfinite(capacity)):
            raise InputError(f"capacity must be a positive number, got {capacity!r}")
        self.rate_per_s = float(rate_per_s)
        self.capacity = float(capacity)
        self._tokens = float(capacity)
        self._last_ns = now_ns

    def _refill(self, now_ns: int) -> None:
        if now_ns > self._last_ns:
            gained = (now_ns - self._last_ns) * self.rate_per_s / _NS_PER_S
            self._tokens = min(self.capacity, self._tokens + gained)
            self._last_ns = now_ns

    def _check(self, cost: float, keep: float) -> None:
        if cost < 0 or keep < 0:
            raise InputError(f"cost and keep must be >= 0, got {cost!r}, {keep!r}")
        if cost > self.capacity:
            raise InputError(f"cost {cost:g} exceeds the bucket capacity {self.capacity:g}: "
                             "it can never be paid (split the batch)")

    def tokens(self, now_ns: int) -> float:
        """Tokens held at ``now_ns``."""
        self._refill(now_ns)
        return self._tokens

    def try_take(self, cost: float, now_ns: int, *, keep: float = 0.0) -> bool:
        """Take ``cost`` tokens if at least ``cost + keep`` are held (``keep`` capped at
        ``capacity − cost``, so a full bucket always pays); True if taken."""
        self._check(cost, keep)
        self._refill(now_ns)
        if self._tokens + 1e-9 >= min(cost + keep, self.capacity):
            self._tokens = max(0.0, self._tokens - cost)
            return True
        return False

    def wait_ns(self, cost: float, now_ns: int, *, keep: float = 0.0) -> int:
        """Ns until :meth:`try_take` of ``cost`` (leaving ``keep``, capped as there) would
        succeed, if nobody else takes meanwhile; 0 if it would succeed now."""
        self._check(cost, keep)
        return self._deficit_ns(min(cost + keep, self.capacity), now_ns)

    def _deficit_ns(self, need: float, now_ns: int) -> int:
        """Ns until ``need`` tokens will have accrued (no capacity cap: for queue estimates)."""
        self._refill(now_ns)
        missing = need - self._tokens
        if missing <= 1e-9:
            return 0
        return max(1, math.ceil(missing * _NS_PER_S / self.rate_per_s))

    def take_unchecked(self, cost: float, now_ns: int) -> None:
        """Take ``cost`` tokens even if that leaves the bucket negative (accounting for a
        request that went out anyway)."""
        self._refill(now_ns)
        self._tokens -= cost

    def drain(self, now_ns: int) -> None:
        """Empty the bucket (the server just said 429: its bucket is empty)."""
        self._refill(now_ns)
        self._tokens = min(self._tokens, 0.0)

    def __repr__(self) -> str:
        return (f"TokenBucket(rate_per_s={self.rate_per_s:g}, capacity={self.capacity:g}, "
                f"tokens={self._tokens:.1f})")


class SharedBudget(Protocol):
    """The account-wide bucket pair a :class:`RateLimiter` may draw on (costs in tokens, times
    in ns on the limiter's clock, which must be host-wide: ``time.monotonic_ns``)."""

    def try_take(self, kind: str, cost: float, *, cancel: bool, since_ns: int,
                 now_ns: int) -> int:
        """0 when ``cost`` tokens were taken; else ns to wait before asking again (the request
        stays registered as waiting since ``since_ns``)."""
        ...

    def leave(self, kind: str, *, cancel: bool, since_ns: int) -> None:
        """The request waiting since ``since_ns`` gave up."""
        ...

    def penalize(self, kind: str, now_ns: int) -> None:
        """A 429: empty the shared bucket."""
        ...

    def set_tier(self, tier: str, read: tuple[float, float], write: tuple[float, float], *,
                 source: str) -> None:
        ...


class _Ticket:
    __slots__ = ("cost", "priority")

    def __init__(self, cost: float, priority: Priority) -> None:
        self.cost = cost
        self.priority = priority


class _Queue:
    """Waiters on one bucket: cancels first, then normal requests, FIFO within each."""

    __slots__ = ("cancels", "normals", "changed")

    def __init__(self) -> None:
        self.cancels: deque[_Ticket] = deque()
        self.normals: deque[_Ticket] = deque()
        self.changed: asyncio.Event | None = None

    def head(self) -> _Ticket | None:
        if self.cancels:
            return self.cancels[0]
        return self.normals[0] if self.normals else None

    def add(self, t: _Ticket) -> None:
        (self.cancels if t.priority == "cancel" else self.normals).append(t)
        self.notify()  # a new cancel becomes head: the sleeping normal head must re-check

    def remove(self, t: _Ticket) -> None:
        q = self.cancels if t.priority == "cancel" else self.normals
        try:
            q.remove(t)
        except ValueError:
            pass
        self.notify()

    def notify(self) -> None:
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    def event(self) -> asyncio.Event:
        if self.changed is None:
            self.changed = asyncio.Event()
        return self.changed


class RateLimiter:
    """The async gate before every Kalshi request (policy in the module docstring).

    ``read`` / ``write`` are the mirrored buckets, created on ``clock_ns``'s time base.
    ``cancel_reserve`` (tokens, write bucket) is what normal writes must leave for cancels;
    default 20 % of the write capacity. ``sleep`` (seconds) and ``clock_ns`` are injectable; a
    test can pass a sleep that advances a manual clock.

    Counters for benchmarks and tests: ``acquired`` (requests let through), ``waited_ns``
    (total time spent waiting), ``served`` (``(kind, priority)`` in the order they got tokens),
    ``spent`` (tokens per kind).

    ``account``: draw tokens from the account's shared budget instead of ``read``/``write``
    (module docstring); ``cancel_reserve`` is then the shared record's, and ``clock_ns`` must
    be ``time.monotonic_ns`` (the time base every process of the host shares).
    """

    def __init__(
        self,
        read: TokenBucket,
        write: TokenBucket,
        *,
        cancel_reserve: float | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        record: bool = False,
        account: SharedBudget | None = None,
    ) -> None:
        self.buckets: dict[Kind, TokenBucket] = {"read": read, "write": write}
        self.account = account
        self.tier: str | None = None
        """The tier name the buckets were last sized for (:meth:`for_tier`, :meth:`set_tier`)."""
        reserve = 0.2 * write.capacity if cancel_reserve is None else float(cancel_reserve)
        if reserve < 0 or reserve >= write.capacity:
            raise InputError(f"cancel_reserve must be in [0, write capacity), got {reserve!r}")
        self.cancel_reserve = reserve
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._queues: dict[Kind, _Queue] = {"read": _Queue(), "write": _Queue()}
        self.acquired = 0
        self.waited_ns = 0
        self.record = record
        self.spent: dict[Kind, float] = {"read": 0.0, "write": 0.0}
        self.served: list[tuple[Kind, Priority, float]] = []
        """With ``record=True``: ``(kind, priority, cost)`` in the order tokens were granted."""

    @classmethod
    def for_tier(
        cls,
        tier: str | TierLimits = "basic",
        *,
        safety: float = 0.9,
        cancel_reserve: float | None = None,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        record: bool = False,
        account: SharedBudget | None = None,
    ) -> RateLimiter:
        """Buckets for a Kalshi tier (``basic`` … ``prestige``, or explicit limits), scaled by
        ``safety`` in rate and capacity (0.9 leaves 10 % for skew between our send time and the
        server's receive time). With ``account`` the buckets only bound a single request's cost;
        the shared record (sized by its own ``safety``) is what meters."""
        limits = TIERS.get(tier.lower()) if isinstance(tier, str) else tier
        if limits is None:
            raise InputError(f"unknown rate tier {tier!r}; known: {', '.join(TIERS)}")
        if not 0 < safety <= 1:
            raise InputError(f"safety must be in (0, 1], got {safety!r}")
        now = clock_ns()
        read = TokenBucket(limits.read_per_s * safety, limits.read_capacity * safety, now)
        write = TokenBucket(limits.write_per_s * safety, limits.write_capacity * safety, now)
        lim = cls(read, write, cancel_reserve=cancel_reserve, clock_ns=clock_ns, sleep=sleep,
                  record=record, account=account)
        lim.tier = tier.lower() if isinstance(tier, str) else None
        return lim

    def set_tier(self, name: str, limits: TierLimits, *, safety: float = 0.9,
                 source: str = "exchange") -> None:
        """Resize to ``limits`` (e.g. read from ``GET /account/limits``), scaled by ``safety``:
        this process's buckets keep their tokens (clipped) and the shared budget, if any, is
        resized for every process of the account. ``source`` says where the tier came from."""
        if not 0 < safety <= 1:
            raise InputError(f"safety must be in (0, 1], got {safety!r}")
        now = self._clock_ns()
        for kind, rate, cap in (("read", limits.read_per_s, limits.read_capacity),
                                ("write", limits.write_per_s, limits.write_capacity)):
            b = self.buckets[kind]  # type: ignore[index]
            b._refill(now)
            b.rate_per_s, b.capacity = rate * safety, cap * safety
            b._tokens = min(b._tokens, b.capacity)
        self.cancel_reserve = min(self.cancel_reserve, 0.2 * self.buckets["write"].capacity)
        if self.account is not None:
            self.account.set_tier(name, (limits.read_per_s, limits.read_capacity),
                                  (limits.write_per_s, limits.write_capacity), source=source)
        self.tier = name

    def waiting(self, kind: Kind) -> tuple[int, int]:
        """``(cancels, normals)`` waiting on the bucket."""
        q = self._queues[kind]
        return len(q.cancels), len(q.normals)

    def penalize(self, kind: Kind) -> None:
        """The server answered 429: empty our mirror of its bucket (account-wide when shared)."""
        now = self._clock_ns()
        self.buckets[kind].drain(now)
        if self.account is not None:
            self.account.penalize(kind, now)

    def _keep(self, kind: Kind, ticket: _Ticket) -> float:
        if kind != "write" or ticket.priority == "cancel":
            return 0.0
        return max(0.0, min(self.cancel_reserve, self.buckets[kind].capacity - ticket.cost))

    async def acquire(self, kind: Kind, cost: float, *, priority: Priority = "normal") -> int:
        """Wait until ``cost`` tokens of the ``kind`` bucket are ours; returns ns waited.

        Cancelling the awaiting task leaves the queue cleanly (no tokens taken).
        """
        if kind not in self.buckets:
            raise InputError(f"kind must be 'read' or 'write', got {kind!r}")
        if priority not in ("cancel", "normal"):
            raise InputError(f"priority must be 'cancel' or 'normal', got {priority!r}")
        bucket, queue, account = self.buckets[kind], self._queues[kind], self.account
        ticket = _Ticket(float(cost), priority)
        if account is None:
            bucket._check(ticket.cost, 0.0)
        keep = self._keep(kind, ticket)
        start = self._clock_ns()
        now = start
        queue.add(ticket)
        cancel, registered, granted = priority == "cancel", False, False
        try:
            while True:
                if queue.head() is ticket:
                    if account is not None:
                        delay_ns = account.try_take(kind, ticket.cost, cancel=cancel,
                                                    since_ns=start, now_ns=now)
                        if delay_ns == 0:
                            granted = True
                            break
                        registered = True
                        delay_ns = min(delay_ns, int(SHARED_POLL_MAX_S * _NS_PER_S))
                    elif bucket.try_take(ticket.cost, now, keep=keep):
                        granted = True
                        break
                    else:
                        delay_ns = bucket.wait_ns(ticket.cost, now, keep=keep)
                    # Sleep for the refill, but wake early if a cancel jumps ahead of us.
                    await self._sleep_or_change(delay_ns, queue.event())
                else:
                    await queue.event().wait()
                now = self._clock_ns()
        finally:
            queue.remove(ticket)
            if account is not None and registered and not granted:
                account.leave(kind, cancel=cancel, since_ns=start)
        waited = max(0, now - start)
        self.acquired += 1
        self.waited_ns += waited
        self.spent[kind] += ticket.cost
        if self.record:
            self.served.append((kind, priority, ticket.cost))
        return waited

    async def _sleep_or_change(self, delay_ns: int, changed: asyncio.Event) -> None:
        if changed.is_set():
            return
        sleeper = asyncio.ensure_future(self._sleep(delay_ns / _NS_PER_S))
        waiter = asyncio.ensure_future(changed.wait())
        try:
            await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for f in (sleeper, waiter):
                if not f.done():
                    f.cancel()

    def __repr__(self) -> str:
        return (f"RateLimiter(read={self.buckets['read']!r}, write={self.buckets['write']!r}, "
                f"cancel_reserve={self.cancel_reserve:g})")
