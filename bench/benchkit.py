"""Scaffolding shared by the benchmarks in ``bench/``: CPU splitting and pinning, the load-average
line, CPU-busy measurement, nearest-rank percentiles, table printing and the two-process runner
(exchange in a spawned process, client in this one).

Not a benchmark itself; the scripts import it as ``benchkit`` (``python bench/<name>.py`` puts
``bench/`` on ``sys.path``, and spawned processes inherit the parent's ``sys.path``).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

T = TypeVar("T")

CpuSplit = tuple[set[int] | None, set[int] | None]
"""(server CPUs, client CPUs); both None when affinity is not set."""


# --- CPU pinning ---------------------------------------------------------------------------------


def split_cpus() -> CpuSplit:
    """(server CPUs, client CPUs): one CPU for the server, the rest for the client; (None,
    None) when affinity cannot be set or only one CPU is available."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def pin(cpus: set[int] | None) -> bool:
    """Restrict this process to ``cpus``; whether that was done (False for None or on error)."""
    if cpus is None:
        return False
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        return False
    return True


def placement(cpus: CpuSplit, server_pinned: bool, client_pinned: bool) -> tuple[str, str]:
    """Where the server and the client ran, for the header line: ``"CPU [0]"`` / ``"CPUs [1]"``,
    or ``"not pinned"``."""
    server = f"CPU {sorted(cpus[0])}" if server_pinned and cpus[0] else "not pinned"
    client = f"CPUs {sorted(cpus[1])}" if client_pinned and cpus[1] else "not pinned"
    return server, client


# --- measuring -----------------------------------------------------------------------------------


def load_line() -> str:
    """The 1-minute load average, read before the run starts (other work on the machine skews
    every figure here)."""
    if not hasattr(os, "getloadavg"):
        return "load average n/a"
    return f"load average before run {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


def pct(values: list[int], q: float) -> float | None:
    """The ``q`` quantile (0–1, nearest rank) of ns values, in ms; None when empty."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * len(v) + 0.5) - 1))] / 1e6


def ask_cpu_time(pipe: Connection) -> float | None:
    """The server process's CPU time in seconds (it answers ``"cpu"`` with
    ``time.process_time()``); None when it does not answer within 5 s. Call between timed
    spans, never inside one."""
    pipe.send("cpu")
    return pipe.recv() if pipe.poll(5) else None


class CpuSpan:
    """CPU busy share (CPU seconds ÷ wall seconds) of this process and of the server over a span
    that starts at construction: the server's CPU time is read first, then this process's, then
    the wall clock (``t0``, ``time.perf_counter`` seconds)."""

    def __init__(self, server_cpu: Callable[[], float | None]) -> None:
        self._server_cpu = server_cpu
        self._s0 = server_cpu()
        self._c0 = time.process_time()
        self.t0 = time.perf_counter()

    def end(self) -> tuple[float, float, float | None]:
        """(wall seconds, client CPU busy, server CPU busy or None when it did not answer)."""
        wall_s = time.perf_counter() - self.t0
        client = (time.process_time() - self._c0) / wall_s
        s1 = self._server_cpu()
        server = None if self._s0 is None or s1 is None else (s1 - self._s0) / wall_s
        return wall_s, client, server


# --- report --------------------------------------------------------------------------------------


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns two spaces apart, each as wide as its widest cell; the first left-aligned, the
    rest right-aligned. ``rows`` must not be empty."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header))
    for row in rows:
        print(fmt.format(*row))


# --- processes -----------------------------------------------------------------------------------


def run_pinned(pipe: Connection, cpus: set[int] | None,
               main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Body of a spawned process: pin it to ``cpus`` and send ``{"pinned": bool}``, then run
    ``main()`` in a new event loop; a failure is sent as ``{"error": "Type: message"}`` (so the
    other process does not wait for nothing) and re-raised."""
    pipe.send({"pinned": pin(cpus)})
    try:
        asyncio.run(main())
    except BaseException as exc:
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


def reap(proc: BaseProcess, timeout_s: float = 10.0) -> None:
    """Wait up to ``timeout_s`` seconds for ``proc`` to exit, then terminate it."""
    proc.join(timeout=timeout_s)
    if proc.is_alive():
        proc.terminate()


def run_with_exchange(target: Callable[..., None], target_args: tuple[Any, ...], name: str,
                      cpus: CpuSplit, client: Callable[[dict[str, Any], Connection], T]
                      ) -> tuple[T, bool, bool]:
    """Spawn the exchange process ``target(pipe, cpus[0], *target_args)``, which sends
    ``{"pinned": bool}`` and then its config dict (or ``{"error": ...}``); pin this process to
    ``cpus[1]`` and return ``(client(config, pipe), server pinned, client pinned)``. The exchange
    is sent ``"stop"`` afterwards and reaped, also on failure. Waits up to 30 s for the process
    to start and 60 s for the exchange to come up."""
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(theirs, cpus[0], *target_args), name=name,
                       daemon=True)
    proc.start()
    try:
        if not ours.poll(30):
            raise TimeoutError("the exchange process did not start")
        server_pinned = ours.recv()["pinned"]
        if not ours.poll(60):
            raise TimeoutError("the exchange process did not come up")
        cfg = ours.recv()
        if "error" in cfg:
            raise RuntimeError(f"exchange process failed: {cfg['error']}")
        client_pinned = pin(cpus[1])
        result = client(cfg, ours)
    finally:
        try:
            ours.send("stop")
        except OSError:
            pass
        reap(proc)
    return result, server_pinned, client_pinned
