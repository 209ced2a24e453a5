"""The per-worker journal: segments, rotation, crash safety (real SIGKILL), recovery, readers."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path

import pytest

from mmcore.worker import journal as jr
from mmcore.orders import Place, Quote
from mmcore.risk.killswitch import Trigger
from mmcore.worker.journal import InvalidLine, Journal, JournalConfig, JournalError

REPO = Path(__file__).resolve().parent.parent
W = "w1"
S = 1_000_000_000


def cfg(root: Path, **kw: int) -> JournalConfig:
    return JournalConfig(root=root, worker_id=W, **kw)


def one_of_each(n: int) -> list[dict]:
    """One record of every kind, ids built from ``n``."""
    q = Quote("KXNBA-A", "bid", 5_600, 1_000)
    return [
        jr.book_top("KXNBA-A", 5_500, 200, 5_700, 300, seq=n, sid=1, exchange_ns=n,
                    receipt_ns=n + 5),
        jr.theo("KXNBA", {"KXNBA-A": 0.56, "KXNBA-B": 0.44}, 0.01, "consensus", n),
        jr.quote_decision(W, n, [q], notes={"reservation": 5_610}),
        jr.order_action(W, n, "place", market="KXNBA-A", side="bid", price=5_600, count=1_000,
                        client_order_id=f"c{n}"),
        jr.ack(W, n, request_id=f"c{n}", order_id=f"o{n}", status=201, latency_ns=3_000_000,
               body="x" * 2_000),
        jr.fill(f"t{n}", f"o{n}", "KXNBA-A", "bid", 5_600, 500, 70, False, 500,
                exchange_ns=n, receipt_ns=n + 7),
        jr.state_change(W, n, "ACTIVE", "REDUCING", {Trigger.STALE_THEO}, "theo stale"),
        jr.refusal(W, n, Place(q, f"c{n}"), "collar"),
        jr.reconcile(W, n, {"KXNBA-A": 100}, [{"order_id": "o9"}]),
        jr.error(W, n, ValueError("boom"), where="ws"),
    ]


def lines_of(paths: list[Path]) -> list[bytes]:
    return [line for p in paths for line in p.read_bytes().splitlines(keepends=True)]


# --- append / rotate / close ---------------------------------------------------------------------


def test_append_close_publishes_exactly_the_records_in_order(tmp_path: Path) -> None:
    records = [r for n in range(3) for r in one_of_each(n)]
    with Journal.open(cfg(tmp_path), now_ns=S) as j:
        for i, r in enumerate(records):
            j.append(r, now_ns=S + i)
        assert j.synced_records == j.appended_records == len(records)
    segs = jr.published_segments(tmp_path)
    assert len(segs) == 1 and segs[0].parent == tmp_path / W
    assert segs[0].name == f"seg-{S:020d}-000000.jsonl"
    assert not list((tmp_path / W).glob("*.part"))
    got = list(jr.read_records(segs))
    assert [jr.natural_key(g) for g in got] == [jr.natural_key(r) for r in records]
    assert [g["ts_ns"] for g in got] == [S + i for i in range(len(records))]
    assert all(list(g)[:4] == ["kind", "id", "worker_id", "ts_ns"] for g in got)
    assert {g["worker_id"] for g in got} == {W}
    assert set(jr.KINDS) == {g["kind"] for g in got}
    per_kind = Counter(g["kind"] for g in got)
    assert all(per_kind[k] == len({g["id"] for g in got if g["kind"] == k}) for k in per_kind)
    by_kind = {g["kind"]: g for g in got}
    assert by_kind["fill"]["id"] == "t2" and by_kind["ack"]["id"] == f"ack:{W}:2"
    assert by_kind["order_action"]["id"] == f"{W}:2" and by_kind["book_top"]["id"] == "KXNBA-A:1:2"
    assert by_kind["state_change"]["id"] == f"{W}:state:2"
    assert len(by_kind["ack"]["body"]) == jr.BODY_EXCERPT_CHARS
    assert by_kind["refusal"]["action"]["type"] == "place"
    assert by_kind["refusal"]["action"]["quote"]["price"] == 5_600


def test_book_top_without_seq_uses_receipt_time() -> None:
    r = jr.book_top("M", None, 0, 5_000, 100, seq=None, sid=None, exchange_ns=None, receipt_ns=42)
    assert r["id"] == "M:42"


def test_quiet_journal_publishes_nothing(tmp_path: Path) -> None:
    Journal.open(cfg(tmp_path), now_ns=S).close()
    assert jr.published_segments(tmp_path) == []


def test_size_rotation_never_splits_a_record(tmp_path: Path) -> None:
    j = Journal.open(cfg(tmp_path, segment_max_bytes=1_000), now_ns=0)
    for n in range(60):
        j.append(jr.error(W, n, "x" * 100), now_ns=S + n)
    j.close(now_ns=2 * S)
    segs = jr.published_segments(tmp_path)
    assert len(segs) > 5
    assert all(p.stat().st_size <= 1_000 for p in segs)
    assert [r["n"] for r in jr.read_records(segs)] == list(range(60))
    big = Journal.open(cfg(tmp_path, segment_max_bytes=100), now_ns=3 * S)
    big.append(jr.error(W, 100, "y" * 300), now_ns=3 * S)  # larger than a segment: own segment
    big.close()
    assert [r["n"] for r in jr.read_records(jr.published_segments(tmp_path))][-1] == 100


def test_age_rotation_at_append_and_on_timer(tmp_path: Path) -> None:
    j = Journal.open(cfg(tmp_path, segment_max_age_ns=10 * S), now_ns=0)
    j.append(jr.error(W, 0, "a"), now_ns=100 * S)
    j.append(jr.error(W, 1, "b"), now_ns=109 * S)
    assert jr.published_segments(tmp_path) == []
    j.append(jr.error(W, 2, "c"), now_ns=110 * S)  # first segment is 10 s old: published first
    segs = jr.published_segments(tmp_path)
    assert [r["n"] for r in jr.read_records(segs)] == [0, 1]
    assert not j.maybe_rotate(now_ns=119 * S)
    assert j.maybe_rotate(now_ns=120 * S)
    segs = jr.published_segments(tmp_path)
    assert [p.name for p in segs] == [f"seg-{100 * S:020d}-000000.jsonl",
                                      f"seg-{110 * S:020d}-000001.jsonl"]
    j.close()
    assert [r["n"] for r in jr.read_records(segs)] == [0, 1, 2]


def test_batched_fsync_and_flush(tmp_path: Path) -> None:
    j = Journal.open(cfg(tmp_path, fsync_every_records=3), now_ns=0)
    j.append(jr.error(W, 0, "a"), now_ns=1)
    j.append(jr.error(W, 1, "b"), now_ns=2)
    assert (j.appended_records, j.synced_records) == (2, 0)
    j.append(jr.error(W, 2, "c"), now_ns=3)
    assert j.synced_records == 3
    j.append(jr.error(W, 3, "d"), now_ns=4)
    j.flush()
    assert j.synced_records == 4
    j.close()


def test_append_batch_is_one_group_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    """A worker decision's records are written and then fsync'd once, not once per record; the
    real fsync still runs (counted, not replaced)."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(jr.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    j = Journal.open(cfg(tmp_path), now_ns=0)
    j.append(jr.error(W, 0, "opens the segment"), now_ns=1)
    before = len(synced)
    batch = one_of_each(1)
    j.append_batch(batch, now_ns=5)
    assert len(synced) == before + 1
    assert j.appended_records == j.synced_records == 1 + len(batch)
    j.append(jr.error(W, 99, "single"), now_ns=6)  # fsync_every_records=1: one per append
    assert len(synced) == before + 2
    j.close()
    got = list(jr.read_records(jr.published_segments(tmp_path)))
    assert [g["kind"] for g in got] == ["error", *(r["kind"] for r in batch), "error"]


