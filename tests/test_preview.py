"""`mm preview`: the operator's dry run, on the example files and on bad input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mmcore.cli import app
from mmcore.preview import run_preview

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
runner = CliRunner()


def load(name):
    return json.loads((EXAMPLES / name).read_text())


def test_competitive_book_joins_top_within_caps():
    r = run_preview(load("preview-competitive.json"))
    bos = r["quotes"]["KXNBAGAME-26NOV24BOSNYK-BOS"]
    assert bos["bid"]["price"] == "0.5800"  # joins the best other bid (our own 10 at 0.57 excluded)
    assert bos["ask"]["price"] == "0.6200"  # best other ask 0.61 is past theo + e_min
    kinds = sorted(a["action"] for a in r["actions"])
    assert kinds == ["amend", "place", "place", "place"]  # the resting bid is amended, not replaced
    assert not r["refused"]


def test_overexposed_position_leans_and_is_cut_at_the_hard_limit():
    r = run_preview(load("preview-overexposed.json"))
    assert r["inventory"]["KXNBAGAME-26NOV24BOSNYK-BOS"] == "160.00"
    bos = r["quotes"]["KXNBAGAME-26NOV24BOSNYK-BOS"]
    assert bos["ask"]["price"] == "0.6100"  # break-even relaxation lets the exit join the book
    assert any("R3 break-even" in n for n in r["rules"]["KXNBAGAME-26NOV24BOSNYK-BOS"])
    assert any(n.startswith("size") and "cut" in n for n in r["notes"])
    adding = [q for q in (bos["bid"], r["quotes"]["KXNBAGAME-26NOV24BOSNYK-NYK"]["ask"]) if q]
    assert sum(float(q["count"]) for q in adding) <= 200 - 160


def test_halted_cancels_everything(tmp_path):
    data = load("preview-competitive.json")
    data["trading_state"] = "HALTED"
    r = run_preview(data)
    assert [a["action"] for a in r["actions"]] == ["cancel"]
    assert "HALTED" in r["notes"][-1]


def test_cli_prints_and_refuses_bad_config(tmp_path):
    ok = runner.invoke(app, ["preview", str(EXAMPLES / "preview-overexposed.json")])
    assert ok.exit_code == 0 and "R3 break-even" in ok.output
    data = load("preview-competitive.json")
    data["config"] = {"hjb": {"gamma": 0.1}}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    res = runner.invoke(app, ["preview", str(bad)])
    assert res.exit_code == 2 and "unknown key(s) gamma" in res.output
    data = load("preview-competitive.json")
    data["positions"] = {"OTHER-MKT": "1.00"}
    bad.write_text(json.dumps(data))
    res = runner.invoke(app, ["preview", str(bad), "--json"])
    assert res.exit_code == 2 and "not one of the game's markets" in res.output
