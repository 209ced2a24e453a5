"""The one place that knows whether we run under Prefect.

Every flow can run two ways through the same code: as a Prefect flow run (scheduled by ``mm
serve``, triggered from the UI, or under the test harness), or once from the CLI with ``mm run
FLOW`` and no Prefect server at all. In the second case the flow's plain function is called, tasks
run as plain functions and artifacts are printed instead of published.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

log = logging.getLogger("mm.flows")


def in_flow_run() -> bool:
    """True inside a Prefect flow run (artifacts and task runs go to the server)."""
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


def logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run logger inside a flow run (shows in the UI), else the ``mm.flows`` logger."""
    if in_flow_run():
        from prefect.logging import get_run_logger

        return get_run_logger()
    return log


async def acall(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an async Prefect task (a task run inside a flow run, else its plain function)."""
    if in_flow_run():
        return await task(*args, **kwargs)
    return await task.fn(*args, **kwargs)


def call(task: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a sync Prefect task (a task run inside a flow run, else its plain function)."""
    fn = task if in_flow_run() else task.fn
    return fn(*args, **kwargs)


def run_flow(flow: Any, params: Mapping[str, Any]) -> Any:
    """``mm run``: the flow's own function, once, without a Prefect server."""
    import asyncio

    result = flow.fn(**params)
    return asyncio.run(result) if inspect.isawaitable(result) else result


def _print(title: str, body: str) -> None:
    print(f"--- artifact {title} ---\n{body}")


def _jsonable(value: Any) -> Any:
    """Table cells the artifact API can carry: dates and times as ISO text, Decimals and other
    objects as text, NaN/inf as empty."""
    import datetime
    import math

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    return str(value)


def table_artifact(key: str, rows: Sequence[Mapping[str, Any]], description: str = "") -> UUID | None:
    """A keyed table artifact (one version per call) or, outside Prefect, a printed table."""
    rows = [{str(k): _jsonable(v) for k, v in r.items()} for r in rows]
    if not in_flow_run():
        cols = list(rows[0]) if rows else []
        _print(key, "\n".join([" | ".join(cols)] + [" | ".join(str(r.get(c, "")) for c in cols)
                                                      for r in rows[:50]]))
        return None
    from prefect.artifacts import create_table_artifact

    return create_table_artifact(rows or [{"(no rows)": ""}], key=key, description=description,
                                 _sync=True)  # type: ignore[call-arg]


def markdown_artifact(key: str | None, markdown: str, description: str = "") -> UUID | None:
    if not in_flow_run():
        _print(key or "markdown", markdown)
        return None
    from prefect.artifacts import create_markdown_artifact

    return create_markdown_artifact(markdown, key=key, description=description,
                                    _sync=True)  # type: ignore[call-arg]


class LiveArtifact:
    """A markdown artifact created once and then updated in place (one version; design §5)."""

    def __init__(self, key: str, description: str = "") -> None:
        self.key, self.description = key, description
        self._id: UUID | None = None

    async def show(self, markdown: str) -> None:
        if not in_flow_run():
            return
        from prefect.artifacts import ArtifactUpdate, acreate_markdown_artifact
        from prefect.client.orchestration import get_client

        try:
            if self._id is None:
                self._id = await acreate_markdown_artifact(markdown, key=self.key,
                                                           description=self.description)
                return
            async with get_client() as client:
                await client.update_artifact(self._id, ArtifactUpdate(data=markdown))
        except Exception as exc:  # noqa: BLE001 - status display must never stop quoting
            log.warning("status artifact %s not updated: %r", self.key, exc)


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes."""
    raw = "-".join(parts).lower()
    return "".join(c if c.isalnum() and c.isascii() else "-" for c in raw).strip("-")[:200]


def settings() -> Any:
    from mmcore.settings import get_settings

    return get_settings()

