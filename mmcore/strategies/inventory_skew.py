"""The inventory-skewing quoter (reference/seed-baselines.md), adapted to cents/probability.

Per market, around the book mid ``m`` of other participants, with directional inventory ``q``
(:mod:`mmcore.strategies.base`), ``Q`` the maximum inventory and ``f = min(1, |q| / Q)``:

- **Half-spread widened by recent volatility**: ``h = h₀ × (1 + vol_multiplier × σ)``.
  The seed's σ is the recent volatility of *returns*; here σ is the standard deviation of the
  mid's 1 s changes in **dollars = probability** over the last 60 s
  (:class:`~mmcore.strategies.volatility.MidVolatility`, dollars per √s), i.e. the return on
  the contract's $1 payout rather than on its price, so a 1¢ move weighs the same at 10¢ and at
  90¢. ``h₀`` is a fixed number of cents (default 2¢) as in the fixed-spread quoter. With the
  seed's multiplier 10, σ = 1¢/√s (a very busy book) widens by ×1.1; quiet pre-game books barely
  widen — the published parameters, not ours to tune up.
- **Skew**: the centre moves by ``skew_sign × skew_cents_at_max × q / Q``. The seed writes
  ``mid × skew_factor × q / Q`` with factor 0.1; on a binary the price-proportional form would
  skew a 90¢ contract nine times harder than the same exposure seen from its 10¢ NO side (and
  team A's market harder than team B's), so the mid is replaced by a fixed 50¢ — the centre of
  the price range — giving ``0.1 × 50¢ = 5¢`` at full inventory, the same way the 5 bps
  half-spread became a fixed 2¢. **Sign**: the seed says "long → both quotes move up, short →
  down" (``skew_sign = +1``, the default, reproduced as published). That leans *into* the
  position (a long quoter bids higher and asks higher), opposite to A-S's reservation price;
  ``skew_sign = −1`` is the inventory-reducing variant.
- **Size shaping**: the side that reduces inventory gets ``size × (1 + f/2)``, the other
  ``size × (1 − f/2)``, each at least ``floor`` (whole contracts; flat: both ``size``).
- **Risk cap** (the seed's risk manager, "sizes capped by remaining headroom"): the side that adds
  is cut to ``Q − |q|``, so it stops at ``|q| = Q``.

Stateful only through the volatility sampler: one instance per game, :meth:`quote` called in time
order (it samples the mids of every call, gated or not).
"""

from __future__ import annotations

from dataclasses import dataclass

from mmcore.book import BookTop
from mmcore.errors import ConfigError
from mmcore.quoting.quotes import DesiredQuotes
from mmcore.strategies.base import (
    NS,
    MarketIntent,
    StrategyInput,
    adds,
    check_number,
    contracts_to_count,
    quote_markets,
    two_sided_mid,
    whole_contracts,
)
from mmcore.strategies.volatility import MarketVolatility
from mmcore.units import CENT, PRICE_ONE


@dataclass(frozen=True, slots=True)
class InventorySkewParams:
    """Prices in cents, sizes in contracts, time in seconds; σ in dollars per √s."""

    half_spread_cents: float = 2.0
    vol_multiplier: float = 10.0
    skew_cents_at_max: float = 5.0
    skew_sign: int = 1
    size_contracts: float = 10.0
    size_floor_contracts: float = 1.0
    max_inventory_contracts: float = 100.0
    vol_window_s: float = 60.0
    vol_sample_s: float = 1.0
    stop_before_start_s: float = 60.0

    def __post_init__(self) -> None:
        check_number(self, "half_spread_cents", high=50.0)
        check_number(self, "vol_multiplier", strict=False)
        check_number(self, "skew_cents_at_max", strict=False, high=100.0)
        if self.skew_sign not in (1, -1) or isinstance(self.skew_sign, bool):
            raise ConfigError(f"InventorySkewParams.skew_sign must be 1 (as published: long → "
                              f"quotes up) or -1 (long → quotes down), got {self.skew_sign!r}")
        check_number(self, "size_contracts")
        check_number(self, "size_floor_contracts")
        check_number(self, "max_inventory_contracts")
        check_number(self, "vol_sample_s")
        check_number(self, "stop_before_start_s", strict=False)
        if check_number(self, "vol_window_s") < 2 * self.vol_sample_s:
            raise ConfigError(f"InventorySkewParams.vol_window_s ({self.vol_window_s}) must hold "
                              f"at least two samples of vol_sample_s ({self.vol_sample_s})")
        if self.size_floor_contracts > self.size_contracts:
            raise ConfigError(f"InventorySkewParams.size_floor_contracts ({self.size_floor_contracts})"
                              f" > size_contracts ({self.size_contracts})")


class InventorySkew:
    """See the module docstring."""

    name = "inventory-skew"

    def __init__(self, params: InventorySkewParams = InventorySkewParams()) -> None:
        self.params = params
        self._size = contracts_to_count(params.size_contracts)
        self._floor = contracts_to_count(params.size_floor_contracts)
        self._max = contracts_to_count(params.max_inventory_contracts)
        self._stop_ns = int(params.stop_before_start_s * NS)
        self._vol = MarketVolatility(int(params.vol_sample_s * NS),
                                     max(2, int(params.vol_window_s / params.vol_sample_s)))

    def volatility(self, market: str) -> float:
        """Recent σ of ``market``'s mid (dollars per √s); 0 until enough samples."""
        sigma = self._vol.sigma(market)
        return 0.0 if sigma is None else sigma

    def quote(self, inp: StrategyInput) -> DesiredQuotes:
        self._vol.observe({m: None if (mid := two_sided_mid(inp.tops.get(m))) is None else mid / PRICE_ONE
                           for m in inp.game.markets}, inp.now_ns)
        return quote_markets(inp, self._stop_ns, self._decide)

    def _decide(self, i: int, market: str, q: int, top: BookTop, mid: float) -> MarketIntent:
        p = self.params
        sigma = self.volatility(market)
        half = p.half_spread_cents * CENT * (1 + p.vol_multiplier * sigma)
        centre = mid + p.skew_sign * p.skew_cents_at_max * CENT * q / self._max
        f = min(1.0, abs(q) / self._max)
        sizes = {}
        for side in ("bid", "ask"):
            reducing = not adds(side, q)  # type: ignore[arg-type]
            shaped = self._size * (1 + f / 2 if reducing else 1 - f / 2)
            count = max(self._floor, whole_contracts(shaped))
            if not reducing:
                count = min(count, max(0, self._max - abs(q)))
            sizes[side] = count
        notes = (f"mid {mid:.0f}, σ {sigma * 100:.3f}¢/√s → half {half:.1f}",
                 f"centre {centre:.1f} (q {q}/{self._max}), sizes {sizes['bid']}/{sizes['ask']}")
        return MarketIntent(centre - half, centre + half, sizes["bid"], sizes["ask"], notes)
