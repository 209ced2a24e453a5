"""The local exchange's matching engine (:mod:`mmcore.sim.engine`).

Units as in the engine: prices and money ``int`` $0.0001 (``PRICE_ONE`` = $1, ``CENT`` = 1¢),
counts ``int`` centi-contracts (``CONTRACT`` = 1 contract), times ``int`` ns. The builders below
take cents and contracts to keep the cases readable.
"""

from __future__ import annotations

import ast
import random
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcore.fees import FEE_TYPES, FeeSchedule, effective_single_fill_fee, order_fees
from mmcore.sim.engine import (
    BookDelta, Engine, EngineError, FillEvent, LifecycleEvent, OrderEvent, OrderGroupEvent,
    OrderRequest, PositionEvent, TradeEvent,
)
from mmcore.sim.engine_accounts import UNIT, FeeBound, requirement
from mmcore.ticks import TickGrid
from mmcore.units import CENT, CONTRACT, PRICE_ONE

M = "KXNBAGAME-26MAY25NYKCLE-NYK"
M2 = "KXNBAGAME-26MAY25NYKCLE-CLE"
SEC = 1_000_000_000
RICH = 10_000 * PRICE_ONE
USERS = ("a", "b", "c", "d")


# --- builders ------------------------------------------------------------------------------------


def make_engine(
    *, balance: int = RICH, users: tuple[str, ...] = USERS, grid: TickGrid | None = None,
    fee_type: str = "quadratic_with_maker_fees", drain: bool = True,
) -> Engine:
    e = Engine()
    e.add_series("KXNBAGAME", title="NBA", fee_type=fee_type)
    e.add_event("KXNBAGAME-26MAY25NYKCLE", series_ticker="KXNBAGAME", title="New York at Cleveland")
    for t in (M, M2):
        e.add_market(t, event_ticker="KXNBAGAME-26MAY25NYKCLE", grid=grid or TickGrid.linear_cent(),
                     close_ns=10**6 * SEC)
    for u in users:
        e.add_user(u, balance=balance)
    if drain:
        e.drain_events()
    return e


def req(user: str, side: str, cents: float, contracts: float = 1, *, ticker: str = M,
        **kw: object) -> OrderRequest:
    return OrderRequest(user, ticker, side, round(cents * CENT), round(contracts * CONTRACT),
                        **kw)  # type: ignore[arg-type]


def c(cents: float) -> int:
    return round(cents * CENT)


def n(contracts: float) -> int:
    return round(contracts * CONTRACT)


def total_money(e: Engine) -> int:
    return (sum(e.balance(u) + e.reserved(u) for u in e.users) + e.collateral()
            + e.fees_collected)


def replay(events: list, ticker: str, book: dict | None = None) -> dict:
    book = {} if book is None else book
    for ev in events:
        if isinstance(ev, BookDelta) and ev.ticker == ticker:
            key = (ev.side, ev.price)
            book[key] = book.get(key, 0) + ev.delta
            assert book[key] >= 0, ev
            if book[key] == 0:
                del book[key]
    return book


def as_levels(book: dict) -> tuple[list, list]:
    yes = sorted((p, q) for (s, p), q in book.items() if s == "yes")
    no = sorted((p, q) for (s, p), q in book.items() if s == "no")
    return yes, no


# --- matching ------------------------------------------------------------------------------------


def test_price_time_priority_and_fills_at_resting_price() -> None:
    e = make_engine()
    a1 = e.place(req("a", "bid", 50, 2), 1).order
    b1 = e.place(req("b", "bid", 50, 2), 2).order
    c1 = e.place(req("c", "bid", 51, 1), 3).order
    r = e.place(req("d", "ask", 40, 4), 4)
    assert [(f.price, f.count) for f in r.fills] == [(c(51), n(1)), (c(50), n(2)), (c(50), n(1))]
    makers = [f for f in e.fills("a") + e.fills("b") + e.fills("c")]
    assert {f.order_id: f.count for f in makers} == {a1.order_id: n(2), b1.order_id: n(1),
                                                      c1.order_id: n(1)}
    assert all(not f.is_taker for f in makers) and all(f.is_taker for f in r.fills)
    assert r.order.status == "executed" and r.order.filled == n(4)
    assert e.best(M) == (c(50), n(1), None, 0)
    assert [t.price for t in e.trades(M)] == [c(51), c(50), c(50)]
    assert all(t.taker_side == "ask" for t in e.trades())


def test_resting_price_wins_for_a_crossing_bid() -> None:
    e = make_engine()
    e.place(req("a", "ask", 45, 1), 1)
    r = e.place(req("b", "bid", 60, 1), 2)
    assert r.fills[0].price == c(45) and r.average_fill_price == c(45)
    assert e.get_market(M).last_price == c(45)


def test_remainder_rests_after_sweeping_levels() -> None:
    e = make_engine()
    e.place(req("a", "ask", 45, 1), 1)
    e.place(req("a", "ask", 46, 1), 1)
    r = e.place(req("b", "bid", 47, 5), 2)
    assert r.fill_count == n(2) and r.order.remaining == n(3) and r.order.status == "resting"
    assert e.best(M) == (c(47), n(3), None, 0)


