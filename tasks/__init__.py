"""Thin Prefect tasks over ``mmcore``: each gathers its inputs (settings, clients), calls the
core, and returns a small summary the flow logs and publishes."""
