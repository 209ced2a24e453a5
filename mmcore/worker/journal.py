"""Per-worker append-only, crash-safe journal: everything a worker saw and did, as JSONL segments.

Workers never open DuckDB (design §2). Each appends to its own directory; the ingest task loads
*published* segments with ``INSERT … ON CONFLICT DO NOTHING`` on ``(kind, id)``, so re-running it
is harmless and a crash loses nothing that was fsync'd.

On disk (``n`` numbers a worker's segments in write order; ``start_ns`` is its first append)::

    root/<worker_id>/.lock                             flock of the live writer (holds its pid)
    root/<worker_id>/seg-<start_ns:020d>-<n:06d>.jsonl.part    the open segment (one at most)
    root/<worker_id>/seg-<start_ns:020d>-<n:06d>.jsonl         published: whole lines, fsync'd

One record per line, compact ASCII JSON, key order ``kind, id, worker_id, ts_ns, …``. ``ts_ns`` is
the local write time (the ``now_ns`` given to :meth:`Journal.append`); events from the exchange
also carry ``exchange_ns`` and ``receipt_ns`` (integer ns). Units: prices, fees and money are ints
in $0.0001 ("price units"), counts and positions ints in 0.01 contract ("centi-contracts"), theo
probabilities floats in [0, 1]. ``id`` is the natural id fixed by the constructor of each kind.

Rules of this file:

- A line is written with one ``os.write`` on an ``O_APPEND`` fd; a short write is truncated away, so
  the open segment never holds a torn line in its middle. fsync every ``fsync_every_records``
  (checked after each :meth:`Journal.append`, or once after a :meth:`Journal.append_batch`).
- Publishing is fsync → close → ``rename(.part → .jsonl)`` → fsync the directory. Readers look
  only at ``.jsonl``. Segments rotate on size/age at append time, or by
  :meth:`Journal.maybe_rotate` on a timer.
- :meth:`Journal.open` takes the lock, then repairs and publishes any ``.part`` a crash left
  (trailing torn/invalid lines cut, fsync'd, renamed) before writing anything new;
  :func:`recover_all` does the same for dead writers only (their lock can be taken).
- Every I/O failure (disk full included) raises :class:`JournalError` naming the file and errno.
  After a failed fsync the journal refuses further appends (durability unknown); the worker halts.
- Ids built from worker counters (``decision_seq``, ``action_seq``, ``n``) are unique only if a
  restarted worker keeps counting or uses a new ``worker_id``; otherwise ingest drops its records.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

from mmcore.atomicfile import fsync_dir
from mmcore.errors import ConfigError, MMError

log = logging.getLogger(__name__)

Kind = Literal["book_top", "theo", "quote_decision", "order_action", "ack", "fill",
               "state_change", "refusal", "reconcile", "error"]
KINDS: frozenset[str] = frozenset(get_args(Kind))
Record = dict[str, Any]

DEFAULT_SEGMENT_MAX_BYTES = 4 * 1024 * 1024
DEFAULT_SEGMENT_MAX_AGE_NS = 60 * 1_000_000_000
BODY_EXCERPT_CHARS = 500
LOCK_NAME = ".lock"
_SEG_RE = re.compile(r"^seg-(\d{20})-(\d{6,})\.jsonl(\.part)?$")
_WORKER_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")


class JournalError(MMError):
    """The journal could not record durably (disk full, I/O error, lock held, bad record)."""


@dataclass(frozen=True, slots=True)
class JournalConfig:
    root: Path
    worker_id: str
    """Directory name under ``root``; letters, digits, ``_ . : -``."""
    segment_max_bytes: int = DEFAULT_SEGMENT_MAX_BYTES
    segment_max_age_ns: int = DEFAULT_SEGMENT_MAX_AGE_NS
    fsync_every_records: int = 1
    """1 = fsync every append (default). N > 1 batches; call :meth:`Journal.flush` to sync early."""

    def __post_init__(self) -> None:
        if not _WORKER_RE.match(self.worker_id):
            raise ConfigError(f"journal.worker_id {self.worker_id!r}: use letters, digits, _ . : -")
        for name in ("segment_max_bytes", "segment_max_age_ns", "fsync_every_records"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"journal.{name} must be a positive int, got {value!r}")


class InvalidLine(NamedTuple):
    """A line :func:`read_records` skipped (``line_no`` 1-based; 0 = the file was unreadable)."""

    path: Path
    line_no: int
    reason: str
    excerpt: str


# --- I/O helpers ---------------------------------------------------------------------------------


def _fail(what: str, path: Path, exc: OSError) -> JournalError:
    full = " (disk full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return JournalError(f"journal {what} failed for {path}: {exc.strerror or exc} "
                        f"[errno {exc.errno}]{full}")


def _try_lock(worker_dir: Path) -> int | None:
    """flock ``.lock`` without blocking: the fd if we now hold it, None if a live writer does."""
    fd = os.open(worker_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        os.close(fd)
        return None


def _segments(worker_dir: Path, suffix: str) -> list[tuple[int, Path]]:
    """(segment number, path) of one worker's segments ending in ``suffix``, in write order."""
    return sorted((int(m.group(2)), p) for p in worker_dir.iterdir()
                  if (m := _SEG_RE.match(p.name)) and p.name.endswith(suffix))


