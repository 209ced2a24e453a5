"""Turn an Odds API payload into the theo report that ``mm theo`` prints (plain JSON-able dicts).

Pure: payload + the pull time + consensus parameters in, dict out. The same report feeds the
operator's CLI, the demo and (later) the per-game theo snapshot files the workers read.
"""

from __future__ import annotations

from typing import Any

from mmcore.models import ns_to_iso
from mmcore.odds.consensus import ConsensusParams, EventTheo, consensus_theo
from mmcore.odds.events import EventOdds
from mmcore.odds.parse import ParsedOdds, latest_update_ns, parse_odds


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(x, nd)


def event_report(event: EventOdds, theo: EventTheo, parse_rejections: list[dict[str, Any]]) -> dict[str, Any]:
    outcomes = []
    for i, name in enumerate(event.outcomes):
        outcomes.append(
            {
                "name": name,
                "theo": _r(theo.theo[i]) if theo.theo else None,
                "uncertainty": _r(theo.uncertainty[i]) if theo.uncertainty else None,
                "books": {b.book: _r(b.probs[i]) for b in theo.books},
            }
        )
    dropped = parse_rejections + [{"book": r.book, "reason": r.reason} for r in theo.dropped]
    return {
        "event_id": event.event_id,
        "sport_key": event.sport_key,
        "commence_time": ns_to_iso(event.commence_ns) if event.commence_ns is not None else None,
        "home_team": event.home_team,
        "away_team": event.away_team,
        "mode": theo.mode,
        "anchor": theo.anchor,
        "confidence": _r(theo.confidence, 4),
        "reason": theo.reason,
        "outcomes": outcomes,
        "weights": {b.book: _r(b.weight, 4) for b in theo.books},
        "dropped": dropped,
    }


def theo_report(
    payload: Any, *, now_ns: int | None = None, params: ConsensusParams = ConsensusParams(),
    not_after_ns: int | None = None,
) -> dict[str, Any]:
    """Parse, de-vig and blend every event of a payload.

    ``now_ns`` is the pull time used to age books; for a saved file without one, the newest
    ``last_update`` at or before ``not_after_ns`` stands in (the file was fetched at or after
    it, and not after the moment it is read: pass the wall clock). Never the newest stamp
    alone: one book dated 2099 would make every other book stale. Books dated after the as-of
    time (beyond ``params.max_future_s``) are dropped with their reason.
    """
    parsed: ParsedOdds = parse_odds(payload)
    source = "pull time"
    as_of = now_ns
    if as_of is None:
        as_of, source = latest_update_ns(parsed.events, not_after_ns), "newest last_update"
        if not_after_ns is not None:
            source += " not after the wall clock"
    if as_of is None and not_after_ns is not None:
        as_of, source = not_after_ns, "wall clock"
    if as_of is None:
        as_of, source = 0, "none"
    events = []
    for event in parsed.events:
        theo = consensus_theo(event, as_of, params)
        book_rejections = [
            {"book": r.book, "reason": r.reason}
            for r in parsed.rejections_for(event.event_id)
            if r.book is not None
        ]
        events.append(event_report(event, theo, book_rejections))
    rejected = [
        {
            "event_id": r.event_id,
            "reason": r.reason,
            "books": [
                {"book": b.book, "reason": b.reason}
                for b in parsed.rejections
                if b.book is not None and b.event_id == r.event_id and r.event_id is not None
            ],
        }
        for r in parsed.rejections
        if r.book is None
    ]
    return {
        "method": params.method,
        "as_of": ns_to_iso(as_of) if as_of else None,
        "as_of_from": source,
        "events": events,
        "rejected_events": rejected,
    }
