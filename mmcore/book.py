"""Local order book of one market, in YES terms.

Kalshi publishes bids only: YES bids and NO bids. A NO bid at ``n`` is a YES ask at
``PRICE_ONE − n``. We keep both sides in YES price units ($0.0001) so quoting code reads
``best_bid`` / ``best_ask`` directly. Sizes are centi-contracts.

:class:`BookTop` is what quoting consumes: the best prices of *other* participants, i.e. with our
own resting orders removed, so that we never compete against ourselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mmcore.units import PRICE_ONE


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid/ask of one market (YES terms, price units); ``None`` when that side is empty."""

    bid: int | None
    bid_size: int
    ask: int | None
    ask_size: int

    @property
    def mid(self) -> float | None:
        """Mid in price units, only when both sides exist."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2

    @staticmethod
    def empty() -> BookTop:
        """The top of an empty book (one shared immutable value: asked for on every requote)."""
        return _EMPTY_TOP


_EMPTY_TOP = BookTop(None, 0, None, 0)


def top_of(
    bids: Iterable[tuple[int, int]],
    asks: Iterable[tuple[int, int]],
    *,
    min_size: int = 0,
) -> BookTop:
    """Best levels from (price, size) lists, ignoring levels smaller than ``min_size``
    (so a 1-lot "pennying" order does not drag our quote: Hummingbot's price-for-volume idea)."""
    best_bid = max(((p, s) for p, s in bids if s > 0 and s >= min_size), default=None)
    best_ask = min(((p, s) for p, s in asks if s > 0 and s >= min_size), default=None)
    return BookTop(
        best_bid[0] if best_bid else None,
        best_bid[1] if best_bid else 0,
        best_ask[0] if best_ask else None,
        best_ask[1] if best_ask else 0,
    )


BookSide = Literal["yes", "no"]


def _best(levels: dict[int, int], pick: Any, side: str, exclude: tuple[tuple[str, int, int], ...],
          min_size: int) -> tuple[int | None, int] | None:
    """(price, size) of the best level when it passes :func:`top_of`'s filters after ``exclude``;
    (None, 0) for an empty side; None when the best level fails (the caller scans instead)."""
    if not levels:
        return None, 0
    price = pick(levels)
    size = levels[price]
    for s, p, n in exclude:
        if p == price and s == side:
            size = max(0, size - n)
    return (price, size) if size > 0 and size >= min_size else None


@dataclass(slots=True)
class MarketBook:
    """One market's book rebuilt from an ``orderbook_snapshot`` and ``orderbook_delta`` stream.

    Levels are kept in YES terms: ``bids[price] = size`` from YES bids, ``asks[price] = size`` from
    NO bids (a NO bid at ``n`` is a YES ask at ``PRICE_ONE − n``). With ``use_yes_price`` the venue
    already reports NO levels at the YES price. ``stale`` is set on any inconsistency (a level
    going negative, a sequence gap reported by :class:`SeqTracker`) and cleared only by a
    snapshot: quoting must not use a stale book.

    Timestamps are integer ns: ``exchange_ns`` from the message, ``receipt_ns`` when we read it.

    ``version`` counts the changes of the levels (every :meth:`apply_snapshot` and
    :meth:`apply_delta`): the levels are changed only through those two, so a reader may keep
    what it derived from the book by (book, ``version``, ``stale``) — the worker's liquidity limit
    does, for the events that move no book (fills, acks, theo, timers).
    """

    ticker: str
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)
    stale: bool = True
    exchange_ns: int | None = None
    receipt_ns: int | None = None
    version: int = field(default=0, compare=False, repr=False)
    windows: dict[tuple[str, int], tuple[int | None, int]] = field(
        default_factory=dict, compare=False, repr=False)
    """:meth:`window` results kept by (side, width); dropped by a change that can move them."""
    tops: dict[Any, BookTop] = field(default_factory=dict, compare=False, repr=False)
    """:meth:`top` results kept by (exclude, min_size); dropped by a change that can move them."""
    mids: dict[Any, tuple[float | None, int | None, int | None]] = field(
        default_factory=dict, compare=False, repr=False)
    """:meth:`depth_mid` results kept by (depth, exclude), each with the bid price at or above
    which (ask price at or below which; None: any) a change can move it."""

    def _ask_price(self, price: int, side: BookSide, use_yes_price: bool) -> int:
        return price if use_yes_price else PRICE_ONE - price

    def apply_snapshot(
        self,
        yes: Iterable[tuple[int, int]],
        no: Iterable[tuple[int, int]],
        *,
        use_yes_price: bool,
        exchange_ns: int | None = None,
        receipt_ns: int | None = None,
    ) -> None:
        """Replace the book. ``yes``/``no`` are (price units, centi-contracts) bid levels."""
        self.bids = {p: n for p, n in yes if n > 0}
        self.asks = {self._ask_price(p, "no", use_yes_price): n for p, n in no if n > 0}
        self.stale = False
        self.version += 1
        self.windows.clear()
        self.tops.clear()
        self.mids.clear()
        self.exchange_ns, self.receipt_ns = exchange_ns, receipt_ns

    def apply_delta(
        self,
        side: BookSide,
        price: int,
        delta: int,
        *,
        use_yes_price: bool,
        exchange_ns: int | None = None,
        receipt_ns: int | None = None,
    ) -> bool:
        """Apply a signed size change; returns False (and marks the book stale) if the change
        would take a level below zero — the stream and our book disagree."""
        levels = self.bids if side == "yes" else self.asks
        key = price if side == "yes" else self._ask_price(price, side, use_yes_price)
        new = levels.get(key, 0) + delta
        self.version += 1
        if self.windows:
            _drop_windows(self.windows, "bid" if side == "yes" else "ask", key)
        if self.tops:
            _drop_tops(self.tops, side == "yes", key)
        if self.mids:
            _drop_mids(self.mids, side == "yes", key)
        self.exchange_ns, self.receipt_ns = exchange_ns, receipt_ns
        if new < 0:
            self.stale = True
            return False
        if new == 0:
            levels.pop(key, None)
        else:
            levels[key] = new
        return True

    def top(self, *, exclude: Iterable[tuple[str, int, int]] = (), min_size: int = 0) -> BookTop:
        """Best levels, minus our own resting orders given as (side "bid"|"ask", price, size).

        Called several times per book event: when each side's best price still holds a size that
        passes (after our own orders and ``min_size``) that level is the answer, found without
        copying the book; otherwise the levels are scanned as :func:`top_of` does.

        The answer is kept (at most 8 per book) until a change that can move it: a bid below
        the answer's bid (an ask above its ask) can change neither the best qualifying level
        nor its size, so a delta far from the top reuses it (levels change only through
        :meth:`apply_snapshot` / :meth:`apply_delta`; see ``version``)."""
        exclude = tuple(exclude)
        key = (exclude, min_size)
        tops = self.tops
        try:
            got = tops.get(key)
        except TypeError:  # an unhashable exclude entry: not kept
            return self._top(exclude, min_size)
        if got is None:
            got = self._top(exclude, min_size)
            if len(tops) >= 8:
                tops.clear()
            tops[key] = got
        return got

    def _top(self, exclude: tuple[tuple[str, int, int], ...], min_size: int) -> BookTop:
        bid = _best(self.bids, max, "bid", exclude, min_size)
        ask = _best(self.asks, min, "ask", exclude, min_size)
        if bid is not None and ask is not None:
            return BookTop(bid[0], bid[1], ask[0], ask[1])
        bids, asks = dict(self.bids), dict(self.asks)
        for side, price, size in exclude:
            levels = bids if side == "bid" else asks
            if price in levels:
                levels[price] = max(0, levels[price] - size)
        return top_of(bids.items(), asks.items(), min_size=min_size)

    def depth_mid(self, depth: int, exclude: Iterable[tuple[str, int, int]] = ()) -> float | None:
        """:func:`mmcore.risk.jumps.depth_mid` of this book, kept until a change that can move
        it: one below the last bid level the bid side's average took (above the last ask level)
        cannot (levels change only through the ``apply_*`` methods; see ``version``)."""
        exclude = tuple(exclude)
        key = (depth, exclude)
        mids = self.mids
        try:
            got = mids.get(key)
        except TypeError:  # an unhashable exclude entry: not kept
            return depth_mid_of(self.bids, self.asks, depth, exclude)[0]
        if got is None:
            got = depth_mid_of(self.bids, self.asks, depth, exclude)
            if len(mids) >= 8:
                mids.clear()
            mids[key] = got
        return got[0]

    def window(self, side: Literal["bid", "ask"], width: int) -> tuple[int | None, int]:
        """:func:`window_of` this book, kept until a change that can move it: a delta beyond the
        window (a bid below ``best − width``, an ask above ``best + width``) can move neither the
        best price nor the sum, so the worker's liquidity limit is not rescanned for a delta far
        from the top. Levels must change only through :meth:`apply_snapshot` /
        :meth:`apply_delta` (as everywhere; see ``version``)."""
        got = self.windows.get((side, width))
        if got is None:
            got = window_of(self, side, width)
            if width >= 0:
                self.windows[(side, width)] = got
        return got

    def yes_levels(self) -> list[tuple[int, int]]:
        return sorted(self.bids.items())

    def no_levels(self) -> list[tuple[int, int]]:
        """NO bids in NO-leg prices, ascending (Kalshi's REST/WS layout without use_yes_price)."""
        return sorted((PRICE_ONE - p, n) for p, n in self.asks.items())


