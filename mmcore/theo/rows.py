"""Record rows of one odds request (pure): what each book priced, the consensus theo, and what was
published to the workers — in the columns of :mod:`mmcore.record.store` (``book_prices``,
``theos``, ``theo_snapshots``).

Units: decimal odds as the API sent them (> 1.0); probabilities in [0, 1]; ages in seconds;
times integer ns since the epoch. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mmcore.odds.consensus import EventTheo
from mmcore.odds.events import EventOdds, Rejection
from mmcore.theo.snapshot import TheoSnapshot

NS = 1_000_000_000
Row = dict[str, Any]


def book_price_rows(pull_id: str, event: EventOdds, theo: EventTheo, fetched_ns: int) -> list[Row]:
    """One row per (book, outcome) of a parsed event: decimal odds, the book's de-vigged fair
    probability and consensus weight when it was used, else why it was dropped."""
    fair = {b.book: b for b in theo.books}
    reasons: dict[str, str] = {}
    for r in theo.dropped:
        if r.book is not None:
            reasons.setdefault(r.book, r.reason)
    rows: list[Row] = []
    for line in event.books:
        used = fair.get(line.book)
        age_s = used.age_s if used is not None else (
            None if line.last_update_ns is None else max(0.0, (fetched_ns - line.last_update_ns) / NS))
        booksum = sum(1.0 / p for p in line.prices)
        for i, name in enumerate(event.outcomes):
            rows.append({
                "pull_id": pull_id, "event_id": event.event_id, "sport_key": event.sport_key,
                "commence_ns": event.commence_ns, "book": line.book, "outcome": name,
                "outcome_index": i, "decimal_odds": line.prices[i],
                "fair_prob": used.probs[i] if used is not None else None, "booksum": booksum,
                "age_s": age_s, "weight": used.weight if used is not None else None,
                "last_update_ns": line.last_update_ns, "used": used is not None,
                "dropped_reason": reasons.get(line.book),
            })
    return rows


def rejection_rows(pull_id: str, sport_key: str | None, rejections: Iterable[Rejection],
                   events: Mapping[str, EventOdds]) -> list[Row]:
    """Books (or whole events, ``book`` NULL) the parser refused: one row each, not used."""
    rows: list[Row] = []
    for r in rejections:
        ev = events.get(r.event_id or "")
        rows.append({"pull_id": pull_id, "event_id": r.event_id,
                     "sport_key": ev.sport_key if ev is not None else sport_key,
                     "commence_ns": ev.commence_ns if ev is not None else None, "book": r.book,
                     "used": False, "dropped_reason": f"parse: {r.reason}"})
    return rows


def theo_rows(pull_id: str, theo: EventTheo, as_of_ns: int, method: str) -> list[Row]:
    """One row per outcome: the consensus theo (NULL with ``reason`` when unpriced)."""
    return [{
        "pull_id": pull_id, "event_id": theo.event_id, "sport_key": theo.sport_key,
        "commence_ns": theo.commence_ns, "outcome": name, "outcome_index": i,
        "theo": theo.theo[i] if theo.theo is not None else None,
        "uncertainty": theo.uncertainty[i] if theo.uncertainty is not None else None,
        "confidence": theo.confidence, "mode": theo.mode, "anchor": theo.anchor,
        "books": len(theo.books), "method": method, "as_of_ns": as_of_ns, "reason": theo.reason,
    } for i, name in enumerate(theo.outcomes)]


def snapshot_rows(pull_id: str, snap: TheoSnapshot) -> list[Row]:
    """One row per Kalshi market of a published snapshot."""
    return [{"pull_id": pull_id, "event_ticker": snap.event_ticker, "market": market,
             "theo": prob, "uncertainty": snap.uncertainty.get(market), "confidence": snap.confidence,
             "as_of_ns": snap.as_of_ns, "source": snap.source}
            for market, prob in sorted(snap.markets.items())]
