"""One account, one rate budget: the pure state of a token bucket shared by every process that
trades on one Kalshi key (design.md "One account, one budget"; issue 10 item 1).

Kalshi meters REST per account (reference/kalshi.md §5): two token buckets, ``read`` and
``write``, whatever the number of processes. Each game runs in its own process, so the mirror
of the server's buckets must be **one** record that all of them charge — this module is that
record and its rules; :mod:`mmcore.venues.kalshi.account_file` keeps it in a locked file under
the data dir and :class:`~mmcore.venues.kalshi.ratelimit.RateLimiter` consults it before every
attempt.

Why one shared bucket and not a lease (a fixed share) per worker: a lease must be resized when a
worker starts or stops, and until every holder has shrunk the sum of the shares exceeds the
tier (or the newcomer waits); and an idle worker's share is wasted while a busy one queues. A
shared bucket charged under a lock is exactly the server's arithmetic, so the sum of what all
processes send can never exceed it, whatever the number of workers, and idle budget goes to
whoever needs it. What a lease gives for free — fairness and reclaiming a dead holder — the
record gives with per-process slots:

Rules of this file (all functions pure: the state, ``now_ns`` and liveness come in):

1. **Slots.** Each process holding a client claims a slot (pid, random nonce, label, heartbeat,
   usage counters). A slot is reclaimed when its pid is dead or its heartbeat is older than the
   timeout (a hung or vanished process); its waiting entries go with it. A live process that
   lost its slot (idle past the timeout) claims a new one at its next request. The heartbeat
   check is free and runs on every operation; the pid check costs two system calls per live
   slot (~15 µs each), so it runs at most every ``scan_every_ns`` for the whole account
   (:data:`LIVENESS_SCAN_NS` in the file layer: a dead process's waiting entry blocks the others
   for at most that long) and whenever a claim finds no free slot.
2. **Queue across processes.** A process whose request cannot be paid at once registers one
   waiting entry per bucket: ``(priority, since_ns, cost)``. A request may take tokens only if
   what is left still pays every other live slot's entry that ranks before it, ranking by
   ``(priority, since_ns, slot)``: **cancels first** (a cancel outranks every normal request,
   whenever it arrived), then FIFO. (Not "only when nobody ranks before it": on a starved box
   the head of the queue waits for a CPU before it can take its turn, and with 50 workers
   every turn cost that wait — bench/scale.py N=50 on 2 cores, 28 of 50 workers still starting
   after 150 s. Paying later requests only from the surplus delays no earlier one.)
3. **Cancel reserve.** A normal write may take tokens only while it leaves ``reserve`` tokens
   (capped so a full bucket always pays); cancels may spend them. So creates queued in ten
   processes leave room for a cancel from an eleventh, which goes out at once.
4. **No overdraft.** Tokens are taken only when held; nothing ever drives a bucket negative
   except :func:`penalize` clipping it to zero.
5. **429 is account-wide.** :func:`penalize` empties the shared bucket: the server said it is
   empty, for every process of the account.
6. **Tier.** Rates and capacities are the tier's scaled by ``safety`` (headroom for the time
   between our send and the server's receipt); :func:`set_tier` replaces them (read from
   ``GET /account/limits``) keeping the tokens held, clipped to the new capacity.

Units: times integer ns on one host-wide monotonic clock (``time.monotonic_ns``: the same in
every process of a Linux host), rates tokens per second, costs and tokens float tokens.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from mmcore.errors import InputError

__all__ = [
    "FREE",
    "HEARTBEAT_TIMEOUT_NS",
    "KINDS",
    "MAX_CONCURRENT_GAMES",
    "MAX_SLOTS",
    "OTHER_PROCESSES",
    "PRIO_CANCEL",
    "PRIO_NORMAL",
    "RECORD_SIZE",
    "AccountState",
    "Bucket",
    "BudgetFull",
    "Slot",
    "Waiter",
    "claim",
    "decode",
    "encode",
    "find",
    "leave",
    "new_state",
    "penalize",
    "reap",
    "set_tier",
    "try_take",
]

KINDS: tuple[str, str] = ("read", "write")
PRIO_CANCEL = 1
PRIO_NORMAL = 2
"""Waiting-entry priorities: lower is served first; 0 means not waiting."""
MAX_SLOTS = 256
"""Processes per account at once: the launcher's ``MM_MAX_CONCURRENT_GAMES`` (at most
:data:`MAX_CONCURRENT_GAMES`) plus :data:`OTHER_PROCESSES` for flows, tasks and CLIs. The record's
size grows with it (~160 bytes a slot), its per-operation cost with the *live* slots only (free
slots decode to one shared value and encode as zeros): ~0.1 ms with 50 live processes."""
MAX_CONCURRENT_GAMES = 200
"""The largest ``MM_MAX_CONCURRENT_GAMES`` settings accept (``Settings.max_concurrent_games``)."""
OTHER_PROCESSES = MAX_SLOTS - MAX_CONCURRENT_GAMES
"""Slots left for everything else on the key (odds pulls, ingest, the launcher, ``mm`` CLIs)."""
HEARTBEAT_TIMEOUT_NS = 10 * 1_000_000_000
"""A slot not touched for this long is reclaimed; a waiting process touches it at least every
:data:`~mmcore.venues.kalshi.ratelimit.SHARED_POLL_MAX_S`."""
DEFAULT_RESERVE_FRACTION = 0.2
_NS_PER_S = 1_000_000_000
_LABEL_BYTES = 40
_TIER_BYTES = 16
MAGIC = b"MMACCT01"


class BudgetFull(InputError):
    """Every slot of the account record is held by a live process."""


@dataclass(slots=True)
class Bucket:
    """One shared bucket: ``rate_per_s`` tokens/s up to ``capacity``; ``tokens`` at ``last_ns``."""

    rate_per_s: float
    capacity: float
    tokens: float
    last_ns: int

    def refill(self, now_ns: int) -> None:
        if now_ns > self.last_ns:
            self.tokens = min(self.capacity,
                              self.tokens + (now_ns - self.last_ns) * self.rate_per_s / _NS_PER_S)
            self.last_ns = now_ns


@dataclass(slots=True)
class Waiter:
    """A slot's waiting entry on one bucket (``prio`` 0: none)."""

    prio: int = 0
    since_ns: int = 0
    cost: float = 0.0


