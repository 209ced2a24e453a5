"""Benchmark: order round trips per second against the local exchange over real HTTP.

Run: ``.venv/bin/python bench/order_roundtrip.py [--round-trips 3000 --seconds 6]``

The local exchange (:class:`~mmcore.sim.server.SimStack`, seeded default scenario, participants
off) runs in a spawned process of its own; this process is the client. When
``os.sched_setaffinity`` exists and two CPUs are free, the server is pinned to one CPU and the
client to the others. The exchange's rate-limit emulation is lifted (``ex.tier`` set to an
unlimited tier) so the figures are the software's, not Kalshi's token buckets (Basic allows 100
write tokens/s; a create costs 10).

Modes, each stopped after ``--round-trips`` round trips or ``--seconds`` seconds, after a short
warm-up (connections open, code paths hot):

1. **floor** — bare ``httpx`` ``GET /exchange/status`` (unsigned), one at a time: what one HTTP
   round trip costs on this machine with these two processes.
2. **create+cancel** — our :class:`~mmcore.venues.kalshi.rest.KalshiRest`: ``create_order``
   (post-only 1-contract bid, 1–10 ¢) then ``cancel_order`` of its id, one pair at a time.
3. **batch 10 + batch cancel** — ``batch_create`` of 10 such bids, then ``batch_cancel`` of
   the 10.

Modes 2 and 3 run with pre-signing on (client defaults; ``refill_presigned()`` from a 1 s timer
task, as the worker's idle timer does) and off (``presign=False``: every request signed live).
Figures: round trips/s, orders/s, p50/p99 of the whole round trip (wall clock around the
calls, signing and parsing included), p50/p99 **ack latency** (``OrderAck.latency_ns`` /
``CancelAck.latency_ns``: request fully written → response read, so signing is excluded), the
signing counters ``presigned_used`` / ``live_signed``, the signatures the refill timer made, and
both processes' CPU busy share (CPU time / wall time) during the mode. With pre-signing on, the
create-call latency is also split by whether that create found a pre-signed header.
Nothing is asserted.

Reading the signing counters: only fixed paths are pre-signed (single create, batch create,
batch cancel); a single cancel's path holds the order id, so it is always signed live. With the
client's default pool (30 headers stamped 200 ms apart, 5 s lifetime) a path can use at most
about one pre-signed header per 200 ms of elapsed time, so at hundreds of requests a second most
requests fall back to live signing — the counters show how many.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from benchkit import (CpuSpan, ask_cpu_time, load_line, pct, placement, print_table, run_pinned,
                      run_with_exchange, split_cpus)

UNLIMITED = 1e12
"""Tokens per second and bucket capacity of the lifted rate tier."""
BATCH = 10
COUNT = 100
"""Centi-contracts per order (one contract)."""
WARMUP = 20
REFILL_EVERY_S = 1.0


# --- server process ------------------------------------------------------------------------------


async def _serve(pipe: Connection, seed: int) -> None:
    from mmcore.sim.exchange import RateTier
    from mmcore.sim.scenario import default_scenario
    from mmcore.sim.server import SimStack

    sc = default_scenario(seed, time.time_ns())
    with tempfile.TemporaryDirectory(prefix="bench-roundtrip-") as tmp:
        async with SimStack(sc, Path(tmp), run_participants=False) as stack:
            stack.exchange.tier = RateTier(UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED)
            pipe.send({"rest_url": stack.rest_url, "key_id": stack.creds.key_id,
                       "key_path": str(stack.creds.private_key_path),
                       "market": sc.games[0].markets[0]})
            while True:  # serve until told to stop; answer CPU-time questions meanwhile
                await asyncio.sleep(0.02)
                if not pipe.poll():
                    continue
                msg = pipe.recv()
                if msg == "stop":
                    return
                if msg == "cpu":
                    pipe.send(time.process_time())


def server_main(pipe: Connection, cpus: set[int] | None, seed: int) -> None:
    """Entry point of the exchange process."""
    run_pinned(pipe, cpus, lambda: _serve(pipe, seed))


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class ModeResult:
    name: str
    round_trips: int = 0
    orders: int = 0
    wall_s: float = 0.0
    rt_ns: list[int] = field(default_factory=list)
    """Wall clock per round trip."""
    create_ack_ns: list[int] = field(default_factory=list)
    cancel_ack_ns: list[int] = field(default_factory=list)
    create_call_presigned_ns: list[int] = field(default_factory=list)
    create_call_live_ns: list[int] = field(default_factory=list)
    presigned_used: int | None = None
    live_signed: int | None = None
    refill_signatures: int | None = None
    retries: int = 0
    item_errors: int = 0
    client_cpu: float = 0.0
    server_cpu: float | None = None


class ServerCpu:
    """Asks the server process for its CPU time (between modes, never while timing)."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe

    def read(self) -> float | None:
        return ask_cpu_time(self.pipe)


