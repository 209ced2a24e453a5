"""Benchmark: tick-to-wire latency — WS book delta received → order request written.

Run: ``.venv/bin/python bench/tick_to_wire.py [--ticks 150 --warmup 15 --interval-ms 40]``

Two processes (as in ``bench/order_roundtrip.py``), pinned to separate CPUs when
``os.sched_setaffinity`` allows:

- **server** (spawned): a :class:`~mmcore.sim.server.SimStack` (one NBA game starting in an hour,
  participants off, rate-limit emulation lifted) plus a second funded user, ``rival``. On a pipe
  command it changes the book *as that user* through :meth:`LocalExchange.mutate` — one post-only
  bid placed, or that bid cancelled — so every tick is exactly one ``orderbook_delta``.
- **client** (this process): the code under test.

Ticks. Market A's YES bid side holds a rival bid at ``L`` (three ticks under the worker's cap, so
the worker joins it at ``L``). Tick *improve* places a rival bid at ``L + 2 ticks`` (still inside
the cap): the worker must move its bid up to join it. Tick *retreat* cancels that bid: the worker
must move back down to ``L``. Ticks alternate, one at a time: the next is sent only after the
worker's order is acknowledged and the exchange's ``user_orders`` update for it has arrived (so
a tick never queues behind the previous tick's traffic), and no sooner than ``--interval-ms``
after the previous one (keeping the worker under its own client-side rate limiter, Advanced
tier as ``mm quote --venue sim`` uses).

What is timed, per tick, on one clock (``time.time_ns``):

- ``t0`` = the delta's ``receipt_ns``, stamped by :class:`~mmcore.venues.kalshi.ws.KalshiWs` when
  it read the frame (a ``KalshiWs`` subclass only copies it out of the ``BookUpdated`` event);
- ``t1`` = the moment the worker's order request for that slot has been written to the socket:
  httpcore's ``http11.send_request_body.complete`` trace event — the same hook
  ``KalshiRest._send_once`` uses to start its ack latency. An ``httpx.AsyncClient`` subclass
  (handed to ``KalshiRest(client=...)``) chains a second trace callback in front of KalshiRest's;
- ``t_dec`` = when the driver's ``on_output`` hook saw the worker's decision (after the journal
  write and after the REST call was spawned), to split ``t1 − t0`` into *decide* (queue, worker,
  risk gate, journal) and *send* (task start, slot lock, rate limiter, signing, httpx).

Modes (each: ``--warmup`` ticks discarded, then ``--ticks`` measured):

1. **floor** — no worker. One raw ``websockets`` connection subscribed to ``orderbook_delta`` for
   market A, one raw keep-alive TCP connection to the REST port. Per tick a complete signed HTTP
   request (an in-place amend of a 1¢ mm bid: same price and size, a no-op for the book) is built
   *before* the tick; on the delta frame the loop ``json.loads`` it and ``writer.write``-s the
   bytes (``t1`` after ``write`` returns: asyncio's transport sends at once into an empty
   buffer). The response is read after timing.
2. **worker, amend** — the real :class:`~mmcore.worker.driver.WorkerDriver` over a
   ``KalshiWs`` + ``KalshiRest`` pair, journaling as ``mm quote`` does (one fsync per decision, in a
   temp dir on the same disk as ``$TMPDIR``). Default reconcile: requotes are **amends**
   (``POST …/orders/{id}/amend``). Run with ``presign`` on and off.
3. **worker, cancel+place** — the same with ``ReconcileParams(prefer_amend=False)``: each requote
   is a cancel then a **create** (``POST /portfolio/events/orders``, the pre-signable path); the
   driver's per-slot lock sends the create only after the cancel's reply, so ``t1`` is the
   create's write and the cancel's write is reported beside it. Presign on and off.

With presign on, ``refill_presigned()`` runs from the driver's own 1 s timer task (as under
``mm quote``; see the notes printed at the end); ``presigned/live`` counts the headers taken from
a pool vs signed on the hot path. Worker config differs from the defaults
only where ticks would otherwise be refused or delayed by policy, not by code: competition
``min_rest_ns=0`` (an improving move would otherwise wait 2 s) and the gate's duplicate-place
window 1 ns (cancel+place alternates between two prices). ``--no-journal`` runs the worker
modes without a journal, to show what the per-record fsync costs.

Figures: p50 / p99 / max of ``t1 − t0`` (ms), p50 of *decide* and *send*, ticks measured and
missed (no matching write within 2 s), signing counters, client rate-limiter wait. Nothing is
asserted. Bounded: each mode stops after ``--ticks`` or ``--seconds``; defaults finish in well
under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchkit import (
    CpuSpan,
    ask_cpu_time,
    pct,
    placement,
    print_table,
    run_pinned,
    run_with_exchange,
    split_cpus,
)

RIVAL = "rival"
UNLIMITED = 1e12
RIVAL_BASE_COUNT = 50_000
"""Centi-contracts of the rival's base bid (deep, so the worker's liquidity-based limit is
steady and its size does not change from tick to tick)."""
RIVAL_TICK_COUNT = 100
TICK_TIMEOUT_S = 2.0
SETTLE_TIMEOUT_S = 2.0
WRITE_EVENT = "http11.send_request_body.complete"


# --- server process ------------------------------------------------------------------------------


async def _serve(pipe: Connection, seed: int, start_in_s: float) -> None:
    from mmcore.errors import MMError
    from mmcore.sim.engine_types import OrderRequest
    from mmcore.sim.exchange import RateTier
    from mmcore.sim.scenario import default_scenario_dict, load_scenario
    from mmcore.sim.server import SimStack

    d = default_scenario_dict(seed, 1)
    d["games"][0]["start_in_s"] = start_in_s
    d["participants"] = {}
    d["users"][RIVAL] = {"balance_dollars": 1_000_000.0}
    sc = load_scenario(d, time.time_ns())
    g = sc.games[0]
    with tempfile.TemporaryDirectory(prefix="bench-t2w-srv-") as tmp:
        async with SimStack(sc, Path(tmp), run_participants=False) as stack:
            ex = stack.exchange
            ex.tier = RateTier(UNLIMITED, UNLIMITED, UNLIMITED, UNLIMITED)
            stop = asyncio.Event()

            def on_command() -> None:
                while pipe.poll():
                    msg = pipe.recv()
                    try:
                        if msg == "stop":
                            stop.set()
                            return
                        if msg == "cpu":
                            pipe.send(time.process_time())
                        elif msg[0] == "place":
                            _, market, side, price, count = msg
                            res = ex.mutate(lambda e, now: e.place(OrderRequest(
                                RIVAL, market, side, price, count, post_only=True), now))
                            pipe.send(("ok", res.order.order_id))
                        elif msg[0] == "cancel":
                            ex.mutate(lambda e, now: e.cancel(RIVAL, msg[1], now))
                            pipe.send(("ok", msg[1]))
                        else:
                            pipe.send(("err", f"unknown command {msg!r}"))
                    except (MMError, Exception) as exc:  # noqa: BLE001 - reported to the client
                        pipe.send(("err", f"{type(exc).__name__}: {exc}"))

            asyncio.get_running_loop().add_reader(pipe.fileno(), on_command)
            pipe.send({"rest_url": stack.rest_url, "ws_url": stack.ws_url,
                       "odds_url": stack.odds_url, "odds_key": stack.odds_api_key,
                       "key_id": stack.creds.key_id, "key_path": str(stack.creds.private_key_path),
                       "event": g.event_ticker, "markets": list(g.markets),
                       "start_ns": g.start_ns, "sport_key": g.sim.sport_key})
            await stop.wait()


def server_main(pipe: Connection, cpus: set[int] | None, seed: int, start_in_s: float) -> None:
    run_pinned(pipe, cpus, lambda: _serve(pipe, seed, start_in_s))


class Rival:
    """The client's handle on the server: book changes as user ``rival``."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe

    def send(self, *cmd: Any) -> None:
        self.pipe.send(cmd)

    def reply(self) -> str:
        if not self.pipe.poll(10):
            raise TimeoutError("exchange process did not answer")
        status, value = self.pipe.recv()
        if status != "ok":
            raise RuntimeError(f"rival command failed: {value}")
        return value

    def place(self, market: str, side: str, price: int, count: int) -> str:
        self.send("place", market, side, price, count)
        return self.reply()

    def cancel(self, order_id: str) -> None:
        self.send("cancel", order_id)
        self.reply()

    def cpu(self) -> float | None:
        return ask_cpu_time(self.pipe)


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class ModeResult:
    name: str
    t2w_ns: list[int] = field(default_factory=list)
    """t1 − t0 per measured tick."""
    decide_ns: list[int] = field(default_factory=list)
    send_ns: list[int] = field(default_factory=list)
    first_write_ns: list[int] = field(default_factory=list)
    """cancel+place: t0 → the cancel's write."""
    missed: int = 0
    unsettled: int = 0
    foreign: int = 0
    presigned_used: int | None = None
    live_signed: int | None = None
    limiter_wait_ms: float | None = None
    wall_s: float = 0.0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    note: str = ""


