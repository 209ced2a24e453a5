"""Runner of the reliability suite: ``make chaos`` = ``python -m tests.chaos.run``.

Runs ``tests/chaos`` under pytest at the chosen scale (``full`` by default here; plain ``pytest``
uses ``ci``), collects the figures every guarantee reported, prints one line per guarantee
(``G<N> <name>: <figure> (<bound>) PASS|FAIL``) and exits non-zero when a guarantee failed, reported
no figure, or pytest itself failed.

    python -m tests.chaos.run                 # full sizes, every guarantee
    python -m tests.chaos.run --scale ci      # the CI subset
    python -m tests.chaos.run -g 1 -g 5       # only guarantees 1 and 5
    python -m tests.chaos.run -- -x -v        # extra pytest arguments after --
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos import figures

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def guarantee_files(numbers: list[int]) -> list[Path]:
    files = sorted(HERE.glob("test_g*_*.py"))
    if numbers:
        files = [f for f in files if int(f.name.split("_")[1][1:]) in numbers]
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=figures.SCALES, default=os.environ.get("MM_CHAOS_SCALE", "full"))
    parser.add_argument("-g", "--guarantee", type=int, action="append", default=[],
                        choices=sorted(figures.GUARANTEES), help="run only this guarantee (repeatable)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    files = guarantee_files(args.guarantee)
    expected = sorted(args.guarantee or figures.GUARANTEES)
    if not files:  # never fall back to pytest's testpaths (the whole suite)
        print(f"no tests/chaos/test_g<N>_*.py for guarantee(s) {expected}")
        return 1
    with tempfile.TemporaryDirectory(prefix="mm-chaos-") as tmp:
        fig_path = Path(tmp) / "figures.jsonl"
        env = {**os.environ, "MM_CHAOS_SCALE": args.scale, "MM_CHAOS_FIGURES": str(fig_path)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, files),
               *args.pytest_args]
        print(f"== chaos (scale {args.scale}): {' '.join(cmd[1:])}", flush=True)
        start = time.monotonic()
        rc = subprocess.call(cmd, cwd=REPO, env=env)
        took = time.monotonic() - start
        lines = figures.summary_lines(figures.read(fig_path), expected)
    print(f"== chaos figures (scale {args.scale}, {took:.0f} s, pytest exit {rc})")
    for line, _ok in lines:
        print(line)
    ok = rc == 0 and all(ok for _line, ok in lines)
    print(f"== chaos: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
