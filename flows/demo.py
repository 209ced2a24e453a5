"""The main job (``make demo`` / ``mm demo``): the whole operation on the embedded default,
run through Prefect exactly as it would run for real.

1. Start a Prefect server on 127.0.0.1 (its own ``PREFECT_HOME`` under the data dir, logs to a
   file), the local exchange and odds server (``mm sim`` with a slate of games starting minutes
   from now), and ``mm serve`` (every deployment of prefect.yaml).
2. Trigger ``refresh-calendar`` and ``pull-odds`` at once, then ``launch-quoting`` (its schedule
   keeps running every 2 min): one ``quote-game`` run per game; workers quote against the
   simulated flow and stop at their game's start with nothing resting.
3. ``ingest`` runs every minute on its schedule; at the end ``ingest`` and ``nightly-audit`` run
   once more (ad hoc), and a summary prints: fills, P&L and its attribution, markouts, fees,
   kill-switch events, the UI address and ``mm sql`` examples.
4. The UI stays up until Ctrl-C (``--exit`` ends after the summary); then every process it
   started is shut down cleanly and the exchange is checked to show nothing resting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

NS = 1_000_000_000
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
REPO_ROOT = Path(__file__).resolve().parent.parent
SQL_EXAMPLES = (
    "SELECT market, side, count(*) AS fills, round(avg(markout_mid_1s_c), 2) AS m1s_c, "
    "round(avg(markout_mid_5s_c), 2) AS m5s_c, round(avg(markout_mid_30s_c), 2) AS m30s_c "
    "FROM v_markouts GROUP BY ALL ORDER BY ALL",
    "SELECT day, market, fills, spread_capture, adverse_selection, fees, viable FROM v_viability",
    "SELECT trade_id, market, side, price, count, fee, schedule_fee, fee_diff FROM v_fees LIMIT 10",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path


@dataclass
class DemoConfig:
    games: int = 3
    minutes: float = 7.0
    """Minutes from now until the last game starts (the demo ends ~1 min after)."""
    seed: int = 7
    exit_after: bool = False
    data_dir: Path | None = None
    prefect_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment for every process (e.g. ``MM_QUOTE_STOP_BEFORE_START_S`` in tests)."""
    noise_rate_per_s: float = 0.4
    """Noise takers' arrival rate per market (a busier market than the default slate)."""
    first_start_s: float | None = None
    """Seconds from now to the first game start (default: spread the slate over ``minutes``)."""