def _is_record_line(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _publish_parts(worker_dir: Path) -> list[Path]:
    """Publish every ``.part`` of a worker whose writer is gone (the caller holds the lock):
    cut trailing torn/invalid lines, fsync, rename to ``.jsonl``; empty parts are removed."""
    published: list[Path] = []
    for _, part in _segments(worker_dir, ".part"):
        data = part.read_bytes()
        keep = data.rfind(b"\n") + 1  # bytes after the last newline are a torn write
        while keep and not _is_record_line(data[data.rfind(b"\n", 0, keep - 1) + 1:keep]):
            keep = data.rfind(b"\n", 0, keep - 1) + 1
        if keep < len(data):
            log.warning("journal: cut %d byte(s) of torn write from %s", len(data) - keep, part)
        if keep == 0:
            part.unlink()
        else:
            fd = os.open(part, os.O_RDWR)
            try:
                os.ftruncate(fd, keep)
                os.fsync(fd)
            finally:
                os.close(fd)
            published.append(part.with_suffix(""))
            os.rename(part, published[-1])
        fsync_dir(worker_dir)
    return published


# --- the writer ----------------------------------------------------------------------------------


class Journal:
    """One worker's journal. Calling order: :meth:`open` → :meth:`append`\\* (with
    :meth:`maybe_rotate` on a timer, :meth:`flush` in batched mode) → :meth:`close`.
    Not thread-safe: one asyncio loop owns it."""

    def __init__(self, config: JournalConfig, lock_fd: int, recovered: list[Path], now_ns: int):
        self.config = config
        self.dir = config.root / config.worker_id
        self.recovered = tuple(recovered)  # segments a crash left, published by open()
        self.appended_records = 0  # since open
        self.synced_records = 0  # since open, known fsync'd
        self._lock_fd: int | None = lock_fd
        self._fd: int | None = None  # the open segment, if any
        self._part = self.dir
        self._start_ns = self._size = 0
        self._next_n = max((n + 1 for n, _ in _segments(self.dir, "")), default=0)
        self._last_ns = now_ns
        self._broken = ""  # why appends are refused (durability unknown)

    @classmethod
    def open(cls, config: JournalConfig, now_ns: int) -> Journal:
        """Create ``root/worker_id/``, take its lock, publish what a crash left. The first append
        starts a segment, so a journal that records nothing publishes nothing."""
        worker_dir = config.root / config.worker_id
        try:
            worker_dir.mkdir(parents=True, exist_ok=True)
            fsync_dir(config.root)
            lock_fd = _try_lock(worker_dir)
            if lock_fd is None:
                holder = (worker_dir / LOCK_NAME).read_text(errors="replace").strip()
                raise JournalError(f"journal {worker_dir} is locked by another process (a live "
                                   f"writer, or recovery running): lock file says {holder!r}")
            try:
                os.ftruncate(lock_fd, 0)
                os.pwrite(lock_fd, f"pid={os.getpid()} opened_ns={now_ns}\n".encode(), 0)
                recovered = _publish_parts(worker_dir)
            except BaseException:
                os.close(lock_fd)
                raise
        except OSError as exc:
            raise _fail("open", worker_dir, exc) from exc
        return cls(config, lock_fd, recovered, now_ns)

    def append(self, record: Mapping[str, Any], now_ns: int) -> None:
        """Write one record (see the constructors below) as one line, stamped with this worker's
        ``worker_id`` and ``ts_ns=now_ns`` (a ``ts_ns`` already in the record is replaced)."""
        self._write(record, now_ns)
        if self.appended_records - self.synced_records >= self.config.fsync_every_records:
            self.flush()

    def append_batch(self, records: Iterable[Mapping[str, Any]], now_ns: int, *,
                     sync: bool = True) -> None:
        """Write several records (one line each, as :meth:`append`) with one fsync at the end
        when the policy asks for one (group commit): a worker decision's records are durable
        together, for the price of one fsync instead of one per record. ``sync=False`` leaves
        the fsync to the caller (:meth:`start_sync`, off the event loop)."""
        for record in records:
            self._write(record, now_ns)
        if sync and self.appended_records - self.synced_records >= self.config.fsync_every_records:
            self.flush()

    def start_sync(self) -> tuple[int, int] | None:
        """For an fsync off the owning loop (a thread): ``(fd, count)`` — a duplicate of the open
        segment's descriptor, to fsync and then close, and the records that makes durable — or
        None when nothing written is unsynced. Report the outcome with :meth:`finish_sync` on
        the owning loop. A duplicate stays valid while the segment rotates (rotation fsyncs the
        segment itself), so appends and rotation need not wait for it."""
        if self._broken:
            raise JournalError(f"journal {self.dir} is {self._broken}")
        if self.synced_records == self.appended_records:
            return None
        if self._fd is None:  # rotated since: the rotation's fsync covered everything
            self.synced_records = self.appended_records
            return None
        try:
            return os.dup(self._fd), self.appended_records
        except OSError as exc:
            raise _fail("fsync", self._part, exc) from exc

    def finish_sync(self, count: int, error: OSError | None = None) -> None:
        """The fsync of :meth:`start_sync` returned: ``count`` records are durable; an error makes
        the journal refuse further appends (durability unknown) and raises."""
        if error is not None:
            self._broken = f"unusable: fsync failed ({error.strerror}), durability unknown"
            raise _fail("fsync", self._part, error) from error
        self.synced_records = max(self.synced_records, count)

    def _write(self, record: Mapping[str, Any], now_ns: int) -> None:
        if self._lock_fd is None or self._broken:
            raise JournalError(f"journal {self.dir} is {self._broken or 'closed'}")
        kind, rid = record.get("kind"), record.get("id")
        if kind not in KINDS or not isinstance(rid, str) or not rid:
            raise JournalError(f"journal record needs a known kind and an id: {kind!r} {rid!r}")
        wid = record.get("worker_id", self.config.worker_id)
        if wid != self.config.worker_id:
            raise JournalError(f"record of worker {wid!r} appended to {self.config.worker_id!r}")
        full: Record = {"kind": kind, "id": rid, "worker_id": wid, "ts_ns": now_ns}
        full.update((k, v) for k, v in record.items() if k not in full)
        try:
            line = (json.dumps(full, separators=(",", ":"), allow_nan=False) + "\n").encode()
        except (TypeError, ValueError) as exc:
            raise JournalError(f"journal record {kind}:{rid} is not serialisable: {exc}") from exc
        self._last_ns = max(self._last_ns, now_ns)
        if self._fd is not None and self._size > 0 and (
            self._size + len(line) > self.config.segment_max_bytes
            or now_ns - self._start_ns >= self.config.segment_max_age_ns
        ):
            self.rotate(now_ns)
        fd = self._fd if self._fd is not None else self._start_segment(now_ns)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.EIO, f"short write ({written}/{len(line)} bytes; disk full?)")
        except OSError as exc:
            try:  # the segment must end on a whole line: remove the partial write
                os.ftruncate(fd, self._size)
            except OSError as cut:
                self._broken = f"unusable: a partial write could not be removed ({cut.strerror})"
            raise _fail("append", self._part, exc) from exc
        self._size += written
        self.appended_records += 1

    def flush(self) -> None:
        """fsync the open segment; afterwards ``synced_records == appended_records``."""
        if self._fd is not None and self.synced_records != self.appended_records:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._broken = f"unusable: fsync failed ({exc.strerror}), durability unknown"
                raise _fail("fsync", self._part, exc) from exc
        self.synced_records = self.appended_records

    def maybe_rotate(self, now_ns: int) -> bool:
        """Publish the open segment once it is ``segment_max_age_ns`` old. Call it on a timer so a
        quiet worker's records still reach the ingest; True if it rotated."""
        if self._fd is None or now_ns - self._start_ns < self.config.segment_max_age_ns:
            return False
        self.rotate(now_ns)
        return True

    def rotate(self, now_ns: int) -> Path | None:
        """fsync, close and publish the open segment (the next append starts a new one)."""
        self._last_ns = max(self._last_ns, now_ns)
        if self._fd is None:
            return None
        self.flush()
        fd, self._fd = self._fd, None
        done = self._part.with_suffix("")
        try:
            os.close(fd)
            os.rename(self._part, done)
            fsync_dir(self.dir)
        except OSError as exc:
            raise _fail("publish", self._part, exc) from exc
        return done

    def close(self, now_ns: int | None = None) -> None:
        """Publish the open segment and release the lock (idempotent). ``now_ns`` defaults to the
        latest time seen, which is what the context manager uses."""
        if self._lock_fd is None:
            return
        try:
            if not self._broken:
                self.rotate(self._last_ns if now_ns is None else now_ns)
        finally:
            if self._fd is not None:  # broken: the .part stays for recovery
                os.close(self._fd)
                self._fd = None
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _start_segment(self, now_ns: int) -> int:
        if now_ns < 0:
            raise JournalError(f"journal now_ns must be >= 0, got {now_ns}")
        part = self.dir / f"seg-{now_ns:020d}-{self._next_n:06d}.jsonl.part"
        try:
            self._fd = os.open(part, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            fsync_dir(self.dir)  # the new name is durable before any record counts as synced
        except OSError as exc:
            raise _fail("segment create", part, exc) from exc
        self._part, self._start_ns, self._size = part, now_ns, 0
        self._next_n += 1
        return self._fd


# --- readers for the ingest ----------------------------------------------------------------------


def published_segments(root: Path) -> list[Path]:
    """Every published segment under ``root``: by worker directory, then in write order."""
    dirs = sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []
    return [p for d in dirs for _, p in _segments(d, ".jsonl")]


def read_records(paths: Iterable[Path],
                 on_invalid: Callable[[InvalidLine], None] | None = None) -> Iterator[Record]:
    """The records of ``paths``, in order. A line that is not a JSON object with string ``kind``
    and ``id``, or an unreadable file, is skipped and passed to ``on_invalid`` (default: logged
    as a warning). Ingest deduplicates on :func:`natural_key`."""
    def report(bad: InvalidLine) -> None:
        if on_invalid is not None:
            return on_invalid(bad)
        log.warning("journal: skipped %s:%d (%s): %s", *bad)

    for path in paths:
        try:
            f = open(path, "rb")
        except OSError as exc:
            report(InvalidLine(path, 0, f"unreadable: {exc.strerror}", ""))
            continue
        with f:
            for no, raw in enumerate(f, 1):
                try:
                    rec = json.loads(raw)
                    reason = "" if isinstance(rec, dict) and isinstance(rec.get("kind"), str) \
                        and isinstance(rec.get("id"), str) else "not a record (needs kind and id)"
                except ValueError as exc:
                    reason = f"invalid JSON: {exc}"
                if reason:
                    report(InvalidLine(path, no, reason, raw[:120].decode("utf-8", "replace")))
                else:
                    yield rec


def natural_key(record: Mapping[str, Any]) -> tuple[str, str]:
    """``(kind, id)``: the key the ingest loads on with ``INSERT … ON CONFLICT DO NOTHING``."""
    return (record["kind"], record["id"])


def recover_all(root: Path) -> list[Path]:
    """Publish the ``.part`` segments of dead writers (their lock can be taken) and leave live
    writers alone. Returns what it published. Safe at any time, e.g. before each ingest run."""
    published: list[Path] = []
    for worker_dir in sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []:
        try:
            if not _segments(worker_dir, ".part") or (fd := _try_lock(worker_dir)) is None:
                continue
            try:
                published += _publish_parts(worker_dir)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _fail("recovery", worker_dir, exc) from exc
    return published


# --- record constructors: one per kind, each fixing the natural id --------------------------------


def _plain(value: Any) -> Any:
    """Dataclasses (with a ``type`` tag), enums, sets and tuples → JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__.lower(),
                **{f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _rec(kind: Kind, rid: str, **fields: Any) -> Record:
    return {"kind": kind, "id": rid, **{k: _plain(v) for k, v in fields.items()}}


def book_top(market: str, bid: int | None, bid_size: int, ask: int | None, ask_size: int, *,
             seq: int | None, sid: int | None, exchange_ns: int | None, receipt_ns: int) -> Record:
    """Best bid/ask (price units, YES terms; None = empty side), sizes in centi-contracts.
    id ``market:sid:seq``, or ``market:receipt_ns`` without a WS sequence."""
    rid = f"{market}:{receipt_ns}" if seq is None or sid is None else f"{market}:{sid}:{seq}"
    return _rec("book_top", rid, market=market, bid=bid, bid_size=bid_size, ask=ask,
                ask_size=ask_size, sid=sid, seq=seq, exchange_ns=exchange_ns, receipt_ns=receipt_ns)


def theo(event_ticker: str, probs: Mapping[str, float], uncertainty: float | None, source: str,
         as_of_ns: int) -> Record:
    """Fair probability per market (floats in [0, 1]). id ``event_ticker:source:as_of_ns``."""
    return _rec("theo", f"{event_ticker}:{source}:{as_of_ns}", event_ticker=event_ticker,
                probs=probs, uncertainty=uncertainty, source=source, as_of_ns=as_of_ns)


def quote_decision(worker_id: str, decision_seq: int, quotes: Iterable[Any],
                   notes: Any = None) -> Record:
    """Desired quotes (``mmcore.orders.Quote`` or mappings of market, side, price, count)."""
    return _rec("quote_decision", f"{worker_id}:{decision_seq}", decision_seq=decision_seq,
                quotes=list(quotes), notes=notes)


def order_action(worker_id: str, action_seq: int, action: Literal["place", "amend", "cancel"], *,
                 market: str, side: str, price: int | None = None, count: int | None = None,
                 client_order_id: str | None = None, order_id: str | None = None,
                 reason: str = "") -> Record:
    """A request sent to the venue (amend ``count`` = new total). id ``worker_id:action_seq``."""
    return _rec("order_action", f"{worker_id}:{action_seq}", action_seq=action_seq, action=action,
                market=market, side=side, price=price, count=count,
                client_order_id=client_order_id, order_id=order_id, reason=reason)


def ack(worker_id: str, action_seq: int, *, request_id: str | None, order_id: str | None,
        status: str | int, latency_ns: int, body: str = "") -> Record:
    """The venue's answer to order_action ``action_seq``; body cut to BODY_EXCERPT_CHARS."""
    return _rec("ack", f"ack:{worker_id}:{action_seq}", action_seq=action_seq,
                request_id=request_id, order_id=order_id, status=status, latency_ns=latency_ns,
                body=body[:BODY_EXCERPT_CHARS])


def fill(trade_id: str, order_id: str, market: str, side: str, price: int, count: int, fee: int,
         is_taker: bool, post_position: int, *, exchange_ns: int | None, receipt_ns: int) -> Record:
    """One of our fills (id = trade_id): fee in price units, post_position in centi-contracts."""
    return _rec("fill", trade_id, trade_id=trade_id, order_id=order_id, market=market, side=side,
                price=price, count=count, fee=fee, is_taker=is_taker, post_position=post_position,
                exchange_ns=exchange_ns, receipt_ns=receipt_ns)


def state_change(worker_id: str, n: int, from_state: str, to_state: str, triggers: Iterable[Any],
                 reason: str = "") -> Record:
    """A trading-state transition (``from``/``to`` are SQL keywords, hence ``*_state``)."""
    return _rec("state_change", f"{worker_id}:state:{n}", n=n, from_state=from_state,
                to_state=to_state, triggers=sorted(str(_plain(t)) for t in triggers), reason=reason)


def refusal(worker_id: str, n: int, action: Any, reason: str) -> Record:
    """An action the risk gate refused (a value, not an exception). id ``worker_id:refusal:n``."""
    return _rec("refusal", f"{worker_id}:refusal:{n}", n=n, action=action, reason=reason)


def reconcile(worker_id: str, n: int, position_drift: Mapping[str, int],
              resting_drift: Iterable[Any] = (), notes: str = "") -> Record:
    """Drift against the exchange: positions per market (centi-contracts) and resting orders."""
    return _rec("reconcile", f"{worker_id}:reconcile:{n}", n=n, position_drift=position_drift,
                resting_drift=list(resting_drift), notes=notes)


def error(worker_id: str, n: int, exc: BaseException | str, where: str = "") -> Record:
    """An error the worker handled or halted on. id ``worker_id:error:n``."""
    kind = type(exc).__name__ if isinstance(exc, BaseException) else "message"
    return _rec("error", f"{worker_id}:error:{n}", n=n, where=where, error_type=kind,
                message=str(exc)[:BODY_EXCERPT_CHARS])
