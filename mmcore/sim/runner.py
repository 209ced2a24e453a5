"""Run an ASGI app (Starlette) under uvicorn on 127.0.0.1, for the embedded default's servers.

:class:`LoopbackServer` starts in a background thread (``start()``/``stop()``, ``with``) or as a
task in the running loop (``astart()``/``astop()``, ``async with``); both return only once the
server accepts connections (uvicorn's ``started`` flag, never a fixed sleep). It binds 127.0.0.1
only and leaves the host's signal handlers alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

LOOPBACK = "127.0.0.1"


class _Uvicorn(uvicorn.Server):
    """uvicorn that reports readiness through a callback and leaves signal handlers alone."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # an embedded server must not take over the host's Ctrl-C


class LoopbackServer:
    """One ASGI app on ``127.0.0.1:port`` (0 = a free port); ``url`` is ``http://127.0.0.1:<port>``.

    ``uvicorn_options`` go to :class:`uvicorn.Config` (e.g. ``ws_ping_interval``).
    """

    def __init__(self, app: Any, port: int = 0, *, name: str = "server",
                 startup_timeout_s: float = 10.0, **uvicorn_options: Any) -> None:
        self.app = app
        self.port = port
        self.name = name
        self.startup_timeout_s = startup_timeout_s
        self.uvicorn_options = uvicorn_options
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._bound_port: int | None = None

    @property
    def bound_port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError(f"{self.name} not started")
        return self._bound_port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.bound_port}"

    def _prepare(self, on_started: Callable[[], None]) -> tuple[_Uvicorn, socket.socket]:
        if self._server is not None:
            raise RuntimeError(f"{self.name} already started")
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets then
        # (with proto 0 every reply waits ~40 ms for a delayed ACK).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, self.port))
        self._bound_port = sock.getsockname()[1]
        options = {"lifespan": "off", "log_config": None, "access_log": False,
                   "log_level": "warning", "timeout_graceful_shutdown": 2, **self.uvicorn_options}
        cfg = uvicorn.Config(self.app, **options)
        self._server = _Uvicorn(cfg, on_started)
        return self._server, sock

    def start(self) -> LoopbackServer:
        """Start in a background thread; returns when the server accepts connections."""
        ready = threading.Event()
        server, sock = self._prepare(ready.set)

        def run() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            finally:
                ready.set()  # unblock start() if startup failed

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        ready.wait(self.startup_timeout_s)
        if not server.started:
            self.stop()
            raise RuntimeError(f"{self.name} failed to start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None

    async def astart(self) -> LoopbackServer:
        """Start as a task in the running loop; returns when the server accepts connections."""
        ready = asyncio.Event()
        server, sock = self._prepare(ready.set)
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({waiter, self._task}, timeout=self.startup_timeout_s,
                           return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not server.started:
            await self.astop()
            raise RuntimeError(f"{self.name} failed to start")
        return self

    async def astop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        self._server, self._task = None, None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> LoopbackServer:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()
