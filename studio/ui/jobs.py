"""The one Qt bridge to the engine: jobs run one at a time in the engine thread; events come back as signals.

An engine job is a generator of events that checks a CancelToken (`studio.engine.jobs`). The runner
iterates it in its own QThread and re-emits every event through the job's `JobHandle`, a QObject
that lives in the GUI thread, so its signals are delivered there (queued) and slots may touch
widgets. No widget is ever touched from the engine thread. Jobs queue in a list the user may reorder
(`move`); each can be paused, resumed and cancelled (a queued one leaves the queue at once: `cancel`);
`shutdown` cancels everything and waits, so no thread outlives the window.
"""

from __future__ import annotations

import enum
import gc
import itertools
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from studio.engine.datasets.importer import host_is_threaded
from studio.engine.jobs import CancelToken, Finished
from studio.errors import CancelledError, StudioError

# An engine job builder: any generator of events (a training job yields more kinds than Progress).
JobFactory = Callable[[CancelToken], Iterable[object]]


class JobState(enum.StrEnum):
    """Where a submitted job stands; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        """Whether the job has ended one way or another."""
        return self in (JobState.FINISHED, JobState.FAILED, JobState.CANCELLED)

    @property
    def active(self) -> bool:
        """Whether the job holds the engine thread (running or paused)."""
        return self in (JobState.RUNNING, JobState.PAUSED)


class JobHandle(QObject):
    """One submitted job: its title, its cancel token, and the signals its events arrive through."""

    started = Signal()
    progressed = Signal(object)  # every event the job yields except Finished (Progress, TrainingProgress...)
    finished = Signal(object)  # the job's result
    failed = Signal(str)  # a one-line reason
    cancelled = Signal()
    ended = Signal()  # after finished, failed or cancelled: always last

    _ids = itertools.count(1)

    def __init__(self, title: str, factory: JobFactory, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.id = next(self._ids)
        self.title = title
        self.factory = factory
        self.token = CancelToken()
        self.state = JobState.QUEUED
        self.result: Any = None
        self.error: str | None = None
        self.last_event: Any = None
        self.error_shown = False  # a page showed the failure itself: the window adds no dialog of its own
        self.progressed.connect(self._remember)

    def _remember(self, event: Any) -> None:
        self.last_event = event

    @property
    def done(self) -> bool:
        """Whether the job has ended one way or another."""
        return self.state.final

    def cancel(self) -> None:
        """Stop at the job's next check (a queued job never starts)."""
        self.token.cancel()

    def pause(self) -> None:
        """Wait at the job's next check until resume() or cancel()."""
        if self.state is JobState.RUNNING:
            self.token.pause()
            self.state = JobState.PAUSED

    def resume(self) -> None:
        """Go on after pause()."""
        if self.state is JobState.PAUSED:
            self.token.resume()
            self.state = JobState.RUNNING


