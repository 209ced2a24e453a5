"""The per-event fast paths of the worker's decision path give exactly what the plain code gives
(issue 11 item 5: implementation only, behaviour identical).

- ``GameWorker.limit``: others' size in the liquidity window from the book's kept windows,
  corrected at our own prices, equals the original one-pass scan after any sequence of deltas,
  snapshots, staleness and order changes; ``MarketBook.window`` / ``top`` / ``depth_mid`` kept
  between changes equal a fresh scan.
- ``jumps._with_series`` / the theo branch of ``observe_stream`` equal ``dataclasses.replace``.
- ``quotes._widened`` equals ``dataclasses.replace`` of the inputs.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from mmcore.book import BookTop, MarketBook, window_of
from mmcore.fees import FeeSchedule
from mmcore.game import GameSpec
from mmcore.orders import LiveOrder
from mmcore.quoting.competition import MarketInputs
from mmcore.quoting.quotes import _widened
from mmcore.risk import jumps
from mmcore.risk.jumps import JumpConfig, JumpMonitor, observe_stream, observe_trade
from mmcore.risk.limits import game_limit
from mmcore.ticks import TickGrid
from mmcore.worker.engine import BookEv, GameWorker, Output, WorkerConfig

S = 1_000_000_000
T0 = 1_900_000_000 * S
A, B = "KXNBAGAME-26NOV24BOSNYK-BOS", "KXNBAGAME-26NOV24BOSNYK-NYK"
GAME = GameSpec("KXNBAGAME-26NOV24BOSNYK", "basketball_nba", (A, B), (TickGrid.linear_cent(),) * 2,
                FeeSchedule.from_series("quadratic_with_maker_fees"), T0 + 3 * 3600 * S)


def plain_limit(w: GameWorker):  # type: ignore[no-untyped-def]
    """The scan ``GameWorker.limit`` was before the fast path (commit 72285cc), verbatim."""
    own: dict[tuple[str, str], dict[int, int]] = {}
    for o in (*w.live.values(), *w.cancelling.values()):
        at = own.setdefault((o.market, o.side), {})
        at[o.price] = at.get(o.price, 0) + o.remaining
    total = 0
    win = w.cfg.liquidity_window_price
    for m, book in w.books.items():
        if book is None or book.stale:
            continue
        top = book.top()
        if top.bid is not None:
            lo, mine = top.bid - win, own.get((m, "bid"), {})
            for p, n in book.bids.items():
                if p >= lo:
                    n -= mine.get(p, 0)
                    if n > 0:
                        total += n
        if top.ask is not None:
            hi, mine = top.ask + win, own.get((m, "ask"), {})
            for p, n in book.asks.items():
                if p <= hi:
                    n -= mine.get(p, 0)
                    if n > 0:
                        total += n
    return game_limit(w.game.sport_key, total, w.cfg.limits)


price = st.integers(1, 99).map(lambda c: 100 * c)
size = st.integers(1, 300).map(lambda c: 100 * c)
levels = st.lists(st.tuples(price, size), max_size=25)
step = st.one_of(
    st.tuples(st.just("delta"), st.sampled_from((A, B)), st.sampled_from(("yes", "no")), price,
              st.integers(-300, 300).map(lambda c: 100 * c)),
    st.tuples(st.just("snapshot"), st.sampled_from((A, B)), levels, levels),
    st.tuples(st.just("stale"), st.sampled_from((A, B)), st.booleans()),
    st.tuples(st.just("order"), st.sampled_from((A, B)), st.sampled_from(("bid", "ask")), price,
              st.integers(0, 400).map(lambda c: 100 * c), st.booleans()),
    st.tuples(st.just("drop"), st.integers(0, 9)),
    st.tuples(st.just("event"),),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40))
def test_limit_equals_the_plain_scan(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    w = GameWorker(GAME, WorkerConfig("fast"), T0)
    books = {A: MarketBook(A), B: MarketBook(B)}
    n = 0
    for s in steps:
        if s[0] == "delta":
            books[s[1]].apply_delta(s[2], s[3], s[4], use_yes_price=True)
        elif s[0] == "snapshot":
            books[s[1]].apply_snapshot(s[2], s[3], use_yes_price=True)
        elif s[0] == "stale":
            books[s[1]].stale = s[2]
        elif s[0] == "order":
            n += 1
            where = w.live if s[5] else w.cancelling
            where[f"o{n}"] = LiveOrder(f"o{n}", None, s[1], s[2], s[3], s[4], 0, T0)
        elif s[0] == "drop":
            ids = sorted((*w.live, *w.cancelling))
            if ids:
                oid = ids[s[1] % len(ids)]
                w.live.pop(oid, None)
                w.cancelling.pop(oid, None)
        else:  # the worker sees the books (as the driver hands them over)
            for m, b in books.items():
                w.handle(BookEv(m, b, T0, T0), T0)
        if all(b is not None for b in w.books.values()):
            assert w.limit() == plain_limit(w)
            assert w.limit() == plain_limit(w)  # (kept: the same)


def test_limit_is_kept_only_while_nothing_it_reads_moves() -> None:
    w = GameWorker(GAME, WorkerConfig("fast"), T0)
    book = MarketBook(A)
    book.apply_snapshot([(5000, 10_000)], [(4000, 10_000)], use_yes_price=False)
    other = MarketBook(B)
    other.apply_snapshot([(4000, 10_000)], [(5000, 10_000)], use_yes_price=False)
    out = Output()
    w._on_BookEv(BookEv(A, book, T0, T0), T0, out)
    w._on_BookEv(BookEv(B, other, T0, T0), T0, out)
    first = w.limit()
    assert w.limit() is first  # (kept: nothing moved)
    book.apply_delta("yes", 5000, 50_000, use_yes_price=False)
    assert w.limit() == plain_limit(w) != first
    w.live["x"] = LiveOrder("x", None, A, "bid", 5000, 60_000, 0, T0)
    assert w.limit() == plain_limit(w)




@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(("mid", "theo", "bid", "ask")), st.floats(0.02, 0.98),
                          st.integers(1, 5 * S)), max_size=30))
def test_jump_monitor_built_directly_equals_replace(obs: list[tuple[str, float, int]]) -> None:
    """Each step's monitor equals the one ``dataclasses.replace`` builds from the same parts."""
    cfg = JumpConfig()
    mon, now = JumpMonitor(), T0
    for stream, p, dt in obs:
        now += dt
        before = mon
        if stream in ("mid", "theo"):
            mon, _ = observe_stream(mon, stream, p, now, cfg)  # type: ignore[arg-type]
        else:
            mon, _ = observe_trade(mon, stream, p, now, cfg)  # type: ignore[arg-type]
        name = {"mid": "mid", "theo": "theo", "bid": "trade", "ask": "trade_sell"}[stream]
        vfield = {"mid": "mid_verdict", "theo": "theo_verdict"}.get(stream, "trade_verdict")
        expect = dataclasses.replace(before, **{name: getattr(mon, name),
                                                vfield: getattr(mon, vfield), "pending": mon.pending})
        assert mon == expect
    built = jumps._with_series(JumpMonitor(), "trade_sell", JumpMonitor().mid, "trade_verdict",
                               None, ())  # type: ignore[arg-type]
    assert built == dataclasses.replace(JumpMonitor(), trade_sell=JumpMonitor().mid,
                                        trade_verdict=None, pending=())


