"""Consensus theo: every usable book's fair probabilities → one Pinnacle-anchored theo per outcome.

Pure: takes an :class:`EventOdds`, the pull time ``now_ns`` and :class:`ConsensusParams`; returns an
:class:`EventTheo` (theo, uncertainty, confidence, per-book fair probabilities and weights, and every
dropped book with its reason). No I/O, no clock.

Algorithm (reference/odds-api.md §4.2), per event:

1. **Gates per book.** Booksum must be ≥ 1 (underround = stale, mixed or an exchange) and ≤ 1.10
   (2-way) / 1.15 (3-way). Age = ``now − last_update``; a book stamped more than
   ``max_future_s`` after the pull is dropped (a clock or data error: it cannot have priced
   after we fetched it), smaller skews clamp to age 0; older than ``max_age_s`` → dropped; for a
   pre-game theo, a book updated at or after the start is in-play.
2. **De-vig** each surviving book with the chosen method (Shin by default).
3. **Reference.** Pinnacle (``anchor_book``) when present — unless it sits more than
   ``anchor_suspect_pp`` from the median of at least ``anchor_check_min_books`` other books, in
   which case it is demoted to an ordinary book (its feed is probably stale). Without a usable
   anchor the reference is the per-outcome median of the books (the documented fallback), and
   at least ``min_books_without_anchor`` books are required, else no theo.
4. **Outliers.** A book is dropped when any outcome is further from the reference than
   ``max(outlier_abs_pp, outlier_mad_mult × 1.4826 × MAD)``.
5. **Blend.** Weights = base weight × ``exp(−age/τ)`` (× ``unknown_age_weight`` when a book gives
   no stamp). With an anchor, the anchor holds ``anchor_share`` of the total (scaled by its own
   freshness) and the rest is shared pro rata; the theo is the weighted mean, renormalised to 1.
   Without an anchor the theo is the weighted median per outcome, renormalised.
6. **Confidence.** ``uncertainty[i] = sqrt(book_sd² + (method_spread/2)²)`` in probability units,
   where book_sd is the weighted dispersion across books and method_spread the width of the
   de-vig model band (multiplicative … power) on the reference book; without an anchor it is
   multiplied by ``no_anchor_penalty``. ``confidence = 1 / (1 + max(uncertainty) / 0.01)``: 1.0
   for a perfectly agreed price, 0.5 at one percentage point of uncertainty. Quoting widens by it.

Monotonicity: weights never depend on prices, so (absent a drop) lengthening one book's price on
an outcome can only lower that outcome's theo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from mmcore.errors import DevigError
from mmcore.odds.devig import Method, band, devig
from mmcore.odds.events import BookLine, EventOdds, Rejection

NS_PER_S = 1_000_000_000

DEFAULT_BOOK_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        # Relative weights among non-anchor books (odds-api.md §4.2 step 5): liquid exchanges and
        # low-margin offshore books count more than US retail books; soft books count little.
        "betfair_ex_eu": 2.0,
        "betfair_ex_uk": 2.0,
        "matchbook": 1.5,
        "betonlineag": 1.5,
        "lowvig": 1.5,
        "draftkings": 1.0,
        "fanduel": 1.0,
        "betmgm": 1.0,
        "williamhill_us": 1.0,
        "betrivers": 0.75,
        "bovada": 0.75,
        "mybookieag": 0.5,
    }
)

Mode = Literal["anchored", "anchor_only", "median", "none"]


@dataclass(frozen=True, slots=True)
class ConsensusParams:
    """Frozen consensus configuration. Times in seconds, probabilities in [0, 1]."""

    method: Method = "shin"
    anchor_book: str = "pinnacle"
    anchor_share: float = 0.55
    book_weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_BOOK_WEIGHTS)
    default_book_weight: float = 0.5
    staleness_tau_s: float = 900.0
    max_age_s: float = 3600.0
    max_future_s: float = 300.0
    unknown_age_weight: float = 0.5
    max_booksum_2way: float = 1.10
    max_booksum_3way: float = 1.15
    outlier_abs_pp: float = 0.03
    outlier_mad_mult: float = 3.0
    anchor_suspect_pp: float = 0.04
    anchor_check_min_books: int = 4
    min_books_without_anchor: int = 3
    no_anchor_penalty: float = 1.5
    pregame: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.anchor_share <= 1.0:
            raise ValueError("anchor_share must be in (0, 1]")
        if self.staleness_tau_s <= 0 or self.max_age_s <= 0:
            raise ValueError("staleness_tau_s and max_age_s must be positive")
        if self.max_future_s < 0:
            raise ValueError("max_future_s must be >= 0")


@dataclass(frozen=True, slots=True)
class BookFair:
    """One book's contribution: fair probabilities (outcome order of the event) and weight."""

    book: str
    probs: tuple[float, ...]
    booksum: float
    age_s: float | None
    weight: float