@dataclass
class Write:
    ns: int
    kind: str  # amend | create | cancel | other
    order_id: str | None = None
    ticker: str | None = None
    side: str | None = None


class Tap:
    """Collects t0 (book delta receipt), t_dec (decision output) and the writes of one tick."""

    def __init__(self) -> None:
        self.armed = False
        self.market = ""
        self.slot_order_id: str | None = None
        self.want = "amend"
        self.expect: tuple[int, int] | None = None
        """(best bid, its size) the tick's delta must show; other deltas are not the tick's."""
        self.foreign = 0
        """Book updates of the market seen while armed that were not the tick's delta."""
        self.t0: int | None = None
        self.t_dec: int | None = None
        self.writes: list[Write] = []
        self.done = asyncio.Event()
        self.order_updates: dict[str, tuple[int, str, int]] = {}
        """order id → (price, status, receipt_ns) of its latest ``user_orders`` update."""

    def arm(self, market: str, slot_order_id: str | None, want: str,
            expect: tuple[int, int]) -> None:
        self.armed, self.market, self.slot_order_id, self.want = True, market, slot_order_id, want
        self.expect = expect
        self.t0 = self.t_dec = None
        self.writes = []
        self.done.clear()

    def disarm(self) -> None:
        self.armed = False

    # from the WS subclass
    def on_ws(self, ev: Any) -> None:
        from mmcore.venues.kalshi import ws as kws

        if isinstance(ev, kws.BookUpdated):
            if self.armed and self.t0 is None and ev.market == self.market:
                if (ev.top.bid, ev.top.bid_size) == self.expect:
                    self.t0 = ev.receipt_ns
                else:
                    self.foreign += 1
        elif isinstance(ev, kws.OrderUpdate):
            self.order_updates[ev.order_id] = (ev.price, ev.status, ev.receipt_ns)

    # from the driver's on_output hook
    def on_output(self, worker: Any, out: Any) -> None:
        if self.armed and self.t0 is not None and self.t_dec is None:
            if any(a.slot == (self.market, "bid") for _, a in out.actions):
                self.t_dec = time.time_ns()

    # from the wire pool's on_written hook (or the httpx trace hook), right after the request
    # bytes were handed to the socket
    def on_written(self, method: str, path: str, content: bytes | None, ns: int) -> None:
        if not self.armed or self.t0 is None or self.done.is_set():
            return
        w = Write(ns, "other")
        if method == "POST" and path.endswith("/amend"):
            w.kind, w.order_id = "amend", path.rsplit("/", 2)[-2]
        elif method == "DELETE" and "/portfolio/events/orders/" in path:
            w.kind, w.order_id = "cancel", path.rsplit("/", 1)[-1]
        elif method == "POST" and path.endswith("/portfolio/events/orders"):
            body = json.loads(content or b"{}")
            w.kind, w.ticker, w.side = "create", body.get("ticker"), body.get("side")
        mine = (w.order_id is not None and w.order_id == self.slot_order_id) or (
            w.kind == "create" and w.ticker == self.market and w.side == "bid")
        if mine:
            self.writes.append(w)
            if w.kind == self.want:
                self.done.set()