def test_immediate_or_cancel() -> None:
    e = make_engine()
    e.place(req("a", "ask", 50, 1), 1)
    part = e.place(req("b", "bid", 50, 3, time_in_force="immediate_or_cancel"), 2)
    assert (part.fill_count, part.order.remaining, part.order.status) == (n(1), 0, "canceled")
    none = e.place(req("b", "bid", 50, 3, time_in_force="immediate_or_cancel"), 3)
    assert (none.fill_count, none.order.remaining, none.order.status) == (0, 0, "canceled")
    e.place(req("a", "ask", 50, 2), 4)
    full = e.place(req("b", "bid", 55, 2, time_in_force="immediate_or_cancel"), 5)
    assert (full.order.remaining, full.order.status) == (0, "executed")
    assert e.best(M) == (None, 0, None, 0)
    assert e.reserved("b") == 0


def test_fill_or_kill_all_or_nothing() -> None:
    e = make_engine()
    e.place(req("a", "ask", 50, 1), 1)
    e.place(req("a", "ask", 51, 1), 1)
    kill = e.place(req("b", "bid", 51, 3, time_in_force="fill_or_kill"), 2)
    assert kill.fills == () and kill.order.status == "canceled"
    assert kill.order.last_update_reason == "fill_or_kill"
    assert e.best(M) == (None, 0, c(50), n(1))
    fill = e.place(req("b", "bid", 51, 2, time_in_force="fill_or_kill"), 3)
    assert fill.fill_count == n(2) and fill.order.status == "executed"


def test_fill_or_kill_self_cross_is_not_rolled_back() -> None:
    e = make_engine()
    e.place(req("b", "ask", 50, 1), 1)
    e.place(req("a", "ask", 50, 1), 2)  # own order behind b's
    r = e.place(req("a", "bid", 50, 2, time_in_force="fill_or_kill"), 3)
    assert r.fill_count == n(1) and r.order.status == "canceled"
    assert r.order.last_update_reason == "self_trade_prevention"
    assert e.position("a", M) == n(1)
    assert e.best(M) == (None, 0, c(50), n(1))  # a's own ask untouched


def test_post_only_cross_is_refused_and_nothing_rests() -> None:
    e = make_engine()
    e.place(req("a", "ask", 50, 1), 1)
    e.drain_events()
    with pytest.raises(EngineError) as exc:
        e.place(req("b", "bid", 50, 1, post_only=True), 2)
    assert (exc.value.status, exc.value.code, exc.value.details) == (400, "invalid_order",
                                                                     "post only cross")
    assert exc.value.to_body()["details"] == "post only cross"
    assert e.orders("b") == [] and e.drain_events() == []
    ok = e.place(req("b", "bid", 49, 1, post_only=True), 3)
    assert ok.order.status == "resting"


def test_self_trade_prevention_taker_at_cross() -> None:
    e = make_engine()
    ask = e.place(req("a", "ask", 50, 1), 1).order
    r = e.place(req("a", "bid", 50, 1), 2)
    assert r.fills == () and r.order.status == "canceled"
    assert r.order.last_update_reason == "self_trade_prevention"
    assert e.order("a", ask.order_id).status == "resting"


def test_self_trade_prevention_maker_cancels_resting_and_continues() -> None:
    e = make_engine()
    own = e.place(req("a", "ask", 50, 1), 1).order
    e.place(req("b", "ask", 51, 1), 2)
    r = e.place(req("a", "bid", 51, 2, self_trade_prevention="maker"), 3)
    assert [(f.price, f.count) for f in r.fills] == [(c(51), n(1))]
    cancelled = e.order("a", own.order_id)
    assert cancelled.status == "canceled"
    assert cancelled.last_update_reason == "self_trade_prevention"
    assert r.order.remaining == n(1) and e.best(M) == (c(51), n(1), None, 0)


def test_reduce_only_caps_and_refuses() -> None:
    e = make_engine()
    with pytest.raises(EngineError) as exc:
        e.place(req("a", "ask", 50, 1, reduce_only=True), 1)
    assert exc.value.code == "reduce_only_violation"
    e.place(req("b", "ask", 40, 3), 2)
    e.place(req("a", "bid", 40, 3), 3)  # a long 3
    with pytest.raises(EngineError):
        e.place(req("a", "bid", 30, 1, reduce_only=True), 4)  # would increase
    r = e.place(req("a", "ask", 60, 5, reduce_only=True), 5)
    assert r.order.initial_count == n(3) and r.order.remaining == n(3)


def test_resting_reduce_only_never_flips_the_position() -> None:
    e = make_engine()
    e.place(req("b", "ask", 40, 2), 1)
    e.place(req("a", "bid", 40, 2), 2)  # a long 2
    ro = e.place(req("a", "ask", 60, 2, reduce_only=True), 3).order
    e.place(req("a", "ask", 55, 2), 4)
    e.place(req("c", "bid", 55, 2), 5)  # a flat now
    r = e.place(req("c", "bid", 60, 2), 6)
    assert r.fills == () and e.position("a", M) == 0
    assert e.order("a", ro.order_id).status == "canceled"
    assert e.order("a", ro.order_id).last_update_reason == "reduce_only"


@pytest.mark.parametrize("price", [c(50) + 50, 0, PRICE_ONE, -CENT])
def test_price_must_be_on_the_grid(price: int) -> None:
    e = make_engine()
    with pytest.raises(EngineError) as exc:
        e.place(OrderRequest("a", M, "bid", price, n(1)), 1)
    assert (exc.value.status, exc.value.code) == (400, "invalid_order")


def test_sub_cent_prices_and_fractional_counts_on_a_deci_cent_grid() -> None:
    e = make_engine(grid=TickGrid.deci_cent())
    start = total_money(e)
    e.place(OrderRequest("a", M, "ask", 5050, 37), 1)
    r = e.place(OrderRequest("b", M, "bid", 5050, 37), 2)
    assert r.fill_count == 37 and e.position("b", M) == 37
    assert total_money(e) == start


