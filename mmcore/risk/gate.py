"""The risk gate: every order action passes here before it reaches the wire.

``check(state, actions, now_ns, cfg)`` → :class:`GateResult` with approved actions and refused
ones, each refusal carrying its reason (a value to journal, never an exception). The gate is the
independent last word: it re-derives exposure itself rather than trusting the quoting code that
sized the orders, so a bug upstream cannot push the game past its hard limits.

Rules, per action, in order (the first failing rule refuses):

==============  ===========================================================================
any cancel      approved (cancels only ever reduce risk)
market          the market belongs to the game and is open (not paused, closed or settled)
kill switch     :func:`mmcore.risk.killswitch.allows`: HALTED → cancels only; REDUCING →
                only actions that reduce the game's directional exposure
tick            price on the market's tick grid, strictly inside (0, $1)
size            0 < resting count ≤ ``max_order_contracts``
collar          no more aggressive than ``collar_price`` past theo (fat-finger guard): a bid at
                most theo + collar, an ask at least theo − collar; a bid far *below* theo (or an
                ask far above) is passive, not a fat finger, and passes; no theo → refuse
duplicate       no identical place (market, side, price, count) within ``duplicate_window_ns``
limits          with every resting order, every action approved so far in this batch and this
                one filling at once, directional exposure stays within the hard bound and the
                worst-case loss within the game's loss limit (:func:`mmcore.risk.limits.cap_size`);
                with ``others`` (the account ledger), the account's aggregate loss and contract
                caps and the sport's loss cap too — an order that reduces risk always passes
==============  ===========================================================================

Units: price units ($0.0001, YES terms), centi-contracts, ns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from mmcore.game import GameSpec, directional_inventory
from mmcore.orders import Amend, Cancel, LiveOrder, OrderAction, Place, Quote, Side
from mmcore.risk.exposure import GamePosition
from mmcore.risk.killswitch import KillSwitch, allows
from mmcore.risk.limits import GameLimit, LimitConfig, OtherGames, cap_size
from mmcore.units import CONTRACT, PRICE_ONE


@dataclass(frozen=True, slots=True)
class GateConfig:
    collar_price: int = 1_000
    """Largest distance past theo on the aggressive side (bid above, ask below theo) accepted
    (price units; 1_000 = 10¢). Passive distance is never refused: a far bid reduces nothing
    and risks nothing a hard limit does not already bound."""
    max_order_contracts: int = 200 * CONTRACT
    duplicate_window_ns: int = 250_000_000


@dataclass(frozen=True, slots=True)
class RecentPlace:
    at_ns: int
    market: str
    side: Side
    price: int
    count: int


@dataclass(frozen=True, slots=True)
class GateState:
    game: GameSpec
    killswitch: KillSwitch
    limit: GameLimit
    theo: Sequence[float] | None
    positions: Mapping[str, int] = field(default_factory=dict)
    cash: int = 0
    resting: tuple[LiveOrder, ...] = ()
    market_open: Mapping[str, bool] = field(default_factory=dict)
    """Markets absent from the map count as open."""
    recent_places: tuple[RecentPlace, ...] = ()
    limit_config: LimitConfig | None = None
    others: OtherGames | None = None
    """The account's other running games (the ledger); with ``limit_config`` the aggregate and
    per-sport caps count them and this game's own use (:func:`mmcore.risk.limits.cap_size`)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    action: OrderAction
    reason: str


@dataclass(frozen=True, slots=True)
class GateResult:
    approved: tuple[OrderAction, ...]
    refused: tuple[Refusal, ...]


def _as_quote(action: Place | Amend, live: Mapping[str, LiveOrder]) -> Quote | str:
    """The resting order the action would leave (count = resting remainder)."""
    if isinstance(action, Place):
        return action.quote
    old = live.get(action.order_id)
    if old is None:
        return f"amend of unknown order {action.order_id}"
    return Quote(action.market, action.side, action.price, action.count - old.filled)


