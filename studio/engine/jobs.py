"""The job protocol: a job is a generator of small events that checks a cancel token.

Jobs know nothing of threads. The CLI iterates them and prints progress; the UI's runner
iterates them in the engine thread and re-emits each event as a Qt signal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from studio.errors import CancelledError


class CancelToken:
    """A thread-safe flag a job polls between steps; also carries pause/resume."""

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        """Ask the job to stop at its next check (also wakes a paused job)."""
        self._cancelled.set()
        self._running.set()

    @property
    def cancelled(self) -> bool:
        """Whether cancel() was called."""
        return self._cancelled.is_set()

    def pause(self) -> None:
        """Ask the job to wait at its next check until resume() or cancel()."""
        self._running.clear()

    def resume(self) -> None:
        """Let a paused job go on."""
        self._running.set()

    def wait_resumed(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for resume() or cancel(); whether the job may go on now."""
        return self._running.wait(timeout)

    @property
    def paused(self) -> bool:
        """Whether the job is asked to wait."""
        return not self._running.is_set()

    def check(self) -> None:
        """Block while paused; raise CancelledError once cancelled."""
        self._running.wait()
        if self._cancelled.is_set():
            raise CancelledError()


@dataclass(frozen=True)
class Progress:
    """Work done so far in the current stage (`total` is 0 while unknown)."""

    stage: str
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float | None:
        """done/total in [0, 1], or None while the total is unknown."""
        return min(1.0, self.done / self.total) if self.total else None


@dataclass(frozen=True)
class Finished:
    """The job's result; always the last event of a job that succeeded."""

    result: Any


# The events every consumer understands. A job may yield events of its own as well (training yields
# TrainingProgress, PreviewReady, ...: see training.TrainingJob); consumers skip what they do not know.
Event = Progress | Finished
Job = Generator[Event, None, None]
_AnyEvent = TypeVar("_AnyEvent")


def run_job(job: Iterable[_AnyEvent], on_event: Callable[[_AnyEvent], None] | None = None) -> Any:
    """Drive a job to its end synchronously, passing every event on; return its result."""
    result: Any = None
    for event in job:
        if on_event is not None:
            on_event(event)
        if isinstance(event, Finished):
            result = event.result
    return result
