"""Test kit for the flows: the local exchange as a real ``mm sim`` process, this process's
environment pointed at it (flow runs started by a Runner inherit it), and a Runner serving
deployments in a background thread (design §5: ``Runner(query_seconds=1)``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from flows.demo import free_port
from mmcore.sim.scenario import default_scenario_dict

REPO = Path(__file__).resolve().parent.parent
MM = str(Path(sys.executable).with_name("mm"))


@dataclass
class SimProc:
    data_dir: Path
    exchange_port: int
    odds_port: int
    popen: subprocess.Popen[bytes]
    scenario: dict[str, Any]

    @property
    def state_url(self) -> str:
        return f"http://127.0.0.1:{self.exchange_port}/sim/state"

    def env(self) -> dict[str, str]:
        return {"MM_VENUE": "sim", "MM_DATA_DIR": str(self.data_dir),
                "MM_SIM_EXCHANGE_PORT": str(self.exchange_port), "MM_SIM_ODDS_PORT": str(self.odds_port)}

    def settings(self) -> Any:
        from mmcore.settings import Settings

        return Settings(_env_file=None, venue="sim", data_dir=self.data_dir,  # type: ignore[call-arg]
                        sim_exchange_port=self.exchange_port, sim_odds_port=self.odds_port)

    def rest(self) -> Any:
        from mmcore.worker.venue import rest_for

        return rest_for(self.settings())

    def _markets(self) -> list[dict[str, Any]]:
        with httpx.Client(timeout=5) as c:
            return c.get(self.state_url).json()["markets"]

    def event_tickers(self) -> list[str]:
        return sorted({m["event_ticker"] for m in self._markets()})

    def markets(self, event_ticker: str) -> list[str]:
        return sorted(m["ticker"] for m in self._markets() if m["event_ticker"] == event_ticker)

    def watch(self, event_ticker: str) -> OrderWatch:
        return OrderWatch(self, self.markets(event_ticker))


def scenario(seed: int, starts_in_s: list[float], **busy: Any) -> dict[str, Any]:
    spec = default_scenario_dict(seed, len(starts_in_s))
    for g, s in zip(spec["games"], starts_in_s):
        g["start_in_s"] = s
    if busy:
        spec["participants"]["noise_takers"][0].update(busy)
    return spec


READY_LINE = "running; Ctrl-C to stop"
"""What ``mm sim`` prints once both servers listen."""


@contextlib.contextmanager
def sim_process(tmp_path: Path, spec: dict[str, Any]) -> Iterator[SimProc]:
    """``mm sim`` with ``spec``; ready when it prints :data:`READY_LINE` (its output goes on to
    ``sim.log``)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(spec))
    ex, od = free_port(), free_port()
    popen = subprocess.Popen([MM, "sim", "--scenario", str(path), "--exchange-port", str(ex),
                              "--odds-port", str(od)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             env={**os.environ, "MM_DATA_DIR": str(data_dir)}, cwd=REPO,
                             start_new_session=True)
    ready = threading.Event()

    def pump() -> None:  # copy the output to the log; flag the ready line
        assert popen.stdout is not None
        with open(tmp_path / "sim.log", "ab") as log:
            for line in popen.stdout:
                log.write(line)
                log.flush()
                if READY_LINE.encode() in line:
                    ready.set()
        ready.set()  # EOF: the process ended (checked below)

    threading.Thread(target=pump, name="sim-output", daemon=True).start()
    sim = SimProc(data_dir, ex, od, popen, spec)
    try:
        if not ready.wait(30) or popen.poll() is not None:
            raise RuntimeError(f"mm sim did not start: {(tmp_path / 'sim.log').read_text()[-2000:]}")
        yield sim
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGTERM)
        popen.wait(10)


@contextlib.contextmanager
def mm_env(sim: SimProc, **extra: str) -> Iterator[None]:
    """This process's environment (and so every flow run a Runner starts) pointed at ``sim``."""
    from mmcore.settings import get_settings

    values = {**sim.env(), **extra}
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


