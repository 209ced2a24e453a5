"""Prefect flows: thin arrangements of tasks (``tasks/``), one module per flow, deployed from
``prefect.yaml``. Every flow also runs once without a server: ``mm run FLOW [k=v …]``."""

FLOW_MODULES = {
    "pull-odds": "flows.pull_odds:pull_odds",
    "refresh-calendar": "flows.refresh_calendar:refresh_calendar",
    "launch-quoting": "flows.launch_quoting:launch_quoting",
    "quote-game": "flows.quote_game:quote_game",
    "ingest": "flows.ingest:ingest",
    "nightly-audit": "flows.nightly_audit:nightly_audit",
    "calibrate": "flows.calibrate:calibrate",
    "cancel-all": "flows.cancel_all:cancel_all",
}
"""Flow name → ``module:function`` (the same flows prefect.yaml deploys)."""


def load(name: str):  # noqa: ANN201 - returns a prefect Flow
    import importlib

    from mmcore.errors import InputError

    if name not in FLOW_MODULES:
        raise InputError(f"unknown flow {name!r}; flows: {', '.join(FLOW_MODULES)}")
    module, attr = FLOW_MODULES[name].split(":")
    return getattr(importlib.import_module(module), attr)
