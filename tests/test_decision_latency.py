"""The worker's own decision-latency record (issue 11 item 6, ``bench/scale.py`` reads it): the
driver stamps each book event from its frame's receipt to the decision handed to the senders, in a
bounded histogram, and the quote-game flow returns its percentiles."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

from mmcore.worker.latency_hist import LatencyHistogram
from tests.prefectkit import scenario, sim_process
from tests.test_cli_flows import _mm, _until


def test_histogram_percentiles_are_within_a_sixteenth_above_the_exact_ones() -> None:
    rng = random.Random(5)
    values = [rng.randrange(1, 50_000_000) for _ in range(5_000)] + [0, 7, 31, 32, 33]
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    exact = sorted(values)
    for q in (0.01, 0.5, 0.9, 0.99, 1.0):
        true = exact[min(len(exact) - 1, max(0, round(q * len(exact) + 0.5) - 1))]
        got = h.quantile(q)
        assert got is not None and true <= got <= true + true / 16 + 1, (q, true, got)
    assert h.count == len(values) and h.max_ns == max(values)
    assert len(h.buckets) < 600  # bounded, whatever the number of samples
    assert LatencyHistogram().quantile(0.5) is None
    assert LatencyHistogram().summary_ms()["p99_ms"] is None


def test_mm_run_quote_game_reports_the_decision_latency_of_its_book_events(tmp_path: Path) -> None:
    from tests.test_flows_quote_game import _publish_theo

    # busy noise takers: the books move, so the worker decides on book events
    with sim_process(tmp_path, scenario(6, [300.0], rate_per_s=2.0)) as sim:
        ev = asyncio.run(_publish_theo(sim))
        run = _mm(sim, "run", "quote-game", f"event_ticker={ev}", f"until={_until(10)}")
        assert run.returncode == 0, run.stderr[-2000:]
        result = json.loads(run.stdout[run.stdout.index("{"):])
        assert result["resting_after"] == 0
        d = result["decision"]
        # at least one snapshot per market, then the takers' deltas
        assert d["count"] >= 2, d
        assert 0 < d["p50_ms"] <= d["p99_ms"] <= d["max_ms"], d
        assert d["max_ms"] < 10_000, d  # from the frame's receipt, not from some other epoch