async def _timed(name: str, n: int, max_s: float, one: Callable[[ModeResult], Awaitable[None]],
                 cpu: ServerCpu, after_warmup: Callable[[], None] = lambda: None) -> ModeResult:
    """Warm up, call ``after_warmup``, then run ``one`` until ``n`` round trips or ``max_s``
    seconds."""
    warm = ModeResult(name)
    for _ in range(min(WARMUP, n)):
        await one(warm)
    after_warmup()
    r = ModeResult(name)
    span = CpuSpan(cpu.read)
    deadline = span.t0 + max_s
    while r.round_trips < n and time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        await one(r)
        r.rt_ns.append(time.perf_counter_ns() - start)
        r.round_trips += 1
    r.wall_s, r.client_cpu, r.server_cpu = span.end()
    return r


async def floor_mode(cfg: dict[str, Any], args: argparse.Namespace, cpu: ServerCpu) -> ModeResult:
    import httpx

    url = cfg["rest_url"] + "/exchange/status"
    async with httpx.AsyncClient(timeout=5.0, http1=True, http2=False) as http:
        async def one(r: ModeResult) -> None:
            (await http.get(url)).raise_for_status()

        return await _timed("GET /exchange/status (floor)", args.round_trips, args.seconds,
                            one, cpu)


async def _with_refill(rest: Any, presign: bool,
                       run: Callable[[Callable[[], None]], Awaitable[ModeResult]]) -> ModeResult:
    """Run a mode with the 1 s refill timer (pre-signing on); record the signing counters and
    the refill work from the end of the warm-up (``run`` calls the mark it is given then)."""
    made = [0]
    base = {"used": 0, "live": 0, "retries": 0}

    async def refill() -> None:
        while True:
            await asyncio.sleep(REFILL_EVERY_S)
            made[0] += await rest.refill_presigned()

    def mark() -> None:
        made[0] = 0
        base.update(used=rest.presigned_used, live=rest.live_signed, retries=rest.retries)

    task = asyncio.create_task(refill()) if presign else None
    try:
        r = await run(mark)
    finally:
        if task is not None:
            task.cancel()
    r.presigned_used = rest.presigned_used - base["used"]
    r.live_signed = rest.live_signed - base["live"]
    r.refill_signatures = made[0] if presign else None
    r.retries = rest.retries - base["retries"]
    return r


async def pair_mode(cfg: dict[str, Any], args: argparse.Namespace, signer: Any, presign: bool,
                    cpu: ServerCpu) -> ModeResult:
    from mmcore.orders import Quote
    from mmcore.venues.kalshi.rest import KalshiRest

    market, step = cfg["market"], [0]
    async with KalshiRest(cfg["rest_url"], signer, presign=presign) as rest:
        async def one(r: ModeResult) -> None:
            step[0] += 1
            q = Quote(market, "bid", (step[0] % 10 + 1) * 100, COUNT)
            used = rest.presigned_used
            t0 = time.perf_counter_ns()
            ack = await rest.create_order(q)
            dt = time.perf_counter_ns() - t0
            (r.create_call_presigned_ns if rest.presigned_used > used
             else r.create_call_live_ns).append(dt)
            c = await rest.cancel_order(ack.order_id)
            r.create_ack_ns.append(ack.latency_ns)
            r.cancel_ack_ns.append(c.latency_ns)
            r.orders += 1

        name = f"create+cancel, presign {'on' if presign else 'off'}"
        return await _with_refill(
            rest, presign, lambda mark: _timed(name, args.round_trips, args.seconds, one, cpu,
                                            mark))


async def batch_mode(cfg: dict[str, Any], args: argparse.Namespace, signer: Any, presign: bool,
                     cpu: ServerCpu) -> ModeResult:
    from mmcore.orders import Quote
    from mmcore.venues.kalshi.rest import CancelAck, KalshiRest, OrderAck

    market = cfg["market"]
    quotes = [Quote(market, "bid", (i + 1) * 100, COUNT) for i in range(BATCH)]
    async with KalshiRest(cfg["rest_url"], signer, presign=presign) as rest:
        async def one(r: ModeResult) -> None:
            acks = await rest.batch_create(quotes)
            ids = [a.order_id for a in acks if isinstance(a, OrderAck)]
            r.item_errors += len(acks) - len(ids)
            cancels = await rest.batch_cancel(ids)
            done = [c for c in cancels if isinstance(c, CancelAck)]
            r.item_errors += len(cancels) - len(done)
            if ids:  # one reply per batch: every item carries the same latency
                r.create_ack_ns.append(next(a for a in acks if isinstance(a, OrderAck)).latency_ns)
            if done:
                r.cancel_ack_ns.append(done[0].latency_ns)
            r.orders += len(ids)

        name = f"batch {BATCH}+batch cancel, presign {'on' if presign else 'off'}"
        return await _with_refill(
            rest, presign, lambda mark: _timed(name, args.round_trips, args.seconds, one, cpu,
                                            mark))