@pytest.mark.parametrize("count", [0, -100, 1.5, True])
def test_count_must_be_positive_centi_contracts(count: object) -> None:
    e = make_engine()
    with pytest.raises(EngineError) as exc:
        e.place(OrderRequest("a", M, "bid", c(50), count), 1)  # type: ignore[arg-type]
    assert exc.value.code == "invalid_order_size"


def test_unknown_market_user_and_parameters() -> None:
    e = make_engine()
    with pytest.raises(EngineError) as exc:
        e.place(req("a", "bid", 50, ticker="NOPE"), 1)
    assert (exc.value.status, exc.value.code) == (404, "market_not_found")
    with pytest.raises(EngineError) as exc:
        e.place(req("zed", "bid", 50), 1)
    assert exc.value.status == 404
    with pytest.raises(EngineError) as exc:
        e.place(req("a", "buy", 50), 1)
    assert exc.value.code == "invalid_parameters"
    with pytest.raises(EngineError) as exc:
        e.place(req("a", "bid", 50, time_in_force="day"), 1)
    assert exc.value.code == "invalid_parameters"


def test_duplicate_client_order_id() -> None:
    e = make_engine()
    first = e.place(req("a", "bid", 40, client_order_id="q-1"), 1).order
    e.cancel("a", first.order_id, 2)
    with pytest.raises(EngineError) as exc:
        e.place(req("a", "bid", 41, client_order_id="q-1"), 3)
    assert (exc.value.status, exc.value.code) == (409, "duplicate_client_order_id")
    e.place(req("b", "bid", 41, client_order_id="q-1"), 4)  # per user


# --- cash ----------------------------------------------------------------------------------------


def test_balance_check_reserves_and_releases() -> None:
    e = make_engine(balance=0, users=())
    need = e.worst_case_cost(M, "bid", c(50), n(10))
    assert need > c(50) * 10  # price plus a fee bound
    e.add_user("a", balance=need - 1)
    e.add_user("b", balance=need)
    with pytest.raises(EngineError) as exc:
        e.place(req("a", "bid", 50, 10), 1)
    assert (exc.value.status, exc.value.code) == (400, "available_balance_too_low")
    o = e.place(req("b", "bid", 50, 10), 1).order
    assert e.balance("b") == 0 and e.reserved("b") == need
    with pytest.raises(EngineError):
        e.place(req("b", "bid", 1, 1), 2)
    e.cancel("b", o.order_id, 3)
    assert e.balance("b") == need and e.reserved("b") == 0


def test_selling_held_yes_needs_no_cash() -> None:
    e = make_engine(users=("a",))
    e.add_user("poor", balance=e.worst_case_cost(M, "bid", c(40), n(2)))
    e.place(req("a", "ask", 40, 2), 1)
    e.place(req("poor", "bid", 40, 2), 2)
    assert e.position("poor", M) == n(2)
    r = e.place(req("poor", "ask", 70, 2), 3)  # covered by the position
    assert r.order.status == "resting"
    e.cancel("poor", r.order.order_id, 4)
    with pytest.raises(EngineError):
        e.place(req("poor", "ask", 70, 10), 5)  # 8 NO at 30¢ cost more than 2 YES bring


def test_cash_flows_and_fees_of_one_trade() -> None:
    e = make_engine()
    sched = FeeSchedule("quadratic_with_maker_fees")
    e.place(req("a", "ask", 40, 10), 1)
    e.place(req("b", "bid", 40, 10), 2)
    maker_fee = effective_single_fill_fee(c(40), n(10), maker=True, schedule=sched, buy=False)
    taker_fee = effective_single_fill_fee(c(40), n(10), maker=False, schedule=sched)
    assert maker_fee > 0 and taker_fee > maker_fee
    # a sold YES it did not hold: bought NO at 60c
    assert e.balance("a") == RICH - c(60) * 10 - maker_fee
    assert e.balance("b") == RICH - c(40) * 10 - taker_fee
    assert e.collateral(M) == PRICE_ONE * 10 and e.fees_collected == maker_fee + taker_fee
    assert e.fills("a")[0].fee == maker_fee and e.fills("b")[0].fee == taker_fee
    rec = e.positions("a")[0]
    assert (rec.position, rec.cost, rec.fees_paid, rec.volume) == (-n(10), c(60) * 10, maker_fee,
                                                                    n(10))
    o = e.orders("a")[0]
    assert (o.maker_fill_cost, o.maker_fees, o.taker_fees) == (c(60) * 10, maker_fee, 0)


def test_fee_accumulator_spans_the_fills_of_one_order() -> None:
    e = make_engine()
    sched = FeeSchedule("quadratic_with_maker_fees")
    o = e.place(req("a", "bid", 50, 4), 1).order
    for t in range(4):
        e.place(req("b", "ask", 50, 1), 2 + t)
    fees = [f.fee for f in e.fills("a")]
    assert len(fees) == 4 and fees[0] == c(1)  # 0.4375¢ maker fee, floored balance: 1¢
    assert sum(fees) == effective_single_fill_fee(c(50), n(4), maker=True, schedule=sched)
    assert e.order("a", o.order_id).maker_fees == sum(fees)
    assert e.balance("a") == RICH - c(50) * 4 - sum(fees)


@given(price=st.integers(1, PRICE_ONE - 1), parts=st.lists(st.integers(1, 700), min_size=1,
                                                          max_size=12),
       fee_type=st.sampled_from(FEE_TYPES), maker=st.booleans(), buy=st.booleans())