def _pair_f() -> list[float]:
    return [0.0, 0.0]


def _pair_i() -> list[int]:
    return [0, 0]


@dataclass(slots=True)
class Slot:
    """One process's place in the record; per-bucket lists are indexed like :data:`KINDS`."""

    pid: int = 0
    """0: free."""
    nonce: int = 0
    heartbeat_ns: int = 0
    label: str = ""
    waiting: list[Waiter] = field(default_factory=lambda: [Waiter(), Waiter()])
    tokens_used: list[float] = field(default_factory=_pair_f)
    granted: list[int] = field(default_factory=_pair_i)
    """Requests let through."""
    waited_ns: list[int] = field(default_factory=_pair_i)
    """Total time requests spent queued for tokens."""
    penalties: int = 0
    """429s this process reported."""

    @property
    def free(self) -> bool:
        return self.pid == 0


FREE = Slot()
"""Every free slot in a decoded record is this one value. Nothing edits a free slot (operations
replace slots whole: :func:`claim`, :func:`reap`), so sharing it is safe and decoding the
unused part of the table costs nothing."""


@dataclass(slots=True)
class AccountState:
    tier: str
    source: str
    """``exchange`` (read from ``GET /account/limits``) or ``setting`` (``MM_RATE_TIER``)."""
    tier_set_ns: int
    safety: float
    reserve_fraction: float
    buckets: list[Bucket]
    slots: list[Slot]
    reclaimed: int = 0
    """Slots reclaimed from dead or silent processes, ever."""
    scanned_ns: int = 0
    """When :func:`reap` last checked every slot's pid (rule 1)."""

    def reserve(self, kind: int, cost: float) -> float:
        """Tokens a normal request of ``cost`` must leave in bucket ``kind`` (0 on read)."""
        if KINDS[kind] != "write":
            return 0.0
        b = self.buckets[kind]
        return max(0.0, min(self.reserve_fraction * b.capacity, b.capacity - cost))


def _kind(kind: str) -> int:
    try:
        return KINDS.index(kind)
    except ValueError:
        raise InputError(f"kind must be 'read' or 'write', got {kind!r}") from None


def new_state(read: tuple[float, float], write: tuple[float, float], *, tier: str, source: str,
              safety: float, now_ns: int, reserve_fraction: float = DEFAULT_RESERVE_FRACTION,
              full: bool = True) -> AccountState:
    """A fresh record: ``read``/``write`` are the tier's (tokens/s, capacity), scaled here by
    ``safety``; buckets start full (or empty with ``full=False``: a record rebuilt after damage
    must not hand out a burst the server may not have)."""
    if not 0 < safety <= 1:
        raise InputError(f"safety must be in (0, 1], got {safety!r}")
    if not 0 <= reserve_fraction < 1:
        raise InputError(f"reserve_fraction must be in [0, 1), got {reserve_fraction!r}")
    buckets = []
    for rate, cap in (read, write):
        if not (rate > 0 and cap > 0 and math.isfinite(rate) and math.isfinite(cap)):
            raise InputError(f"bucket rate and capacity must be positive, got {rate!r}, {cap!r}")
        buckets.append(Bucket(rate * safety, cap * safety, cap * safety if full else 0.0, now_ns))
    return AccountState(tier, source, now_ns, safety, reserve_fraction, buckets,
                        [FREE] * MAX_SLOTS)


