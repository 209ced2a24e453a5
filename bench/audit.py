"""Markout computation of the nightly audit: DuckDB ASOF JOIN vs polars join_asof vs pandas
merge_asof, on the same synthetic data in the same run.

Question: which engine should compute markouts (each fill's Kalshi mid at +1 / +5 / +30 s, the
last book top at or before, per market) for :mod:`mmcore.record.audit`, at 1 M fills × 20 M book
tops? Prints time and peak memory per engine; never asserts on time.

- Data (seeded, deterministic): ``sql/bench/generate_*.sql`` writes ``fills.parquet`` and
  ``tops.parquet`` (market, t_ns, bid, ask) with DuckDB; ``--markets`` markets over 6 hours.
- Each engine runs in its own process (``python bench/audit.py --child ENGINE``), so its peak
  RSS (``VmHWM``) is its own: load the Parquet into the engine's memory, then stack the
  3 horizons into one probe table, one as-of join per market, and reduce to a checksum per
  horizon (probes matched, Σ sign × (bid + ask − 2·price)); all engines must agree exactly.
- ``duckdb-view`` is the users' path: the same checksum through the ``v_markouts`` view over the
  record's Parquet (``j_fill``/``j_book_top`` files made from the same data), which also
  computes theo markouts, quoted spreads and flags; there is no separate load.
- ``audit-polars`` is the audit's path: :func:`mmcore.record.markouts_polars.markouts` over the
  same record (inputs read from DuckDB through Arrow, polars ``join_asof``; the same columns as
  ``v_markouts``), then the checksum from its frame; "load" is opening the record's views.

Engines that are not installed are reported as such (pandas is a dev extra). ``--small`` =
20 k fills × 400 k tops for a quick run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchkit  # noqa: E402

ENGINES = ("duckdb", "polars", "pandas", "duckdb-view", "audit-polars")
HORIZONS_S = (1, 5, 30)
T0 = 1_767_225_600 * 1_000_000_000 + 15 * 3600 * 1_000_000_000
SPAN_NS = 6 * 3600 * 1_000_000_000


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return 0.0


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB: ``VmHWM`` (reset by exec, unlike
    ``ru_maxrss``, which a child started by fork + exec inherits from its parent on Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1e3  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KB on Linux


# --- data ----------------------------------------------------------------------------------------


def generate(data: Path, fills: int, tops: int, markets: int, seed: int) -> float:
    """Write fills.parquet, tops.parquet and the record-shaped copies; seconds taken."""
    import duckdb

    from mmcore.record import store
    from mmcore.record.sqlfiles import params_for, read_sql, render, select_body

    started = time.perf_counter()
    con = duckdb.connect()
    base = {"markets": markets, "seed": seed, "t0": T0, "span_ns": SPAN_NS}
    for name, n in (("tops", tops), ("fills", fills)):
        sql = read_sql(f"bench/generate_{name}.sql")
        store.copy_to_parquet(con, select_body(sql), data / f"{name}.parquet",
                              params_for(sql, {**base, "n": n}))  # type: ignore[arg-type]
    con.execute(render(read_sql("bench/load.sql"), data))
    root = data / "record"
    for kind, table in (("fills", "j_fill"), ("tops", "j_book_top")):
        (root / table).mkdir(parents=True, exist_ok=True)
        store.copy_to_parquet(con, select_body(read_sql(f"bench/record_{kind}.sql")),
                              root / table / "bench.parquet")
    con.close()
    return time.perf_counter() - started


# --- engines (each runs in a child process) --------------------------------------------------------


def run_duckdb(data: Path) -> tuple[float, float, list[tuple[int, int, int]]]:
    import duckdb

    from mmcore.record.sqlfiles import read_sql, render

    con = duckdb.connect()
    t = time.perf_counter()
    con.execute(render(read_sql("bench/load.sql"), data))
    loaded = time.perf_counter()
    rows = con.execute(read_sql("bench/markouts.sql")).fetchall()
    return loaded - t, time.perf_counter() - loaded, [tuple(r) for r in rows]


def run_duckdb_view(data: Path) -> tuple[float, float, list[tuple[int, int, int]]]:
    from mmcore.record import db
    from mmcore.record.sqlfiles import read_sql

    t = time.perf_counter()
    con = db.connect(data)  # the views over data/record (seeds added for the other tables)
    ready = time.perf_counter()
    rows = con.execute(read_sql("bench/markouts_view.sql")).fetchall()
    return ready - t, time.perf_counter() - ready, [tuple(r) for r in rows]


def run_audit_polars(data: Path) -> tuple[float, float, list[tuple[int, int, int]]]:
    import polars as pl

    from mmcore.record import db, markouts_polars

    t = time.perf_counter()
    con = db.connect(data)  # the views over data/record, as run_audit opens them
    ready = time.perf_counter()
    frame = markouts_polars.markouts(con)
    rows = []
    for h in HORIZONS_S:  # as bench/markouts_view.sql: matched, Σ round(2 × markout)
        markout = frame[f"markout_mid_{h}s"]
        rows.append((h, markout.count(), int((2 * markout).round(0).cast(pl.Int64).sum())))
    return ready - t, time.perf_counter() - ready, rows


def run_polars(data: Path) -> tuple[float, float, list[tuple[int, int, int]]]:
    import polars as pl

    t = time.perf_counter()
    fills = pl.read_parquet(data / "fills.parquet")
    tops = pl.read_parquet(data / "tops.parquet")
    loaded = time.perf_counter()
    probes = pl.concat([fills.with_columns(h_s=pl.lit(h, pl.Int32),
                                           probe_ns=pl.col("fill_ns") + h * 1_000_000_000)
                        for h in HORIZONS_S]).sort("probe_ns")
    tops = tops.sort("t_ns")
    joined = probes.join_asof(tops, left_on="probe_ns", right_on="t_ns", by="market",
                              strategy="backward")
    out = (joined.with_columns(markout2=pl.col("sign") * (pl.col("bid") + pl.col("ask") - 2 * pl.col("price")))
           .group_by("h_s").agg(pl.col("markout2").count().alias("matched"),
                                pl.col("markout2").sum().alias("markout2_sum"))
           .sort("h_s"))
    rows = [(int(r[0]), int(r[1]), int(r[2])) for r in out.iter_rows()]
    return loaded - t, time.perf_counter() - loaded, rows


def run_pandas(data: Path) -> tuple[float, float, list[tuple[int, int, int]]]:
    import pandas as pd

    t = time.perf_counter()
    fills = pd.read_parquet(data / "fills.parquet")
    tops = pd.read_parquet(data / "tops.parquet")
    loaded = time.perf_counter()
    probes = pd.concat([fills.assign(h_s=h, probe_ns=fills["fill_ns"] + h * 1_000_000_000)
                        for h in HORIZONS_S], ignore_index=True).sort_values("probe_ns")
    tops = tops.sort_values("t_ns")
    joined = pd.merge_asof(probes, tops, left_on="probe_ns", right_on="t_ns", by="market",
                           direction="backward")
    joined["markout2"] = joined["sign"] * (joined["bid"] + joined["ask"] - 2 * joined["price"])
    agg = joined.groupby("h_s")["markout2"].agg(["count", "sum"]).sort_index()
    rows = [(int(h), int(r["count"]), int(r["sum"])) for h, r in agg.iterrows()]
    return loaded - t, time.perf_counter() - loaded, rows


RUNNERS = {"duckdb": run_duckdb, "polars": run_polars, "pandas": run_pandas,
           "duckdb-view": run_duckdb_view, "audit-polars": run_audit_polars}
MODULES = {"duckdb": "duckdb", "polars": "polars", "pandas": "pandas", "duckdb-view": "duckdb",
           "audit-polars": "polars"}


def child(engine: str, data: Path) -> None:
    """Run one engine and print one JSON line: load/compute seconds, RSS, checksums."""
    import importlib
    import importlib.util

    module = MODULES[engine]
    if importlib.util.find_spec(module) is None or (
            engine == "pandas" and importlib.util.find_spec("pyarrow") is None):
        print(json.dumps({"engine": engine, "missing": module}))
        return
    importlib.import_module(module)
    base = rss_mb()
    load_s, compute_s, rows = RUNNERS[engine](data)
    print(json.dumps({"engine": engine, "load_s": load_s, "compute_s": compute_s,
                      "base_rss_mb": base, "peak_rss_mb": peak_rss_mb(), "rows": rows,
                      "version": importlib.import_module(module).__version__}))


# --- parent ----------------------------------------------------------------------------------------


def run_child(engine: str, data: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", engine, "--data", str(data)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"engine": engine, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(args: argparse.Namespace, gen_s: float, results: list[dict[str, Any]]) -> None:
    print(f"markouts at +{'/+'.join(map(str, HORIZONS_S))} s: {args.fills:,} fills × {args.tops:,} "
          f"book tops, {args.markets} markets, seed {args.seed}; data generated in {gen_s:.1f} s")
    print(f"{benchkit.load_line()}; Python {platform.python_version()}; every engine uses all CPUs "
          "it finds except pandas (one thread)")
    reference = next((r["rows"] for r in results if "rows" in r), None)
    rows = []
    for r in results:
        if "missing" in r or "error" in r:
            rows.append([r["engine"], "-", "-", "-", "-", "-", "-",
                         f"not installed ({r['missing']})" if "missing" in r else f"error: {r['error']}"])
            continue
        matched = sum(m for _, m, _ in r["rows"])
        rows.append([f"{r['engine']} {r['version']}", f"{r['load_s']:.2f}", f"{r['compute_s']:.2f}",
                     f"{r['load_s'] + r['compute_s']:.2f}", f"{r['peak_rss_mb']:.0f}",
                     f"{r['peak_rss_mb'] - r['base_rss_mb']:.0f}", f"{matched:,}",
                     "yes" if r["rows"] == reference else f"NO: {r['rows']}"])
    benchkit.print_table(["engine", "load s", "markouts s", "total s", "peak RSS MB",
                          "above import MB", "probes matched", "same checksums"], rows)
    if reference:
        print("checksums (h_s, matched, Σ 2×markout):", reference)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fills", type=int, default=1_000_000)
    ap.add_argument("--tops", type=int, default=20_000_000)
    ap.add_argument("--markets", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--small", action="store_true", help="20 k fills × 400 k tops")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--data", type=Path, help="data directory (default: a temporary one)")
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.data)
        return
    if args.small:
        args.fills, args.tops = 20_000, 400_000
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = set(engines) - set(ENGINES)
    if unknown:
        ap.error(f"unknown engine(s) {sorted(unknown)}; choose from {ENGINES}")
    data = args.data or Path(tempfile.mkdtemp(prefix="bench-audit-"))
    try:
        gen_s = generate(data, args.fills, args.tops, args.markets, args.seed)
        results = [run_child(e, data) for e in engines]
        report(args, gen_s, results)
    finally:
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
