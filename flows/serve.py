"""``mm serve``: every deployment of ``prefect.yaml`` served by this one process (design §5).

Each flow run is a subprocess of this process; SIGTERM (or Ctrl-C) cancels in-flight runs — their
``on_cancellation`` hooks run the verified cancel-all — and pauses the deployments (the next
``mm serve`` resumes them). No work pool and no deploy step are needed.
"""

from __future__ import annotations

import os


def serve_all() -> None:
    from prefect import serve

    from flows.deployments import REPO_ROOT, runner_deployments

    os.chdir(REPO_ROOT)  # entrypoints in prefect.yaml are relative to the repository root
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mmcore,mm")
    deployments = runner_deployments()
    serve(*deployments, print_starting_message=True)
