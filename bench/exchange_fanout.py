"""Benchmark: how many book deltas per second the local exchange fans out to N WebSocket clients.

Run: ``.venv/bin/python bench/exchange_fanout.py [--subscribers 50 --deltas 20000 --seconds 30]``

Two processes, so client parsing never shares the server's core:

- **server** (this process, pinned to one CPU when ``os.sched_setaffinity`` exists): a
  :class:`~mmcore.sim.server.SimStack` on 127.0.0.1 (seeded default scenario, participants off).
  Once every subscriber has its snapshot, it makes book changes as fast as it can through
  :meth:`LocalExchange.mutate` — a non-mm user places a GTC bid at the next cent level and
  cancels the bid placed ``WINDOW`` steps before, so every place and every cancel changes one
  level and yields one ``orderbook_delta``. After each ``--chunk`` deltas it yields to the event
  loop so the hub's flush sends what was queued. It stops after ``--deltas`` deltas or
  ``--seconds`` seconds, whichever comes first.
- **client** (a spawned process, on the other CPUs): ``--subscribers`` WebSocket connections
  made by a lean client written here (one :class:`asyncio.Protocol` each, no ``websockets`` on
  the hot path, so one client core can take several hundred thousand frames/s): its own
  HTTP/1.1 upgrade with signed headers (:class:`~mmcore.venues.kalshi.auth.Signer`), masked
  client frames, pings answered, permessage-deflate inflated when negotiated. Each connection
  subscribes to ``orderbook_delta`` for the one market being changed (``use_yes_price``) and
  waits for its snapshot. It counts ``orderbook_delta`` frames with byte tests on the receive
  buffer, records ``receipt − ts_ms`` per frame and notes any ``error`` 25 (subscription
  dropped: the server's per-connection queue overflowed). At the end it checks, per
  subscriber, that the last delta's ``seq`` − the snapshot's ``seq`` = deltas counted (no frame
  lost or duplicated).

Figures (all printed, none asserted):

- generated deltas/s — engine deltas made per second of generation;
- fan-out deltas/s — deltas that reached **every** subscriber, per second from the first
  delta to the last receipt (the headline figure, compared with the 5,000/s goal);
- delivered msgs/s — ``orderbook_delta`` frames received across all subscribers per second
  (= subscribers × fan-out deltas/s when all keep up);
- p50/p99/max delay — client wall clock at receipt (when the socket read that completed the
  frame returned) minus the frame's ``ts_ms`` (the engine event's time). ``ts_ms`` is floored
  to the millisecond, so each delay reads 0–1 ms high;
- seq gaps — subscribers whose final seq check failed (should be 0);
- CPU busy — process CPU time / wall time over the run, per process (≈100 % on the server
  means the server's core was the limit; on the client, that the client was); for the client
  also delivered frames per client CPU-second (roughly what one client core can take; it rises
  when each socket read carries more frames, as it does once the client falls behind).

Both processes read the same wall clock (``time.time_ns``), so the delays need no clock sync.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing as mp
import os
import struct
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchkit import load_line, pin, placement, reap, run_pinned, split_cpus

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


# --- client process: a lean WebSocket client (RFC 6455, permessage-deflate RFC 7692) -------------
#
# One asyncio.Protocol per subscriber, no websockets library on the hot path: the 101 handshake is
# written and checked here, and data_received parses frames straight out of a bytearray. A plain
# (or compressed, once inflated) final text frame that is an orderbook_delta is counted in place
# by byte tests on the buffer: no per-frame frame object, payload copy, decode or json.loads.

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing into Sec-WebSocket-Accept."""
MAX_HANDSHAKE_BYTES = 65_536
"""Bytes: the 101 response head must end (blank line) within this many."""
COMPACT_BYTES = 65_536
"""Bytes: consumed frames are cut off the front of the receive buffer once they reach this."""
CLOSE_TIMEOUT_S = 5.0
"""Seconds to wait for the server's close frame / TCP close after ours."""
BINS_PER_MS = 1_000_000 // DELAY_BIN_NS
"""Delay bins per millisecond (DELAY_BIN_NS divides 1 ms)."""

