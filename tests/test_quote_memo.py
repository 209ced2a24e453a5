"""The quoting memo (mmcore.quoting.memo): a book event that moves nothing the model or the
sizing depend on reuses their results, and a worker with the memo decides exactly what one
without it decides, on any sequence of book, theo, fill and ack events."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from mmcore.book import MarketBook
from mmcore.orders import Place
from mmcore.quoting.memo import Memo
from mmcore.risk.limits import DEFAULT_LIMIT_CONFIG, SportLimits
from mmcore.units import CONTRACT
from mmcore.worker.engine import AckEv, BookEv, ConnEv, FillEv, GameWorker, ReconcileEv, TheoEv, WorkerConfig
from tests.test_worker import GAME, A, B, S, T0, book


def test_memo_returns_the_stored_result_for_equal_inputs_only():
    m, calls = Memo(size=2), []

    def f(x):
        calls.append(x)
        return x * 2

    assert [m.get("f", k, lambda k=k: f(k)) for k in (1, 1, (1, 2), (1, 2), 3, 1)] == [2, 2, (1, 2) * 2,
                                                                                      (1, 2) * 2, 6, 2]
    assert calls == [1, (1, 2), 3, 1]  # 1 had been pushed out by (1, 2) and 3 (size 2)
    assert m.get("g", 1, lambda: "other step") == "other step"  # steps never share entries
    nan = float("nan")
    assert m.get("f", nan, lambda: 0) == 0 and m.get("f", nan, lambda: 1) == 1  # NaN: never a hit


TIGHT = WorkerConfig("w1", limits=dataclasses.replace(DEFAULT_LIMIT_CONFIG, sports={
    "basketball_nba": SportLimits(0.02, 5 * CONTRACT, 30 * CONTRACT, 30 * 10_000)}))
"""Limits that bind: sizing cuts depend on every resting order, fill and price."""


def _started(memo: bool, cfg: WorkerConfig = WorkerConfig("w1")) -> tuple[GameWorker, list]:
    w = GameWorker(GAME, cfg, T0)
    if not memo:
        w.quote_memo = None  # the worker's own path without the memo
    outs = [w.handle(ConnEv(True), T0)]
    for ev in (ReconcileEv({}, (), T0, initial=True), TheoEv((0.6, 0.4), (0.003, 0.003), T0),
               BookEv(A, book(A, 5700, 6300), T0, T0), BookEv(B, book(B, 3700, 4300), T0, T0)):
        outs.append(w.handle(ev, T0))
    return w, outs


def test_an_unchanged_book_event_reuses_model_and_sizing():
    w, _ = _started(memo=True)
    same = book(A, 5700, 6300)
    w.handle(BookEv(A, same, T0 + S, T0 + S), T0 + S)
    misses = w.quote_memo.misses
    for k in range(2, 6):
        w.handle(BookEv(A, same, T0 + k * S, T0 + k * S), T0 + k * S)
    assert w.quote_memo.misses == misses  # nothing recomputed
    assert w.quote_memo.hits >= 4 * 3  # per event: two markets' model + the sizing
    w.handle(TheoEv((0.61, 0.39), (0.003, 0.003), T0 + 7 * S), T0 + 7 * S)
    assert w.quote_memo.misses > misses  # a new theo is new inputs


def _journal(out):
    return [{k: v for k, v in r.items()} for r in out.journal]


events = st.lists(st.one_of(
    st.tuples(st.just("book"), st.sampled_from([A, B]), st.integers(-3, 3), st.integers(1, 4)),
    st.tuples(st.just("theo"), st.integers(-30, 30)),
    st.tuples(st.just("fill"), st.sampled_from([A, B]), st.sampled_from(["bid", "ask"]), st.integers(1, 12)),
    st.tuples(st.just("same"), st.sampled_from([A, B])),
), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None)
@given(events, st.sampled_from([WorkerConfig("w1"), TIGHT]), st.booleans())
def test_with_and_without_the_memo_the_worker_decides_the_same(evs, cfg, late_acks):
    """``late_acks``: each event comes before the acks of the last decision (orders in flight,
    which the post-strategy cap counts)."""
    (w1, o1), (w2, o2) = _started(True, cfg), _started(False, cfg)
    assert [(x.actions, _journal(x)) for x in o1] == [(x.actions, _journal(x)) for x in o2]
    pending = [a for o in o1 for a in o.actions]
    mid = {A: 6000, B: 4000}
    books = {A: book(A, 5700, 6300), B: book(B, 3700, 4300)}
    for i, ev in enumerate(evs):
        now = T0 + (i + 1) * S // 4
        todo: list = []
        for seq, action in pending:  # acks first, as the venue answers
            ack = (AckEv(seq, True, order_id=f"o{seq}", remaining=action.quote.count, filled=0,
                         latency_ns=1_000_000) if isinstance(action, Place)
                   else AckEv(seq, True, order_id=getattr(action, "order_id", None), latency_ns=1_000_000))
            todo.append(ack)
        if ev[0] == "book":
            _, m, move, size = ev
            mid[m] += 100 * move
            books[m] = book(m, mid[m] - 300, mid[m] + 300, size * 5_000)
            todo.append(BookEv(m, books[m], now, now))
        elif ev[0] == "same":
            todo.append(BookEv(ev[1], books[ev[1]], now, now))
        elif ev[0] == "theo":
            p = 0.6 + ev[1] / 1000
            todo.append(TheoEv((p, 1 - p), (0.003, 0.003), now))
        else:
            _, m, side, n = ev
            o = next((o for o in w1.live.values() if o.market == m and o.side == side), None)
            if o is not None:
                count = min(n * CONTRACT // 2, o.remaining)
                post = w1.positions[m] + (count if side == "bid" else -count)
                todo.append(FillEv(f"t{i}", o.order_id, m, side, o.price, count, 1, False, post, now, now))
        if late_acks:  # the event first, the acks after it
            todo = todo[len(pending):] + todo[:len(pending)]
        pending = []
        for e in todo:
            r1, r2 = w1.handle(e, now), w2.handle(e, now)
            assert r1.actions == r2.actions
            assert _journal(r1) == _journal(r2)
            pending += r1.actions
    assert w1.positions == w2.positions and w1.live == w2.live
