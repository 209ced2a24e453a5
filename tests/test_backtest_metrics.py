"""Backtest metrics (issue 11 item 1): the pure definitions of :mod:`mmcore.backtest.metrics`, the
queue position the tape reads from the FIFO engine, and the metrics of a real backtest run."""

from __future__ import annotations

import pytest

from mmcore.backtest import BacktestResult, run_backtest
from mmcore.backtest.metrics import (
    HORIZONS_S,
    MidLine,
    equity_curve,
    game_metrics,
    max_drawdown,
    merged_curve,
    pnl_per_contract,
    signed_markout,
    time_at_best,
    weighted_mean,
)
from mmcore.backtest.runner import resolve_backtest_scenario
from mmcore.backtest.tape import Tape, TopSample
from mmcore.game import GameBook
from mmcore.sim.engine import Engine
from mmcore.sim.engine_types import Fill, OrderRequest
from mmcore.sim.scenario import default_scenario_dict
from mmcore.units import CONTRACT, PRICE_ONE

SEED = 7
NS = 1_000_000_000
C = 100  # one cent in price units


def _fill(ts: int, side: str, price: int, count: int, fee: int = 0, ticker: str = "M") -> Fill:
    return Fill(f"t{ts}", "o", "mm", ticker, side, price, count, False, fee, ts, 0, None)  # type: ignore[arg-type]


# --- pure definitions ----------------------------------------------------------------------------

def test_markout_sign_is_good_for_us_when_positive() -> None:
    assert signed_markout("bid", 50 * C, 52 * C) == 2 * C  # bought at 50, worth 52
    assert signed_markout("ask", 50 * C, 52 * C) == -2 * C  # sold at 50, worth 52
    assert weighted_mean([(2.0, 100), (None, 500), (-1.0, 200)]) == 0.0
    assert weighted_mean([(None, 1)]) is None
    assert pnl_per_contract(1_000, 4 * CONTRACT) == 250  # $0.10 over 4 contracts = 2.5¢ each
    assert pnl_per_contract(5, 0) is None


def test_mid_line_holds_the_last_two_sided_mid() -> None:
    line = MidLine([TopSample(10, 40 * C, 42 * C, False, False),
                    TopSample(20, None, 42 * C, False, False),  # one-sided: the 41¢ mid stands
                    TopSample(30, 44 * C, 45 * C, False, False)])
    assert line.at(9) is None
    assert line.at(10) == line.at(25) == 41 * C
    assert line.at(30) == 44.5 * C


def test_time_at_best_integrates_over_the_window() -> None:
    samples = [TopSample(0, 1, 2, True, False), TopSample(40, 1, 2, False, True),
               TopSample(70, 1, 2, True, True)]
    assert time_at_best(samples, "bid", 0, 100) == pytest.approx(0.7)  # [0,40) + [70,100)
    assert time_at_best(samples, "ask", 0, 100) == pytest.approx(0.6)  # [40,100)
    assert time_at_best(samples, "bid", 50, 60) == 0.0
    assert time_at_best([], "bid", 0, 100) == 0.0


def test_drawdown_marks_positions_to_the_mid() -> None:
    tops = {"M": [TopSample(0, 49 * C, 51 * C, False, False),
                  TopSample(20, 44 * C, 46 * C, False, False),
                  TopSample(30, 54 * C, 56 * C, False, False)]}
    # buy 2 at 49¢ (1¢ fee): +2¢ at the 50¢ mid −1¢ fee; the mid falls to 45¢: −9¢; then 55¢: +11¢
    curve = equity_curve([_fill(10, "bid", 49 * C, 2 * CONTRACT, fee=C)], tops, 0, 100)
    assert [e for _, e in curve] == [0, 1 * C, -9 * C, 11 * C]
    assert max_drawdown(curve) == 10 * C  # peak +1¢ → −9¢
    assert max_drawdown([(0, 5.0), (1, 3.0), (2, 9.0), (3, 1.0)]) == 8.0
    both = merged_curve([[(1, 5.0), (3, 0.0)], [(2, -2.0)]])
    assert both == [(1, 5.0), (2, 3.0), (3, -2.0)]


# --- queue position from the FIFO engine ----------------------------------------------------------