@dataclass
class DemoStack:
    """Every process of the demo, started and stopped together."""

    cfg: DemoConfig
    console: Console
    data_dir: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    procs: list[Proc] = field(default_factory=list)
    api_url: str = ""
    ui_url: str = ""

    def __post_init__(self) -> None:
        from mmcore.settings import get_settings

        base = self.cfg.data_dir or get_settings().data_dir / "demo" / time.strftime("%Y%m%d-%H%M%S")
        self.data_dir = base.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = self.cfg.prefect_port or free_port()
        self.api_url, self.ui_url = f"http://127.0.0.1:{port}/api", f"http://127.0.0.1:{port}"
        self.exchange_port, self.odds_port, self.prefect_port = free_port(), free_port(), port
        self.env = {**os.environ,
                    "PREFECT_HOME": str(self.data_dir / "prefect"),
                    "PREFECT_API_URL": self.api_url,
                    "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
                    "PREFECT_UI_API_URL": self.api_url,
                    "PREFECT_LOGGING_EXTRA_LOGGERS": "mmcore,mm",
                    # concurrency-slot leases on disk: in memory (Prefect's default) a SIGKILLed
                    # server forgets them, every release then misses and the deployments' slots
                    # stay taken: their runs wait SCHEDULED forever (chaos G4)
                    "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE":
                        "prefect.server.concurrency.lease_storage.filesystem",
                    # a run killed before its first heartbeat (flows/serve.py: the zombie
                    # automation) holds only this initial lease: 30 s (Prefect's floor), not 300 s
                    "PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION": "30",
                    # a run waiting for a slot asks again after 5 s, not 30 s
                    "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "5",
                    "PREFECT_SERVER_DATABASE_CONNECTION_URL":
                        f"sqlite+aiosqlite:///{self.data_dir / 'prefect' / 'prefect.db'}",
                    "MM_VENUE": "sim", "MM_DATA_DIR": str(self.data_dir),
                    "MM_SIM_EXCHANGE_PORT": str(self.exchange_port),
                    "MM_SIM_ODDS_PORT": str(self.odds_port),
                    "MM_MAX_CONCURRENT_GAMES": str(max(1, self.cfg.games)),
                    "MM_LAUNCH_WINDOW_S": str(int(self.cfg.minutes * 60) + 600),
                    "PREFECT_RUNNER_POLL_FREQUENCY": "2",  # runs start within ~2 s of a trigger
                    "PYTHONUNBUFFERED": "1", **self.cfg.env}
        (self.data_dir / "prefect").mkdir(exist_ok=True)

    # --- processes -------------------------------------------------------------------------

    def start(self, name: str, args: list[str]) -> Proc:
        log_path = self.data_dir / "logs" / f"{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log_path, "ab")  # noqa: SIM115 - the child owns it
        popen = subprocess.Popen(args, stdout=fh, stderr=subprocess.STDOUT, env=self.env,
                                 cwd=REPO_ROOT, start_new_session=True)
        fh.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def stop_all(self, timeout_s: float = 40.0, *, only: tuple[str, ...] = ()) -> None:
        """SIGTERM in reverse start order (or just the processes named in ``only``), then wait."""
        for proc in reversed(self.procs):
            if only and proc.name not in only:
                continue
            if proc.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.popen.pid, signal.SIGTERM)
                try:
                    proc.popen.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self.console.print(f"[yellow]{proc.name} did not stop in {timeout_s:.0f}s: killed[/]")
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.popen.pid, signal.SIGKILL)
                    proc.popen.wait(5)

    def check_alive(self) -> None:
        for proc in self.procs:
            code = proc.popen.poll()
            if code is not None:
                tail = proc.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{proc.name} exited with {code}; log {proc.log_path}:\n{tail}")

    async def wait_http(self, url: str, what: str, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                self.check_alive()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code < 500:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what} not ready after {timeout_s:.0f}s ({url})")
                await asyncio.sleep(0.5)

    def scenario_file(self) -> Path:
        """A busy slate: games start between ``minutes − spacing × (n−1)`` and ``minutes``."""
        from mmcore.sim.scenario import default_scenario_dict

        spec = default_scenario_dict(self.cfg.seed, self.cfg.games)
        last = self.cfg.minutes * 60
        if self.cfg.first_start_s is not None:
            last = self.cfg.first_start_s + 30.0 * (self.cfg.games - 1)
        spacing = min(90.0, max(20.0, (last - 150.0) / max(1, self.cfg.games - 1))) if self.cfg.games > 1 else 0
        for i, game in enumerate(spec["games"]):
            game["start_in_s"] = last - (self.cfg.games - 1 - i) * spacing
        spec["participants"]["noise_takers"][0].update(rate_per_s=self.cfg.noise_rate_per_s,
                                                       size_contracts_max=15)
        spec["participants"]["informed_takers"][0].update(rate_per_s=0.1)
        path = self.data_dir / "scenario.json"
        path.write_text(json.dumps(spec, indent=1))
        # the flows pull odds and list Kalshi series for exactly the slate's sports
        self.env["MM_ODDS_SPORTS"] = ",".join(sorted({g["sport_key"] for g in spec["games"]}))
        return path

    async def up(self) -> None:
        mm = str(Path(sys.executable).with_name("mm"))
        prefect = str(Path(sys.executable).with_name("prefect"))
        self.start("prefect-server", [prefect, "server", "start", "--host", "127.0.0.1",
                                      "--port", str(self.prefect_port)])
        self.start("sim", [mm, "sim", "--scenario", str(self.scenario_file()),
                           "--exchange-port", str(self.exchange_port), "--odds-port", str(self.odds_port)])
        await self.wait_http(f"http://127.0.0.1:{self.exchange_port}/sim/state", "local exchange")
        await self.wait_http(f"{self.api_url}/health", "Prefect server", timeout_s=120)
        self.start("serve", [mm, "serve"])

    async def rest_client(self) -> Any:
        from mmcore.settings import Settings
        from mmcore.worker.venue import rest_for

        s = Settings(_env_file=None, venue="sim", data_dir=self.data_dir,  # type: ignore[call-arg]
                     sim_exchange_port=self.exchange_port, sim_odds_port=self.odds_port)
        return rest_for(s)

    async def sim_state(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return (await client.get(f"http://127.0.0.1:{self.exchange_port}/sim/state")).json()


# --- Prefect API --------------------------------------------------------------------------------


async def wait_deployments(names: list[str], stack: DemoStack, timeout_s: float = 120.0) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout_s
    async with get_client() as client:
        for name in names:
            while True:
                stack.check_alive()
                try:
                    await client.read_deployment_by_name(name)
                    break
                except ObjectNotFound:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"deployment {name} never appeared (see {stack.data_dir}/logs/serve.log)") from None
                    await asyncio.sleep(0.5)


