"""mmcore.record.markouts_polars against the v_markouts view it replaces in the audit: row for row
on the tiny hand-computed dataset and on a seeded random one (one-sided books, fills before any
book update, missing theos and quotes, backfilled fills, a game without a markets row, UTC
midnight inside the games), and the audit's tables from both engines."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from test_record_kit import DAY, MS, T0, S, tiny_dataset, write_journal, write_table

from mmcore.errors import InputError
from mmcore.record import db, markouts_polars
from mmcore.record.audit import RESULTS, run_audit
from mmcore.record.ingest import ingest
from mmcore.worker import journal as jr

RUN_COLUMNS = ("run_id", "run_ns")
R0 = (1_767_225_600 + 23 * 3600) * S
"""2026-01-01 23:00 UTC: the random games run over UTC midnight."""
R_SPAN = 2 * 3600 * S
RDAY1, RDAY2 = "2026-01-01", "2026-01-02"
GAMES = {  # event → markets; the last game has no markets row (event from the ticker)
    "KXNBAGAME-26JAN01AAABBB": ("AAA", "BBB"),
    "KXNHLGAME-26JAN01CCCDDD": ("CCC", "DDD"),
    "KXEPLGAME-26JAN02EEEFFF": ("EEE", "FFF", "TIE"),
}
UNRECORDED_GAME = "KXEPLGAME-26JAN02EEEFFF"


def random_dataset(data_dir: Path, seed: int = 11, fills_per_game: int = 1_100) -> None:
    """Workers journal book tops, theos, quote decisions and fills of three games (two workers
    quote the first, on the same markets) over two hours around UTC midnight, at ns-resolution
    random times (so no two updates of a market share one). Built to give v_markouts every case:
    one-sided books (NULL mids), markets quoted one-sided (spread from the book), quotes on two
    levels, a market never quoted, fills before a market's first book update and before the
    first theo (NULL mids / theos), fills exactly at, or h seconds before, a book update (the
    as-of boundary), book tops without exchange time, tops ingested twice, and backfilled copies
    of fills."""
    rnd = random.Random(seed)
    for g, (event, codes) in enumerate(GAMES.items()):
        workers = [f"w{g}", f"w{g}x"] if g == 0 else [f"w{g}"]  # two workers quote game 0
        markets = [f"{event}-{c}" for c in codes]
        records: dict[str, list[tuple[int, dict[str, Any]]]] = {w: [] for w in workers}
        top_times: dict[str, list[int]] = {}
        for k, market in enumerate(markets):
            first = R0 + (k + 1) * 300 * S  # books start 5, 10, 15 min in: earlier fills have none
            times = sorted(rnd.sample(range(first, R0 + R_SPAN), 400))
            top_times[market] = times
            one_sided = 0.5 if k == 1 else 0.08
            for t in times:
                bid = 100 * rnd.randint(20, 75)
                ask = bid + 100 * rnd.randint(1, 3)
                if rnd.random() < one_sided:
                    bid, ask = (None, ask) if rnd.random() < 0.5 else (bid, None)
                no_exchange_time = rnd.random() < 0.1
                receipt = t + rnd.randint(1, 20) * MS
                records[workers[0]].append((receipt, jr.book_top(
                    market, bid, 1_000, ask, 1_000, seq=None, sid=None,
                    exchange_ns=None if no_exchange_time else t, receipt_ns=receipt)))
        for t in sorted(rnd.sample(range(R0 + 20 * 60 * S, R0 + R_SPAN), 60)):  # theos from +20 min
            probs = [rnd.uniform(0.05, 0.95) for _ in markets]
            total = sum(probs)
            records[workers[0]].append((t, jr.theo(
                event, {m: p / total for m, p in zip(markets, probs)}, 0.01, "consensus", t - S)))
        for worker in workers:
            for seq, t in enumerate(sorted(rnd.sample(range(R0, R0 + R_SPAN), 250)), 1):
                quotes = []
                for k, market in enumerate(markets[:2]):  # the third market is never quoted
                    bid = 100 * rnd.randint(20, 75)
                    ask = bid + 100 * rnd.randint(1, 4)
                    sides = [("bid", bid), ("ask", ask)]
                    if rnd.random() < 0.3:  # a second level on each side, further out
                        sides += [("bid", bid - 200), ("ask", ask + 200)]
                    if k == 1 and rnd.random() < 0.5:
                        sides = [rnd.choice(sides)]  # one-sided: no quoted spread
                    quotes += [{"market": market, "side": s, "price": p, "count": 1_000}
                               for s, p in sides]
                records[worker].append((t, jr.quote_decision(worker, seq, quotes)))
        backfills = []
        for i in range(fills_per_game):
            worker, market = rnd.choice(workers), rnd.choice(markets)
            r = rnd.random()
            if r < 0.1:  # exactly at a book update, or 1 / 5 / 30 s before one
                t = rnd.choice(top_times[market]) - S * rnd.choice((0, 1, 5, 30))
            elif r < 0.15:  # before the market's first book update
                t = rnd.randrange(R0, top_times[market][0])
            else:
                t = rnd.randrange(R0, R0 + R_SPAN)
            side = rnd.choice(("bid", "ask"))
            price = 100 * rnd.randint(10, 90)
            count = 100 * rnd.randint(1, 20)
            receipt = t + rnd.randint(1, 30) * MS
            exchange = None if rnd.random() < 0.05 else t
            fill = jr.fill(f"g{g}-t{i}", f"g{g}-o{i // 3}", market, side, price, count,
                           rnd.randint(0, 200), rnd.random() < 0.3, 0, exchange_ns=exchange,
                           receipt_ns=receipt)
            records[worker].append((receipt, fill))
            if rnd.random() < 0.05:  # the restarted worker's backfilled copy
                backfills.append((R0 + R_SPAN + i, {**fill, "receipt_ns": R0 + R_SPAN + i,
                                                    "backfill": True}))
        for worker, items in records.items():
            items.sort(key=lambda item: item[0])
            write_journal(data_dir, worker, items)
        tops = [rec for rec in records[workers[0]] if rec[1]["kind"] == "book_top"]
        write_journal(data_dir, f"w{g}b", tops[::40] + backfills)  # some tops ingested twice
    write_table(data_dir, "markets", "r1", [
        {"refresh_id": "r1", "observed_ns": R0 - 3600 * S, "market": f"{event}-{c}",
         "event_ticker": event, "status": "active"}
        for event, codes in GAMES.items() if event != UNRECORDED_GAME for c in codes])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("tiny")
    tiny_dataset(d)
    ingest(d, now_ns=T0, database=False)
    return d


@pytest.fixture(scope="module")
def random_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("random")
    random_dataset(d)
    ingest(d, now_ns=R0, database=False)
    return d


# --- helpers ---------------------------------------------------------------------------------------


def view_rows(con: duckdb.DuckDBPyConnection, where: str = "") -> list[dict[str, Any]]:
    """v_markouts' rows (the columns markouts_polars returns) in fill-time order."""
    cols = ", ".join(f'"{c}"' for c in markouts_polars.COLUMNS)
    return con.sql(f"SELECT {cols} FROM v_markouts {where} ORDER BY fill_ns, trade_id").pl().to_dicts()