def test_fee_bound_covers_any_split_into_fills(
    price: int, parts: list[int], fee_type: str, maker: bool, buy: bool
) -> None:
    schedule = FeeSchedule(fee_type, flat_taker_fee_per_contract=30,  # type: ignore[arg-type]
                           flat_maker_fee_per_contract=10)
    fills = order_fees([(price, k) for k in parts], maker=maker, buy=buy, schedule=schedule)
    assert sum(f.net_fee for f in fills) <= FeeBound.of(schedule)(price, sum(parts))


def test_no_maker_fee_on_plain_quadratic() -> None:
    e = make_engine(fee_type="quadratic")
    e.place(req("a", "ask", 40, 10), 1)
    e.place(req("b", "bid", 40, 10), 2)
    assert e.fills("a")[0].fee == 0 and e.fills("b")[0].fee > 0


def test_closing_trades_release_collateral_and_realize_pnl() -> None:
    e = make_engine()
    e.place(req("a", "ask", 40, 2), 1)
    e.place(req("b", "bid", 40, 2), 2)  # b long 2 @40, a short 2 (NO @60)
    e.place(req("b", "ask", 60, 2), 3)
    e.place(req("a", "bid", 60, 2), 4)  # a closes its NO: sells NO at 40
    assert e.position("a", M) == 0 and e.position("b", M) == 0
    assert e.collateral(M) == 0
    ra, rb = e.positions("a")[0], e.positions("b")[0]
    assert rb.realized_pnl == c(20) * 2 and ra.realized_pnl == -c(20) * 2
    assert e.balance("a") == RICH - c(40) - ra.fees_paid
    assert e.balance("b") == RICH + c(40) - rb.fees_paid


# --- amend, decrease, cancel ---------------------------------------------------------------------


def test_amend_count_is_the_new_total() -> None:
    e = make_engine()
    o = e.place(req("a", "bid", 50, 10), 1).order
    e.place(req("b", "ask", 50, 4), 2)
    r = e.amend("a", o.order_id, ticker=M, side="bid", price=c(50), count=n(8), now_ns=3)
    assert (r.order.filled, r.order.remaining, r.order.initial_count) == (n(4), n(4), n(8))
    with pytest.raises(EngineError) as exc:
        e.amend("a", o.order_id, ticker=M, side="bid", price=c(50), count=n(4), now_ns=4)
    assert exc.value.code == "invalid_order_size"


def test_amend_priority_rules() -> None:
    e = make_engine()
    a = e.place(req("a", "bid", 50, 5), 1).order
    b = e.place(req("b", "bid", 50, 5), 2).order
    e.amend("a", a.order_id, ticker=M, side="bid", price=c(50), count=n(3), now_ns=3)
    assert e.queue_position("b", b.order_id) == n(3)  # a kept its place
    e.amend("a", a.order_id, ticker=M, side="bid", price=c(50), count=n(4), now_ns=4)
    assert e.queue_position("a", a.order_id) == n(5)  # growing re-queues
    e.amend("a", a.order_id, ticker=M, side="bid", price=c(51), count=n(4), now_ns=5)
    e.amend("a", a.order_id, ticker=M, side="bid", price=c(50), count=n(4), now_ns=6)
    assert e.queue_position("a", a.order_id) == n(5)  # a price move loses priority
    r = e.place(req("c", "ask", 50, 5), 7)
    assert {f.order_id for f in e.fills("b")} == {b.order_id} and r.fill_count == n(5)
    assert e.fills("a") == []


def test_amend_can_cross_and_fill_as_taker() -> None:
    e = make_engine()
    e.place(req("b", "ask", 52, 2), 1)
    o = e.place(req("a", "bid", 50, 3), 2).order
    r = e.amend("a", o.order_id, ticker=M, side="bid", price=c(53), count=n(3), now_ns=3)
    assert [(f.price, f.count, f.is_taker) for f in r.fills] == [(c(52), n(2), True)]
    assert r.order.remaining == n(1) and r.order.price == c(53)
    assert e.best(M) == (c(53), n(1), None, 0)


def test_amend_refusals() -> None:
    e = make_engine()
    o = e.place(req("a", "bid", 50, 3, post_only=True, client_order_id="x"), 1).order
    e.place(req("a", "bid", 40, 1, client_order_id="y"), 1)
    e.place(req("b", "ask", 55, 1), 2)
    kw = dict(ticker=M, side="bid", price=c(50), count=n(3), now_ns=3)
    for change, code in [({"ticker": M2}, "order_ticker_mismatch"),
                         ({"side": "ask"}, "order_side_mismatch"),
                         ({"price": c(55)}, "invalid_order"),
                         ({"price": c(50) + 1}, "invalid_order")]:
        with pytest.raises(EngineError) as exc:
            e.amend("a", o.order_id, **{**kw, **change})  # type: ignore[arg-type]
        assert exc.value.code == code
    with pytest.raises(EngineError) as exc:
        e.amend("a", o.order_id, **kw, updated_client_order_id="y")  # type: ignore[arg-type]
    assert exc.value.status == 409
    with pytest.raises(EngineError) as exc:
        e.amend("b", o.order_id, **kw)  # type: ignore[arg-type]
    assert exc.value.code == "order_not_found"
    r = e.amend("a", o.order_id, **kw, updated_client_order_id="z")  # type: ignore[arg-type]
    assert r.order.client_order_id == "z"
    e.cancel("a", o.order_id, 4)
    with pytest.raises(EngineError):
        e.amend("a", o.order_id, **kw)  # type: ignore[arg-type]


