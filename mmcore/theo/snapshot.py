"""Per-game theo snapshots: how the odds pull hands fair probabilities to the quoting workers.

The odds pull (every 30 min, or on demand for one game) computes each event's consensus theo,
matches the event to its Kalshi game (:mod:`mmcore.odds.teams`) and publishes one small JSON file
per game, ``<dir>/<event_ticker>.json``, written to a temporary file, fsync'd and renamed into place
— so a worker never reads half a file and never opens the DuckDB database.

File shape (probabilities per Kalshi **market ticker**, so orientation is fixed once, here)::

    {"event_ticker": "...", "markets": {"<market>": 0.61, ...}, "uncertainty": {"<market>": 0.004},
     "confidence": 0.7, "as_of_ns": 1800000000000000000, "source": "odds:<event id>:shin"}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmcore.atomicfile import read_json, write_json_atomic
from mmcore.errors import InputError

if TYPE_CHECKING:  # the publishing side's types: a worker reading snapshots needs neither
    from mmcore.odds.consensus import EventTheo
    from mmcore.odds.teams import GameMatch


@dataclass(frozen=True, slots=True)
class TheoSnapshot:
    event_ticker: str
    markets: Mapping[str, float]
    uncertainty: Mapping[str, float]
    confidence: float
    as_of_ns: int
    source: str

    def probs_for(self, markets: Sequence[str]) -> tuple[float, ...]:
        """Probabilities in the worker's market order; InputError if a market is missing."""
        missing = [m for m in markets if m not in self.markets]
        if missing:
            raise InputError(f"theo snapshot for {self.event_ticker} lacks {missing}")
        return tuple(self.markets[m] for m in markets)

    def uncertainty_for(self, markets: Sequence[str]) -> tuple[float, ...]:
        return tuple(self.uncertainty.get(m, 0.0) for m in markets)

    def to_json(self) -> dict[str, Any]:
        return {"event_ticker": self.event_ticker, "markets": dict(self.markets),
                "uncertainty": dict(self.uncertainty), "confidence": self.confidence,
                "as_of_ns": self.as_of_ns, "source": self.source}


THEO_DIRNAME = "theo"


def theo_dir(data_dir: Path) -> Path:
    """Where the pull publishes and workers read snapshots (``Settings.theo_dir``)."""
    return data_dir / THEO_DIRNAME


def path_for(directory: Path, event_ticker: str) -> Path:
    if not event_ticker or "/" in event_ticker or event_ticker.startswith("."):
        raise InputError(f"bad event ticker {event_ticker!r}")
    return directory / f"{event_ticker}.json"


def write_snapshot(directory: Path, snap: TheoSnapshot) -> Path:
    """Publish atomically (:func:`write_json_atomic`) as ``<directory>/<event_ticker>.json``."""
    return write_json_atomic(path_for(directory, snap.event_ticker), snap.to_json())


def read_snapshot(directory: Path, event_ticker: str) -> TheoSnapshot | None:
    """The latest published snapshot, or None when there is none yet."""
    path = path_for(directory, event_ticker)
    raw = read_json(path, "theo snapshot")
    if raw is None:
        return None
    try:
        return TheoSnapshot(raw["event_ticker"], dict(raw["markets"]), dict(raw.get("uncertainty", {})),
                            float(raw.get("confidence", 1.0)), int(raw["as_of_ns"]), str(raw.get("source", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed theo snapshot {path}: {exc}") from exc


def snapshots_from(theos: Iterable[EventTheo], matches: Iterable[GameMatch], as_of_ns: int,
                   method: str) -> list[TheoSnapshot]:
    """Join consensus theos (by Odds API event id) with their Kalshi matches (by outcome name)."""
    by_id = {t.event_id: t for t in theos if t.theo is not None}
    out = []
    for match in matches:
        theo = by_id.get(match.event_id)
        if theo is None:
            continue
        probs = dict(zip(theo.outcomes, theo.theo or ()))
        unc = dict(zip(theo.outcomes, theo.uncertainty or ()))
        markets = {mkt: probs[name] for name, mkt in match.outcome_markets.items() if name in probs}
        if len(markets) != len(match.outcome_markets):
            continue
        out.append(TheoSnapshot(
            match.event_ticker, markets,
            {mkt: unc.get(name, 0.0) for name, mkt in match.outcome_markets.items()},
            theo.confidence, as_of_ns, f"odds:{theo.event_id}:{method}"))
    return out
