"""Who earns from whom: makers' and takers' excess return over settled markets, from fills.

The figure real prediction markets are measured by (reference/market-realism.md, Becker 2026:
on Kalshi takers −1.12 %, makers +1.12 % of what they paid): each fill buys a contract — YES
at ``price`` for a bid, NO at ``PRICE_ONE − price`` for an ask — which pays ``PRICE_ONE`` if it
wins. A group's **excess return** is Σ(payoff − cost) ÷ Σ cost over its fills, before fees (fees
are reported apart, as a share of the same cost). The payoff is the settlement (YES worth 1 or
0), or — far less noisy over a few hundred games, and unbiased since the truth is a martingale —
the hidden YES probability at a later time (the game start): pass either as ``yes_value``. Roles are the fill's own (``is_taker``), and
takers are also split by who they are (the user id's kind: ``noise``, ``informed``, ``news``, or
``mm`` for our market maker), for the informed share of taker volume.

Pure: takes the engine's fills and each market's result. Units: money int price units;
counts centi-contracts; returns floats (fractions, not percent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mmcore.sim.engine_types import Fill
from mmcore.units import CONTRACT, PRICE_ONE


@dataclass
class Tally:
    """Totals of one group's fills (settled markets only)."""

    cost_money: int = 0
    payoff_money: float = 0.0
    fees_money: int = 0
    volume: int = 0
    """Centi-contracts."""

    @property
    def pnl_money(self) -> float:
        """Before fees."""
        return self.payoff_money - self.cost_money

    @property
    def excess_return(self) -> float | None:
        """Σ(payoff − cost) ÷ Σ cost, before fees; None without fills."""
        return self.pnl_money / self.cost_money if self.cost_money else None

    @property
    def fee_share(self) -> float | None:
        return self.fees_money / self.cost_money if self.cost_money else None

    def add(self, f: Fill, yes_value: float) -> None:
        """One fill; ``yes_value`` is what a YES contract of its market pays (0..1)."""
        bid = f.side == "bid"
        price = f.price if bid else PRICE_ONE - f.price
        self.cost_money += price * f.count // CONTRACT
        self.payoff_money += (yes_value if bid else 1.0 - yes_value) * PRICE_ONE * f.count / CONTRACT
        self.fees_money += f.fee
        self.volume += f.count


@dataclass
class Transfer:
    """Makers and takers (by fill role), and takers by kind of user."""

    makers: Tally = field(default_factory=Tally)
    takers: Tally = field(default_factory=Tally)
    takers_by_kind: dict[str, Tally] = field(default_factory=dict)

    def taker_share(self, *kinds: str) -> float | None:
        """Share of taker volume done by users of these kinds."""
        if not self.takers.volume:
            return None
        done = sum(t.volume for k, t in self.takers_by_kind.items() if k in kinds)
        return done / self.takers.volume


def user_kind(user_id: str) -> str:
    """``noise-0-1`` → ``noise``; ``mm`` → ``mm``."""
    return user_id.split("-", 1)[0]


def wealth_transfer(fills: Iterable[Fill], yes_value: Mapping[str, float]) -> Transfer:
    """Tally every fill in a market of ``yes_value`` (market → what YES pays: 1.0 / 0.0 at
    settlement, or a probability); fills in other markets are skipped."""
    out = Transfer()
    for f in fills:
        value = yes_value.get(f.ticker)
        if value is None:
            continue
        if f.is_taker:
            out.takers.add(f, value)
            out.takers_by_kind.setdefault(user_kind(f.user_id), Tally()).add(f, value)
        else:
            out.makers.add(f, value)
    return out


__all__ = ["Tally", "Transfer", "user_kind", "wealth_transfer"]
