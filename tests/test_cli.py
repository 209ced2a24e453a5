"""The `mm` command end to end: real files, the real local odds server, real HTTP."""

from __future__ import annotations

import json

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mmcore.cli import app
from mmcore.demo import run_demo
from mmcore.settings import get_settings
from mmcore.sim import SIM_ODDS_API_KEY
from mmcore.sim.odds_server import OddsServer, OddsServerConfig

runner = CliRunner()


def test_theo_on_a_real_sample(odds_samples):
    path = next(p for p in odds_samples if "americanfootball_nfl" in p.name)
    result = runner.invoke(app, ["theo", str(path), "--method", "power"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["method"] == "power"
    payload = json.loads(path.read_text())
    assert len(report["events"]) + len(report["rejected_events"]) == len(payload)
    ev = report["events"][0]
    assert {o["name"] for o in ev["outcomes"]} == {ev["home_team"], ev["away_team"]}
    assert ev["anchor"] == "pinnacle"
    assert sum(o["theo"] for o in ev["outcomes"]) == pytest.approx(1.0, abs=1e-5)


def test_theo_reports_dropped_books_with_reasons(odds_samples):
    path = next(p for p in odds_samples if "inplay" in p.name)
    result = runner.invoke(app, ["theo", str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    reasons = [d["reason"] for e in report["events"] for d in e["dropped"]]
    reasons += [b["reason"] for e in report["rejected_events"] for b in e["books"]]
    assert any("1.0 means settled or suspended" in r for r in reasons)


def test_theo_refuses_bad_input_clearly(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = runner.invoke(app, ["theo", str(bad)])
    assert result.exit_code == 2 and "is not JSON" in result.output
    result = runner.invoke(app, ["theo", str(bad), "--method", "voodoo"])
    assert result.exit_code == 2 and "unknown method 'voodoo'" in result.output
    result = runner.invoke(app, ["theo", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_theo_live_against_local_odds_server(monkeypatch):
    with OddsServer(OddsServerConfig(seed=3, n_games=2, sports=("basketball_nba",))) as server:
        monkeypatch.setenv("MM_ODDS_API_BASE_URL", server.url)
        monkeypatch.setenv("ODDS_API_KEY", SIM_ODDS_API_KEY)
        get_settings.cache_clear()
        try:
            result = runner.invoke(app, ["theo", "--live", "--sport", "basketball_nba"])
        finally:
            get_settings.cache_clear()
        truth = {g.event_id: g.true_probs for g in server.sim.slate}
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["events"]) == 2
    for ev in report["events"]:
        theo = [o["theo"] for o in ev["outcomes"]]
        assert theo == pytest.approx(truth[ev["event_id"]], abs=0.03)


def test_demo_end_to_end_leaves_nothing_resting(tmp_path):
    """The README's main job, shortened: local exchange + odds, theo, a worker per game, each
    stopping at its game's start with nothing resting on the exchange."""
    console = Console(record=True, width=160)
    result = run_demo(seed=11, n_games=2, console=console, first_start_s=15.0, spacing_s=4.0,
                      stop_before_start_s=3.0, data_dir=tmp_path)
    assert result.games == 2 and result.priced == 2
    assert result.max_abs_error < 0.03
    assert result.resting_after == 0
    for r in result.reports:
        assert r.exit_reason.startswith("GAME_START") and r.final_state == "HALTED"
        assert r.actions > 0 and r.kill is not None and r.kill.after == []
    text = console.export_text()
    assert "theo from sportsbooks" in text and "nothing resting" in text


def test_resume_removes_the_halt_flags_kill_leaves(tmp_path, monkeypatch):
    monkeypatch.setenv("MM_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        halt = get_settings().halt_dir
        halt.mkdir(parents=True)
        for name in ("KXNBAGAME-A", "KXNBAGAME-B", "ALL"):
            (halt / name).write_text("halted by mm kill\n")
        result = runner.invoke(app, ["resume", "KXNBAGAME-A"])
        assert result.exit_code == 0, result.output
        assert "removed 1 halt flag(s): KXNBAGAME-A" in result.output
        assert "still halted: an ALL flag" in result.output
        assert sorted(p.name for p in halt.iterdir()) == ["ALL", "KXNBAGAME-B"]
        result = runner.invoke(app, ["resume", "KXNBAGAME-A"])
        assert result.exit_code == 0 and "removed 0 halt flag(s)" in result.output
        result = runner.invoke(app, ["resume", "--all"])
        assert result.exit_code == 0 and "removed 2 halt flag(s): ALL, KXNBAGAME-B" in result.output
        assert list(halt.iterdir()) == []
        result = runner.invoke(app, ["resume"])
        assert result.exit_code == 2 and "EVENT_TICKER or --all" in result.output
    finally:
        get_settings.cache_clear()
