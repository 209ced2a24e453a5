"""The game model: what is fixed about a game while it is quoted, and its directional inventory.

Below both :mod:`mmcore.quoting` and :mod:`mmcore.risk` (both import it, it imports neither).

A game (Kalshi event) has ``n`` binary markets, one per listed outcome (two for NBA/NFL/NHL/MLB,
three for soccer with the tie market), and ``N ≥ n`` settlement outcomes: "market ``i`` wins"
for each market, plus the **extra outcomes** the series rules allow (issue 10 item 8): "none of
the listed markets" (a draw in a 2-way soccer listing: every market settles NO) or a void at a
set value (every market settles at e.g. $0.50). Holding YES on both teams is riskless only when
there is no extra outcome. :func:`extra_outcomes_from_rules` derives them from the market fields.

Directional exposure over the ``N`` outcomes is ``d_o = payoff_o − mean(payoff_o' for o' ≠ o)``
(payoffs in contracts); for two outcomes ``d_A = q_E = pos_A − pos_B``. It is kept scaled by
:attr:`GameBook.scale` (``N − 1`` when every settlement value is $0 or $1, so
``D_o = N·pos_o − Σ pos`` without extras) so that it stays an exact integer. Long 10 A + 10 B
with a "none" outcome: ``d = (5, 5, −10)``. Units: counts and positions in centi-contracts,
settlement values in price units ($0.0001 per YES contract).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mmcore.errors import InputError
from mmcore.fees import FeeSchedule
from mmcore.ticks import TickGrid
from mmcore.units import PRICE_ONE

Settlement = tuple[int, ...]
"""Settlement value of every market of a game (price units per YES contract), in market order."""


@dataclass(frozen=True, slots=True)
class GameBook:
    """Static description of a game: one market ticker per listed outcome, in outcome order, and
    the extra settlement outcomes (see the module docstring), each as one :data:`Settlement`.

    Outcomes are indexed ``0..n−1`` ("market i wins") then ``n..N−1`` (the extras, in order)."""

    markets: tuple[str, ...]
    extra_outcomes: tuple[Settlement, ...] = ()

    def __post_init__(self) -> None:
        if len(self.markets) < 2:
            raise InputError(f"a game needs at least two outcome markets, got {self.markets!r}")
        if len(set(self.markets)) != len(self.markets):
            raise InputError(f"duplicate market in game: {self.markets!r}")
        for extra in self.extra_outcomes:
            if len(extra) != len(self.markets) or not all(
                    isinstance(v, int) and 0 <= v <= PRICE_ONE for v in extra):
                raise InputError(f"extra outcome {extra!r}: one value in [0, {PRICE_ONE}] per market "
                                 f"of {self.markets!r}")
        if len(set(self.extra_outcomes)) != len(self.extra_outcomes):
            raise InputError(f"duplicate extra outcome in {self.extra_outcomes!r}")

    @property
    def n(self) -> int:
        """Number of markets (listed outcomes)."""
        return len(self.markets)

    @property
    def n_outcomes(self) -> int:
        """Number of settlement outcomes ``N``: the markets plus the extra outcomes."""
        return len(self.markets) + len(self.extra_outcomes)

    def settlement(self, outcome: int) -> Settlement:
        """Settlement value of every market (price units) if ``outcome`` happens."""
        if outcome < self.n:
            return tuple(PRICE_ONE if m == outcome else 0 for m in range(self.n))
        return self.extra_outcomes[outcome - self.n]

    def outcome_name(self, outcome: int) -> str:
        """``"<market> wins"``, ``"none of the markets wins"`` or ``"void at …"`` (for reasons)."""
        if outcome < self.n:
            return f"{self.markets[outcome]} wins"
        values = self.extra_outcomes[outcome - self.n]
        if not any(values):
            return "none of the markets wins"
        return "void at " + "/".join(f"{v / PRICE_ONE:.4g}" for v in values)

    @property
    def scale(self) -> int:
        """``(N − 1) × PRICE_ONE / g``, ``g`` = gcd of $1 and every settlement value: the factor
        that keeps ``(scale) × d_o`` an exact integer (``n − 1`` for a plain game)."""
        if not self.extra_outcomes:  # every event asks for it several times
            return len(self.markets) - 1
        return (self.n_outcomes - 1) * (PRICE_ONE // self._value_gcd())

    def _value_gcd(self) -> int:
        g = PRICE_ONE
        for extra in self.extra_outcomes:
            for v in extra:
                g = math.gcd(g, v)
        return g

    def direction_matrix(self) -> tuple[tuple[int, ...], ...]:
        """``C[o][m]``: change of ``scale × d_o`` per centi-contract of YES held on market ``m``."""
        g = self._value_gcd()
        w = [[v // g for v in self.settlement(o)] for o in range(self.n_outcomes)]
        col = [sum(w[o][m] for o in range(self.n_outcomes)) for m in range(self.n)]
        big_n = self.n_outcomes
        return tuple(tuple(big_n * w[o][m] - col[m] for m in range(self.n)) for o in range(big_n))

    def index(self, market: str) -> int:
        """Outcome index of ``market``; InputError for a market of another game."""
        try:
            return self.markets.index(market)
        except ValueError:
            raise InputError(f"market {market!r} is not in game {self.markets!r}") from None


def settlement_matrix(book: GameBook) -> tuple[Settlement, ...]:
    """``book.settlement(o)`` for every outcome ``o`` (built once per game shape: sizing asks
    for it several times per candidate order)."""
    return _settlement_matrix(len(book.markets), book.extra_outcomes)


@functools.lru_cache(maxsize=256)
def _settlement_matrix(n: int, extra_outcomes: tuple[Settlement, ...]) -> tuple[Settlement, ...]:
    return tuple(tuple(PRICE_ONE if m == o else 0 for m in range(n)) for o in range(n)) + extra_outcomes


def position_vector(book: GameBook, positions: Mapping[str, int]) -> tuple[int, ...]:
    """Positions in outcome order (centi-contracts); InputError for a market of another game."""
    markets = book.markets
    for market in positions:
        if market not in markets:
            book.index(market)  # raises for the first market of another game
    get = positions.get
    return tuple([get(m, 0) for m in markets])


def scaled_direction(book: GameBook, positions: Mapping[str, int]) -> tuple[int, ...]:
    """``book.scale × d_o`` per outcome (all ``N``) for a position (centi-contracts, exact)."""
    vec = position_vector(book, positions)
    if not book.extra_outcomes:  # the common case, without building the matrix
        total, n = sum(vec), len(vec)
        return tuple([n * q - total for q in vec])
    return tuple(sum(c * q for c, q in zip(row, vec)) for row in book.direction_matrix())


@dataclass(frozen=True, slots=True)
class GameSpec:
    """What is fixed about a game while it is quoted."""

    event_ticker: str
    sport_key: str
    markets: tuple[str, ...]
    """One market per outcome, in the order of ``theo``."""
    grids: tuple[TickGrid, ...]
    fees: FeeSchedule
    start_ns: int
    extra_outcomes: tuple[Settlement, ...] = ()
    """Settlement outcomes beyond "one market wins" the series rules allow (see :class:`GameBook`)."""

    @property
    def book(self) -> GameBook:
        return _game_book(self.markets, self.extra_outcomes)


@functools.lru_cache(maxsize=1024)
def _game_book(markets: tuple[str, ...], extra_outcomes: tuple[Settlement, ...]) -> GameBook:
    """One (immutable) :class:`GameBook` per game: the worker asks for it several times per
    event, and building one validates the outcomes again."""
    return GameBook(markets, extra_outcomes)


def directional_inventory(book: GameBook, positions: Mapping[str, int]) -> tuple[int, ...]:
    """``d_o`` per outcome (all ``N``: the markets, then the extras) in centi-contracts (rounded
    toward zero for 3+ outcomes). Index ``i < n`` is market ``i``'s inventory for quoting."""
    k = book.scale
    return tuple([int(x / k) for x in scaled_direction(book, positions)])


