"""End to end through a real Prefect server, `mm serve` and the real deployments (the demo's own
machinery, one short game): calendar → odds → launcher → one quote-game run that quotes against
the simulated flow and stops at game start → ingest → audit; DuckDB's fills equal the exchange's."""

from __future__ import annotations

import io
import json

from rich.console import Console

from flows.demo import DemoConfig, run_demo_prefect
from mmcore.record.db import connect


def test_one_game_through_server_serve_and_deployments(tmp_path) -> None:
    out = io.StringIO()
    cfg = DemoConfig(games=1, seed=31, exit_after=True, data_dir=tmp_path / "demo",
                     first_start_s=55.0, noise_rate_per_s=1.5,
                     env={"MM_QUOTE_STOP_BEFORE_START_S": "5", "MM_LAUNCH_WINDOW_S": "3600"})
    code = run_demo_prefect(cfg, Console(file=out, width=200))
    text = out.getvalue()
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert code == 0, text[-4000:]
    assert summary["quote_runs"] == 1 and summary["quote_runs_not_completed"] == []
    assert summary["exchange_fills"] > 0, text[-4000:]
    assert summary["duckdb_fills"] == summary["exchange_fills"]
    assert summary["resting_after"] == 0 and summary["rate_limited"] == 0
    con = connect(tmp_path / "demo")  # the record outlives every process: read it again
    assert con.execute("SELECT count(*) FROM fills").fetchone()[0] == summary["exchange_fills"]
    assert con.execute("SELECT count(*) FROM v_markouts").fetchone()[0] == summary["exchange_fills"]
    assert "nightly-audit: COMPLETED" in text


def test_sigterm_stops_the_demo_and_every_process_it_started(tmp_path) -> None:
    """`kill <demo pid>` shuts down like Ctrl-C: no Prefect server, local exchange or `mm serve`
    is left behind (they were, before SIGTERM was handled)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    def ours() -> list[int]:
        pids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if str(tmp_path).encode() in (d / "environ").read_bytes():
                        pids.append(int(d.name))
                except OSError:
                    pass
        return pids

    env = {**os.environ, "MM_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    mm = Path(sys.executable).with_name("mm")
    proc = subprocess.Popen([str(mm), "demo", "--games", "1", "--minutes", "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until every process is up (bounded by the demo's own waits)
            seen.append(line)
            if line.startswith("Prefect UI http"):
                break
        assert any(line.startswith("Prefect UI http") for line in seen), "".join(seen[-40:])
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=120)
    except BaseException:
        # a failed run must not leave the demo's servers (own sessions) running after the test
        for pid in ours():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert "all processes stopped" in rest, rest[-3000:]

    deadline = time.monotonic() + 20  # children exit after their parent's stop_all returns
    while ours() and time.monotonic() < deadline:
        time.sleep(0.2)  # ok: polling the OS process table with a deadline
    assert ours() == []
