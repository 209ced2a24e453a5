"""Benchmark: how many book deltas per second the local exchange fans out to N WebSocket clients.

Run: ``.venv/bin/python bench/exchange_fanout.py [--subscribers 50 --deltas 20000 --seconds 30]``

Two processes, so client parsing never shares the server's core:

- **server** (this process, pinned to one CPU when ``os.sched_setaffinity`` exists): a
  :class:`~mmcore.sim.server.SimStack` on 127.0.0.1 (seeded default scenario, participants off).
  Once every subscriber has its snapshot, it makes book changes as fast as it can through
  :meth:`LocalExchange.mutate` — a non-mm user places a GTC bid at the next cent level and
  cancels the bid placed ``WINDOW`` steps before, so every place and every cancel changes one
  level and yields one ``orderbook_delta``. After each ``--chunk`` deltas it yields to the event
  loop so the hub's writer tasks send what was queued. It stops after ``--deltas`` deltas or
  ``--seconds`` seconds, whichever comes first.
- **client** (a spawned process, on the other CPUs): ``--subscribers`` raw ``websockets``
  connections with signed handshakes (:class:`~mmcore.venues.kalshi.auth.Signer`), each
  subscribed to ``orderbook_delta`` for the one market being changed (``use_yes_price``). It
  counts ``orderbook_delta`` frames, records ``receipt − ts_ms`` per frame and notes any
  ``error`` 25 (subscription dropped: the server's per-connection queue overflowed).

Figures (all printed, none asserted):

- generated deltas/s — engine deltas made per second of generation;
- fan-out deltas/s — deltas that reached **every** subscriber, per second from the first
  delta to the last receipt (the headline figure, compared with the 5,000/s goal);
- delivered msgs/s — ``orderbook_delta`` frames received across all subscribers per second
  (= subscribers × fan-out deltas/s when all keep up);
- p50/p99/max delay — client wall clock at receipt minus the frame's ``ts_ms`` (the engine
  event's time). ``ts_ms`` is floored to the millisecond, so each delay reads 0–1 ms high;
- CPU busy — process CPU time / wall time over the run, per process (≈100 % on the server
  means the server's core was the limit; on the client, that the client was).

Both processes read the same wall clock (``time.time_ns``), so the delays need no clock sync.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

GOAL_DELTAS_PER_S = 5_000
"""The issue's goal: deltas per second fanned out to 50 subscribers on one core."""
BENCH_USER = "bench-flow"
"""The non-mm user whose orders change the book."""
BENCH_BALANCE = 10**15
"""Price units ($100 bn): never the limit."""
WINDOW = 40
"""Resting orders kept; the oldest is canceled as a new one rests (levels cycle over 1–98 ¢)."""
LEVELS = 98
COUNT = 100
"""Centi-contracts per order (one contract)."""
DELAY_BIN_NS = 100_000
"""Delay histogram resolution: 0.1 ms."""
QUIET_S = 3.0
"""After generation, the client stops waiting once no frame has arrived for this long."""
CONNECT_TIMEOUT_S = 30.0


# --- CPU pinning ---------------------------------------------------------------------------------