class JobQueue:
    """The jobs waiting for the engine thread, in the order they will run; the user may reorder them.

    A list under a condition rather than a queue.Queue: a queued job can be moved or taken out before the
    engine thread reaches it. The engine thread blocks in `take` until a job (or the stop) comes.
    """

    def __init__(self) -> None:
        self._jobs: list[JobHandle] = []
        self._changed = threading.Condition()
        self._stopped = False

    def put(self, handle: JobHandle) -> None:
        """Queue a job last."""
        with self._changed:
            self._jobs.append(handle)
            self._changed.notify()

    def take(self) -> JobHandle | None:
        """The next job, waiting for one; None once stopped and empty (jobs queued before the stop still come,
        cancelled, so each reports its end)."""
        with self._changed:
            while not self._jobs and not self._stopped:
                self._changed.wait()
            return self._jobs.pop(0) if self._jobs else None

    def remove(self, handle: JobHandle) -> bool:
        """Take a job out before it starts; False when the engine thread took it already."""
        with self._changed:
            if handle in self._jobs:
                self._jobs.remove(handle)
                return True
            return False

    def move(self, handle: JobHandle, offset: int) -> bool:
        """Move a waiting job `offset` places (negative: sooner); False when it is not waiting or cannot move."""
        with self._changed:
            if handle not in self._jobs:
                return False
            index = self._jobs.index(handle)
            target = max(0, min(len(self._jobs) - 1, index + offset))
            if target == index:
                return False
            self._jobs.insert(target, self._jobs.pop(index))
            return True

    def snapshot(self) -> list[JobHandle]:
        """The waiting jobs in the order they will run."""
        with self._changed:
            return list(self._jobs)

    def stop(self) -> None:
        """Let the engine thread end once the jobs still waiting (cancelled by then) have reported."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()


class _EngineThread(QThread):
    """Takes handles off the queue and drives their jobs; reports through `relay` (queued to the GUI)."""

    relay = Signal(object, str, object)  # handle, what happened, payload

    def __init__(self, work: JobQueue, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.work = work

    def run(self) -> None:
        """Until told to stop: run the next queued job."""
        while True:
            handle = self.work.take()
            if handle is None:
                return
            self._drive(handle)
            del handle  # not held while waiting for the next: an ended handle is freed once no page holds it

    def _drive(self, handle: JobHandle) -> None:
        report = self.relay.emit
        if handle.token.cancelled:
            report(handle, "cancelled", None)
            return
        report(handle, "started", None)
        result: Any = None
        try:
            job = handle.factory(handle.token)
            for event in job:
                if isinstance(event, Finished):
                    result = event.result
                else:
                    report(handle, "event", event)
            # Read the token again: the user may have cancelled while the job ran (a property mypy would
            # otherwise consider settled by the check at the top).
            cancelled_meanwhile: bool = getattr(handle.token, "cancelled")  # noqa: B009
            if getattr(result, "status", None) == "cancelled" or (cancelled_meanwhile and result is None):
                report(handle, "cancelled", result)
            else:
                report(handle, "finished", result)
        except CancelledError:
            report(handle, "cancelled", None)
        except StudioError as error:
            report(handle, "failed", str(error))
        except Exception as error:  # noqa: BLE001 - an engine bug must not kill the app: report it
            # A full or read-only disk, no permission, no memory: the CLI's own one line, no traceback.
            from studio.failures import explain

            explained = explain(error)
            if explained is not None:
                report(handle, "failed", str(explained))
                return
            traceback.print_exc(file=sys.stderr)
            message = str(error).splitlines()[0] if str(error) else ""
            report(handle, "failed", f"unexpected error ({type(error).__name__}): {message}")


class GuiThreadCollector(QObject):
    """Python's cyclic garbage collection, run only in the GUI thread while worker threads exist.

    A collection runs in whichever thread happens to allocate; in the engine thread it can free a Qt
    object left in a reference cycle, whose destructor then waits for the GUI thread while the GUI
    thread waits for the interpreter: a deadlock (seen during an encoder's ONNX export). pyqtgraph's
    GarbageCollector does the same: automatic collection off, the thresholds checked on a timer here.
    """

    INTERVAL_MS = 500

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setObjectName("studio-gc")
        self._timer.timeout.connect(self.collect_due)
        self._timer.start(self.INTERVAL_MS)

    def collect_due(self) -> None:
        """Collect the oldest generation whose count passed its threshold, as automatic collection would."""
        counts, thresholds = gc.get_count(), gc.get_threshold()
        due = [generation for generation in range(3) if counts[generation] > thresholds[generation]]
        if due:
            gc.collect(max(due))

    def stop(self) -> None:
        """Stop the timer and hand collection back to the interpreter."""
        self._timer.stop()
        if self._was_enabled:
            gc.enable()


class JobRunner(QObject):
    """Queues engine jobs and runs them one at a time off the GUI thread."""

    jobStarted = Signal(object)  # noqa: N815 - Qt signal naming
    jobEnded = Signal(object)  # noqa: N815
    queueChanged = Signal()  # noqa: N815

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._work = JobQueue()
        host_is_threaded()  # from now on imports start workers with a fork server, never fork
        self._thread = _EngineThread(self._work, self)
        self._thread.setObjectName("studio-engine")
        # Queued: the slot runs in the GUI thread, so every handle signal is emitted there.
        self._thread.relay.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._handles: list[JobHandle] = []
        self._collector = GuiThreadCollector(self)
        self._thread.start()

    @property
    def current(self) -> JobHandle | None:
        """The running (or paused) job, if any."""
        return next((h for h in self._handles if h.state.active), None)

    @property
    def pending(self) -> list[JobHandle]:
        """Jobs submitted and not yet ended: the current one first, then the queued ones in the order they run."""
        waiting = self._work.snapshot()
        ahead = [h for h in self._handles if not h.done and h not in waiting]  # running, or taken and starting
        return ahead + [h for h in waiting if not h.done]

    @property
    def queued(self) -> list[JobHandle]:
        """The jobs waiting for the engine thread, in the order they will run."""
        return [h for h in self._work.snapshot() if not h.done]

    def move(self, handle: JobHandle, offset: int) -> bool:
        """Move a queued job `offset` places in the queue (negative: sooner); False when it cannot move."""
        moved = self._work.move(handle, offset)
        if moved:
            self.queueChanged.emit()
        return moved

    def cancel(self, handle: JobHandle) -> None:
        """Cancel one job: a queued one leaves the queue at once (it never starts), a running one stops at its
        next check."""
        handle.cancel()
        if self._work.remove(handle):
            self._deliver(handle, "cancelled", None)

    @property
    def busy(self) -> bool:
        """Whether any job is queued or running."""
        return bool(self.pending)

    def submit(self, title: str, factory: JobFactory) -> JobHandle:
        """Queue a job; `factory(token)` builds its generator (it runs in the engine thread)."""
        handle = JobHandle(title, factory, self)
        # Weak: a lambda holding the handle would keep it alive through its own connections after the end.
        ref = weakref.ref(handle)
        handle.started.connect(lambda: self.jobStarted.emit(ref()))
        handle.ended.connect(lambda: self._ended(ref()))
        self._handles.append(handle)
        self._work.put(handle)
        self.queueChanged.emit()
        return handle

    @Slot(object, str, object)
    def _deliver(self, handle: JobHandle, what: str, payload: Any) -> None:
        """In the GUI thread: update the handle and emit its signals."""
        if what == "started":
            handle.state = JobState.PAUSED if handle.token.paused else JobState.RUNNING
            handle.started.emit()
            return
        if what == "event":
            handle.progressed.emit(payload)
            return
        if what == "finished":
            handle.state, handle.result = JobState.FINISHED, payload
            handle.finished.emit(payload)
        elif what == "failed":
            handle.state, handle.error = JobState.FAILED, payload
            handle.failed.emit(payload)
        else:
            handle.state, handle.result = JobState.CANCELLED, payload
            handle.cancelled.emit()
        handle.ended.emit()

    def _ended(self, handle: JobHandle | None) -> None:
        if handle is None:
            return
        if handle in self._handles:
            self._handles.remove(handle)
        # Python owns it from now on: it (its factory, result and last event) is freed once no page holds it.
        handle.setParent(None)
        self.jobEnded.emit(handle)
        self.queueChanged.emit()

    def cancel_all(self) -> None:
        """Cancel the current job and every queued one."""
        for handle in list(self._handles):
            handle.cancel()

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Cancel everything, stop the engine thread and wait for it; True when it stopped."""
        self.cancel_all()
        self._work.stop()
        stopped = self._thread.wait(timeout_ms)
        self._collector.stop()
        return bool(stopped)

    def wait_idle(self, timeout_ms: int = 60_000) -> bool:
        """For tests and scripts: process events until no job is pending (or the timeout passes)."""
        from PySide6.QtCore import QCoreApplication, QDeadlineTimer

        deadline = QDeadlineTimer(timeout_ms)
        while self.busy and not deadline.hasExpired():
            QCoreApplication.processEvents()
            QThread.msleep(5)
        QCoreApplication.processEvents()
        return not self.busy
