"""Quoting configuration: defaults as module constants, and strict loading from plain dicts.

Units are in the field names (see :class:`~mmcore.quoting.hjb.HjbParams`,
:class:`~mmcore.quoting.competition.CompetitionParams`, :class:`~mmcore.quoting.quotes.QuoteParams`).
Unknown keys are refused with :class:`~mmcore.errors.ConfigError`, so a typo never silently
falls back to a default.

Why these defaults: with γ = 0.002 per dollar and the settlement term on, 100 contracts of
inventory at 60¢ skew the reservation by ≈ 4.8¢ — enough to lean hard before the game-start risk
arrives — while k = 100 per dollar (1 per cent) gives a model half-spread of ≈ 1¢.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from mmcore.errors import ConfigError
from mmcore.quoting.competition import CompetitionParams
from mmcore.quoting.hjb import HjbParams
from mmcore.quoting.quotes import QuoteParams
from mmcore.units import CONTRACT

DEFAULT_HJB = HjbParams(
    gamma_per_dollar=0.002,
    sigma_logit_per_sqrt_s=0.0005,
    a_per_s=0.05,
    k_per_dollar=100.0,
    q_max_contracts=500.0,
    model="glft",
    carry_to_settlement=True,
)
DEFAULT_COMPETITION = CompetitionParams()
DEFAULT_UNCERTAINTY_WIDEN_K = 0.0
DEFAULT_CONFIDENCE_WIDEN_K = 0.0
"""Theo disagreement across books does not widen by default (``QuoteParams`` keeps 1.0 / 0.5
for explicit use). Measured (bench/strategy.py, calibrated world, 6 games a level, truth-valued
net P&L $/game, ours with 1.0/0.5 → 0/0): benign +1.52 → +5.35 (fills 39 → 130, time at best
11 % → 38 %), default −0.90 → +0.50, toxic −7.76 → −6.05. The book-disagreement term added
~1.3¢ to a ~1¢ model half-spread, so ours sat 2–3 ticks behind the top while the flow was
benign; toxicity is measured where it shows — our fills' markouts, order flow, volatility and
jumps (:mod:`mmcore.quoting.guards`) — and widens and sizes from that."""
DEFAULT_QUOTE_PARAMS = QuoteParams(hjb=DEFAULT_HJB, competition=DEFAULT_COMPETITION,
                                   uncertainty_widen_k=DEFAULT_UNCERTAINTY_WIDEN_K,
                                   confidence_widen_k=DEFAULT_CONFIDENCE_WIDEN_K)

T = TypeVar("T")


def build(cls: type[T], raw: Mapping[str, Any] | None, base: T, where: str) -> T:
    """``base`` with the fields of ``raw`` replaced; unknown keys and bad values → ConfigError."""
    if not raw:
        return base
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    try:
        return dataclasses.replace(base, **raw)  # type: ignore[type-var]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def quote_params_from_dict(raw: Mapping[str, Any] | None) -> QuoteParams:
    """``{"hjb": {...}, "competition": {...}, "quote": {...}}`` over the defaults.

    ``quote`` takes QuoteParams' own fields, with ``clip_contracts`` / ``min_size_contracts``
    accepted in whole contracts for convenience.
    """
    raw = dict(raw or {})
    unknown = sorted(set(raw) - {"hjb", "competition", "quote"})
    if unknown:
        raise ConfigError(f"config: unknown section(s) {', '.join(unknown)}")
    hjb = build(HjbParams, raw.get("hjb"), DEFAULT_HJB, "config.hjb")
    comp = build(CompetitionParams, raw.get("competition"), DEFAULT_COMPETITION, "config.competition")
    quote = dict(raw.get("quote") or {})
    for whole, field in (("clip_contracts", "clip"), ("min_size_contracts", "min_size")):
        if whole in quote:
            quote[field] = int(round(float(quote.pop(whole)) * CONTRACT))
    if "hjb" in quote or "competition" in quote:
        raise ConfigError("config.quote: put hjb/competition in their own sections")
    base = dataclasses.replace(DEFAULT_QUOTE_PARAMS, hjb=hjb, competition=comp)
    return build(QuoteParams, quote, base, "config.quote")