_DELTA_PREFIX = b'{"type":"orderbook_delta"'
_SNAPSHOT_PREFIX = b'{"type":"orderbook_snapshot"'
_ERROR_PREFIX = b'{"type":"error"'
_TS_KEY = b'"ts_ms":'
_SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"
"""RFC 7692 §7.2.2: the sender strips it from each message; the receiver appends it back."""
_FIN_TEXT, _FIN_RSV1_TEXT = 0x81, 0xC1
"""First header byte of a final text frame, plain / compressed."""
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10
_HANDSHAKE, _OPEN, _CLOSING, _CLOSED = range(4)
_DEFLATE_PARAMS = frozenset({"server_no_context_takeover", "client_no_context_takeover",
                             "server_max_window_bits", "client_max_window_bits"})


class WsProtocolError(Exception):
    """The server broke RFC 6455 / 7692 (or sent something this client does not handle)."""


@dataclass
class SubStats:
    """One subscriber's counts (the seq fields check them: deltas are contiguous per sid)."""

    deltas: int = 0
    errors25: int = 0
    other_errors: int = 0
    last_rx_ns: int = 0
    """Wall clock (ns) of the socket read that brought the last delta."""
    snapshots: int = 0
    sid: int | None = None
    snapshot_seq: int | None = None
    last_delta: bytes = b""
    """The last ``orderbook_delta`` frame's JSON, parsed once at the end for its seq."""
    failure: str = ""
    """Why the connection ended early ('' while fine)."""


@dataclass
class ClientStats:
    subs: list[SubStats]
    hist: dict[int, int] = field(default_factory=dict)
    """Delay bin (DELAY_BIN_NS) → frames."""
    first_rx_ns: int = 0


def seq_ok(st: SubStats) -> bool:
    """Whether the subscriber saw exactly one snapshot and its last delta (same sid) has seq =
    snapshot seq + deltas counted. Endpoints only: a lost frame or a duplicate shows; a loss and
    a duplicate together would cancel."""
    if st.snapshots != 1 or st.snapshot_seq is None:
        return False
    if not st.deltas:
        return not st.last_delta
    last = json.loads(st.last_delta)
    return last.get("sid") == st.sid and last.get("seq") == st.snapshot_seq + st.deltas


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept expected for Sec-WebSocket-Key ``key`` (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest()).decode("ascii")