def test_config_and_record_validation(tmp_path: Path) -> None:
    from mmcore.errors import ConfigError

    with pytest.raises(ConfigError):
        JournalConfig(root=tmp_path, worker_id="../escape")
    with pytest.raises(ConfigError):
        JournalConfig(root=tmp_path, worker_id=W, segment_max_bytes=0)
    with pytest.raises(TypeError):
        JournalConfig(root=tmp_path, worker_id=W, segment_max_megabytes=1)  # type: ignore[call-arg]
    with Journal.open(cfg(tmp_path), now_ns=0) as j:
        with pytest.raises(JournalError, match="kind"):
            j.append({"kind": "nope", "id": "1"}, now_ns=1)
        with pytest.raises(JournalError, match="worker"):
            j.append({**jr.error(W, 0, "a"), "worker_id": "other"}, now_ns=1)
        with pytest.raises(JournalError, match="JSON"):
            j.append(jr.theo("E", {"A": float("nan")}, None, "s", 1), now_ns=1)
        j.append({**jr.error(W, 0, "a"), "ts_ns": -5}, now_ns=7)  # ts_ns is always the write time
    assert [r["ts_ns"] for r in jr.read_records(jr.published_segments(tmp_path))] == [7]


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with Journal.open(cfg(tmp_path), now_ns=0):
        with pytest.raises(JournalError, match="locked by another process"):
            Journal.open(cfg(tmp_path), now_ns=1)