def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, client CPUs): one CPU for the server, the rest for the client; (None,
    None) when affinity cannot be set or only one CPU is available."""
    if not hasattr(os, "sched_setaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def pin(cpus: set[int] | None) -> bool:
    if cpus is None:
        return False
    try:
        os.sched_setaffinity(0, cpus)
    except OSError:
        return False
    return True


# --- client process ------------------------------------------------------------------------------


@dataclass
class SubStats:
    deltas: int = 0
    errors25: int = 0
    other_errors: int = 0
    last_rx_ns: int = 0


@dataclass
class ClientStats:
    subs: list[SubStats]
    hist: dict[int, int] = field(default_factory=dict)
    """Delay bin (DELAY_BIN_NS) → frames."""
    first_rx_ns: int = 0


async def _read(ws: Any, st: SubStats, all_: ClientStats) -> None:
    """Count frames with string tests only (no json.loads on the hot path): the server writes
    compact JSON with ``type`` first and ``ts_ms`` last."""
    hist = all_.hist
    try:
        async for raw in ws:
            now = time.time_ns()
            if raw.startswith('{"type":"orderbook_delta"'):
                i = raw.rfind('"ts_ms":')
                ts_ms = int(raw[i + 8:raw.index("}", i)])
                b = (now - ts_ms * 1_000_000) // DELAY_BIN_NS
                hist[b] = hist.get(b, 0) + 1
                st.deltas += 1
                st.last_rx_ns = now
                if not all_.first_rx_ns:
                    all_.first_rx_ns = now
            elif raw.startswith('{"type":"error"'):
                code = json.loads(raw).get("msg", {}).get("code")
                if code == 25:
                    st.errors25 += 1
                else:
                    st.other_errors += 1
    except Exception:  # the connection closed: the counts so far stand
        pass


async def _connect(cfg: dict[str, Any], signer: Any, idx: int) -> tuple[Any, bool]:
    """One signed connection, subscribed, with its snapshot read. Returns (ws, deflate?)."""
    from websockets.asyncio.client import connect

    from mmcore.venues.kalshi.auth import WS_PATH

    headers = signer.headers("GET", WS_PATH, timestamp_ms=time.time_ns() // 1_000_000)
    ws = await connect(cfg["ws_url"], additional_headers=headers, ping_interval=None,
                       max_queue=1024, compression=cfg["compression"])
    deflate = "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
    await ws.send(json.dumps({"id": idx + 1, "cmd": "subscribe", "params": {
        "channels": ["orderbook_delta"], "market_tickers": [cfg["market"]],
        "use_yes_price": True}}))
    while True:  # subscribed, then the snapshot
        frame = json.loads(await ws.recv())
        if frame.get("type") == "orderbook_snapshot":
            return ws, deflate
        if frame.get("type") == "error":
            raise RuntimeError(f"subscribe refused: {frame}")


async def _client(pipe: Connection) -> None:
    from mmcore.venues.kalshi.auth import Signer, load_private_key

    cfg = pipe.recv()
    signer = Signer(cfg["key_id"], load_private_key(cfg["key_path"]))
    n = cfg["subscribers"]
    opened = await asyncio.wait_for(
        asyncio.gather(*(_connect(cfg, signer, i) for i in range(n))), CONNECT_TIMEOUT_S)
    conns = [ws for ws, _ in opened]
    stats = ClientStats([SubStats() for _ in conns])
    readers = [asyncio.create_task(_read(ws, st, stats)) for ws, st in zip(conns, stats.subs)]
    cpu0, wall0 = time.process_time(), time.monotonic()
    pipe.send({"ready": True, "deflate": all(d for _, d in opened)})

    done: dict[str, Any] | None = None
    while done is None:  # the server is generating
        await asyncio.sleep(0.02)
        if pipe.poll():
            done = pipe.recv()
    target = done["deltas"]
    last_progress, seen = time.monotonic(), -1
    while True:  # drain: every subscriber complete or dropped, or quiet for QUIET_S
        total = sum(s.deltas for s in stats.subs)
        if all(s.deltas >= target or s.errors25 for s in stats.subs):
            break
        if total != seen:
            seen, last_progress = total, time.monotonic()
        elif time.monotonic() - last_progress > QUIET_S:
            break
        await asyncio.sleep(0.02)
    cpu1, wall1 = time.process_time(), time.monotonic()
    for r in readers:
        r.cancel()
    await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
    pipe.send({
        "per_sub": [s.deltas for s in stats.subs],
        "errors25": sum(s.errors25 for s in stats.subs),
        "other_errors": sum(s.other_errors for s in stats.subs),
        "first_rx_ns": stats.first_rx_ns,
        "last_rx_ns": max((s.last_rx_ns for s in stats.subs), default=0),
        "hist": stats.hist,
        "cpu_busy": (cpu1 - cpu0) / max(wall1 - wall0, 1e-9),
    })


def client_main(pipe: Connection, cpus: set[int] | None) -> None:
    """Entry point of the client process."""
    pinned = pin(cpus)
    pipe.send({"pinned": pinned})
    try:
        asyncio.run(_client(pipe))
    except BaseException as exc:  # tell the server instead of leaving it waiting
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


# --- server process ------------------------------------------------------------------------------


async def _recv(pipe: Connection, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while not pipe.poll():
        if time.monotonic() > deadline:
            raise TimeoutError("no answer from the client process")
        await asyncio.sleep(0.01)
    msg = pipe.recv()
    if "error" in msg:
        raise RuntimeError(f"client process failed: {msg['error']}")
    return msg


async def _generate(ex: Any, market: str, max_deltas: int, max_s: float, chunk: int,
                    count_deltas: list[int]) -> tuple[int, int, int]:
    """Book changes until ``max_deltas`` deltas or ``max_s`` seconds. Returns (deltas, t0_ns,
    t1_ns); ``count_deltas[0]`` is kept by an exchange sink."""
    from mmcore.sim.engine import OrderRequest

    resting: list[str] = []
    step = 0
    t0 = time.time_ns()
    deadline = t0 + int(max_s * 1e9)
    while count_deltas[0] < max_deltas:
        for _ in range(chunk):
            if len(resting) >= WINDOW:
                oid = resting.pop(0)
                ex.mutate(lambda eng, now, o=oid: eng.cancel(BENCH_USER, o, now))
            else:
                price = (step % LEVELS + 1) * 100  # 1..98 cents, price units
                step += 1
                req = OrderRequest(BENCH_USER, market, "bid", price, COUNT)
                resting.append(ex.mutate(lambda eng, now, r=req: eng.place(r, now)).order.order_id)
            if count_deltas[0] >= max_deltas:
                break
        await asyncio.sleep(0)  # let the hub's writers send what is queued
        if time.time_ns() >= deadline:
            break
    return count_deltas[0], t0, time.time_ns()


async def _serve(args: argparse.Namespace, pipe: Connection) -> dict[str, Any]:
    from mmcore.sim.engine_types import BookDelta
    from mmcore.sim.scenario import default_scenario
    from mmcore.sim.server import SimStack

    sc = default_scenario(args.seed, time.time_ns())
    market = sc.games[0].markets[0]
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        async with SimStack(sc, Path(tmp), run_participants=False) as stack:
            ex = stack.exchange
            ex.engine.add_user(BENCH_USER, balance=BENCH_BALANCE)
            deltas = [0]

            def count(events: list[Any]) -> None:
                deltas[0] += sum(1 for e in events if isinstance(e, BookDelta))

            ex.subscribe(count)
            pipe.send({"ws_url": stack.ws_url, "key_id": stack.creds.key_id,
                       "key_path": str(stack.creds.private_key_path), "market": market,
                       "subscribers": args.subscribers,
                       "compression": None if args.no_compression else "deflate"})
            hello = await _recv(pipe, CONNECT_TIMEOUT_S + 10)
            cpu0 = time.process_time()
            n, t0, t1 = await _generate(ex, market, args.deltas, args.seconds, args.chunk, deltas)
            cpu_gen = time.process_time() - cpu0
            pipe.send({"deltas": n})
            result = await _recv(pipe, args.seconds + 60)  # the server keeps serving meanwhile
            cpu_all = time.process_time() - cpu0
            end = max(result["last_rx_ns"], t1)
            return {**result, "deltas": n, "t0_ns": t0, "t1_ns": t1, "market": market,
                    "deflate": hello["deflate"], "server_cpu_gen": cpu_gen / ((t1 - t0) / 1e9),
                    "server_cpu_all": cpu_all / ((end - t0) / 1e9)}


# --- report --------------------------------------------------------------------------------------


def load_line() -> str:
    """The 1-minute load average, read before the run starts (other work on the machine skews
    every figure here)."""
    if not hasattr(os, "getloadavg"):
        return "load average n/a"
    return f"load average before run {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"


def percentile(hist: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0–1) of a delay histogram, in ms (upper edge of its bin)."""
    total = sum(hist.values())
    if not total:
        return None
    need, acc = q * total, 0
    for b in sorted(hist):
        acc += hist[b]
        if acc >= need:
            return (b + 1) * DELAY_BIN_NS / 1e6
    return None


