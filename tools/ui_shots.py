"""``make ui-shots``: screenshots of the Prefect UI in a real (headless) Chromium, after a short demo.

Runs ``flows.demo`` (a short slate: 2 games, last one 3.5 min from now) and, after its summary,
while every process is still up, drives Debian's Chromium through ChromeDriver (Selenium) to save
PNGs (1600×1000) under ``<data dir>/ui-shots/``:

1. the deployments page;
2. a ``quote-game`` flow run on its Artifacts tab, and its live status artifact
   (``status-<event ticker>``, markdown updated in place) on the artifact's own page;
3. the artifacts page, the ``audit-summary`` markdown and one ``audit-*`` table of nightly-audit.

The Prefect UI is a single-page app: each shot waits for text that only real content has (a
deployment's name, the artifact's key or its first heading), then for loading skeletons and
spinners to go away. Then the demo shuts everything down as usual. Not part of ``make test``.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian's chromium and chromium-driver) and
``selenium`` in the venv; ``make ui-shots`` installs them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from flows.demo import DemoConfig, DemoStack, run_demo_prefect

CHROMIUM = Path(os.environ.get("MM_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MM_CHROMEDRIVER", "/usr/bin/chromedriver"))
WIDTH, HEIGHT = 1600, 1000
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}")
# anything the UI shows while a query is still loading
LOADING_JS = """
const sel = '[class*="animate-spin"], [class*="animate-pulse"], [data-slot="skeleton"], [aria-busy="true"]';
return Array.from(document.querySelectorAll(sel)).filter(e => e.offsetParent !== null).length;
"""


@dataclass
class Shots:
    """The screenshots taken (or why not), filled in by :meth:`take` inside the demo."""

    out_dir: Path | None = None
    paths: list[tuple[Path, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# --- what to show: found through the Prefect REST API --------------------------------------------


def _api(stack: DemoStack, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    r = httpx.request(method, f"{stack.api_url}{path}", json=body, timeout=10.0)
    r.raise_for_status()
    return r.json()


def latest_artifacts(stack: DemoStack, key_prefix: str) -> list[dict[str, Any]]:
    """The latest version of every keyed artifact whose key starts with ``key_prefix``."""
    rows = _api(stack, "POST", "/artifacts/latest/filter",
                {"artifacts": {"key": {"like_": key_prefix}}, "sort": "KEY_ASC", "limit": 200})
    return [a for a in rows if str(a.get("key", "")).startswith(key_prefix)]


def status_artifact(stack: DemoStack) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``status-*`` artifact written by a ``quote-game`` run, and that run."""
    for art in latest_artifacts(stack, "status-"):
        if not art.get("flow_run_id"):
            continue
        run = _api(stack, "GET", f"/flow_runs/{art['flow_run_id']}")
        flow = _api(stack, "GET", f"/flows/{run['flow_id']}")
        if flow.get("name") == "quote-game":
            return art, run
    raise RuntimeError("no status-* artifact of a quote-game run")


def first_text(markdown: str) -> str:
    """Plain text from the first heading or line of a markdown artifact, as the UI renders it
    (to wait for): up to the first inline markup, or "" if that leaves too little."""
    for line in str(markdown).splitlines():
        text = line.strip().lstrip("#>-").strip()
        if not text or set(text) <= set("|-: "):
            continue
        for mark in "*`_[|<\\":
            text = text.split(mark)[0]
        text = text.strip()[:40].strip()
        return text if len(text) >= 4 else ""
    return ""