def test_decrease_keeps_priority() -> None:
    e = make_engine()
    a = e.place(req("a", "bid", 50, 5), 1).order
    b = e.place(req("b", "bid", 50, 5), 2).order
    r = e.decrease("a", a.order_id, reduce_by=n(2), now_ns=3)
    assert (r.remaining, r.reduced_by) == (n(3), n(2))
    r = e.decrease("a", a.order_id, reduce_to=n(1), now_ns=4)
    assert (r.remaining, r.reduced_by) == (n(1), n(2))
    assert e.queue_position("b", b.order_id) == n(1)
    r = e.decrease("a", a.order_id, reduce_by=n(9), now_ns=5)
    assert (r.remaining, r.status, r.reduced_by) == (0, "canceled", n(1))
    assert e.decrease("a", a.order_id, reduce_to=0, now_ns=6).reduced_by == 0
    with pytest.raises(EngineError) as exc:
        e.decrease("b", b.order_id, reduce_by=n(1), reduce_to=n(1), now_ns=7)
    assert exc.value.code == "invalid_parameters"
    with pytest.raises(EngineError):
        e.decrease("b", b.order_id, now_ns=7)


def test_cancel_is_reduce() -> None:
    e = make_engine()
    o = e.place(req("a", "bid", 50, 5), 1).order
    e.place(req("b", "ask", 50, 2), 2)
    first = e.cancel("a", o.order_id, 3)
    assert (first.reduced_by, first.status, first.filled, first.remaining) == (n(3), "canceled",
                                                                                n(2), 0)
    again = e.cancel("a", o.order_id, 4)
    assert again.reduced_by == 0 and again.status == "canceled"
    done = e.place(req("b", "bid", 50, 1), 5).order
    e.place(req("c", "ask", 50, 1), 6)
    assert e.cancel("b", done.order_id, 7).reduced_by == 0
    with pytest.raises(EngineError) as exc:
        e.cancel("c", o.order_id, 8)
    assert (exc.value.status, exc.value.code) == (404, "order_not_found")


def test_batches_report_errors_in_place() -> None:
    e = make_engine()
    out = e.place_batch([req("a", "bid", 40), req("a", "bid", 40.5), req("a", "ask", 60)], 1)
    assert [type(x).__name__ for x in out] == ["PlaceResult", "EngineError", "PlaceResult"]
    ids = [x.order.order_id for x in out if not isinstance(x, EngineError)]
    res = e.cancel_batch("a", [ids[0], "ord-99999999", ids[1]], 2)
    assert [getattr(x, "reduced_by", None) for x in res] == [n(1), None, n(1)]
    assert isinstance(res[1], EngineError) and res[1].code == "order_not_found"


def test_expiration() -> None:
    e = make_engine()
    o = e.place(req("a", "bid", 50, 1, expiration_ns=10 * SEC), 1).order
    e.place(req("b", "bid", 40, 1), 5 * SEC)
    assert e.order("a", o.order_id).status == "resting"
    e.expire(10 * SEC)
    got = e.order("a", o.order_id)
    assert (got.status, got.last_update_reason) == ("canceled", "expired")
    for bad in (req("a", "bid", 50, expiration_ns=11 * SEC, time_in_force="immediate_or_cancel"),
                req("a", "bid", 50, expiration_ns=10 * SEC)):
        with pytest.raises(EngineError) as exc:
            e.place(bad, 10 * SEC)
        assert exc.value.code == "invalid_parameters"


# --- order groups --------------------------------------------------------------------------------


def test_order_group_triggers_after_limit_in_15s_and_rejects_until_reset() -> None:
    e = make_engine()
    g = e.create_order_group("a", n(5), 0)
    kept = e.place(req("a", "bid", 50, 10, order_group_id=g), 1).order
    other = e.place(req("a", "bid", 45, 10, order_group_id=g), 1).order
    e.place(req("b", "ask", 50, 3), 2 * SEC)
    assert not e.order_group("a", g).triggered
    e.place(req("b", "ask", 50, 3), 10 * SEC)  # 6 > 5 within 15 s
    group = e.order_group("a", g)
    assert group.triggered and group.order_ids == ()
    assert e.order("a", kept.order_id).status == "canceled"
    assert e.order("a", other.order_id).last_update_reason == "order_group_triggered"
    with pytest.raises(EngineError) as exc:
        e.place(req("a", "bid", 50, 1, order_group_id=g), 11 * SEC)
    assert exc.value.code == "order_group_triggered"
    e.reset_order_group("a", g, 12 * SEC)
    assert e.place(req("a", "bid", 50, 1, order_group_id=g), 12 * SEC).order.status == "resting"
    kinds = [ev.event_type for ev in e.drain_events() if isinstance(ev, OrderGroupEvent)]
    assert kinds == ["created", "triggered", "reset"]


def test_order_group_window_rolls() -> None:
    e = make_engine()
    g = e.create_order_group("a", n(5), 0)
    e.place(req("a", "bid", 50, 10, order_group_id=g), 1)
    e.place(req("b", "ask", 50, 3), 1 * SEC)
    e.place(req("b", "ask", 50, 3), 17 * SEC)  # the first 3 left the window
    assert not e.order_group("a", g).triggered
    e.set_order_group_limit("a", g, n(2), 18 * SEC)  # below the window's 3
    assert e.order_group("a", g).triggered


def test_taker_in_a_triggered_group_stops() -> None:
    e = make_engine()
    g = e.create_order_group("a", n(2), 0)
    for _ in range(5):
        e.place(req("b", "ask", 50, 1), 1)
    r = e.place(req("a", "bid", 50, 5, order_group_id=g), 2)
    assert r.fill_count == n(3) and r.order.status == "canceled"  # 3 > 2 triggers, rest canceled
    assert r.order.last_update_reason == "order_group_triggered"