# --- failures surface as JournalError ------------------------------------------------------------


def test_disk_full_raises_journal_error_and_leaves_no_torn_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal.open(cfg(tmp_path), now_ns=0)
    j.append(jr.error(W, 0, "ok"), now_ns=1)
    real_write = os.write

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def half(fd: int, data: bytes) -> int:
        return real_write(fd, data[: len(data) // 2])

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(JournalError, match="disk full"):
        j.append(jr.error(W, 1, "lost"), now_ns=2)
    monkeypatch.setattr(os, "write", half)
    with pytest.raises(JournalError, match="short write"):
        j.append(jr.error(W, 2, "lost"), now_ns=3)
    monkeypatch.setattr(os, "write", real_write)
    j.append(jr.error(W, 3, "ok again"), now_ns=4)  # the disk has room again: carry on
    j.close()
    segs = jr.published_segments(tmp_path)
    assert all(json.loads(line) for line in lines_of(segs))
    assert [r["n"] for r in jr.read_records(segs)] == [0, 3]


# --- crash safety --------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mmcore.worker import journal as jr
    cfg = jr.JournalConfig(root=Path(sys.argv[1]), worker_id="w1", segment_max_bytes=4_000)
    j = jr.Journal.open(cfg, now_ns=1)
    n = 0
    while True:
        n += 1
        j.append(jr.order_action("w1", n, "place", market="M", side="bid", price=5_000,
                                 count=100, client_order_id=f"c{n}"), now_ns=1_000 + n)
        print(j.synced_records, flush=True)
    """
)


def test_sigkill_loses_nothing_fsynced_and_publishes_no_torn_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, cwd=REPO)
    assert child.stdout is not None and child.stderr is not None
    lines: queue.Queue[bytes] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(b) for b in child.stdout], daemon=True)
    reader.start()
    reported, stalled = 0, False
    try:
        while reported < 300 and not stalled:
            try:  # each line: the child's count of fsync'd records after one append
                reported = int(lines.get(timeout=20))
            except queue.Empty:
                stalled = True
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=20)
    assert not stalled, f"child stalled at {reported}: {child.stderr.read().decode()}"
    reader.join(timeout=20)
    while not lines.empty():  # lines the child printed before it died
        reported = max(reported, int(lines.get()))
    assert child.returncode == -signal.SIGKILL
    worker_dir = tmp_path / W
    assert len(list(worker_dir.glob("*.part"))) == 1 and len(list(worker_dir.glob("*.jsonl"))) > 1

    j = Journal.open(cfg(tmp_path), now_ns=10**12)  # recovery publishes the crashed segment
    assert not list(worker_dir.glob("*.part"))
    recovered = jr.published_segments(tmp_path)
    seqs = [r["action_seq"] for r in jr.read_records(recovered)]
    assert len(seqs) >= reported and seqs == list(range(1, len(seqs) + 1))  # all, once, in order
    assert all(line.endswith(b"\n") and json.loads(line) for line in lines_of(recovered))

    j.append(jr.error(W, 1, "after restart"), now_ns=10**12 + 1)
    j.close()
    new = [p for p in jr.published_segments(tmp_path) if p not in recovered]
    assert len(new) == 1 and new[0].name.startswith(f"seg-{10**12 + 1:020d}-")
    assert [r["kind"] for r in jr.read_records(new)] == ["error"]


def write_part(root: Path, worker: str, body: bytes, n: int = 0) -> Path:
    (root / worker).mkdir(parents=True, exist_ok=True)
    part = root / worker / f"seg-{5:020d}-{n:06d}.jsonl.part"
    part.write_bytes(body)
    return part


def good(n: int, worker: str = W) -> bytes:
    rec = {"kind": "error", "id": f"{worker}:error:{n}", "worker_id": worker, "ts_ns": n, "n": n}
    return json.dumps(rec).encode() + b"\n"


def test_torn_trailing_line_is_repaired_on_open(tmp_path: Path) -> None:
    whole = good(2)
    write_part(tmp_path, W, good(0) + good(1) + whole[: len(whole) // 2])
    j = Journal.open(cfg(tmp_path), now_ns=S)
    assert [p.name for p in j.recovered] == [f"seg-{5:020d}-000000.jsonl"]
    assert j.recovered[0].read_bytes() == good(0) + good(1)
    j.append(jr.error(W, 3, "new"), now_ns=S)
    j.close()
    segs = jr.published_segments(tmp_path)
    assert segs[-1].name == f"seg-{S:020d}-000001.jsonl"  # numbering continues after recovery
    assert [r["n"] for r in jr.read_records(segs)] == [0, 1, 3]


def test_trailing_invalid_line_and_empty_part(tmp_path: Path) -> None:
    write_part(tmp_path, W, good(0) + b'{"kind": "error", "id"\n')
    write_part(tmp_path, W, b"", n=1)
    j = Journal.open(cfg(tmp_path), now_ns=S)
    j.close()
    assert [p.read_bytes() for p in jr.published_segments(tmp_path)] == [good(0)]
    assert not list((tmp_path / W).glob("*.part"))


def test_recover_all_publishes_dead_writers_only(tmp_path: Path) -> None:
    write_part(tmp_path, "dead", good(0, "dead") + b'{"kind": "err')
    live = Journal.open(JournalConfig(root=tmp_path, worker_id="live"), now_ns=S)
    live.append(jr.error("live", 0, "resting"), now_ns=S)
    published = jr.recover_all(tmp_path)
    assert [p.parent.name for p in published] == ["dead"]
    assert published[0].read_bytes() == good(0, "dead")
    assert len(list((tmp_path / "live").glob("*.part"))) == 1  # the live writer's segment untouched
    assert jr.recover_all(tmp_path) == []  # idempotent
    live.append(jr.error("live", 1, "still writing"), now_ns=S + 1)
    live.close()
    assert jr.recover_all(tmp_path) == []
    workers = {r["worker_id"] for r in jr.read_records(jr.published_segments(tmp_path))}
    assert workers == {"dead", "live"}


def test_recover_all_respects_a_lock_held_by_hand(tmp_path: Path) -> None:
    write_part(tmp_path, W, good(0))
    fd = os.open(tmp_path / W / jr.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert jr.recover_all(tmp_path) == []
    finally:
        os.close(fd)
    assert [p.parent.name for p in jr.recover_all(tmp_path)] == [W]


# --- readers -------------------------------------------------------------------------------------


def test_read_records_skips_and_reports_garbage(tmp_path: Path) -> None:
    seg = tmp_path / W / f"seg-{1:020d}-000000.jsonl"
    seg.parent.mkdir()
    seg.write_bytes(good(0) + b"garbage\n" + b"[1, 2]\n" + b'{"kind": "error"}\n' + good(1))
    bad: list[InvalidLine] = []
    got = list(jr.read_records([seg, tmp_path / "missing.jsonl"], on_invalid=bad.append))
    assert [r["n"] for r in got] == [0, 1]
    assert [(b.line_no, b.reason.split(":")[0]) for b in bad] == [
        (2, "invalid JSON"), (3, "not a record (needs kind and id)"),
        (4, "not a record (needs kind and id)"), (0, "unreadable")]
    assert bad[0].excerpt.startswith("garbage")


def test_read_records_logs_by_default(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seg = tmp_path / "x.jsonl"
    seg.write_bytes(b"{not json\n" + good(0))
    assert len(list(jr.read_records([seg]))) == 1
    assert "skipped" in caplog.text


def test_reading_twice_yields_the_same_natural_keys(tmp_path: Path) -> None:
    """The ingest loads with ON CONFLICT DO NOTHING on (kind, id): a re-run adds nothing."""
    with Journal.open(cfg(tmp_path, segment_max_bytes=2_000), now_ns=0) as j:
        for n in range(5):
            for r in one_of_each(n):
                j.append(r, now_ns=S + n)
    segs = jr.published_segments(tmp_path)
    first = [jr.natural_key(r) for r in jr.read_records(segs)]
    second = [jr.natural_key(r) for r in jr.read_records(jr.published_segments(tmp_path))]
    assert len(set(first)) == len(first) == 50
    assert set(first) == set(second)
    assert set(first) | set(second) == set(first)  # loading both runs = loading one
