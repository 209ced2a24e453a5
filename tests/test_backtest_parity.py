"""Parity (issue 11 "Done when"): the backtest and the local exchange give the same fills for the
same seed and the same orders.

One scenario with its participants, stepped by the same :class:`SimDriver` loop
(:func:`mmcore.sim.driver.run_backtest`) on a :class:`SimClock`, and one script of our order
actions (places, a taking place, amends, cancels) at fixed simulated times, sent two ways:

(a) the backtest's order entry — :func:`mmcore.backtest.runner.execute_on_engine`, what the
    backtest's game runs do with each worker action;
(b) the local exchange's REST server over real loopback HTTP (``build_app`` under uvicorn, the
    exchange reading the same :class:`SimClock`), through the real :class:`KalshiRest` with the
    calls the worker's driver makes (``create_order`` with ``cancel_order_on_pause`` and the game
    start as expiry, ``amend_order``, ``cancel_order``), signed at the simulated time.

Then every user's fills (ours and the participants': price, count, time, maker and taker order
ids, fees) and our acks must be identical, and the fills the REST API reports to us equal the
backtest's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from simkit import GENEROUS, Keys, serve

from mmcore.backtest.runner import execute_on_engine, game_spec, resolve_backtest_scenario
from mmcore.errors import MMError
from mmcore.orders import Amend, Cancel, OrderAction, Place, Quote
from mmcore.sim.driver import SimClock, SimDriver
from mmcore.sim.driver import run_backtest as run_world
from mmcore.sim.engine_types import Fill
from mmcore.sim.exchange import MM_USER, LocalExchange
from mmcore.sim.scenario import ResolvedScenario, default_scenario_dict
from mmcore.units import CONTRACT
from mmcore.venues.kalshi.rest import KalshiRest, OwnFill
from mmcore.worker.engine import AckEv

SEED = 7
NS = 1_000_000_000
CENT = 100
KEY_ID = "parity-key"

Send = Callable[[int, OrderAction], AckEv]


@dataclass(frozen=True)
class Step:
    """At ``t_ns``: ``kind`` ``place`` / ``take`` (a non-post-only bid through the ask) /
    ``amend`` / ``cancel`` of our order ``ref`` on ``market``/``side``, ``offset`` cents from
    the hidden truth at that moment."""

    t_ns: int
    kind: str
    ref: str
    market: str
    side: str
    offset: int = 0
    count: int = 5 * CONTRACT


@pytest.fixture(scope="module")
def scenario() -> ResolvedScenario:
    return resolve_backtest_scenario(default_scenario_dict(SEED, 1), None)


def script(sc: ResolvedScenario) -> list[Step]:
    """Every 15 s for four minutes, on both markets: quotes 1¢ around the truth, moved 1¢ out,
    cancelled and re-quoted; now and then a 2-contract bid 3¢ through the truth that takes."""
    g = sc.games[0]
    steps: list[Step] = []
    for k in range(16):
        t = sc.start_ns + 10 * NS + k * 15 * NS
        for i, m in enumerate(g.markets[:2]):
            ref = f"{k // 3}-{i}"
            if k % 3 == 0:
                steps += [Step(t, "place", f"{ref}-b", m, "bid", -1),
                          Step(t, "place", f"{ref}-a", m, "ask", +1)]
            elif k % 3 == 1:
                steps += [Step(t, "amend", f"{ref}-b", m, "bid", -2),
                          Step(t, "amend", f"{ref}-a", m, "ask", +2)]
            else:
                steps += [Step(t, "cancel", f"{ref}-b", m, "bid"),
                          Step(t, "cancel", f"{ref}-a", m, "ask")]
            if k % 5 == 4:
                steps.append(Step(t, "take", f"take-{k}-{i}", m, "bid", +3, 2 * CONTRACT))
    return steps


def run(sc: ResolvedScenario, until_ns: int,
        make_send: Callable[[LocalExchange, SimClock], Send]) -> tuple[LocalExchange, list[AckEv]]:
    """The world and the script on one SimClock; ``make_send`` says how our actions travel."""
    g = sc.games[0]
    clock = SimClock(sc.start_ns)
    ex = LocalExchange.from_scenario(sc, clock_ns=clock.now_ns, tier=GENEROUS)
    ex.add_key(KEY_ID, KEYS.public_pem, MM_USER)
    send = make_send(ex, clock)
    order_ids: dict[str, str] = {}
    acks: list[AckEv] = []

    def act(seq: int, step: Step) -> None:
        cents = round(g.yes_prob(step.market, clock.now_ns()) * 100) + step.offset
        price = min(98, max(2, cents)) * CENT
        if step.kind in ("place", "take"):
            action: OrderAction = Place(Quote(step.market, step.side, price, step.count),  # type: ignore[arg-type]
                                        f"parity-{step.ref}", post_only=step.kind == "place")
        elif step.ref not in order_ids:
            return  # its place was refused
        elif step.kind == "amend":
            action = Amend(order_ids[step.ref], step.market, step.side, price, step.count)  # type: ignore[arg-type]
        else:
            action = Cancel(order_ids[step.ref], step.market, step.side)  # type: ignore[arg-type]
        ack = send(seq, action)
        acks.append(ack)
        if ack.ok and ack.order_id is not None:
            order_ids[step.ref] = ack.order_id

    for seq, step in enumerate(script(sc)):
        clock.call_at(step.t_ns, lambda s=seq, st=step: act(s, st))
    world = SimDriver(ex, sc)
    run_world(world, clock, until_ns)
    world.close()
    return ex, acks


KEYS = Keys.generate()


def backtest_path(ex: LocalExchange, clock: SimClock) -> Send:
    start = ex.scenario.games[0].start_ns if ex.scenario else 0
    return lambda seq, action: execute_on_engine(ex, seq, action, start)


def _all_fills(ex: LocalExchange) -> dict[str, list[Fill]]:
    return {u: ex.engine.fills(u) for u in sorted(ex.engine.users)}


def _ack_key(a: AckEv) -> tuple:
    return (a.action_seq, a.ok, a.order_id, a.remaining, a.filled)


def test_backtest_and_local_exchange_give_the_same_fills(scenario: ResolvedScenario) -> None:
    until = scenario.start_ns + 260 * NS  # before the game starts (5 minutes in)
    assert until < scenario.games[0].start_ns
    spec = game_spec(scenario.games[0])

    bt_ex, bt_acks = run(scenario, until, backtest_path)

    loop = asyncio.new_event_loop()
    rest_box: list[KalshiRest] = []
    servers = []

    def rest_path(ex: LocalExchange, clock: SimClock) -> Send:
        srv = serve(ex)
        server = srv.__enter__()
        servers.append(srv)
        rest = KalshiRest(server.url, KEYS.signer(KEY_ID), clock_ns=clock.now_ns, presign=False,
                          max_retries=0)
        rest_box.append(rest)

        async def go(seq: int, action: OrderAction) -> AckEv:
            if isinstance(action, Place):
                a = await rest.create_order(action, cancel_order_on_pause=True,
                                            expiration_ns=spec.start_ns)
                return AckEv(seq, True, order_id=a.order_id, remaining=a.remaining_count,
                             filled=a.fill_count)
            if isinstance(action, Amend):
                m = await rest.amend_order(action.order_id, action.market, action.side,
                                           action.price, action.count)
                return AckEv(seq, True, order_id=m.order_id, remaining=m.remaining_count,
                             filled=m.fill_count)
            await rest.cancel_order(action.order_id)
            return AckEv(seq, True, order_id=action.order_id)

        def send(seq: int, action: OrderAction) -> AckEv:
            try:
                return loop.run_until_complete(go(seq, action))
            except MMError as exc:
                return AckEv(seq, False, error=str(exc))

        return send

    try:
        ex_ex, ex_acks = run(scenario, until, rest_path)
        rest_fills: list[OwnFill] = loop.run_until_complete(rest_box[0].get_fills())
    finally:
        if rest_box:
            loop.run_until_complete(rest_box[0].aclose())
        loop.close()
        for srv in servers:
            srv.__exit__(None, None, None)

    # the script did something worth comparing: resting quotes filled by participants' takers,
    # our takes filled against participants' resting orders, and refusals
    ours = bt_ex.engine.fills(MM_USER)
    assert any(not f.is_taker for f in ours) and any(f.is_taker for f in ours)
    by_trade = {f.trade_id: f for u, fs in _all_fills(bt_ex).items() if u != MM_USER for f in fs}
    assert all(f.trade_id in by_trade for f in ours)  # every fill of ours has a counterparty
    assert len(bt_acks) > 40 and any(not a.ok for a in bt_acks) and any(a.ok for a in bt_acks)

    # (a) == (b): acks, then every user's fills — price, count, time, both orders, fees
    assert [_ack_key(a) for a in ex_acks] == [_ack_key(a) for a in bt_acks]
    assert _all_fills(ex_ex) == _all_fills(bt_ex)
    assert ex_ex.engine.trades() == bt_ex.engine.trades()
    # and what the REST API tells us about our fills is what the backtest recorded
    wire = sorted(((f.fill_id, f.order_id, f.market, f.side, f.price, f.count, f.is_taker, f.fee)
                   for f in rest_fills))
    assert wire == sorted((f.trade_id, f.order_id, f.ticker, f.side, f.price, f.count,
                           f.is_taker, f.fee) for f in ours)
    assert all(f.ts_ns is not None and abs(f.ts_ns - by_id.ts_ns) < 1_000_000
               for f in rest_fills for by_id in ours if by_id.trade_id == f.fill_id)
