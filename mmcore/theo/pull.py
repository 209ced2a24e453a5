"""One odds pull: The Odds API → parse → consensus → match to Kalshi games → theo snapshots.

This is what the scheduled Prefect task runs every 30 minutes (and for one game on demand), and
what the demo runs against the local odds server. I/O lives here (the odds client, the snapshot
files); every decision is made by the pure modules it calls.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mmcore.odds.consensus import ConsensusParams, EventTheo, consensus_theo
from mmcore.odds.parse import parse_odds
from mmcore.odds.teams import KalshiGame, MatchReport, match_games
from mmcore.theo.snapshot import TheoSnapshot, snapshots_from, write_snapshot
from mmcore.venues.oddsapi import OddsApiClient

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PullReport:
    sports: list[str] = field(default_factory=list)
    events: int = 0
    priced: int = 0
    snapshots: list[TheoSnapshot] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    credits_remaining: int | None = None


async def pull_theos(
    client: OddsApiClient,
    sports: Sequence[str],
    games: Iterable[KalshiGame],
    directory: Path,
    *,
    params: ConsensusParams = ConsensusParams(),
    event_id: str | None = None,
) -> PullReport:
    """Pull each sport (or one event with ``event_id``, for the first sport), compute theos,
    match them to ``games`` and publish one snapshot per matched game into ``directory``."""
    report = PullReport(sports=list(sports))
    games = list(games)
    theos: list[EventTheo] = []
    events = []
    as_of = 0
    for sport in sports:
        pull = await (client.event_odds(sport, event_id) if event_id else client.odds(sport))
        report.credits_remaining = pull.quota.remaining
        as_of = max(as_of, pull.fetched_ns)
        parsed = parse_odds(pull.payload)
        report.rejections += [f"{r.event_id}:{r.book or '-'}: {r.reason}" for r in parsed.rejections]
        events += parsed.events
        for ev in parsed.events:
            theo = consensus_theo(ev, pull.fetched_ns, params)
            theos.append(theo)
            report.priced += theo.theo is not None
        if event_id:
            break
    report.events = len(events)
    matches: MatchReport = match_games(events, games)
    report.unmatched = [f"{u.event_id or u.event_ticker}: {u.reason}" for u in matches.unmatched]
    fetched = {t.event_id: t for t in theos}
    for snap in snapshots_from(fetched.values(), matches.matched, as_of, params.method):
        write_snapshot(directory, snap)
        report.snapshots.append(snap)
    log.info("odds pull: %d events, %d priced, %d snapshots, %d unmatched",
             report.events, report.priced, len(report.snapshots), len(report.unmatched))
    return report