def masked_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """One final client frame of ``opcode``, masked with ``mask`` (4 bytes; random when None)
    as RFC 6455 §5.3 requires of every client frame. Sizes in bytes."""
    mask = os.urandom(4) if mask is None else mask
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65_536:
        head = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    if not n:
        return head + mask
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return head + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def handshake_request(host: str, path: str, key: str, auth: dict[str, str],
                      offer_deflate: bool) -> bytes:
    """The HTTP/1.1 upgrade request (RFC 6455 §4.1) with the signed KALSHI-ACCESS-* headers."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if offer_deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    lines += [f"{k}: {v}" for k, v in auth.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def parse_extensions(value: str, offered: bool) -> bool | None:
    """The server's Sec-WebSocket-Extensions: None when none was accepted, else whether
    permessage-deflate came with ``server_no_context_takeover`` (a fresh inflater per message).
    Anything but at most one permessage-deflate with known parameters is refused."""
    exts = [e for e in (x.strip() for x in value.split(",")) if e]
    if not exts:
        return None
    parts = [p.strip() for p in exts[0].split(";")]
    if len(exts) > 1 or not offered or parts[0].lower() != "permessage-deflate":
        raise WsProtocolError(f"extension not offered: {value!r}")
    params = {p.split("=", 1)[0].strip().lower() for p in parts[1:] if p}
    if params - _DEFLATE_PARAMS:
        raise WsProtocolError(f"unknown permessage-deflate parameter(s): {value!r}")
    return "server_no_context_takeover" in params


def parse_handshake_response(head: bytes, key: str, offered_deflate: bool) -> bool | None:
    """Check the response head (up to the blank line): 101, Upgrade, Connection and
    Sec-WebSocket-Accept. Returns :func:`parse_extensions`' answer."""
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        raise WsProtocolError(f"handshake refused: {lines[0]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:  # a repeated header joins its values with ", " (RFC 9110 §5.3)
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
    if headers.get("upgrade", "").lower() != "websocket":
        raise WsProtocolError(f"bad Upgrade header: {headers.get('upgrade')!r}")
    if "upgrade" not in {t.strip().lower() for t in headers.get("connection", "").split(",")}:
        raise WsProtocolError(f"bad Connection header: {headers.get('connection')!r}")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise WsProtocolError("bad Sec-WebSocket-Accept")
    return parse_extensions(headers.get("sec-websocket-extensions", ""), offered_deflate)


class FanoutWs(asyncio.Protocol):
    """One subscriber's WebSocket connection: handshake, subscribe, then counting.

    Await :attr:`opened` (handshake checked), call :meth:`send_text` with the subscribe command,
    await :attr:`snapshot` (the first ``orderbook_snapshot``; an ``error`` frame before it fails
    it). From then on ``data_received`` counts deltas into ``st`` and ``all_``; :meth:`close`
    ends the connection with a close handshake."""

    def __init__(self, host: str, path: str, auth: dict[str, str], offer_deflate: bool,
                 st: SubStats, all_: ClientStats) -> None:
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        self.snapshot: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.deflate = False
        """Whether permessage-deflate was negotiated."""
        self._key = base64.b64encode(os.urandom(16)).decode("ascii")
        self._request = handshake_request(host, path, self._key, auth, offer_deflate)
        self._offer_deflate = offer_deflate
        self._st, self._all = st, all_
        self._transport: asyncio.Transport | None = None
        self._state = _HANDSHAKE
        self._buf = bytearray()
        self._pos = 0
        """Bytes of ``_buf`` already parsed."""
        self._inflater: Any = None
        self._fresh_inflater = False
        """server_no_context_takeover: each message starts a new deflate stream."""
        self._frag_op: int | None = None
        self._frag_rsv1 = False
        self._frag: list[bytes] = []

    # -- asyncio callbacks --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buf += data
        if self._state == _HANDSHAKE and not self._handshake():
            return
        if self._state == _OPEN or self._state == _CLOSING:
            self._parse()

    def connection_lost(self, exc: Exception | None) -> None:
        was = self._state
        self._state = _CLOSED
        reason = f"connection lost ({exc!r})" if exc else "connection closed by the server"
        if was != _CLOSING and not self._st.failure:
            self._st.failure = reason
        for fut in (self.opened, self.snapshot):
            if not fut.done():
                fut.set_exception(ConnectionError(self._st.failure or reason))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- sending --

    def send_text(self, text: str) -> None:
        """One masked text frame."""
        assert self._transport is not None
        self._transport.write(masked_frame(_OP_TEXT, text.encode()))

    async def close(self, code: int = 1000) -> None:
        """Close handshake (our close, the server's close, TCP close); aborts after
        CLOSE_TIMEOUT_S seconds."""
        if self._transport is None or self._state == _CLOSED:
            return
        if self._state == _OPEN:
            self._state = _CLOSING
            self._transport.write(masked_frame(_OP_CLOSE, struct.pack("!H", code)))
        try:
            await asyncio.wait_for(asyncio.shield(self.closed), CLOSE_TIMEOUT_S)
        except asyncio.TimeoutError:
            self._transport.abort()

    # -- receiving --

    def _handshake(self) -> bool:
        """Parse the 101 response once its head is in; True once the connection is open."""
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > MAX_HANDSHAKE_BYTES:
                raise WsProtocolError("handshake response head too long")
            return False
        no_takeover = parse_handshake_response(bytes(self._buf[:end]), self._key,
                                               self._offer_deflate)
        if no_takeover is not None:
            self.deflate = True
            self._fresh_inflater = no_takeover
            self._inflater = zlib.decompressobj(-15)
        self._pos = end + 4
        self._state = _OPEN
        self.opened.set_result(None)
        return True

    def _parse(self) -> None:
        """Parse every complete frame in the buffer. The hot path: a final text frame (plain, or
        compressed and inflated) that starts with the orderbook_delta prefix is counted in place,
        its delay binned from its trailing ``ts_ms``; everything else goes to :meth:`_frame` /
        :meth:`_message`. All frames of one read share one receipt time, so frames with the
        same ``ts_ms`` bytes as the previous delta share its delay bin: ``run`` of them are
        added to the histogram at once."""
        buf, pos, size = self._buf, self._pos, len(self._buf)
        now = time.time_ns()
        now_bin = now // DELAY_BIN_NS
        hist = self._all.hist
        prev_ts: bytes | bytearray = b""
        b = run = 0
        inflater = self._inflater
        fresh = self._fresh_inflater
        in_frag = self._frag_op is not None
        deltas = 0
        last: bytes | bytearray = b""
        last_s = last_e = 0
        try:
            while size - pos >= 2:
                b0, n = buf[pos], buf[pos + 1]
                if n < 126:
                    s = pos + 2
                elif n == 126:
                    s = pos + 4
                    if s > size:
                        break
                    n = buf[pos + 2] << 8 | buf[pos + 3]
                elif n == 127:
                    s = pos + 10
                    if s > size:
                        break
                    n = int.from_bytes(buf[pos + 2:s], "big")
                else:
                    raise WsProtocolError("server frame is masked")
                e = s + n
                if e > size:
                    break
                pos = e
                d: bytes | bytearray
                if b0 == _FIN_TEXT and not in_frag:
                    d, ds, de = buf, s, e
                elif b0 == _FIN_RSV1_TEXT and inflater is not None and not in_frag:
                    if fresh:
                        inflater = zlib.decompressobj(-15)
                    d = inflater.decompress(buf[s:e] + _SYNC_FLUSH_TAIL)
                    ds, de = 0, len(d)
                else:
                    msg = self._frame(b0, bytes(buf[s:e]))
                    in_frag = self._frag_op is not None
                    if msg is None:
                        if self._state == _CLOSED:
                            break
                        continue
                    d, ds, de = msg, 0, len(msg)
                if d.startswith(_DELTA_PREFIX, ds, de):
                    i = d.rfind(_TS_KEY, ds, de)
                    ts = d[i + 8:de - 2]  # ...,"ts_ms":<digits>}} (else int() raises)
                    if ts != prev_ts:
                        if run:
                            hist[b] = hist.get(b, 0) + run
                        b, run, prev_ts = now_bin - int(ts) * BINS_PER_MS, 0, ts
                    run += 1
                    deltas += 1
                    last, last_s, last_e = d, ds, de
                else:
                    self._message(bytes(d[ds:de]))
        finally:
            self._pos = pos
            if run:
                hist[b] = hist.get(b, 0) + run
            if deltas:
                st = self._st
                st.deltas += deltas
                st.last_rx_ns = now
                st.last_delta = bytes(last[last_s:last_e])
                if not self._all.first_rx_ns:
                    self._all.first_rx_ns = now
        if pos == size:
            buf.clear()
            self._pos = 0
        elif pos >= COMPACT_BYTES:
            del buf[:pos]
            self._pos = 0

    def _frame(self, b0: int, payload: bytes) -> bytes | None:
        """Any frame but an unfragmented text frame: control frames are answered here;
        data frames are assembled. Returns a complete (inflated) text message, or None."""
        fin, rsv1, op = b0 & 0x80, b0 & 0x40, b0 & 0x0F
        if b0 & 0x30 or (rsv1 and self._inflater is None):
            raise WsProtocolError(f"unexpected RSV bits: {b0:#04x}")
        if op >= 8:
            if not fin or rsv1 or len(payload) > 125:
                raise WsProtocolError(f"bad control frame: {b0:#04x}, {len(payload)} bytes")
            self._control(op, payload)
            return None
        if op == _OP_CONT:
            if self._frag_op is None or rsv1:
                raise WsProtocolError("unexpected continuation frame")
            self._frag.append(payload)
        elif op in (_OP_TEXT, _OP_BINARY):
            if self._frag_op is not None:
                raise WsProtocolError("new message inside a fragmented one")
            self._frag_op, self._frag_rsv1, self._frag = op, bool(rsv1), [payload]
        else:
            raise WsProtocolError(f"unknown opcode {op}")
        if not fin:
            return None
        op, compressed, data = self._frag_op, self._frag_rsv1, b"".join(self._frag)
        self._frag_op, self._frag = None, []
        if compressed:
            if self._fresh_inflater:
                self._inflater = zlib.decompressobj(-15)
            data = self._inflater.decompress(data + _SYNC_FLUSH_TAIL)
        return data if op == _OP_TEXT else None  # the exchange sends no binary messages

    def _control(self, op: int, payload: bytes) -> None:
        """Close: answer (unless we started it) and close TCP. Ping: pong with its payload."""
        assert self._transport is not None
        if op == _OP_CLOSE:
            if self._state == _OPEN:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                self._st.failure = self._st.failure or f"server closed the connection ({code})"
                self._transport.write(masked_frame(_OP_CLOSE, payload[:2]))
            self._state = _CLOSED
            self._transport.close()
        elif op == _OP_PING:
            if self._state == _OPEN:
                self._transport.write(masked_frame(_OP_PONG, payload))
        elif op != _OP_PONG:
            raise WsProtocolError(f"unknown control opcode {op}")

    def _message(self, data: bytes) -> None:
        """A text message that is not a delta: the snapshot (seq recorded), errors (code 25 =
        dropped for falling behind; before the snapshot, any error fails the subscribe)."""
        st = self._st
        if data.startswith(_SNAPSHOT_PREFIX):
            frame = json.loads(data)
            st.snapshots += 1
            if st.snapshots == 1:
                st.sid, st.snapshot_seq = frame.get("sid"), frame.get("seq")
                if not self.snapshot.done():
                    self.snapshot.set_result(None)
        elif data.startswith(_ERROR_PREFIX):
            frame = json.loads(data)
            if not self.snapshot.done():
                self.snapshot.set_exception(RuntimeError(f"subscribe refused: {frame}"))
            elif frame.get("msg", {}).get("code") == 25:
                st.errors25 += 1
            else:
                st.other_errors += 1


async def _connect(cfg: dict[str, Any], signer: Any, idx: int, st: SubStats,
                   all_: ClientStats) -> FanoutWs:
    """One signed connection, subscribed, with its snapshot read."""
    from mmcore.venues.kalshi.auth import WS_PATH

    url = urlsplit(cfg["ws_url"])
    if url.scheme != "ws" or url.hostname is None:
        raise ValueError(f"only ws:// URLs: {cfg['ws_url']}")
    headers = signer.headers("GET", WS_PATH, timestamp_ms=time.time_ns() // 1_000_000)
    proto = FanoutWs(url.netloc, url.path or "/", headers, cfg["compression"] is not None,
                     st, all_)
    await asyncio.get_running_loop().create_connection(lambda: proto, url.hostname,
                                                       url.port or 80)
    await proto.opened
    proto.send_text(json.dumps({"id": idx + 1, "cmd": "subscribe", "params": {
        "channels": ["orderbook_delta"], "market_tickers": [cfg["market"]],
        "use_yes_price": True}}))
    await proto.snapshot
    return proto


async def _client(pipe: Connection) -> None:
    from mmcore.venues.kalshi.auth import Signer, load_private_key

    cfg = pipe.recv()
    signer = Signer(cfg["key_id"], load_private_key(cfg["key_path"]))
    n = cfg["subscribers"]
    stats = ClientStats([SubStats() for _ in range(n)])
    conns = await asyncio.wait_for(
        asyncio.gather(*(_connect(cfg, signer, i, stats.subs[i], stats) for i in range(n))),
        CONNECT_TIMEOUT_S)
    cpu0, wall0 = time.process_time(), time.monotonic()
    pipe.send({"ready": True, "deflate": all(c.deflate for c in conns)})

    done: dict[str, Any] | None = None
    while done is None:  # the server is generating
        await asyncio.sleep(0.02)
        if pipe.poll():
            done = pipe.recv()
    target = done["deltas"]
    last_progress, seen = time.monotonic(), -1
    while True:  # drain: every subscriber complete or dropped, or quiet for QUIET_S
        total = sum(s.deltas for s in stats.subs)
        if all(s.deltas >= target or s.errors25 or s.failure for s in stats.subs):
            break
        if total != seen:
            seen, last_progress = total, time.monotonic()
        elif time.monotonic() - last_progress > QUIET_S:
            break
        await asyncio.sleep(0.02)
    cpu1, wall1 = time.process_time(), time.monotonic()
    failures = [s.failure for s in stats.subs if s.failure]
    result = {
        "per_sub": [s.deltas for s in stats.subs],
        "errors25": sum(s.errors25 for s in stats.subs),
        "other_errors": sum(s.other_errors for s in stats.subs),
        "failures": len(failures),
        "first_failure": failures[0] if failures else "",
        "seq_gaps": sum(not seq_ok(s) for s in stats.subs),
        "first_rx_ns": stats.first_rx_ns,
        "last_rx_ns": max((s.last_rx_ns for s in stats.subs), default=0),
        "hist": stats.hist,
        "cpu_s": cpu1 - cpu0,
        "cpu_busy": (cpu1 - cpu0) / max(wall1 - wall0, 1e-9),
    }
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    pipe.send(result)


def client_main(pipe: Connection, cpus: set[int] | None) -> None:
    """Entry point of the client process (a failure is sent to the server instead of leaving it
    waiting)."""
    run_pinned(pipe, cpus, lambda: _client(pipe))


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
    all_kept_up = r["errors25"] == 0 and complete >= n and r["seq_gaps"] == 0
    fanout = complete / span_s if span_s > 0 else 0.0
    hist = {int(k): v for k, v in r["hist"].items()}
    p50, p99, pmax = percentile(hist, 0.50), percentile(hist, 0.99), percentile(hist, 1.0)

    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f} ms"

    server_where, client_where = placement(cpus, server_pinned, client_pinned)
    rows = [
        ("subscribers", f"{subs} on market {r['market']}"),
        ("permessage-deflate", "on" if r["deflate"] else "off"),
        ("server process", f"{server_where}, CPU busy {r['server_cpu_gen']:.0%} while "
                           f"generating, {r['server_cpu_all']:.0%} to last receipt"),
        ("client process", f"{client_where}, CPU busy {r['client_cpu']:.0%}"
                           + (f", {delivered / r['client_cpu_s']:,.0f} msgs per CPU-second"
                              if r["client_cpu_s"] > 0 else "")),
        ("deltas generated", f"{n} in {gen_s:.2f} s"),
        ("generated deltas/s", f"{n / gen_s:,.0f}" if gen_s > 0 else "n/a"),
        ("fan-out deltas/s", f"{fanout:,.0f}  (deltas reaching all {subs}, first delta → "
                             f"last receipt {span_s:.2f} s)"),
        ("delivered msgs/s", f"{delivered / span_s:,.0f}  ({delivered} orderbook_delta frames; "
                             f"expected {subs * n})" if span_s > 0 else "n/a"),
        ("delay p50 / p99 / max", f"{ms(p50)} / {ms(p99)} / {ms(pmax)}  (receipt − ts_ms)"),
        ("fell behind (error 25)", f"{r['errors25']} subscriber(s)"
                                   + (f"; other errors {r['other_errors']}"
                                      if r["other_errors"] else "")
                                   + (f"; {r['failures']} connection(s) ended early, first: "
                                      f"{r['first_failure']}" if r["failures"] else "")),
        ("slowest subscriber", f"{complete} of {n} deltas"),
        ("seq gaps", f"{r['seq_gaps']} subscriber(s)  (last delta seq − snapshot seq ≠ "
                     f"deltas counted)"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"exchange fan-out: {subs} WebSocket subscribers, up to {args.deltas} deltas "
          f"or {args.seconds:g} s, chunk {args.chunk}, seed {args.seed}; {load}")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    if not all_kept_up:
        verdict = (f"NOT MEASURED CLEANLY: {r['errors25']} subscriber(s) dropped / slowest got "
                   f"{complete} of {n} / {r['seq_gaps']} seq gap(s); fan-out {fanout:,.0f} "
                   f"deltas/s is a lower bound")
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
    ap.add_argument("--deltas", type=int, default=100_000, help="stop after this many deltas")
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
        result["client_cpu_s"] = result.pop("cpu_s")
    finally:
        reap(proc)
    report(args, result, server_pinned, client_pinned, cpus, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
