"""A lean HTTP/1.1 keep-alive transport for Kalshi order writes (the tick-to-wire path).

Why: an order write through httpx costs ~1 ms of Python before its first byte reaches the socket
(request and header models, the connection pool's state machine, h11, trace hooks), against tens
of µs for writing prepared bytes. :class:`KalshiRest <mmcore.venues.kalshi.rest.KalshiRest>`
sends its writes (create, amend, cancel, batch create/cancel, decrease, order-group writes)
through a :class:`WirePool` by default; reads stay on httpx. Semantics are those of the httpx
path: the caller (``KalshiRest._call``) keeps the rate limiter, retries and the error tree; this
module only says *how* an attempt failed, in the terms the retry rules need:

===========================  ========================================  =====================
exception                    when                                      may have executed?
===========================  ========================================  =====================
:class:`WireConnectError`    connect refused / unreachable / TLS        no
:class:`WireConnectTimeout`  no connection within ``timeout_s`` (also   no
                             waiting for a free pool slot)
:class:`WireReadTimeout`     request written, no full reply within      yes
                             ``timeout_s``
:class:`WireConnectionLost`  the connection closed or reset after the   ``sent`` (True unless
                             request was handed to it                   nothing was written)
:class:`WireProtocolError`   an unparseable reply                        yes
===========================  ========================================  =====================

Layers (style item 11): :func:`build_request` and :class:`ResponseParser` are pure (bytes in,
bytes out; fuzzable); :class:`WirePool` is the I/O — ``asyncio.Protocol`` connections, one
request at a time each (no pipelining), idle ones reused last-in-first-out.

Rules of this file:

- One request per connection at a time; a connection is reused only after its reply was read
  whole and neither side asked to close. A connection whose reply timed out, was cancelled or
  broke is closed, never reused (a late reply would be read as the next request's).
- The server closing an idle connection (keep-alive timeout, FIN or reset) is seen by the
  protocol's callbacks as soon as the loop reads it; such a connection is dropped and the next
  request opens a new one without any attempt failing. Idle connections older than
  ``keepalive_expiry_s`` are dropped before use.
- TLS (``https``) with the default verifying context, or plain TCP (``http``, the local exchange
  over loopback). ``TCP_NODELAY`` is set: a request is one write and goes out at once.
- Times: ``written_ns`` is ``time.perf_counter_ns()`` when the request bytes were handed to the
  socket; timeouts in seconds (float).
- Never logged: header values (they carry the signature).
"""

from __future__ import annotations

import asyncio
import socket
import ssl as _ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from mmcore.errors import InputError

try:  # a fast encoder when present (prefect ships orjson); the stdlib one otherwise
    import orjson as _orjson

    def dumps_body(body: object) -> bytes:
        """Compact JSON bytes for a request body (``orjson``; no NaN, UTF-8)."""
        return _orjson.dumps(body)
except ImportError:  # pragma: no cover - orjson is a transitive dependency
    import json as _json

    def dumps_body(body: object) -> bytes:
        """Compact JSON bytes for a request body (stdlib ``json``; no NaN, UTF-8)."""
        return _json.dumps(body, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False).encode()

__all__ = [
    "WireError", "WireConnectError", "WireConnectTimeout", "WireReadTimeout",
    "WireConnectionLost", "WireProtocolError", "RawResponse", "ResponseParser", "WirePool",
    "build_request", "dumps_body", "MAX_HEAD_BYTES", "MAX_BODY_BYTES",
]

MAX_HEAD_BYTES = 64 * 1024
"""A reply's status line and headers, at most (bytes)."""
MAX_BODY_BYTES = 32 * 1024 * 1024
"""A reply's body, at most (bytes): order writes answer a few hundred."""
KEEPALIVE_EXPIRY_S = 60.0


# =============================================================================================
# Errors: how an attempt failed (KalshiRest maps them onto the error tree)
# =============================================================================================


class WireError(Exception):
    """Base: an attempt failed in the transport. ``sent``: the request was handed to a socket
    (so the venue may have executed it)."""

    sent = True


class WireConnectError(WireError):
    sent = False


class WireConnectTimeout(WireError):
    sent = False


class WireReadTimeout(WireError):
    pass


class WireConnectionLost(WireError):
    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class WireProtocolError(WireError):
    pass


# =============================================================================================
# Pure: request bytes, reply parser
# =============================================================================================


