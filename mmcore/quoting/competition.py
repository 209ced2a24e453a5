"""Competitive quoting for one market: model prices → top of book, capped by theo.

Pure. Prices are price units ($0.0001, YES terms; floats for model inputs, ints on the grid);
inventory and clip are centi-contracts. ``q`` is the inventory *along this market's outcome*
(long YES-equivalent is positive); :mod:`mmcore.quoting.quotes` derives it from the game's one
signed inventory.

Rule table (reference/quoting-math.md §4), applied in order to each side:

====  =====================================================================================
R1    model prices: ``b_m = ⌊r − hᵇ⌋``, ``a_m = ⌈r + hᵃ⌉`` on the market's grid
R2    theo cap/floor ("never pay through theo"): ``b_cap = min(b_m, ⌊p* − e_min⌋)``,
      ``a_floor = max(a_m, ⌈p* + e_min⌉)``
R3    break-even relaxation, only when over-exposed (|q| > Q_soft) and only on the side that
      reduces exposure (:mod:`mmcore.quoting.ceilings`); it only ever permits, never blocks
R4    top of book unless past the cap: ``bid = min(b_cap, B + j)``, ``ask = max(a_floor, A − j)``
      (j = 0 joins, j = 1 improves by a tick); an empty side quotes the cap / floor. Alone at
      the top we therefore sit one step above the next competitor (a monopsonist until outbid);
      when the competitor is past our cap we back off to the cap.
R5    no cross, in range: ``bid ≤ A − tick``, ``ask ≥ B + tick``; off-grid → side dropped
R6    hard bound: no bid if ``q + clip > Q``; no ask if ``q − clip < −Q``
R7    consistency: if ``bid ≥ ask`` the side that adds inventory steps back a tick
H     hysteresis: a resting order inside its limits is kept when the new price is within
      ``hysteresis_ticks`` of it, or is more aggressive and the order has rested less than
      ``min_rest_ns`` — so two bots pennying each other do not churn. A resting order beyond
      its limit always moves (safety first).
====  =====================================================================================

Every rule that changes a price leaves a note; the notes explain ``mm preview`` output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mmcore.book import BookTop
from mmcore.fees import FeeSchedule
from mmcore.orders import LiveOrder
from mmcore.quoting.ceilings import relax_ask_floor, relax_bid_cap
from mmcore.ticks import TickGrid


@dataclass(frozen=True, slots=True)
class CompetitionParams:
    """Frozen competition config (units in names)."""

    improve_ticks: int = 0
    """R4 ``j``: 0 joins the best price, 1 improves it by one tick."""
    give_up_price: int = 300
    """R3: how far past theo (price units) a break-even exit may go; 300 = 3¢."""
    hysteresis_ticks: int = 1
    min_rest_ns: int = 2_000_000_000


@dataclass(frozen=True, slots=True)
class MarketInputs:
    """Everything one market's quote depends on."""

    theo: float
    """Fair YES price in price units (theo probability × PRICE_ONE)."""
    reservation: float
    """Model reservation price (price units)."""
    half_bid: float
    half_ask: float
    e_min: float
    """Minimum edge to theo per contract (price units): maker fee + adverse markout + buffer."""
    q: int
    q_soft: int
    q_hard: int
    clip: int
    avg_cost: float | None
    """Average YES price of the open inventory along this outcome (price units), if known."""
    top: BookTop
    """Others' best bid/ask (our own orders excluded)."""


@dataclass(frozen=True, slots=True)
class MarketQuote:
    bid: int | None
    ask: int | None
    notes: tuple[str, ...]


