"""Triple barrier per position (quoting-math §6.3; López de Prado, AFML ch. 3). Pure.

Each market's open position (a lot: opened when the position leaves 0 or flips, closed when it
returns to 0) gets three barriers, and whichever is touched first decides the exit:

* **take-profit**: the mark has moved ``take_profit_price`` in our favour since the lot opened →
  exit passively (the reducing side only, at the price quoting already chose);
* **stop-loss**: the mark has moved ``stop_loss_price`` against us → exit with urgency (the
  reducing side only, priced at theo or better for the taker, never crossing the book);
* **time**: the lot is older than ``max_hold_ns``, or (when ``start_buffer_ns`` is set) the game
  starts within it → exit with urgency.

Barriers are measured from the mark (theo) when the lot opened, not from the fill price: a
market maker buys below theo by design, and that captured half-spread is not a move of the
market (measured from cost, every fill with a 4¢ edge would "take profit" at once).

A touched barrier is latched for the lot (a stop does not un-trigger when the price comes back):
:func:`update` keeps it until the lot closes. The worker acts on it through reduce-only quotes
(:mod:`mmcore.worker.engine`): no adding side in that market, the reducing side sized at most to
the position.

``start_buffer_ns`` is None by default: design §2 lets positions ride into the game (GLFT with
the settlement term sizes the bound for it); set it to flatten before the start instead.

Units: prices in price units ($0.0001, YES terms), counts centi-contracts, times ns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmcore.errors import ConfigError

Kind = Literal["take_profit", "stop_loss", "time"]
URGENT: frozenset[str] = frozenset({"stop_loss", "time"})


@dataclass(frozen=True, slots=True)
class BarrierConfig:
    take_profit_price: int = 400
    """Exit passively once the mark is this far past the average cost in our favour (4¢)."""
    stop_loss_price: int = 600
    """Exit with urgency once the mark is this far against the average cost (6¢)."""
    max_hold_ns: int = 45 * 60 * 1_000_000_000
    """Exit with urgency once a lot is this old."""
    start_buffer_ns: int | None = None
    """When set, also exit with urgency this long before the game starts."""
    enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("take_profit_price", "stop_loss_price", "max_hold_ns"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"barrier.{name} must be a positive int, got {v!r}")
        b = self.start_buffer_ns
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 0):
            raise ConfigError(f"barrier.start_buffer_ns must be a non-negative int or None, got {b!r}")


@dataclass(frozen=True, slots=True)
class Lot:
    """One market's open position: its sign, when it opened, and the barrier it touched."""

    sign: int
    entry_ns: int
    entry_mark: float | None
    """The mark (price units) when the lot opened; set at the first mark if there was none."""
    hit: Kind | None = None
    detail: str = ""


def update(lot: Lot | None, position: int, mark_price: float | None, now_ns: int, start_ns: int,
           cfg: BarrierConfig) -> Lot | None:
    """The lot after this observation: None when flat; a new lot when the position opened or
    flipped; the same lot with ``hit`` set once a barrier is touched (latched)."""
    if position == 0 or not cfg.enabled:
        return None
    sign = 1 if position > 0 else -1
    if lot is None or lot.sign != sign:
        lot = Lot(sign, now_ns, mark_price)
    elif lot.entry_mark is None and mark_price is not None:
        lot = Lot(sign, lot.entry_ns, mark_price)
    if lot.hit is not None:
        return lot
    hit = touched(lot, mark_price, now_ns, start_ns, cfg)
    if hit is None:
        return lot
    return Lot(lot.sign, lot.entry_ns, lot.entry_mark, hit[0], hit[1])


def touched(lot: Lot, mark_price: float | None, now_ns: int, start_ns: int,
            cfg: BarrierConfig) -> tuple[Kind, str] | None:
    """The first barrier the lot touches now, with the numbers, or None."""
    entry = lot.entry_mark
    if entry is not None and mark_price is not None:
        gain = (mark_price - entry) * lot.sign  # price units per contract, + in our favour
        if gain <= -cfg.stop_loss_price:
            return "stop_loss", (f"mark {mark_price:.0f} moved {-gain:.0f} against the entry mark "
                                 f"{entry:.0f} (stop {cfg.stop_loss_price})")
        if gain >= cfg.take_profit_price:
            return "take_profit", (f"mark {mark_price:.0f} moved {gain:.0f} past the entry mark "
                                   f"{entry:.0f} (target {cfg.take_profit_price})")
    age = now_ns - lot.entry_ns
    if age >= cfg.max_hold_ns:
        return "time", f"held {age / 1e9:.0f}s (max {cfg.max_hold_ns / 1e9:.0f}s)"
    if cfg.start_buffer_ns is not None and now_ns >= start_ns - cfg.start_buffer_ns:
        return "time", f"game starts in {(start_ns - now_ns) / 1e9:.0f}s (buffer {cfg.start_buffer_ns / 1e9:.0f}s)"
    return None
