"""The worker config file (mmcore/worker/config.py): JSON, TOML and YAML give the same
WorkerConfig over the defaults; bad input of any shape is a ConfigError naming the key, never
another exception; MM_WORKER_CONFIG reaches default_worker_config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmcore.errors import ConfigError
from mmcore.settings import Settings
from mmcore.units import CONTRACT
from mmcore.worker.config import load_worker_config, read_config_file, worker_config_from_dict
from mmcore.worker.engine import WorkerConfig
from mmcore.worker.venue import default_worker_config

BASE = WorkerConfig("w-test")
RAW = {
    "hjb": {"gamma_per_dollar": 0.004, "model": "as_finite"},
    "competition": {"improve_ticks": 1},
    "quote": {"clip_contracts": 2, "min_size_contracts": 1},
    "limits": {"sports": {"soccer_epl": {"max_loss_money": 50_000}}},
    "killswitch": {"max_drawdown_money": 1_000_000, "severity": {"STALE_THEO": "REDUCING"}},
    "gate": {"collar_price": 800, "max_order_contracts": 300},
}
TOML = """
[hjb]
gamma_per_dollar = 0.004
model = "as_finite"
[competition]
improve_ticks = 1
[quote]
clip_contracts = 2
min_size_contracts = 1
[limits.sports.soccer_epl]
max_loss_money = 50000
[killswitch]
max_drawdown_money = 1000000
severity = {STALE_THEO = "REDUCING"}
[gate]
collar_price = 800
max_order_contracts = 300
"""
YAML = """
hjb: {gamma_per_dollar: 0.004, model: as_finite}
competition: {improve_ticks: 1}
quote: {clip_contracts: 2, min_size_contracts: 1}
limits:
  sports:
    soccer_epl: {max_loss_money: 50000}
killswitch:
  max_drawdown_money: 1000000
  severity: {STALE_THEO: REDUCING}
gate: {collar_price: 800, max_order_contracts: 300}
"""


def test_json_toml_and_yaml_give_the_same_config(tmp_path: Path) -> None:
    paths = {"json": tmp_path / "w.json", "toml": tmp_path / "w.toml", "yaml": tmp_path / "w.yaml"}
    paths["json"].write_text(json.dumps(RAW))
    paths["toml"].write_text(TOML)
    paths["yaml"].write_text(YAML)
    cfgs = [load_worker_config(p, BASE) for p in paths.values()]
    assert cfgs[0] == cfgs[1] == cfgs[2]
    cfg = cfgs[0]
    assert cfg.quote.clip == 2 * CONTRACT and cfg.quote.min_size == CONTRACT
    assert cfg.quote.hjb.gamma_per_dollar == 0.004 and cfg.quote.hjb.model == "as_finite"
    assert cfg.quote.competition.improve_ticks == 1
    assert cfg.limits.sports["soccer_epl"].max_loss_money == 50_000
    assert cfg.limits.sports["basketball_nba"] == BASE.limits.sports["basketball_nba"]
    assert cfg.killswitch.max_drawdown_money == 1_000_000
    assert cfg.killswitch.stale_theo_ns == BASE.killswitch.stale_theo_ns  # the worker's, kept
    assert cfg.gate.collar_price == 800 and cfg.gate.max_order_contracts == 300
    assert worker_config_from_dict({}, BASE) == BASE


@pytest.mark.parametrize(("raw", "names"), [
    ({"quotes": {}}, "quotes"),
    ({"quote": {"clip": "ten"}}, "quote.clip"),
    ({"quote": {"clipp": 1}}, "clipp"),
    ({"quote": {"clip_contracts": 0}}, "min_size"),
    ({"hjb": {"gamma_per_dollar": float("nan")}}, "hjb.gamma_per_dollar"),
    ({"hjb": {"model": "glfx"}}, "hjb.model"),
    ({"limits": {"sports": {"soccer_epl": {"max_loss_money": -1}}}}, "limits.sports.soccer_epl"),
    ({"limits": {"aggregate_max_loss_money": 1}}, "MM_AGGREGATE_MAX_LOSS_USD"),
    ({"killswitch": {"daily_loss_limit_money": 1}}, "MM_DAILY_LOSS_LIMIT_USD"),
    ({"killswitch": {"severity": {"NOPE": "HALTED"}}}, "NOPE"),
    ({"gate": {"collar_price": 0}}, "gate.collar_price"),
    ({"gate": []}, "gate"),
])
def test_bad_keys_are_named(raw: dict, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        worker_config_from_dict(raw, BASE)


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    for name, text in (("a.json", "{"), ("b.toml", "[x"), ("c.yaml", "a: [1"), ("d.json", "[1]"),
                       ("e.ini", "")):
        p = tmp_path / name
        p.write_text(text)
        with pytest.raises(ConfigError, match=name):
            load_worker_config(p, BASE)
    with pytest.raises(ConfigError, match="missing.json"):
        read_config_file(tmp_path / "missing.json")


def test_mm_worker_config_reaches_the_worker_config(tmp_path: Path) -> None:
    p = tmp_path / "w.toml"
    p.write_text(TOML)
    cfg = default_worker_config(Settings(worker_config=p, quote_stop_before_start_s=5), "w")
    assert cfg.quote.clip == 2 * CONTRACT and cfg.gate.collar_price == 800
    assert cfg.quote.stop_before_start_ns == 5 * 10**9  # the setting, not in the file
    plain = default_worker_config(Settings(worker_config=""), "w")
    assert plain.quote.clip == BASE.quote.clip


# --- fuzz: any shape → ConfigError or a valid config, never another exception ----------------

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6)
keys = st.sampled_from(["hjb", "quote", "limits", "killswitch", "gate", "competition", "sports",
                        "default", "soccer_epl", "clip", "clip_contracts", "min_size_contracts",
                        "gamma_per_dollar", "model", "max_loss_money", "min_contracts",
                        "liquidity_fraction", "severity", "STALE_THEO", "collar_price",
                        "max_drawdown_money", "stale_theo_ns", "improve_ticks", "x"]) | st.text(max_size=4)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, values, max_size=5) | values)
def test_fuzz_any_shape_is_a_config_error_or_a_config(raw: object) -> None:
    try:
        cfg = worker_config_from_dict(raw, BASE)
    except ConfigError:
        return
    assert isinstance(cfg, WorkerConfig) and cfg.quote.clip > 0


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([".json", ".toml", ".yaml"]), st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
def test_fuzz_file_bytes(tmp_path_factory, suffix: str, data: bytes) -> None:
    p = tmp_path_factory.mktemp("cfg") / f"w{suffix}"
    p.write_bytes(data)
    try:
        load_worker_config(p, BASE)
    except ConfigError:
        pass


def test_barrier_guard_and_jump_sections_reach_the_worker_config() -> None:
    from mmcore.worker.config import worker_config_from_dict
    from mmcore.worker.engine import WorkerConfig

    base = WorkerConfig("w")
    cfg = worker_config_from_dict({"barrier": {"stop_loss_price": 300, "start_buffer_ns": 600_000_000_000},
                                   "jump": {"warmup_n": base.jump.warmup_n + 1}}, base)
    assert cfg.barrier.stop_loss_price == 300 and cfg.barrier.start_buffer_ns == 600_000_000_000
    assert cfg.jump.warmup_n == base.jump.warmup_n + 1
    with pytest.raises(ConfigError, match="barrier"):
        worker_config_from_dict({"barrier": {"stop_loss_price": -3}}, base)