def quote_market(
    inp: MarketInputs,
    grid: TickGrid,
    schedule: FeeSchedule,
    params: CompetitionParams = CompetitionParams(),
    *,
    live_bid: LiveOrder | None = None,
    live_ask: LiveOrder | None = None,
    now_ns: int = 0,
) -> MarketQuote:
    """Apply R1–R7 and hysteresis to one market. Returns grid prices or None per side."""
    notes: list[str] = []
    bid, ask, bid_limit, ask_limit = _limits(inp, grid, schedule, params, notes)
    if bid is not None and bid_limit is not None:
        bid = _stabilise("bid", bid, bid_limit, live_bid, now_ns, grid, params, notes)
    if ask is not None and ask_limit is not None:
        ask = _stabilise("ask", ask, ask_limit, live_ask, now_ns, grid, params, notes)
    if bid is not None and ask is not None and bid >= ask:  # hysteresis may have kept an old one
        bid, ask = _r7(bid, ask, inp.q, grid, notes)
    return MarketQuote(bid, ask, tuple(notes))


def _limits(
    inp: MarketInputs, grid: TickGrid, schedule: FeeSchedule, params: CompetitionParams,
    notes: list[str],
) -> tuple[int | None, int | None, int | None, int | None]:
    """R1–R7 without hysteresis → (bid, ask, bid_limit, ask_limit).

    ``bid``/``ask`` are the target prices (top of book, capped); the limits are the most
    aggressive prices allowed (cap/floor after R3 and R5), which hysteresis must respect."""
    top = inp.top
    j = params.improve_ticks
    # R1 + R2 (on the grid: bids round down, asks round up)
    # an infinite half-depth is the model's own "no quote on this side" (GLFT at its bound)
    bid_model = inp.reservation - inp.half_bid
    ask_model = inp.reservation + inp.half_ask
    b_m = grid.round_down(math.floor(bid_model + 1e-9)) if math.isfinite(bid_model) else None
    a_m = grid.round_up(math.ceil(ask_model - 1e-9)) if math.isfinite(ask_model) else None
    b_theo = grid.round_down(math.floor(inp.theo - inp.e_min + 1e-9))
    a_theo = grid.round_up(math.ceil(inp.theo + inp.e_min - 1e-9))
    b_cap = None if b_m is None or b_theo is None else min(b_m, b_theo)
    a_floor = None if a_m is None or a_theo is None else max(a_m, a_theo)
    if b_cap is not None and b_m is not None and b_cap < b_m:
        notes.append(f"R2 bid capped at theo − e_min: {b_m} → {b_cap}")
    if a_floor is not None and a_m is not None and a_floor > a_m:
        notes.append(f"R2 ask floored at theo + e_min: {a_m} → {a_floor}")
    # R3: only the side that reduces exposure, only when over-exposed
    if inp.q > inp.q_soft and a_floor is not None:
        a_floor, note = relax_ask_floor(a_floor, inp.avg_cost, inp.theo, params.give_up_price,
                                        inp.clip, grid, schedule)
        if note:
            notes.append(note)
    if inp.q < -inp.q_soft and b_cap is not None:
        b_cap, note = relax_bid_cap(b_cap, inp.avg_cost, inp.theo, params.give_up_price,
                                    inp.clip, grid, schedule)
        if note:
            notes.append(note)
    # R4: top of book unless past the cap
    bid, ask = b_cap, a_floor
    if bid is not None and top.bid is not None:
        target = _step(grid, top.bid, j, up=True)
        if target is not None and target < bid:
            bid = target
            notes.append(f"R4 bid at top of book {bid} (best other bid {top.bid})")
        elif target == bid:
            notes.append(f"R4 bid at top of book {bid}, which is also our cap")
        else:
            notes.append(f"R4 best other bid {top.bid} is past our cap {bid}: backing off to cap")
    if ask is not None and top.ask is not None:
        target = _step(grid, top.ask, j, up=False)
        if target is not None and target > ask:
            ask = target
            notes.append(f"R4 ask at top of book {ask} (best other ask {top.ask})")
        elif target == ask:
            notes.append(f"R4 ask at top of book {ask}, which is also our floor")
        else:
            notes.append(f"R4 best other ask {top.ask} is past our floor {ask}: backing off to floor")
    # R5: never cross the opposite best (post-only safe)
    if bid is not None and top.ask is not None and bid >= top.ask:
        new = grid.next_below(top.ask)
        notes.append(f"R5 bid {bid} would cross best ask {top.ask}: {new}")
        bid = new
    if ask is not None and top.bid is not None and ask <= top.bid:
        new = grid.next_above(top.bid)
        notes.append(f"R5 ask {ask} would cross best bid {top.bid}: {new}")
        ask = new
    if not math.isfinite(bid_model):
        notes.append("R1 model posts no bid (at its inventory bound)")
    elif b_m is None or b_theo is None:
        notes.append("R5 no valid bid price on the grid")
    if not math.isfinite(ask_model):
        notes.append("R1 model posts no ask (at its inventory bound)")
    elif a_m is None or a_theo is None:
        notes.append("R5 no valid ask price on the grid")
    bid_limit = b_cap if b_cap is None or top.ask is None else min(b_cap, top.ask - 1)
    ask_limit = a_floor if a_floor is None or top.bid is None else max(a_floor, top.bid + 1)
    # R6: hard inventory bound
    if bid is not None and inp.q + inp.clip > inp.q_hard:
        notes.append(f"R6 no bid: inventory {inp.q} + clip {inp.clip} > hard bound {inp.q_hard}")
        bid = None
    if ask is not None and inp.q - inp.clip < -inp.q_hard:
        notes.append(f"R6 no ask: inventory {inp.q} − clip {inp.clip} < −{inp.q_hard}")
        ask = None
    # R7
    if bid is not None and ask is not None and bid >= ask:
        bid, ask = _r7(bid, ask, inp.q, grid, notes)
    return bid, ask, bid_limit, ask_limit


