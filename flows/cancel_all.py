"""``cancel-all`` (ad hoc): halt one game (or every game) and cancel until the exchange shows
nothing of ours resting. Fails loudly (the run ends Failed) when that cannot be verified."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.quoting import cancel_all_task
from tasks.runtime import acall, artifact_key, logger, table_artifact


@flow(name="cancel-all")
async def cancel_all(event_ticker: str | None = None, halt: bool = True,
                     reason: str = "cancel-all flow") -> dict[str, Any]:
    """``event_ticker`` None = every game. ``halt`` drops the halt flag first (``mm resume``
    releases it) so neither a running worker nor the launcher quotes the game again."""
    out = await acall(cancel_all_task, event_ticker, halt, reason)
    logger().warning("cancel-all %s: %s resting before, %s after (verified on the exchange)",
                     out["scope"], out["resting_before"], out["resting_after"])
    table_artifact(artifact_key("cancel-all", event_ticker or "all"), [out],
                   "verified cancel-all: resting orders before and after")
    return out