def tapped_client(tap: Tap) -> Any:
    """``httpx.AsyncClient`` configured as KalshiRest's own, reporting body-written times."""
    import httpx

    class TapClient(httpx.AsyncClient):
        async def send(self, request: httpx.Request, **kw: Any) -> httpx.Response:
            inner = request.extensions.get("trace")

            async def trace(name: str, info: Any) -> None:
                if name == WRITE_EVENT:
                    tap.on_written(request.method, request.url.path, request.content,
                                   time.time_ns())
                if inner is not None:
                    await inner(name, info)

            request.extensions["trace"] = trace
            return await super().send(request, **kw)

    return TapClient(timeout=httpx.Timeout(5.0),
                     limits=httpx.Limits(max_connections=8, max_keepalive_connections=8,
                                         keepalive_expiry=60.0),
                     http1=True, http2=False, headers={"User-Agent": "kalshi-sports-mm"})


def tapped_ws_factory(tap: Tap, url: str, signer: Any) -> Callable[[list[str]], Any]:
    from mmcore.venues.kalshi.ws import KalshiWs

    class TappedWs(KalshiWs):
        async def events(self):  # type: ignore[override]
            async for ev in super().events():
                tap.on_ws(ev)
                yield ev

    return lambda markets: TappedWs(url, signer, markets=markets)