def set_tier(state: AccountState, read: tuple[float, float], write: tuple[float, float], *,
             tier: str, source: str, now_ns: int) -> None:
    """Replace the buckets' rates and capacities (unscaled tier values; ``state.safety`` is
    applied), keeping the tokens held (refilled to ``now_ns`` at the old rate, clipped)."""
    for b, (rate, cap) in zip(state.buckets, (read, write)):
        if not (rate > 0 and cap > 0):
            raise InputError(f"bucket rate and capacity must be positive, got {rate!r}, {cap!r}")
        b.refill(now_ns)
        b.rate_per_s, b.capacity = rate * state.safety, cap * state.safety
        b.tokens = min(b.tokens, b.capacity)
    state.tier, state.source, state.tier_set_ns = tier, source, now_ns


def find(state: AccountState, pid: int, nonce: int) -> int | None:
    """The slot held by (``pid``, ``nonce``), or None (never claimed, or reclaimed)."""
    for i, s in enumerate(state.slots):
        if s.pid == pid and s.nonce == nonce:
            return i
    return None


def claim(state: AccountState, pid: int, nonce: int, label: str, now_ns: int,
          carry: Slot | None = None) -> int:
    """Take a free slot for (``pid``, ``nonce``); ``carry`` restores the usage counters of a
    slot this process lost. Call :func:`reap` first. :class:`BudgetFull` when none is free."""
    if pid <= 0:
        raise InputError(f"pid must be positive, got {pid}")
    for i, s in enumerate(state.slots):
        if s.free:
            new = Slot(pid, nonce, now_ns, label[:_LABEL_BYTES])
            if carry is not None:
                new.tokens_used, new.granted = list(carry.tokens_used), list(carry.granted)
                new.waited_ns, new.penalties = list(carry.waited_ns), carry.penalties
            state.slots[i] = new
            return i
    raise BudgetFull(f"all {MAX_SLOTS} slots of the account's rate budget are held by live "
                     "processes")


def reap(state: AccountState, now_ns: int, alive: Callable[[int], bool],
         timeout_ns: int = HEARTBEAT_TIMEOUT_NS, *, scan_every_ns: int = 0) -> list[int]:
    """Free the slots silent for ``timeout_ns`` and, when the last pid scan is at least
    ``scan_every_ns`` old (0: always), the slots of dead pids (their waiting entries stop
    blocking everyone else); the freed indices."""
    scan = now_ns - state.scanned_ns >= scan_every_ns
    if scan:
        state.scanned_ns = now_ns
    freed = []
    for i, s in enumerate(state.slots):
        if s.pid and (now_ns - s.heartbeat_ns > timeout_ns or (scan and not alive(s.pid))):
            state.slots[i] = FREE
            freed.append(i)
    state.reclaimed += len(freed)
    return freed


def _ahead(state: AccountState, me: int, k: int, prio: int, since_ns: int) -> float:
    """Cost of the entries of other slots ranked before (``prio``, ``since_ns``, ``me``)."""
    total = 0.0
    rank = (prio, since_ns, me)
    for j, s in enumerate(state.slots):
        if s.pid and j != me:
            w = s.waiting[k]
            if w.prio and (w.prio, w.since_ns, j) < rank:
                total += w.cost
    return total


def try_take(state: AccountState, me: int, kind: str, cost: float, *, cancel: bool,
             since_ns: int, now_ns: int) -> int:
    """Charge ``cost`` tokens of ``kind`` to slot ``me`` if it is its turn (rules 2–4): 0 when
    taken; otherwise the request is (re)registered as waiting and the ns until it could next
    be paid (an estimate: earlier waiters first, then its own cost and reserve) is returned.
    ``since_ns`` is when the request started waiting (its FIFO place)."""
    k = _kind(kind)
    b, slot = state.buckets[k], state.slots[me]
    if slot.free:
        raise InputError(f"slot {me} is not claimed")
    if not (cost >= 0 and math.isfinite(cost)):
        raise InputError(f"cost must be a finite number >= 0, got {cost!r}")
    if cost > b.capacity:
        raise InputError(f"cost {cost:g} exceeds the account's {kind} bucket capacity "
                         f"{b.capacity:g}: it can never be paid (split the batch)")
    prio = PRIO_CANCEL if cancel else PRIO_NORMAL
    keep = 0.0 if cancel else state.reserve(k, cost)
    b.refill(now_ns)
    slot.heartbeat_ns = now_ns
    ahead = _ahead(state, me, k, prio, since_ns)
    if b.tokens + 1e-9 >= ahead + cost + keep:
        b.tokens = max(0.0, b.tokens - cost)
        slot.waiting[k] = Waiter()
        slot.tokens_used[k] += cost
        slot.granted[k] += 1
        slot.waited_ns[k] += max(0, now_ns - since_ns)
        return 0
    slot.waiting[k] = Waiter(prio, since_ns, cost)
    missing = ahead + cost + keep - b.tokens
    return max(1, math.ceil(missing * _NS_PER_S / b.rate_per_s))


