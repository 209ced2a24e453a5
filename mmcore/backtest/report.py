"""The backtest's per-game tables as text (what ``mm backtest`` prints). Dollars, cents and
contracts are converted here, at the edge, from price units and centi-contracts.

Two tables, one line per game and a total line each:

1. trading: fills, volume, max inventory, fees, net P&L after fees at settlement, P&L per
   contract, max drawdown (marked to the book mid), max |inventory| ÷ hard limit, stop, resting;
2. quality: markouts of our fills at +1/+5/+30 s in cents per contract vs the book mid and vs
   the hidden truth (positive = good for us), time at the best bid / ask (% of the quoting
   window), queue ahead at placement (mean contracts) and the share of fills with nobody ahead.
"""

from __future__ import annotations

from mmcore.backtest.metrics import HORIZONS_S, GameMetrics, RunMetrics
from mmcore.backtest.result import BacktestResult
from mmcore.units import CONTRACT, PRICE_ONE

_HEAD = ("game", "fills", "volume", "max inv", "fees $", "net P&L $", "¢/ct", "max DD $",
         "inv/lim", "stopped", "resting")
_MO = "/".join(f"+{h}s" for h in HORIZONS_S)
_HEAD2 = ("game", f"mid markout ¢ {_MO}", f"truth markout ¢ {_MO}", "best bid %", "best ask %",
          "queue ct", "none ahead %")
CENT = PRICE_ONE // 100


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    return [_row(head, widths), *(_row(r, widths) for r in rows)]


def _cents(v: float | None) -> str:
    return "—" if v is None else f"{v / CENT:+.2f}"


def _markouts(vs: tuple[float | None, ...]) -> str:
    return " ".join(_cents(v) for v in vs)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.0f}"


def _ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _queue(m: GameMetrics | RunMetrics) -> tuple[str, str]:
    if isinstance(m, RunMetrics):
        mean, none = m.queue_ahead_placed_mean, m.nobody_ahead_share
    else:
        placed = [f.queue_ahead_placed for f in m.fills if f.queue_ahead_placed is not None]
        mean = sum(placed) / len(placed) if placed else None
        none = sum(1 for q in placed if q == 0) / len(placed) if placed else None
    return ("—" if mean is None else f"{mean / CONTRACT:.1f}", _pct(none))


def table_lines(result: BacktestResult) -> list[str]:
    """The trading table (net P&L after fees, positions settled at the game's true outcome)."""
    rows = []
    for g in result.games:
        m = g.metrics
        stopped = ("—" if g.stopped_ns is None
                   else f"{(g.stopped_ns - g.start_ns) / 1e6:+.0f} ms")
        rows.append((g.event_ticker, str(len(g.fills)), f"{g.volume / CONTRACT:g}",
                     f"{g.max_inventory / CONTRACT:g}", f"{g.fees_money / PRICE_ONE:.2f}",
                     f"{g.net_pnl_money / PRICE_ONE:+.2f}",
                     _cents(m.pnl_per_contract if m else None),
                     "—" if m is None else f"{m.max_drawdown_money / PRICE_ONE:.2f}",
                     _ratio(m.max_inventory_ratio if m else None), stopped,
                     str(g.resting_after_stop)))
    t = result.metrics
    rows.append(("total", str(len(result.fills)), f"{result.total_volume / CONTRACT:g}", "",
                 f"{result.total_fees_money / PRICE_ONE:.2f}",
                 f"{result.total_net_pnl_money / PRICE_ONE:+.2f}",
                 _cents(t.pnl_per_contract if t else None),
                 "—" if t is None else f"{t.max_drawdown_money / PRICE_ONE:.2f}",
                 _ratio(t.max_inventory_ratio if t else None), "", ""))
    return _table(_HEAD, rows)


def quality_lines(result: BacktestResult) -> list[str]:
    """The quality table: markouts, time at best, queue position (per game and total)."""
    rows = []
    for name, m in [*((g.event_ticker, g.metrics) for g in result.games),
                    ("total", result.metrics)]:
        if m is None:
            continue
        rows.append((name, _markouts(m.markout_mid), _markouts(m.markout_truth),
                     _pct(m.time_at_best_bid), _pct(m.time_at_best_ask), *_queue(m)))
    return _table(_HEAD2, rows)


def report_lines(result: BacktestResult) -> list[str]:
    """Both tables, a blank line between, and a line saying what the drawdown marks to."""
    return [*table_lines(result), "", *quality_lines(result), "",
            ("max DD: mark-to-mid over the quoting window; inv/lim: |directional inventory| ÷ "
             "the worker's hard limit at each fill; queue: contracts ahead when the order took "
             "its place")]
