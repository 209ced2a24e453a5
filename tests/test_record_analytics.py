"""The record's views against hand-computed numbers on a tiny dataset (test_record_kit.tiny_dataset),
plus the journal shapes the worker engine writes (theo arrays, ok/error acks, venue refusals)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_record_kit import (
    DAY,
    EV,
    MA,
    MS,
    T0,
    S,
    tiny_dataset,
    top,
    write_journal,
    write_table,
)

from mmcore import fees
from mmcore.record import db
from mmcore.record.ingest import ingest
from mmcore.worker import journal as jr


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("tiny")
    tiny_dataset(data_dir)
    ingest(data_dir, now_ns=T0, database=False)
    return data_dir


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> duckdb.DuckDBPyConnection:
    con = db.connect(tiny_dir)
    yield con
    con.close()


def rows(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def one(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> dict[str, Any]:
    (row,) = rows(con, sql, *params)
    return row


# --- dedupe ------------------------------------------------------------------------------------


def test_backfilled_and_live_copies_of_a_fill_count_once_and_the_live_copy_wins(tiny, tiny_dir):
    files = [str(p) for p in (tiny_dir / "record" / "j_fill").glob("*.parquet")]
    raw = one(tiny, "SELECT count(*) AS n FROM read_parquet(?, union_by_name = true)", files)
    assert raw["n"] == 3  # t1 live, t2 live, t1 backfilled by the restarted worker
    fills = rows(tiny, "SELECT trade_id, worker_id, backfill, post_position FROM fills ORDER BY 1")
    assert fills == [
        {"trade_id": "t1", "worker_id": "w1", "backfill": False, "post_position": 1_000},
        {"trade_id": "t2", "worker_id": "w1", "backfill": False, "post_position": 500},
    ]


# --- markouts ----------------------------------------------------------------------------------


def test_markouts_against_mid_and_theo_match_the_hand_computation(tiny):
    t1 = one(tiny, "SELECT * FROM v_markouts WHERE trade_id = 't1'")
    # bought at 0.55; mid 0.55 at the fill, 0.57 one second later → +200 price units (+2¢)
    assert (t1["mid_0"], t1["mid_1s"], t1["mid_5s"], t1["mid_30s"]) == (5_500, 5_700, 5_600, 5_350)
    assert (t1["edge_mid"], t1["markout_mid_1s"], t1["markout_mid_5s"], t1["markout_mid_30s"]) == (
        0, 200, 100, -150)
    assert t1["markout_mid_1s_c"] == 2.0
    assert t1["edge_theo"] == pytest.approx(100) and t1["markout_theo_5s"] == pytest.approx(300)
    assert (t1["side"], t1["sign"], t1["contracts"]) == ("bid", 1, 10.0)
    assert str(t1["day"]) == DAY and t1["hour"].hour == 15 and t1["event_ticker"] == EV
    t2 = one(tiny, "SELECT * FROM v_markouts WHERE trade_id = 't2'")
    # sold at 0.57 at T0+2 s (mid 0.57): −(5600 − 5700) = +100 at +5 s, −(5350 − 5700) = +350 at +30 s
    assert (t2["edge_mid"], t2["markout_mid_1s"], t2["markout_mid_5s"], t2["markout_mid_30s"]) == (
        0, 0, 100, 350)
    # theo moved to 0.58 at T0+3 s = t2 + 1 s: selling at 0.57 is then −100 against theo
    assert t2["markout_theo_1s"] == pytest.approx(-100) and t2["edge_theo"] == pytest.approx(100)


def test_markout_flag_when_worse_than_half_the_quoted_spread(tiny):
    flags = rows(tiny, "SELECT trade_id, quoted_spread, quoted_spread_source, flag_1s, flag_5s, "
                       "flag_30s, flagged FROM v_markouts ORDER BY trade_id")
    # quoted 5500/5700: half-spread 100; t1's −150 at +30 s is worse, t2 is never negative
    assert flags == [
        {"trade_id": "t1", "quoted_spread": 200, "quoted_spread_source": "decision",
         "flag_1s": False, "flag_5s": False, "flag_30s": True, "flagged": True},
        {"trade_id": "t2", "quoted_spread": 200, "quoted_spread_source": "decision",
         "flag_1s": False, "flag_5s": False, "flag_30s": False, "flagged": False},
    ]
    assert [r["trade_id"] for r in rows(tiny, "SELECT trade_id FROM v_markout_flags")] == ["t1"]


# --- fees --------------------------------------------------------------------------------------


def test_fee_audit_recomputes_the_maker_fee_schedule(tiny):
    got = rows(tiny, "SELECT trade_id, fee_type, fee_known, schedule_fee_raw, schedule_trade_fee, "
                     "schedule_fee_cent, schedule_fee, fee_diff, order_alert FROM v_fees ORDER BY 1")
    # 0.0175 × 10 × 0.55 × 0.45 $ = 433.125 price units → 434 ($0.0001 up), 500 (cent up);
    # 0.0175 × 5 × 0.57 × 0.43 $ = 214.4625 → 215, 300
    assert got == [
        {"trade_id": "t1", "fee_type": "quadratic_with_maker_fees", "fee_known": True,
         "schedule_fee_raw": 433.125, "schedule_trade_fee": 434, "schedule_fee_cent": 500,
         "schedule_fee": 500, "fee_diff": 0, "order_alert": False},
        {"trade_id": "t2", "fee_type": "quadratic_with_maker_fees", "fee_known": True,
         "schedule_fee_raw": 214.4625, "schedule_trade_fee": 215, "schedule_fee_cent": 300,
         "schedule_fee": 300, "fee_diff": 0, "order_alert": False},
    ]


def test_fee_audit_follows_the_per_order_accumulator_and_flags_overcharges(tmp_path):
    """Random partial fills (seeded) of several orders: v_fees.schedule_fee equals
    mmcore.fees.order_fees fill by fill (trade fee + rounding − rebates); an overcharged order is
    an alert."""
    rnd = random.Random(7)
    fee_types = ["quadratic", "quadratic_with_maker_fees", "quadratic_with_combo_maker_fees"]
    records, expected = [], {}
    events, t = [], T0
    for o in range(6):
        ev, ft = f"KXTEST-26JAN01O{o}", fee_types[o % 3]
        mult = [1.0, 0.5, 1.25][o % 3]
        events.append({"refresh_id": "r", "observed_ns": T0, "event_ticker": ev,
                       "fee_type": ft, "fee_multiplier": mult})
        maker, buy = bool(o % 2), o < 3
        side = "bid" if buy else "ask"
        parts = [(rnd.choice([100, 2_500, 5_000, 9_900]) + rnd.choice([0, 5]) * (o % 2),
                  rnd.randint(1, 700)) for _ in range(rnd.randint(1, 5))]
        schedule = fees.FeeSchedule.from_series(ft, mult)
        charged = fees.order_fees(parts, maker=maker, buy=buy, schedule=schedule)
        for i, ((price, count), ff) in enumerate(zip(parts, charged)):
            t += S
            tid = f"o{o}f{i}"
            overcharge = 300 if o == 5 and i == 0 else 0
            records.append((t, jr.fill(tid, f"o{o}", f"{ev}-X", side, price, count,
                                       ff.net_fee + overcharge, not maker, 0, exchange_ns=t,
                                       receipt_ns=t)))
            expected[tid] = (ff.net_fee, ff.trade_fee, overcharge)
    write_journal(tmp_path, "wf", records)
    write_table(tmp_path, "events", "r", events)
    ingest(tmp_path, now_ns=T0, database=False)
    with db.connect(tmp_path) as con:
        got = {r["trade_id"]: r for r in rows(con, "SELECT * FROM v_fees")}
    assert set(got) == set(expected)
    for tid, (net, trade, over) in expected.items():
        assert (got[tid]["schedule_fee"], got[tid]["schedule_trade_fee"], got[tid]["fee_diff"]) == (
            net, trade, over), tid
        assert got[tid]["order_alert"] == tid.startswith("o5")


# --- viability and P&L -------------------------------------------------------------------------


def test_viability_is_spread_capture_minus_adverse_selection_minus_fees(tiny):
    v = one(tiny, "SELECT * FROM v_viability")
    # spread: t1 10×(5500−5500) + t2 −5×(5700−5700) = 0; adverse: −[10×(5350−5500) − 5×(5350−5700)]
    # = −250 (the book moved our way overall); fees 800 → net −550, not viable
    assert (str(v["day"]), v["market"], v["fills"], v["contracts"]) == (DAY, MA, 2, 15.0)
    assert (v["spread_capture"], v["adverse_selection"], v["fees"], v["net"]) == (0, -250, 800, -550)
    assert v["net_c_per_contract"] == pytest.approx(-550 / 15 / 100)
    assert v["viable"] is False and v["flagged_fills"] == 1
    assert v["net_theo"] == pytest.approx(10 * 300 + 5 * -100 - 800)


def test_pnl_marks_to_settlement_and_its_attribution_adds_up(tiny):
    p = one(tiny, "SELECT * FROM v_pnl")
    # long 5 contracts: cash −10×5500 + 5×5700 = −26500, fees 800; settled YES → 5 × 10000
    assert (p["position"], p["trading_cash"], p["fees"], p["realised_cash"]) == (500, -26_500, 800, -27_300)
    assert (p["mark_source"], p["mark"], p["pnl"], p["pnl_settled"]) == ("settlement", 10_000, 22_700, 22_700)
    assert p["pnl_theo"] == pytest.approx(-27_300 + 5 * 5_800)
    # carry: 10×(10000−5350) − 5×(10000−5350) = 23250; 0 − (−250) + 23250 − 800 = 22700
    assert (p["spread_capture"], p["adverse_selection"], p["inventory_carry"]) == (0, -250, 23_250)
    assert p["residual"] == 0
    g = one(tiny, "SELECT * FROM v_pnl_game")
    assert (g["event_ticker"], g["pnl"], g["pnl_dollars"]) == (EV, 22_700, 2.27)


# --- engine-shaped journal records ---------------------------------------------------------------


def test_engine_theo_arrays_map_to_markets_in_the_workers_order(tmp_path):
    ev2, ev3 = "KXEPLGAME-26JAN01ARSCHE", "KXNHLGAME-26JAN01BOSNYR"
    write_table(tmp_path, "markets", "r", [
        {"refresh_id": "r", "observed_ns": T0, "market": f"{ev2}-{code}", "event_ticker": ev2}
        for code in ("TIE", "ARS", "CHE")])
    # the engine's theo record: probs/uncertainty arrays, no event_ticker field (it is in the id)
    write_journal(tmp_path, "w2", [(T0, {"kind": "theo", "id": f"{ev2}:{T0}", "probs": [0.4, 0.35, 0.25],
                                         "source": "odds", "uncertainty": [0.01, 0.02, 0.03]})])
    # no markets recorded for ev3: the order comes from the books the worker recorded
    write_journal(tmp_path, "w3", [top(f"{ev3}-NYR", 4_000, 4_200, T0), top(f"{ev3}-BOS", 5_800, 6_000, T0),
                                   (T0 + S, {"kind": "theo", "id": f"{ev3}:{T0}", "probs": [0.59, 0.41],
                                             "source": "odds", "uncertainty": []})])
    ingest(tmp_path, now_ns=T0, database=False)
    with db.connect(tmp_path) as con:
        got = rows(con, "SELECT worker_id, event_ticker, market, outcome_index, prob, uncertainty, "
                        "as_of_ns FROM theos ORDER BY worker_id, outcome_index")
    assert got == [
        {"worker_id": "w2", "event_ticker": ev2, "market": f"{ev2}-ARS", "outcome_index": 0,
         "prob": 0.4, "uncertainty": 0.01, "as_of_ns": T0},
        {"worker_id": "w2", "event_ticker": ev2, "market": f"{ev2}-CHE", "outcome_index": 1,
         "prob": 0.35, "uncertainty": 0.02, "as_of_ns": T0},
        {"worker_id": "w2", "event_ticker": ev2, "market": f"{ev2}-TIE", "outcome_index": 2,
         "prob": 0.25, "uncertainty": 0.03, "as_of_ns": T0},
        {"worker_id": "w3", "event_ticker": ev3, "market": f"{ev3}-BOS", "outcome_index": 0,
         "prob": 0.59, "uncertainty": None, "as_of_ns": T0},
        {"worker_id": "w3", "event_ticker": ev3, "market": f"{ev3}-NYR", "outcome_index": 1,
         "prob": 0.41, "uncertainty": None, "as_of_ns": T0},
    ]


def test_orders_join_acks_and_venue_refusals_and_kill_events_carry_durations(tmp_path):
    records = [
        (T0, jr.order_action("w4", 1, "place", market=MA, side="bid", price=5_500, count=1_000,
                             client_order_id="c1")),
        (T0 + 3 * MS, jr.ack("w4", 1, request_id="c1", order_id="o1", status=201, latency_ns=3 * MS)),
        # the engine's shapes: id "<run_id>:<seq>", ack {ok, error}, a venue refusal on failure
        (T0 + S, {"kind": "order_action", "id": "w4:p:2", "action": "cancel", "order_id": "o1",
                  "market": MA, "side": "bid", "reason": "requote"}),
        (T0 + S + 4 * MS, {"kind": "ack", "id": "ack:w4:p:2", "ok": False, "order_id": None,
                           "error": "429 too many requests", "latency_ns": 0}),
        (T0 + S + 4 * MS, {"kind": "refusal", "id": "venue:w4:p:2", "reason": "429 too many requests",
                           "action": {"action": "cancel", "order_id": "o1", "market": MA, "side": "bid"}}),
        (T0 + 2 * S, jr.order_action("w4", 3, "place", market=MA, side="ask", price=5_800,
                                     count=1_000, client_order_id="c3")),
        (T0 + 10 * S, jr.state_change("w4", 1, "ACTIVE", "REDUCING", ["STALE_THEO"], "theo stale")),
        (T0 + 20 * S, {"kind": "state_change", "id": "w4:p:ks:2", "from_state": "REDUCING",
                       "to_state": "HALTED", "reason": "drift", "triggers": ["RECONCILE_DRIFT_LARGE"]}),
        (T0 + 21 * S, {"kind": "error", "id": "ack-timeout:w4:p:3", "reason": "no ack for action 3"}),
    ]
    write_journal(tmp_path, "w4", records)
    ingest(tmp_path, now_ns=T0, database=False)
    with db.connect(tmp_path) as con:
        orders = rows(con, "SELECT action_id, action_seq, action, acked, ack_status, ok, refused_reason, "
                           "order_id FROM orders ORDER BY sent_ns")
        kills = rows(con, "SELECT kind, from_state, to_state, reason, event_ticker, duration_s "
                          "FROM v_kill_events ORDER BY ts_ns")
        refusal = one(con, "SELECT source, action_kind, market FROM refusals")
    assert orders == [
        {"action_id": "w4:1", "action_seq": 1, "action": "place", "acked": True, "ack_status": "201",
         "ok": True, "refused_reason": None, "order_id": "o1"},
        {"action_id": "w4:p:2", "action_seq": 2, "action": "cancel", "acked": True, "ack_status": "error",
         "ok": False, "refused_reason": "429 too many requests", "order_id": "o1"},
        {"action_id": "w4:3", "action_seq": 3, "action": "place", "acked": False, "ack_status": None,
         "ok": None, "refused_reason": None, "order_id": None},
    ]
    assert kills == [
        {"kind": "state_change", "from_state": "ACTIVE", "to_state": "REDUCING", "reason": "theo stale",
         "event_ticker": EV, "duration_s": 10.0},
        {"kind": "state_change", "from_state": "REDUCING", "to_state": "HALTED", "reason": "drift",
         "event_ticker": EV, "duration_s": None},
        {"kind": "error", "from_state": None, "to_state": None, "reason": "no ack for action 3",
         "event_ticker": EV, "duration_s": None},
    ]
    assert refusal == {"source": "venue", "action_kind": "cancel", "market": MA}
