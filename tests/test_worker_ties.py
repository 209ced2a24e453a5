"""Ties and voids (issue 10 item 8) through the running worker and the local exchange.

A soccer game listed 2-way (no TIE market): a draw settles both team markets NO, so YES on both
teams is not riskless. The exchange says so in ``rules_secondary``; the worker reads it (and the
listing) in ``load_game``, counts the draw in every worst case, and so never lets the both-NO
loss pass the game's max loss — on today's code it kept buying both teams as if that were flat.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from mmcore.risk.limits import LimitConfig
from mmcore.sim.driver import SimClock, SimDriver, run_backtest
from mmcore.sim.engine_types import OrderRequest
from mmcore.sim.exchange import MM_USER, LocalExchange
from mmcore.sim.scenario import DRAW_SETTLES_NO, default_scenario_dict, load_scenario
from mmcore.units import CONTRACT, PRICE_ONE
from tests.workerkit import rig, worker_config

USD = PRICE_ONE
MAX_LOSS = 5 * USD
TWO_WAY_SOCCER = {"sport_key": "soccer_epl", "home_team": "Arsenal", "away_team": "Chelsea",
                  "tie_market": False, "true_probs": [0.40, 0.34, 0.26]}
HITTER = "noise-0-0"
QUIET = {"noise_takers": [{"count": 1, "rate_per_s": 1e-6, "size_contracts_min": 1,
                           "size_contracts_max": 1, "max_spread_price": 1}],
         "informed_takers": [], "competing_makers": []}


def _draw_loss(ex: LocalExchange, markets: tuple[str, ...]) -> int:
    """What mm loses if both markets settle NO, from the exchange's own record: every YES bought
    (price + fee) and every resting bid filling, minus every YES sold (money, price units)."""
    eng = ex.engine
    loss = 0
    for m in markets:
        for f in eng.fills(MM_USER, ticker=m):
            loss += (f.price * f.count // CONTRACT if f.side == "bid" else -f.price * f.count // CONTRACT)
            loss += f.fee
        for o in eng.orders(MM_USER, ticker=m, status="resting"):
            if o.side == "bid":
                loss += o.price * o.remaining // CONTRACT
    return loss


def _resting_bids(ex: LocalExchange, markets: tuple[str, ...]) -> list[Any]:
    return [o for m in markets for o in ex.engine.orders(MM_USER, ticker=m, status="resting")
            if o.side == "bid"]


async def _until(cond: Any, deadline_s: float) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while loop.time() < end:
        if cond():
            return True
        await asyncio.sleep(0.02)
    return bool(cond())


async def test_worker_keeps_the_draw_loss_of_a_two_way_soccer_listing_inside_max_loss(tmp_path):
    async def body() -> None:
        async with rig(tmp_path, seed=7, start_in_s=600.0, game=TWO_WAY_SOCCER, **QUIET) as r:
            ex = r.stack.exchange
            limits = LimitConfig.from_dict({"sports": {"soccer_epl": {
                "min_contracts": 200 * CONTRACT, "max_contracts": 500 * CONTRACT,
                "max_loss_money": MAX_LOSS}}})
            driver = await r.driver(worker_id="w-ties",
                                    cfg=dataclasses.replace(worker_config("w-ties"), limits=limits))
            # the worker read the draw from the listing and the rules text over the wire
            assert driver.game.extra_outcomes == ((0, 0),)
            markets = driver.game.markets
            assert len(markets) == 2
            peak = [0]

            def sample(worker: Any, out: Any) -> None:
                peak[0] = max(peak[0], _draw_loss(ex, markets))

            driver.on_output = sample
            task = asyncio.create_task(driver.run())
            try:
                # Another trader sells YES into every bid of ours, round after round: today's
                # worker saw long A + long B as flat and bought both without end.
                assert await _until(lambda: len(_resting_bids(ex, markets)) >= 1, 20)
                for _ in range(6):
                    if not await _until(lambda: _resting_bids(ex, markets), 4):
                        break  # no more bids: the draw loss has reached the limit
                    for o in _resting_bids(ex, markets):
                        ex.mutate(lambda eng, now, o=o: eng.place(OrderRequest(
                            user_id=HITTER, ticker=o.ticker, side="ask", price=o.price,
                            count=o.remaining, time_in_force="immediate_or_cancel"), now))
                    peak[0] = max(peak[0], _draw_loss(ex, markets))
                long_both = all(ex.engine.position(MM_USER, m) > 0 for m in markets)
                assert long_both, "the hitter should have filled bids on both teams"
                peak[0] = max(peak[0], _draw_loss(ex, markets))
                assert 0 < peak[0] <= MAX_LOSS, f"draw loss {peak[0]} passed max loss {MAX_LOSS}"
            finally:
                driver.stop("test done")
                await asyncio.wait_for(task, timeout=30)
            # the draw: both markets settle NO; mm's realised loss is the one the worker bounded
            before = ex.engine.balance(MM_USER) + ex.engine.reserved(MM_USER)
            bought = _draw_loss(ex, markets)
            ex.mutate(lambda eng, now: [eng.settle(m, "no", now) for m in markets])
            after = ex.engine.balance(MM_USER) + ex.engine.reserved(MM_USER)
            assert after == before  # YES on both pays nothing in a draw: the cost is all lost
            assert bought <= MAX_LOSS

    await asyncio.wait_for(body(), timeout=90)


def test_sim_lists_a_two_way_soccer_game_and_settles_both_markets_no_on_a_draw():
    d = default_scenario_dict(11, 1)
    d["participants"] = {"noise_takers": [], "informed_takers": [], "competing_makers": []}
    d["games"] = [dict(TWO_WAY_SOCCER, start_in_s=60.0, true_probs=[0.01, 0.01, 0.98],
                       truth={"game_length_s": 60.0})]
    sc = load_scenario(d, 1_800_000_000 * 10**9)
    g = sc.games[0]
    assert len(g.markets) == 2 and not any(m.endswith("-TIE") for m in g.markets)
    assert g.truth.n_outcomes == 3 and g.truth.winner == 2 and g.winner_market is None
    clock = SimClock(sc.start_ns)
    ex = LocalExchange.from_scenario(sc, clock_ns=clock.now_ns)
    assert all(ex.engine.get_market(m).rules_secondary == DRAW_SETTLES_NO for m in g.markets)
    run_backtest(SimDriver(ex, sc), clock, sc.end_ns)
    assert [ex.engine.get_market(m).result for m in g.markets] == ["no", "no"]