@dataclass(frozen=True, slots=True)
class EventTheo:
    event_id: str
    sport_key: str | None
    commence_ns: int | None
    outcomes: tuple[str, ...]
    theo: tuple[float, ...] | None
    """Fair probability per outcome (sums to 1), or None when the event cannot be priced."""
    uncertainty: tuple[float, ...] | None
    """Per-outcome uncertainty of the theo, in probability units (an sd-like width)."""
    confidence: float
    """In [0, 1]; 0 when there is no theo. Quoting widens as it falls."""
    mode: Mode
    anchor: str | None
    books: tuple[BookFair, ...]
    dropped: tuple[Rejection, ...]
    reason: str | None = None
    """Why there is no theo (None when there is one)."""


def _median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    mid = n // 2
    return s[mid] if n % 2 else 0.5 * (s[mid - 1] + s[mid])


def _weighted_median(xs: Sequence[float], ws: Sequence[float]) -> float:
    pairs = sorted(zip(xs, ws))
    total = sum(ws)
    acc = 0.0
    for i, (x, w) in enumerate(pairs):
        acc += w
        if acc > total / 2:
            return x
        if acc == total / 2:  # exactly between two values
            return 0.5 * (x + pairs[i + 1][0])
    return pairs[-1][0]


def _normalise(ps: Sequence[float]) -> tuple[float, ...]:
    s = sum(ps)
    return tuple(p / s for p in ps)


@dataclass(slots=True)
class _Candidate:
    line: BookLine
    probs: tuple[float, ...]
    booksum: float
    age_s: float | None
    freshness: float


def _gate(
    event: EventOdds, line: BookLine, now_ns: int, params: ConsensusParams
) -> _Candidate | str:
    """Apply the per-book gates; return the candidate or the reason it was dropped."""
    booksum = sum(1.0 / o for o in line.prices)
    cap = params.max_booksum_3way if event.three_way else params.max_booksum_2way
    if booksum < 1.0 - 1e-12:
        return f"underround (booksum {booksum:.4f} < 1): stale, mixed or exchange prices"
    if booksum > cap:
        return f"booksum {booksum:.4f} above {cap:.2f} (suspended or very soft book)"
    age_s: float | None = None
    freshness = params.unknown_age_weight
    if line.last_update_ns is not None:
        ahead_s = (line.last_update_ns - now_ns) / NS_PER_S
        if ahead_s > params.max_future_s:
            return (f"dated {ahead_s / 60:.0f} min after the pull (max {params.max_future_s / 60:.0f}):"
                    " a clock or data error")
        age_s = max(0.0, -ahead_s)
        if age_s > params.max_age_s:
            return f"stale: last update {age_s / 60:.0f} min before the pull (max {params.max_age_s / 60:.0f})"
        if (
            params.pregame
            and event.commence_ns is not None
            and line.last_update_ns >= event.commence_ns
        ):
            return "updated at or after the start: an in-play price, not a pre-game one"
        freshness = math.exp(-age_s / params.staleness_tau_s)
    try:
        fair = devig(line.prices, params.method)
    except DevigError as exc:
        return f"de-vig ({params.method}) refused: {exc}"
    return _Candidate(line, fair.probs, booksum, age_s, freshness)


def _outliers(
    cands: list[_Candidate], ref: Sequence[float], params: ConsensusParams, keep: str | None
) -> tuple[list[_Candidate], list[tuple[str, str]]]:
    """Split candidates into kept and (book, reason) dropped as outliers against ``ref``."""
    n = len(ref)
    thresholds = []
    for i in range(n):
        col = [c.probs[i] for c in cands]
        med = _median(col)
        mad = _median([abs(x - med) for x in col])
        thresholds.append(max(params.outlier_abs_pp, params.outlier_mad_mult * 1.4826 * mad))
    kept, dropped = [], []
    for c in cands:
        worst = max(range(n), key=lambda i: abs(c.probs[i] - ref[i]) - thresholds[i])
        dev = abs(c.probs[worst] - ref[worst])
        if c.line.book != keep and dev > thresholds[worst]:
            dropped.append(
                (c.line.book, f"outlier: {dev * 100:.1f} pp from the reference on outcome {worst + 1} "
                 f"(limit {thresholds[worst] * 100:.1f} pp)")
            )
        else:
            kept.append(c)
    return kept, dropped


