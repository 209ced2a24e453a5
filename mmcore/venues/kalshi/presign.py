"""Pre-signed Kalshi auth headers: the RSA work of the order hot path, done ahead of time.

Kalshi authenticates a request by an RSA-PSS signature over ``timestamp_ms + METHOD + path``
(:mod:`mmcore.venues.kalshi.auth`); the body and the query are not signed. So the headers of a
request whose method and path are known in advance can be computed before the request exists,
and the hot path only takes a prepared entry (microseconds) instead of signing (one RSA-2048 PSS
signature ≈ 0.3–1 ms of CPU). :class:`RequestPresigner` owns one pool per (method, signed path)
and hands their headers to the transport (:class:`~mmcore.venues.kalshi.rest.KalshiRest`), which
signs live whenever it gets none (a path without a pool, or a pool drained).

Which requests:

- **Fixed paths** — batch create, batch cancel and single create
  (:data:`~mmcore.venues.kalshi.rest.HOT_PATHS`): one pool each, made with the presigner.
- **Per order** — amend (``POST …/orders/{id}/amend``) and single cancel (``DELETE
  …/orders/{id}``) carry the order id in their path, so each order we know rests gets an amend
  pool and a cancel pool. The transport registers an order when a create (single or batch) acks
  it resting, touches it when an amend of it returns, registers it on
  :meth:`KalshiRest.presign_order` (orders adopted at reconcile), and drops it when a cancel of it
  succeeds (or finds it gone), when an amend or decrease leaves nothing, or on
  :meth:`KalshiRest.forget_order` (the order reported done). At most ``order_cap`` orders, least
  recently used evicted; taking a header counts as a use.

**Ready entries, replaced as they are used.** An entry is stamped with the wall clock when it is
signed (each pool's stamps strictly increase, so no two requests ever carry the same timestamp),
so it is usable at once and for ``lifetime_ms``. (The earlier design stamped entries on a future
grid — one per second per order — so an order amended 25 times a second found a usable header
about once a second: the bench's "presigned 6/161".) Two things refill the pools, both off the
hot path:

- **on demand**: a take (or a new order's registration) schedules a background refill for the
  next loop turn — after the write that took the header has been handed to the socket;
- **periodically** (:meth:`RequestPresigner.refill`, about once a second from the worker
  driver): entries older than ``lifetime_ms − refresh_ms`` are replaced before they expire, so an
  idle order still finds a fresh header.

The RSA work runs in one worker thread (the ``cryptography`` signer releases the GIL while it
signs), so a refill never holds the event loop: a book update arriving mid-refill is handled at
once. Pool sizes and CPU cost, defaults: fixed paths ``size`` 6 each, per order ``amend_size`` 2
(one entry until the order's first amend) and ``cancel_size`` 1; an idle pool re-signs its entries
every ``lifetime_ms − refresh_ms`` (3.5 s) — ≈ 5 signatures/s for the fixed paths and ≈ 0.6–0.9/s
per order (≤ 14/s at the cap of 16 orders), and in use one signature per request taken: the CPU
of live signing, spent in a thread.

Units: signature timestamps and pool lifetimes in **ms** (Unix time, as Kalshi signs them); the
injected clock returns **ns** (wall clock). Not thread-safe: one presigner per event loop (only
the signing itself runs in the presigner's thread).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from mmcore.errors import InputError
from mmcore.venues.kalshi.auth import Signer, signing_message, strip_query

__all__ = [
    "PRESIGN_ORDER_CAP", "PRESIGN_SIZE", "PRESIGN_AMEND_SIZE", "PRESIGN_CANCEL_SIZE",
    "PRESIGN_LIFETIME_MS", "PRESIGN_REFRESH_MS", "ReadyPool", "RequestPresigner",
]

log = logging.getLogger(__name__)

PRESIGN_ORDER_CAP = 16
"""Orders with per-order pools at most (least recently used evicted)."""
PRESIGN_SIZE = 6
"""Entries per fixed hot path (a burst of creates beyond it signs live)."""
PRESIGN_AMEND_SIZE = 2
PRESIGN_CANCEL_SIZE = 1
PRESIGN_LIFETIME_MS = 5_000
"""How long an entry may be used after its timestamp, ms (the local exchange accepts 30 s;
Kalshi's window is undocumented: a few seconds is the safe choice)."""
KICK_DELAY_S = 0.005
"""A take or a registration refills its pool this long after (seconds)."""
PRESIGN_REFRESH_MS = 1_500
"""Entries older than ``lifetime_ms − refresh_ms`` are replaced at a refill (longer than the
driver's 1 s refill period, so an idle pool never runs dry between refills), ms."""


class ReadyPool:
    """Signed headers for one ``method path``, stamped when signed (freshness rules in the
    module docstring). Pure bookkeeping: the signing is done by :class:`RequestPresigner`.

    Holds at most ``size`` entries; :meth:`take` hands out the freshest entry with
    ``now_ms − lifetime_ms ≤ stamp ≤ now_ms`` (never a future-dated one) and consumes it.
    """

    __slots__ = ("method", "path", "size", "lifetime_ms", "target", "_stamps", "_headers",
                 "_last")

    def __init__(self, method: str, path: str, *, size: int, lifetime_ms: int,
                 lazy: bool = False) -> None:
        for name, value in (("size", size), ("lifetime_ms", lifetime_ms)):
            if type(value) is not int or value <= 0:
                raise InputError(f"{name} must be a positive int, got {value!r}")
        signing_message(0, method, path)  # validates method and path early
        self.method = method.upper()
        self.path = strip_query(path)
        self.size = size
        self.lifetime_ms = lifetime_ms
        self.target = 1 if lazy else size
        """Entries a refill keeps: a ``lazy`` pool keeps one until its first take, then ``size``
        (an order that is only ever cancelled costs no amend signatures beyond one)."""
        self._stamps: list[int] = []  # ascending
        self._headers: dict[int, dict[str, str]] = {}
        self._last = -1  # highest stamp ever issued: stamps never repeat

    def __len__(self) -> int:
        return len(self._stamps)

    def available(self, now_ms: int) -> int:
        """Entries :meth:`take` could hand out at ``now_ms``."""
        lo = bisect.bisect_left(self._stamps, now_ms - self.lifetime_ms)
        return max(0, bisect.bisect_right(self._stamps, now_ms) - lo)

    def _expire(self, now_ms: int) -> None:
        cut = bisect.bisect_left(self._stamps, now_ms - self.lifetime_ms)
        for ts in self._stamps[:cut]:
            del self._headers[ts]
        del self._stamps[:cut]

    def take(self, now_ms: int) -> dict[str, str] | None:
        """Headers for one request at ``now_ms`` with no RSA work, or None."""
        self._expire(now_ms)
        self.target = self.size
        i = bisect.bisect_right(self._stamps, now_ms) - 1
        if i < 0:
            return None
        return self._headers.pop(self._stamps.pop(i))

    def wanted(self, now_ms: int, refresh_ms: int) -> int:
        """How many new entries a refill at ``now_ms`` should sign: ``size`` minus the entries
        that will still be usable ``refresh_ms`` from now."""
        self._expire(now_ms)
        fresh = len(self._stamps) - bisect.bisect_left(
            self._stamps, now_ms - self.lifetime_ms + refresh_ms)
        return max(0, self.target - fresh)

    def next_stamp(self, now_ms: int) -> int:
        """The timestamp for the next entry: ``now_ms``, or just after the last one issued."""
        self._last = max(now_ms, self._last + 1)
        return self._last

    def put(self, stamp: int, headers: dict[str, str]) -> None:
        """Add a signed entry; over ``size`` the oldest is dropped."""
        bisect.insort(self._stamps, stamp)
        self._headers[stamp] = headers
        while len(self._stamps) > self.size:
            del self._headers[self._stamps.pop(0)]

    def __repr__(self) -> str:
        return (f"ReadyPool({self.method} {self.path}, held={len(self._stamps)}/{self.size}, "
                f"lifetime_ms={self.lifetime_ms})")


class RequestPresigner:
    """The pre-signed pools of one client (concept and costs in the module docstring).

    ``signer`` None keeps no pools at all (every request is then signed live by the caller).
    ``fixed_paths``: (method, signed path) pairs that get a pool of ``size`` now.
    ``order_paths``: order id → (cancel path, amend path) exactly as the transport will sign them
    (full path from the host root, no query); it may raise :class:`InputError` for an id that
    makes no path. ``clock_ns``: wall clock in ns (stamps are its value // 1_000_000).
    ``lifetime_ms`` bounds every entry's use, ``refresh_ms`` how early a refill replaces an
    aging one; per-order pools hold ``amend_size`` and ``cancel_size`` entries, for at most
    ``order_cap`` orders (0: no per-order pools). ``background`` (default True): takes and
    registrations schedule a refill on the running loop (off the hot path); False leaves every
    refill to :meth:`refill` calls. Counter: ``signed`` signatures made.
    """

    def __init__(
        self,
        signer: Signer | None,
        fixed_paths: Iterable[tuple[str, str]],
        order_paths: Callable[[str], tuple[str, str]],
        *,
        clock_ns: Callable[[], int],
        lifetime_ms: int = PRESIGN_LIFETIME_MS,
        refresh_ms: int = PRESIGN_REFRESH_MS,
        size: int = PRESIGN_SIZE,
        order_cap: int = PRESIGN_ORDER_CAP,
        amend_size: int = PRESIGN_AMEND_SIZE,
        cancel_size: int = PRESIGN_CANCEL_SIZE,
        background: bool = True,
    ) -> None:
        if type(order_cap) is not int or order_cap < 0:
            raise InputError(f"presign_order_cap must be an int >= 0, got {order_cap!r}")
        if type(refresh_ms) is not int or not 0 <= refresh_ms < lifetime_ms:
            raise InputError(f"presign refresh_ms must be an int in [0, lifetime_ms), "
                             f"got {refresh_ms!r}")
        self._signer = signer
        self._order_paths_of = order_paths
        self._clock_ns = clock_ns
        self._lifetime_ms, self.refresh_ms = lifetime_ms, refresh_ms
        self._pools: dict[tuple[str, str], ReadyPool] = {}
        if signer is not None:
            for method, path in fixed_paths:
                self._pools[(method, path)] = ReadyPool(method, path, size=size,
                                                        lifetime_ms=lifetime_ms)
        # per-order pools: order id -> (amend pool, cancel pool), least recently used first;
        # _order_paths maps (method, signed path) -> (order id, pool) for take()
        self._per_order = signer is not None and order_cap > 0
        self._order_pools: OrderedDict[str, tuple[ReadyPool, ReadyPool]] = OrderedDict()
        self._order_paths: dict[tuple[str, str], tuple[str, ReadyPool]] = {}
        self.order_cap = order_cap
        self._amend_size, self._cancel_size = amend_size, cancel_size
        if signer is not None and self._per_order:  # refuse bad sizes now, not at an ack
            for n in (amend_size, cancel_size):
                ReadyPool("POST", "/x", size=n, lifetime_ms=lifetime_ms)
        self.background = background
        self._refilling: asyncio.Event | None = None
        self._again = False
        self._kicked = False
        self._executor: ThreadPoolExecutor | None = None
        self.signed = 0

    @property
    def has_pools(self) -> bool:
        """True when this presigner pre-signs at all (then :meth:`refill` has work to do)."""
        return bool(self._pools) or self._per_order

    @property
    def orders(self) -> list[str]:
        """Order ids with per-order pools, least recently used first."""
        return list(self._order_pools)

    def available(self) -> dict[str, int]:
        """Usable entries now, per ``"METHOD path"`` (fixed paths, then per-order)."""
        now_ms = self._clock_ns() // 1_000_000
        out = {f"{m} {p}": pool.available(now_ms) for (m, p), pool in self._pools.items()}
        for (m, p), (_, pool) in self._order_paths.items():
            out[f"{m} {p}"] = pool.available(now_ms)
        return out

    # --- the hot path -----------------------------------------------------------------------

    def take(self, method: str, path: str, now_ms: int) -> dict[str, str] | None:
        """Pre-signed headers for ``method path`` (the signed path) at ``now_ms`` (Unix ms), or
        None when the path has no pool or its pool has no usable entry — sign live then. A
        per-order path marks its order most recently used, header or not. No RSA work: the
        pool's replacement is signed by a background refill scheduled for the next loop turn."""
        key = (method, path)
        pool = self._pools.get(key)
        if pool is None and (entry := self._order_paths.get(key)) is not None:
            order_id, pool = entry
            self._order_pools.move_to_end(order_id)
        if pool is None:
            return None
        self._kick()
        return pool.take(now_ms)

    def _kick(self) -> None:
        """Schedule a background refill :data:`KICK_DELAY_S` from now (cheap: one
        ``call_later``): after the write that took the header, and after what usually follows
        it at once (a cancel's reply and the create it unblocks), so the signing thread does
        not compete with them for the CPU."""
        if not self.background or self._kicked:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._kicked = True
        loop.call_later(KICK_DELAY_S, self._start_background)

    def _start_background(self) -> None:
        self._kicked = False
        if self._refilling is not None:
            self._again = True  # the running refill makes one more pass
            return
        task = asyncio.ensure_future(self.refill())
        task.add_done_callback(_log_failure)

    # --- per-order pools --------------------------------------------------------------------

    def register(self, order_id: str) -> bool:
        """Keep amend and cancel pools for ``order_id``: mark it most recently used (making its
        pools, empty, when new: a background refill fills them) and evict the least recently
        used orders over ``order_cap``. Signs nothing. False (nothing kept) without per-order
        pools; :class:`InputError` from ``order_paths`` for an id that makes no path."""
        if not self._per_order:
            return False
        if order_id in self._order_pools:
            self._order_pools.move_to_end(order_id)
            return True
        cancel_path, amend_path = self._order_paths_of(order_id)
        amend = ReadyPool("POST", amend_path, size=self._amend_size,
                          lifetime_ms=self._lifetime_ms, lazy=True)
        cancel = ReadyPool("DELETE", cancel_path, size=self._cancel_size,
                           lifetime_ms=self._lifetime_ms)
        self._order_pools[order_id] = (amend, cancel)
        self._order_paths[("POST", amend_path)] = (order_id, amend)
        self._order_paths[("DELETE", cancel_path)] = (order_id, cancel)
        while len(self._order_pools) > self.order_cap:
            self.forget(next(iter(self._order_pools)))
        self._kick()
        return True

    def forget(self, order_id: str) -> bool:
        """Drop ``order_id``'s pools (the order is done); True if it had any."""
        pools = self._order_pools.pop(order_id, None)
        if pools is None:
            return False
        for pool in pools:
            self._order_paths.pop((pool.method, pool.path), None)
        return True

    def track(self, order_id: str | None, remaining: int | None) -> None:
        """After a write's reply: keep pools for an order that rests, drop them for one that
        does not (``remaining`` 0, centi-contracts; None = unknown, kept). Never raises (an odd
        id only means no pools)."""
        if not order_id or not self._per_order:
            return
        if remaining is not None and remaining <= 0:
            self.forget(order_id)
            return
        try:
            self.register(order_id)
        except InputError as exc:
            log.debug("no pre-signed pools for order %r: %s", order_id, exc)

    # --- refills ----------------------------------------------------------------------------

    async def refill(self) -> int:
        """Top up every pool and replace aging entries; the number of signatures made.

        The signatures of a pass are made in the presigner's worker thread (one RSA operation
        releases the GIL), so the event loop keeps running while they are computed; their
        stamps are taken on the loop when the pass starts. Fixed paths first, then the
        per-order pools, most recently used first; pools registered while it runs are filled by
        a further pass, pools dropped while it runs are skipped. A call made while another
        refill is running waits for that one and returns 0 (the signatures are counted by the
        first)."""
        if self._refilling is not None:
            self._again = True
            await self._refilling.wait()
            return 0
        if self._signer is None:
            return 0
        self._refilling = done = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            made = 0
            for _ in range(4):  # a pass that signs nothing ends it; 4 bound the re-runs
                self._again = False
                now_ms = self._clock_ns() // 1_000_000
                pools = list(self._pools.values()) + [
                    p for pair in reversed(self._order_pools.values()) for p in pair]
                jobs = [(pool, pool.next_stamp(now_ms)) for pool in pools
                        for _ in range(pool.wanted(now_ms, self.refresh_ms))]
                if not jobs:
                    break
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="presign")
                signer = self._signer
                signed = await loop.run_in_executor(self._executor, _sign_all, signer, [
                    (pool.method, pool.path, ts) for pool, ts in jobs])
                for (pool, ts), headers in zip(jobs, signed):
                    if self._holds(pool):
                        pool.put(ts, headers)
                made += len(jobs)
                self.signed += len(jobs)
            return made
        finally:
            self._refilling = None
            done.set()

    def close(self) -> None:
        """Stop the signing thread (a later refill starts a new one)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _holds(self, pool: ReadyPool) -> bool:
        """Is ``pool`` still one of ours (a per-order pool may be dropped during a refill)?"""
        key = (pool.method, pool.path)
        return self._pools.get(key) is pool or self._order_paths.get(key, ("", None))[1] is pool


def _sign_all(signer: Signer, jobs: list[tuple[str, str, int]]) -> list[dict[str, str]]:
    """In the presigner's thread: the headers of each (method, path, stamp)."""
    return [signer.headers(method, path, timestamp_ms=ts) for method, path, ts in jobs]


def _log_failure(task: asyncio.Future[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background refill of pre-signed headers failed: %r", task.exception())
