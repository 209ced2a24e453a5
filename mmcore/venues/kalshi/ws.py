"""Kalshi WebSocket client, part 3 of 3: the driver (:class:`KalshiWs`), and the client's facade.

Layers (style items 2 and 11): :mod:`~mmcore.venues.kalshi.schema` parses frames,
:class:`~mmcore.venues.kalshi.ws_session.WsSession` is the state machine — frames and connection
changes in, typed events (:mod:`~mmcore.venues.kalshi.ws_events`) and commands out, no awaits, no
clock reads — and :class:`KalshiWs` owns the socket, signing, sleeps and reconnects. The local
exchange and Kalshi differ only in the URL handed to the driver. This module re-exports every
public name of the other two, so ``from mmcore.venues.kalshi.ws import ...`` reaches the whole
client.

Calling order::

    ws = KalshiWs(url, signer, markets=[...])
    async for event in ws.events():      # connects, subscribes, reconnects until close()
        ...                              # BookUpdated / BookStale / Fill / OrderUpdate / ...
    await ws.close()                     # from anywhere: events() then ends cleanly

Driving the session by hand, and the rules it follows (books, seq, connections, parsing, time):
:mod:`~mmcore.venues.kalshi.ws_session`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.client import process_exception
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from mmcore.errors import AuthError, InputError, VenueProtocolError, VenueRefusalError
from mmcore.venues.kalshi import schema as ks
from mmcore.venues.kalshi.auth import Signer
from mmcore.venues.kalshi.ws_events import (
    BookResynced, BookStale, BookUpdated, BookView, Connected, Disconnected, Fill, Lifecycle,
    OrderGroupUpdate, OrderUpdate, PositionUpdate, SessionOutput, StaleReason, Trade, WsEvent,
    encode_command,
)
from mmcore.venues.kalshi.ws_session import (
    DEFAULT_CHANNELS, DUPLICATE_TOLERANCE, MARKET_FILTERED_CHANNELS, MAX_RESUBSCRIBES, WsSession,
)

__all__ = [
    "DEFAULT_CHANNELS", "MARKET_FILTERED_CHANNELS", "DUPLICATE_TOLERANCE", "MAX_RESUBSCRIBES",
    "BookView", "BookUpdated", "BookStale", "BookResynced", "Fill", "OrderUpdate",
    "PositionUpdate", "Lifecycle", "OrderGroupUpdate", "Trade", "Connected", "Disconnected", "WsEvent",
    "SessionOutput",
    "StaleReason", "WsSession", "encode_command", "backoff_delay_s", "KalshiWs",
]

log = logging.getLogger(__name__)


# --- the driver -------------------------------------------------------------------------------


def backoff_delay_s(retry: int, *, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Delay before reconnect number ``retry`` (0-based): capped exponential with equal jitter,
    uniform in ``[d/2, d]`` for ``d = min(max_s, initial_s · 2**retry)``."""
    d = min(max_s, initial_s * (2 ** min(retry, 62)))
    return d / 2 + rng.uniform(0.0, d / 2)