def same(a: Any, b: Any) -> bool:
    """Equal, floats to rounding: sums over fills in another order differ in the last bits
    (e.g. v_pnl's residual, ~1e-9 price units here)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-6)
    return type(a) is type(b) and a == b


def assert_same_rows(got: Sequence[Mapping[str, Any]], want: Sequence[Mapping[str, Any]],
                     key: str) -> None:
    assert [r[key] for r in got] == [r[key] for r in want]
    for g, w in zip(got, want):
        assert list(g) == list(w)
        diff = {c: (g[c], w[c]) for c in w if not same(g[c], w[c])}
        assert not diff, f"{key} {w[key]}: {diff}"


def without_run(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in RUN_COLUMNS} for r in rows]


# --- per-fill markouts -----------------------------------------------------------------------------


def test_columns_and_types_are_those_of_v_markouts_but_three_the_audit_does_not_read(tiny_dir):
    with db.connect(tiny_dir) as con:
        frame = markouts_polars.markouts(con)
        view = [r[0] for r in con.execute("DESCRIBE v_markouts").fetchall()]
        cols = ", ".join(f'"{c}"' for c in markouts_polars.COLUMNS)
        view_schema = con.sql(f"SELECT {cols} FROM v_markouts").pl().schema
    assert frame.columns == list(markouts_polars.COLUMNS)
    assert set(view) - set(frame.columns) == {"is_taker", "order_id", "backfill"}
    assert frame.schema == view_schema


def test_tiny_dataset_matches_the_view_and_the_hand_computation(tiny_dir):
    with db.connect(tiny_dir) as con:
        got = markouts_polars.markouts(con).to_dicts()
        want = view_rows(con)
    assert_same_rows(got, want, "trade_id")
    t1, t2 = got
    assert (t1["mid_0"], t1["mid_1s"], t1["mid_5s"], t1["mid_30s"]) == (5_500, 5_700, 5_600, 5_350)
    assert (t1["markout_mid_30s"], t1["flag_30s"], t1["flagged"]) == (-150, True, True)
    assert (t2["markout_theo_1s"], t2["quoted_spread"], t2["quoted_spread_source"]) == (
        -100, 200, "decision")


def test_random_dataset_matches_the_view_row_for_row(random_dir):
    with db.connect(random_dir) as con:
        frame = markouts_polars.markouts(con)
        want = view_rows(con)
    got = frame.to_dicts()
    assert len(got) == 3 * 1_100
    assert_same_rows(got, want, "trade_id")
    # the dataset reaches every case the comparison is meant to cover
    null_mid = [r for r in want if r["mid_0"] is None]
    assert any(r["fill_ns"] < R0 + 300 * S for r in null_mid)  # before any book update
    assert any(r["fill_ns"] > R0 + 900 * S for r in null_mid)  # after a one-sided update
    assert any(r["theo_0"] is None for r in want) and any(r["theo_0"] is not None for r in want)
    sources = {r["quoted_spread_source"] for r in want}
    assert sources == {"decision", "book", None}
    assert any(r["flag_30s"] is None for r in want)
    assert 0 < sum(r["flagged"] for r in want) < len(want)
    assert {r["day"].isoformat() for r in want} == {RDAY1, RDAY2}
    assert any(r["event_ticker"] == UNRECORDED_GAME for r in want)


def test_a_day_gives_the_fills_of_the_games_traded_that_day(random_dir):
    """Every game here trades on both days; a day with no fills gives none."""
    with db.connect(random_dir) as con:
        both = markouts_polars.markouts(con, day=RDAY2).to_dicts()
        want = view_rows(con)
        none = markouts_polars.markouts(con, day="2026-01-03")
    assert_same_rows(both, want, "trade_id")
    assert none.height == 0 and none.columns == list(markouts_polars.COLUMNS)


def test_a_day_leaves_out_games_not_traded_that_day(tmp_path):
    tiny_dataset(tmp_path)
    ev2 = "KXNBAGAME-26JAN02GGGHHH"
    write_journal(tmp_path, "w9", [(T0 + 86_400 * S, jr.fill(
        "t9", "o9", f"{ev2}-GGG", "bid", 4_000, 100, 0, False, 100, exchange_ns=T0 + 86_400 * S,
        receipt_ns=T0 + 86_400 * S))])
    ingest(tmp_path, now_ns=T0, database=False)
    with db.connect(tmp_path) as con:
        day1 = markouts_polars.markouts(con, day=DAY)
        day2 = markouts_polars.markouts(con, day="2026-01-02").to_dicts()
        want2 = view_rows(con, f"WHERE event_ticker = '{ev2}'")
    assert day1["trade_id"].to_list() == ["t1", "t2"]
    assert_same_rows(day2, want2, "trade_id")
    assert day2[0]["mid_0"] is None and day2[0]["quoted_spread_source"] is None


def test_an_empty_record_gives_an_empty_table(tmp_path):
    with db.connect(tmp_path) as con:
        frame = markouts_polars.markouts(con)
    assert frame.height == 0 and frame.columns == list(markouts_polars.COLUMNS)


# --- the audit on both engines ---------------------------------------------------------------------


@pytest.mark.parametrize("day", [DAY, None])
def test_audit_tables_are_the_same_from_both_engines_on_the_tiny_dataset(tiny_dir, day):
    polars_run = run_audit(tiny_dir, day=day, now_ns=T0 + 10)
    duckdb_run = run_audit(tiny_dir, day=day, now_ns=T0 + 11, engine="duckdb")
    for name in RESULTS:
        assert polars_run.tables[name], name  # the tiny dataset fills every table
        assert_tables_equal(polars_run.tables[name], duckdb_run.tables[name], name)
    (via,) = polars_run.tables["viability"]
    assert (via["net"], via["flagged_fills"]) == (-550, 1)


@pytest.mark.parametrize("day", [RDAY1, RDAY2, None])
def test_audit_tables_are_the_same_from_both_engines_on_the_random_dataset(random_dir, day):
    polars_run = run_audit(random_dir, day=day, now_ns=R0 + 10)
    duckdb_run = run_audit(random_dir, day=day, now_ns=R0 + 11, engine="duckdb")
    for name in RESULTS:
        assert polars_run.tables[name], name
        assert_tables_equal(polars_run.tables[name], duckdb_run.tables[name], name)
    fills = sum(r["fills"] for r in polars_run.tables["viability"])
    assert 0 < fills <= 3 * 1_100 and (day is not None or fills == 3 * 1_100)


def assert_tables_equal(got: list[dict[str, Any]], want: list[dict[str, Any]], name: str) -> None:
    got, want = without_run(got), without_run(want)
    assert len(got) == len(want), name
    for i, (g, w) in enumerate(zip(got, want)):
        assert list(g) == list(w), name
        diff = {c: (g[c], w[c]) for c in w if not same(g[c], w[c])}
        assert not diff, f"{name} row {i}: {diff}"


def test_the_audit_reads_the_markouts_the_polars_engine_registers(tiny_dir, monkeypatch):
    """The default engine computes with markouts_polars, and the audit's SQL reads what it
    registered (here: t2 left out), not v_markouts; engine="duckdb" does not call it."""
    calls: list[str | None] = []
    real = markouts_polars.markouts

    def without_t2(con: duckdb.DuckDBPyConnection, *, day: str | None = None) -> pl.DataFrame:
        calls.append(day)
        return real(con, day=day).filter(pl.col("trade_id") != "t2")

    monkeypatch.setattr(markouts_polars, "markouts", without_t2)
    res = run_audit(tiny_dir, day=DAY, now_ns=T0 + 20)
    assert calls == [DAY]
    (via,) = res.tables["viability"]
    assert (via["fills"], via["contracts"]) == (1, 10.0)
    assert {r["side"] for r in res.tables["markouts"]} == {"bid"}
    res = run_audit(tiny_dir, day=DAY, now_ns=T0 + 21, engine="duckdb")
    assert calls == [DAY] and res.tables["viability"][0]["fills"] == 2


def test_an_unknown_engine_is_refused(tiny_dir):
    with pytest.raises(InputError):
        run_audit(tiny_dir, day=DAY, now_ns=T0, engine="pandas")  # type: ignore[arg-type]


# --- the benchmark's row ---------------------------------------------------------------------------


def test_bench_audit_polars_row_gives_the_checksums_of_the_view() -> None:
    """bench/audit.py's audit-polars row (markouts_polars over a record) matches the others."""
    bench = Path(__file__).resolve().parent.parent / "bench" / "audit.py"
    proc = subprocess.run([sys.executable, str(bench), "--fills", "2000", "--tops", "40000",
                           "--engines", "duckdb,duckdb-view,audit-polars"],
                          check=False, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    rows = {ln.split()[0]: ln.split() for ln in proc.stdout.splitlines()
            if ln.split()[:1] and ln.split()[0] in ("duckdb", "duckdb-view", "audit-polars")}
    assert sorted(rows) == ["audit-polars", "duckdb", "duckdb-view"], proc.stdout
    for cells in rows.values():
        assert cells[-2:] == ["6,000", "yes"], cells  # 2,000 fills × 3 horizons, same checksums
