"""The account's shared rate budget kept in a file: the thin I/O around
:mod:`mmcore.venues.kalshi.account_budget` (whose docstring says why one shared bucket and what
its rules are).

One file per (venue, API key) under ``<data_dir>/account/`` (:func:`budget_path`; the key id is
hashed into the name), mode 0600, holding one fixed-size record
(:data:`~mmcore.venues.kalshi.account_budget.RECORD_SIZE` bytes, a few KB). Every operation is
``flock(LOCK_EX)`` → read the record → reclaim silent slots (and, at most every
:data:`LIVENESS_SCAN_NS` for the whole account, dead pids) → find (or claim) this process's
slot → the pure operation → write the record → unlock. Measured on this machine with 50 live
processes in the 256-slot record (``bench/account_budget.py --op-cost``): ~0.1 ms of CPU per
operation; before (48 slots, every slot decoded and every pid checked on every operation) it
was ~0.8 ms — under one exclusive lock, so 50 starting workers queued on it.

- Liveness: a pid is alive when ``kill(pid, 0)`` finds it and ``/proc/<pid>/stat`` does not show
  a zombie. The record is for processes on one host (pids, and ``time.monotonic_ns`` as the time
  base, are per host); beyond one machine the same record would live behind a small lock
  service (design.md §6).
- A forked child gets its own file description and slot (``flock`` locks belong to the open
  file description, which a fork shares).
- A record that does not decode (torn, another version) is rebuilt with **empty** buckets (the
  server's may be empty too) and logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from mmcore.venues.kalshi import account_budget as ab

__all__ = ["LIVENESS_SCAN_NS", "LOCK_RETRY_NS", "AccountBudgetFile", "budget_path", "pid_alive", "read_record"]

log = logging.getLogger(__name__)

LOCK_RETRY_NS = 1_000_000
"""What :meth:`AccountBudgetFile.try_take` first answers when another process holds the record's
lock: "ask again in 1 ms" (doubling with each busy answer in a row, up to
:data:`LOCK_RETRY_MAX_NS`) — the rate limiter then sleeps on the event loop instead of the loop
blocking in ``flock``. Why: a blocking ``flock`` hands the lock to the next *sleeping* waiter,
which on a starved box waits for a CPU before it can run its 0.15 ms operation; with 50
workers queued every hand-off cost that wait and the queue never drained (bench/scale.py, N=50
on 2 cores: up to 4.9 s in one wait, 39 of 50 workers never finished starting). A process that
tries without waiting takes the lock only when it is running, so hand-offs cost nothing; the
token queue's fairness lives in the record (rule 2 of :mod:`account_budget`), not in the lock.
After :data:`LOCK_BLOCK_AFTER` busy answers in a row it waits in ``flock`` (progress is
certain)."""
LOCK_RETRY_MAX_NS = 64_000_000
LOCK_BLOCK_AFTER = 100
LIVENESS_SCAN_NS = 500_000_000
"""How often (for the whole account) the record's pids are checked for dead processes: a
killed process's waiting entry blocks the others for at most this long (before: every
operation paid two system calls per live slot)."""


def budget_path(data_dir: Path, venue: str, key_id: str) -> Path:
    """Where the budget of ``key_id`` on ``venue`` lives (the id hashed, not spelled out)."""
    digest = hashlib.sha256(key_id.encode()).hexdigest()[:16]
    return Path(data_dir) / "account" / f"{venue}-{digest}.budget"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process on this host."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


class AccountBudgetFile:
    """This process's handle on the account's shared budget (implements
    :class:`~mmcore.venues.kalshi.ratelimit.SharedBudget`).

    ``read`` / ``write`` are the tier's unscaled (tokens/s, capacity) used when the file is
    created; an existing record keeps its tier (the last one read from the exchange or set) until
    :meth:`set_tier`. ``label`` names this process in the record (e.g. the game's event ticker).
    """

    def __init__(self, path: Path, *, tier: str, read: tuple[float, float],
                 write: tuple[float, float], source: str = "setting", safety: float = 0.9,
                 label: str = "", clock_ns: Callable[[], int] = time.monotonic_ns,
                 alive: Callable[[int], bool] = pid_alive,
                 heartbeat_timeout_ns: int = ab.HEARTBEAT_TIMEOUT_NS) -> None:
        self.path = Path(path)
        self.label = label
        self._init = (tier, read, write, source, safety)
        self._clock_ns = clock_ns
        self._alive = alive
        self._timeout_ns = heartbeat_timeout_ns
        self._fd: int | None = None
        self._pid = 0
        self._nonce = 0
        self.lock_ops = 0
        """Operations on the record by this handle."""
        self.lock_wait_ns = 0
        self.lock_wait_max_ns = 0
        self.lock_busy = 0
        """try_take calls answered "busy, ask again" without waiting."""
        self._busy_streak = 0
        """Time this process waited for the record's lock (total, longest): the event loop is
        blocked meanwhile, so a convoy on the lock stalls every worker of the account."""
        self._mine: ab.Slot | None = None
        """A copy of this process's slot after the last operation (carried into a new slot
        if the old one was reclaimed while this process was idle)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            pass

    # --- I/O ------------------------------------------------------------------------------------

    def _open(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            # a fork shares the parent's file description (and its flock): open our own
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid, self._nonce, self._mine = os.getpid(), secrets.randbits(62) + 1, None
        return self._fd

    def _try_lock(self, fd: int) -> bool:
        """The lock without waiting, unless :data:`LOCK_BLOCK_AFTER` tries in a row failed."""
        if self._busy_streak >= LOCK_BLOCK_AFTER:
            fcntl.flock(fd, fcntl.LOCK_EX)
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._busy_streak += 1
                self.lock_busy += 1
                return False
        self._busy_streak = 0
        return True

    @contextlib.contextmanager
    def _locked(self, *, block: bool = True) -> Iterator[tuple[ab.AccountState, int] | None]:
        """The record and this process's slot index, under the lock; written back on exit.
        With ``block=False``: None, without waiting, when another process holds the lock."""
        fd = self._open()
        t0 = time.monotonic_ns()
        if not block and not self._try_lock(fd):
            yield None
            return
        if block:
            fcntl.flock(fd, fcntl.LOCK_EX)
        waited = time.monotonic_ns() - t0
        self.lock_ops += 1
        self.lock_wait_ns += waited
        self.lock_wait_max_ns = max(self.lock_wait_max_ns, waited)
        try:
            now = self._clock_ns()
            raw = os.pread(fd, ab.RECORD_SIZE, 0)
            state = ab.decode(raw)
            if state is None:
                tier, read, write, source, safety = self._init
                if raw.strip(b"\0"):
                    log.warning("account rate budget %s was unreadable: rebuilt with empty "
                                "buckets", self.path)
                state = ab.new_state(read, write, tier=tier, source=source, safety=safety,
                                     now_ns=now, full=not raw.strip(b"\0"))
            ab.reap(state, now, self._alive, self._timeout_ns, scan_every_ns=LIVENESS_SCAN_NS)
            me = ab.find(state, self._pid, self._nonce)
            if me is None:
                try:
                    me = ab.claim(state, self._pid, self._nonce, self.label, now,
                                  carry=self._mine)
                except ab.BudgetFull:  # dead pids not yet scanned may hold slots: check now
                    ab.reap(state, now, self._alive, self._timeout_ns)
                    me = ab.claim(state, self._pid, self._nonce, self.label, now,
                                  carry=self._mine)
            yield state, me
            slot = state.slots[me]
            self._mine = ab.Slot(slot.pid, slot.nonce, slot.heartbeat_ns, slot.label,
                                 list(slot.waiting), list(slot.tokens_used), list(slot.granted),
                                 list(slot.waited_ns), slot.penalties)
            os.pwrite(fd, ab.encode(state), 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Give the slot back (its counters go with it) and close the file."""
        if self._fd is not None and self._pid == os.getpid():
            with self._locked() as (state, me):
                state.slots[me] = ab.FREE
            os.close(self._fd)
        self._fd, self._mine = None, None

    # --- SharedBudget ----------------------------------------------------------------------------

    def try_take(self, kind: str, cost: float, *, cancel: bool, since_ns: int,
                 now_ns: int) -> int:
        """0 when ``cost`` tokens were taken, else ns to wait before asking again (also
        :data:`LOCK_RETRY_NS` when another process holds the record: never blocks the caller's
        event loop on the lock, bar :data:`LOCK_BLOCK_AFTER` busy answers in a row)."""
        with self._locked(block=False) as held:
            if held is None:
                return min(LOCK_RETRY_NS << min(self._busy_streak - 1, 16), LOCK_RETRY_MAX_NS)
            state, me = held
            return ab.try_take(state, me, kind, cost, cancel=cancel, since_ns=since_ns,
                               now_ns=now_ns)

    def leave(self, kind: str, *, cancel: bool, since_ns: int) -> None:
        with self._locked() as (state, me):
            ab.leave(state, me, kind, cancel=cancel, since_ns=since_ns)

    def penalize(self, kind: str, now_ns: int) -> None:
        with self._locked() as (state, me):
            ab.penalize(state, me, kind, now_ns)

    def capacity(self, kind: str) -> float:
        with self._locked() as (state, _me):
            return state.buckets[ab.KINDS.index(kind)].capacity

    def set_tier(self, tier: str, read: tuple[float, float], write: tuple[float, float], *,
                 source: str) -> None:
        """Resize the shared buckets for every process of the account (unscaled tier values)."""
        with self._locked() as (state, _me):
            ab.set_tier(state, read, write, tier=tier, source=source, now_ns=self._clock_ns())

    def snapshot(self) -> ab.AccountState:
        """The record as it is now (live slots only; dead ones reclaimed first)."""
        with self._locked() as (state, _me):
            return state

    def __repr__(self) -> str:
        return f"AccountBudgetFile({str(self.path)!r}, label={self.label!r})"

    def __del__(self) -> None:
        fd = getattr(self, "_fd", None)
        if fd is not None and getattr(self, "_pid", 0) == os.getpid():
            with contextlib.suppress(OSError):
                os.close(fd)


def read_record(path: Path) -> ab.AccountState | None:
    """The record at ``path`` as it is now, read under the lock without claiming a slot (for
    reports: ``mm`` status, benchmarks); None when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        return ab.decode(os.pread(fd, ab.RECORD_SIZE, 0))
    finally:
        os.close(fd)
