"""The odds parser: real samples parse, unusable data is rejected with a reason, garbage never crashes."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from mmcore.odds.events import DRAW
from mmcore.odds.parse import MAX_DECIMAL_ODDS, parse_odds


def _event(books, *, sport="basketball_nba", home="Boston Celtics", away="New York Knicks"):
    return {
        "id": "e" * 32,
        "sport_key": sport,
        "commence_time": "2026-11-24T00:00:00Z",
        "home_team": home,
        "away_team": away,
        "bookmakers": books,
    }


def _book(key, outcomes, last_update="2026-11-23T23:00:00Z", market="h2h"):
    return {
        "key": key,
        "title": key.title(),
        "last_update": last_update,
        "markets": [{"key": market, "outcomes": [{"name": n, "price": p} for n, p in outcomes]}],
    }


def test_every_sample_parses_with_reasons(odds_samples):
    for path in odds_samples:
        payload = json.loads(path.read_text())
        parsed = parse_odds(payload)
        assert parsed.events, f"{path.name}: no usable events"
        ids = {e.event_id for e in parsed.events} | {r.event_id for r in parsed.rejections}
        assert ids == {e["id"] for e in payload}, f"{path.name}: an event vanished without a reason"
        for r in parsed.rejections:
            assert r.reason
        for e in parsed.events:
            assert e.books
            for b in e.books:
                assert len(b.prices) == len(e.outcomes)
                assert all(1.0 < p <= MAX_DECIMAL_ODDS and math.isfinite(p) for p in b.prices)
            if (e.sport_key or "").startswith("soccer"):
                assert e.outcomes[-1] == DRAW and e.three_way


def test_inplay_sample_rejects_prices_of_one(odds_samples):
    path = next(p for p in odds_samples if "inplay" in p.name)
    payload = json.loads(path.read_text())
    ones = {
        (ev["id"], bk["key"])
        for ev in payload
        for bk in ev["bookmakers"]
        for m in bk["markets"]
        if m["key"] == "h2h"
        for o in m["outcomes"]
        if o["price"] == 1.0
    }
    assert ones, "sample no longer has 1.0 prices"
    parsed = parse_odds(payload)
    rejected = {(r.event_id, r.book): r.reason for r in parsed.rejections if r.book}
    for key in ones:
        assert key in rejected
        assert "price 1 " in rejected[key] and "> 1.0" in rejected[key]
    for e in parsed.events:
        assert all((e.event_id, b.book) not in ones for b in e.books)


def test_soccer_book_without_draw_is_dropped_not_normalised():
    payload = [
        _event(
            [
                _book("pinnacle", [("Arsenal", 2.0), ("Chelsea", 4.0), ("Draw", 3.5)]),
                _book("partial", [("Arsenal", 1.5), ("Chelsea", 2.9)]),
            ],
            sport="soccer_epl",
            home="Arsenal",
            away="Chelsea",
        )
    ]
    parsed = parse_odds(payload)
    (event,) = parsed.events
    assert event.outcomes == ("Arsenal", "Chelsea", DRAW)
    assert [b.book for b in event.books] == ["pinnacle"]
    (rej,) = parsed.rejections
    assert rej.book == "partial" and "missing outcome 'Draw'" in rej.reason


def test_outcomes_indexed_by_name_not_position():
    payload = [_event([_book("b", [("New York Knicks", 3.0), ("Boston Celtics", 1.4)])])]
    (event,) = parse_odds(payload).events
    assert event.outcomes == ("Boston Celtics", "New York Knicks")
    assert event.books[0].prices == (1.4, 3.0)


def test_book_level_reasons():
    payload = [
        _event(
            [
                _book("ok", [("Boston Celtics", 1.4), ("New York Knicks", 3.0)]),
                _book("lay", [("Boston Celtics", 1.4), ("New York Knicks", 3.0)], market="h2h_lay"),
                _book("stranger", [("Boston Celtics", 1.4), ("Los Angeles Lakers", 3.0)]),
                _book("dupe", [("Boston Celtics", 1.4), ("Boston Celtics", 3.0)]),
                _book("huge", [("Boston Celtics", 1.001), ("New York Knicks", 5000)]),
                {"key": "broken", "markets": [{"key": "h2h", "outcomes": [{"name": "x", "price": "abc"}]}]},
            ]
        )
    ]
    parsed = parse_odds(payload)
    reasons = {r.book: r.reason for r in parsed.rejections}
    assert reasons["lay"] == "no h2h market"
    assert "unexpected outcome 'Los Angeles Lakers'" in reasons["stranger"]
    assert "priced twice" in reasons["dupe"]
    assert "above 1000" in reasons["huge"]
    assert "malformed bookmaker" in reasons["broken"]
    assert [b.book for b in parsed.events[0].books] == ["ok"]


def test_event_level_reasons():
    payload = [
        {"id": "outright", "sport_key": "x", "home_team": None, "away_team": None, "bookmakers": []},
        _event([]),
        "not an object",
        {"no": "id"},
    ]
    parsed = parse_odds(payload)
    assert not parsed.events
    reasons = [r.reason for r in parsed.rejections]
    assert any("outright" in r for r in reasons)
    assert any(r == "no bookmakers" for r in reasons)
    assert any("not an object" in r for r in reasons)
    assert any("malformed event" in r for r in reasons)
    assert parse_odds(42).rejections[0].reason.startswith("payload is a int")


def test_event_odds_single_object_and_market_level_update():
    obj = _event([_book("b", [("Boston Celtics", 1.4), ("New York Knicks", 3.0)])])
    obj["bookmakers"][0].pop("last_update")
    obj["bookmakers"][0]["markets"][0]["last_update"] = "2026-11-23T22:00:00Z"
    (event,) = parse_odds(obj).events
    assert event.books[0].last_update_ns is not None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(["id", "home_team", "away_team", "bookmakers", "markets", "key", "outcomes",
                         "name", "price", "last_update", "commence_time", "sport_key"]) | st.text(max_size=4),
        children,
        max_size=6,
    ),
    max_leaves=30,
)


@given(json_values)
def test_garbage_never_crashes(payload):
    parsed = parse_odds(payload)
    for e in parsed.events:
        for b in e.books:
            assert all(1.0 < p <= MAX_DECIMAL_ODDS for p in b.prices)


@given(st.binary(max_size=200))
def test_garbage_bytes_never_crash_after_decode(raw):
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return
    parse_odds(payload)


@given(st.text(st.characters(categories=["Cs", "Ll"]), min_size=1, max_size=6),
       st.sampled_from(["id", "home_team", "away_team", "sport_key", "book", "outcome"]))
def test_every_string_out_of_the_parser_can_be_encoded(text, where):
    """A lone surrogate anywhere rejects what holds it; reasons and ids show it escaped."""
    ev = _event([_book("pinnacle", [("Boston Celtics", 1.8), ("New York Knicks", 2.1)]),
                 _book("fanduel", [("Boston Celtics", 1.8), ("New York Knicks", 2.1)])])
    if where == "book":
        ev["bookmakers"][1]["key"] = text
    elif where == "outcome":
        ev["bookmakers"][1]["markets"][0]["outcomes"][0]["name"] = text
    else:
        ev[where] = text
    parsed = parse_odds([ev])
    for e in parsed.events:
        for s in (e.event_id, e.sport_key or "", *e.outcomes, *(b.book for b in e.books),
                  *(b.title for b in e.books)):
            s.encode("utf-8")
    for r in parsed.rejections:
        for s in (r.event_id or "", r.book or "", r.reason):
            s.encode("utf-8")
