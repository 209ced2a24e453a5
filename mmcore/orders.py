"""Order vocabulary of the core, and the reconciler: desired quotes vs live orders → actions.

Everything is in YES terms, as Kalshi's V2 order API is: ``side="bid"`` buys YES at ``price``,
``side="ask"`` sells YES at ``price`` (≡ buys NO at ``PRICE_ONE − price``). Prices are integer
price units ($0.0001, see :mod:`mmcore.units`), counts integer centi-contracts.

A **slot** is one (market, side) pair; the worker keeps at most one resting order per slot (one
level per side), and never runs two operations on the same slot at once (the driver holds a lock
per slot). Actions are data; the driver turns them into REST calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Union

from mmcore.errors import InputError

Side = Literal["bid", "ask"]
SIDES: tuple[Side, Side] = ("bid", "ask")
Slot = tuple[str, Side]
"""(market ticker, side)."""


def opposite(side: Side) -> Side:
    return "ask" if side == "bid" else "bid"


@dataclass(frozen=True, slots=True)
class Quote:
    """A desired resting order: ``count`` centi-contracts at ``price`` (price units, YES terms)."""

    market: str
    side: Side
    price: int
    count: int

    @property
    def slot(self) -> Slot:
        return (self.market, self.side)


@dataclass(frozen=True, slots=True)
class LiveOrder:
    """An order we believe rests on the exchange (from acks, WS ``user_orders`` and REST)."""

    order_id: str
    client_order_id: str | None
    market: str
    side: Side
    price: int
    remaining: int
    """Resting centi-contracts."""
    filled: int
    """Centi-contracts already filled (amend's ``count`` is filled + new remaining)."""
    placed_ns: int
    """When the order last changed price or size (rest-time hysteresis counts from here)."""

    @property
    def slot(self) -> Slot:
        return (self.market, self.side)


@dataclass(frozen=True, slots=True)
class Place:
    quote: Quote
    client_order_id: str
    post_only: bool = True

    @property
    def slot(self) -> Slot:
        return self.quote.slot


@dataclass(frozen=True, slots=True)
class Amend:
    """Move a resting order. ``count`` is the NEW TOTAL (filled + desired remaining), as Kalshi's
    amend requires; sending only the remainder would silently shrink a partly filled order."""

    order_id: str
    market: str
    side: Side
    price: int
    count: int

    @property
    def slot(self) -> Slot:
        return (self.market, self.side)


@dataclass(frozen=True, slots=True)
class Cancel:
    order_id: str
    market: str
    side: Side
    reason: str = ""

    @property
    def slot(self) -> Slot:
        return (self.market, self.side)


OrderAction = Union[Place, Amend, Cancel]


def adds_exposure(action: OrderAction) -> bool:
    """Cancels only ever reduce risk; places and amends can add it."""
    return not isinstance(action, Cancel)


# --- reconcile ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileParams:
    """Hysteresis and rate-limit costs for :func:`reconcile`."""

    min_price_move: int = 100
    """Price units. A risk-adding price move smaller than this is not worth an amend."""
    min_size_change_frac: float = 0.25
    """A risk-adding size-only change must grow the resting remainder by this fraction."""
    min_rest_ns: int = 0
    """A risk-adding move waits until the order has rested this long (from ``placed_ns``)."""
    cost_place: int = 10
    """Write-bucket tokens per create (Kalshi default cost 10; batch create 10 per item)."""
    cost_amend: int = 10
    cost_cancel: int = 2
    prefer_amend: bool = True
    """Move an order with one Amend; if False, with Cancel + Place (a new order, new id)."""


@dataclass(frozen=True, slots=True)
class ReconcilePlan:
    actions: tuple[OrderAction, ...]
    """To send now: cancels, then amends, then places; each class sorted by slot."""
    deferred: tuple[OrderAction, ...]
    """What did not fit ``budget_tokens`` (same order); recomputed by the next reconcile."""
    next_id_seq: int
    """``id_seq`` after the client ids used (deferred places hold ids too)."""
    tokens: int
    """Rate-limit tokens ``actions`` cost."""


_MoveKind = Literal["reduce", "add"]


def reconcile(
    desired: Iterable[Quote],
    live: Iterable[LiveOrder],
    now_ns: int,
    params: ReconcileParams = ReconcileParams(),
    *,
    budget_tokens: int | None = None,
    id_prefix: str = "mm",
    id_seq: int = 0,
) -> ReconcilePlan:
    """Turn desired quotes and live orders into the order actions that align them. Pure.

    Units: prices in price units ($0.0001, YES terms), counts in centi-contracts, times in ns.
    ``live`` should come from WS ``user_orders``/fills or a GET, not from write acks (a V2
    cancel/amend ack may describe a different order). Orders with ``remaining <= 0`` do not rest
    and are ignored; a desired quote with ``count <= 0`` means "no quote". Two desired quotes for
    one slot are a caller bug (:class:`InputError`). One order per slot (market, side):

    ==============================================  ============================================
    slot state                                      action
    ==============================================  ============================================
    live order(s), no desired quote                 Cancel each
    several live orders                             Cancel all but the closest to desired
    desired, no live order                          Place, ``client_order_id=f"{prefix}-{seq}"``
    live == desired (price and remaining)           nothing
    live more aggressive (bid higher / ask lower)   move now: ignores min_price_move and
    or bigger than desired ("reduce")               min_rest_ns (risk-reducing, never suppressed)
    otherwise ("add": desired more aggressive or    move only if rested >= min_rest_ns and
    bigger)                                         (|d price| >= min_price_move or size grows
                                                    by >= min_size_change_frac of remaining)
    ==============================================  ============================================

    A move is ``Amend(count = filled + desired count)`` (Kalshi's new total) if ``prefer_amend``,
    else Cancel + Place; it always goes to the full desired quote (once an amend is spent, the
    hysteresis has nothing left to save), so the result matches desired and a second reconcile
    on it is a no-op.

    Budget (``budget_tokens``, the write bucket): cancels go first, in slot order, as many as fit;
    if all fit, amends/places follow, risk-reducing moves first, then by slot, each if it fits.
    If any cancel is deferred, every amend/place is deferred too. A batch create is rejected whole
    if the bucket cannot cover it, so the driver should pass what the bucket holds.
    """
    want: dict[Slot, Quote] = {}
    seen: set[Slot] = set()
    for q in desired:
        if q.slot in seen:
            raise InputError(f"two desired quotes for slot {q.slot}")
        seen.add(q.slot)
        if q.count > 0:
            want[q.slot] = q
    resting: dict[Slot, list[LiveOrder]] = {}
    for o in live:
        if o.remaining > 0:
            resting.setdefault(o.slot, []).append(o)

    cancels: list[Cancel] = []
    moves: list[tuple[bool, Amend | Place]] = []  # (risk-reducing, action); ids in slot order
    seq = id_seq
    for slot in sorted(want.keys() | resting.keys()):
        q, orders = want.get(slot), resting.get(slot, [])
        if len(orders) > 1:  # (one order per slot is the rule: sorting it would change nothing)
            orders = sorted(orders, key=lambda o: o.order_id)
        if q is None:
            cancels += [_cancel(o, "no desired quote") for o in orders]
            continue
        if not orders:
            moves.append((False, Place(q, f"{id_prefix}-{seq}")))
            seq += 1
            continue
        if len(orders) == 1:
            keep = orders[0]
        else:
            keep = min(orders, key=lambda o: (abs(o.price - q.price), abs(o.remaining - q.count)))
            cancels += [_cancel(o, "extra order in slot") for o in orders if o is not keep]
        kind = _move_kind(keep, q, now_ns, params)
        if kind is None:
            continue
        if params.prefer_amend:
            amend = Amend(keep.order_id, q.market, q.side, q.price, keep.filled + q.count)
            moves.append((kind == "reduce", amend))
        else:
            cancels.append(_cancel(keep, "replace"))
            moves.append((kind == "reduce", Place(q, f"{id_prefix}-{seq}")))
            seq += 1

    sent: list[OrderAction] = []
    deferred: list[OrderAction] = []
    left = budget_tokens or 0
    blocked = False  # a cancel did not fit: nothing that adds exposure goes out
    by_priority = [a for _, a in sorted(moves, key=lambda t: (not t[0], t[1].slot))]
    for a in [*cancels, *by_priority]:
        cost = _cost(a, params)
        if budget_tokens is None or (not blocked and cost <= left):
            sent.append(a)
            left -= cost
        else:
            deferred.append(a)
            blocked = blocked or isinstance(a, Cancel)
    if not sent and not deferred:  # the common outcome: live orders already match
        return ReconcilePlan((), (), seq, 0)
    return ReconcilePlan(_ordered(sent), _ordered(deferred), seq, sum(_cost(a, params) for a in sent))


def _move_kind(o: LiveOrder, q: Quote, now_ns: int, p: ReconcileParams) -> _MoveKind | None:
    if o.price == q.price and o.remaining == q.count:
        return None
    more_aggressive = o.price > q.price if q.side == "bid" else o.price < q.price
    if more_aggressive or o.remaining > q.count:
        return "reduce"
    if now_ns - o.placed_ns < p.min_rest_ns:
        return None
    if abs(o.price - q.price) >= p.min_price_move:
        return "add"
    return "add" if q.count - o.remaining >= p.min_size_change_frac * o.remaining else None


def _cancel(o: LiveOrder, reason: str) -> Cancel:
    return Cancel(o.order_id, o.market, o.side, reason)


def _cost(a: OrderAction, p: ReconcileParams) -> int:
    if isinstance(a, Cancel):
        return p.cost_cancel
    return p.cost_amend if isinstance(a, Amend) else p.cost_place


def _sort_key(a: OrderAction) -> tuple[int, Slot, str]:
    if isinstance(a, Place):
        return (2, a.slot, a.client_order_id)
    return (0 if isinstance(a, Cancel) else 1, a.slot, a.order_id)


def _ordered(actions: list[OrderAction]) -> tuple[OrderAction, ...]:
    return tuple(sorted(actions, key=_sort_key))