async def trigger(name: str, params: dict[str, Any] | None = None) -> str:
    from prefect.deployments import run_deployment

    run = await run_deployment(name, parameters=params or {}, timeout=0, as_subflow=False)
    return str(run.id)


async def wait_run(run_id: str, stack: DemoStack, timeout_s: float = 300.0, poll_s: float = 1.0) -> str:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout_s
    async with get_client() as client:
        while True:
            stack.check_alive()
            run = await client.read_flow_run(run_id)
            state = run.state.type.value if run.state else "?"
            if state in FINAL:
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(f"flow run {run.name} still {state} after {timeout_s:.0f}s")
            await asyncio.sleep(poll_s)


@dataclass(frozen=True)
class RunView:
    """A flow run as the progress display needs it: its flow's name, its name, its state."""

    flow: str
    name: str
    state: str
    """State type (RUNNING, COMPLETED, …; ``?`` when unknown)."""
    state_name: str
    started: Any
    ended: Any


async def runs_since(since: float) -> list[RunView]:
    from datetime import datetime, timezone

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterExpectedStartTime
    from prefect.client.schemas.sorting import FlowRunSort

    after = datetime.fromtimestamp(since, timezone.utc)
    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=after)),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC, limit=200)
        flows = {f.id: f.name for f in await client.read_flows()}
    return [RunView(flows.get(r.flow_id, "?"), r.name, r.state.type.value if r.state else "?",
                    r.state.name if r.state else "?", r.start_time, r.end_time) for r in runs]


def runs_table(runs: list[RunView], games: list[tuple[str, int]], now_ns: int) -> Table:
    table = Table(title="Prefect flow runs (watch them live in the UI)")
    for col in ("flow", "run", "state", "started", "ended"):
        table.add_column(col)
    shown = [r for r in runs if r.state != "SCHEDULED"]
    for r in shown[-24:]:
        table.add_row(r.flow, r.name, r.state_name,
                      r.started.strftime("%H:%M:%S") if r.started else "",
                      r.ended.strftime("%H:%M:%S") if r.ended else "")
    starts = "  ".join(f"{ev.rsplit('-', 1)[-1]} {'started' if st <= now_ns else f'in {(st - now_ns) / NS:.0f}s'}"
                       for ev, st in games)
    table.caption = f"games: {starts}"
    return table


