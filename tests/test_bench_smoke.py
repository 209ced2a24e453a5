"""Smoke tests of the benchmarks in ``bench/``: each runs as a subprocess with tiny parameters and
must exit 0 and print its result lines.

No timing is asserted (style: performance goals live in benchmarks, as printed figures). The only
checks are on counts, which do not depend on the machine's speed: every delta generated reaches
every subscriber, and every mode completes the round trips asked for. The subprocess timeout only
guards against a hang.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
HANG_GUARD_S = 240


def run_bench(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(BENCH / name), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def field(out: str, label: str) -> str:
    """The value of the ``  label  value`` row of a benchmark's table."""
    for line in out.splitlines():
        if line.startswith(f"  {label} "):
            return line[len(label) + 2:].strip()
    raise AssertionError(f"no {label!r} line in:\n{out}")


def test_exchange_fanout_runs_and_every_subscriber_gets_every_delta() -> None:
    out = run_bench("exchange_fanout.py", "--subscribers", "3", "--deltas", "200",
                    "--seconds", "20")
    for label in ("generated deltas/s", "fan-out deltas/s", "delivered msgs/s",
                  "delay p50 / p99 / max", "server process", "client process"):
        assert field(out, label)
    made = re.match(r"(\d+) in ", field(out, "deltas generated"))
    assert made, out
    generated = int(made.group(1))
    assert 0 < generated <= 200
    assert f"({3 * generated} orderbook_delta frames; expected {3 * generated})" in field(
        out, "delivered msgs/s")
    assert field(out, "fell behind (error 25)").startswith("0 subscriber(s)")
    assert field(out, "slowest subscriber") == f"{generated} of {generated} deltas"
    assert field(out, "seq gaps").startswith("0 subscriber(s)")
    assert re.search(r"^verdict: (MEETS|BELOW) the 5,000/s goal", out, re.M), out


def test_order_roundtrip_runs_every_mode() -> None:
    out = run_bench("order_roundtrip.py", "--round-trips", "20", "--seconds", "60")
    modes = ["GET /exchange/status (floor)", "create+cancel, presign on",
             "create+cancel, presign off", "batch 10+batch cancel, presign on",
             "batch 10+batch cancel, presign off"]
    rows = {line.split("  ")[0]: re.split(r"\s{2,}", line.strip())
            for line in out.splitlines() if line.split("  ")[0] in modes}
    assert sorted(rows) == sorted(modes), out
    for mode, cells in rows.items():
        assert cells[1] == "20", f"{mode}: {cells}"  # round trips done
    for mode in modes[1:]:  # two signed requests per round trip (create + cancel, or batches)
        used, live = rows[mode][7].split("/")
        assert int(used) + int(live) == 2 * 20, f"{mode}: {rows[mode]}"
    assert rows["create+cancel, presign off"][7] == "0/40"
    assert "item errors" not in out
    assert re.search(r"^result: floor [\d,]+ HTTP round trips/s; best order throughput", out,
                     re.M), out


def test_audit_bench_runs_every_engine_and_they_agree() -> None:
    out = run_bench("audit.py", "--fills", "2000", "--tops", "40000")
    rows = [ln for ln in out.splitlines() if ln.split()[:1] and ln.split()[0] in
            ("duckdb", "polars", "pandas", "duckdb-view", "audit-polars")]
    assert [r.split()[0] for r in rows] == ["duckdb", "polars", "pandas", "duckdb-view", "audit-polars"], out
    for r in rows:
        assert r.split()[-2] == "6,000" and r.split()[-1] == "yes", r  # 2,000 fills × 3 horizons matched


def test_account_budget_bench_runs_workers_on_one_key_without_429() -> None:
    out = run_bench("account_budget.py", "--workers", "2", "--minutes", "0.3")
    assert re.search(r"^budget record: tier basic \(from the exchange\)", out, re.M), out
    rows = [ln for ln in out.splitlines() if re.match(r"^KX\S+GAME-", ln)]
    assert len(rows) == 2, out
    for r in rows:
        assert r.split()[-2:] == ["exit", "0"], r
    assert "429 answered by the exchange  0 " in out, out


def test_backtest_bench_counts_book_events_and_runs_the_day_slate() -> None:
    out = run_bench("backtest.py", "--games", "1", "--lead-min", "2", "--day-games", "2",
                    "--day-lead-min", "2")
    rows = {ln.split("(")[0].strip(): re.split(r"\s{2,}", ln.strip()) for ln in out.splitlines()
            if ln.startswith(("throughput (", "sport day ("))}
    assert sorted(rows) == ["sport day", "throughput"], out
    assert rows["throughput"][1] == "1" and rows["sport day"][1] == "2", rows
    for cells in rows.values():
        assert int(cells[3].replace(",", "")) > 0  # book events delivered to the workers
        assert int(cells[4].replace(",", "")) > 0  # decisions
    assert re.search(r"^verdict: (MEETS|BELOW) the 200,000 book events/CPU-s goal", out, re.M), out


def test_killswitch_bench_pairs_each_level_with_the_run_without_halt() -> None:
    out = run_bench("killswitch.py", "--seeds", "7", "--games", "1", "--lead-min", "3",
                    "--levels", "0.1,1000")
    assert re.search(r"^no halt\s", out, re.M), out
    never = re.search(r"^halt at \$1000\s+(\d+) / 1\s+\+0\.00\s+\+0\.00\s+\+0\.00\s", out, re.M)
    assert never and never.group(1) == "0", out  # a level never reached changes nothing
    assert re.search(r"^halt at \$0\.1\s+[01] / 1\s", out, re.M), out
    assert "unexpected" not in out


def test_scale_bench_runs_quote_game_processes_and_reads_their_decision_latency() -> None:
    out = run_bench("scale.py", "--n", "2", "--seconds", "3", "--rate", "100")
    row = next((re.split(r"\s{2,}", ln.strip()) for ln in out.splitlines()
                if ln.startswith("2 ")), None)
    assert row is not None, out
    assert row[-1] == "2/2", row  # both workers exited 0 after their verified cancel-all
    assert int(row[2].replace(",", "")) > 0, row  # each worker recorded decisions
    assert row[3] != "-" and row[8] != "-", row  # p50 read from the workers, RSS from /proc
    assert row[10] == "0", row  # no 429
    assert "failed" not in out and re.search(r"^verdict: (MEETS|MISSES) decision p99", out, re.M)
