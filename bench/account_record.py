"""Benchmark: the cost of one operation on the account's shared rate-budget record.

Question (issue 11 item 5, scale): every REST request of every process on a key takes the
record's exclusive ``flock``, reads and decodes it, reclaims dead/silent slots, charges the
bucket, encodes and writes it back (:mod:`mmcore.venues.kalshi.account_file`). How much CPU
(and wall time, i.e. time the lock is held) does one operation cost with L live processes in
the record? With 50 workers at a few hundred operations a second this is what they serialise on.

Run: ``.venv/bin/python bench/account_record.py [--live 1,50,200 --ops 3000]`` (≈ 10 s).

The live slots other than this process's are written straight into the record with the pid of
this process's parent (a real live pid, so the liveness check does its real system calls);
every operation is a real :meth:`AccountBudgetFile.try_take` of 0 read tokens. Figures: µs of
CPU and of wall time per operation (mean over ``--ops``), the record's size.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from benchkit import load_line, print_table  # noqa: E402


def one(live: int, ops: int) -> list[str]:
    from mmcore.venues.kalshi import account_budget as ab
    from mmcore.venues.kalshi.account_file import AccountBudgetFile

    path = Path(tempfile.mkdtemp(prefix="mm-bench-record-")) / "acct.budget"
    f = AccountBudgetFile(path, tier="basic", read=(200, 400), write=(100, 100), label="bench")
    with f._locked() as (state, _me):
        free = [i for i, s in enumerate(state.slots) if s.free][: live - 1]
        for n, i in enumerate(free):
            state.slots[i] = ab.Slot(os.getppid(), 1000 + n, time.monotonic_ns(), f"EV-{n}")
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(ops):
        now = time.monotonic_ns()
        f.try_take("read", 0.0, cancel=False, since_ns=now, now_ns=now)
        # the others keep heartbeating (a silent slot would be reclaimed after 10 s)
    wall, cpu = (time.perf_counter() - t0) / ops * 1e6, (time.process_time() - c0) / ops * 1e6
    f.close()
    return [str(live), f"{cpu:.0f}", f"{wall:.0f}", f"{ab.RECORD_SIZE:,}", str(ab.MAX_SLOTS)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", default="1,50,200", help="live processes in the record")
    ap.add_argument("--ops", type=int, default=3000)
    args = ap.parse_args(argv)
    print(f"account record bench: {load_line()}")
    rows = [one(int(x), args.ops) for x in args.live.split(",") if x]
    print_table(["live slots", "CPU µs/op", "wall µs/op", "record bytes", "slots"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
