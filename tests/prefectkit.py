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
import time
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

    def event_tickers(self) -> list[str]:
        with httpx.Client(timeout=5) as c:
            markets = c.get(self.state_url).json()["markets"]
        return sorted({m["event_ticker"] for m in markets})


def scenario(seed: int, starts_in_s: list[float], **busy: Any) -> dict[str, Any]:
    spec = default_scenario_dict(seed, len(starts_in_s))
    for g, s in zip(spec["games"], starts_in_s):
        g["start_in_s"] = s
    if busy:
        spec["participants"]["noise_takers"][0].update(busy)
    return spec


@contextlib.contextmanager
def sim_process(tmp_path: Path, spec: dict[str, Any]) -> Iterator[SimProc]:
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(spec))
    ex, od = free_port(), free_port()
    log = open(tmp_path / "sim.log", "ab")  # noqa: SIM115
    popen = subprocess.Popen([MM, "sim", "--scenario", str(path), "--exchange-port", str(ex),
                              "--odds-port", str(od)], stdout=log, stderr=subprocess.STDOUT,
                             env={**os.environ, "MM_DATA_DIR": str(data_dir)}, cwd=REPO,
                             start_new_session=True)
    log.close()
    sim = SimProc(data_dir, ex, od, popen, spec)
    try:
        deadline = time.monotonic() + 30
        while True:  # bounded poll: the process is ready when its port answers
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(sim.state_url, timeout=1).status_code == 200:
                    break
            if popen.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mm sim did not start: {(tmp_path / 'sim.log').read_text()[-2000:]}")
            time.sleep(0.2)
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
    """Poll the server until the run reaches one of ``states`` (bounded)."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    async with get_client() as client:
        while True:
            run = await client.read_flow_run(run_id)
            st = run.state.type.value if run.state else "?"
            if st in states:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} is {st}, not {states}, after {timeout_s}s")
            await asyncio.sleep(0.5)


async def resting(sim: SimProc, event_ticker: str | None = None) -> list[Any]:
    async with sim.rest() as rest:
        return await rest.get_orders(event_ticker=event_ticker, status="resting")


async def wait_until(pred: Any, timeout_s: float, what: str, every_s: float = 0.25) -> Any:
    """Await ``pred()`` (async) until truthy; fail after ``timeout_s`` (bounded poll of a remote
    state that emits no event we could await)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(every_s)
