"""Pure parser: an Odds API v4 payload (decoded JSON) → usable :class:`EventOdds` + rejections.

Garbage never raises out of here: anything unusable becomes a :class:`Rejection` carrying the event
id, the book (or None for the whole event) and a reason a human can act on. Downstream code can
therefore trust every price it sees: a complete outcome set, each decimal price finite, > 1.0
and ≤ :data:`MAX_DECIMAL_ODDS`, outcomes indexed by name (the API's order is not fixed).

Rules (from reference/odds-api.md §5):
- only the ``h2h`` market is read (``h2h_lay`` from exchanges is a lay price, not a back price);
- an event is 3-way when its sport is soccer or any book prices a ``"Draw"``; then every book must
  price all three outcomes — a 3-way market is never de-vigged as 2-way;
- a book missing an outcome, pricing an unknown or duplicated name, or with an unusable price is
  dropped for that event, never normalised over a partial set;
- ``last_update`` is taken from the market when present (2023+ payloads), else the bookmaker.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mmcore.models import OddsBookmaker, OddsEvent, iso_to_ns
from mmcore.odds.events import DRAW, BookLine, EventOdds, Rejection

MAX_DECIMAL_ODDS = 1000.0
"""Prices above this are treated as garbage (no book offers 999/1 on a game winner)."""
H2H = "h2h"


@dataclass(frozen=True, slots=True)
class ParsedOdds:
    events: tuple[EventOdds, ...]
    rejections: tuple[Rejection, ...]

    def rejections_for(self, event_id: str) -> tuple[Rejection, ...]:
        return tuple(r for r in self.rejections if r.event_id == event_id)


def clean_name(name: str) -> str:
    """NFC-normalise and trim a team name so "Leganés" composed or decomposed compares equal."""
    return " ".join(unicodedata.normalize("NFC", name).split())


def parse_odds(payload: Any) -> ParsedOdds:
    """Parse a ``/odds`` list or a single event-odds object. Never raises on bad data."""
    if isinstance(payload, dict):
        items: Iterable[Any] = [payload]
    elif isinstance(payload, list):
        items = payload
    else:
        kind = type(payload).__name__
        return ParsedOdds((), (Rejection(None, None, f"payload is a {kind}, not a list of events"),))
    events: list[EventOdds] = []
    rejections: list[Rejection] = []
    for index, raw in enumerate(items):
        event = _parse_event(raw, index, rejections)
        if event is not None:
            events.append(event)
    return ParsedOdds(tuple(events), tuple(rejections))


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "body"
    return f"{where}: {err.get('msg', 'invalid')}"


def _parse_event(raw: Any, index: int, out: list[Rejection]) -> EventOdds | None:
    if not isinstance(raw, dict):
        out.append(Rejection(None, None, f"item {index} is not an object"))
        return None
    raw_books = raw.get("bookmakers")
    try:
        env = OddsEvent.model_validate({**raw, "bookmakers": []})
    except ValidationError as exc:
        eid = raw.get("id") if isinstance(raw.get("id"), str) else None
        out.append(Rejection(eid, None, f"malformed event ({_first_error(exc)})"))
        return None
    eid = env.id

    def reject(reason: str) -> None:
        out.append(Rejection(eid, None, reason))

    if not env.home_team or not env.away_team:
        reject("no home_team/away_team (an outright market, not a game)")
        return None
    home, away = clean_name(env.home_team), clean_name(env.away_team)
    if home == away:
        reject(f"home and away are the same team ({home!r})")
        return None
    commence_ns: int | None = None
    if env.commence_time is not None:
        try:
            commence_ns = iso_to_ns(env.commence_time)
        except (ValueError, TypeError, OverflowError):
            reject(f"unparsable commence_time {env.commence_time!r}")
            return None
    if not isinstance(raw_books, list) or not raw_books:
        reject("no bookmakers")
        return None

    books: list[OddsBookmaker] = []
    for j, rb in enumerate(raw_books):
        key = rb.get("key") if isinstance(rb, dict) and isinstance(rb.get("key"), str) else None
        try:
            books.append(OddsBookmaker.model_validate(rb))
        except ValidationError as exc:
            out.append(Rejection(eid, key or f"#{j}", f"malformed bookmaker ({_first_error(exc)})"))

    three_way = (env.sport_key or "").startswith("soccer") or any(
        clean_name(o.name) == DRAW for b in books for m in b.markets if m.key == H2H for o in m.outcomes
    )
    outcomes = (home, away, DRAW) if three_way else (home, away)

    lines: list[BookLine] = []
    seen: set[str] = set()
    for book in books:
        if book.key in seen:
            out.append(Rejection(eid, book.key, "bookmaker listed twice; both copies ignored"))
            lines = [ln for ln in lines if ln.book != book.key]
            continue
        seen.add(book.key)
        line = _parse_book(book, outcomes, eid, out)
        if line is not None:
            lines.append(line)
    if not lines:
        reject("no usable books")
        return None
    return EventOdds(eid, env.sport_key, commence_ns, home, away, outcomes, tuple(lines))


def _parse_book(
    book: OddsBookmaker, outcomes: tuple[str, ...], eid: str, out: list[Rejection]
) -> BookLine | None:
    def reject(reason: str) -> None:
        out.append(Rejection(eid, book.key, reason))

    markets = [m for m in book.markets if m.key == H2H]
    if not markets:
        reject("no h2h market")
        return None
    if len(markets) > 1:
        reject("h2h market listed twice")
        return None
    market = markets[0]
    prices: dict[str, float] = {}
    for o in market.outcomes:
        name = clean_name(o.name)
        if name not in outcomes:
            reject(f"unexpected outcome {name!r} (event prices {', '.join(outcomes)})")
            return None
        if name in prices:
            reject(f"outcome {name!r} priced twice")
            return None
        price = o.price
        if not math.isfinite(price):
            reject(f"price {price} for {name!r} is not finite")
            return None
        if price <= 1.0:
            reject(
                f"price {price:g} for {name!r} is not usable (decimal odds must be > 1.0; "
                "1.0 means settled or suspended in-play)"
            )
            return None
        if price > MAX_DECIMAL_ODDS:
            reject(f"price {price:g} for {name!r} is above {MAX_DECIMAL_ODDS:g} (garbage)")
            return None
        prices[name] = price
    missing = [n for n in outcomes if n not in prices]
    if missing:
        reject(f"missing outcome {', '.join(repr(n) for n in missing)}")
        return None

    stamp = market.last_update if market.last_update is not None else book.last_update
    last_update_ns: int | None = None
    if stamp is not None:
        try:
            last_update_ns = iso_to_ns(stamp)
        except (ValueError, TypeError, OverflowError):
            last_update_ns = None
    return BookLine(
        book=book.key,
        title=book.title or book.key,
        prices=tuple(prices[n] for n in outcomes),
        last_update_ns=last_update_ns,
    )


def latest_update_ns(events: Iterable[EventOdds]) -> int | None:
    """The newest ``last_update`` in a payload: a stand-in for the fetch time of a saved file."""
    stamps = [b.last_update_ns for e in events for b in e.books if b.last_update_ns is not None]
    return max(stamps) if stamps else None