async def _until(cond: Callable[[], bool], timeout_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not cond():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.0005)
    return True


# --- worker modes --------------------------------------------------------------------------------


@dataclass
class Book:
    """Market A's rival bid levels, found from the first worker's cap."""

    market: str
    base: int | None = None
    improve: int | None = None
    base_order: str | None = None


async def worker_mode(cfg: dict[str, Any], args: argparse.Namespace, signer: Any, rival: Rival,
                      book: Book, theo_dir: Path, *, amend: bool, presign: bool,
                      transport: str = "wire") -> ModeResult:
    from mmcore.orders import ReconcileParams
    from mmcore.quoting.config import DEFAULT_QUOTE_PARAMS
    from mmcore.risk.gate import GateConfig
    from mmcore.venues.kalshi.ratelimit import RateLimiter
    from mmcore.venues.kalshi.rest import KalshiRest
    from mmcore.worker.driver import FileTheoSource, WorkerDriver, load_game
    from mmcore.worker.engine import WorkerConfig
    from mmcore.worker.journal import Journal, JournalConfig

    name = (f"worker, {'amend' if amend else 'cancel+place'}, presign {'on' if presign else 'off'}"
            + ("" if transport == "wire" else f", {transport}")
            + ("" if args.journal else ", no journal"))
    r = ModeResult(name)
    tap = Tap()
    market = book.market
    slot = (market, "bid")
    want = "amend" if amend else "create"
    quote = dataclasses.replace(DEFAULT_QUOTE_PARAMS, competition=dataclasses.replace(
        DEFAULT_QUOTE_PARAMS.competition, min_rest_ns=0))
    wid = f"bench-{'amend' if amend else 'replace'}-{'ps' if presign else 'live'}-{os.getpid()}"
    wcfg = WorkerConfig(wid, quote=quote, gate=GateConfig(duplicate_window_ns=1),
                        reconcile=ReconcileParams(prefer_amend=amend))
    http = tapped_client(tap)
    limiter = RateLimiter.for_tier("advanced")
    with tempfile.TemporaryDirectory(prefix="bench-t2w-journal-") as jdir:
        async with KalshiRest(cfg["rest_url"], signer, limiter=limiter, presign=presign,
                              client=http, wire=transport == "wire") as rest:
            if rest.wire is not None:
                rest.wire.on_written = tap.on_written
            game = await load_game(rest, cfg["event"])
            journal = (Journal.open(JournalConfig(Path(jdir), wid), time.time_ns())
                       if args.journal else None)
            driver = WorkerDriver(rest, tapped_ws_factory(tap, cfg["ws_url"], signer), game, wcfg,
                                  FileTheoSource(theo_dir, cfg["event"]), journal=journal,
                                  cancel_deadline_s=10.0, on_output=tap.on_output)
            run = asyncio.create_task(driver.run())
            try:
                w = await _started(driver, run)

                def bid() -> Any:
                    return next((o for o in w.live.values() if o.slot == slot), None)

                def idle() -> bool:
                    return not w.pending and not w.unknown and driver._queue.empty()

                if book.base is None:  # first worker: its bid alone in A is its cap
                    if not await _until(lambda: bid() is not None and idle(), 15.0):
                        raise RuntimeError("the worker never quoted a bid in market A")
                    cap = bid().price
                    grid = game.grids[game.markets.index(market)]
                    book.base = grid.next_below(grid.next_below(grid.next_below(cap)))
                    book.improve = grid.next_above(grid.next_above(book.base))
                    book.base_order = rival.place(market, "bid", book.base, RIVAL_BASE_COUNT)

                def settled(price: int) -> bool:
                    o = bid()
                    if o is None or o.price != price or not idle() or w.cancelling:
                        return False
                    up = tap.order_updates.get(o.order_id)
                    return up is not None and up[0] == price and up[1] == "resting"

                if not await _until(lambda: settled(book.base), 15.0):
                    raise RuntimeError(f"the worker never joined the rival bid at {book.base} "
                                       f"(its bid: {bid()})")
                used0, live0 = rest.presigned_used, rest.live_signed
                wait0 = limiter.waited_ns
                span = CpuSpan(rival.cpu)
                deadline = span.t0 + args.seconds
                improve_order: str | None = None
                measured = 0
                k = 0
                while measured < args.ticks and time.perf_counter() < deadline:
                    tick_started = time.perf_counter()
                    improving = improve_order is None
                    o = bid()
                    # improve: the rival's bid alone at the top; retreat: only ours left there
                    expect = ((book.improve, RIVAL_TICK_COUNT) if improving
                              else (book.improve, o.remaining if o else 0))
                    tap.arm(market, o.order_id if o else None, want, expect)
                    if improving:
                        rival.send("place", market, "bid", book.improve, RIVAL_TICK_COUNT)
                    else:
                        rival.send("cancel", improve_order)
                    got = await _wait(tap.done, TICK_TIMEOUT_S)
                    tap.disarm()
                    reply = rival.reply()
                    improve_order = reply if improving else None
                    target = book.improve if improving else book.base
                    ok = await _until(lambda: settled(target), SETTLE_TIMEOUT_S)
                    k += 1
                    if k > args.warmup:
                        if not got or tap.t0 is None:
                            r.missed += 1
                        else:
                            t1 = next(x.ns for x in tap.writes if x.kind == want)
                            r.t2w_ns.append(t1 - tap.t0)
                            if tap.t_dec is not None:
                                r.decide_ns.append(tap.t_dec - tap.t0)
                                r.send_ns.append(t1 - tap.t_dec)
                            if not amend and tap.writes and tap.writes[0].kind == "cancel":
                                r.first_write_ns.append(tap.writes[0].ns - tap.t0)
                            measured += 1
                        r.unsettled += not ok
                    if not ok:  # let it catch up before the next tick
                        await _until(lambda: settled(target), 5.0)
                    pause = args.interval_ms / 1e3 - (time.perf_counter() - tick_started)
                    if pause > 0:
                        await asyncio.sleep(pause)
                r.wall_s, r.client_cpu, r.server_cpu = span.end()
                r.presigned_used = rest.presigned_used - used0
                r.live_signed = rest.live_signed - live0
                r.limiter_wait_ms = (limiter.waited_ns - wait0) / 1e6
                r.foreign = tap.foreign
                if improve_order is not None:
                    rival.cancel(improve_order)
            finally:
                driver.stop("bench done")
                try:
                    await asyncio.wait_for(run, 20.0)
                except BaseException:  # noqa: BLE001 - report below, keep the bench going
                    run.cancel()
        await http.aclose()
    return r