def test_order_group_delete_and_ownership() -> None:
    e = make_engine()
    g = e.create_order_group("a", n(5), 0)
    o = e.place(req("a", "bid", 50, 1, order_group_id=g), 1).order
    with pytest.raises(EngineError) as exc:
        e.place(req("b", "bid", 50, 1, order_group_id=g), 1)
    assert exc.value.code == "order_group_not_found"
    e.trigger_order_group("a", g, 2)
    assert e.order("a", o.order_id).status == "canceled"
    e.delete_order_group("a", g, 3)
    with pytest.raises(EngineError) as exc:
        e.order_group("a", g)
    assert exc.value.code == "order_group_not_found"


# --- lifecycle -----------------------------------------------------------------------------------


def test_pause_cancels_flagged_orders_and_refuses_new_ones() -> None:
    e = make_engine()
    flagged = e.place(req("a", "bid", 40, 1, cancel_order_on_pause=True), 1).order
    plain = e.place(req("a", "bid", 41, 1), 1).order
    other = e.place(req("b", "ask", 60, 1), 1).order
    e.pause(M, 2)
    assert e.order("a", flagged.order_id).status == "canceled"
    assert e.order("a", plain.order_id).status == "resting"
    with pytest.raises(EngineError) as exc:
        e.place(req("c", "bid", 42, 1), 3)
    assert (exc.value.status, exc.value.code) == (400, "MARKET_INACTIVE")
    with pytest.raises(EngineError):
        e.amend("a", plain.order_id, ticker=M, side="bid", price=c(42), count=n(1), now_ns=3)
    assert e.cancel("b", other.order_id, 3).reduced_by == n(1)  # cancels allowed
    e.place(req("c", "bid", 42, 1, ticker=M2), 3)  # other markets trade on
    e.activate(M, 4)
    assert e.order("a", plain.order_id).last_update_reason == "market_reactivated"
    assert e.orderbook(M) == ([], [])
    kinds = [ev.event_type for ev in e.drain_events() if isinstance(ev, LifecycleEvent)]
    assert kinds == ["deactivated", "activated"]
    assert e.place(req("c", "bid", 42, 1), 5).order.status == "resting"


def test_unopened_market_opens_on_activate() -> None:
    e = make_engine()
    e.add_market("KXNBAGAME-26MAY25NYKCLE-TIE", event_ticker="KXNBAGAME-26MAY25NYKCLE",
                 open_ns=5, close_ns=10**6 * SEC, status="unopened")
    with pytest.raises(EngineError) as exc:
        e.place(req("a", "bid", 40, ticker="KXNBAGAME-26MAY25NYKCLE-TIE"), 1)
    assert exc.value.code == "MARKET_INACTIVE"
    e.activate("KXNBAGAME-26MAY25NYKCLE-TIE", 5)
    assert e.place(req("a", "bid", 40, ticker="KXNBAGAME-26MAY25NYKCLE-TIE"), 6).order.is_resting
    assert [m.ticker for m in e.event_markets("KXNBAGAME-26MAY25NYKCLE")][-1].endswith("TIE")
    kinds = [ev.event_type for ev in e.drain_events() if isinstance(ev, LifecycleEvent)]
    assert kinds == ["created", "activated"]


def test_close_cancels_everything_and_blocks_order_ops() -> None:
    e = make_engine()
    o = e.place(req("a", "bid", 40, 1), 1).order
    e.close(M, 2)
    assert e.order("a", o.order_id).status == "canceled" and e.reserved("a") == 0
    for call in (lambda: e.place(req("a", "bid", 40), 3), lambda: e.cancel("a", o.order_id, 3)):
        with pytest.raises(EngineError) as exc:
            call()
        assert exc.value.code == "MARKET_INACTIVE"
    assert e.get_market(M).close_ns == 2


@pytest.mark.parametrize("result", ["yes", "no"])
def test_settlement_pays_the_winning_side(result: str) -> None:
    e = make_engine()
    start = total_money(e)
    e.place(req("a", "ask", 30, 4), 1)
    e.place(req("b", "bid", 30, 4), 2)  # b 4 YES at 30, a 4 NO at 70
    e.place(req("c", "bid", 20, 1), 3)
    before = {u: e.balance(u) + e.reserved(u) for u in USERS}
    e.settle(M, result, 10)  # type: ignore[arg-type]
    assert e.get_market(M).status == "settled" and e.get_market(M).result == result
    winner, loser = ("b", "a") if result == "yes" else ("a", "b")
    assert e.balance(winner) == before[winner] + n(4) * UNIT
    assert e.balance(loser) == before[loser]
    assert e.balance("c") == before["c"]  # its order was canceled, reservation released
    assert all(e.position(u, M) == 0 for u in USERS) and e.collateral() == 0
    s = e.settlements(winner)[0]
    assert s.revenue == PRICE_ONE * 4 and s.market_result == result
    assert (s.yes_count, s.no_count) == ((n(4), 0) if result == "yes" else (0, n(4)))
    assert e.settlements("c") == [] and e.positions("a") == []
    assert total_money(e) == start
    kinds = [ev.event_type for ev in e.drain_events() if isinstance(ev, LifecycleEvent)]
    assert kinds == ["close_date_updated", "determined", "settled"]  # closed early, at t=10


# --- reads and events ----------------------------------------------------------------------------