def leave(state: AccountState, me: int, kind: str, *, cancel: bool, since_ns: int) -> None:
    """Drop slot ``me``'s waiting entry on ``kind`` if it is this request's (a request given up
    before it was paid); another request's entry is left alone."""
    slot = state.slots[me]
    w = slot.waiting[_kind(kind)]
    if w.prio == (PRIO_CANCEL if cancel else PRIO_NORMAL) and w.since_ns == since_ns:
        slot.waiting[_kind(kind)] = Waiter()


def penalize(state: AccountState, me: int | None, kind: str, now_ns: int) -> None:
    """A 429 came back on ``kind``: the server's bucket is empty, so the shared one is too."""
    b = state.buckets[_kind(kind)]
    b.refill(now_ns)
    b.tokens = min(b.tokens, 0.0)
    if me is not None and not state.slots[me].free:
        state.slots[me].penalties += 1


# --- the record's bytes ---------------------------------------------------------------------------

_HEADER = struct.Struct(f"<8sI{_TIER_BYTES}s16sqddqq")
_BUCKET = struct.Struct("<dddq")
_SLOT = struct.Struct(f"<qqq{_LABEL_BYTES}s" + "iqd" * len(KINDS) + "ddqqqqq")
"""pid, nonce, heartbeat, label; a waiter (prio, since, cost) per bucket; tokens used ×2,
granted ×2, waited ×2, penalties."""
_PID = struct.Struct("<q")
_FREE_BYTES = bytes(_SLOT.size)
_SLOTS_AT = _HEADER.size + 2 * _BUCKET.size
RECORD_SIZE = _SLOTS_AT + MAX_SLOTS * _SLOT.size
VERSION = 2
"""2: 256 slots (was 48) and the header's ``scanned_ns``."""


def encode(state: AccountState) -> bytes:
    """The fixed-size record (little-endian structs; :data:`RECORD_SIZE` bytes)."""
    parts = [_HEADER.pack(MAGIC, VERSION, state.tier.encode()[:_TIER_BYTES],
                          state.source.encode()[:16], state.tier_set_ns, state.safety,
                          state.reserve_fraction, state.reclaimed, state.scanned_ns)]
    parts += [_BUCKET.pack(b.rate_per_s, b.capacity, b.tokens, b.last_ns) for b in state.buckets]
    pack, free = _SLOT.pack, _FREE_BYTES
    for s in state.slots:
        if not s.pid:
            parts.append(free)
            continue
        (r, w) = s.waiting
        parts.append(pack(s.pid, s.nonce, s.heartbeat_ns, s.label.encode()[:_LABEL_BYTES],
                          r.prio, r.since_ns, r.cost, w.prio, w.since_ns, w.cost,
                          *s.tokens_used, *s.granted, *s.waited_ns, s.penalties))
    return b"".join(parts)


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("utf-8", "replace")


def decode(raw: bytes) -> AccountState | None:
    """The record, or None when ``raw`` is not one (empty, torn, another version)."""
    if len(raw) < RECORD_SIZE:
        return None
    (magic, version, tier, source, set_ns, safety, reserve, reclaimed,
     scanned) = _HEADER.unpack_from(raw, 0)
    if magic != MAGIC or version != VERSION:
        return None
    off = _HEADER.size
    buckets = []
    for _ in KINDS:
        buckets.append(Bucket(*_BUCKET.unpack_from(raw, off)))
        off += _BUCKET.size
    slots = [FREE] * MAX_SLOTS
    unpack, size, pid_at = _SLOT.unpack_from, _SLOT.size, _PID.unpack_from
    for i in range(MAX_SLOTS):
        at = _SLOTS_AT + i * size
        if not pid_at(raw, at)[0]:
            continue
        (pid, nonce, hb, label, p0, s0, c0, p1, s1, c1,
         u0, u1, g0, g1, w0, w1, pen) = unpack(raw, at)
        slots[i] = Slot(pid, nonce, hb, _text(label), [Waiter(p0, s0, c0), Waiter(p1, s1, c1)],
                        [u0, u1], [g0, g1], [w0, w1], pen)
    return AccountState(_text(tier), _text(source), set_ns, safety, reserve, buckets, slots,
                        reclaimed, scanned)
