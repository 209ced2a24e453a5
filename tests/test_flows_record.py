"""pull-odds, ingest and nightly-audit as flow runs under the Prefect harness, against a real
`mm sim` and a worker that traded there: each does its work and publishes its artifacts."""

from __future__ import annotations

import datetime

from flows.ingest import ingest
from flows.nightly_audit import nightly_audit
from flows.pull_odds import pull_odds
from flows.refresh_calendar import refresh_calendar
from mmcore.record.db import connect
from tests.prefectkit import mm_env, scenario, sim_process


async def _artifact(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return found


async def test_pull_ingest_and_audit_flows_publish_their_record_and_artifacts(prefect_harness, tmp_path) -> None:
    from flows.quote_game import quote_game

    with sim_process(tmp_path, scenario(12, [400.0], rate_per_s=2.0)) as sim, mm_env(sim):
        cal = await refresh_calendar()
        assert cal["games"] == 1 and cal["matched"] == 1
        pulled = await pull_odds()
        ev = sim.event_tickers()[0]
        assert (sim.data_dir / "theo" / f"{ev}.json").is_file()
        assert pulled  # the summary dict
        assert await _artifact("theo-all")

        until = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=15)).isoformat()
        traded = await quote_game(event_ticker=ev, until=until)  # the flow, not a deployment run
        assert traded["resting_after"] == 0

        ingest()
        con = connect(sim.data_dir)
        decisions = con.execute("SELECT count(*) FROM decisions").fetchone()[0]
        assert decisions > 0
        assert con.execute("SELECT count(*) FROM odds_pulls").fetchone()[0] >= 1
        # two outcomes a book (which books quote a game varies by the minute: no one book is sure)
        per_book = con.execute("SELECT book, count(*) FROM book_prices GROUP BY book").fetchall()
        assert len(per_book) >= 3 and all(n >= 2 for _, n in per_book), per_book
        ingest()  # again: nothing new, nothing doubled
        assert connect(sim.data_dir).execute("SELECT count(*) FROM decisions").fetchone()[0] == decisions

        audit = await nightly_audit()
        assert set(audit["rows"]) >= {"markouts", "fees", "viability", "pnl"}
        summary = await _artifact("audit-summary")
        assert summary and "audit" in (summary[0].data or "").lower()
        assert await _artifact("audit-pnl")
        status = await _artifact(f"status-{ev.lower()}")
        assert status and ev in status[0].data
