"""Guarantee 6 — auth and secrets.

- **Auth**: against the local exchange over loopback (the real app, a :class:`TestClock` the test
  advances), every forged request is refused with 401 and changes nothing: a bad signature, a
  stale and a future timestamp, an unknown key, a signature made for another path or another
  method, a valid request replayed after the freshness window; the same for the WebSocket
  handshake. A correctly signed request passes (the control).
- **Secrets**: a real run — the local exchange and odds server (:class:`SimStack`), a real
  worker (:mod:`tests.workerkit`) quoting over REST and WebSocket signed with the sim's private
  key, odds pulled with the odds API key — then ingest into the Parquet record and DuckDB, and
  the audit. A scan fails if the private key (its PEM, any of its base64 lines) or the odds API
  key appears in any log record (every logger, DEBUG), journal, file of the data directory or
  DuckDB table/view. ``make chaos`` also runs ``mm demo --exit`` (Prefect server, flows, ingest,
  audit) and scans its data directory, its logs and the Prefect database (artifacts, logs).
- **Loopback only**: every listening socket of the exchange, the odds server and ``mm sim`` is
  bound to 127.0.0.1 (``/proc/net/tcp``).
- **kalshi-prod** refuses without the live opt-in (settings and the real ``mm quote``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from mmcore.errors import ConfigError
from mmcore.record.audit import run_audit
from mmcore.record.ingest import ingest
from mmcore.settings import Settings
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.venues.kalshi.auth import DEFAULT_WINDOW_MS, SIGNATURE_HEADER, TIMESTAMP_HEADER, WS_PATH
from simkit import Keys, order
from tests.chaos import figures
from tests.test_sim_input import MM, ORDERS, Venue
from tests.workerkit import rig

API = "/trade-api/v2"
MM_CLI = [str(Path(sys.executable).parent / "mm")]


# --- auth -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


def _records(v: Venue) -> tuple[Any, ...]:
    e = v.ex.engine
    return (e.balance(MM), e.reserved(MM), tuple(repr(o) for o in e.orders(MM)), len(e.fills(MM)))


def test_forged_requests_are_refused_and_change_nothing(keys: Keys) -> None:
    other = Keys.generate()
    results: dict[str, tuple[int, bool]] = {}
    with httpx.Client(timeout=10) as http, Venue(http, keys) as v:
        signer = keys.signer("mm-key-input")
        body = json.dumps(order(v.ticker, "bid", "0.05", "1")).encode()
        now_ms = lambda: v.clock() // 10**6  # noqa: E731

        def send(name: str, method: str, path: str, hdrs: dict[str, str], content: bytes = b"") -> int:
            before = _records(v)
            resp = http.request(method, v.url + API + path, headers=hdrs, content=content or None)
            unchanged = _records(v) == before
            results[name] = (resp.status_code, unchanged)
            return resp.status_code

        good = signer.headers("POST", API + ORDERS, timestamp_ms=now_ms())
        bad_sig = dict(good)
        sig = bad_sig[SIGNATURE_HEADER]
        bad_sig[SIGNATURE_HEADER] = ("A" if sig[0] != "A" else "B") + sig[1:]
        send("bad signature", "POST", ORDERS, bad_sig, body)
        window_s = DEFAULT_WINDOW_MS / 1000
        send("stale timestamp", "POST", ORDERS,
             signer.headers("POST", API + ORDERS, timestamp_ms=now_ms() - DEFAULT_WINDOW_MS - 1000), body)
        send("future timestamp", "POST", ORDERS,
             signer.headers("POST", API + ORDERS, timestamp_ms=now_ms() + DEFAULT_WINDOW_MS + 1000), body)
        send("unknown key", "POST", ORDERS,
             other.signer("nobody-key").headers("POST", API + ORDERS, timestamp_ms=now_ms()), body)
        send("other key, known id", "POST", ORDERS,
             other.signer("mm-key-input").headers("POST", API + ORDERS, timestamp_ms=now_ms()), body)
        send("other path", "POST", ORDERS,
             signer.headers("POST", API + "/portfolio/order_groups/create", timestamp_ms=now_ms()), body)
        send("other method", "POST", ORDERS,
             signer.headers("GET", API + ORDERS, timestamp_ms=now_ms()), body)
        send("no auth headers", "POST", ORDERS, {}, body)
        ts_only = dict(good)
        ts_only[TIMESTAMP_HEADER] = str(int(good[TIMESTAMP_HEADER]) + 1)
        send("timestamp changed after signing", "POST", ORDERS, ts_only, body)
        # the control: a signed request passes; then the same bytes replayed after the window
        ok = send("control (valid)", "POST", ORDERS, good, body)
        v.clock.advance(window_s + 1)
        send("replay after the window", "POST", ORDERS, good, body)
        # the WebSocket handshake: a bad signature and a stale one are refused
        for name, hdrs in (("ws bad signature", {**signer.headers("GET", WS_PATH, timestamp_ms=now_ms()),
                                                  SIGNATURE_HEADER: bad_sig[SIGNATURE_HEADER]}),
                           ("ws stale timestamp", signer.headers(
                               "GET", WS_PATH, timestamp_ms=now_ms() - DEFAULT_WINDOW_MS - 1000))):
            try:
                with connect(v.url.replace("http://", "ws://") + WS_PATH, additional_headers=hdrs,
                             open_timeout=5, proxy=None):
                    results[name] = (101, True)
            except InvalidStatus as exc:
                results[name] = (exc.response.status_code, True)
    forged = {k: r for k, r in results.items() if not k.startswith("control")}
    refused = [k for k, (status, unchanged) in forged.items() if status in (401, 403) and unchanged]
    okay = ok == 201 and len(refused) == len(forged)
    figures.report(6, "auth", f"{len(refused)}/{len(forged)} forged requests refused (401/403) "
                   f"with nothing changed; control {ok}", "all refused", okay,
                   results={k: list(r) for k, r in results.items()})
    assert ok == 201, results
    assert len(refused) == len(forged), {k: r for k, r in forged.items() if k not in refused}


# --- loopback only, kalshi-prod opt-in -------------------------------------------------------------


def _listening(ports: set[int]) -> dict[int, str]:
    """Local address of each LISTEN socket on ``ports`` (IPv4 and IPv6)."""
    out: dict[int, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            addr, port = parts[1].split(":")
            if parts[3] == "0A" and int(port, 16) in ports:
                if len(addr) == 8:
                    ip = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
                else:
                    ip = "::" if set(addr) == {"0"} else addr
                out[int(port, 16)] = ip
    return out


def test_servers_bind_loopback_and_kalshi_prod_needs_the_opt_in(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_", "KALSHI_", "ODDS_API"))}
    env.update(MM_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*MM_CLI, "sim", "--exchange-port", "0", "--odds-port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = ""
    try:
        deadline = time.monotonic() + 90
        ports: set[int] = set()
        while time.monotonic() < deadline and len(ports) < 2:
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            seen += line
            ports |= {int(p) for p in re.findall(r"https?://127\.0\.0\.1:(\d+)", line)}
            ports |= {int(p) for p in re.findall(r"wss?://127\.0\.0\.1:(\d+)", line)}
        bound = _listening(ports)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    loopback = bool(bound) and all(ip == "127.0.0.1" for ip in bound.values()) and len(bound) == len(ports)

    with pytest.raises(ConfigError) as refused:
        Settings(_env_file=None, venue="kalshi-prod", kalshi_api_key_id="kid-secret-1",  # type: ignore[call-arg]
                 kalshi_private_key_path=tmp_path / "k.pem", data_dir=tmp_path)
    key = tmp_path / "prod.pem"
    key.write_bytes(Keys.generate().private_pem)
    env_prod = {**env, "KALSHI_API_KEY_ID": "kid-secret-2", "KALSHI_PRIVATE_KEY_PATH": str(key)}
    cli = subprocess.run([*MM_CLI, "quote", "KXNBAGAME-26NOV24NYKBOS", "--venue", "kalshi-prod"],
                         env=env_prod, capture_output=True, text=True, timeout=120, check=False)
    said = (cli.stdout + cli.stderr)
    prod_ok = (cli.returncode != 0 and "opt" in said.lower() and "kid-secret-2" not in said
               and "Traceback" not in said and "opt" in str(refused.value).lower())
    figures.report(6, "loopback", f"{len(bound)} listening sockets of mm sim: "
                   f"{sorted(set(bound.values()))}", "127.0.0.1 only", loopback, ports=sorted(ports))
    figures.report(6, "kalshi-prod", f"without the opt-in: settings refuse, mm quote exits "
                   f"{cli.returncode}", "refused, no secret echoed", prod_ok)
    assert loopback, (bound, ports, seen[-2000:])
    assert prod_ok, said[-2000:]


# --- secrets in what a real run leaves behind ------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name} {record.getMessage()} {record.args!r}")
        except Exception:  # noqa: BLE001 - a bad record is still scanned by its template
            self.lines.append(f"{record.name} {record.msg!r} {record.args!r}")


def _secrets(private_pem: bytes, odds_key: str) -> dict[str, str]:
    """What must never appear: the odds API key, the PEM and each of its base64 lines."""
    out = {"odds api key": odds_key, "private key PEM": private_pem.decode().strip()}
    for i, line in enumerate(private_pem.decode().splitlines()):
        if line and not line.startswith("-----") and len(line) >= 32:
            out[f"private key line {i}"] = line
    return out


def _scan_files(root: Path, secrets: dict[str, str], skip: set[Path]) -> list[str]:
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p not in skip):
        data = path.read_bytes()
        for name, s in secrets.items():
            if s.encode() in data:
                hits.append(f"{name} in {path.relative_to(root)}")
    return hits


def _scan_duckdb(db_files: list[Path], secrets: dict[str, str]) -> tuple[list[str], int]:
    hits: list[str] = []
    tables = 0
    for f in db_files:
        con = duckdb.connect(str(f), read_only=True)
        try:
            names = [r[0] for r in con.execute(
                "select table_name from information_schema.tables").fetchall()]
            for t in names:
                try:
                    rows = con.execute(f'select * from "{t}"').fetchall()
                except duckdb.Error:
                    continue  # a view over files the run never produced
                tables += 1
                text = repr(rows)
                hits += [f"{n} in DuckDB {f.name}:{t}" for n, s in secrets.items() if s in text]
        finally:
            con.close()
    return hits, tables


async def test_no_secret_in_logs_journals_record_or_database(tmp_path: Path) -> None:
    cap = _Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(cap)
    root.setLevel(logging.DEBUG)
    try:
        async with rig(tmp_path, start_in_s=20.0) as r:
            driver = await r.driver()
            task = asyncio.create_task(driver.run())
            eng, ev = r.stack.exchange.engine, r.event_ticker
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not eng.orders("mm", event_ticker=ev):
                await asyncio.sleep(0.1)
            placed = len(eng.orders("mm", event_ticker=ev))
            driver.stop("chaos G6")
            await asyncio.wait_for(task, 60)
            key_path = r.stack.creds.private_key_path
            private_pem = key_path.read_bytes()
    finally:
        root.removeHandler(cap)
        root.setLevel(old)
    rep = ingest(tmp_path)
    run_audit(tmp_path, now_ns=time.time_ns())
    secrets = _secrets(private_pem, SIM_ODDS_API_KEY)
    hits = [f"{n} in a log record" for n, s in secrets.items() if any(s in x for x in cap.lines)]
    hits += _scan_files(tmp_path, secrets, skip={key_path})
    db_hits, tables = _scan_duckdb(sorted(tmp_path.rglob("*.duckdb")), secrets)
    hits += db_hits
    files = sum(1 for p in tmp_path.rglob("*") if p.is_file())
    ok = not hits and placed > 0 and tables > 0
    figures.report(6, "secrets", f"{len(hits)} secret(s) found in {len(cap.lines)} log records, "
                   f"{files} files (journal, Parquet record, audit) and {tables} DuckDB tables of "
                   f"a real worker run ({placed} orders) + ingest + audit", "0 found", ok,
                   hits=hits, ingest=str(rep)[:200])
    assert placed > 0 and tables > 0, (placed, tables)
    assert not hits, hits


@pytest.mark.skipif(not figures.full(), reason="mm demo with Prefect: make chaos only")
def test_no_secret_after_mm_demo_with_prefect(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_", "KALSHI_", "ODDS_API", "PREFECT_"))}
    env.update(MM_DATA_DIR=str(tmp_path / "data"), PREFECT_HOME=str(tmp_path / "prefect"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([*MM_CLI, "demo", "--games", "1", "--minutes", "3", "--exit"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=1200, check=False)
    keys = sorted(tmp_path.rglob("kalshi-sim-key.pem"))  # <data_dir>/demo/<run>/sim/
    assert keys, proc.stdout[-2000:] + proc.stderr[-2000:]
    secrets = _secrets(keys[0].read_bytes(), SIM_ODDS_API_KEY)
    hits = _scan_files(tmp_path, secrets, skip=set(keys))  # data dir, logs, Prefect's database
    db_hits, tables = _scan_duckdb(sorted((tmp_path / "data").rglob("*.duckdb")), secrets)
    hits += db_hits
    files = sum(1 for p in tmp_path.rglob("*") if p.is_file())
    ok = proc.returncode == 0 and not hits
    figures.report(6, "secrets (mm demo)", f"{len(hits)} secret(s) in {files} files (data dir, "
                   f"Prefect database with its artifacts and logs) and {tables} DuckDB tables; "
                   f"demo exit {proc.returncode}", "0 found", ok, hits=hits)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not hits, hits