async def _started(driver: Any, run: asyncio.Task[Any]) -> Any:
    """The driver's GameWorker once it exists (the driver makes it at the top of run())."""
    ok = await _until(lambda: driver.worker is not None or run.done(), 10.0)
    if not ok or run.done():
        if run.done() and run.exception() is not None:
            raise run.exception()  # type: ignore[misc]
        raise RuntimeError("worker driver did not start")
    return driver.worker


async def _wait(ev: asyncio.Event, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(ev.wait(), timeout_s)
    except TimeoutError:
        return False
    return True


# --- the floor -----------------------------------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    if length:
        await reader.readexactly(length)
    return status


async def floor_mode(cfg: dict[str, Any], args: argparse.Namespace, signer: Any, rival: Rival,
                     book: Book) -> ModeResult:
    from websockets.asyncio.client import connect as ws_connect

    from mmcore.orders import Quote
    from mmcore.units import format_count_fp, format_dollars
    from mmcore.venues.kalshi.auth import WS_PATH
    from mmcore.venues.kalshi.rest import KalshiRest

    r = ModeResult("floor: raw WS frame → json.loads → write pre-signed request")
    market = book.market
    async with KalshiRest(cfg["rest_url"], signer, presign=False) as rest:
        own = await rest.create_order(Quote(market, "bid", 100, 100))
    path = f"{urlsplit(cfg['rest_url']).path}/portfolio/events/orders/{own.order_id}/amend"
    body = json.dumps({"ticker": market, "side": "bid", "price": format_dollars(100),
                       "count": format_count_fp(100)}, separators=(",", ":")).encode()
    host, port = urlsplit(cfg["rest_url"]).hostname, urlsplit(cfg["rest_url"]).port
    reader, writer = await asyncio.open_connection(host, port)

    def request() -> bytes:
        headers = signer.headers("POST", path, timestamp_ms=time.time_ns() // 1_000_000)
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n")
        return head.encode() + body

    writer.write(request())  # check the request is good before timing anything
    if (status := await _read_response(reader)) != 200:
        raise RuntimeError(f"floor: pre-built amend answered HTTP {status}")
    ws = await ws_connect(cfg["ws_url"], additional_headers=signer.headers(
        "GET", WS_PATH, timestamp_ms=time.time_ns() // 1_000_000))
    try:
        await ws.send(json.dumps({"id": 1, "cmd": "subscribe", "params": {
            "channels": ["orderbook_delta"], "market_tickers": [market], "use_yes_price": True}}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10.0)).get("type") != "orderbook_snapshot":
            pass
        improve_order: str | None = None
        measured = k = 0
        span = CpuSpan(rival.cpu)
        deadline = span.t0 + args.seconds
        while measured < args.ticks and time.perf_counter() < deadline:
            tick_started = time.perf_counter()
            data = request()  # pre-built and pre-signed, before the tick
            improving = improve_order is None
            if improving:
                rival.send("place", market, "bid", book.improve, RIVAL_TICK_COUNT)
            else:
                rival.send("cancel", improve_order)
            t0 = t1 = None
            try:
                while True:
                    raw = await asyncio.wait_for(ws.recv(), TICK_TIMEOUT_S)
                    t0 = time.time_ns()
                    msg = json.loads(raw)
                    if msg.get("type") == "orderbook_delta" and msg["msg"]["market_ticker"] == market:
                        writer.write(data)
                        t1 = time.time_ns()
                        break
            except TimeoutError:
                pass
            reply = rival.reply()
            improve_order = reply if improving else None
            k += 1
            if t1 is not None:
                status = await _read_response(reader)
                if status != 200:
                    raise RuntimeError(f"floor: amend answered HTTP {status}")
            if k > args.warmup:
                if t1 is None or t0 is None:
                    r.missed += 1
                else:
                    r.t2w_ns.append(t1 - t0)
                    measured += 1
            pause = args.interval_ms / 1e3 - (time.perf_counter() - tick_started)
            if pause > 0:
                await asyncio.sleep(pause)
        r.wall_s, r.client_cpu, r.server_cpu = span.end()
        if improve_order is not None:
            rival.cancel(improve_order)
    finally:
        await ws.close()
        writer.close()
    async with KalshiRest(cfg["rest_url"], signer, presign=False) as rest:
        await rest.cancel_order(own.order_id)
    return r


# --- client --------------------------------------------------------------------------------------


async def run_client(cfg: dict[str, Any], args: argparse.Namespace, pipe: Connection
                     ) -> list[ModeResult]:
    from mmcore.odds.teams import game_from_markets
    from mmcore.theo.pull import pull_theos
    from mmcore.venues.kalshi.auth import Signer, load_private_key
    from mmcore.settings import DEFAULT_BOOKMAKERS
    from mmcore.venues.oddsapi import OddsApiClient

    signer = Signer(cfg["key_id"], load_private_key(cfg["key_path"]))
    rival = Rival(pipe)
    markets = cfg["markets"]
    book = Book(markets[0])
    # the other market gets rival liquidity too (the worker's limit scales with what rests)
    other = markets[1]
    with tempfile.TemporaryDirectory(prefix="bench-t2w-theo-") as tmp:
        theo_dir = Path(tmp)
        async with OddsApiClient(cfg["odds_url"], cfg["odds_key"],
                                 bookmakers=DEFAULT_BOOKMAKERS) as odds:
            await pull_theos(odds, [cfg["sport_key"]],
                             [game_from_markets(cfg["event"], markets, cfg["start_ns"])], theo_dir)
        rival.place(other, "bid", 500, RIVAL_BASE_COUNT)
        rival.place(other, "ask", 9_500, RIVAL_BASE_COUNT)
        rival.place(book.market, "ask", 9_500, RIVAL_BASE_COUNT)
        out: list[ModeResult] = []
        for amend in (True, False):
            for presign in (True, False):
                out.append(await worker_mode(cfg, args, signer, rival, book, theo_dir,
                                             amend=amend, presign=presign))
        if args.httpx:  # the writes' former transport, for comparison
            out.append(await worker_mode(cfg, args, signer, rival, book, theo_dir,
                                         amend=True, presign=True, transport="httpx"))
        # the floor runs last (it needs the rival's levels, found from the first worker's cap)
        # but is printed first
        out.insert(0, await floor_mode(cfg, args, signer, rival, book))
    return out


# --- report --------------------------------------------------------------------------------------


def _ms(values: list[int], q: float) -> str:
    v = pct(values, q)
    return "-" if v is None else f"{v:.3f}"


def report(args: argparse.Namespace, results: list[ModeResult], pinned: tuple[bool, bool],
           cpus: tuple[set[int] | None, set[int] | None]) -> None:
    where_s, where_c = placement(cpus, *pinned)
    print(f"tick-to-wire: WS orderbook_delta received → order request written (ms); "
          f"{args.ticks} ticks per mode after {args.warmup} warm-up, ≥ {args.interval_ms:g} ms "
          f"apart; server {where_s}, client {where_c}; journal "
          f"{'one fsync per decision' if args.journal else 'off'}; load {args.load:.2f} before")
    header = ("mode", "n", "p50", "p99", "max", "decide p50", "send p50", "missed",
              "presigned/live", "limiter wait", "CPU srv/cli")
    rows = []
    for r in results:
        signing = "-" if r.presigned_used is None else f"{r.presigned_used}/{r.live_signed}"
        wait = "-" if r.limiter_wait_ms is None else f"{r.limiter_wait_ms:.1f} ms"
        srv = "?" if r.server_cpu is None else f"{r.server_cpu:.0%}"
        rows.append((r.name, str(len(r.t2w_ns)), _ms(r.t2w_ns, 0.5), _ms(r.t2w_ns, 0.99),
                     _ms(r.t2w_ns, 1.0), _ms(r.decide_ns, 0.5), _ms(r.send_ns, 0.5),
                     str(r.missed), signing, wait, f"{srv}/{r.client_cpu:.0%}"))
    print_table(header, rows)
    for r in results:
        if r.first_write_ns:
            print(f"{r.name}: the cancel went out at p50 {_ms(r.first_write_ns, 0.5)} / p99 "
                  f"{_ms(r.first_write_ns, 0.99)} ms; the create waits for its reply (slot lock)")
        if r.unsettled:
            print(f"{r.name}: {r.unsettled} tick(s) did not settle within {SETTLE_TIMEOUT_S:g} s")
        if r.foreign:
            print(f"{r.name}: {r.foreign} book update(s) of market A arrived while a tick was "
                  f"armed and were not its delta (ignored for t0)")
    floor = results[0]
    f50 = pct(floor.t2w_ns, 0.5)
    for r in results[1:]:
        p50 = pct(r.t2w_ns, 0.5)
        if f50 and p50:
            print(f"{r.name}: p50 {p50 / f50:.0f}× the floor (+{p50 - f50:.3f} ms)")
    print("notes: order writes go over KalshiRest's lean HTTP/1.1 pool (mmcore.venues.kalshi."
          "wire) unless the mode says httpx; pre-signed entries are stamped when signed and "
          "replaced by a background refill (RSA in a thread) after each take, plus the "
          "driver's 1 s refill for aging entries, so a header is ready for every write that "
          "comes ≥ ~1 ms after the previous one on the same path.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=150, help="measured ticks per mode")
    ap.add_argument("--warmup", type=int, default=15, help="ticks discarded at the start of a mode")
    ap.add_argument("--interval-ms", type=float, default=40.0,
                    help="minimum time between tick starts (keeps the worker under its limiter)")
    ap.add_argument("--seconds", type=float, default=9.0, help="time cap per mode")
    ap.add_argument("--no-journal", dest="journal", action="store_false",
                    help="run the worker modes without a journal")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-httpx", dest="httpx", action="store_false",
                    help="skip the reference mode with order writes over httpx")
    args = ap.parse_args(argv)
    if args.ticks < 1 or args.warmup < 0 or args.seconds <= 0 or args.interval_ms < 0:
        ap.error("--ticks must be >= 1, --warmup >= 0, --seconds > 0, --interval-ms >= 0")

    args.load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    cpus = split_cpus()
    results, server_pinned, client_pinned = run_with_exchange(
        server_main, (args.seed, 3600.0), "t2w-exchange", cpus,
        lambda cfg, pipe: asyncio.run(run_client(cfg, args, pipe)))
    report(args, results, (server_pinned, client_pinned), cpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
