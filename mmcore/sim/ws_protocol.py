"""The local exchange's WebSocket server protocol: Kalshi's heartbeats and a fast send path.

:class:`HeartbeatProtocol` is uvicorn's sans-I/O websockets protocol (run uvicorn with
:func:`ws_server_options`) with what the fan-out in :mod:`mmcore.sim.ws` needs below the ASGI
layer. Rules of this file:

- **Heartbeats**: WebSocket Ping frames with payload ``heartbeat`` every
  ``ws_ping_interval`` s (Kalshi: 10 s); no pong within ``ws_ping_timeout`` s closes with 1011.
  ASGI apps cannot send pings, so this lives here.
- **Same bytes, fewer calls**: text messages are framed here (RFC 6455 §5.2: one final frame,
  unmasked) rather than through :mod:`websockets`' generic frame objects, and the bytes written
  to a socket during one loop pass leave in one ``send`` (:class:`_CoalescingTransport`).
- **Direct send**: :meth:`HeartbeatProtocol.send_texts` frames many messages and writes them
  at once, synchronously; the protocol offers it in the ASGI scope
  (``scope["extensions"][DIRECT_SEND_EXTENSION]["protocol"]``) and callers check
  :meth:`HeartbeatProtocol.direct_ready` first.
- **Compression**: permessage-deflate (context takeover) with the connection's own encoder, as
  :mod:`websockets` does, for messages of ``deflate_min_bytes`` (1 KiB) or more; smaller ones
  go uncompressed, which RFC 7692 allows per message. Any other extension set, a closing or
  paused connection, and binary messages take uvicorn's own path.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.protocol import State

__all__ = [
    "DIRECT_SEND_EXTENSION", "HEARTBEAT_INTERVAL_S", "HEARTBEAT_PAYLOAD", "HEARTBEAT_TIMEOUT_S",
    "HeartbeatProtocol", "ws_server_options",
]

HEARTBEAT_INTERVAL_S = 10.0
"""Kalshi pings every 10 s (kalshi.md §3.6)."""
HEARTBEAT_TIMEOUT_S = 20.0
"""Close a connection whose pong has not arrived this long after a ping."""
HEARTBEAT_PAYLOAD = b"heartbeat"
DIRECT_SEND_EXTENSION = "mmcore.ws.direct_send"
"""ASGI scope extension under which :class:`HeartbeatProtocol` offers :meth:`send_texts`."""


# === heartbeats and write coalescing (transport) =================================================


class _CoalescingTransport:
    """What :class:`HeartbeatProtocol` writes through: bytes written during one loop pass are
    joined and handed to the real transport once, at the start of the next pass — one ``send``
    call per socket and pass instead of one per frame. Order is kept (every write, control
    frames included, goes through here) and :meth:`close` writes what is pending first."""

    __slots__ = ("_transport", "_loop", "_pending", "_scheduled")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def write_now(self, data: bytes) -> None:
        """Write what is pending and ``data`` with one real write, now (no loop pass wait)."""
        if self._pending:
            self._pending.append(data)
            data = b"".join(self._pending)
            self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # pause_reading, get_extra_info, …
        return getattr(self._transport, name)


def _frame_header(first_byte: int, length: int) -> bytes:
    """An unmasked (server) frame header: FIN/RSV/opcode byte, then the payload length."""
    if length < 126:
        return _SHORT_TEXT_HEADERS[length] if first_byte == _FIN_TEXT else bytes(
            (first_byte, length))
    if length < 65536:
        return struct.pack("!BBH", first_byte, 126, length)
    return struct.pack("!BBQ", first_byte, 127, length)


_FIN_TEXT = 0x81
"""FIN + opcode 1 (text)."""
_FIN_RSV1_TEXT = 0xC1
"""FIN + RSV1 (compressed, permessage-deflate) + opcode 1."""
_SYNC_FLUSH_TAIL = b"\x00\x00\xff\xff"
_SHORT_TEXT_HEADERS = [bytes((_FIN_TEXT, n)) for n in range(126)]
_PACK_HEADER16 = struct.Struct("!BBH").pack
_TEXT_GENERIC, _TEXT_PLAIN, _TEXT_DEFLATE = 0, 1, 2


class HeartbeatProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol with Kalshi's keepalive ping payload ``heartbeat``
    (uvicorn's own ping carries 4 random bytes). Same timers otherwise: a ping every
    ``ws_ping_interval`` s; no pong within ``ws_ping_timeout`` s closes with 1011.

    Shortcuts for the fan-out, same protocol on the wire:

    - writes go through a :class:`_CoalescingTransport`: the frames a writer sends back to back
      leave in one socket write;
    - a ``websocket.send`` text message on an open, writable connection is framed here (RFC 6455
      §5.2: one final text frame, unmasked; compressed with the connection's own
      permessage-deflate encoder when that was negotiated, as :mod:`websockets` does) instead of
      through :mod:`websockets`' generic frame objects. Anything else — other messages, a
      connection that is closing or paused, an extension set other than none or
      permessage-deflate with context takeover — takes uvicorn's path;
    - :meth:`send_texts` frames many text messages and writes them at once, synchronously; the
      hub finds it in the ASGI scope (``scope["extensions"][DIRECT_SEND_EXTENSION]``) and uses
      it for data frames instead of one awaited ``websocket.send_text`` per frame;
    - with permessage-deflate, messages shorter than ``deflate_min_bytes`` (default
      :data:`DEFLATE_MIN_BYTES`) are sent uncompressed (RSV1 clear), which RFC 7692 allows per
      message: a ~250-byte delta would shrink by ~100 bytes for ~4 µs of zlib per subscriber,
      the largest per-frame cost of a fan-out. Snapshots and other large messages are compressed.
    """

    _text_mode: int | None = None
    deflate_min_bytes: int = 1024

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.transport = _CoalescingTransport(self.transport, self.loop)  # type: ignore[assignment]

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None and self.response.status_code == 101:
            scope["extensions"][DIRECT_SEND_EXTENSION] = {"protocol": self}

    def _pick_text_mode(self) -> int:
        exts = self.conn.extensions
        if not exts:
            return _TEXT_PLAIN
        if (len(exts) == 1 and isinstance(exts[0], PerMessageDeflate)
                and not exts[0].local_no_context_takeover):
            return _TEXT_DEFLATE
        return _TEXT_GENERIC

    def _text_mode_now(self) -> int:
        mode = self._text_mode
        if mode is None:
            mode = self._text_mode = self._pick_text_mode()
        return mode

    def direct_ready(self) -> bool:
        """Whether :meth:`send_texts` may write now: open, writable (not paused by the
        transport's high-water mark), not closing, and an extension set framed here."""
        return (self.handshake_complete and not self.close_sent and not self.disconnected
                and self.initial_response is None and self.writable.is_set()
                and self.conn.state is State.OPEN and not self.conn.expect_continuation_frame
                and self._text_mode_now() != _TEXT_GENERIC)

    def _frame_text(self, text: str, mode: int) -> bytes:
        """One final text frame for ``text`` (``mode`` plain or deflate, see the class doc)."""
        data = text.encode()
        if mode == _TEXT_DEFLATE and len(data) >= self.deflate_min_bytes:
            encoder = self.conn.extensions[0].encoder  # type: ignore[attr-defined]
            data = encoder.compress(data) + encoder.flush(zlib.Z_SYNC_FLUSH)
            if data.endswith(_SYNC_FLUSH_TAIL):
                data = data[:-4]
            return _frame_header(_FIN_RSV1_TEXT, len(data)) + data
        n = len(data)
        if 125 < n < 65536:  # the usual data frame: inlined, it is the per-frame hot path
            return _PACK_HEADER16(_FIN_TEXT, 126, n) + data
        return _frame_header(_FIN_TEXT, n) + data

    def send_texts(self, texts: Iterable[str]) -> None:
        """Frame ``texts`` and write them now, in order, in one socket write. Only after
        :meth:`direct_ready` said yes, with nothing else written in between."""
        mode = self._text_mode_now()
        frame = self._frame_text
        self.transport.write_now(  # type: ignore[attr-defined]
            b"".join([frame(t, mode) for t in texts]))

    async def send(self, message: Any) -> None:
        if message["type"] == "websocket.send" and self.direct_ready():
            text = message.get("text")
            if text is not None and message.get("bytes") is None:
                self.transport.write(self._frame_text(text, self._text_mode_now()))
                return
        await super().send(message)

    def send_keepalive_ping(self) -> None:
        self.ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        self.pending_ping_payload = HEARTBEAT_PAYLOAD
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(HEARTBEAT_PAYLOAD)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.ping_timeout is not None:
            self.pong_timer = self.loop.call_later(self.ping_timeout, self.keepalive_timeout)
        else:
            self.schedule_ping()


WS_MAX_MESSAGE_BYTES = 1 << 20
"""Largest client WebSocket message accepted (1 MiB; a command is well under 10 kB)."""


def ws_server_options(heartbeat_interval_s: float = HEARTBEAT_INTERVAL_S,
                      heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S, *,
                      per_message_deflate: bool = True) -> dict[str, Any]:
    """uvicorn options (e.g. ``LoopbackServer(app, **ws_server_options())``) for Kalshi-like
    heartbeats: Ping frames with payload ``heartbeat`` every ``heartbeat_interval_s`` seconds.
    ``per_message_deflate=False`` declines compression even when a client offers it. A client
    message over :data:`WS_MAX_MESSAGE_BYTES` (after decompression) is answered with a close
    frame, code 1009 (message too big), instead of being read into memory."""
    return {"ws": HeartbeatProtocol, "ws_ping_interval": heartbeat_interval_s,
            "ws_ping_timeout": heartbeat_timeout_s, "ws_per_message_deflate": per_message_deflate,
            "ws_max_size": WS_MAX_MESSAGE_BYTES}
