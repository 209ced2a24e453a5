"""Plain Avellaneda–Stoikov around the book mid: the textbook model with nothing of ours.

Per market, with the book mid ``s`` of other participants (probability = dollars per contract),
directional inventory ``q`` in contracts (:mod:`mmcore.strategies.base`) and σ in dollars/√s:

- ``model="finite"`` (default): A-S finite horizon (quoting-math.md §1.3,
  :func:`mmcore.quoting.hjb.as_finite`) with the horizon T = **game start**, τ = seconds to it:
  ``r = s − qγσ²τ``, spread ``γσ²τ + (2/γ)ln(1 + γ/k)`` centred on ``r``. This is the plain
  model the design rejects for ours (§3.3: its skew vanishes as the start — and the settlement
  risk — arrives), which is what makes it a baseline.
- ``model="stationary"``: A-S infinite horizon with ω = ½γ²σ²(Q+1)² and the exact reservation
  ask (§1.4, :func:`mmcore.quoting.hjb.as_stationary`); σ cancels, and the side that would pass
  ``|q| = Q`` has no price.

No sportsbook theo, no competition rules (no joining or pennying the touch), no fee floor, no
settlement term. σ is the book's recent volatility (:class:`~mmcore.strategies.volatility.
MidVolatility`, 1 s samples over 60 s, as Hummingbot estimates it from the mid) with
``sigma_source="book"``, falling back to ``sigma_dollars_per_sqrt_s`` until enough samples;
``"fixed"`` always uses the parameter. Fixed size; at ``|q| ≥ Q`` the side that adds stops
(GLFT's hard bound, which plain A-S lacks; without it an unbounded baseline could run away).
Prices are rounded away from the model (bid down, ask up) onto the grid and kept post-only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mmcore.book import BookTop
from mmcore.errors import ConfigError
from mmcore.quoting.hjb import as_finite, as_stationary
from mmcore.quoting.quotes import DesiredQuotes
from mmcore.strategies.base import (
    NS,
    MarketIntent,
    StrategyInput,
    check_number,
    contracts_to_count,
    quote_markets,
    two_sided_mid,
)
from mmcore.strategies.volatility import MarketVolatility
from mmcore.units import CONTRACT, PRICE_ONE


@dataclass(frozen=True, slots=True)
class AsMidParams:
    """γ and k per dollar, σ in dollars per √s, sizes in contracts, time in seconds.

    Defaults: k = 100/$ (1/¢) puts the half-spread near 1¢ as γ → 0; γ = 0.05/$ with σ =
    0.1¢/√s and an hour to the start skews 0.018¢ per contract (1.8¢ at 100 contracts)."""

    gamma_per_dollar: float = 0.05
    k_per_dollar: float = 100.0
    sigma_dollars_per_sqrt_s: float = 0.001
    sigma_source: str = "book"
    model: str = "finite"
    size_contracts: float = 10.0
    max_inventory_contracts: float = 100.0
    vol_window_s: float = 60.0
    vol_sample_s: float = 1.0
    stop_before_start_s: float = 60.0

    def __post_init__(self) -> None:
        check_number(self, "gamma_per_dollar")
        check_number(self, "k_per_dollar")
        check_number(self, "sigma_dollars_per_sqrt_s", strict=False)
        if self.sigma_source not in ("book", "fixed"):
            raise ConfigError(f"AsMidParams.sigma_source must be 'book' or 'fixed', got {self.sigma_source!r}")
        if self.model not in ("finite", "stationary"):
            raise ConfigError(f"AsMidParams.model must be 'finite' or 'stationary', got {self.model!r}")
        check_number(self, "size_contracts")
        check_number(self, "max_inventory_contracts")
        check_number(self, "vol_sample_s")
        check_number(self, "stop_before_start_s", strict=False)
        if check_number(self, "vol_window_s") < 2 * self.vol_sample_s:
            raise ConfigError(f"AsMidParams.vol_window_s ({self.vol_window_s}) must hold at least "
                              f"two samples of vol_sample_s ({self.vol_sample_s})")


def as_mid_prices(
    s: float, q_contracts: float, tau_s: float, sigma: float, params: AsMidParams,
) -> tuple[float | None, float | None, float]:
    """(bid, ask, reservation) in the unit of ``s`` from the chosen A-S form, before rounding and
    the hard bound; a side with no finite price is None. ``gamma``/``k`` are per unit of ``s``."""
    g, k = params.gamma_per_dollar, params.k_per_dollar
    if params.model == "finite":
        aq = as_finite(s, q_contracts, g, sigma, k, max(0.0, tau_s))
        return s - aq.delta_b, s + aq.delta_a, aq.reservation
    qm = params.max_inventory_contracts
    st = as_stationary(s, max(-qm, min(qm, q_contracts)), g, sigma, k, qm)
    finite = [x for x in (st.r_b, st.r_a) if math.isfinite(x)]
    return st.bid, st.ask, sum(finite) / len(finite)


class AsMid:
    """See the module docstring. Stateful only through the σ sampler (one instance per game)."""

    name = "as-mid"

    def __init__(self, params: AsMidParams = AsMidParams()) -> None:
        self.params = params
        self._size = contracts_to_count(params.size_contracts)
        self._max = contracts_to_count(params.max_inventory_contracts)
        self._stop_ns = int(params.stop_before_start_s * NS)
        self._vol = MarketVolatility(int(params.vol_sample_s * NS),
                                     max(2, int(params.vol_window_s / params.vol_sample_s)))
        self._tau_s = 0.0

    def sigma(self, market: str) -> float:
        """σ used for ``market`` (dollars per √s): the book's, or the parameter (see above)."""
        if self.params.sigma_source == "book":
            est = self._vol.sigma(market)
            if est is not None:
                return est
        return self.params.sigma_dollars_per_sqrt_s

    def quote(self, inp: StrategyInput) -> DesiredQuotes:
        self._vol.observe({m: None if (mid := two_sided_mid(inp.tops.get(m))) is None else mid / PRICE_ONE
                           for m in inp.game.markets}, inp.now_ns)
        self._tau_s = max(0.0, (inp.game.start_ns - inp.now_ns) / NS)
        return quote_markets(inp, self._stop_ns, self._decide)

    def _decide(self, i: int, market: str, q: int, top: BookTop, mid: float) -> MarketIntent:
        sigma = self.sigma(market)
        bid, ask, r = as_mid_prices(mid / PRICE_ONE, q / CONTRACT, self._tau_s, sigma, self.params)
        notes = [(f"A-S {self.params.model}: s {mid:.0f}, σ {sigma * 100:.3f}¢/√s, "
                 f"τ {self._tau_s:.0f}s, r {r * PRICE_ONE:.1f}")]
        if q >= self._max and bid is not None:
            bid = None
            notes.append(f"inventory {q} at max {self._max}: no bid")
        if q <= -self._max and ask is not None:
            ask = None
            notes.append(f"inventory {q} at max -{self._max}: no ask")
        return MarketIntent(None if bid is None else bid * PRICE_ONE,
                            None if ask is None else ask * PRICE_ONE,
                            self._size, self._size, tuple(notes))
