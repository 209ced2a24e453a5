"""The embedded default, assembled: local Kalshi exchange (REST + WebSocket) and local Odds API,
driven by one scenario, on 127.0.0.1.

:class:`SimStack` starts, inside the running asyncio loop (the WebSocket hub must share the loop
with the engine — see :mod:`mmcore.sim.ws`):

- the exchange app (REST under ``/trade-api/v2``, WebSocket at ``/trade-api/ws/v2``, control routes
  under ``/sim``) with Kalshi-style heartbeats;
- the odds server, pricing its books from the scenario's hidden truth paths;
- the participants' driver (:func:`mmcore.sim.driver.run_live`) on the wall clock.

Credentials for our market maker (user ``mm``): an RSA key pair kept in ``<data_dir>/sim/`` (the
private key mode 0600, generated on first use, never logged) and its key id, registered with the
exchange. Clients point at the printed URLs exactly as they would at Kalshi.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.driver import SimDriver, run_live
from mmcore.sim.exchange import MM_USER, LocalExchange
from mmcore.sim.keys import SIM_KEY_ID, SimCredentials, ensure_sim_key  # noqa: F401 - re-exported
from mmcore.sim.odds_server import OddsServer, OddsServerConfig
from mmcore.sim.rest import build_app
from mmcore.sim.runner import LoopbackServer
from mmcore.sim.scenario import ResolvedScenario
from mmcore.sim.ws import WsHub, ws_server_options
from mmcore.venues.kalshi.auth import (
    Signer,
    load_private_key,
    public_key_from_pem,
    public_key_pem,
)


@dataclass
class SimStack:
    scenario: ResolvedScenario
    data_dir: Path
    exchange_port: int = 0
    odds_port: int = 0
    heartbeat_s: float = 10.0
    run_participants: bool = True
    clock_ns: Any = time.time_ns
    exchange: LocalExchange = field(init=False)
    hub: WsHub = field(init=False)
    creds: SimCredentials = field(init=False)

    def __post_init__(self) -> None:
        self.exchange = LocalExchange.from_scenario(self.scenario, clock_ns=self.clock_ns)
        self.creds = ensure_sim_key(self.data_dir)
        key = load_private_key(self.creds.private_key_path)
        self.exchange.add_key(self.creds.key_id, public_key_from_pem(public_key_pem(key)), MM_USER)
        self.hub = WsHub(self.exchange)
        app = build_app(self.exchange, extra_routes=[self.hub.route()])
        self._exchange_server = LoopbackServer(
            app, self.exchange_port, name="local-exchange",
            **ws_server_options(heartbeat_interval_s=self.heartbeat_s,
                                heartbeat_timeout_s=max(20.0, 2 * self.heartbeat_s)))
        self.odds = OddsServer(OddsServerConfig(seed=self.scenario.seed), port=self.odds_port,
                               clock_ns=self.clock_ns, truth=self.scenario.truth_fn(),
                               slate=self.scenario.slate())
        self.driver = SimDriver(self.exchange, self.scenario)
        self._stop = asyncio.Event()
        self._driver_task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> SimStack:
        await self._exchange_server.astart()
        await self.odds.astart()
        if self.run_participants:
            self._driver_task = asyncio.create_task(run_live(self.driver, stop=self._stop))
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._driver_task is not None:
            with contextlib.suppress(Exception):
                await self._driver_task
        with contextlib.suppress(Exception):
            await self.hub.kick_all("local exchange stopping", code=1001, timeout_s=2.0)
        await self.odds.astop()
        await self._exchange_server.astop()

    async def __aenter__(self) -> SimStack:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- what clients need -------------------------------------------------------------------

    @property
    def rest_url(self) -> str:
        return f"{self._exchange_server.url}/trade-api/v2"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._exchange_server.bound_port}/trade-api/ws/v2"

    @property
    def control_url(self) -> str:
        return f"{self._exchange_server.url}/sim"

    @property
    def odds_url(self) -> str:
        return self.odds.url

    @property
    def odds_api_key(self) -> str:
        return SIM_ODDS_API_KEY

    def signer(self) -> Signer:
        return Signer(self.creds.key_id, load_private_key(self.creds.private_key_path))
