"""prefect.yaml is the one source of truth: `mm serve`'s deployments and `prefect deploy --all`
say the same thing (names, entrypoints, parameters, schedules, concurrency)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows import FLOW_MODULES
from flows.deployments import PREFECT_YAML, load_specs, runner_deployment
from mmcore.errors import ConfigError

PREFECT = str(Path(sys.executable).with_name("prefect"))


def _schedules(raw: list) -> list[tuple]:
    out = []
    for s in raw:
        sch = getattr(s, "schedule", s)
        if getattr(sch, "interval", None) is not None:
            out.append(("interval", float(sch.interval.total_seconds())))
        else:
            out.append(("cron", sch.cron, sch.timezone))
    return sorted(out)


def _conc(limit) -> tuple | None:
    if limit is None:
        return None
    if isinstance(limit, int):
        return (limit, "ENQUEUE")
    strategy = getattr(limit, "collision_strategy", None)
    return (limit.limit, getattr(strategy, "value", strategy) or "ENQUEUE")


def _trigger_key(expect, match_related, parameters) -> tuple:
    related = match_related.root if hasattr(match_related, "root") else match_related
    related = related[0].root if isinstance(related, list) and related and hasattr(related[0], "root") else related
    return (tuple(sorted(expect)), str(sorted(dict(related).items())), str(sorted((parameters or {}).items())))


async def _automations_by_deployment() -> dict:
    """What `prefect deploy --all` created: deployment id → its triggers (expect, related, params)."""
    from prefect.client.orchestration import get_client

    out: dict = {}
    async with get_client() as client:
        for a in await client.read_automations():
            for action in a.actions:
                dep = getattr(action, "deployment_id", None)
                if dep is not None:
                    out.setdefault(dep, []).append(_trigger_key(a.trigger.expect, a.trigger.match_related,
                                                                getattr(action, "parameters", None)))
    return {k: sorted(v) for k, v in out.items()}


def test_every_flow_is_deployed_and_every_entrypoint_is_the_flow_of_that_name() -> None:
    specs = load_specs()
    assert sorted(s.name for s in specs) == sorted(FLOW_MODULES)
    for spec in specs:
        rd = runner_deployment(spec)
        assert rd.flow_name == spec.name
        assert rd.entrypoint.endswith(spec.entrypoint)


def test_a_bad_prefect_yaml_is_refused_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "prefect.yaml"
    bad.write_text("deployments:\n  - name: x\n    entrypoint: a.py:f\n    schedules: [{interval: -5}]\n")
    with pytest.raises(ConfigError, match="interval"):
        load_specs(bad)
    bad.write_text("deployments:\n  - name: x\n    entrypoint: a.py:f\n    schedule: {}\n")
    with pytest.raises(ConfigError, match="schedule"):
        load_specs(bad)


async def test_prefect_deploy_all_and_serve_agree(prefect_harness, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    repo = PREFECT_YAML.parent
    subprocess.run([PREFECT, "--no-prompt", "work-pool", "create", "mm-process", "--type", "process"],
                   env=env, cwd=repo, check=False, capture_output=True, timeout=120)
    done = subprocess.run([PREFECT, "--no-prompt", "deploy", "--all"], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    specs = {s.name: s for s in load_specs()}
    async with get_client() as client:
        deployed, deployed_ids = {}, {}
        for name in specs:
            d = await client.read_deployment_by_name(f"{name}/{name}")
            deployed_ids[name] = d.id
            deployed[name] = (d.entrypoint, d.parameters or {}, _schedules(d.schedules),
                              _conc(d.global_concurrency_limit and d.global_concurrency_limit.limit
                                    and d.concurrency_options and type("L", (), {
                                        "limit": d.global_concurrency_limit.limit,
                                        "collision_strategy": d.concurrency_options.collision_strategy})()
                                    or (d.global_concurrency_limit.limit if d.global_concurrency_limit else None)),
                              d.work_pool_name)
    deployed_triggers = await _automations_by_deployment()
    for name, spec in specs.items():
        rd = runner_deployment(spec)
        served_triggers = sorted(_trigger_key(t.expect, t.match_related, t.parameters) for t in rd.triggers or [])
        assert deployed_triggers.get(deployed_ids[name], []) == served_triggers, name
        served = (rd.entrypoint, rd.parameters or {}, _schedules(rd.schedules or []),
                  _conc(rd.concurrency_limit))
        entry, params, scheds, conc, pool = deployed[name]
        assert Path(entry).as_posix().endswith(spec.entrypoint) and served[0].endswith(spec.entrypoint), name
        assert params == served[1] == spec.parameters, name
        assert scheds == served[2], name
        assert conc == served[3] == spec.concurrency(), name
        assert pool == "mm-process", name