def compact_line(runs: list[RunView]) -> str:
    """One line for a non-terminal: runs per flow and state (future scheduled runs left out)."""
    counts: dict[str, int] = {}
    for r in runs:
        if r.state == "SCHEDULED":
            continue
        key = f"{r.flow}:{r.state_name}"
        counts[key] = counts.get(key, 0) + 1
    return time.strftime("%H:%M:%S ") + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))


# --- the demo -----------------------------------------------------------------------------------


async def _run(stack: DemoStack) -> int:
    console = stack.console
    t0 = time.time()
    console.print(f"[bold]data dir[/] {stack.data_dir}   (logs in {stack.data_dir / 'logs'})")
    with console.status("starting the Prefect server, the local exchange and odds server, mm serve…"):
        await stack.up()
        await wait_deployments(["refresh-calendar/refresh-calendar", "pull-odds/pull-odds",
                                "launch-quoting/launch-quoting", "quote-game/quote-game",
                                "ingest/ingest", "nightly-audit/nightly-audit"], stack)
    console.print(f"[bold]Prefect UI[/] {stack.ui_url}   [bold]local Kalshi[/] "
                  f"http://127.0.0.1:{stack.exchange_port}/trade-api/v2   [bold]local Odds API[/] "
                  f"http://127.0.0.1:{stack.odds_port}")
    with console.status("refresh-calendar, then pull-odds…"):
        state = await wait_run(await trigger("refresh-calendar/refresh-calendar"), stack)
        console.print(f"refresh-calendar: {state}")
        state = await wait_run(await trigger("pull-odds/pull-odds"), stack)
        console.print(f"pull-odds: {state}")
        await trigger("launch-quoting/launch-quoting")
    from mmcore.calendar import read_calendar

    cal = read_calendar(stack.data_dir)
    games = [(g.event_ticker, g.start_ns) for g in (cal.games if cal else [])]
    if not games:
        raise RuntimeError("the calendar has no games: see the refresh-calendar run in the UI")
    last_start = max(st for _, st in games)
    # workers: quote until start; the demo waits for every quote-game run to end
    from rich.live import Live

    last_line = 0.0
    runs: list[RunView] = []
    live_ctx = (Live(runs_table([], games, time.time_ns()), console=console, refresh_per_second=1,
                     transient=False) if console.is_terminal else contextlib.nullcontext())
    with live_ctx as live:
        while True:
            stack.check_alive()
            runs = await runs_since(t0 - 5)
            quote_runs = [r for r in runs if r.flow == "quote-game"]
            done = time.time_ns() > last_start and quote_runs and all(
                r.state in FINAL for r in quote_runs)
            if console.is_terminal:
                live.update(runs_table(runs, games, time.time_ns()))
            elif time.monotonic() - last_line > 10:
                last_line = time.monotonic()
                console.print(compact_line(runs))
            if done:
                break
            if time.time_ns() > last_start + 240 * NS:
                raise RuntimeError("quote-game runs did not end within 4 min of the last start")
            await asyncio.sleep(2.0)
    with console.status("ingest, then nightly-audit…"):
        ends = {"ingest": await wait_run(await trigger("ingest/ingest"), stack),
                "nightly-audit": await wait_run(await trigger("nightly-audit/nightly-audit"), stack, 600)}
    for name, end in ends.items():
        console.print(f"{name}: {end}")
    code = await summary(stack, runs)
    return code if all(e == "COMPLETED" for e in ends.values()) else 1