def _step(grid: TickGrid, price: int, ticks: int, *, up: bool) -> int | None:
    for _ in range(ticks):
        nxt = grid.next_above(price) if up else grid.next_below(price)
        if nxt is None:
            return None
        price = nxt
    return price


def _r7(bid: int, ask: int, q: int, grid: TickGrid, notes: list[str]) -> tuple[int | None, int | None]:
    if q >= 0:  # the bid adds (long) inventory: it yields
        new_bid = grid.next_below(ask)
        notes.append(f"R7 bid {bid} ≥ ask {ask}: bid steps back to {new_bid}")
        return new_bid, ask
    new_ask = grid.next_above(bid)
    notes.append(f"R7 ask {ask} ≤ bid {bid}: ask steps back to {new_ask}")
    return bid, new_ask


def _stabilise(
    side: str, new: int, limit: int, live: LiveOrder | None, now_ns: int, grid: TickGrid,
    params: CompetitionParams, notes: list[str],
) -> int:
    """Hysteresis H. ``new`` is the target, ``limit`` the most aggressive price allowed.

    - A move to a more aggressive price waits until the order has rested ``min_rest_ns``.
    - A retreat is immediate when the resting price is past ``limit`` (safety first); otherwise
      a retreat of at most ``hysteresis_ticks`` is skipped (the resting price is still allowed).
    """
    if live is None or live.price == new or not grid.is_valid(live.price):
        return new
    cur = live.price
    sign = 1 if side == "bid" else -1  # +1: higher is more aggressive
    if sign * (new - cur) > 0:  # more aggressive
        rested = now_ns - live.placed_ns
        if rested < params.min_rest_ns:
            notes.append(f"H {side} stays {cur}: rested {rested / 1e9:.1f}s < min rest (target {new})")
            return cur
        return new
    if sign * (cur - limit) > 0:
        return new
    ticks = abs(cur - new) // max(1, grid.step_at(new))
    if ticks <= params.hysteresis_ticks:
        notes.append(f"H {side} stays {cur}: target {new} within {params.hysteresis_ticks} tick(s)")
        return cur
    return new
