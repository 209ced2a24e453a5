"""``prefect.yaml`` read once, two ways: ``mm serve`` builds ``serve(...)`` deployments from it,
``prefect deploy --all`` deploys it to a work pool. Both must say the same thing (names,
entrypoints, parameters, schedules, concurrency); ``tests/test_prefect_yaml.py`` checks it.

The file is validated here with clear errors (unknown keys, bad schedules), not at run time.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mmcore.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = REPO_ROOT / "prefect.yaml"


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    interval: float | None = Field(default=None, gt=0)
    cron: str | None = None
    timezone: str | None = None
    active: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("a schedule needs exactly one of interval (seconds) or cron")
        return self


class ConcurrencySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(ge=1)
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = "ENQUEUE"


class WorkPoolSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    entrypoint: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    concurrency_limit: int | ConcurrencySpec | None = None
    work_pool: WorkPoolSpec | None = None
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    """Deployment triggers (automations), validated by Prefect's own schema in :meth:`trigger_objects`."""

    def trigger_objects(self) -> list[Any]:
        from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

        try:
            return [DeploymentEventTrigger.model_validate(t) for t in self.triggers]
        except ValidationError as exc:
            raise ConfigError(f"prefect.yaml deployment {self.name!r}: bad trigger: {exc}") from exc

    @property
    def flow_name(self) -> str:
        return self.name  # every flow is deployed under its own name

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"

    def concurrency(self) -> tuple[int, str] | None:
        if self.concurrency_limit is None:
            return None
        if isinstance(self.concurrency_limit, int):
            return (self.concurrency_limit, "ENQUEUE")
        return (self.concurrency_limit.limit, self.concurrency_limit.collision_strategy)


def load_specs(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("deployments"), list):
        raise ConfigError(f"{path}: expected a mapping with a `deployments:` list")
    try:
        specs = [DeploymentSpec.model_validate(d) for d in raw["deployments"]]
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: duplicate deployment names in {names}")
    return specs


def max_games_override() -> int | None:
    """``MM_MAX_CONCURRENT_GAMES`` set in the environment overrides quote-game's limit."""
    raw = os.environ.get("MM_MAX_CONCURRENT_GAMES")
    return int(raw) if raw and raw.strip().isdigit() and int(raw) > 0 else None


def runner_deployment(spec: DeploymentSpec, *, max_games: int | None = None) -> Any:
    """The ``serve(...)`` deployment for one spec (entrypoint loaded from the repo root)."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.flows import load_flow_from_entrypoint
    from prefect.schedules import Cron, Interval

    flow = load_flow_from_entrypoint(str(REPO_ROOT / spec.entrypoint), use_placeholder_flow=False)
    if flow.name != spec.flow_name:
        raise ConfigError(f"prefect.yaml deployment {spec.name!r}: {spec.entrypoint} is flow "
                          f"{flow.name!r}; name deployments after their flow")
    schedules = [Interval(timedelta(seconds=s.interval), active=s.active) if s.interval is not None
                 else Cron(s.cron or "", timezone=s.timezone, active=s.active) for s in spec.schedules]
    conc = spec.concurrency()
    if spec.name == "quote-game" and max_games is not None and conc is not None:
        conc = (max_games, conc[1])
    limit = None if conc is None else ConcurrencyLimitConfig(
        limit=conc[0], collision_strategy=ConcurrencyLimitStrategy(conc[1]))
    return flow.to_deployment(name=spec.name, schedules=schedules or None, concurrency_limit=limit,
                              parameters=spec.parameters or None, description=spec.description,
                              tags=spec.tags or None, triggers=spec.trigger_objects() or None,
                              _sync=True)


def runner_deployments(path: Path = PREFECT_YAML) -> list[Any]:
    override = max_games_override()
    return [runner_deployment(s, max_games=override) for s in load_specs(path)]
