"""Ingest of worker journals into the record: idempotence, crash recovery between kinds, invalid
lines (journal.read_records semantics), and a race with a live writer while a reader holds
mm.duckdb open. Real journals (mmcore.worker.journal.Journal), real DuckDB files."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import duckdb
from test_record_kit import MA, T0, S, journal_root, write_journal

from mmcore.record import db, store
from mmcore.record.ingest import ingest, marker_dir, segment_key
from mmcore.worker import journal as jr
from mmcore.worker.journal import Journal, JournalConfig


def some_records(n: int, worker: str = "w1", start: int = 0) -> list[tuple[int, dict]]:
    """``n`` rounds (numbered from ``start``) of book_top, fill, order_action and (every 3rd)
    theo, 1 s apart; ids unique per ``worker`` and round."""
    out: list[tuple[int, dict]] = []
    for i in range(start, start + n):
        t = T0 + i * S
        out.append((t, jr.book_top(MA, 5_000 + i, 100, 5_200 + i, 100, seq=i, sid=1,
                                   exchange_ns=t, receipt_ns=t + 1)))
        out.append((t, jr.fill(f"{worker}-t{i}", f"o{i}", MA, "bid", 5_000, 100, 10, False, 100 * i,
                               exchange_ns=t, receipt_ns=t + 2)))
        out.append((t, jr.order_action(worker, i, "place", market=MA, side="ask", price=5_300,
                                       count=100, client_order_id=f"c{i}")))
        if i % 3 == 0:
            out.append((t, jr.theo("EV", {MA: 0.5}, None, "consensus", t)))
    return out


def view_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {v: con.execute(f"SELECT count(*) FROM {v}").fetchone()[0]
            for v in ("book_tops", "fills", "orders", "theos")}


def table_rows(data_dir: Path) -> dict[str, int]:
    """Rows per j_* table, every file counted (no dedupe)."""
    con = duckdb.connect()
    try:
        root = store.record_root(data_dir)
        return {f"j_{k}": con.execute(f"SELECT count(*) FROM read_parquet('{root}/j_{k}/*.parquet')")
                .fetchone()[0] for k in store.JOURNAL_TABLES}
    finally:
        con.close()


def test_ingest_twice_gives_the_same_rows_and_skips_done_segments(tmp_path):
    write_journal(tmp_path, "w1", some_records(30), segment_max_bytes=2_000)
    first = ingest(tmp_path, now_ns=T0, database=False)
    assert first.segments_seen == first.segments_ingested > 3 and first.segments_skipped == 0
    assert first.rows == {"j_book_top": 30, "j_fill": 30, "j_order_action": 30, "j_theo": 10}
    assert first.invalid_lines == 0
    before = table_rows(tmp_path)
    files = sorted(p.name for p in store.record_root(tmp_path).rglob("*.parquet"))
    # done segments are not even opened again: garbage in one would otherwise be counted
    jr.published_segments(journal_root(tmp_path))[0].write_text("not json\n")
    second = ingest(tmp_path, now_ns=T0 + S, database=False)
    assert second.segments_ingested == 0 and second.segments_skipped == first.segments_seen
    assert second.invalid_lines == 0
    assert second.rows == {} and second.files_written == 0
    assert table_rows(tmp_path) == before
    assert sorted(p.name for p in store.record_root(tmp_path).rglob("*.parquet")) == files
    # a new segment is the only work of the next run
    write_journal(tmp_path, "w2", some_records(2, "w2", start=99))
    third = ingest(tmp_path, now_ns=T0 + 2 * S, database=False)
    assert (third.segments_ingested, third.rows["j_fill"]) == (1, 2)
    with db.connect(tmp_path) as con:
        assert view_counts(con) == {"book_tops": 32, "fills": 32, "orders": 32, "theos": 11}


def test_a_crash_between_kinds_is_redone_exactly(tmp_path):
    write_journal(tmp_path, "w1", some_records(6))
    ingest(tmp_path, now_ns=T0, database=False)
    (segment,) = jr.published_segments(journal_root(tmp_path))
    key = segment_key(segment)
    fill_file = store.record_root(tmp_path) / "j_fill" / f"{key}.parquet"
    book_file = store.record_root(tmp_path) / "j_book_top" / f"{key}.parquet"
    book_before = book_file.stat().st_mtime_ns
    # the crash: fills not yet written, no marker
    fill_file.unlink()
    (marker_dir(tmp_path) / key).unlink()
    again = ingest(tmp_path, now_ns=T0 + S, database=False)
    assert again.segments_ingested == 1 and again.files_written == 1
    assert again.rows == {"j_fill": 6}
    assert fill_file.exists() and book_file.stat().st_mtime_ns == book_before
    assert (marker_dir(tmp_path) / key).exists()
    assert table_rows(tmp_path) == {"j_book_top": 6, "j_theo": 2, "j_quote_decision": 0,
                                     "j_order_action": 6, "j_ack": 0, "j_fill": 6,
                                     "j_state_change": 0, "j_refusal": 0, "j_reconcile": 0,
                                     "j_error": 0}


def test_invalid_lines_are_counted_as_read_records_counts_them(tmp_path):
    worker = journal_root(tmp_path) / "w9"
    worker.mkdir(parents=True)
    good = jr.fill("t1", "o1", MA, "bid", 5_000, 100, 10, False, 100, exchange_ns=T0, receipt_ns=T0)
    lines = [json.dumps({**good, "worker_id": "w9", "ts_ns": T0}), "not json", "[1, 2]",
             '{"kind": 3, "id": "x"}', "", '{"kind": "mystery", "id": "m1"}',
             json.dumps({**good, "id": "t2", "trade_id": "t2", "worker_id": "w9", "ts_ns": T0})]
    segment = worker / f"seg-{T0:020d}-000000.jsonl"
    segment.write_text("\n".join(lines) + "\n")
    skipped: list[jr.InvalidLine] = []
    kept = list(jr.read_records([segment], on_invalid=skipped.append))
    report = ingest(tmp_path, now_ns=T0, database=False)
    assert report.invalid_lines == len(skipped) == 4
    assert [(b.line_no, b.reason.split(":")[0]) for b in report.invalid] == [
        (b.line_no, b.reason.split(":")[0]) for b in skipped]
    assert report.unknown_kinds == {"mystery": 1}
    assert report.rows == {"j_fill": sum(1 for r in kept if r["kind"] == "fill")} == {"j_fill": 2}


def test_ingest_races_a_live_writer_while_a_reader_holds_the_database_file(tmp_path):
    """A thread appends and rotates (small segments) while this thread ingests after every batch
    it starts; a read-only connection to mm.duckdb stays open throughout. Nothing is lost and
    nothing fails: the reader's views end with every record written."""
    cfg = JournalConfig(root=journal_root(tmp_path), worker_id="live", segment_max_bytes=1_500,
                        fsync_every_records=50)
    journal = Journal.open(cfg, T0)
    ingest(tmp_path, now_ns=T0)  # writes mm.duckdb
    reader = duckdb.connect(str(db.database_path(tmp_path)), read_only=True)
    batches, per_batch = 8, 10
    go = threading.Semaphore(0)
    written: Counter[str] = Counter()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for b in range(batches):
                go.acquire()
                for now_ns, rec in some_records(per_batch, f"b{b}", start=b * per_batch):
                    journal.append(rec, now_ns)
                    written[rec["kind"]] += 1
                if b % 3 == 2:
                    journal.rotate(T0)
            journal.close()
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)
            journal.close()

    thread = threading.Thread(target=writer)
    thread.start()
    reports = []
    mid_counts = []
    for _ in range(batches):
        go.release()
        reports.append(ingest(tmp_path, now_ns=T0))  # runs while the writer appends
        mid_counts.append(reader.execute("SELECT count(*) FROM fills").fetchone()[0])
    thread.join()
    reports.append(ingest(tmp_path, now_ns=T0))
    assert not errors
    assert sum(r.segments_ingested for r in reports) == len(jr.published_segments(journal_root(tmp_path)))
    assert all(r.invalid_lines == 0 for r in reports)
    assert mid_counts == sorted(mid_counts)  # the reader saw the record grow, never shrink
    assert view_counts(reader) == {"book_tops": written["book_top"], "fills": written["fill"],
                                   "orders": written["order_action"], "theos": written["theo"]}
    assert written["fill"] == batches * per_batch
    reader.close()