async def run_client(cfg: dict[str, Any], args: argparse.Namespace, pipe: Connection
                     ) -> list[ModeResult]:
    from mmcore.venues.kalshi.auth import Signer, load_private_key

    signer = Signer(cfg["key_id"], load_private_key(cfg["key_path"]))
    cpu = ServerCpu(pipe)
    out = [await floor_mode(cfg, args, cpu)]
    for presign in (True, False):
        out.append(await pair_mode(cfg, args, signer, presign, cpu))
    for presign in (True, False):
        out.append(await batch_mode(cfg, args, signer, presign, cpu))
    return out


# --- report --------------------------------------------------------------------------------------


def _ms2(values: list[int]) -> str:
    a, b = pct(values, 0.50), pct(values, 0.99)
    return "-" if a is None or b is None else f"{a:.2f} / {b:.2f}"


def report(args: argparse.Namespace, results: list[ModeResult], server_pinned: bool,
           client_pinned: bool, cpus: tuple[set[int] | None, set[int] | None],
           load: str) -> None:
    where_s, where_c = placement(cpus, server_pinned, client_pinned)
    print(f"order round trips: local exchange over HTTP/1.1 on 127.0.0.1, one request in flight; "
          f"up to {args.round_trips} round trips or {args.seconds:g} s per mode; "
          f"server {where_s}, client {where_c}; rate limits lifted; {load}")
    header = ("mode", "n", "rt/s", "orders/s", "rt p50/p99 ms", "create ack p50/p99 ms",
              "cancel ack p50/p99 ms", "presigned/live", "CPU srv/cli")
    rows = []
    for r in results:
        rts = r.round_trips / r.wall_s if r.wall_s > 0 else 0.0
        signing = ("-" if r.presigned_used is None
                   else f"{r.presigned_used}/{r.live_signed}")
        srv = "?" if r.server_cpu is None else f"{r.server_cpu:.0%}"
        rows.append((r.name, str(r.round_trips), f"{rts:,.0f}",
                     f"{r.orders / r.wall_s:,.0f}" if r.orders else "-",
                     _ms2(r.rt_ns), _ms2(r.create_ack_ns), _ms2(r.cancel_ack_ns), signing,
                     f"{srv}/{r.client_cpu:.0%}"))
    print_table(header, rows)
    for r in results:
        if r.refill_signatures is not None:
            line = (f"{r.name}: the 1 s refill timer made {r.refill_signatures} signatures "
                    f"off the hot path")
            if r.create_call_presigned_ns or r.create_call_live_ns:
                line += (f"; create call p50 {_p50(r.create_call_presigned_ns)} with a "
                         f"pre-signed header ({len(r.create_call_presigned_ns)}) vs "
                         f"{_p50(r.create_call_live_ns)} signed live "
                         f"({len(r.create_call_live_ns)})")
            print(line)
        if r.retries or r.item_errors:
            print(f"{r.name}: retries {r.retries}, item errors {r.item_errors}")
    floor = results[0]
    best = max(results[1:], key=lambda r: r.orders / r.wall_s if r.wall_s else 0.0)
    print(f"result: floor {floor.round_trips / floor.wall_s:,.0f} HTTP round trips/s; "
          f"best order throughput {best.orders / best.wall_s:,.0f} orders/s ({best.name})")


def _p50(values: list[int]) -> str:
    v = pct(values, 0.5)
    return "n/a" if v is None else f"{v:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--round-trips", type=int, default=3000,
                    help="round trips per mode (a GET, a create+cancel pair, a batch round)")
    ap.add_argument("--seconds", type=float, default=6.0, help="time cap per mode")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    if args.round_trips < 1 or args.seconds <= 0:
        ap.error("--round-trips must be >= 1 and --seconds > 0")

    load = load_line()
    cpus = split_cpus()
    results, server_pinned, client_pinned = run_with_exchange(
        server_main, (args.seed,), "roundtrip-exchange", cpus,
        lambda cfg, pipe: asyncio.run(run_client(cfg, args, pipe)))
    report(args, results, server_pinned, client_pinned, cpus, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
