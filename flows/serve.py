"""``mm serve``: every deployment of ``prefect.yaml`` served by this one process (design §5).

Each flow run is a subprocess of this process; SIGTERM (or Ctrl-C) cancels in-flight runs — their
``on_cancellation`` hooks run the verified cancel-all — and pauses the deployments (the next
``mm serve`` resumes them). No work pool and no deploy step are needed.

Zombie runs. A SIGKILLed ``mm serve`` (its flow-run subprocesses with it), or a run whose final
state a killed Prefect server never received, stays RUNNING on the server and keeps its
deployment's concurrency slot: Prefect's engine renews the slot's lease for 300 s at a time, so the
slot frees only when that lease lapses, and until then every run of a limit-1 deployment (ingest,
launch-quoting — the launcher that recovers killed quoting runs) waits SCHEDULED (chaos G4). So
every served run heartbeats every ``MM_FLOW_HEARTBEAT_S`` and ``mm serve`` installs Prefect's
documented zombie automation ("Detect zombie flows"): a run with neither a heartbeat nor a final
state for ``MM_ZOMBIE_AFTER_S`` is marked Crashed, which releases its slot (Prefect's
``ReleaseFlowConcurrencySlots`` rule revokes the lease). A run whose process still lives keeps
heartbeating and is never touched (a serve killed alone leaves its subprocesses running: marking
them by age or by who started them would crash live quoting runs). A run that dies before it
first heartbeats is judged from its Pending or Running state (the server emits those events
itself). A served run whose subprocess starts slower than ``MM_ZOMBIE_AFTER_S`` would be crashed:
keep it well above the start time. Server side, the demo also shortens a PENDING run's initial
lease (``PREFECT_SERVER_CONCURRENCY_INITIAL_DEPLOYMENT_LEASE_DURATION``: 30 s, Prefect's floor,
instead of 300 s) and the wait between two slot attempts (5 s instead of 30 s).
"""

from __future__ import annotations

import os
from typing import Any

ZOMBIE_AUTOMATION = "mm: crash flow runs whose heartbeats stopped"


def zombie_automation(zombie_after_s: float) -> Any:
    """The automation (Prefect's zombie-flow recipe, widened to the start): per flow run, after
    Pending, Running or a heartbeat expect Running, a heartbeat or a final state within
    ``zombie_after_s`` seconds, else mark the run Crashed."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="A served flow run silent this long is dead (hard kill): Crashed frees its "
                    "deployment's concurrency slot (flows/serve.py).",
        trigger=EventTrigger(
            # Pending and Running start the clock too: a run killed while its subprocess starts,
            # or before its first heartbeat reached the server, would otherwise never be judged
            # (and the engine renews a RUNNING run's lease for 300 s at a time)
            after={"prefect.flow-run.Pending", "prefect.flow-run.Running",
                   "prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.Running", "prefect.flow-run.heartbeat", "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
                    "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=zombie_after_s),
        ),
        actions=[ChangeFlowRunState(
            state=StateType.CRASHED,
            message=f"no heartbeat for {zombie_after_s:g} s: the process running it is gone "
                    "(mm serve zombie automation)")],
    )


async def ensure_zombie_automation(zombie_after_s: float) -> str:
    """Create the zombie automation, or replace ours when its settings changed; idempotent (one
    automation of that name whatever the number of serve restarts). Returns what it did."""
    from prefect.client.orchestration import get_client

    want = zombie_automation(zombie_after_s)
    async with get_client() as client:
        have = await client.read_automations_by_name(ZOMBIE_AUTOMATION)
        same = [a for a in have if a.enabled and a.trigger == want.trigger and a.actions == want.actions]
        if same and len(have) == 1:
            return "kept"
        for a in have:
            await client.delete_automation(a.id)
        await client.create_automation(want)
    return "created"


def serve_all() -> None:
    import anyio
    from prefect import serve

    from flows.deployments import REPO_ROOT, runner_deployments
    from mmcore.settings import get_settings

    os.chdir(REPO_ROOT)  # entrypoints in prefect.yaml are relative to the repository root
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mmcore,mm")
    settings = get_settings()
    # the flow-run subprocesses inherit this: each heartbeats while it lives
    os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(settings.flow_heartbeat_s)
    done = anyio.run(ensure_zombie_automation, settings.zombie_after_s)
    print(f"zombie automation {done}: a served run silent {settings.zombie_after_s:g} s is marked "
          f"Crashed (heartbeat every {settings.flow_heartbeat_s} s)", flush=True)
    deployments = runner_deployments()
    serve(*deployments, print_starting_message=True)