async def summary(stack: DemoStack, runs: list[RunView]) -> int:
    from mmcore.record.db import connect

    console = stack.console
    con = connect(stack.data_dir)
    failed = [r.name for r in runs if r.flow == "quote-game" and r.state != "COMPLETED"]
    async with await stack.rest_client() as rest:
        exch_fills = await rest.get_fills()
        resting = await rest.get_orders(status="resting")
    db_fills = con.execute("SELECT count(*) FROM fills").fetchone()[0]
    state = await stack.sim_state()
    limited = state.get("rest", {}).get("rate_limited", 0)

    def show(title: str, name: str) -> None:
        rel = con.execute((REPO_ROOT / "sql" / "demo" / f"{name}.sql").read_text())
        cols = [d[0] for d in rel.description]
        table = Table(title=title)
        for c in cols:
            table.add_column(c)
        for row in rel.fetchall():
            table.add_row(*("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)

    show("P&L by game ($) and its attribution (pnl = spread capture + adverse selection + fees + carry)",
         "pnl_by_game")
    show("markouts per fill (cents per contract; + = good for us)", "markouts_by_side")
    show("fees: charged vs the schedule", "fees")
    show("kill-switch and trading-state events", "kill_events")
    ok = not failed and not resting and db_fills == len(exch_fills) and limited == 0
    (stack.data_dir / "summary.json").write_text(json.dumps({
        "exchange_fills": len(exch_fills), "duckdb_fills": db_fills, "resting_after": len(resting),
        "rate_limited": limited, "quote_runs_not_completed": failed,
        "quote_runs": sum(1 for r in runs if r.flow == "quote-game")}, indent=1))
    console.print(f"fills: exchange {len(exch_fills)} · DuckDB {db_fills}"
                  f"{'' if db_fills == len(exch_fills) else ' [red](MISMATCH)[/]'} · "
                  f"resting after: {len(resting)} · HTTP 429 from the local exchange: {limited} · "
                  f"quote-game runs not Completed: {failed or 'none'}")
    env = f"MM_DATA_DIR={stack.data_dir}"
    console.print("[bold]query the record[/] (DuckDB views over Parquet; never blocks the ingest):")
    for q in SQL_EXAMPLES:
        console.print(f"  {env} .venv/bin/mm sql \"{q}\"")
    console.print(f"[bold]Prefect UI[/] {stack.ui_url}  (deployments, runs per game, artifacts)")
    return 0 if ok else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_demo_prefect(cfg: DemoConfig, console: Console | None = None,
                     after_summary: Callable[[DemoStack], None] | None = None) -> int:
    """``after_summary`` (e.g. tools/ui_shots.py) runs after the summary, while every process is up."""
    console = console or Console(width=max(Console().width, 160))
    stack = DemoStack(cfg, console)
    code = 1
    if threading.current_thread() is threading.main_thread():
        # `kill <pid>` (SIGTERM) shuts down like Ctrl-C: the finally below stops every process
        # (it orphaned the Prefect server, the local exchange and `mm serve` before)
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = asyncio.run(_with_env(stack, _run(stack)))
        if after_summary is not None:
            after_summary(stack)
        if not cfg.exit_after:
            console.print("UI stays up: Ctrl-C to shut everything down")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(1)
                    stack.check_alive()
    except KeyboardInterrupt:
        console.print("interrupted: shutting down")
    finally:
        with console.status("shutting down (serve cancels in-flight runs; verified cancel-all)…"):
            stack.stop_all(only=("serve",))  # first: SIGTERM cancels in-flight runs, hooks cancel
            resting = None
            with contextlib.suppress(Exception):
                resting = asyncio.run(_verify_flat(stack))
            stack.stop_all()
            console.print(f"all processes stopped; resting orders at the exchange before it "
                          f"stopped: {'unknown (could not list them)' if resting is None else resting}")
            if resting is None or resting:
                code = 1
    return code


async def _verify_flat(stack: DemoStack) -> int:
    from mmcore.worker.killall import cancel_until_flat

    async with await stack.rest_client() as rest:
        return len((await cancel_until_flat(rest, None, deadline_s=30)).after)


async def _with_env(stack: DemoStack, coro: Any) -> Any:
    """Point this process's Prefect client at the demo server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: stack.api_url}):
        return await coro
