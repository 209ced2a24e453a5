"""The toxicity dial: one number that sets how much the other traders know.

A scenario's ``toxicity`` (``"benign"`` = 0, ``"default"`` = 1, ``"toxic"`` = 2, or any float in
[0, 3]) moves together, by linear interpolation between the named levels (and extrapolation
past ``toxic``):

- the **news** of the hidden truth (:class:`~mmcore.sim.truth.TruthParams`): how often a
  pre-game news jump arrives and how large it is; each stays private for ``news_lag_s`` on
  average (the window in which news-informed takers trade before the sportsbooks move);
- the **informed share of takers**: the arrival rate of sharp takers who trade on the current
  truth, as a share of all taker arrivals (noise + sharp), and the rate of news-informed takers;
- everything else stays put: noise flow (leaning toward YES and longshots), competing makers.

:func:`dial` answers file-shaped values (scenario JSON fields) so that
:func:`mmcore.sim.scenario.resolve` can fill them in **under** whatever the file says: a truth
field given in the scenario (top-level or per game) wins over the dial's, and a participant
group given in the file (``noise_takers``, ``informed_takers``, ``news_takers``,
``competing_makers``) replaces the dial's group of that name. Pure: no clock, no randomness.

Units: rates per second per market (participants) or per game (news); sizes whole contracts;
prices price units ($0.0001); probabilities floats; logits natural log-odds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mmcore.errors import InputError

LEVELS: dict[str, float] = {"benign": 0.0, "default": 1.0, "toxic": 2.0}
"""Named levels of the dial."""
MAX_LEVEL = 3.0

# Values at the named levels (benign, default, toxic); in between (and past toxic) linear.
NEWS_RATE_PER_S = (1 / 3600, 1 / 1200, 1 / 450)
"""Pre-game news items per second per game: one an hour, one per 20 minutes, one per 7.5."""
NEWS_JUMP_LOGIT_SD = (0.15, 0.40, 0.50)
NEWS_LAG_S = 180.0
"""Mean private window of a news item (each is × U(0.5, 1.5)): the sharpest books move ~3 min
after the news (practitioners: sharp bettors act on lineup/injury news before books move)."""
INFORMED_SHARE = (0.03, 0.06, 0.25)
"""Sharp takers' share of all taker arrivals (noise + sharp)."""
NEWS_TAKER_RATE_PER_S = (0.01, 0.04, 0.10)
"""Arrivals per second per market of the news-informed takers (they act only while news is
private)."""

INFORMED_EDGE_PRICE = 100
"""Sharp takers trade when the book is 1¢ wrong (seen through 0.5 % of noise)."""
MAKER_EDGE_PRICE = 75
"""Competing makers penny down to 1¢ from their estimate: one sharp (re-estimates from the
truth every 30 s), one following the books (learns news only when they move)."""
MAKER_SIZE_CONTRACTS = 25
"""Depth each competing maker shows per side: deeper than a noise order (≤ 10), so noise
rarely reaches a quote behind them; news sweeps do."""
NOISE_RATE_PER_S = 0.12
"""Noise taker arrivals per second per market (split over two takers)."""
NOISE_SIDE_BIAS = 0.55
"""Noise takers buy YES 55 % of the time at a 50¢ mid (optimism)."""
NOISE_LONGSHOT_BIAS = 0.15
"""…and lean toward the cheaper side (favourite–longshot bias): 67 % YES at a 10¢ mid."""


@dataclass(frozen=True, slots=True)
class Dial:
    """The dial's values at one level, shaped like scenario file fields."""

    level: float
    truth: dict[str, float]
    """``TruthParams`` fields (file names)."""
    participants: dict[str, list[dict[str, Any]]]
    """Participant groups as a scenario's ``participants`` (file shape)."""

    @property
    def informed_share(self) -> float:
        """Sharp takers' share of taker arrivals at this level."""
        sharp = sum(e["rate_per_s"] * e.get("count", 1) for e in self.participants["informed_takers"])
        noise = sum(e["rate_per_s"] * e.get("count", 1) for e in self.participants["noise_takers"])
        return sharp / (sharp + noise)


def level_of(toxicity: str | float) -> float:
    """A named level or a float → the dial position in [0, :data:`MAX_LEVEL`]."""
    if isinstance(toxicity, str):
        try:
            return LEVELS[toxicity]
        except KeyError:
            raise InputError(f"toxicity {toxicity!r}: expected one of {', '.join(LEVELS)} or a "
                             f"number in [0, {MAX_LEVEL:g}]") from None
    value = float(toxicity)
    if not (math.isfinite(value) and 0.0 <= value <= MAX_LEVEL):
        raise InputError(f"toxicity must be in [0, {MAX_LEVEL:g}], got {toxicity!r}")
    return value


def _at(values: tuple[float, float, float], x: float) -> float:
    """Piecewise-linear through (0, 1, 2) → values, extended linearly past 2."""
    lo = min(int(x), 1)
    return values[lo] + (values[lo + 1] - values[lo]) * (x - lo)


def dial(toxicity: str | float) -> Dial:
    """The truth and participant settings at this level of the dial."""
    x = level_of(toxicity)
    share = min(0.9, _at(INFORMED_SHARE, x))
    sharp_rate = NOISE_RATE_PER_S * share / (1.0 - share)
    truth = {"news_rate_per_s": _at(NEWS_RATE_PER_S, x),
             "news_jump_logit_sd": _at(NEWS_JUMP_LOGIT_SD, x),
             "news_lag_s": NEWS_LAG_S}
    participants: dict[str, list[dict[str, Any]]] = {
        "noise_takers": [{"count": 2, "rate_per_s": NOISE_RATE_PER_S / 2, "size_contracts_min": 1,
                          "size_contracts_max": 10, "max_spread_price": 1500,
                          "side_bias": NOISE_SIDE_BIAS, "longshot_bias": NOISE_LONGSHOT_BIAS}],
        "informed_takers": [{"edge_threshold_price": INFORMED_EDGE_PRICE, "rate_per_s": sharp_rate,
                             "size_contracts_min": 5, "size_contracts_max": 25,
                             "noise_sd_prob": 0.005, "sweep": True}],
        "news_takers": [{"rate_per_s": _at(NEWS_TAKER_RATE_PER_S, x), "edge_price": 100,
                         "size_contracts_min": 30, "size_contracts_max": 100}],
        "competing_makers": [
            {"half_spread_price": 300, "ceiling_edge_price": MAKER_EDGE_PRICE, "penny": True,
             "size_contracts": MAKER_SIZE_CONTRACTS},
            {"half_spread_price": 300, "ceiling_edge_price": MAKER_EDGE_PRICE, "penny": False,
             "requote_min_s": 10.0, "follows_books": True, "size_contracts": MAKER_SIZE_CONTRACTS},
        ],
    }
    return Dial(x, truth, participants)


__all__ = ["Dial", "LEVELS", "MAX_LEVEL", "dial", "level_of"]
