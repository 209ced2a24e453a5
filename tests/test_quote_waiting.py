"""A worker says what it waits for: no theo snapshot (and where it looks), no book, a stale theo,
a halt flag (``mm resume``) — through ``WorkerDriver.status()`` and one INFO line per change;
end to end against the local exchange over loopback (tests/workerkit.py)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from mmcore.fees import FeeSchedule
from mmcore.game import GameSpec
from mmcore.theo.snapshot import read_snapshot, write_snapshot
from mmcore.ticks import TickGrid
from mmcore.worker.driver import PUBLISH_HINT, describe_waiting
from mmcore.worker.engine import GameWorker, TheoEv, WorkerConfig
from tests.workerkit import rig

NS = 1_000_000_000
EV = "KXNBAGAME-26MAY25NYKCLE"
MARKETS = (f"{EV}-CLE", f"{EV}-NYK")


async def test_worker_reports_waiting_for_theo_then_quotes_then_halt_flag(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="mmcore.worker.driver")
    async with rig(tmp_path, seed=6, start_in_s=300.0) as r:
        snap = read_snapshot(r.theo_dir, r.event_ticker)
        (r.theo_dir / f"{r.event_ticker}.json").unlink()  # the worker starts with no theo
        halt_dir = tmp_path / "halt"
        driver = await r.driver(theo_poll_s=0.1, halt_dir=halt_dir)
        assert driver.status().state == "STARTING"
        waiting_theo, quoting = asyncio.Event(), asyncio.Event()

        def watch(worker, out):
            st = driver.status()
            if st.waiting_for and "theo snapshot" in st.waiting_for:
                waiting_theo.set()
            if worker.live and st.waiting_for is None:
                quoting.set()

        driver.on_output = watch
        task = asyncio.create_task(driver.run())
        await asyncio.wait_for(waiting_theo.wait(), timeout=10)
        st = driver.status()
        assert str(r.theo_dir / f"{r.event_ticker}.json") in st.waiting_for
        assert PUBLISH_HINT in st.waiting_for
        assert st.theo is None and st.state == "ACTIVE"
        assert all(q.bid is None and q.ask is None for q in st.quotes.values())

        write_snapshot(r.theo_dir, snap)  # the odds pull publishes
        await asyncio.wait_for(quoting.wait(), timeout=15)
        st = driver.status()
        assert st.waiting_for is None
        assert st.theo == dict(zip(driver.game.markets, snap.probs_for(driver.game.markets)))
        assert st.theo_as_of_ns == snap.as_of_ns
        assert any(q.bid is not None or q.ask is not None for q in st.quotes.values())
        assert set(st.inventory) == set(driver.game.markets) and st.kill_reasons == ()

        halt_dir.mkdir()
        (halt_dir / r.event_ticker).write_text("halted by mm kill\n")  # what `mm kill` does
        report = await asyncio.wait_for(task, timeout=30)
        st = driver.status()
        assert st.state == "STOPPED" and report.final_state == "HALTED"
        assert f"`mm resume {r.event_ticker}`" in st.waiting_for
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "mmcore.worker.driver"]
    changes = [ln for ln in lines if "waiting for" in ln or "quoting (nothing" in ln]
    assert any("waiting for a theo snapshot" in ln for ln in changes)
    assert any("quoting (nothing to wait for)" in ln for ln in changes)
    assert any("mm resume" in ln for ln in changes)
    assert all(a != b for a, b in zip(changes, changes[1:]))  # one line per change, not per poll


def _worker(now: int) -> GameWorker:
    spec = GameSpec(EV, "basketball_nba", MARKETS, (TickGrid.linear_cent(),) * 2,
                    FeeSchedule("quadratic_with_maker_fees"), now + 3600 * NS)
    return GameWorker(spec, WorkerConfig("w-status"), now)


def test_describe_waiting_names_the_blocker_most_blocking_first():
    now = 1_800_000_000 * NS
    path = Path("/data/theo") / f"{EV}.json"
    w = _worker(now)
    say = lambda **kw: describe_waiting(EV, w, kw.pop("at", now), theo_path=path, **kw)  # noqa: E731
    assert "start-up" in describe_waiting(EV, None, now, theo_path=path)
    assert f"none yet at {path}" in say()
    assert "unreadable" in say(theo_problem="unreadable theo snapshot: bad JSON")
    assert say(halt_flag=Path("/data/halt/ALL")).startswith("`mm resume --all`")
    w.handle(TheoEv((0.6, 0.4), None, now), now)
    assert say().startswith(f"order books of {MARKETS[0]}, {MARKETS[1]}")
    stale = say(at=now + 46 * 60 * NS)
    assert stale.startswith("a fresh theo") and "46 min old" in stale
    assert describe_waiting(EV, w, now, theo_path=path, finished=True) is None