def test_tape_reads_queue_ahead_at_placement_and_at_the_fill() -> None:
    eng = Engine()
    eng.add_series("S", fee_type="quadratic", fee_multiplier=0.0)
    eng.add_event("E", series_ticker="S", start_ns=10**12)
    eng.add_market("M", event_ticker="E", close_ns=10**13)
    for user in ("mm", "a", "b"):
        eng.add_user(user, balance=10**9)
    eng.drain_events()
    tape = Tape(eng, "mm", ["M"], lambda m: 20 * CONTRACT)

    def call(fn, t):  # what LocalExchange.mutate does: run, then publish the batch
        out = fn()
        tape.record(t, eng.drain_events())
        return out

    call(lambda: eng.place(OrderRequest("a", "M", "bid", 50 * C, 5 * CONTRACT), 1), 1)
    ours = call(lambda: eng.place(OrderRequest("mm", "M", "bid", 50 * C, 3 * CONTRACT,
                                               post_only=True), 2), 2).order
    call(lambda: eng.place(OrderRequest("a", "M", "bid", 50 * C, 4 * CONTRACT), 3), 3)
    # a seller of 6 takes the 5 ahead of us, then 1 of ours
    call(lambda: eng.place(OrderRequest("b", "M", "ask", 50 * C, 6 * CONTRACT), 4), 4)
    [f1] = eng.fills("mm")
    ctx = tape.fills[f1.trade_id]
    assert (ctx.queue_ahead_placed, ctx.queue_ahead_filled, ctx.hard_limit) == (
        5 * CONTRACT, 5 * CONTRACT, 20 * CONTRACT)
    assert tape.tops["M"] == [TopSample(1, 50 * C, None, False, False),
                              TopSample(2, 50 * C, None, True, False)]  # unchanged after
    # an amend to a new price re-queues: alone at 51¢, nobody ahead; the next seller fills us first
    call(lambda: eng.amend("mm", ours.order_id, ticker="M", side="bid", price=51 * C,
                           count=3 * CONTRACT, now_ns=5), 5)
    call(lambda: eng.place(OrderRequest("b", "M", "ask", 51 * C, 1 * CONTRACT), 6), 6)
    f2 = eng.fills("mm")[-1]
    assert (tape.fills[f2.trade_id].queue_ahead_placed,
            tape.fills[f2.trade_id].queue_ahead_filled) == (0, 0)


def test_limit_at_send_follows_the_sequence_of_decisions_not_market_names() -> None:
    """Chaos G1 found a game at 1.60 that was at 0.80: two decisions at one virtual instant (the
    second book arrived: the liquidity-following bound went 12.5 → 25 contracts), the first
    sending an SF bid, the second a DET ask, both adding to "SF wins". Ordered by market name,
    the fills were judged against the first decision's bound; the tape's sequence says the second
    came last, and its gate had counted both orders against 25."""
    eng = Engine()
    eng.add_series("S", fee_type="quadratic", fee_multiplier=0.0)
    eng.add_event("E", series_ticker="S", start_ns=10**12)
    markets = ("E-DET", "E-SF")
    for m in markets:
        eng.add_market(m, event_ticker="E", close_ns=10**13)
    for user in ("mm", "a", "b"):
        eng.add_user(user, balance=10**9)
    eng.drain_events()
    tape = Tape(eng, "mm", markets, lambda m: 5 * CONTRACT)  # the bound at the fill: shrunk

    def call(fn, t):
        out = fn()
        tape.record(t, eng.drain_events())
        return out

    tape.sent(5, "E-SF", "bid", 1250)  # decision 1 (bound 12.5 contracts)
    tape.sent(5, "E-DET", "ask", 2500)  # decision 2, same instant (bound 25)
    call(lambda: eng.place(OrderRequest("mm", "E-SF", "bid", 50 * C, 10 * CONTRACT,
                                        post_only=True), 6), 6)
    call(lambda: eng.place(OrderRequest("mm", "E-DET", "ask", 50 * C, 10 * CONTRACT,
                                        post_only=True), 6), 6)
    t = 20 * NS
    call(lambda: eng.place(OrderRequest("a", "E-SF", "ask", 50 * C, 10 * CONTRACT), t), t)
    call(lambda: eng.place(OrderRequest("b", "E-DET", "bid", 50 * C, 10 * CONTRACT), t), t)
    tape.sent(t, "E-DET", "ask", 1000)  # a decision at the fills' instant, after them
    fills = eng.fills("mm")
    assert [f.ts_ns for f in fills] == [t, t]
    book = GameBook(markets)

    def at_send(sends) -> float | None:
        m, _ = game_metrics(book, markets, fills, tape.fills, tape.tops, lambda m, t: 0.5,
                            (0, 30 * NS), 0, 20 * CONTRACT, sends=sends)
        return m.max_inventory_ratio_at_send

    assert at_send(tape.sends) == pytest.approx(20 / 25)  # |d| 20 contracts ÷ decision 2's 25
    # had the SF decision come last, its 12.5 would be the promise broken (1.6)
    swapped = {"E-SF": [(5, "bid", 1250, 2)], "E-DET": [(5, "ask", 2500, 1)]}
    assert at_send(swapped) == pytest.approx(20 / 12.5)