# --- extra outcomes from the series rules -----------------------------------------------------

TIE_SUFFIX = "-TIE"
_TIE_NO = re.compile(r"\b(?:tie|tied|draw|drawn)\b[^.]*\bresolves?\s+to\s+no\b", re.I)
_VOID_AT = re.compile(
    r"\b(?:postponed|cancell?ed|void(?:ed)?|abandoned)\b[^.]*?\b(?:resolves?|settles?)\s+(?:to|at)\s+"
    r"\$?(0?\.\d{1,4}|[01](?:\.\d{1,4})?)\b", re.I)


def extra_outcomes_from_rules(sport_key: str, markets: Iterable[str],
                              rules: Iterable[str]) -> tuple[Settlement, ...]:
    """The extra settlement outcomes of a game, from what the venue lists (pure, never guessed up).

    - **None of the markets** (every market NO): a soccer (three-way) game listed without its
      ``-TIE`` market, or rules text saying a tie/draw resolves to No (``"If the match ends in a
      draw, the market resolves to No."``) while no tie market is listed.
    - **Void at a set value**: rules text saying a postponed/cancelled/void game resolves (or
      settles) to a dollar value, e.g. ``"… canceled, the market resolves to $0.50."`` → every
      market at 5000. "Resolves per the contract terms" names no value and adds nothing.

    ``rules`` are the markets' ``rules_primary``/``rules_secondary`` texts.
    """
    tickers = tuple(markets)
    n = len(tickers)
    has_tie = any(t.upper().endswith(TIE_SUFFIX) for t in tickers)
    texts = [t for t in rules if t]
    out: list[Settlement] = []
    none = (0,) * n
    if not has_tie and (sport_key.startswith("soccer_") or any(_TIE_NO.search(t) for t in texts)):
        out.append(none)
    for text in texts:
        for found in _VOID_AT.finditer(text):
            value = round(float(found.group(1)) * PRICE_ONE)
            if 0 <= value <= PRICE_ONE:
                void = (value,) * n
                if void not in out:
                    out.append(void)
    return tuple(out)
