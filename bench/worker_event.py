"""Worker CPU per event: ``GameWorker.handle`` in-process, no I/O, on a realistic state.

Question (issue 11 item 5): how much CPU does the per-game engine spend on one event, and on a
book event that changes nothing it quotes from? Goal: ≤ 100 µs per unchanged book event.

State: one NBA game (two markets, 1¢ grid, maker fees), each book 20 levels a side of others'
size, theo (0.6, 0.4) with uncertainty, four resting quotes of ours acknowledged, and a few
contracts of inventory from fills. Then, per kind, ``--events`` events, each timed around
``handle`` only (what the worker sends is acknowledged between
events, untimed, so slots never stay locked). Times are this thread's CPU time
(``time.thread_time_ns``, ~1 µs per reading included): other work on the machine delays the
worker but does not count, so the figure is the worker's own cost per event):

- **unchanged book**: a ``BookEv`` whose book is the same object, not changed since the last
  event (nothing the quotes depend on moved; the book's ``version`` did not move either);
- **deep delta**: a real ``apply_delta`` far from the top (±10 contracts at the 15th bid level,
  outside the liquidity window): nothing the quotes depend on moved, but the book's ``version``
  did, so what is kept by book version (the liquidity limit) is recomputed — the realistic form
  of an "unchanged" book event;
- **top change**: others' size at the best bid alternates between two values (the top's size
  moves, the prices do not);
- **theo change**: a ``TheoEv`` alternating between about 0.60 and 0.62, never twice the same
  (requotes: two amends each);
- **fill**: a 1-contract fill of one of our resting orders, alternating bid and ask on market A
  (inventory moves by ±1 contract; the order shrinks; the worker may amend).

Prints p50 / p99 / mean µs per event and events per second of worker CPU, with the machine line.
The garbage collector is left on (as in the worker). Run with ``--profile KIND`` for a cProfile
of that kind's events (top 25 by cumulative time).

    .venv/bin/python bench/worker_event.py                 # --events 3000 (≈ 10 s)
    .venv/bin/python bench/worker_event.py --events 20000
    .venv/bin/python bench/worker_event.py --profile unchanged
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchkit import load_line, print_table  # noqa: E402

from mmcore.book import MarketBook  # noqa: E402
from mmcore.fees import FeeSchedule  # noqa: E402
from mmcore.game import GameSpec  # noqa: E402
from mmcore.orders import Place  # noqa: E402
from mmcore.ticks import TickGrid  # noqa: E402
from mmcore.units import CONTRACT  # noqa: E402
from mmcore.worker.engine import (  # noqa: E402
    AckEv,
    BookEv,
    ConnEv,
    FillEv,
    GameWorker,
    Output,
    ReconcileEv,
    TheoEv,
    WorkerConfig,
)

S = 1_000_000_000
MS = 1_000_000
T0 = 1_900_000_000 * S
A, B = "KXNBAGAME-26NOV24BOSNYK-BOS", "KXNBAGAME-26NOV24BOSNYK-NYK"
GAME = GameSpec("KXNBAGAME-26NOV24BOSNYK", "basketball_nba", (A, B), (TickGrid.linear_cent(),) * 2,
                FeeSchedule.from_series("quadratic_with_maker_fees"), T0 + 3 * 3600 * S)
KINDS = ("unchanged", "deep", "top", "theo", "fill")


def deep_book(market: str, bid: int, ask: int, *, levels: int = 20, top_size: int = 20_000) -> MarketBook:
    """``levels`` levels a side (1¢ apart, 50–250 contracts each) under ``bid`` / over ``ask``."""
    b = MarketBook(market)
    bids = [(bid - 100 * i, top_size if i == 0 else 5_000 + 1_000 * (i % 20)) for i in range(levels)]
    no = [(10_000 - (ask + 100 * i), top_size if i == 0 else 5_000 + 1_000 * (i % 20))
          for i in range(levels)]
    b.apply_snapshot([(p, s) for p, s in bids if p > 0], [(p, s) for p, s in no if p > 0],
                     use_yes_price=False)
    return b


class Rig:
    """A started worker, its clock and what it has sent; every action is acked at once."""

    def __init__(self) -> None:
        self.now = T0
        self.ack_id = 0
        self.w = GameWorker(GAME, WorkerConfig("bench"), self.now)
        self.books = {A: deep_book(A, 5700, 6300), B: deep_book(B, 3700, 4300)}
        self.feed(self.w.handle(ConnEv(True), self.now))
        self.feed(self.w.handle(ReconcileEv({}, (), self.now, initial=True), self.now))
        self.feed(self.w.handle(TheoEv((0.6, 0.4), (0.003, 0.003), self.now, confidence=0.9),
                                self.now))
        for m in (A, B):
            self.feed(self.w.handle(BookEv(m, self.books[m], self.now, self.now), self.now))
        # some inventory: two 2-contract fills on A's bid and one on B's ask
        for k in range(3):
            self.fill(A if k < 2 else B, "bid" if k < 2 else "ask", 2 * CONTRACT)
        assert len(self.w.live) == 4, f"expected 4 resting quotes, got {len(self.w.live)}"

    def tick(self, dt_ns: int = 2 * MS) -> int:
        self.now += dt_ns
        return self.now

    def feed(self, out: Output) -> None:
        """Acknowledge every action at once (as the venue would), recursively."""
        pending = list(out.actions)
        while pending:
            seq, action = pending.pop(0)
            self.ack_id += 1
            if isinstance(action, Place):
                ev = AckEv(seq, True, order_id=f"o{self.ack_id}", remaining=action.quote.count,
                           filled=0, latency_ns=2 * MS)
            else:
                ev = AckEv(seq, True, order_id=getattr(action, "order_id", None), latency_ns=2 * MS)
            pending += self.w.handle(ev, self.tick(10_000)).actions
        # cancels acked: the exchange confirms them (user_orders), so they stop counting
        self.w.cancelling.clear()

    def fill_event(self, market: str, side: str, count: int) -> FillEv | None:
        o = next((o for o in self.w.live.values() if o.market == market and o.side == side), None)
        if o is None:
            return None
        self.ack_id += 1
        now = self.tick()
        pos = self.w.positions[market] + (count if side == "bid" else -count)
        return FillEv(f"t{self.ack_id}", o.order_id, market, side, o.price, min(count, o.remaining),
                      1, False, pos, now, now)

    def fill(self, market: str, side: str, count: int) -> None:
        ev = self.fill_event(market, side, count)
        if ev is not None:
            self.feed(self.w.handle(ev, self.now))


def make_events(rig: Rig, kind: str) -> Callable[[int], Callable[[], Output]]:
    """For event ``i`` of ``kind``: prepare the state (untimed) and return the timed call."""
    w = rig.w
    theos = ((0.6, 0.4), (0.62, 0.38))

    def prepare(i: int) -> Callable[[], Output]:
        now = rig.tick()
        if kind == "unchanged":
            ev = BookEv(A if i % 2 else B, rig.books[A if i % 2 else B], now, now)
            return lambda: w.handle(ev, now)
        if kind == "deep":
            book = rig.books[A if i % 2 else B]
            deep = sorted(book.bids)[-15]
            book.apply_delta("yes", deep, 1_000 if i % 4 < 2 else -1_000, use_yes_price=False,
                             exchange_ns=now, receipt_ns=now)
            ev = BookEv(A if i % 2 else B, book, now, now)
            return lambda: w.handle(ev, now)
        if kind == "top":
            book = rig.books[A]
            top = max(book.bids)
            book.apply_delta("yes", top, (20_000 if i % 2 else 24_000) - book.bids[top],
                             use_yes_price=False, exchange_ns=now, receipt_ns=now)
            ev = BookEv(A, book, now, now)
            return lambda: w.handle(ev, now)
        if kind == "theo":
            drift = i * 1e-7  # a new theo every time (no two events quote from the same)
            tev = TheoEv((theos[i % 2][0] + drift, theos[i % 2][1] - drift), (0.003, 0.003), now,
                         confidence=0.9)
            return lambda: w.handle(tev, now)
        if kind == "fill":
            fev = rig.fill_event(A, "bid" if i % 2 else "ask", CONTRACT)
            if fev is None:  # the side was not quoted: a book event keeps the count
                bev = BookEv(A, rig.books[A], now, now)
                return lambda: w.handle(bev, now)
            return lambda: w.handle(fev, rig.now)
        raise ValueError(kind)

    return prepare


def run_kind(kind: str, events: int, warmup: int, profile: cProfile.Profile | None) -> list[int]:
    rig = Rig()
    prepare = make_events(rig, kind)
    samples: list[int] = []
    for i in range(warmup + events):
        call = prepare(i)
        if profile is not None and i >= warmup:
            profile.enable()
        t0 = time.thread_time_ns()
        out = call()
        dt = time.thread_time_ns() - t0
        if profile is not None and i >= warmup:
            profile.disable()
        if i >= warmup:
            samples.append(dt)
        rig.feed(out)
    return samples


def q(values: list[int], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p * len(v) + 0.5) - 1))] / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=3000, help="timed events per kind")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"subset of {','.join(KINDS)}")
    ap.add_argument("--profile", choices=KINDS, help="cProfile this kind instead of timing all")
    args = ap.parse_args()
    print(f"worker_event: {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, {load_line()}")
    if args.profile:
        prof = cProfile.Profile()
        run_kind(args.profile, args.events, args.warmup, prof)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
        return
    rows = []
    for kind in args.kinds.split(","):
        s = run_kind(kind, args.events, args.warmup, None)
        mean = sum(s) / len(s) / 1e3
        rows.append([kind, str(len(s)), f"{q(s, 0.5):.1f}", f"{q(s, 0.99):.1f}", f"{mean:.1f}",
                     f"{1e6 / mean:,.0f}"])
    print_table(["event", "n", "p50 µs", "p99 µs", "mean µs", "events/s"], rows)
    print("goal: unchanged book event ≤ 100 µs of worker CPU")


if __name__ == "__main__":
    main()
