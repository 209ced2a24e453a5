"""Run leases: a running quote-game run proves it is alive by rewriting one small file.

``<data_dir>/runs/<event_ticker>.json`` = ``{"event_ticker", "run_id", "pid", "host",
"updated_ns"}``, rewritten atomically (temp + rename) every few seconds by the run and removed
when it ends cleanly. The launcher reads them to tell a live RUNNING run from one a hard kill left
RUNNING forever (design §5). A lease is advisory: the exchange-side safety (order expiry, order
groups) and the verified cancel-all during recovery do the protecting.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from mmcore.atomicfile import write_json_atomic
from mmcore.ops.launch import Lease
from mmcore.theo.snapshot import path_for


def write_lease(runs_dir: Path, event_ticker: str, run_id: str, now_ns: int) -> None:
    write_json_atomic(path_for(runs_dir, event_ticker),
                      {"event_ticker": event_ticker, "run_id": run_id, "pid": os.getpid(),
                       "host": socket.gethostname(), "updated_ns": now_ns})


def read_leases(runs_dir: Path) -> dict[str, Lease]:
    """Every readable lease by event ticker (a torn or foreign file is ignored)."""
    out: dict[str, Lease] = {}
    if not runs_dir.is_dir():
        return out
    for p in runs_dir.glob("*.json"):
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
            lease = Lease(str(raw["event_ticker"]), str(raw["run_id"]), int(raw["updated_ns"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        out[lease.event_ticker] = lease
    return out


def drop_lease(runs_dir: Path, event_ticker: str, run_id: str) -> None:
    """Remove the lease if it is still this run's (a relaunch may own it by now)."""
    path = path_for(runs_dir, event_ticker)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("run_id") == run_id:
            path.unlink()
    except (OSError, ValueError):
        pass
