"""The newcomer's path without a Prefect server, as subprocesses against a real `mm sim`:
`mm quote` says what it waits for; `mm run refresh-calendar` and `mm run pull-odds` (the flows'
own code, run once) publish a theo and the worker quotes; `mm run ingest` and `mm sql` show its
record; a bad flow name or parameter is one clear line."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path

from tests.prefectkit import MM, REPO, scenario, sim_process


def _mm(sim, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **sim.env()}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([MM, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def _until(seconds: float) -> str:
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)).isoformat()


def test_quote_says_it_waits_for_theo_then_quotes_after_the_flows_publish_one(tmp_path: Path) -> None:
    with sim_process(tmp_path, scenario(4, [300.0], rate_per_s=1.0)) as sim:
        ev = sim.event_tickers()[0]
        waiting = _mm(sim, "quote", ev, "--until", _until(3))
        assert waiting.returncode == 0, waiting.stderr[-2000:]
        assert "waiting for a theo snapshot" in waiting.stdout and "mm run pull-odds" in waiting.stdout
        assert "resting_after=0" in waiting.stdout

        cal = _mm(sim, "run", "refresh-calendar")
        assert cal.returncode == 0, cal.stderr[-2000:]
        assert json.loads(cal.stdout[cal.stdout.index("{"):])["games"] == len(sim.event_tickers())
        pull = _mm(sim, "run", "pull-odds")
        assert pull.returncode == 0, pull.stderr[-2000:]
        assert (sim.data_dir / "theo" / f"{ev}.json").is_file()

        quoting = _mm(sim, "quote", ev, "--until", _until(12))
        assert quoting.returncode == 0, quoting.stderr[-2000:]
        lines = [ln for ln in quoting.stdout.splitlines() if ln.startswith(ev + " ")]
        assert any("| quotes " in ln and "waiting" not in ln for ln in lines), quoting.stdout
        assert "resting_after=0" in quoting.stdout

        ingest = _mm(sim, "run", "ingest")
        assert ingest.returncode == 0, ingest.stderr[-2000:]
        n = _mm(sim, "sql", "SELECT count(*) AS n FROM decisions", "--json")
        assert n.returncode == 0, n.stderr
        assert json.loads(n.stdout)[0]["n"] > 0


def test_mm_run_refuses_unknown_flows_and_parameters(tmp_path: Path) -> None:
    with sim_process(tmp_path, scenario(4, [300.0])) as sim:
        bad = _mm(sim, "run", "no-such-flow")
        assert bad.returncode != 0 and "unknown flow" in bad.stderr and "Traceback" not in bad.stderr
        bad = _mm(sim, "run", "cancel-all", "nope=1")
        assert bad.returncode != 0 and "nope" in bad.stderr and "Traceback" not in bad.stderr
        bad = _mm(sim, "run", "cancel-all", "=1")
        assert bad.returncode != 0 and "name=value" in bad.stderr


def test_quote_config_file_sets_the_size_of_the_orders_resting_on_the_exchange(tmp_path: Path) -> None:
    """`mm quote --config FILE` (TOML): every order the running worker sent rests at the file's
    clip (2 contracts), not the default 10; a bad file is one clear line before any connection."""
    import asyncio

    from tests.test_flows_quote_game import _publish_theo

    cfg = tmp_path / "worker.toml"
    cfg.write_text("[quote]\nclip_contracts = 2\nmin_size_contracts = 1\n[gate]\nmax_order_contracts = 200\n")
    with sim_process(tmp_path, scenario(4, [300.0])) as sim:
        ev = asyncio.run(_publish_theo(sim))
        run = _mm(sim, "quote", ev, "--config", str(cfg), "--until", _until(10))
        assert run.returncode == 0, run.stderr[-2000:]
        assert "resting_after=0" in run.stdout

        async def sizes() -> list[int]:
            async with sim.rest() as rest:
                return [o.count() for o in await rest.get_orders_raw(event_ticker=ev, status=None)]

        placed = asyncio.run(sizes())
        assert placed, "the worker placed no orders"
        assert max(placed) == 200, placed  # centi-contracts: 2 contracts per order

        bad = tmp_path / "bad.toml"
        bad.write_text("[quote]\nclip = 'ten'\n")
        out = _mm(sim, "quote", ev, "--config", str(bad), "--until", _until(5))
        assert out.returncode != 0 and "quote.clip" in out.stderr and "Traceback" not in out.stderr