def reduces_exposure(game: GameSpec, positions: Mapping[str, int], market: str, side: Side) -> bool:
    """True when a fill on (market, side) moves that market's directional inventory toward 0."""
    q = directional_inventory(game.book, positions)[game.markets.index(market)]
    return (side == "bid" and q < 0) or (side == "ask" and q > 0)


def check(
    state: GateState, actions: Iterable[OrderAction], now_ns: int, cfg: GateConfig = GateConfig()
) -> GateResult:
    """Approve or refuse each action (see the module docstring for the rules)."""
    live = {o.order_id: o for o in state.resting}
    # orders that stay live while this batch is applied: cancelled or amended ones drop out
    resting: dict[str, LiveOrder | Quote] = dict(live)
    approved: list[OrderAction] = []
    refused: list[Refusal] = []
    recent = list(state.recent_places)
    pos = GamePosition(dict(state.positions), state.cash)
    for action in sorted(actions, key=lambda a: not isinstance(a, Cancel)):
        if isinstance(action, Cancel):
            approved.append(action)
            resting.pop(action.order_id, None)
            continue
        reason = _refusal(state, action, live, resting, recent, pos, now_ns, cfg)
        if reason is not None:
            refused.append(Refusal(action, reason))
            continue
        approved.append(action)
        quote = _as_quote(action, live)
        assert isinstance(quote, Quote)
        if isinstance(action, Amend):
            resting.pop(action.order_id, None)
            resting[f"amend:{action.order_id}"] = quote
        else:
            resting[f"place:{action.client_order_id}"] = quote
            recent.append(RecentPlace(now_ns, quote.market, quote.side, quote.price, quote.count))
    return GateResult(tuple(approved), tuple(refused))


def _refusal(
    state: GateState, action: Place | Amend, live: Mapping[str, LiveOrder],
    resting: Mapping[str, LiveOrder | Quote], recent: Sequence[RecentPlace], pos: GamePosition,
    now_ns: int, cfg: GateConfig,
) -> str | None:
    game = state.game
    quote = _as_quote(action, live)
    if isinstance(quote, str):
        return quote
    if quote.market not in game.markets:
        return f"market {quote.market} is not part of {game.event_ticker}"
    if not state.market_open.get(quote.market, True):
        return f"market {quote.market} is not open"
    ok, why = allows(state.killswitch, action,
                     reduces_exposure(game, state.positions, quote.market, quote.side))
    if not ok:
        return why
    grid = game.grids[game.markets.index(quote.market)]
    if not grid.is_valid(quote.price):
        return f"price {quote.price} is not on {quote.market}'s tick grid"
    if not 0 < quote.count <= cfg.max_order_contracts:
        return f"size {quote.count} outside (0, {cfg.max_order_contracts}] centi-contracts"
    if state.theo is None:
        return "no theo: only cancels are allowed"
    theo_price = state.theo[game.markets.index(quote.market)] * PRICE_ONE
    past = quote.price - theo_price if quote.side == "bid" else theo_price - quote.price
    if past > cfg.collar_price:
        return (f"{quote.side} {quote.price} is {past:.0f} past theo {theo_price:.0f} "
                f"(collar {cfg.collar_price})")
    if isinstance(action, Place):
        for r in recent:
            if (now_ns - r.at_ns < cfg.duplicate_window_ns and (r.market, r.side, r.price, r.count)
                    == (quote.market, quote.side, quote.price, quote.count)):
                return f"duplicate of an order placed {(now_ns - r.at_ns) / 1e6:.0f} ms ago"
    others = [o for k, o in resting.items()
              if not (isinstance(action, Amend) and k == action.order_id)]
    allowed, why = cap_size(game.book, pos, others, quote, state.limit,
                            cfg=state.limit_config, others=state.others, sport=game.sport_key)
    if allowed < quote.count:
        return f"would breach the game's limits ({why})"
    return None