@given(st.floats(0, 300), st.floats(0, 300), st.floats(0, 500), st.floats(0, 500))
def test_widened_equals_replace(wb: float, wa: float, hb: float, ha: float) -> None:
    values = {f.name: i + 1.5 for i, f in enumerate(dataclasses.fields(MarketInputs))}
    values.update(theo=6000.0, reservation=5900.0, half_bid=hb, half_ask=ha, e_min=80.0, q=300,
                  q_soft=500, q_hard=1000, clip=1000, avg_cost=5800.0, top=BookTop(5700, 1, 6300, 2))
    inp = MarketInputs(**values)
    got = _widened(inp, A, {(A, "bid"): wb, (A, "ask"): wa})
    half_bid = max(hb, inp.reservation - (inp.theo - inp.e_min)) + wb if wb > 0 else hb
    half_ask = max(ha, inp.theo + inp.e_min - inp.reservation) + wa if wa > 0 else ha
    assert got == dataclasses.replace(inp, half_bid=half_bid, half_ask=half_ask)


book_step = st.one_of(
    st.tuples(st.just("delta"), st.sampled_from(("yes", "no")), price,
              st.integers(-300, 300).map(lambda c: 100 * c)),
    st.tuples(st.just("snapshot"), levels, levels),
    st.tuples(st.just("ask"), st.sampled_from(("bid", "ask")), st.sampled_from((0, 100, 300, 500))),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(book_step, max_size=60))
def test_book_window_kept_equals_a_fresh_scan(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    """``MarketBook.window`` (kept across deltas beyond the window) equals ``window_of``'s scan."""
    book = MarketBook(A)
    for s in steps:
        if s[0] == "delta":
            book.apply_delta(s[1], s[2], s[3], use_yes_price=False)
        elif s[0] == "snapshot":
            book.apply_snapshot(s[1], s[2], use_yes_price=False)
        else:
            book.window(s[1], s[2])
        for side in ("bid", "ask"):
            for width in (0, 100, 300, 500):
                assert book.window(side, width) == window_of(book, side, width)  # type: ignore[arg-type]


exclude = st.lists(st.tuples(st.sampled_from(("bid", "ask")), price,
                             st.integers(0, 300).map(lambda c: 100 * c)), max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(book_step, st.tuples(st.just("top"), exclude, st.sampled_from((0, 100, 500)))),
                max_size=60))
