"""Training runs the app supervises: `studio train` child processes that report through files in a run folder.

See run_folder (the files), events (events.jsonl), child (the run's side), supervisor (start, list, stop)
and attach (following a run as a job).
"""

from __future__ import annotations

from studio.engine.supervision.attach import RunAttached, attach, supervise
from studio.engine.supervision.run_folder import ControlState, RunFolder
from studio.engine.supervision.supervisor import (
    RunSummary,
    ask_to_stop,
    list_runs,
    live_runs,
    run_options,
    start_run,
    stop_run,
    train_arguments,
)

__all__ = [
    "ControlState",
    "RunAttached",
    "RunFolder",
    "RunSummary",
    "ask_to_stop",
    "attach",
    "list_runs",
    "live_runs",
    "run_options",
    "start_run",
    "stop_run",
    "supervise",
    "train_arguments",
]