def window_of(book: Any, side: Literal["bid", "ask"], width: int) -> tuple[int | None, int]:
    """(best price of ``side`` as :meth:`MarketBook.top` has it, the summed size of that
    side's positive levels within ``width`` price units of it: bids at ≥ best − width, asks
    at ≤ best + width); (None, 0) for an empty side. ``book``: a :class:`MarketBook` or a
    read-only view of one (``bids``, ``asks``, ``top()``)."""
    levels = book.bids if side == "bid" else book.asks
    if not levels:
        return None, 0
    best = max(levels) if side == "bid" else min(levels)
    if levels[best] <= 0:  # (never from apply_*: top()'s own scan then)
        top = book.top()
        best = top.bid if side == "bid" else top.ask
        if best is None:
            return None, 0
    if side == "bid":
        lo = best - width
        return best, sum([n for p, n in levels.items() if p >= lo and n > 0])
    hi = best + width
    return best, sum([n for p, n in levels.items() if p <= hi and n > 0])


def depth_vwap(levels: Mapping[int, int], side: str, own: Mapping[tuple[str, int], int],
               depth: int, best_first: bool) -> tuple[float | None, int | None]:
    """(volume-weighted average price of the best ``depth`` centi-contracts of ``levels`` after
    ``own`` — (side, price) → our size — or None when nothing is left; the last price taken
    when ``depth`` was reached, else None: every level counted)."""
    need, acc, got = depth, 0.0, 0
    for p in sorted(levels, reverse=best_first):
        n = levels[p] - own.get((side, p), 0)
        if n <= 0:
            continue
        take = min(n, need - got)
        acc += p * take
        got += take
        if got >= need:
            return (acc / got if got else None), p
    return (acc / got if got else None), None