def _handshake_failure(exc: Exception) -> Exception | None:
    """``None`` if a failed connect is worth retrying, else the error to raise."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status == 429 or status >= 500:
            return None
        body = exc.response.body.decode("utf-8", "replace")[:500] if exc.response.body else None
        if status in (401, 403):
            return AuthError("kalshi ws: handshake refused", status=status, body=body)
        return VenueRefusalError("kalshi ws: handshake refused", status=status, body=body)
    if process_exception(exc) is None:
        return None
    if isinstance(exc, InvalidURI):
        return InputError(f"kalshi ws: bad URL: {exc}")
    if isinstance(exc, InvalidHandshake):
        return VenueProtocolError(f"kalshi ws: handshake failed: {exc}")
    return exc


class KalshiWs:
    """Connects, subscribes, reconnects; yields :data:`WsEvent` s from :meth:`events`.

    Why a custom loop rather than ``async for conn in websockets.connect(...)``: that iterator
    signs nothing per attempt (``additional_headers`` are fixed at construction, and Kalshi's
    signature embeds a millisecond timestamp), takes its backoff from process-wide environment
    variables, resets backoff after any successful handshake (a server that accepts and drops
    at once is retried in a tight loop) and gives no hook for ``Connected``/``Disconnected``.
    Each attempt here is one plain ``await websockets.asyncio.client.connect(...)`` with freshly
    signed headers; failures are classified with websockets' own ``process_exception`` (network
    errors, 5xx and 429 retry; 401/403 raise :class:`~mmcore.errors.AuthError`; other refusals
    :class:`~mmcore.errors.VenueRefusalError`). Reconnect ``k`` (counted since the last
    connection that stayed up ``stable_after_s``) waits :func:`backoff_delay_s`. websockets
    answers the server's pings itself and sends its own (``ping_interval_s``) to detect a dead
    link.

    One instance runs :meth:`events` once; :meth:`close` ends it for good.
    """

    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        markets: Iterable[str],
        channels: Iterable[str] = DEFAULT_CHANNELS,
        use_yes_price: bool = True,
        clock_ns: Callable[[], int] = time.time_ns,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 10.0,
        stable_after_s: float = 10.0,
        open_timeout_s: float = 10.0,
        ping_interval_s: float | None = 20.0,
        ping_timeout_s: float | None = 20.0,
        max_message_bytes: int = 16 * 2**20,
        duplicate_tolerance: int = DUPLICATE_TOLERANCE,
        rng: random.Random | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.netloc:
            raise InputError(f"kalshi ws: URL must be ws:// or wss://, got {url!r}")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise InputError("kalshi ws: need 0 < backoff_initial_s <= backoff_max_s")
        self._url = url
        self._path = parts.path or "/"
        self._signer = signer
        self._clock_ns = clock_ns
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._stable_after_s = stable_after_s
        self._connect_options = {
            "open_timeout": open_timeout_s, "ping_interval": ping_interval_s,
            "ping_timeout": ping_timeout_s, "max_size": max_message_bytes,
        }
        self._rng = rng or random.Random()
        self.session = WsSession(tuple(markets), tuple(channels), use_yes_price,
                                 duplicate_tolerance)
        self._attempt = 0
        self._closing = False
        self._wake = asyncio.Event()
        self._conn: Any = None
        self._running = False

    @property
    def books(self) -> Mapping[str, BookView]:
        return self.session.books

    @property
    def attempts(self) -> int:
        """Connection attempts made so far."""
        return self._attempt

    async def close(self) -> None:
        """End :meth:`events` (it returns after the current frame) and close the socket."""
        self._closing = True
        self._wake.set()
        conn = self._conn
        if conn is not None:
            await conn.close()

    async def probe(self, markets: Iterable[str]) -> bool:
        """Ask the venue for fresh snapshots of ``markets`` on the current connection
        (:meth:`WsSession.probe`); False when nothing was sent (no connection, no book
        subscription yet, or every named book already stale). The snapshots arrive through
        :meth:`events` as :class:`BookUpdated`."""
        conn = self._conn
        if conn is None or self._closing:
            return False
        cmds = self.session.probe(markets)  # commands only
        try:
            for c in cmds:
                await conn.send(encode_command(c))  # type: ignore[arg-type]
        except ConnectionClosed:
            return False
        return bool(cmds)

    async def _open(self) -> Any:
        headers = self._signer.headers("GET", self._path,
                                       timestamp_ms=self._clock_ns() // 1_000_000)
        return await ws_connect(self._url, additional_headers=headers, **self._connect_options)

    async def _sleep(self, delay_s: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), delay_s)
        except asyncio.TimeoutError:
            pass

    async def events(self) -> AsyncIterator[WsEvent]:
        """Typed events until :meth:`close`. Raises (ending the iteration) only on a refusal that
        retrying cannot fix (bad key, bad URL)."""
        if self._running:
            raise RuntimeError("KalshiWs.events() is already running")
        self._running = True
        retry = 0
        try:
            while not self._closing:
                self._attempt += 1
                try:
                    conn = await self._open()
                except Exception as exc:  # noqa: BLE001 - classified right here
                    fatal = _handshake_failure(exc)
                    if fatal is exc:
                        raise
                    if fatal is not None:
                        raise fatal from exc
                    delay = backoff_delay_s(retry, initial_s=self._backoff_initial_s,
                                            max_s=self._backoff_max_s, rng=self._rng)
                    retry += 1
                    log.log(logging.WARNING if retry > 3 else logging.INFO,
                            "kalshi ws: connect attempt %s failed (%s); retrying in %.2f s",
                            self._attempt, exc, delay)
                    await self._sleep(delay)
                    continue
                self._conn = conn
                opened = time.monotonic()
                reason = "connection closed"
                try:
                    if self._closing:
                        return
                    outs = self.session.on_connected(self._attempt, self._clock_ns())
                    for item in await self._send(conn, outs):
                        yield item
                    async for raw in conn:
                        outs = self.session.on_message(raw, self._clock_ns())
                        for item in await self._send(conn, outs):
                            yield item
                        if self._closing:
                            return
                    reason = _close_reason(conn)
                except ConnectionClosed as exc:
                    reason = _close_reason(conn, exc)
                except VenueProtocolError as exc:
                    reason = f"protocol error: {exc}"
                    log.warning("kalshi ws: dropping the connection: %s", exc)
                finally:
                    self._conn = None
                    await conn.close()
                if self._closing:
                    return
                for item in self.session.on_disconnected(reason, self._clock_ns()):
                    yield item  # type: ignore[misc]
                if time.monotonic() - opened >= self._stable_after_s:
                    retry = 0
                delay = backoff_delay_s(retry, initial_s=self._backoff_initial_s,
                                        max_s=self._backoff_max_s, rng=self._rng)
                retry += 1
                log.info("kalshi ws: disconnected (%s); reconnecting in %.2f s", reason, delay)
                await self._sleep(delay)
        finally:
            self._running = False

    @staticmethod
    async def _send(conn: Any, outs: list[SessionOutput]) -> list[WsEvent]:
        """Send the commands of a batch (in order); return its events."""
        events: list[WsEvent] = []
        for item in outs:
            if isinstance(item, (ks.SubscribeCommand, ks.UnsubscribeCommand,
                                 ks.UpdateSubscriptionCommand, ks.ListSubscriptionsCommand)):
                await conn.send(encode_command(item))
            else:
                events.append(item)
        return events


def _close_reason(conn: Any, exc: Exception | None = None) -> str:
    code = getattr(conn, "close_code", None)
    text = getattr(conn, "close_reason", None)
    if code is None and exc is not None:
        return f"connection lost: {exc}"
    return f"closed by peer: code {code}" + (f" ({text})" if text else "")