def test_only_orders_that_can_add_are_sends_for_the_limit_at_send() -> None:
    """Chaos G1 seed 1067 (1.15): after a sweep the worker cut a resting bid to 1 contract under
    a shrunk bound; the cut (always allowed: it reduces) counted as a send "pushing that way", so
    the inventory the sweep left was judged against the cut's bound. Places and amends that
    raise an order's open count are sends; cuts and pure price moves are not."""
    from types import SimpleNamespace

    from mmcore.backtest.runner import _adds
    from mmcore.orders import Amend, Cancel, LiveOrder, Place, Quote

    live = {"o1": LiveOrder("o1", "c1", "M", "bid", 50 * C, 8 * CONTRACT, 2 * CONTRACT, 0)}
    w = SimpleNamespace(live=live)
    assert _adds(w, Place(Quote("M", "bid", 50 * C, CONTRACT), "c2"))
    assert not _adds(w, Amend("o1", "M", "bid", 50 * C, 3 * CONTRACT))  # cut to 1 open
    assert not _adds(w, Amend("o1", "M", "bid", 49 * C, 10 * CONTRACT))  # moved, same 8 open
    assert _adds(w, Amend("o1", "M", "bid", 50 * C, 11 * CONTRACT))  # 9 open: adds
    assert _adds(w, Amend("gone", "M", "bid", 50 * C, CONTRACT))  # unknown: counted
    assert not _adds(w, Cancel("o1", "M", "bid", "x"))


# --- metrics of a real run ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def slate() -> BacktestResult:
    return run_backtest(default_scenario_dict(SEED, 3), seed=SEED)


def test_every_game_has_its_metrics_and_the_totals_add_up(slate: BacktestResult) -> None:
    t = slate.metrics
    assert t is not None
    assert (t.fills, t.volume, t.net_pnl_money) == (
        len(slate.fills), slate.total_volume, slate.total_net_pnl_money)
    assert t.pnl_per_contract == pytest.approx(slate.total_net_pnl_money * CONTRACT / slate.total_volume)
    for g in slate.games:
        m = g.metrics
        assert m is not None and len(m.fills) == len(g.fills) > 0
        assert [p.trade_id for p in m.fills] == [f.trade_id for f in g.fills]
        assert m.window_ns[0] < m.window_ns[1] <= g.start_ns + NS
        assert 0 < m.time_at_best_bid + m.time_at_best_ask <= 2
        assert m.max_drawdown_money >= 0
        assert m.max_inventory_ratio is not None and 0 < m.max_inventory_ratio <= 1
        assert all(p.hard_limit and p.hard_limit > 0 for p in m.fills)
        assert all(p.queue_ahead_placed is not None and p.queue_ahead_placed >= 0 for p in m.fills)
        assert all(p.queue_ahead_filled is not None for p in m.fills)  # post-only: always maker
    assert t.max_drawdown_money >= max(g.metrics.max_drawdown_money for g in slate.games if g.metrics)
    assert t.nobody_ahead_share is not None and 0 <= t.nobody_ahead_share <= 1


def test_truth_markouts_are_the_hidden_truth_after_the_fill(slate: BacktestResult) -> None:
    sc = resolve_backtest_scenario(default_scenario_dict(SEED, 3), SEED)
    for g, rg in zip(slate.games, sc.games):
        assert g.metrics is not None
        for f, p in zip(g.fills, g.metrics.fills):
            for h, got in zip(HORIZONS_S, p.markout_truth):
                truth = rg.yes_prob(f.market, f.ts_ns + h * NS) * PRICE_ONE
                assert got == pytest.approx(truth - f.price if f.side == "bid" else f.price - truth)
            assert all(m is not None for m in p.markout_mid)  # a two-sided book long before
        counts = [f.count for f in g.fills]
        for i in range(len(HORIZONS_S)):
            assert g.metrics.markout_mid[i] == pytest.approx(
                sum(p.markout_mid[i] * n for p, n in zip(g.metrics.fills, counts)) / sum(counts))


def test_mm_backtest_prints_the_metrics(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from mmcore.cli import app

    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(default_scenario_dict(SEED, 3)), encoding="utf-8")
    out = CliRunner().invoke(app, ["backtest", "--scenario", str(path), "--games", "1",
                                   "--seed", str(SEED), "--no-db"])
    assert out.exit_code == 0, out.output
    res = run_backtest(path, games=1, seed=SEED)
    m = res.metrics
    assert m is not None
    total = [ln for ln in out.output.splitlines() if ln.startswith("total")]
    assert len(total) == 2
    cells = total[1].split()
    mo = [f"{v / C:+.2f}" for v in (*m.markout_mid, *m.markout_truth)]
    assert cells[1:7] == mo
    assert f"{m.pnl_per_contract / C:+.2f}" in total[0].split()