def depth_mid_of(bids: Mapping[int, int], asks: Mapping[int, int], depth: int,
                 exclude: Iterable[tuple[str, int, int]] = ()
                 ) -> tuple[float | None, int | None, int | None]:
    """(:func:`mmcore.risk.jumps.depth_mid`, the bid price at or above which a change can move
    it, the ask price at or below which one can; None: a change anywhere on that side)."""
    own: dict[tuple[str, int], int] = {}
    for side, price, size in exclude:
        own[(side, price)] = own.get((side, price), 0) + size
    b, b_last = depth_vwap(bids, "bid", own, depth, True)
    a, a_last = depth_vwap(asks, "ask", own, depth, False)
    return (None if b is None or a is None else (a + b) / 2), b_last, a_last


def _drop_mids(mids: dict[Any, tuple[float | None, int | None, int | None]], bid_side: bool,
               price: int) -> None:
    """Forget the kept depth mids a change at ``price`` on that side may move."""
    for key, (_, b_last, a_last) in list(mids.items()):
        if bid_side:
            if b_last is None or price >= b_last:
                del mids[key]
        elif a_last is None or price <= a_last:
            del mids[key]


def _drop_tops(tops: dict[Any, BookTop], bid_side: bool, price: int) -> None:
    """Forget the kept tops that a change at ``price`` on that side may move: on the bid side
    at or above the answer's bid (any, when it had none); on the ask side at or below its ask."""
    for key, top in list(tops.items()):
        if bid_side:
            if top.bid is None or price >= top.bid:
                del tops[key]
        elif top.ask is None or price <= top.ask:
            del tops[key]


def _drop_windows(windows: dict[tuple[str, int], tuple[int | None, int]], side: str,
                  price: int) -> None:
    """Forget the kept windows of ``side`` that a change at ``price`` may move."""
    for key, (best, _) in list(windows.items()):
        if key[0] == side and (best is None or (price >= best - key[1] if side == "bid"
                                                else price <= best + key[1])):
            del windows[key]


SeqVerdict = Literal["ok", "duplicate", "gap"]


@dataclass(slots=True)
class SeqTracker:
    """``seq`` per subscription id: Kalshi numbers every sequenced message of a subscription
    consecutively (snapshots and deltas alike). A repeat or older seq is a duplicate to drop; a
    jump is a gap after which every book of that subscription is stale until resynced."""

    last: dict[int, int] = field(default_factory=dict)

    def check(self, sid: int, seq: int) -> SeqVerdict:
        prev = self.last.get(sid)
        if prev is not None and seq <= prev:
            return "duplicate"
        self.last[sid] = seq
        if prev is None or seq == prev + 1:
            return "ok"
        return "gap"

    def reset(self, sid: int) -> None:
        self.last.pop(sid, None)
