"""Calibration through the real path (issue 11 item 4): a backtest writes the workers' journal →
the ``calibrate`` flow (Prefect harness) ingests it, fits A, k and σ and publishes
``calibration/hjb.json`` → a worker built afterwards against the local exchange (the
``build_worker`` that ``mm quote`` and quote-game use) quotes with exactly those values; an
explicit worker config file's keys win; a refused fit keeps the published values."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmcore.backtest import run_backtest
from mmcore.quoting.calibrate import IntensityLimits
from mmcore.quoting.config import DEFAULT_HJB
from mmcore.record.calibration import calibration_path, run_calibration
from mmcore.settings import Settings, get_settings
from mmcore.sim.scenario import default_scenario, default_scenario_dict
from mmcore.sim.server import SimStack
from mmcore.venues.kalshi.rest import KalshiRest
from mmcore.worker.venue import build_worker, default_worker_config

SEED = 7
NS = 1_000_000_000


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight games of the default slate quoted in a backtest that ended an hour ago, journaled
    under ``<data>/journal`` as live workers journal. (With three, k's standard error was ~15/$
    around k ≈ 25/$: the simulated books' prices change with the wall-clock minute, and in about
    1 start minute in 6 the fit came out too uncertain or negative and was refused. Eight give
    SE ≈ 5/$ at every start minute probed.)"""
    data = tmp_path_factory.mktemp("calibrate") / "data"
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    scenario = default_scenario_dict(SEED, 8)
    scenario["start"] = start.isoformat()
    result = run_backtest(scenario, seed=SEED, journal_dir=data / "journal")
    assert sum(len(g.fills) for g in result.games) >= 30
    return data


def _settings(data: Path, **kw: object) -> Settings:
    return Settings(_env_file=None, venue="sim", data_dir=data, **kw)  # type: ignore[arg-type]


async def test_calibrate_flow_publishes_and_the_next_worker_quotes_with_it(
        prefect_harness, record: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.calibrate import calibrate

    monkeypatch.setenv("MM_DATA_DIR", str(record))
    get_settings.cache_clear()
    try:
        # eight short games give k to about ±20–35 %: allow ±100 % here (default: ±50 %)
        out = calibrate(days=1.0, max_k_rel_se=1.0)
    finally:
        get_settings.cache_clear()
    assert out["written"] and out["intensity_rejected"] is None and out["volatility_rejected"] is None
    doc = json.loads(calibration_path(record).read_text())
    fitted = {"a_per_s": doc["intensity"]["a_per_s"], "k_per_dollar": doc["intensity"]["k_per_dollar"],
              "sigma_logit_per_sqrt_s": doc["volatility"]["sigma_logit_per_sqrt_s"]}
    assert doc["intensity"]["fills"] >= 30 and doc["volatility"]["diffs"] >= 30
    assert all(v != getattr(DEFAULT_HJB, k) for k, v in fitted.items())

    # a worker built now, against the local exchange over loopback, quotes with those values
    now = time.time_ns()
    sc = default_scenario(9, now, 1)
    async with SimStack(sc, record, run_participants=False) as stack:
        settings = _settings(record, sim_exchange_port=int(stack.rest_url.split(":")[2].split("/")[0]),
                             sim_host="127.0.0.1")
        signer = stack.signer()
        async with KalshiRest(settings.kalshi_url, signer) as rest:
            driver = await build_worker(settings, rest, signer, sc.games[0].event_ticker)
            try:
                hjb = driver.cfg.quote.hjb
            finally:
                assert driver.journal is not None
                driver.journal.close(time.time_ns())
    assert {k: getattr(hjb, k) for k in fitted} == fitted
    assert (hjb.gamma_per_dollar, hjb.q_max_contracts) == (DEFAULT_HJB.gamma_per_dollar,
                                                           DEFAULT_HJB.q_max_contracts)

    # a later run that cannot fit A, k keeps the published ones and says why
    again = run_calibration(record, now_ns=time.time_ns(), days=1.0,
                            intensity_limits=IntensityLimits(min_fills=10**6))
    assert again.written and "need at least 1000000" in (again.intensity.rejected or "")
    kept = json.loads(calibration_path(record).read_text())
    assert kept["intensity"] == doc["intensity"]
    assert kept["last_fit"]["intensity"]["rejected"] == again.intensity.rejected


def test_explicit_config_keys_win_and_stale_or_disabled_calibration_is_ignored(
        record: Path, tmp_path: Path) -> None:
    path = calibration_path(record)
    if not path.exists():  # this test alone: publish from the record first
        run_calibration(record, now_ns=time.time_ns(), days=1.0,
                        intensity_limits=IntensityLimits(max_k_rel_se=1.0))
    doc = json.loads(path.read_text())
    explicit = tmp_path / "worker.json"
    explicit.write_text(json.dumps({"hjb": {"k_per_dollar": 150.0}}))
    hjb = default_worker_config(_settings(record, worker_config=explicit), "w").quote.hjb
    assert hjb.k_per_dollar == 150.0  # the file's key
    assert hjb.a_per_s == doc["intensity"]["a_per_s"]  # calibration under it
    assert hjb.sigma_logit_per_sqrt_s == doc["volatility"]["sigma_logit_per_sqrt_s"]
    assert default_worker_config(_settings(record, calibration_max_age_s=0), "w").quote.hjb == DEFAULT_HJB
    # fitted on data up to the run: with a one-nanosecond allowance it is already too old
    stale = default_worker_config(_settings(record, calibration_max_age_s=1e-9), "w").quote.hjb
    assert stale == DEFAULT_HJB


def test_mm_calibrate_on_an_empty_record_writes_nothing_and_says_what_is_needed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mmcore.cli import app

    monkeypatch.setenv("MM_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        res = CliRunner().invoke(app, ["calibrate", "--days", "1"])
    finally:
        get_settings.cache_clear()
    assert res.exit_code == 1, res.output
    assert "0 maker fill(s); need at least 30" in res.output and "not written" in res.output
    assert not calibration_path(tmp_path / "data").exists()