def build_request(method: str, target: str, host: str, headers: Mapping[str, str],
                  body: bytes | None, *, user_agent: str = "kalshi-sports-mm") -> bytes:
    """The complete HTTP/1.1 request: ``method target``, ``Host``, ``User-Agent``, ``Accept``,
    ``headers`` (e.g. the three signed Kalshi headers), and with a body ``Content-Type:
    application/json`` and ``Content-Length``. A ``POST``/``PUT`` without a body says
    ``Content-Length: 0``. :class:`InputError` for a CR, LF or NUL in a header value or a
    space/control character in the target (header injection)."""
    for value in headers.values():
        if "\r" in value or "\n" in value or "\0" in value:
            raise InputError("header value with CR, LF or NUL")
    if not (target.startswith("/") and target.isascii() and target.isprintable()
            and " " not in target):
        raise InputError(f"bad request target {target[:80]!r}")
    parts = [f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {user_agent}\r\n"
             "Accept: application/json\r\n"]
    for name, value in headers.items():
        parts.append(f"{name}: {value}\r\n")
    if body is not None:
        parts.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        return "".join(parts).encode("latin-1") + body
    if method in ("POST", "PUT", "PATCH"):
        parts.append("Content-Length: 0\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("latin-1")


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A parsed reply: ``status``, headers as (lower-case name, value) in order, the body
    (de-chunked), and whether the connection may carry another request."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    keep_alive: bool


_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_CLOSE, _DONE = range(7)


class ResponseParser:
    """Incremental parser of one HTTP/1.1 reply (pure: no I/O, no clock).

    :meth:`feed` bytes as they arrive; it returns the :class:`RawResponse` once complete (else
    None). :meth:`eof` when the peer closed: the reply if its body runs to the close, else
    :class:`WireConnectionLost` (``started`` tells whether any byte of the reply came).
    Interim ``1xx`` replies are skipped. Bodies: ``Transfer-Encoding: chunked``, else
    ``Content-Length``, else up to the close (no reuse). Malformed input →
    :class:`WireProtocolError`; bytes beyond the reply (a server talking out of turn) too.
    """

    __slots__ = ("_buf", "_state", "_need", "_status", "_headers", "_body", "_keep_alive",
                 "started")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._state = _HEAD
        self._need = 0
        self._status = 0
        self._headers: tuple[tuple[str, str], ...] = ()
        self._body = bytearray()
        self._keep_alive = True
        self.started = False

    def feed(self, data: bytes) -> RawResponse | None:
        if self._state == _DONE:
            raise WireProtocolError("bytes after a complete reply")
        if data:
            self.started = True
        self._buf += data
        while True:
            state = self._state
            if state == _HEAD:
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > MAX_HEAD_BYTES:
                        raise WireProtocolError("reply head too long")
                    return None
                head = bytes(self._buf[:end])
                del self._buf[:end + 4]
                if not self._head(head):
                    continue  # an interim 1xx: the real reply follows
            elif state == _LENGTH:
                if len(self._buf) < self._need:
                    return None
                self._body += self._buf[:self._need]
                del self._buf[:self._need]
                return self._finish()
            elif state == _CHUNK_SIZE:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) > 1024:
                        raise WireProtocolError("chunk size line too long")
                    return None
                line = bytes(self._buf[:end]).split(b";", 1)[0].strip()
                del self._buf[:end + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    raise WireProtocolError(f"bad chunk size {line[:20]!r}") from None
                if size < 0 or len(self._body) + size > MAX_BODY_BYTES:
                    raise WireProtocolError("chunked body too large")
                if size == 0:
                    self._state = _TRAILER
                else:
                    self._state, self._need = _CHUNK_DATA, size
            elif state == _CHUNK_DATA:
                if len(self._buf) < self._need + 2:
                    return None
                if self._buf[self._need:self._need + 2] != b"\r\n":
                    raise WireProtocolError("chunk not followed by CRLF")
                self._body += self._buf[:self._need]
                del self._buf[:self._need + 2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILER:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) > MAX_HEAD_BYTES:
                        raise WireProtocolError("trailer too long")
                    return None
                del self._buf[:end + 2]
                if end == 0:
                    return self._finish()
            elif state == _UNTIL_CLOSE:
                self._body += self._buf
                self._buf.clear()
                if len(self._body) > MAX_BODY_BYTES:
                    raise WireProtocolError("reply body too large")
                return None
            else:  # pragma: no cover - _DONE handled above
                raise WireProtocolError("parser state")

    def eof(self) -> RawResponse:
        """The peer closed: the reply if it ran to the close, else :class:`WireConnectionLost`."""
        if self._state == _UNTIL_CLOSE:
            return self._finish()
        raise WireConnectionLost("connection closed " + (
            "mid-reply" if self.started else "before any reply"))

    def _head(self, head: bytes) -> bool:
        """Parse status line and headers; False for an interim 1xx (skipped)."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise WireProtocolError(f"bad status line {lines[0][:60]!r}")
        try:
            status = int(parts[1])
        except ValueError:
            raise WireProtocolError(f"bad status {parts[1][:10]!r}") from None
        if not 100 <= status <= 599 or len(parts[1]) != 3:
            raise WireProtocolError(f"bad status {status}")
        headers: list[tuple[str, str]] = []
        for raw in lines[1:]:
            name, sep, value = raw.partition(b":")
            if not sep or not name or name != name.strip() or raw[:1] in (b" ", b"\t"):
                raise WireProtocolError(f"bad header line {raw[:60]!r}")
            headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
        if 100 <= status < 200:
            if status == 101:
                raise WireProtocolError("unexpected 101 Switching Protocols")
            return False
        self._status, self._headers = status, tuple(headers)
        conn = ",".join(v.lower() for k, v in headers if k == "connection")
        if parts[0] == b"HTTP/1.0":
            self._keep_alive = "keep-alive" in conn
        else:
            self._keep_alive = "close" not in conn
        te = [v.lower() for k, v in headers if k == "transfer-encoding"]
        lengths = {v for k, v in headers if k == "content-length"}
        if status in (204, 304):
            self._state, self._need = _LENGTH, 0
        elif te:
            if te[-1].rsplit(",", 1)[-1].strip() != "chunked":
                raise WireProtocolError(f"unsupported transfer-encoding {te[-1][:30]!r}")
            self._state = _CHUNK_SIZE
        elif lengths:
            if len(lengths) != 1 or not (v := lengths.pop()).isdigit() or len(v) > 12:
                raise WireProtocolError("bad content-length")
            n = int(v)
            if n > MAX_BODY_BYTES:
                raise WireProtocolError("reply body too large")
            self._state, self._need = _LENGTH, n
        else:
            self._state, self._keep_alive = _UNTIL_CLOSE, False
        return True

    def _finish(self) -> RawResponse:
        if self._state != _UNTIL_CLOSE and self._buf:
            raise WireProtocolError("bytes after a complete reply")
        self._state = _DONE
        return RawResponse(self._status, self._headers, bytes(self._body), self._keep_alive)


# =============================================================================================
# I/O: connections and the pool
# =============================================================================================


class _Conn(asyncio.Protocol):
    """One keep-alive connection; at most one request in flight."""

    __slots__ = ("transport", "closed", "waiter", "parser", "idle_since", "reused")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.waiter: asyncio.Future[RawResponse] | None = None
        self.parser: ResponseParser | None = None
        self.idle_since = 0.0
        self.reused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - not every socket allows it
                pass

    def data_received(self, data: bytes) -> None:
        waiter, parser = self.waiter, self.parser
        if waiter is None or parser is None or waiter.done():
            self.close()  # bytes nobody asked for: this connection cannot be trusted again
            return
        try:
            resp = parser.feed(data)
        except WireError as exc:
            self.close()
            waiter.set_exception(exc)
            return
        if resp is not None:
            waiter.set_result(resp)

    def eof_received(self) -> bool:
        self._ended(None)
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(exc)

    def _ended(self, exc: Exception | None) -> None:
        self.closed = True
        waiter, parser = self.waiter, self.parser
        if waiter is None or waiter.done() or parser is None:
            return
        try:
            waiter.set_result(parser.eof())
        except WireConnectionLost as lost:
            why = f": {type(exc).__name__}: {exc}" if exc is not None else ""
            waiter.set_exception(WireConnectionLost(f"{lost}{why}"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


OnWritten = Callable[[str, str, "bytes | None", int], None]


class WirePool:
    """Keep-alive connections to one origin for order writes (rules in the module docstring).

    ``base_url``: ``http://host:port`` or ``https://host`` (any path is ignored: the caller sends
    full targets). ``timeout_s`` bounds connecting (and waiting for a free connection) and, once
    the request is written, the whole reply. ``max_connections`` requests may be in flight at
    once; more wait for a connection. ``ssl_context`` overrides the default verifying context
    for ``https``. ``on_written(method, target, body, time.time_ns())`` (optional, for
    benchmarks) is called right after a request's bytes were handed to the socket.
    Counters: ``opened`` connections, ``requests``. Bound to the event loop of its first use.
    """

    def __init__(self, base_url: str, *, timeout_s: float = 5.0, max_connections: int = 8,
                 ssl_context: _ssl.SSLContext | None = None,
                 keepalive_expiry_s: float = KEEPALIVE_EXPIRY_S,
                 user_agent: str = "kalshi-sports-mm") -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise InputError(f"wire transport needs an http(s) URL, got {base_url!r}")
        if not timeout_s > 0 or max_connections < 1:
            raise InputError("timeout_s must be > 0 and max_connections >= 1")
        self.scheme = u.scheme
        self.hostname = u.hostname
        default_port = 443 if u.scheme == "https" else 80
        self.port = u.port or default_port
        self.host_header = (self.hostname if self.port == default_port
                            else f"{self.hostname}:{self.port}")
        if ":" in self.hostname:  # IPv6 literal
            self.host_header = f"[{self.hostname}]" + ("" if self.port == default_port
                                                        else f":{self.port}")
        self._ssl: _ssl.SSLContext | None = None
        if u.scheme == "https":
            self._ssl = ssl_context or _ssl.create_default_context()
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.keepalive_expiry_s = keepalive_expiry_s
        self.user_agent = user_agent
        self.on_written: OnWritten | None = None
        self._idle: list[_Conn] = []
        self._busy = 0
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._all: set[_Conn] = set()
        self._closed = False
        self.opened = 0
        self.requests = 0

    def __repr__(self) -> str:
        return (f"WirePool({self.scheme}://{self.host_header}, idle={len(self._idle)}, "
                f"busy={self._busy}, opened={self.opened})")

    @property
    def idle_connections(self) -> int:
        """Idle connections still open (as far as the loop has seen)."""
        return sum(1 for c in self._idle if not c.closed)

    # --- connections --------------------------------------------------------------------------

    async def _open(self) -> _Conn:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                _, conn = await loop.create_connection(
                    _Conn, self.hostname, self.port, ssl=self._ssl,
                    server_hostname=self.hostname if self._ssl is not None else None)
        except TimeoutError:
            raise WireConnectTimeout(
                f"could not connect to {self.host_header} in {self.timeout_s:g} s") from None
        except (OSError, _ssl.SSLError) as exc:
            raise WireConnectError(f"connect to {self.host_header}: {type(exc).__name__}: "
                                   f"{exc}") from None
        self.opened += 1
        self._all.add(conn)
        return conn

    def _take_idle(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.closed or now - conn.idle_since > self.keepalive_expiry_s:
                conn.close()
                self._all.discard(conn)
                continue
            conn.reused = True
            return conn
        return None

    async def _acquire_slot(self) -> None:
        if self._busy < self.max_connections and not self._slot_waiters:
            self._busy += 1
            return
        fut = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(fut)
        try:
            async with asyncio.timeout(self.timeout_s):
                await fut
        except TimeoutError:
            if fut.done() and not fut.cancelled():
                self._release_slot()  # handed to us as we timed out: pass it on
            raise WireConnectTimeout(f"no free connection to {self.host_header} in "
                                     f"{self.timeout_s:g} s") from None
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._release_slot()
            raise
        finally:
            if fut in self._slot_waiters:
                self._slot_waiters.remove(fut)

    def _release_slot(self) -> None:
        while self._slot_waiters:
            fut = self._slot_waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes on; _busy unchanged
                return
        self._busy -= 1

    async def warm(self, n: int = 1) -> int:
        """Open up to ``n`` idle connections ahead of the first write (a TCP or TLS handshake
        off the hot path). Failures are swallowed (the write will try again); the number of
        idle connections after."""
        while len(self._idle) < n and not self._closed and self._busy < self.max_connections:
            try:
                conn = await self._open()
            except WireError:
                break
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        return self.idle_connections

    # --- one request --------------------------------------------------------------------------

    async def request(self, method: str, target: str, headers: Mapping[str, str],
                      body: bytes | None) -> tuple[RawResponse, int]:
        """Send one request and read its reply: ``(reply, written_ns)`` with ``written_ns`` the
        ``perf_counter_ns`` at which the bytes were handed to the socket. Raises a
        :class:`WireError` subclass on failure (see the module table)."""
        if self._closed:
            raise WireConnectError("wire transport closed")
        data = build_request(method, target, self.host_header, headers, body,
                             user_agent=self.user_agent)
        await self._acquire_slot()
        conn: _Conn | None = None
        try:
            conn = self._take_idle()
            if conn is None:
                conn = await self._open()
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[RawResponse] = loop.create_future()
            conn.waiter, conn.parser = waiter, ResponseParser()
            assert conn.transport is not None
            conn.transport.write(data)
            written = time.perf_counter_ns()
            self.requests += 1
            if self.on_written is not None:
                self.on_written(method, target, body, time.time_ns())
            timer = loop.call_later(self.timeout_s, _time_out, waiter, self.timeout_s)
            try:
                resp = await waiter
            finally:
                timer.cancel()
        except BaseException:
            if conn is not None:  # whatever happened, this connection's state is unknown
                conn.close()
                self._all.discard(conn)
            self._release_slot()
            raise
        conn.waiter = conn.parser = None
        if resp.keep_alive and not conn.closed and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
            self._all.discard(conn)
        self._release_slot()
        return resp, written

    async def aclose(self) -> None:
        """Close every connection (in-flight requests fail with :class:`WireConnectionLost`)."""
        self._closed = True
        for conn in list(self._all) + self._idle:
            conn.close()
        self._all.clear()
        self._idle.clear()


def _time_out(waiter: asyncio.Future[RawResponse], timeout_s: float) -> None:
    if not waiter.done():
        waiter.set_exception(WireReadTimeout(f"no reply in {timeout_s:g} s"))
