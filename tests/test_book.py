"""Local order book from snapshot + deltas, and per-subscription sequence checks."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mmcore.book import BookTop, MarketBook, SeqTracker, top_of
from mmcore.units import PRICE_ONE


def test_snapshot_mirrors_no_bids_as_asks():
    b = MarketBook("M")
    assert b.stale
    b.apply_snapshot([(5700, 100), (5600, 50)], [(3800, 70)], use_yes_price=False)
    assert not b.stale
    assert b.top() == BookTop(5700, 100, 6200, 70)
    yes_scale = MarketBook("M")
    yes_scale.apply_snapshot([(5700, 100)], [(6200, 70)], use_yes_price=True)
    assert yes_scale.top() == b.top()
    assert b.no_levels() == [(3800, 70)]


def test_delta_to_zero_removes_level_and_negative_marks_stale():
    b = MarketBook("M")
    b.apply_snapshot([(5700, 100)], [], use_yes_price=True)
    assert b.apply_delta("yes", 5700, -100, use_yes_price=True)
    assert b.top().bid is None
    assert not b.apply_delta("yes", 5600, -1, use_yes_price=True)
    assert b.stale


def test_top_excludes_own_orders_and_small_levels():
    b = MarketBook("M")
    b.apply_snapshot([(5800, 10), (5700, 300)], [(4000, 200)], use_yes_price=False)
    assert b.top(exclude=[("bid", 5800, 10)]).bid == 5700
    assert b.top(min_size=50).bid == 5700
    assert b.top().ask == 6000


def test_seq_tracker():
    t = SeqTracker()
    assert [t.check(1, s) for s in (5, 6, 6, 4, 8, 9)] == ["ok", "ok", "duplicate", "duplicate", "gap", "ok"]
    assert t.check(2, 1) == "ok"  # sids are independent
    t.reset(1)
    assert t.check(1, 100) == "ok"


levels = st.dictionaries(st.integers(1, 99).map(lambda c: c * 100), st.integers(1, 1000), max_size=8)


@given(start_bids=levels, start_asks=levels, steps=st.lists(
    st.tuples(st.sampled_from(["yes", "no"]), st.integers(1, 99).map(lambda c: c * 100), st.integers(0, 1000)),
    max_size=40), use_yes=st.booleans())
def test_deltas_rebuild_the_book(start_bids, start_asks, steps, use_yes):
    """Applying the size changes of any level-update sequence reproduces the final book."""
    truth_bids, truth_asks = dict(start_bids), dict(start_asks)
    book = MarketBook("M")
    no = [(p if use_yes else PRICE_ONE - p, n) for p, n in truth_asks.items()]
    book.apply_snapshot(truth_bids.items(), no, use_yes_price=use_yes)
    for side, price, new_size in steps:
        levels = truth_bids if side == "yes" else truth_asks
        delta = new_size - levels.get(price, 0)
        if new_size:
            levels[price] = new_size
        else:
            levels.pop(price, None)
        if delta:
            wire_price = price if side == "yes" or use_yes else PRICE_ONE - price
            assert book.apply_delta(side, wire_price, delta, use_yes_price=use_yes)
    assert book.bids == truth_bids and book.asks == truth_asks
    assert book.top() == top_of(truth_bids.items(), truth_asks.items())


levels = st.dictionaries(st.integers(1, 99).map(lambda c: c * 100), st.integers(0, 50), max_size=8)


@given(levels, levels, st.lists(st.tuples(st.sampled_from(["bid", "ask"]),
                                          st.integers(1, 99).map(lambda c: c * 100),
                                          st.integers(0, 60)), max_size=6),
       st.integers(0, 30))
def test_top_is_the_scan_of_every_level(bids, asks, exclude, min_size):
    """The quick path (best level passes) and the scan agree, zero-size levels and own orders
    at the top included."""
    b = MarketBook("X", bids=dict(bids), asks=dict(asks), stale=False)
    adj_b, adj_a = dict(bids), dict(asks)
    for side, price, size in exclude:
        lv = adj_b if side == "bid" else adj_a
        if price in lv:
            lv[price] = max(0, lv[price] - size)
    assert b.top(exclude=exclude, min_size=min_size) == top_of(adj_b.items(), adj_a.items(),
                                                               min_size=min_size)
