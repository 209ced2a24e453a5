"""The hard inventory limit binds every strategy (issue 11 task H).

Found: the baselines' "max |inventory| ÷ limit" of 1.24–1.60 had two causes. (a) The gate
counted live orders but not actions in flight: a place awaiting its ack (or an amend's increase)
held no headroom, so a decision on another slot meanwhile passed the hard limit (9 % of a
fixed-spread quoter's approved adding orders on the busy slate). (b) The limit follows the
book's liquidity and shrinks under inventory acquired inside it. (a) is fixed (the worker counts
what is in flight, and caps any strategy's quotes after it); (b) is measured honestly:
against the bound when the orders were sent, with the shrink reported apart.

Through the real path: the backtest's GameWorker on the local exchange's engine and
participants, aggressive informed flow (what pushes inventory one way).
"""

from __future__ import annotations

from typing import Any

import pytest

from mmcore.backtest.runner import run_backtest
from mmcore.game import GameBook
from mmcore.orders import LiveOrder, Quote
from mmcore.risk.exposure import GamePosition
from mmcore.risk.limits import GameLimit, cap_quotes, cap_size
from mmcore.sim.scenario import default_scenario_dict
from mmcore.units import CONTRACT


def _one_sided(seed: int, games: int = 3, minutes: float = 3.0) -> dict[str, Any]:
    """The busy demo slate with toxic informed takers (large, frequent, low edge threshold)."""
    spec = default_scenario_dict(seed, games)
    p = spec["participants"]
    p["noise_takers"][0].update(rate_per_s=0.4, size_contracts_max=15)
    p["informed_takers"][0].update(rate_per_s=0.3, edge_threshold_price=200,
                                   size_contracts_max=40)
    spec["games"] = [{**g, "start_in_s": minutes * 60.0} for g in spec["games"]]
    return spec


@pytest.mark.parametrize("strategy", ["fixed-spread", "inventory-skew", "as-mid"])
def test_baseline_never_passes_the_limit_in_force_when_its_orders_were_sent(strategy: str) -> None:
    # seeds 1 and 6 passed it before the fix (1.02 and 1.03 for fixed-spread)
    for seed in (1, 6):
        res = run_backtest(_one_sided(seed), strategy=strategy)
        assert res.metrics is not None and res.metrics.fills > 20
        for g in res.games:
            m = g.metrics
            assert m is not None and m.max_inventory_ratio_at_send is not None
            assert m.max_inventory_ratio_at_send <= 1.0, (strategy, seed, g.event_ticker)


def test_cap_quotes_cuts_a_baseline_quote_the_gate_would_refuse() -> None:
    book = GameBook(("A", "B"))
    pos = GamePosition({"A": 5 * CONTRACT, "B": 0})
    limit = GameLimit(10 * CONTRACT, 5 * CONTRACT, 10**9)
    pending = LiveOrder("pending:1", "c1", "B", "ask", 5500, 3 * CONTRACT, 0, 0)  # adds to q_E
    live = [LiveOrder("o1", "c0", "A", "bid", 4000, 10 * CONTRACT, 0, 0)]
    quotes = [Quote("A", "bid", 4100, 10 * CONTRACT), Quote("A", "ask", 6000, 10 * CONTRACT)]
    kept, notes = cap_quotes(book, pos, live, quotes, limit, min_size=CONTRACT, pinned=[pending])
    by = {q.slot: q for q in kept}
    assert by[("A", "ask")].count == 10 * CONTRACT  # reducing: not cut
    assert by[("A", "bid")].count == 2 * CONTRACT  # 10 − 5 held − 3 in flight (own slot replaced)
    assert any("cap A bid" in n for n in notes)
    # the gate's own check agrees: the uncut bid does not fit, the cut one does
    assert cap_size(book, pos, [pending], quotes[0], limit)[0] == 2 * CONTRACT
