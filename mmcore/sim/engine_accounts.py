"""Cash, collateral and position arithmetic of the matching engine.

Rules of this file (money in price units, $0.0001; counts in centi-contracts):

- **Collateral.** A YES contract and a NO contract together are worth exactly $1 (``UNIT`` per
  centi-contract), which the exchange holds from the moment the pair is created until settlement.
  So for each market: ``open_interest × UNIT`` of the users' cash sits with the exchange.
- **Cash of one fill, in YES terms.** Every bid fill is "buy YES at ``p``" and every ask fill
  "sell YES at ``p``", run through the order's :class:`~mmcore.fees.FeeAccumulator` (Kalshi's
  rounding); netting then adds ``+UNIT`` per NO contract a bid closes (a YES bought against a held
  NO redeems the pair for $1) and ``−UNIT`` per NO contract an ask opens (selling YES one does not
  hold means buying NO at ``1 − p``). So a bid that opens pays ``p``, a bid that closes NO
  receives ``1 − p``, an ask that closes YES receives ``p``, an ask that opens pays ``1 − p``.
  ``UNIT`` is a whole cent multiple, so the accumulator's flooring is unaffected.
- **Conservation.** For each trade the two cash changes plus the change in collateral add up to
  minus the fees the exchange keeps; the engine books that difference as ``fees_collected``.
- **Reservation.** A user's resting orders in a market reserve
  ``max(cost if every bid fills, cost if every ask fills, 0)``, each side's cost including its
  fee bounds: bids ``Σ p·c − UNIT · min(Σ c, NO held) + Σ fee bounds``, asks ``Σ (1−p)·c −
  UNIT · min(Σ c, YES held) + Σ fee bounds`` (negative when the orders only close: the proceeds
  pay the fees). Only opening fills take cash — a closing fill's balance change is never negative,
  its fee being below its proceeds — fills on one side make the other side cheaper, and a user's
  own bids sit below their own asks, so no order of fills needs more than the larger side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mmcore.fees import FeeSchedule, FillFee
from mmcore.orders import Side
from mmcore.sim.engine_types import PositionRecord
from mmcore.units import CENT, CONTRACT, PRICE_ONE, notional

UNIT = PRICE_ONE // CONTRACT
"""$1 payout per centi-contract, in price units (100)."""


@dataclass(frozen=True)
class FeeBound:
    """Integer-only upper bound on the net fees of an order, built once per market.

    ``bound(price, count)`` = the larger (taker/maker) raw fee of ``count`` at ``price``, rounded
    up, plus $0.0001 per centi-contract for the per-fill round-up of the trade fee, plus the
    accumulator's unrefunded rounding (< 1¢). Exact rational coefficients, integer arithmetic.
    """

    num: int
    den: int
    flat: bool

    @classmethod
    def of(cls, schedule: FeeSchedule) -> FeeBound:
        if schedule.fee_type == "flat":
            per = max(schedule.flat_taker_fee_per_contract, schedule.flat_maker_fee_per_contract)
            return cls(per, CONTRACT, True)
        coeff = max(schedule.coefficient(maker=False), schedule.coefficient(maker=True))
        # raw (price units) = coeff × count × p × (ONE − p) / (CONTRACT × ONE)
        return cls(coeff.numerator, coeff.denominator * CONTRACT * PRICE_ONE, False)

    def __call__(self, price: int, count: int) -> int:
        kernel = count if self.flat else count * price * (PRICE_ONE - price)
        return -((-self.num * kernel) // self.den) + count + CENT


def notional_ceil(price: int, count: int) -> int:
    """``price × count`` in money units, rounded up (for reservations)."""
    return -((-price * count) // CONTRACT)


def order_cost(side: Side, price: int, count: int, bound: FeeBound) -> int:
    """One order's term of its side's worst-case cost (money, price units): its leg's notional
    rounded up (``p`` for a bid, ``1 − p`` for an ask) plus its fee bound."""
    leg = price if side == "bid" else PRICE_ONE - price
    return notional_ceil(leg, count) + bound(price, count)


def requirement_of(bid_cost: int, bid_count: int, ask_cost: int, ask_count: int,
                   position: int) -> int:
    """Cash to reserve given each side's summed :func:`order_cost` and count (centi-contracts)
    and the signed position: the larger side's cost, less ``UNIT`` per contract it would close."""
    bid_worst = bid_cost - UNIT * min(bid_count, max(-position, 0))
    ask_worst = ask_cost - UNIT * min(ask_count, max(position, 0))
    return max(bid_worst, ask_worst, 0)


def requirement(
    orders: Iterable[tuple[Side, int, int]], position: int, bound: FeeBound
) -> int:
    """Cash to reserve for one user's ``(side, price, remaining)`` orders in one market."""
    sums = [0, 0, 0, 0]  # bid cost, bid count, ask cost, ask count
    for side, price, n in orders:
        i = 0 if side == "bid" else 2
        sums[i] += order_cost(side, price, n, bound)
        sums[i + 1] += n
    return requirement_of(*sums, position)


def fill_cash(side: Side, count: int, position: int, fee: FillFee) -> int:
    """Cash change of one fill (see the rules above); ``fee`` from ``add_fill(buy=side=="bid")``."""
    if side == "bid":
        closed_no = min(count, max(-position, 0))
        return fee.total_balance_change + UNIT * closed_no
    opened_no = count - min(count, max(position, 0))
    return fee.total_balance_change - UNIT * opened_no


@dataclass
class PositionBook:
    """One user's running position in one market (see :class:`PositionRecord` for fields)."""

    ticker: str
    position: int = 0
    cost: int = 0
    realized_pnl: int = 0
    fees_paid: int = 0
    volume: int = 0
    last_updated_ns: int = 0

    def apply_fill(self, side: Side, price: int, count: int, fee: int, now_ns: int) -> None:
        """Move the position by one fill; average-cost basis in the held leg's prices."""
        pos = self.position
        if side == "bid":  # buy YES: closes NO first (sold at 1 − p), then opens YES at p
            closing = min(count, max(-pos, 0))
            close_leg, open_leg = PRICE_ONE - price, price
            self.position = pos + count
        else:  # sell YES: closes YES first (at p), then opens NO at 1 − p
            closing = min(count, max(pos, 0))
            close_leg, open_leg = price, PRICE_ONE - price
            self.position = pos - count
        if closing:
            removed = self.cost * closing // abs(pos)
            self.cost -= removed
            self.realized_pnl += notional(close_leg, closing) - removed
        if count - closing:
            self.cost += notional(open_leg, count - closing)
        self.fees_paid += fee
        self.volume += count
        self.last_updated_ns = now_ns

    def settle(self, yes_won: bool, now_ns: int) -> int:
        """Pay out and flatten; returns the payout (``UNIT`` per winning centi-contract)."""
        won = (self.position > 0) == yes_won
        payout = abs(self.position) * UNIT if won else 0
        self.realized_pnl += payout - self.cost
        self.position = 0
        self.cost = 0
        self.last_updated_ns = now_ns
        return payout

    def record(self) -> PositionRecord:
        return PositionRecord(self.ticker, self.position, self.cost, self.realized_pnl,
                              self.fees_paid, self.volume, self.last_updated_ns)
