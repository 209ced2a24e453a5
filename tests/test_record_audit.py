"""The nightly audit over the tiny hand-computed dataset: result tables, their Parquet files and
views, the markdown summary and the plot."""

from __future__ import annotations

import pytest
from test_record_kit import DAY, MA, T0, tiny_dataset

from mmcore.errors import InputError
from mmcore.record import db, store
from mmcore.record.audit import RESULTS, run_audit
from mmcore.record.ingest import ingest


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    d = tmp_path_factory.mktemp("audit")
    tiny_dataset(d)
    ingest(d, now_ns=T0, database=False)
    return d, run_audit(d, day=DAY, now_ns=T0 + 1)


def test_audit_tables_hold_the_hand_computed_numbers(audited):
    _, res = audited
    (via,) = res.tables["viability"]
    assert (via["market"], via["net"], via["viable"], via["audit_day"].isoformat()) == (MA, -550, False, DAY)
    (pnl,) = res.tables["pnl"]
    assert (pnl["pnl"], pnl["inventory_carry"], pnl["mark_source"]) == (22_700, 23_250, "settlement")
    by_side = {r["side"]: r for r in res.tables["markouts"]}  # market MA, hour 15:00, per side
    assert set(by_side) == {"bid", "ask"} and by_side["bid"]["markout_mid_1s_c"] == 2.0
    assert (by_side["ask"]["contracts"], by_side["ask"]["markout_mid_30s_c"]) == (5.0, 3.5)
    assert by_side["bid"]["flagged_fills"] == 1 and by_side["ask"]["flagged_fills"] == 0
    curve = {(r["side"], r["h_s"]): r["markout_mid_c"] for r in res.tables["markout_curve"]}
    assert curve[("bid", 1)] == 2.0 and curve[("bid", 30)] == -1.5 and curve[("ask", 30)] == 3.5
    assert [f["trade_id"] for f in res.tables["flags"]] == ["t1"]
    (fees,) = res.tables["fees"]
    assert (fees["fee_charged"], fees["fee_schedule"], fees["fee_diff"], fees["orders_alert"]) == (800, 800, 0, 0)
    (curve_row,) = res.tables["pnl_curve"]
    assert curve_row["pnl_cum"] == 22_700 and curve_row["net_markout_cum"] == -550


def test_audit_writes_one_parquet_per_result_and_the_views_read_them(audited):
    d, res = audited
    assert set(res.files) == set(RESULTS)
    for name, path in res.files.items():
        assert path == store.record_root(d) / f"audit_{name}" / f"{res.run_id}.parquet" and path.exists()
    with db.connect(d) as con:
        assert con.execute("SELECT run_id, markets, net, markets_not_viable FROM audit_runs").fetchall() == [
            (res.run_id, 1, -550.0, 1)]
        assert con.execute("SELECT count(*) FROM audit_flags").fetchone() == (1,)
    again = run_audit(d, day=DAY, now_ns=T0 + 1)  # same run: nothing rewritten
    assert again.files == {} and again.tables["viability"] == res.tables["viability"]


def test_audit_markdown_and_plot(audited):
    _, res = audited
    md = res.markdown
    assert md.startswith(f"# Audit {res.run_id}") and "not viable" in md
    assert "| 2026-01-01 | KXNBAGAME-26JAN01AAABBB-AAA | 2 | 15.00 |" in md
    assert "2.27" in md  # P&L $ of the market
    assert res.plot is not None and res.plot.exists() and res.plot.parent.name == "plots"
    head = res.plot.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") or b"<svg" in head
    if res.plot.suffix == ".svg":
        text = res.plot.read_text()
        assert text.count("<polyline") >= 4 and "bid vs mid" in text and "Cumulative P&amp;L" in text


def test_audit_of_a_day_without_fills_is_empty_not_an_error(audited):
    d, _ = audited
    res = run_audit(d, day="2026-01-02", now_ns=T0 + 2)
    assert all(rows == [] for rows in res.tables.values())
    assert "0 fill(s)" in res.markdown and res.plot is not None and res.plot.exists()


def test_bad_day_is_refused(audited):
    d, _ = audited
    with pytest.raises(InputError):
        run_audit(d, day="01/02/2026", now_ns=T0)
