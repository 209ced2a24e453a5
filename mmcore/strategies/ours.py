"""Our quoting as a :class:`~mmcore.strategies.base.Strategy`: a thin adapter, no logic of its own.

:meth:`Ours.quote` is :func:`mmcore.quoting.quotes.desired_quotes` with the input's fields passed
through (theo, the worker's trading state, stale markets, guards, confidence, account caps), so
the backtest can run ours and the baselines through one interface while the worker keeps calling
``desired_quotes`` directly. Inventory is the game's directional inventory, as in
``desired_quotes`` itself.

The one addition: ``desired_quotes`` needs the game's :class:`~mmcore.risk.limits.GameLimit`.
The worker passes its own (depth within a window of the touch; :meth:`GameWorker.limit`) in
``StrategyInput.limit``; without one, the adapter derives it the same way from what the input
has — the top-of-book sizes of every market — with the configured :class:`LimitConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmcore.errors import ConfigError
from mmcore.quoting.config import DEFAULT_QUOTE_PARAMS, quote_params_from_dict
from mmcore.quoting.quotes import DesiredQuotes, QuoteParams, desired_quotes
from mmcore.risk.limits import GameLimit, LimitConfig, available_liquidity, game_limit
from mmcore.strategies.base import StrategyInput


def _default_limits() -> LimitConfig:
    return LimitConfig.from_dict({})


@dataclass(frozen=True, slots=True)
class OursParams:
    """Our quoting parameters (:class:`QuoteParams`) and the limits used when the input brings
    no :class:`GameLimit`."""

    quote: QuoteParams = DEFAULT_QUOTE_PARAMS
    limits: LimitConfig = field(default_factory=_default_limits)

    def __post_init__(self) -> None:
        if not isinstance(self.quote, QuoteParams) or not isinstance(self.limits, LimitConfig):
            raise ConfigError(f"OursParams needs a QuoteParams and a LimitConfig: {self!r}")
        q = self.quote
        for name in ("clip", "min_size"):
            v = getattr(q, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"ours: quote.{name} must be a positive int (centi-contracts), got {v!r}")
        if q.min_size > q.clip:
            raise ConfigError(f"ours: quote.min_size {q.min_size} > clip {q.clip}")

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> OursParams:
        """``{"hjb": …, "competition": …, "quote": …, "limits": …}`` over the defaults (the same
        sections as the worker's config; unknown keys → ConfigError)."""
        raw = dict(raw or {})
        limits = raw.pop("limits", None)
        return cls(quote_params_from_dict(raw),
                   LimitConfig.from_dict(limits) if limits is not None else _default_limits())


class Ours:
    """See the module docstring."""

    name = "ours"

    def __init__(self, params: OursParams | None = None) -> None:
        self.params = params if params is not None else OursParams()

    def limit(self, inp: StrategyInput) -> GameLimit:
        """The input's limit, or one derived from the top-of-book sizes (see the module doc)."""
        if inp.limit is not None:
            return inp.limit
        sizes = [s for top in inp.tops.values() for s in (top.bid_size, top.ask_size)]
        return game_limit(inp.game.sport_key, available_liquidity(sizes), self.params.limits)

    def quote(self, inp: StrategyInput) -> DesiredQuotes:
        return desired_quotes(
            inp.game, inp.tops, inp.theo, inp.state, self.limit(inp), self.params.quote, inp.now_ns,
            uncertainty=inp.uncertainty, trading=inp.trading, stale=inp.stale,
            limit_config=inp.limit_config, others=inp.others, guard_widen=inp.guard_widen,
            hold=inp.hold, confidence=inp.confidence,
        )
