"""The backtest's per-game table as text (what ``mm backtest`` prints). Dollars and contracts
are converted here, at the edge, from price units and centi-contracts."""

from __future__ import annotations

from mmcore.backtest.result import BacktestResult
from mmcore.units import CONTRACT, PRICE_ONE

_HEAD = ("game", "fills", "volume", "max inv", "fees $", "net P&L $", "stopped", "resting")


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def table_lines(result: BacktestResult) -> list[str]:
    """One line per game and a total line; volume and inventory in contracts, money in dollars
    (net P&L after fees, positions settled at the game's true outcome)."""
    rows = []
    for g in result.games:
        stopped = ("—" if g.stopped_ns is None
                   else f"{(g.stopped_ns - g.start_ns) / 1e6:+.0f} ms")
        rows.append((g.event_ticker, str(len(g.fills)), f"{g.volume / CONTRACT:g}",
                     f"{g.max_inventory / CONTRACT:g}", f"{g.fees_money / PRICE_ONE:.2f}",
                     f"{g.net_pnl_money / PRICE_ONE:+.2f}", stopped, str(g.resting_after_stop)))
    rows.append(("total", str(len(result.fills)), f"{result.total_volume / CONTRACT:g}", "",
                 f"{result.total_fees_money / PRICE_ONE:.2f}",
                 f"{result.total_net_pnl_money / PRICE_ONE:+.2f}", "", ""))
    widths = [max(len(r[i]) for r in (_HEAD, *rows)) for i in range(len(_HEAD))]
    return [_row(_HEAD, widths), *(_row(r, widths) for r in rows)]