def table_columns(data: Any) -> list[str]:
    """The column names of a table artifact (its data is JSON text: a list of rows or a dict)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return []
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return [str(c) for c in data[0]]
    if isinstance(data, dict):
        return [str(c) for c in data]
    return []


# --- the browser ----------------------------------------------------------------------------------


class Browser:
    def __init__(self, log_path: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        for path in (CHROMIUM, CHROMEDRIVER):
            if not path.exists():
                raise RuntimeError(f"{path} is missing: apt-get install -y chromium chromium-driver "
                                   "(make ui-shots does it)")
        self.profile = Path(tempfile.mkdtemp(prefix="ui-shots-chromium-"))
        opts = webdriver.ChromeOptions()
        opts.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}"):
            opts.add_argument(flag)
        service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log_path))
        self.driver = webdriver.Chrome(options=opts, service=service)
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1,
                                     "mobile": False})

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def shot(self, url: str, texts: list[str], path: Path, timeout_s: float = 60.0,
             before: Callable[[Any], None] | None = None) -> None:
        """Open ``url``, wait until the page shows every one of ``texts`` and nothing is loading,
        then save a PNG."""
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        d = self.driver
        d.get(url)

        def shows_all(drv: Any) -> bool:
            body = drv.execute_script("return document.body ? document.body.innerText : ''") or ""
            return all(t.lower() in body.lower() for t in texts)  # CSS may upper-case

        try:
            WebDriverWait(d, timeout_s, poll_frequency=0.25).until(shows_all)
        except TimeoutException:
            body = d.execute_script("return document.body ? document.body.innerText : ''") or ""
            d.save_screenshot(str(path.with_suffix(".timeout.png")))
            raise RuntimeError(f"{url}: never showed {texts!r} in {timeout_s:.0f}s; page text: "
                               f"{body[:300]!r}") from None
        if before is not None:
            before(d)
        try:
            WebDriverWait(d, 20, poll_frequency=0.25).until(lambda drv: drv.execute_script(LOADING_JS) == 0)
        except TimeoutException:
            pass  # a spinner that never stops (e.g. a live run): shoot what is there
        d.execute_async_script("const done = arguments[arguments.length - 1];"
                               "document.fonts.ready.then(() => requestAnimationFrame(() => "
                               "requestAnimationFrame(() => done(true))));")
        if not d.save_screenshot(str(path)):
            raise RuntimeError(f"screenshot of {url} not saved")


def take(stack: DemoStack, shots: Shots) -> None:
    """The ``after_summary`` hook of the demo: every screenshot, while the UI is up."""
    console = stack.console
    out = shots.out_dir = stack.data_dir / "ui-shots"
    out.mkdir(parents=True, exist_ok=True)
    ui = f"{stack.ui_url}/v2"  # the UI a browser with no saved preference lands on
    console.print(f"[bold]ui-shots[/] Chromium on {ui} → {out}")
    browser = Browser(stack.data_dir / "logs" / "chromedriver.log")

    def one(name: str, what: str, url: str, texts: list[str], **kw: Any) -> None:
        path = out / name
        started = time.monotonic()
        try:
            browser.shot(url, [x for x in texts if x], path, **kw)
        except Exception as exc:  # noqa: BLE001 - one failed shot must not stop the others
            shots.errors.append(f"{name}: {exc}")
            console.print(f"[red]{name}: {exc}[/]")
            return
        shots.paths.append((path, what))
        console.print(f"  {path.name} ({time.monotonic() - started:.1f}s): {what}")

    try:
        one("01-deployments.png", "the deployments page (every deployment of prefect.yaml)",
            f"{ui}/deployments", ["quote-game", "nightly-audit", "launch-quoting"])
        try:
            status, run = status_artifact(stack)
        except Exception as exc:  # noqa: BLE001
            shots.errors.append(f"quote-game run: {exc}")
        else:
            key = status["key"]
            one("02-quote-game-run.png",
                f"quote-game run {run['name']} (Artifacts tab: its live status artifact {key})",
                f"{ui}/runs/flow-run/{run['id']}?tab=Artifacts", [run["name"], key])
            one("03-quote-game-status.png",
                f"the live status artifact {key} of that run (markdown, updated in place)",
                f"{ui}/artifacts/artifact/{status['latest_id']}", [key, first_text(status.get("data", ""))])
        audits = latest_artifacts(stack, "audit-")
        summary = next((a for a in audits if a["key"] == "audit-summary"), None)
        tables = [a for a in audits if a.get("type") == "table"]
        if summary is None or not tables:
            shots.errors.append("nightly-audit published no audit-summary or no audit-* table "
                                f"(audit artifacts: {[a['key'] for a in audits]})")
            one("04-artifacts.png", "the artifacts page (WITHOUT the audit artifacts: see FAILED)",
                f"{ui}/artifacts", ["artifacts", *[a["key"] for a in audits[:1]]])
        else:
            one("04-artifacts.png", "the artifacts page (audit-summary and the audit-* tables among them)",
                f"{ui}/artifacts", ["audit-summary"])
        if summary is not None:
            one("05-audit-summary.png", "the audit-summary markdown artifact of nightly-audit",
                f"{ui}/artifacts/artifact/{summary['latest_id']}",
                ["audit-summary", first_text(summary.get("data", ""))])
        if tables:
            table = next((a for a in tables if a["key"] == "audit-viability"), tables[0])
            columns = table_columns(table.get("data"))
            one(f"06-{table['key']}.png", f"the {table['key']} table artifact of nightly-audit",
                f"{ui}/artifacts/artifact/{table['latest_id']}", [table["key"], *columns[:2]])
    finally:
        browser.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--games", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=3.5,
                    help="minutes from now until the last game starts (the demo ends ~1 min after)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="default: the demo's (<MM_DATA_DIR>/demo/<time>); the PNGs go to <data dir>/ui-shots/")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    shots = Shots()
    cfg = DemoConfig(games=args.games, minutes=args.minutes, seed=args.seed, exit_after=True,
                     data_dir=args.data_dir)
    code = run_demo_prefect(cfg, after_summary=lambda stack: take(stack, shots))
    print(f"\nui-shots: {len(shots.paths)} PNG(s) in {time.monotonic() - t0:.0f}s (demo exit code {code})")
    for path, what in shots.paths:
        print(f"  {path}  — {what}")
    for err in shots.errors:
        print(f"  FAILED: {err}", file=sys.stderr)
    if shots.errors or not shots.paths:
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