def report(args: argparse.Namespace, r: dict[str, Any], server_pinned: bool, client_pinned: bool,
           cpus: tuple[set[int] | None, set[int] | None], load: str) -> bool:
    """Print the table and verdict; returns whether every subscriber kept up."""
    n, subs = r["deltas"], args.subscribers
    gen_s = (r["t1_ns"] - r["t0_ns"]) / 1e9
    span_s = (max(r["last_rx_ns"], r["t1_ns"]) - r["t0_ns"]) / 1e9
    per_sub = r["per_sub"]
    delivered = sum(per_sub)
    complete = min(per_sub) if per_sub else 0
    all_kept_up = r["errors25"] == 0 and complete >= n
    fanout = complete / span_s if span_s > 0 else 0.0
    hist = {int(k): v for k, v in r["hist"].items()}
    p50, p99, pmax = percentile(hist, 0.50), percentile(hist, 0.99), percentile(hist, 1.0)

    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f} ms"

    server_where = f"CPU {sorted(cpus[0])}" if server_pinned and cpus[0] else "not pinned"
    client_where = f"CPUs {sorted(cpus[1])}" if client_pinned and cpus[1] else "not pinned"
    rows = [
        ("subscribers", f"{subs} on market {r['market']}"),
        ("permessage-deflate", "on" if r["deflate"] else "off"),
        ("server process", f"{server_where}, CPU busy {r['server_cpu_gen']:.0%} while "
                           f"generating, {r['server_cpu_all']:.0%} to last receipt"),
        ("client process", f"{client_where}, CPU busy {r['client_cpu']:.0%}"),
        ("deltas generated", f"{n} in {gen_s:.2f} s"),
        ("generated deltas/s", f"{n / gen_s:,.0f}" if gen_s > 0 else "n/a"),
        ("fan-out deltas/s", f"{fanout:,.0f}  (deltas reaching all {subs}, first delta → "
                             f"last receipt {span_s:.2f} s)"),
        ("delivered msgs/s", f"{delivered / span_s:,.0f}  ({delivered} orderbook_delta frames; "
                             f"expected {subs * n})" if span_s > 0 else "n/a"),
        ("delay p50 / p99 / max", f"{ms(p50)} / {ms(p99)} / {ms(pmax)}  (receipt − ts_ms)"),
        ("fell behind (error 25)", f"{r['errors25']} subscriber(s)"
                                   + (f"; other errors {r['other_errors']}"
                                      if r["other_errors"] else "")),
        ("slowest subscriber", f"{complete} of {n} deltas"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"exchange fan-out: {subs} WebSocket subscribers, up to {args.deltas} deltas "
          f"or {args.seconds:g} s, chunk {args.chunk}, seed {args.seed}; {load}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    if not all_kept_up:
        verdict = (f"NOT MEASURED CLEANLY: {r['errors25']} subscriber(s) dropped / slowest got "
                   f"{complete} of {n}; fan-out {fanout:,.0f} deltas/s is a lower bound")
    elif fanout >= GOAL_DELTAS_PER_S:
        verdict = f"MEETS the {GOAL_DELTAS_PER_S:,}/s goal ({fanout:,.0f} deltas/s to all {subs})"
    else:
        verdict = (f"BELOW the {GOAL_DELTAS_PER_S:,}/s goal: {fanout:,.0f} deltas/s to all {subs} "
                   f"({fanout / GOAL_DELTAS_PER_S:.0%} of goal; "
                   f"{delivered / span_s:,.0f} msgs/s delivered)")
    print(f"verdict: {verdict}")
    return all_kept_up


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--deltas", type=int, default=20_000, help="stop after this many deltas")
    ap.add_argument("--seconds", type=float, default=30.0, help="stop generating after this long")
    ap.add_argument("--chunk", type=int, default=1,
                    help="deltas made between two yields to the event loop")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-compression", action="store_true",
                    help="do not offer permessage-deflate (our KalshiWs client offers it)")
    args = ap.parse_args(argv)
    if args.subscribers < 1 or args.deltas < 1 or args.seconds <= 0 or args.chunk < 1:
        ap.error("--subscribers, --deltas, --chunk must be >= 1 and --seconds > 0")

    load = load_line()
    cpus = split_cpus()
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=client_main, args=(theirs, cpus[1]), name="fanout-client",
                       daemon=True)
    proc.start()
    try:
        client_pinned = ours.recv()["pinned"] if ours.poll(30) else False
        server_pinned = pin(cpus[0])
        result = asyncio.run(_serve(args, ours))
        result["client_cpu"] = result.pop("cpu_busy")
    finally:
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()
    report(args, result, server_pinned, client_pinned, cpus, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