def test_book_top_kept_equals_a_fresh_scan(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    """``MarketBook.top`` (kept across deltas beyond the answer) equals a scan of a fresh copy."""
    book = MarketBook(A)
    asked: list[tuple[tuple[tuple[str, int, int], ...], int]] = [((), 0)]
    for s in steps:
        if s[0] == "delta":
            book.apply_delta(s[1], s[2], s[3], use_yes_price=False)
        elif s[0] == "snapshot":
            book.apply_snapshot(s[1], s[2], use_yes_price=False)
        elif s[0] == "top":
            asked.append((tuple(s[1]), s[2]))
        for ex, min_size in asked[-5:]:
            fresh = MarketBook(A, dict(book.bids), dict(book.asks))
            assert book.top(exclude=ex, min_size=min_size) == fresh.top(exclude=ex, min_size=min_size)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(book_step, st.tuples(st.just("mid"), exclude, st.sampled_from((0, 100, 1000, 5000)))),
                max_size=60))
def test_book_depth_mid_kept_equals_the_plain_function(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    """``MarketBook.depth_mid`` (kept across changes beyond the levels it took) equals the
    plain vwap of the levels as they are now (the function before it was kept, commit 72285cc)."""
    def plain(bids, asks, depth, excl):  # type: ignore[no-untyped-def]
        own: dict[tuple[str, int], int] = {}
        for side, p, n in excl:
            own[(side, p)] = own.get((side, p), 0) + n

        def vwap(levels, side, best_first):  # type: ignore[no-untyped-def]
            need, acc, got = depth, 0.0, 0
            for p in sorted(levels, reverse=best_first):
                n = levels[p] - own.get((side, p), 0)
                if n <= 0:
                    continue
                take = min(n, need - got)
                acc += p * take
                got += take
                if got >= need:
                    break
            return acc / got if got else None

        b, a = vwap(bids, "bid", True), vwap(asks, "ask", False)
        return None if b is None or a is None else (a + b) / 2

    book = MarketBook(A)
    asked: list[tuple[int, tuple[tuple[str, int, int], ...]]] = [(1000, ())]
    for s in steps:
        if s[0] == "delta":
            book.apply_delta(s[1], s[2], s[3], use_yes_price=False)
        elif s[0] == "snapshot":
            book.apply_snapshot(s[1], s[2], use_yes_price=False)
        elif s[0] == "mid":
            asked.append((s[2], tuple(s[1])))
        for depth, ex in asked[-5:]:
            want = plain(book.bids, book.asks, depth, ex)
            assert book.depth_mid(depth, ex) == want
            assert jumps.depth_mid(book.bids, book.asks, depth, ex) == want


def test_book_depth_mid_moves_with_a_change_at_its_last_level() -> None:
    book = MarketBook(A)
    book.apply_snapshot([(5000, 500), (4900, 1000), (4800, 1000)], [(4000, 1000)], use_yes_price=False)
    before = book.depth_mid(1000)  # takes 500 @ 5000 and 500 of the 1000 @ 4900
    book.apply_delta("yes", 4900, -800, use_yes_price=False)  # the last level it took: now 200
    assert book.depth_mid(1000) == jumps.depth_mid(book.bids, book.asks, 1000) != before
    book.apply_delta("yes", 4700, 5000, use_yes_price=False)  # below it: kept, still right
    assert book.depth_mid(1000) == jumps.depth_mid(book.bids, book.asks, 1000)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.just("ack"), st.integers(0, 10**8)),
                          st.tuples(st.just("old"),), st.tuples(st.just("remove"), st.integers(0, 300)),
                          st.tuples(st.just("eval"),)), max_size=300))
def test_latencies_kept_equal_a_fresh_sort(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    """The risk evaluation's sorted ack latencies (kept while the window is unchanged) are the
    window's latencies sorted, after appends (past the deque's 200), expiry and removals."""
    w = GameWorker(GAME, WorkerConfig("fast"), T0)
    now = T0
    for s in steps:
        if s[0] == "ack":
            now += 1_000_000
            w.order_ack_ns.append((now, s[1]))
        elif s[0] == "old":
            now += w.cfg.latency_window_ns // 3
        elif s[0] == "remove" and w.order_ack_ns:
            w.order_ack_ns.remove(w.order_ack_ns[s[1] % len(w.order_ack_ns)])
        w._evaluate_risk(now, Output())
        assert w.latency_kept is not None
        assert w.latency_kept[1] == sorted(v for _, v in w.order_ack_ns)
