"""Following a supervised run: its events as the same objects the trainer yields, its control through a token.

`attach` replays the run's events from the start and follows them until the run ends, so a window
opened later shows the whole curve. Pausing, resuming or cancelling the job's CancelToken is written to
the run's control.json; `detach` leaves the run going and ends the job quietly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from studio.engine.jobs import CancelToken, Finished
from studio.engine.supervision.events import EventReader, RunFailed
from studio.engine.supervision.run_folder import ControlState, RunFolder
from studio.engine.supervision.supervisor import find, is_live, start_run
from studio.engine.training_events import CheckpointSaved, PreviewReady, TrainingProgress
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.tables import Model

POLL_SECONDS = 0.05  # how often the events file is read and the token compared with what was asked


@dataclass(frozen=True)
class RunAttached:
    """The first event of an attach job: which run it follows and where that run stands."""

    run_id: str
    model: str
    family: str | None
    start_step: int
    target_steps: int | None
    paused: bool


# What an attach job yields: RunAttached, then the trainer's own events, then Finished(TrainResult).
AttachJob = Generator[Any, None, None]


def attach(
    store: Store, run_id: str, cancel: CancelToken | None = None, detach: threading.Event | None = None
) -> AttachJob:
    """Follow run `run_id` to its end, yielding its events; the token's pause, resume and cancel go to the run.

    Ends with Finished(TrainResult) when the run ends on its own, a StudioError with the run's reason when
    it failed, or one saying where it stopped when its process died. `detach` (set from any thread) ends
    the job at once and leaves the run going.
    """
    folder = find(store, run_id)
    info = folder.info()
    cancel = cancel or CancelToken()
    yield RunAttached(
        folder.id,
        str(info.get("model") or ""),
        info.get("family"),
        int(info.get("start_step") or 0),
        info.get("target_steps"),
        folder.control() is ControlState.PAUSED,
    )
    reader = EventReader(folder)
    asked = _wanted(cancel)  # only a change of the token is sent: attaching never pauses or resumes a run
    last_step = None
    while True:
        ended = not is_live(folder)  # looked at first: what it wrote before it ended is in the file by now
        for event in reader.read():
            if isinstance(event, Finished):
                yield event
                return
            if isinstance(event, RunFailed):
                raise StudioError(event.message)
            if isinstance(event, TrainingProgress | PreviewReady | CheckpointSaved):
                last_step = event.step
            yield event
        if ended:
            raise _died(store, folder, last_step)
        if detach is not None and detach.is_set():
            return
        wanted = _wanted(cancel)
        # Looked at again: a window letting go sets `detach` and then cancels this token, which must not stop the run.
        if wanted is not asked and not (detach is not None and detach.is_set()):
            folder.set_control(wanted)
            asked = wanted
        time.sleep(POLL_SECONDS)


def _wanted(token: CancelToken) -> ControlState:
    if token.cancelled:
        return ControlState.CANCELLED
    return ControlState.PAUSED if token.paused else ControlState.RUNNING


def _died(store: Store, folder: RunFolder, last_step: int | None) -> StudioError:
    """The process is gone without a final event: its own last error line, or where it stopped."""
    said = _last_error_line(folder)
    if said and last_step is None:
        return StudioError(said)  # it failed before training began (a bad option, a refusal)
    model = str(folder.info().get("model") or "")
    with store.sessions() as session:
        saved = session.scalar(select(Model.steps).where(Model.name == model))
    kept = f"the last checkpoint (step {saved:,}) is kept: resume it" if saved is not None else "nothing was saved"
    at = f" at step {last_step:,}" if last_step is not None else " before training began"
    return StudioError(f"the run's process ended unexpectedly{at}; {kept}")


def _last_error_line(folder: RunFolder) -> str:
    """The one-line error `studio` printed last in the run's output, if any."""
    try:
        with open(folder.log_file, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 8192))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    prefix = "studio: error: "
    lines = [line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)]
    return lines[-1].strip() if lines else ""


def supervise(
    store: Store, options: TrainOptions, cancel: CancelToken | None = None, detach: threading.Event | None = None
) -> AttachJob:
    """Start `options` as a supervised run and follow it (what the Train page runs in the engine thread)."""
    run_id = start_run(store, options)
    yield from attach(store, run_id, cancel, detach)
