"""Builders shared by the tests of mmcore.record (no tests here): real journals written with
:class:`mmcore.worker.journal.Journal` and its record constructors, record tables written with
:func:`mmcore.record.store.write_rows`, and the tiny hand-computed dataset of
``test_record_analytics`` / ``test_record_audit``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mmcore.record import store
from mmcore.worker import journal as jr
from mmcore.worker.journal import Journal, JournalConfig

S = 1_000_000_000
MS = 1_000_000
T0 = (1_767_225_600 + 15 * 3600) * S
"""2026-01-01 15:00:00 UTC, in ns."""
DAY = "2026-01-01"
EV = "KXNBAGAME-26JAN01AAABBB"
MA, MB = f"{EV}-AAA", f"{EV}-BBB"


def journal_root(data_dir: Path) -> Path:
    return data_dir / "journal"


def write_journal(data_dir: Path, worker_id: str, records: Iterable[tuple[int, Mapping[str, Any]]],
                  **config: int) -> None:
    """Append ``(now_ns, record)`` pairs to ``worker_id``'s journal and close it (publishing the
    last segment). ``config``: JournalConfig overrides (segment_max_bytes, …); records are
    fsync'd at rotation only unless ``fsync_every_records`` says otherwise (tests need no
    per-record durability, and fsyncs are most of their time)."""
    items = list(records)
    config.setdefault("fsync_every_records", 1_000_000)
    cfg = JournalConfig(root=journal_root(data_dir), worker_id=worker_id, **config)
    with Journal.open(cfg, items[0][0] if items else 0) as j:
        for now_ns, rec in items:
            j.append(rec, now_ns)


def write_table(data_dir: Path, table: str, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
    store.write_rows(store.record_root(data_dir), table, name, rows)


def top(market: str, bid: int | None, ask: int | None, at_ns: int) -> tuple[int, dict[str, Any]]:
    """A book_top at exchange time ``at_ns`` (received 5 ms later), 1 000 centi-contracts a side."""
    return at_ns + 5 * MS, jr.book_top(market, bid, 1_000, ask, 1_000, seq=None, sid=None,
                                        exchange_ns=at_ns, receipt_ns=at_ns + 5 * MS)


def tiny_dataset(data_dir: Path) -> None:
    """The hand-computed example (expected numbers in test_record_analytics):

    market MA (maker fees, multiplier 1; settled YES), book mids 5500 @T0, 5700 @+1 s,
    5600 @+5 s, 5350 @+30 s; our quotes 5500/5700 (spread 200); theo 0.56, 0.58 from T0+3 s.
    Fill t1: bid 5500 × 10 contracts @T0, fee 500 (+ a backfilled copy by a restarted worker).
    Fill t2: ask 5700 × 5 contracts @T0+2 s, fee 300.
    """
    records = [
        (T0 - 10 * S, jr.theo(EV, {MA: 0.56, MB: 0.44}, 0.01, "consensus", T0 - 11 * S)),
        (T0 - 1 * S, jr.quote_decision("w1", 1, [
            {"market": MA, "side": "bid", "price": 5_500, "count": 1_000},
            {"market": MA, "side": "ask", "price": 5_700, "count": 1_000}])),
        top(MA, 5_400, 5_600, T0),
        (T0 + 2 * MS, jr.fill("t1", "o1", MA, "bid", 5_500, 1_000, 500, False, 1_000,
                             exchange_ns=T0, receipt_ns=T0 + 2 * MS)),
        top(MA, 5_600, 5_800, T0 + 1 * S),
        (T0 + 2 * S + 2 * MS, jr.fill("t2", "o2", MA, "ask", 5_700, 500, 300, False, 500,
                                     exchange_ns=T0 + 2 * S, receipt_ns=T0 + 2 * S + 2 * MS)),
        (T0 + 3 * S, jr.theo(EV, {MA: 0.58, MB: 0.42}, 0.01, "consensus", T0 + 2 * S)),
        top(MA, 5_500, 5_700, T0 + 5 * S),
        top(MA, 5_300, 5_400, T0 + 30 * S),
    ]
    write_journal(data_dir, "w1", records)
    # a restarted worker backfills t1 from GET /portfolio/fills (driver._backfill_fills' shape)
    write_journal(data_dir, "w1b", [(T0 + 60 * S, {
        "kind": "fill", "id": "t1", "order_id": "o1", "market": MA, "side": "bid",
        "price": 5_500, "count": 1_000, "fee": 500, "is_taker": False, "exchange_ns": T0,
        "receipt_ns": T0 + 60 * S, "backfill": True})])
    write_table(data_dir, "events", "r1", [{
        "refresh_id": "r1", "observed_ns": T0 - 3600 * S, "event_ticker": EV,
        "series_ticker": "KXNBAGAME", "sport_key": "basketball_nba", "start_ns": T0 + 3600 * S,
        "fee_type": "quadratic_with_maker_fees", "fee_multiplier": 1.0, "markets": 2}])
    write_table(data_dir, "markets", "r1", [
        {"refresh_id": "r1", "observed_ns": T0 - 3600 * S, "market": m, "event_ticker": EV,
         "status": "active"} for m in (MA, MB)])
    write_table(data_dir, "settlements", "s1", [
        {"market": MA, "event_ticker": EV, "result": "yes", "settled_ns": T0 + 4 * 3600 * S,
         "yes_count": 500, "no_count": 0, "revenue": 50_000, "fee": 0,
         "observed_ns": T0 + 4 * 3600 * S}])