def test_orderbook_mirrors_asks_as_no_bids() -> None:
    e = make_engine()
    for cents, qty in ((40, 1), (42, 2), (41, 3)):
        e.place(req("a", "bid", cents, qty), 1)
    for cents, qty in ((60, 3), (58, 1)):
        e.place(req("b", "ask", cents, qty), 1)
    yes, no = e.orderbook(M)
    assert yes == [(c(40), n(1)), (c(41), n(3)), (c(42), n(2))]
    assert no == [(c(40), n(3)), (c(42), n(1))]  # NO bid 42 = YES ask 58 (best last)
    assert e.orderbook(M, depth=1) == ([(c(42), n(2))], [(c(42), n(1))])
    assert e.best(M) == (c(42), n(2), c(58), n(1))


def test_events_of_a_crossing_order() -> None:
    e = make_engine()
    e.place(req("a", "ask", 50, 2, client_order_id="mk"), 1)
    e.drain_events()
    e.place(req("b", "bid", 51, 3, client_order_id="tk"), 2)
    evs = e.drain_events()
    kinds = [type(ev).__name__ for ev in evs]
    assert kinds == ["TradeEvent", "BookDelta", "FillEvent", "OrderEvent", "PositionEvent",
                     "FillEvent", "PositionEvent", "BookDelta", "OrderEvent"]
    d1, d2 = (ev for ev in evs if isinstance(ev, BookDelta))
    assert (d1.side, d1.price, d1.delta, d1.client_order_id) == ("no", c(50), -n(2), "mk")
    assert (d2.side, d2.price, d2.delta, d2.client_order_id) == ("yes", c(51), n(1), "tk")
    trade = evs[0]
    assert isinstance(trade, TradeEvent) and trade.trade.taker_side == "bid"
    fills = [ev.fill for ev in evs if isinstance(ev, FillEvent)]
    assert [(f.user_id, f.post_position) for f in fills] == [("a", -n(2)), ("b", n(2))]
    pos = [ev for ev in evs if isinstance(ev, PositionEvent)]
    assert [p.position for p in pos] == [-n(2), n(2)]
    last = evs[-1]
    assert isinstance(last, OrderEvent) and last.order.remaining == n(1)


def test_reads_are_snapshots() -> None:
    e = make_engine()
    o = e.place(req("a", "bid", 40, 2), 1).order
    o.remaining = 0
    e.orders("a")[0].price = 1
    e.get_market(M).status = "settled"
    assert e.order("a", o.order_id).remaining == n(2) and e.orders("a")[0].price == c(40)
    assert e.get_market(M).status == "active" and e.markets[M].status == "active"
    assert e.best(M) == (c(40), n(2), None, 0)


