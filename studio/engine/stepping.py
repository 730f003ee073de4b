"""Per-step progress, cancel and memory-sized batches for a job that runs a family pipeline.

A job is a generator, and a pipeline tells of its network steps through a callback (`Pipeline.on_step`),
so `stepped` runs the pipeline call in a worker thread and turns each step into a Progress event the
job yields. The callback is also where the call stops mid-batch: it waits while the job is paused and
raises CancelledError once the job is cancelled (or closed), so nothing of that call is returned.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from studio.engine.families.pipeline import Pipeline
from studio.engine.jobs import CancelToken, Progress
from studio.errors import CancelledError

Result = TypeVar("Result")
PAUSE_POLL = 0.05  # seconds between looks at a paused token (a closed job must not wait for a resume)


def fit_memory(pipeline: Pipeline, backend: str, provider: str) -> None:
    """On a CUDA GPU a network call's batch must fit the GPU's free memory, not the host's."""
    if backend == "torch" and provider == "cuda":
        import torch  # loaded already: the model runs on it

        pipeline.memory_budget = int(torch.cuda.mem_get_info()[0])


def batch_steps(
    stage: str, done: int, size: int, count: int, batch: int, batches: int
) -> Callable[[int, int], Progress]:
    """Progress for the steps of batch `batch` of `batches` (`size` images after `done` of `count`):
    "step 12/50 of batch 2/4", counted so that its fraction agrees with the images-done events."""

    def report(step: int, steps: int) -> Progress:
        where = f"step {step}/{steps}" + (f" of batch {batch}/{batches}" if batches > 1 else "")
        return Progress(stage, done * steps + size * step, count * steps, where)

    return report


def stepped(
    pipeline: Pipeline, cancel: CancelToken, work: Callable[[], Result], report: Callable[[int, int], Progress]
) -> Generator[Progress, None, Result]:
    """Run `work` (one call of `pipeline`) in a worker thread; yield `report(done, total)` per network step.

    Steps the consumer is too slow for are merged (the latest wins); the call's error, or CancelledError
    when it was stopped, is raised here, in the job's thread.
    """
    steps: queue.SimpleQueue[tuple[int, int] | None] = queue.SimpleQueue()
    stop = threading.Event()
    outcome: dict[str, Any] = {}

    def on_step(done: int, total: int) -> None:
        while cancel.paused and not (cancel.cancelled or stop.wait(PAUSE_POLL)):
            pass
        if cancel.cancelled or stop.is_set():
            raise CancelledError()
        steps.put((done, total))

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as error:  # noqa: BLE001 - handed over to the job's thread, which raises it
            outcome["error"] = error
        finally:
            steps.put(None)

    pipeline.on_step = on_step
    worker = threading.Thread(target=run, name="studio-pipeline", daemon=True)
    worker.start()
    try:
        ended = False
        while not ended and (latest := steps.get()) is not None:
            while not steps.empty():  # merge what queued while the consumer was busy
                following = steps.get()
                ended = following is None
                latest = latest if following is None else following
            yield report(*latest)
    finally:
        stop.set()  # a job closed early stops the call at its next step
        worker.join()
        pipeline.on_step = None
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
