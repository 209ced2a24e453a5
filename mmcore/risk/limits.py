"""Per-game and aggregate limits, and sizing a quote so the limits stay hard.

Units: counts in centi-contracts (``CONTRACT`` = 1 contract), money in price units ($0.0001).

Rules of this file:

* The **hard bound** per game is ``liquidity_fraction × available liquidity``, floored at
  ``min_contracts`` and capped at ``max_contracts`` (the sport constant: we should never hold more
  than a fraction of what the book could absorb when we need out). The soft bound is half of it.
* :func:`cap_size` sizes a candidate so that with **every** resting order on the adding side
  filling at once plus the candidate, the directional exposure (``|q_E|`` for two outcomes, ``|d_o|``
  of :mod:`mmcore.risk.exposure` for more) stays within the hard bound, the worst-case settlement
  loss over **every** settlement outcome (including a draw that settles both markets NO, or a
  void at a set value, when the game's rules allow one: :class:`~mmcore.game.GameBook`) within
  ``max_loss_money``, and the aggregate worst-case loss within the config's cap
  (design §2: "Worst-case headroom includes resting orders"; "Inventory at game start is the
  binding risk" — positions ride into the game, so the settlement loss is what is limited).
* Constraints bind only in the direction the candidate pushes: an order that reduces risk is never
  cut because the game is already past a bound, but it cannot flip the exposure past the other one.
* ``resting`` must not contain the order the candidate replaces (an amend is sized as if the old
  order were cancelled).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from mmcore.errors import ConfigError, InputError
from mmcore.orders import Quote
from mmcore.risk.exposure import (
    GameBook,
    GamePosition,
    Order,
    WorstCase,
    bounds_and_worst,
    candidate_terms,
    exposure_vector_bounds,
    order_fields,
    scaled_direction,
    worst_case,
)
from mmcore.units import CONTRACT


@dataclass(frozen=True, slots=True)
class SportLimits:
    """Per-game limits of one sport (frozen config; counts in centi-contracts, money in $0.0001)."""

    liquidity_fraction: float
    min_contracts: int
    max_contracts: int
    max_loss_money: int
    sport_max_loss_money: int | None = None
    """Worst-case loss of all running games of this sport together (money); None: only the
    account's aggregate cap applies. One bad night in one league (a shared officiating or news
    shock) hits every game of it at once, so the sport gets its own cap below the aggregate."""

    def __post_init__(self) -> None:
        f = self.liquidity_fraction
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0:
            raise ConfigError(f"liquidity_fraction must be in [0, 1], got {f!r}")
        for name in ("min_contracts", "max_contracts", "max_loss_money"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{name} must be a non-negative int, got {v!r}")
        if self.min_contracts > self.max_contracts:
            raise ConfigError(f"min_contracts {self.min_contracts} > max_contracts {self.max_contracts}")
        v = self.sport_max_loss_money
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ConfigError(f"sport_max_loss_money must be a non-negative int or None, got {v!r}")


_USD = 10_000  # $1 in money units
MAJOR_LIMITS = SportLimits(0.25, 10 * CONTRACT, 500 * CONTRACT, 200 * _USD, 500 * _USD)
"""NBA/NFL: deep books and tight consensus; up to 500 contracts, $200 worst-case loss a game,
$500 over all games of the league (half the account's aggregate)."""
MID_LIMITS = SportLimits(0.20, 10 * CONTRACT, 300 * CONTRACT, 150 * _USD, 400 * _USD)
"""MLB/NHL/EPL: liquid but thinner (and soccer has a draw); up to 300 contracts, $150 a game,
$400 over the league."""
NICHE_LIMITS = SportLimits(0.10, 5 * CONTRACT, 100 * CONTRACT, 50 * _USD, 150 * _USD)
"""Everything else (MMA, tennis, minor soccer, college): thin books and noisier theo, so a
smaller share of the book, a 100-contract cap, $50 a game and $150 over the sport. Unknown
sports fall back to this (each unknown sport key is its own sport for the sport cap)."""

DEFAULT_SPORT_LIMITS: Mapping[str, SportLimits] = {
    "basketball_nba": MAJOR_LIMITS,
    "americanfootball_nfl": MAJOR_LIMITS,
    "baseball_mlb": MID_LIMITS,
    "icehockey_nhl": MID_LIMITS,
    "soccer_epl": MID_LIMITS,
}
DEFAULT_AGGREGATE_MAX_LOSS_MONEY = 1_000 * _USD
DEFAULT_AGGREGATE_MAX_CONTRACTS = 2_000 * CONTRACT


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """Limits per sport (Odds API sport key), the fallback, and caps across all games."""

    sports: Mapping[str, SportLimits]
    default: SportLimits
    aggregate_max_loss_money: int
    aggregate_max_contracts: int

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LimitConfig:
        """Build from plain data; missing keys take the module defaults, unknown keys are errors.

        ``sports`` entries are merged over :data:`DEFAULT_SPORT_LIMITS`; each entry may give only
        some fields, the rest coming from that sport's default (or ``default``).
        """
        _reject_unknown(raw, {f.name for f in fields(cls)}, "limits")
        default = _sport(raw.get("default", {}), NICHE_LIMITS, "limits.default")
        sports = dict(DEFAULT_SPORT_LIMITS)
        raw_sports = raw.get("sports", {})
        if not isinstance(raw_sports, Mapping):
            raise ConfigError("limits.sports must be a mapping of sport key to limits")
        for key, entry in raw_sports.items():
            sports[key] = _sport(entry, sports.get(key, default), f"limits.sports.{key}")
        agg_loss = raw.get("aggregate_max_loss_money", DEFAULT_AGGREGATE_MAX_LOSS_MONEY)
        agg_contracts = raw.get("aggregate_max_contracts", DEFAULT_AGGREGATE_MAX_CONTRACTS)
        for name, v in (("aggregate_max_loss_money", agg_loss), ("aggregate_max_contracts", agg_contracts)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"limits.{name} must be a non-negative int, got {v!r}")
        return cls(sports, default, agg_loss, agg_contracts)


def _reject_unknown(raw: object, allowed: set[str], where: str) -> None:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


def _sport(raw: object, base: SportLimits, where: str) -> SportLimits:
    _reject_unknown(raw, {f.name for f in fields(SportLimits)}, where)
    assert isinstance(raw, Mapping)
    try:
        return replace(base, **raw)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


DEFAULT_LIMIT_CONFIG = LimitConfig(
    DEFAULT_SPORT_LIMITS, NICHE_LIMITS, DEFAULT_AGGREGATE_MAX_LOSS_MONEY, DEFAULT_AGGREGATE_MAX_CONTRACTS
)


@dataclass(frozen=True, slots=True)
class GameLimit:
    """Limits of one game: hard and soft directional bounds (centi-contracts), max loss (money)."""

    hard_contracts: int
    soft_contracts: int
    max_loss_money: int


def available_liquidity(book_tops_sizes: Iterable[int]) -> int:
    """Liquidity (centi-contracts) our game bound is a fraction of.

    The caller passes the resting sizes of *other* participants near the top (e.g. within 3 ticks
    of the best price, both sides, every market of the game; our own orders excluded, since we
    cannot exit into ourselves). This sums them, refusing negative sizes.
    """
    total = 0
    for size in book_tops_sizes:
        if size < 0:
            raise InputError(f"negative book size {size}")
        total += size
    return total


def game_limit(sport_key: str, available_liquidity_contracts: int, cfg: LimitConfig) -> GameLimit:
    """Hard bound = clamp(fraction × liquidity, min, max) of the sport (fallback: ``cfg.default``)."""
    if available_liquidity_contracts < 0:
        raise InputError(f"negative liquidity {available_liquidity_contracts}")
    lim = cfg.sports.get(sport_key, cfg.default)
    raw = math.floor(lim.liquidity_fraction * available_liquidity_contracts)
    hard = min(lim.max_contracts, max(lim.min_contracts, raw))
    return GameLimit(hard, hard // 2, lim.max_loss_money)


def headroom(side_adds: bool, bounds: tuple[int, int], hard_contracts: int) -> int:
    """Centi-contracts more that one side may rest before the hard bound (two-outcome games).

    ``bounds`` is :func:`~mmcore.risk.exposure.worst_case_inventory` (max q_E, min q_E), so it
    already counts every resting order. A side that adds to q_E has ``hard − max``, the other
    ``hard + min``; never negative.
    """
    q_max, q_min = bounds
    return max(0, hard_contracts - q_max) if side_adds else max(0, hard_contracts + q_min)


def cap_quotes(
    book: GameBook,
    pos: GamePosition,
    live: Iterable[Order],
    quotes: Iterable[Quote],
    limit: GameLimit,
    *,
    min_size: int,
    pinned: Iterable[Order] = (),
    cfg: LimitConfig | None = None,
    others: OtherGames | None = None,
    sport: str | None = None,
    need: list[int] | None = None,
) -> tuple[tuple[Quote, ...], tuple[str, ...]]:
    """Any strategy's desired quotes cut by :func:`cap_size` the way the gate judges them; (quotes
    kept, notes on each cut or drop).

    Why: the gate refuses an adding order whose worst-case fill passes a limit, whole; a strategy
    that sizes without our limits (the baselines) would otherwise have its adding sides refused
    rather than cut, and ours sizes before the worker knows what is in flight. So the cap applies
    *after* the strategy, on what is about to be reconciled. A quote is sized as if the ``live``
    orders in its own slot were replaced (amended: the gate's rule too) and every other order
    that could still fill counted at its worst: ``live`` orders of other slots and ``pinned``
    ones (unconfirmed cancels, actions in flight or unacknowledged), whatever their slot.
    Risk-reducing sides are sized first, then each kept quote counts for the next; a quote cut
    below ``min_size`` (centi-contracts) is dropped. Fee 0, as the gate checks.

    ``need`` (a list, for memoising callers): when nothing was cut or dropped (no notes), the
    least ``limit.hard_contracts`` giving the same result is appended (:func:`cap_size`'s).
    """
    by_slot: dict[tuple[str, str], list[Order]] = {}
    for o in live:
        market, side, _, _ = order_fields(o)
        by_slot.setdefault((market, side), []).append(o)
    fixed = list(pinned)
    own = scaled_direction(book, pos.positions)

    def reduces(q: Quote) -> bool:  # a fill moves the market's own d_i toward 0
        d = own[book.index(q.market)]
        return d < 0 if q.side == "bid" else d > 0

    out: list[Quote] = []
    notes: list[str] = []
    needs: list[int] | None = [] if need is not None else None
    for q in sorted(quotes, key=lambda q: not reduces(q)):
        others_resting = [*fixed, *(o for slot, orders in by_slot.items() if slot != q.slot
                                    for o in orders)]
        count, reason = cap_size(book, pos, others_resting, q, limit, cfg=cfg, others=others,
                                 sport=sport, need=needs)
        if count < q.count:
            notes.append(f"cap {q.market} {q.side}: {reason}")
        if count < min_size or count == 0:
            notes.append(f"cap {q.market} {q.side}: {count} below minimum {min_size}, not quoted")
            continue
        kept = q if count == q.count else Quote(q.market, q.side, q.price, count)
        out.append(kept)
        by_slot[q.slot] = [kept]
    if need is not None and needs is not None and not notes:
        need.append(max(needs, default=0))
    return tuple(out), tuple(notes)


def cap_quotes_ranged(
    book: GameBook, pos: GamePosition, live: Iterable[Order], quotes: Iterable[Quote],
    limit: GameLimit, **kw: Any,
) -> tuple[tuple[tuple[Quote, ...], tuple[str, ...]], int, float]:
    """:func:`cap_quotes` (same arguments), and the range of ``limit.hard_contracts`` over which
    its result is the same (for :meth:`~mmcore.quoting.memo.Memo.get_ranged`): from the least
    bound every quote still passes uncut up when nothing was cut or dropped, else this bound
    alone (a note may name it). Only the hard check reads the bound."""
    need: list[int] = []
    result = cap_quotes(book, pos, live, quotes, limit, need=need, **kw)
    if need:
        return result, need[0], math.inf
    return result, limit.hard_contracts, limit.hard_contracts


def aggregate_worst_loss(games: Iterable[WorstCase]) -> int:
    """Sum over games of the worst-case settlement loss (money); profits do not offset losses."""
    return sum(g.worst_loss for g in games)


@dataclass(frozen=True, slots=True)
class OtherGames:
    """What the account's *other* running games use (from the account ledger,
    :mod:`mmcore.risk.account`): their summed worst-case settlement loss counting resting orders
    (money), their summed largest ``|d_o|`` counting resting orders (centi-contracts), and the
    summed worst-case loss of those of this game's sport (money)."""

    worst_loss_money: int = 0
    contracts: int = 0
    sport_worst_loss_money: int = 0


def game_usage(book: GameBook, pos: GamePosition, resting: Iterable[Order]) -> tuple[int, int]:
    """(worst-case settlement loss in money, largest ``|d_o|`` in centi-contracts) of one game
    with every resting order at its worst: what it takes of the account's aggregate caps."""
    orders = list(resting)
    lo, hi = exposure_vector_bounds(book, pos.positions, orders)
    return worst_case(book, pos, orders).worst_loss, max(max(hi), -min(lo))


def _gross(lo: tuple[int, ...], hi: tuple[int, ...], k: int) -> int:
    """Largest |d_o| over outcomes and fills, in centi-contracts (rounded up)."""
    return -(-max(max(hi), -min(lo)) // k)


def cap_size(
    book: GameBook,
    pos: GamePosition,
    resting: Iterable[Order],
    candidate: Quote,
    limit: GameLimit,
    *,
    aggregate_used_loss: int = 0,
    aggregate_used_contracts: int = 0,
    cfg: LimitConfig | None = None,
    fee_per_contract: int = 0,
    others: OtherGames | None = None,
    sport: str | None = None,
    need: list[int] | None = None,
) -> tuple[int, str | None]:
    """Largest count ≤ ``candidate.count`` that keeps the game's limits hard; (count, reason if cut).

    Checks, with every resting order and the candidate counted at their worst: (a) directional
    exposure within ``limit.hard_contracts``; (b) worst-case loss within ``limit.max_loss_money``;
    and, when ``cfg`` is given, (c) ``aggregate_used_loss`` (all games' worst-case losses, this
    one included, money) plus this game's increase within ``cfg.aggregate_max_loss_money`` and
    (d) ``aggregate_used_contracts`` plus the increase of this game's largest ``|d_o|`` within
    ``cfg.aggregate_max_contracts``. A whole-contract candidate is cut to whole contracts.
    ``fee_per_contract`` (money per contract) is charged on every order in the worst case.

    ``others`` (the other running games, from the account ledger) adds to the used amounts this
    game's own current use, measured on the same ``pos`` and ``resting`` as the candidate — so an
    amend, sized without the order it replaces, is not counted twice — and, with ``sport`` (this
    game's sport key), checks (e) the sport's worst-case loss within
    ``sport_max_loss_money`` of that sport. Like every check here these bind only on an increase:
    a risk-reducing order always passes, however far over a cap the account already is.

    ``need`` (a list, for memoising callers): when the candidate passes uncut, the least
    ``limit.hard_contracts`` under which it still would is appended — the result is then the
    same (count, None) for every hard bound from there up (only the hard check reads the bound;
    the loss and aggregate checks do not); nothing is appended when it is cut.
    """
    market, side, price, count = order_fields(candidate)
    if count == 0:
        return 0, None
    n1 = book.scale  # d_o is kept scaled by this (``n − 1`` for a plain game)
    # scaled_direction, scaled_bounds and worst_case of the resting orders, in one pass
    own, lo, hi, base_pnl = bounds_and_worst(book, pos, resting, fee_per_contract)
    # the candidate's unit direction, the outcomes in check order (those it pushes up are
    # checked and named before those it pushes down), its market's value in each outcome
    unit_dir, order, values = candidate_terms(book, market, side)
    base_loss = max(0, -min(base_pnl))  # worst_case(...).worst_loss
    gross0 = -(-max(max(hi), -min(lo)) // n1)  # _gross(lo, hi, n1)

    sport_cap: int | None = None
    sport_used = 0
    if others is not None:
        aggregate_used_loss += others.worst_loss_money + base_loss
        aggregate_used_contracts += others.contracts + gross0
        if cfg is not None and sport is not None:
            sport_cap = cfg.sports.get(sport, cfg.default).sport_max_loss_money
            sport_used = others.sport_worst_loss_money + base_loss
    hard = n1 * limit.hard_contracts
    max_loss = limit.max_loss_money

    def failure(k: int) -> str | None:
        for o in order:
            d = unit_dir[o] * k
            if (d > 0 and hi[o] + d > hard) or (d < 0 and lo[o] + d < -hard):
                inv, rest = (own[o], hi[o] - own[o]) if d > 0 else (-own[o], own[o] - lo[o])
                return (
                    f"hard limit {limit.hard_contracts} on {book.outcome_name(o)} with inventory "
                    f"{inv // n1} and {-(-rest // n1)} resting on the adding side"
                )
        # order_pnl(book, market, side, price, k, fees) and each outcome's worst case with it
        fees = -(-fee_per_contract * k // CONTRACT)
        signed = k if side == "bid" else -k
        contrib = [(signed * (v - price)) // CONTRACT - fees for v in values]
        wc = [b + c if c < 0 else b for b, c in zip(base_pnl, contrib)]
        for o, c in enumerate(contrib):
            if c < 0 and wc[o] < -max_loss:
                return (
                    f"max loss {limit.max_loss_money} if {book.outcome_name(o)} "
                    f"(worst case already {-base_pnl[o]} with resting orders)"
                )
        if cfg is not None:
            increase = max(0, -min(wc)) - base_loss
            if increase > 0 and aggregate_used_loss + increase > cfg.aggregate_max_loss_money:
                return f"aggregate max loss {cfg.aggregate_max_loss_money} with {aggregate_used_loss} used"
            if increase > 0 and sport_cap is not None and sport_used + increase > sport_cap:
                return f"sport {sport} max loss {sport_cap} with {sport_used} used"
            d_hi = tuple(h + max(0, u * k) for h, u in zip(hi, unit_dir))
            d_lo = tuple(l_ + min(0, u * k) for l_, u in zip(lo, unit_dir))
            grew = _gross(d_lo, d_hi, n1) - gross0
            if grew > 0 and aggregate_used_contracts + grew > cfg.aggregate_max_contracts:
                return (
                    f"aggregate max contracts {cfg.aggregate_max_contracts} "
                    f"with {aggregate_used_contracts} used"
                )
        return None

    if failure(count) is None:
        if need is not None:  # the least hard bound that still passes every outcome's check
            least = 0
            for o in order:
                d = unit_dir[o] * count
                if d:
                    x = hi[o] + d if d > 0 else -(lo[o] + d)
                    least = max(least, -(-x // n1))
            need.append(least)
        return count, None
    # Largest passing multiple of step; the result itself is always checked, so safety does not
    # depend on the constraints being monotone in k (they are, up to fee rounding).
    step = CONTRACT if count % CONTRACT == 0 else 1
    good, bad = 0, count // step  # invariant: good*step passes (0 always does), bad*step fails
    while bad - good > 1:
        mid = (good + bad) // 2
        if failure(mid * step) is None:
            good = mid
        else:
            bad = mid
    return good * step, f"cut {count}→{good * step}: {failure(bad * step)}"
