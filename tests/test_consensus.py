"""Consensus theo: anchoring, fallbacks, drops with reasons, monotonicity, real samples."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mmcore.odds.consensus import ConsensusParams, consensus_theo
from mmcore.odds.devig import devig
from mmcore.odds.events import DRAW, BookLine, EventOdds
from mmcore.odds.parse import latest_update_ns, parse_odds
from mmcore.odds.report import theo_report

S = 1_000_000_000
NOW = 1_800_000_000 * S
START = NOW + 3 * 3600 * S


def priced(probs, margin):
    """Decimal odds that carry ``margin`` multiplicatively over fair ``probs``."""
    return tuple(1.0 / (p * (1.0 + margin)) for p in probs)


def line(book, probs, margin=0.04, age_s=60.0, now=NOW):
    return BookLine(book, book, priced(probs, margin), now - int(age_s * S))


def event(*books, outcomes=("Home", "Away")):
    return EventOdds("ev", "basketball_nba", START, outcomes[0], outcomes[1], outcomes, tuple(books))


def test_anchor_holds_its_share_when_fresh():
    ev = event(
        line("pinnacle", (0.60, 0.40), 0.025, age_s=0),
        line("draftkings", (0.62, 0.38), age_s=0),
        line("fanduel", (0.61, 0.39), age_s=0),
    )
    th = consensus_theo(ev, NOW)
    assert th.mode == "anchored" and th.anchor == "pinnacle"
    weights = {b.book: b.weight for b in th.books}
    assert weights["pinnacle"] == pytest.approx(0.55)
    assert sum(weights.values()) == pytest.approx(1.0)
    pin = devig(ev.books[0].prices, "shin").probs[0]
    assert min(pin, 0.61) <= th.theo[0] <= max(pin, 0.62)
    assert sum(th.theo) == pytest.approx(1.0)
    assert 0 < th.confidence <= 1


def test_stale_anchor_share_decays():
    fresh = consensus_theo(event(line("pinnacle", (0.6, 0.4), age_s=0), line("fanduel", (0.62, 0.38), age_s=0)), NOW)
    stale = consensus_theo(event(line("pinnacle", (0.6, 0.4), age_s=1800), line("fanduel", (0.62, 0.38), age_s=0)), NOW)
    w = lambda th: {b.book: b.weight for b in th.books}["pinnacle"]  # noqa: E731
    assert w(stale) < w(fresh)


def test_drops_carry_reasons():
    pull = START + 2 * S  # just after the start: one book has already moved in-play
    ev = event(
        line("pinnacle", (0.60, 0.40), 0.025, now=pull),
        line("old", (0.60, 0.40), age_s=3 * 3600, now=pull),
        line("wild", (0.75, 0.25), now=pull),
        line("soft", (0.60, 0.40), margin=0.20, now=pull),
        BookLine("under", "under", (2.1, 2.1), pull),
        BookLine("inplay", "inplay", priced((0.6, 0.4), 0.04), START + S),
        line("ok", (0.61, 0.39), now=pull),
    )
    th = consensus_theo(ev, pull)
    reasons = {r.book: r.reason for r in th.dropped}
    assert reasons["old"].startswith("stale")
    assert reasons["wild"].startswith("outlier")
    assert "booksum" in reasons["soft"]
    assert reasons["under"].startswith("underround")
    assert "in-play" in reasons["inplay"]
    assert {b.book for b in th.books} == {"pinnacle", "ok"}


def test_no_pinnacle_falls_back_to_median_and_needs_three_books():
    two = event(line("draftkings", (0.6, 0.4)), line("fanduel", (0.62, 0.38)))
    th = consensus_theo(two, NOW)
    assert th.theo is None and th.confidence == 0 and "need 3" in th.reason
    three = event(line("draftkings", (0.60, 0.40)), line("fanduel", (0.62, 0.38)), line("betmgm", (0.61, 0.39)))
    th = consensus_theo(three, NOW)
    assert th.mode == "median" and th.anchor is None
    assert th.theo[0] == pytest.approx(0.61, abs=0.01)
    anchored = consensus_theo(event(line("pinnacle", (0.61, 0.39)), *three.books), NOW)
    assert max(th.uncertainty) > max(anchored.uncertainty)  # no anchor → wider


def test_suspect_anchor_is_demoted():
    books = [line(k, (0.50, 0.50)) for k in ("draftkings", "fanduel", "betmgm", "bovada")]
    th = consensus_theo(event(line("pinnacle", (0.58, 0.42), 0.025), *books), NOW)
    assert th.anchor is None and th.mode == "median"
    assert any(r.book == "pinnacle" and "demoted" in r.reason for r in th.dropped)


def test_three_way_soccer():
    outs = ("Arsenal", "Chelsea", DRAW)
    ev = EventOdds("s", "soccer_epl", START, "Arsenal", "Chelsea", outs, (
        line("pinnacle", (0.45, 0.28, 0.27), 0.03),
        line("betfair_ex_eu", (0.46, 0.27, 0.27), 0.02),
    ))
    th = consensus_theo(ev, NOW)
    assert len(th.theo) == 3 and sum(th.theo) == pytest.approx(1.0)
    assert th.theo[0] == pytest.approx(0.45, abs=0.01)


@given(
    p=st.floats(0.15, 0.85),
    bump=st.floats(1.0, 1.03),
    which=st.integers(0, 3),
    margins=st.lists(st.floats(0.01, 0.06), min_size=4, max_size=4),
    noise=st.lists(st.floats(-0.01, 0.01), min_size=4, max_size=4),
)
def test_theo_monotone_in_a_books_price(p, bump, which, margins, noise):
    keys = ("pinnacle", "draftkings", "fanduel", "betmgm")
    books = [line(k, (p + n, 1 - p - n), m) for k, m, n in zip(keys, margins, noise)]
    before = consensus_theo(event(*books), NOW)
    b = books[which]
    longer = BookLine(b.book, b.title, (b.prices[0] * bump, b.prices[1]), b.last_update_ns)
    after = consensus_theo(event(*[longer if x is b else x for x in books]), NOW)
    assume(before.theo is not None and after.theo is not None)
    assume({x.book for x in before.books} == {x.book for x in after.books})
    assume(before.anchor == after.anchor)
    assert after.theo[0] <= before.theo[0] + 1e-12


@given(p=st.floats(0.1, 0.9), margin=st.floats(0.0, 0.09))
def test_theo_is_a_distribution(p, margin):
    th = consensus_theo(event(line("pinnacle", (p, 1 - p), margin), line("fanduel", (p, 1 - p), margin)), NOW)
    assert th.theo is not None
    assert all(0 <= x <= 1 for x in th.theo) and sum(th.theo) == pytest.approx(1.0)


def test_reports_for_every_sample(odds_samples):
    for path in odds_samples:
        payload = json.loads(path.read_text())
        report = theo_report(payload)
        priced_events = [e for e in report["events"] if e["outcomes"][0]["theo"] is not None]
        assert priced_events, path.name
        for e in priced_events:
            assert sum(o["theo"] for o in e["outcomes"]) == pytest.approx(1.0, abs=1e-5)
        for e in report["events"]:
            if e["reason"]:
                assert e["mode"] == "none"


def test_nba_sample_without_pinnacle_uses_fallback(odds_samples):
    path = next(p for p in odds_samples if "basketball_nba" in p.name)
    parsed = parse_odds(json.loads(path.read_text()))
    now = latest_update_ns(parsed.events)
    modes = {}
    for ev in parsed.events:
        th = consensus_theo(ev, now, ConsensusParams(max_age_s=7 * 24 * 3600))
        modes[ev.event_id] = (ev.book("pinnacle") is not None, th.mode)
    assert any(not has for has, _ in modes.values()), "sample lost its no-Pinnacle events"
    for has, mode in modes.values():
        assert (mode in ("anchored", "anchor_only")) if has else (mode in ("median", "none"))


def test_a_book_dated_after_the_pull_is_dropped_not_fresh():
    ev = event(line("pinnacle", (0.6, 0.4)), line("fanduel", (0.62, 0.38)),
               line("draftkings", (0.5, 0.5), age_s=-3600))  # stamped an hour after the pull
    th = consensus_theo(ev, NOW)
    assert any(d.book == "draftkings" and "after the pull" in d.reason for d in th.dropped)
    assert {b.book for b in th.books} == {"pinnacle", "fanduel"}
    skewed = consensus_theo(event(line("pinnacle", (0.6, 0.4), age_s=-60)), NOW)
    assert skewed.books and skewed.books[0].age_s == 0.0  # a minute of clock skew is fine