def test_purity_no_clock_or_randomness() -> None:
    banned_mods = {"random", "time", "datetime", "secrets", "uuid", "os", "asyncio"}
    for path in Path(__file__).resolve().parent.parent.glob("mmcore/sim/engine*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & banned_mods, path
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in banned_mods, path


# --- properties ----------------------------------------------------------------------------------

RARELY = st.sampled_from((False, False, False, False, True))
PLACE = st.tuples(
    st.just("place"), st.sampled_from(USERS[:3]), st.sampled_from(("bid", "ask")),
    st.integers(490, 510).map(lambda x: x * 10),  # 49.0¢..51.0¢ on the deci-cent grid
    st.one_of(st.integers(1, 400), st.sampled_from([100, 200, 500])),
    st.sampled_from(("good_till_canceled", "good_till_canceled", "immediate_or_cancel",
                     "fill_or_kill")),
    RARELY, st.sampled_from(("taker_at_cross", "maker")), RARELY,
    st.sampled_from((M, M, M2)),
)
CANCEL = st.tuples(st.just("cancel"), st.sampled_from(USERS[:3]), st.integers(0, 50))
AMEND = st.tuples(st.just("amend"), st.sampled_from(USERS[:3]), st.integers(0, 50),
                  st.integers(490, 510).map(lambda x: x * 10), st.integers(1, 400))
DECREASE = st.tuples(st.just("decrease"), st.sampled_from(USERS[:3]), st.integers(0, 50),
                     st.integers(1, 300))
LIFE = st.tuples(st.sampled_from(("pause", "activate")))
OPS = st.lists(
    st.one_of(PLACE, PLACE, PLACE, PLACE, PLACE, CANCEL, AMEND, AMEND, DECREASE, LIFE),
    min_size=10, max_size=80,
)


def run_ops(e: Engine, ops: list, check: bool) -> list:
    """Apply ``ops`` at t = 1, 2, …; return everything observable. Checks invariants if asked."""
    start = total_money(e)
    observed: list = [e.drain_events()]
    books: dict[str, dict] = {M: {}, M2: {}}
    for t, op in enumerate(ops, start=1):
        try:
            if op[0] == "place":
                _, u, side, price, count, tif, post, stp, reduce, ticker = op
                out = e.place(OrderRequest(u, ticker, side, price, count, time_in_force=tif,
                                           post_only=post and tif == "good_till_canceled",
                                           self_trade_prevention=stp, reduce_only=reduce), t)
            elif op[0] in ("cancel", "amend", "decrease"):
                orders = e.orders(op[1], status="resting") or e.orders(op[1])
                if not orders:
                    observed.append((None, []))
                    continue
                o = orders[op[2] % len(orders)]
                if op[0] == "cancel":
                    out = e.cancel(op[1], o.order_id, t)
                elif op[0] == "amend":
                    out = e.amend(op[1], o.order_id, ticker=o.ticker, side=o.side, price=op[3],
                                  count=o.filled + op[4], now_ns=t)
                else:
                    out = e.decrease(op[1], o.order_id, reduce_by=op[3], now_ns=t)
            elif op[0] == "pause":
                out = e.pause(M, t)
            else:
                out = e.activate(M, t)
        except EngineError as exc:
            out = exc
        events = e.drain_events()
        if isinstance(out, EngineError):
            assert events == [], "a refusal must not change anything"
        observed.append((out, events))
        if check:
            for ticker in (M, M2):
                replay(events, ticker, books[ticker])
            check_invariants(e, start, books)
    return observed


def check_invariants(e: Engine, start: int, books: dict[str, dict]) -> None:
    assert total_money(e) == start
    assert e.fees_collected >= 0
    for u in e.users:
        assert e.balance(u) >= 0, u
    for ticker in (M, M2):
        bid, _, ask, _ = e.best(ticker)
        assert bid is None or ask is None or bid < ask
        positions = [e.position(u, ticker) for u in e.users]
        assert sum(positions) == 0
        assert e.get_market(ticker).open_interest == sum(p for p in positions if p > 0)
        assert as_levels(books[ticker]) == tuple(map(sorted, e.orderbook(ticker)))
        levels: dict = defaultdict(int)
        for u in e.users:
            for o in e.orders(u, ticker=ticker):
                assert o.filled + o.remaining <= o.initial_count
                assert (o.remaining > 0) == (o.status == "resting")
                if o.status == "resting":
                    key = ("yes", o.price) if o.side == "bid" else ("no", PRICE_ONE - o.price)
                    levels[key] += o.remaining
        assert dict(levels) == books[ticker]
    for u in e.users:  # the incremental reservations equal a recount from scratch
        assert e.reserved(u) == sum(recount_reservation(e, u, t) for t in (M, M2)), u


def recount_reservation(e: Engine, user: str, ticker: str) -> int:
    """What ``user``'s resting orders in ``ticker`` reserve, summed over every order anew."""
    terms = [(o.side, o.price, o.remaining) for o in e.orders(user, ticker=ticker)
             if o.status == "resting"]
    return requirement(terms, e.position(user, ticker), FeeBound.of(e.fee_schedule(ticker)))


def storm(rnd: random.Random, size: int) -> list:
    """A busy random op list (independent hypothesis draws rarely cross the book)."""
    ops: list = []
    mid = {M: 500, M2: 500}  # in 0.1¢ ticks
    for _ in range(size):
        kind = rnd.choices(["place", "cancel", "amend", "decrease", "pause", "activate"],
                           [12, 3, 3, 2, 0.3, 0.6])[0]
        u = rnd.choice(USERS[:3])
        ticker = rnd.choice((M, M, M2))
        mid[ticker] = min(max(mid[ticker] + rnd.randint(-3, 3), 20), 980)
        price = 10 * min(max(mid[ticker] + rnd.randint(-5, 5), 1), 999)
        count = rnd.choice([rnd.randint(1, 400), 100, 200, 500])
        if kind == "place":
            ops.append(("place", u, rnd.choice(("bid", "ask")), price, count,
                        rnd.choices(TIFS, [6, 2, 1])[0], rnd.random() < 0.2,
                        rnd.choice(("taker_at_cross", "maker")), rnd.random() < 0.15, ticker))
        elif kind in ("cancel", "decrease"):
            ops.append((kind, u, rnd.randint(0, 99), count))
        elif kind == "amend":
            ops.append(("amend", u, rnd.randint(0, 99), price, count))
        else:
            ops.append((kind,))
    return ops


TIFS = ("good_till_canceled", "immediate_or_cancel", "fill_or_kill")


@settings(max_examples=100, deadline=None)
@given(ops=OPS, balance_dollars=st.sampled_from([3, 20, 1000]))
def test_random_sequences_keep_the_book_and_the_money_consistent(
    ops: list, balance_dollars: int
) -> None:
    check_sequence(ops, balance_dollars)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), size=st.integers(20, 150),
       balance_dollars=st.sampled_from([5, 30, 30, 1000]))
def test_fill_storms_keep_the_book_and_the_money_consistent(
    seed: int, size: int, balance_dollars: int
) -> None:
    check_sequence(storm(random.Random(seed), size), balance_dollars)


def test_storms_really_trade() -> None:
    trades = [len(check_sequence(storm(random.Random(seed), 100), 30).trades())
              for seed in range(5)]
    assert sum(trades) >= 25, trades


def check_sequence(ops: list, balance_dollars: int) -> Engine:
    e = make_engine(balance=balance_dollars * PRICE_ONE, grid=TickGrid.deci_cent())
    start = total_money(e)
    observed = run_ops(e, ops, check=True)
    events = [ev for evs in [observed[0], *(evs for _, evs in observed[1:])] for ev in evs]
    trades = e.trades()
    for ticker, result in ((M, "yes"), (M2, "no")):
        e.settle(ticker, result, 10**6)  # type: ignore[arg-type]
    events += e.drain_events()
    assert replay(events, M) == {} and replay(events, M2) == {}
    assert e.collateral() == 0 and all(e.reserved(u) == 0 for u in e.users)
    assert all(e.position(u, t) == 0 for u in e.users for t in (M, M2))
    assert sum(e.balance(u) for u in e.users) + e.fees_collected == start
    assert e.trades() == trades
    return e


@settings(max_examples=50, deadline=None)
@given(ops=OPS)
def test_same_calls_same_ids_and_events(ops: list) -> None:
    def engine() -> Engine:
        return make_engine(balance=50 * PRICE_ONE, grid=TickGrid.deci_cent(), drain=False)

    first, second = run_ops(engine(), ops, check=False), run_ops(engine(), ops, check=False)
    assert first == second
    assert len(first[0]) == 2  # the two markets' ``created`` events