def consensus_theo(
    event: EventOdds, now_ns: int, params: ConsensusParams = ConsensusParams()
) -> EventTheo:
    """Blend the event's books into one theo per outcome (see the module docstring)."""
    dropped: list[Rejection] = []
    cands: list[_Candidate] = []
    for line in event.books:
        got = _gate(event, line, now_ns, params)
        if isinstance(got, str):
            dropped.append(Rejection(event.event_id, line.book, got))
        else:
            cands.append(got)

    def no_theo(reason: str, books: tuple[BookFair, ...] = ()) -> EventTheo:
        return EventTheo(event.event_id, event.sport_key, event.commence_ns, event.outcomes,
                         None, None, 0.0, "none", None, books, tuple(dropped), reason)

    n = len(event.outcomes)
    anchor = next((c for c in cands if c.line.book == params.anchor_book), None)
    others = [c for c in cands if c is not anchor]
    if anchor is not None and len(others) >= params.anchor_check_min_books:
        med = [_median([c.probs[i] for c in others]) for i in range(n)]
        gap = max(abs(anchor.probs[i] - med[i]) for i in range(n))
        if gap > params.anchor_suspect_pp:
            dropped.append(Rejection(
                event.event_id, anchor.line.book,
                f"anchor demoted: {gap * 100:.1f} pp from the median of {len(others)} books "
                "(treated as an ordinary book)"))
            anchor = None

    if anchor is not None:
        ref = anchor.probs
    else:
        if len(cands) < params.min_books_without_anchor:
            return no_theo(
                f"no usable {params.anchor_book} and only {len(cands)} usable book(s) "
                f"(need {params.min_books_without_anchor})"
            )
        ref = tuple(_median([c.probs[i] for c in cands]) for i in range(n))
    cands, outl = _outliers(cands, ref, params, keep=anchor.line.book if anchor else None)
    dropped.extend(Rejection(event.event_id, b, r) for b, r in outl)
    if anchor is None and len(cands) < params.min_books_without_anchor:
        return no_theo(f"only {len(cands)} book(s) left after outlier removal and no anchor")

    base = {c.line.book: params.book_weights.get(c.line.book, params.default_book_weight) for c in cands}
    raw_w = {c.line.book: base[c.line.book] * c.freshness for c in cands}
    if anchor is not None:
        rest = [c for c in cands if c is not anchor]
        rest_total = sum(raw_w[c.line.book] for c in rest)
        if rest and rest_total > 0:
            a = params.anchor_share * anchor.freshness
            a_share = a / (a + (1.0 - params.anchor_share))
        else:
            a_share = 1.0
        weights = {anchor.line.book: a_share}
        for c in rest:
            weights[c.line.book] = (
                (1 - a_share) * raw_w[c.line.book] / rest_total if rest_total > 0 else 0.0
            )
        theo = _normalise([sum(weights[c.line.book] * c.probs[i] for c in cands) for i in range(n)])
        mode: Mode = "anchored" if rest else "anchor_only"
        ref_line = anchor.line
    else:
        total = sum(raw_w.values())
        weights = {b: w / total for b, w in raw_w.items()}
        theo = _normalise([
            _weighted_median([c.probs[i] for c in cands], [weights[c.line.book] for c in cands])
            for i in range(n)
        ])
        mode = "median"
        ref_line = min(cands, key=lambda c: sum(abs(c.probs[i] - theo[i]) for i in range(n))).line

    lo, hi = band(ref_line.prices)
    unc = []
    for i in range(n):
        var = sum(weights[c.line.book] * (c.probs[i] - theo[i]) ** 2 for c in cands)
        u = math.sqrt(var + ((hi[i] - lo[i]) / 2) ** 2)
        unc.append(u * (1.0 if anchor is not None else params.no_anchor_penalty))
    confidence = 1.0 / (1.0 + max(unc) / 0.01)
    books = tuple(
        BookFair(c.line.book, c.probs, c.booksum, c.age_s, weights[c.line.book]) for c in cands
    )
    return EventTheo(event.event_id, event.sport_key, event.commence_ns, event.outcomes,
                     theo, tuple(unc), confidence, mode, anchor.line.book if anchor else None,
                     books, tuple(dropped))
