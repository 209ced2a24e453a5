"""Quoting strategies behind one interface: ours and the baselines it must beat (issue 11 item 3).

``make_strategy(name, params)`` builds one strategy instance per game; the backtest and the
worker drive it through :class:`~mmcore.strategies.base.Strategy` (``quote(StrategyInput) →
DesiredQuotes``; see :mod:`mmcore.strategies.base` for the calling rules). Names:

======================  =======================================================================
``ours``                :mod:`~mmcore.strategies.ours` — ``desired_quotes`` (GLFT + settlement
                        term around theo, competition rules, sizing, parity)
``fixed-spread``        :mod:`~mmcore.strategies.fixed_spread` — mid ± 2¢, fixed size
``inventory-skew``      :mod:`~mmcore.strategies.inventory_skew` — vol-widened, skewed, shaped
``as-mid``              :mod:`~mmcore.strategies.as_mid` — plain Avellaneda–Stoikov around mid
======================  =======================================================================

``params`` is a plain mapping (a config file's section) over the strategy's typed defaults, or
the params dataclass itself; unknown keys and bad values raise ConfigError.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mmcore.errors import ConfigError
from mmcore.quoting.config import build
from mmcore.strategies.as_mid import AsMid, AsMidParams
from mmcore.strategies.base import Strategy, StrategyInput
from mmcore.strategies.fixed_spread import FixedSpread, FixedSpreadParams
from mmcore.strategies.inventory_skew import InventorySkew, InventorySkewParams
from mmcore.strategies.ours import Ours, OursParams

StrategyFactory = Callable[[Any], Strategy]
"""``factory(params)``: params is None (defaults), a mapping over the defaults, or the params
dataclass; returns a fresh strategy for one game."""


def _factory(cls: type, params_cls: type, from_dict: Callable[[Mapping[str, Any]], Any] | None = None
             ) -> StrategyFactory:
    def make(params: Any = None) -> Strategy:
        if params is None:
            return cls(params_cls())
        if isinstance(params, params_cls):
            return cls(params)
        if not isinstance(params, Mapping):
            raise ConfigError(f"{cls.name}: params must be a mapping or {params_cls.__name__}, "
                              f"got {type(params).__name__}")
        if from_dict is not None:
            return cls(from_dict(params))
        return cls(build(params_cls, params, params_cls(), f"strategy {cls.name}"))
    make.__name__ = f"make_{cls.__name__}"
    return make


STRATEGIES: dict[str, StrategyFactory] = {
    "ours": _factory(Ours, OursParams, OursParams.from_dict),
    "fixed-spread": _factory(FixedSpread, FixedSpreadParams),
    "inventory-skew": _factory(InventorySkew, InventorySkewParams),
    "as-mid": _factory(AsMid, AsMidParams),
}


def make_strategy(name: str, params: Any = None) -> Strategy:
    """A fresh strategy ``name`` (one per game) with ``params`` over its defaults."""
    try:
        factory = STRATEGIES[name]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}; known: {', '.join(STRATEGIES)}") from None
    return factory(params)


__all__ = [
    "STRATEGIES", "AsMid", "AsMidParams", "FixedSpread", "FixedSpreadParams", "InventorySkew",
    "InventorySkewParams", "Ours", "OursParams", "Strategy", "StrategyFactory", "StrategyInput",
    "make_strategy",
]
