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
- ``last_update`` is taken from the market when present (2023+ payloads), else the bookmaker;
- every time must lie in [:data:`MIN_STAMP_NS`, :data:`MAX_STAMP_NS`) (2000 to 2100): an event
  starting outside it is rejected, a book stamped outside it is dropped (a stamp of 2099 or of
  year 33658 is a data error, and would otherwise overflow or age every other book);
- text must be valid Unicode: a lone UTF-16 surrogate (JSON ``"\ud800"``) in an event id, team,
  sport or book key rejects the event or the book; rejections show such text escaped, so every
  string that leaves the parser can be encoded.
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

MIN_STAMP_NS = 946_684_800 * 1_000_000_000
"""2000-01-01T00:00:00Z: older times in an odds payload are data errors."""
MAX_STAMP_NS = 4_102_444_800 * 1_000_000_000
"""2100-01-01T00:00:00Z: later times are data errors (the bound Kalshi puts on order expiry)."""
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


def stamp_ns(value: str | int) -> int:
    """An Odds API time (ISO-8601 or unix seconds) as ns; :class:`ValueError` when unparsable or
    outside [2000, 2100)."""
    try:
        ns = iso_to_ns(value)
    except (TypeError, OverflowError) as exc:
        raise ValueError(str(exc)) from None
    if not MIN_STAMP_NS <= ns < MAX_STAMP_NS:
        raise ValueError("outside 2000-2100")
    return ns


def has_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone UTF-16 surrogate, which no UTF-8 output can encode."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def printable(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udXXX`` escapes (for reasons and ids)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8") if has_surrogate(text) else text


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
        eid = printable(raw["id"]) if isinstance(raw.get("id"), str) else None
        out.append(Rejection(eid, None, f"malformed event ({_first_error(exc)})"))
        return None
    eid = printable(env.id)

    def reject(reason: str) -> None:
        out.append(Rejection(eid, None, reason))

    bad = [f for f in ("id", "sport_key", "home_team", "away_team")
           if has_surrogate(getattr(env, f) or "")]
    if bad:
        reject(f"{', '.join(bad)}: invalid text (a lone UTF-16 surrogate)")
        return None

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
            commence_ns = stamp_ns(env.commence_time)
        except ValueError as exc:
            reject(f"unusable commence_time {env.commence_time!r} ({exc})")
            return None
    if not isinstance(raw_books, list) or not raw_books:
        reject("no bookmakers")
        return None

    books: list[OddsBookmaker] = []
    for j, rb in enumerate(raw_books):
        key = rb.get("key") if isinstance(rb, dict) and isinstance(rb.get("key"), str) else None
        try:
            book = OddsBookmaker.model_validate(rb)
        except ValidationError as exc:
            out.append(Rejection(eid, printable(key) if key else f"#{j}",
                                 f"malformed bookmaker ({_first_error(exc)})"))
            continue
        if has_surrogate(book.key) or has_surrogate(book.title):
            out.append(Rejection(eid, printable(book.key),
                                 "bookmaker key or title: invalid text (a lone UTF-16 surrogate)"))
            continue
        books.append(book)

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
            last_update_ns = None  # unreadable: an unknown age (weighted down by the consensus)
        else:
            if not MIN_STAMP_NS <= last_update_ns < MAX_STAMP_NS:
                reject(f"last_update {stamp!r} is outside 2000-2100 (a data error)")
                return None
    return BookLine(
        book=book.key,
        title=book.title or book.key,
        prices=tuple(prices[n] for n in outcomes),
        last_update_ns=last_update_ns,
    )


def latest_update_ns(events: Iterable[EventOdds], not_after_ns: int | None = None) -> int | None:
    """The newest ``last_update`` in a payload at or before ``not_after_ns`` (when given): a
    stand-in for the fetch time of a saved file. The bound (the wall clock when the file is
    read) keeps one book dated in the future from becoming "now" and ageing every other book;
    that book is then dropped by the consensus as dated after the pull."""
    stamps = [b.last_update_ns for e in events for b in e.books if b.last_update_ns is not None
              and (not_after_ns is None or b.last_update_ns <= not_after_ns)]
    return max(stamps) if stamps else None
