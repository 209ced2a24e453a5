"""Pre-signed Kalshi auth headers: the RSA work of the order hot path, done ahead of time.

Kalshi authenticates a request by an RSA-PSS signature over ``timestamp_ms + METHOD + path``
(:mod:`mmcore.venues.kalshi.auth`); the body and the query are not signed. So the headers of a
request whose method and path are known in advance can be computed before the request exists,
and the hot path only takes a prepared entry (microseconds) instead of signing (one RSA-2048 PSS
signature ≈ 0.7–1 ms of CPU). :class:`RequestPresigner` owns the
:class:`~mmcore.venues.kalshi.auth.PresignedPool` s — one per (method, signed path) — and hands
their headers to the transport (:class:`~mmcore.venues.kalshi.rest.KalshiRest`), which signs live
whenever it gets none (a path without a pool, or a pool drained or not yet filled).

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
  recently used evicted; taking a header counts as a use. A new pool is empty until the next
  refill — nothing is ever signed on the hot path to fill a pool.

**Refills** (:meth:`RequestPresigner.refill`, about once a second from an idle timer — the worker
driver does it) sign one signature at a time and yield to the event loop after each, so a refill
never holds the loop for more than one RSA operation; concurrent refills share one run.

Pool sizes and CPU cost. Each pool holds signatures whose timestamps lie ``step_ms`` apart and are
used for at most ``lifetime_ms`` (5 000 ms by default); kept full, a pool costs roughly
``1000 / step_ms`` signatures per second once warm, used or not:

- the three fixed paths: ``size`` 30 at ``step_ms`` 200 → 5 signatures/s each, **15/s** in all;
  up to 25 usable at once per path (bursts);
- per order, at ``order_step_ms`` 1000: the amend pool (``amend_size`` 6) ≈ 1 signature/s with 5
  usable once warm, the cancel pool (``cancel_size`` 2) ≈ 1/3 per s with always one usable:
  ≈ 1.33/s per order, **≈ 21/s** at the cap of 16 orders (``order_cap``; 0 disables per-order
  pools). An order's amends beyond ~1 per second (plus the 5 held) sign live.

So the default steady state is at most ~36 signatures/s, ~3 % of one core, spent off the hot path
in exchange for ~1 ms less per amend, cancel or create on it.

Units: signature timestamps and pool lifetimes/steps in **ms** (Unix time, as Kalshi signs them);
the injected clock returns **ns** (wall clock). Not thread-safe: one presigner per event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable

from mmcore.errors import InputError
from mmcore.venues.kalshi.auth import PresignedPool, Signer

__all__ = [
    "PRESIGN_ORDER_CAP", "PRESIGN_ORDER_STEP_MS", "PRESIGN_AMEND_SIZE", "PRESIGN_CANCEL_SIZE",
    "RequestPresigner",
]

log = logging.getLogger(__name__)

PRESIGN_ORDER_CAP = 16
"""Orders with per-order pools at most (least recently used evicted)."""
PRESIGN_ORDER_STEP_MS = 1_000
"""Timestamp spacing of the per-order pools, ms."""
PRESIGN_AMEND_SIZE = 6
PRESIGN_CANCEL_SIZE = 2


class RequestPresigner:
    """The pre-signed pools of one client (concept and costs in the module docstring).

    ``signer`` None keeps no pools at all (every request is then signed live by the caller).
    ``fixed_paths``: (method, signed path) pairs that get a pool of ``size`` at ``step_ms`` now.
    ``order_paths``: order id → (cancel path, amend path) exactly as the transport will sign them
    (full path from the host root, no query); it may raise :class:`InputError` for an id that
    makes no path. ``clock_ns``: wall clock in ns (pool timestamps are its value // 1_000_000).
    ``lifetime_ms`` bounds every pool; per-order pools step ``order_step_ms`` with ``amend_size``
    and ``cancel_size`` entries, for at most ``order_cap`` orders (0: no per-order pools).
    """

    def __init__(
        self,
        signer: Signer | None,
        fixed_paths: Iterable[tuple[str, str]],
        order_paths: Callable[[str], tuple[str, str]],
        *,
        clock_ns: Callable[[], int],
        lifetime_ms: int,
        step_ms: int,
        size: int,
        order_cap: int = PRESIGN_ORDER_CAP,
        order_step_ms: int = PRESIGN_ORDER_STEP_MS,
        amend_size: int = PRESIGN_AMEND_SIZE,
        cancel_size: int = PRESIGN_CANCEL_SIZE,
    ) -> None:
        if type(order_cap) is not int or order_cap < 0:
            raise InputError(f"presign_order_cap must be an int >= 0, got {order_cap!r}")
        self._signer = signer
        self._order_paths_of = order_paths
        self._clock_ns = clock_ns
        self._pools: dict[tuple[str, str], PresignedPool] = {}
        if signer is not None:
            for method, path in fixed_paths:
                self._pools[(method, path)] = PresignedPool(
                    signer, method, path, lifetime_ms=lifetime_ms, size=size, step_ms=step_ms)
        # per-order pools: order id -> (amend pool, cancel pool), least recently used first;
        # _order_paths maps (method, signed path) -> (order id, pool) for take()
        self._per_order = signer is not None and order_cap > 0
        self._order_pools: OrderedDict[str, tuple[PresignedPool, PresignedPool]] = OrderedDict()
        self._order_paths: dict[tuple[str, str], tuple[str, PresignedPool]] = {}
        self.order_cap = order_cap
        self._order_pool_kw = dict(lifetime_ms=lifetime_ms, step_ms=order_step_ms)
        self._amend_size, self._cancel_size = amend_size, cancel_size
        if signer is not None and self._per_order:  # refuse bad sizes now, not at an ack
            for n in (amend_size, cancel_size):
                PresignedPool(signer, "POST", "/x", size=n, **self._order_pool_kw)
        self._refilling: asyncio.Event | None = None

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
        per-order path marks its order most recently used, header or not. No RSA work."""
        key = (method, path)
        pool = self._pools.get(key)
        if pool is None and (entry := self._order_paths.get(key)) is not None:
            order_id, pool = entry
            self._order_pools.move_to_end(order_id)
        return None if pool is None else pool.take(now_ms)

    # --- per-order pools --------------------------------------------------------------------

    def register(self, order_id: str) -> bool:
        """Keep amend and cancel pools for ``order_id``: mark it most recently used (making its
        pools, empty, when new) and evict the least recently used orders over ``order_cap``.
        Signs nothing. False (nothing kept) without per-order pools; :class:`InputError` from
        ``order_paths`` for an id that makes no path."""
        if not self._per_order:
            return False
        if order_id in self._order_pools:
            self._order_pools.move_to_end(order_id)
            return True
        assert self._signer is not None
        cancel_path, amend_path = self._order_paths_of(order_id)
        amend = PresignedPool(self._signer, "POST", amend_path, size=self._amend_size,
                              **self._order_pool_kw)
        cancel = PresignedPool(self._signer, "DELETE", cancel_path, size=self._cancel_size,
                               **self._order_pool_kw)
        self._order_pools[order_id] = (amend, cancel)
        self._order_paths[("POST", amend_path)] = (order_id, amend)
        self._order_paths[("DELETE", cancel_path)] = (order_id, cancel)
        while len(self._order_pools) > self.order_cap:
            self.forget(next(iter(self._order_pools)))
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
        """Top up every pool; the number of signatures made.

        Signs **one signature at a time** and yields to the event loop (``asyncio.sleep(0)``)
        after each, so a refill never holds the loop for more than one RSA operation (~1 ms):
        a book update arriving mid-refill waits at most that long. Fixed paths first, then the
        per-order pools, most recently used first; pools registered while it runs are filled
        too, pools dropped while it runs are skipped. A call made while another refill is
        running waits for that one and returns 0 (the signatures are counted by the first)."""
        if self._refilling is not None:
            await self._refilling.wait()
            return 0
        self._refilling = done = asyncio.Event()
        try:
            made = 0
            for _ in range(3):  # a pass that signs nothing ends it; 3 bound the rare re-runs
                this_pass = 0
                pools = list(self._pools.values()) + [
                    p for pair in reversed(self._order_pools.values()) for p in pair]
                for pool in pools:
                    while self._holds(pool):
                        n = pool.refill(self._clock_ns() // 1_000_000, max_new=1)
                        if not n:
                            break
                        this_pass += n
                        await asyncio.sleep(0)  # one signature, then let the loop run
                made += this_pass
                if not this_pass:
                    break
            return made
        finally:
            self._refilling = None
            done.set()

    def _holds(self, pool: PresignedPool) -> bool:
        """Is ``pool`` still one of ours (a per-order pool may be dropped during a refill)?"""
        key = (pool.method, pool.path)
        return self._pools.get(key) is pool or self._order_paths.get(key, ("", None))[1] is pool
