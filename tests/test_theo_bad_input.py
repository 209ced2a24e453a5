"""``mm theo`` on hostile odds (issue 12 defect 7), through the real command and the local odds
server: timestamps out of range, a lone surrogate in a name, one book dated 2099.

Each payload starts as a real answer of the local odds server (``GET /v4/sports/{sport}/odds``)
and has one thing broken; the command must print a whole JSON report (exit 0), drop or reject
exactly what is broken with its reason, and price everything else as before.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServer, OddsServerConfig

SPORT = "basketball_nba"
MM = [str(Path(sys.executable).parent / "mm")] if (Path(sys.executable).parent / "mm").exists() \
    else [sys.executable, "-m", "mmcore.cli"]


@pytest.fixture(scope="module")
def server():
    with OddsServer(OddsServerConfig(seed=5, n_games=4, sports=(SPORT,), rate_per_s=1000.0)) as s:
        yield s


def _payload(server: OddsServer) -> list[dict]:
    resp = httpx.get(f"{server.url}/v4/sports/{SPORT}/odds",
                     params={"apiKey": SIM_ODDS_API_KEY, "regions": "us,eu", "markets": "h2h"})
    resp.raise_for_status()
    return resp.json()


def _env(server: OddsServer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MM_", "ODDS_API", "KALSHI_"))}
    env.update({"MM_DATA_DIR": str(tmp_path / "data"), "MM_ODDS_API_BASE_URL": server.url,
                "ODDS_API_KEY": SIM_ODDS_API_KEY})
    return env


def mm_theo(args: list[str], server: OddsServer, tmp_path: Path) -> tuple[int, str, str]:
    """The real ``mm theo`` in a subprocess: what a terminal or a pipe receives."""
    proc = subprocess.run(MM + ["theo", *args], check=False, env=_env(server, tmp_path), cwd=tmp_path,
                          capture_output=True, timeout=120)
    return proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8", "replace")


def _file(tmp_path: Path, payload: list[dict], name: str = "odds.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(payload))  # ensure_ascii: a lone surrogate is written as \ud800
    return str(path)


def _priced(report: dict) -> dict[str, list[float]]:
    return {e["event_id"]: [o["theo"] for o in e["outcomes"]] for e in report["events"]
            if e["outcomes"][0]["theo"] is not None}


def _drops(report: dict) -> dict[tuple[str, str], str]:
    return {(e["event_id"], d["book"]): d["reason"] for e in report["events"] for d in e["dropped"]}


def _stamp(book: dict, value) -> None:
    book["last_update"] = value
    for m in book["markets"]:
        m["last_update"] = value


def test_one_book_dated_2099_is_dropped_and_every_other_event_keeps_its_theo(server, tmp_path):
    clean = _payload(server)
    code, out, err = mm_theo([_file(tmp_path, clean, "clean.json")], server, tmp_path)
    assert code == 0, err
    baseline, clean_drops = _priced(json.loads(out)), _drops(json.loads(out))
    assert len(baseline) >= 3, "the sample slate should price most games"

    bad = copy.deepcopy(clean)
    victim = next(e for e in bad if e["id"] in baseline)
    book = next(b for b in victim["bookmakers"] if b["key"] != "pinnacle")
    _stamp(book, "2099-01-01T00:00:00Z")

    code, out, err = mm_theo([_file(tmp_path, bad)], server, tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert not report["as_of"].startswith("2099"), report["as_of"]
    assert set(_priced(report)) == set(baseline)  # no event lost its theo to "stale"
    assert "after the pull" in _drops(report)[(victim["id"], book["key"])]
    stale = {k for k, r in _drops(report).items() if r.startswith("stale")}
    assert stale <= {k for k, r in clean_drops.items() if r.startswith("stale")}

    # --live: the pull time is the as-of time, and the 2099 book is still suspect (it used to
    # count as perfectly fresh, age clamped to 0)
    server.sim.faults.fail_next(200, body=json.dumps(bad))
    code, out, err = mm_theo(["--live", "--sport", SPORT], server, tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert report["as_of_from"] == "pull time"
    assert "after the pull" in _drops(report)[(victim["id"], book["key"])]
    assert set(_priced(report)) == set(baseline)


def test_out_of_range_timestamps_are_rejected_not_a_crash(server, tmp_path):
    payload = _payload(server)
    ids = [e["id"] for e in payload]
    payload[0]["commence_time"] = 10**30            # used to raise OverflowError in the report
    payload[1]["commence_time"] = 253402300800000   # milliseconds read as seconds: year 8e6
    victim = payload[2]["bookmakers"][0]
    _stamp(victim, 10**20)                          # used to become the as-of time of the file
    code, out, err = mm_theo([_file(tmp_path, payload)], server, tmp_path)
    assert code == 0 and "Traceback" not in err, err
    report = json.loads(out)
    rejected = {r["event_id"]: r["reason"] for r in report["rejected_events"]}
    assert "outside 2000-2100" in rejected[ids[0]] and "outside 2000-2100" in rejected[ids[1]]
    assert "outside 2000-2100" in _drops(report)[(ids[2], victim["key"])]
    assert report["as_of"].startswith("20")
    assert _priced(report), "the untouched games are still priced"

    code, out, err = mm_theo([_file(tmp_path, payload), "--now", "0001-01-01T00:00:00Z"],
                             server, tmp_path)
    assert code == 2 and "--now" in err and "Traceback" not in err and out == "", err


def test_a_lone_surrogate_rejects_its_event_and_the_report_is_whole(server, tmp_path):
    clean = _payload(server)
    code, out, _ = mm_theo([_file(tmp_path, clean, "clean.json")], server, tmp_path)
    baseline = _priced(json.loads(out))
    payload = copy.deepcopy(clean)
    payload[0]["home_team"] = payload[0]["home_team"][:3] + "\ud800" + payload[0]["home_team"][3:]
    payload[1]["id"] = "x\udc00y"
    bad_book = payload[2]["bookmakers"][1]
    bad_book["key"] += "\ud83d"
    code, out, err = mm_theo([_file(tmp_path, payload)], server, tmp_path)
    assert code == 0 and "Traceback" not in err, err
    report = json.loads(out)  # the whole report, not a prefix cut by a UnicodeEncodeError
    rejected = {r["event_id"]: r["reason"] for r in report["rejected_events"]}
    assert "surrogate" in rejected[clean[0]["id"]]
    assert "surrogate" in rejected["x\\udc00y"]
    assert "surrogate" in _drops(report)[(clean[2]["id"], bad_book["key"].encode(
        "utf-8", "backslashreplace").decode())]
    assert set(_priced(report)) >= set(baseline) - {clean[0]["id"], clean[1]["id"], clean[2]["id"]}
    out.encode("utf-8")  # every character printable