class RunnerThread:
    """A Prefect Runner serving ``deployments`` from a thread with its own loop."""

    def __init__(self, *flows_and_names: tuple[Any, str], deployments: tuple[Any, ...] = (),
                 **deploy_kw: Any) -> None:
        self.flows_and_names, self.deploy_kw = flows_and_names, deploy_kw
        self.deployments = deployments
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.runner: Any = None
        self.error: BaseException | None = None

    def __enter__(self) -> RunnerThread:
        from prefect.runner import Runner

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self.runner = Runner(query_seconds=1, pause_on_shutdown=False)

            async def go() -> None:
                for flow, name in self.flows_and_names:
                    await self.runner.add_flow(flow, name=name, **self.deploy_kw.get(name, {}))
                for deployment in self.deployments:
                    await self.runner.add_deployment(deployment)
                self._ready.set()
                await self.runner.start()

            try:
                loop.run_until_complete(go())
            except BaseException as exc:  # noqa: BLE001 - surfaced to the test
                self.error = exc
                self._ready.set()

        self._thread = threading.Thread(target=main, name="prefect-runner", daemon=True)
        self._thread.start()
        self._ready.wait(60)
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self.runner is not None:
            fut = asyncio.run_coroutine_threadsafe(self.runner.stop(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(30)
        if self._thread is not None:
            self._thread.join(30)


async def wait_state(run_id: Any, states: set[str], timeout_s: float = 90.0) -> str:
    """The run's state type once it is one of ``states``: re-read on every event the server
    emits for the run (subscribed before the first read, so no transition is missed)."""
    from prefect.client.orchestration import get_client
    from prefect.events.clients import get_events_subscriber
    from prefect.events.filters import EventFilter, EventResourceFilter

    filt = EventFilter(resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]))
    st = "?"
    async with get_client() as client, get_events_subscriber(filter=filt) as events:
        async def state() -> str:
            run = await client.read_flow_run(run_id)
            return run.state.type.value if run.state else "?"

        try:
            async with asyncio.timeout(timeout_s):
                st = await state()
                if st in states:
                    return st
                async for _ in events:
                    st = await state()
                    if st in states:
                        return st
        except TimeoutError:
            pass
    raise AssertionError(f"run {run_id} is {st}, not {states}, after {timeout_s}s")


async def resting(sim: SimProc, event_ticker: str | None = None) -> list[Any]:
    async with sim.rest() as rest:
        return await rest.get_orders(event_ticker=event_ticker, status="resting")


class OrderWatch:
    """mm's resting orders in one game, kept from the exchange's own ``user_orders`` stream
    (seeded from REST once the subscription is live): tests await a condition on them instead
    of polling."""

    def __init__(self, sim: SimProc, markets: list[str]) -> None:
        self.sim, self.markets = sim, markets
        self.resting: set[str] = set()
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._ws: Any = None

    async def __aenter__(self) -> OrderWatch:
        from mmcore.venues.kalshi import ws as kws
        from mmcore.worker.venue import signer_for

        s = self.sim.settings()
        self._ws = kws.KalshiWs(s.kalshi_ws_url, signer_for(s), markets=self.markets)
        live: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        seen: set[str] = set()

        async def pump() -> None:
            async for ev in self._ws.events():
                if isinstance(ev, kws.BookUpdated) and not live.done():
                    seen.add(ev.market)  # a snapshot per market: the subscriptions are live
                    if seen >= set(self.markets):
                        live.set_result(None)
                elif isinstance(ev, kws.OrderUpdate) and ev.market in self.markets:
                    async with self._changed:
                        if ev.status == "resting" and ev.remaining > 0:
                            self.resting.add(ev.order_id)
                        else:
                            self.resting.discard(ev.order_id)
                        self._changed.notify_all()

        self._task = asyncio.create_task(pump())
        await asyncio.wait_for(live, 30)
        async with self.sim.rest() as rest:
            orders = [o for m in self.markets for o in await rest.get_orders(ticker=m, status="resting")]
        async with self._changed:
            self.resting = {o.order_id for o in orders}
            self._changed.notify_all()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def until(self, pred: Any, timeout_s: float, what: str) -> None:
        """Wait until ``pred(resting order ids)`` holds, woken by each order update."""
        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: pred(self.resting))
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what} "
                                 f"({len(self.resting)} resting)") from None
