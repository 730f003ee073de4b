"""The one way a page runs work: `EngineOp` for engine jobs, `QueryOp` for short reads off the GUI thread.

Shaped after Anki's `CollectionOp(...).success(...).failure(...).run_in_background()`:

    EngineOp(context, "Export gan-1", lambda token: export_model(store, "gan-1", cancel=token)) \\
        .on_event(show_progress).success(show_result).run()

    QueryOp(page, lambda: repository.facets(filters)).success(fill_lists).run_in_background()

Every callback runs in the GUI thread, so it may touch widgets. An engine op runs in the JobRunner's
one engine thread (jobs queue); a query runs in a thread pool and its answer is dropped when the page
that asked is gone or, with `latest_only`, when a newer query of the same key was asked for since.
"""

from __future__ import annotations

import itertools
import sys
import traceback
import weakref
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

import shiboken6
from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

from studio.errors import StudioError
from studio.ui.jobs import JobFactory, JobHandle, JobRunner, JobState

T = TypeVar("T")

__all__ = ["EngineOp", "JobHandle", "JobState", "QueryHandle", "QueryOp", "error_text"]


def error_text(error: BaseException) -> str:
    """A one-line reason for an exception: a StudioError's own words, else its type and first line."""
    if isinstance(error, StudioError):
        return str(error)
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


class EngineOp(Generic[T]):
    """An engine job (a generator of events) for the engine thread, with GUI-thread callbacks.

    `context` is anything with a `runner` (a JobRunner) and an `error(title, message)` method: a failure
    with no `failure` callback opens the window's error dialog once.
    """

    def __init__(self, context: Any, title: str, factory: JobFactory) -> None:
        self.context = context
        self.title = title
        self.factory = factory
        self._on_event: list[Callable[[Any], None]] = []
        self._on_success: list[Callable[[T], None]] = []
        self._on_failure: list[Callable[[str], None]] = []
        self._on_cancelled: list[Callable[[], None]] = []
        self._on_started: list[Callable[[], None]] = []
        self._on_ended: list[Callable[[], None]] = []

    def on_event(self, callback: Callable[[Any], None]) -> EngineOp[T]:
        """Call `callback(event)` for every event the job yields before its result (Progress, ...)."""
        self._on_event.append(callback)
        return self

    def started(self, callback: Callable[[], None]) -> EngineOp[T]:
        """Call `callback()` when the engine thread picks the job up."""
        self._on_started.append(callback)
        return self

    def success(self, callback: Callable[[T], None]) -> EngineOp[T]:
        """Call `callback(result)` when the job finishes."""
        self._on_success.append(callback)
        return self

    def failure(self, callback: Callable[[str], None]) -> EngineOp[T]:
        """Call `callback(reason)` when the job fails (instead of the window's error dialog)."""
        self._on_failure.append(callback)
        return self

    def cancelled(self, callback: Callable[[], None]) -> EngineOp[T]:
        """Call `callback()` when the job is cancelled."""
        self._on_cancelled.append(callback)
        return self

    def ended(self, callback: Callable[[], None]) -> EngineOp[T]:
        """Call `callback()` last, however the job ended."""
        self._on_ended.append(callback)
        return self

    def run(self) -> JobHandle:
        """Queue the job on the engine thread; the handle pauses, resumes or cancels it."""
        runner: JobRunner = self.context.runner
        handle = runner.submit(self.title, self.factory)
        for callback in self._on_started:
            handle.started.connect(callback)
        for event_callback in self._on_event:
            handle.progressed.connect(event_callback)
        for success_callback in self._on_success:
            handle.finished.connect(success_callback)
        ref = weakref.ref(handle)  # weak: the connection must not keep an ended handle alive
        handle.failed.connect(lambda message: self._failed(ref(), message))
        for cancelled_callback in self._on_cancelled:
            handle.cancelled.connect(cancelled_callback)
        for ended_callback in self._on_ended:
            handle.ended.connect(ended_callback)
        return handle

    def _failed(self, handle: JobHandle | None, message: str) -> None:
        if handle is not None:
            handle.error_shown = True  # the window adds no dialog of its own
        if self._on_failure:
            for callback in self._on_failure:
                callback(message)
        else:
            self.context.error(self.title, message)


class _QueryRelay(QObject):
    """Lives in the GUI thread: a pool task emits through it, so answers arrive queued in the GUI thread."""

    answered = Signal(object, bool, object)  # QueryHandle, succeeded, result or reason


class QueryHandle:
    """One query in flight: `cancel()` drops its answer (it cannot interrupt a read already running)."""

    def __init__(self, key: object | None, serial: int) -> None:
        self.key = key
        self.serial = serial
        self.cancelled = False
        self.done = False

    def cancel(self) -> None:
        """Forget the answer: no callback will run."""
        self.cancelled = True


class _QueryTask(QRunnable):
    def __init__(self, op: QueryOp[Any], handle: QueryHandle) -> None:
        super().__init__()
        self.op = op
        self.handle = handle

    def run(self) -> None:
        """In a pool thread: the read, then one queued emit (a pool thread must never die of an error)."""
        # isValid only reads the wrapper's state: safe here; a destroyed page's read does no work.
        if self.handle.cancelled or self.op.superseded(self.handle) or not shiboken6.isValid(self.op.parent):
            self.op.relay.answered.emit(self.handle, False, None)
            return
        try:
            result = self.op.work()
        except Exception as error:  # noqa: BLE001 - reported in the GUI thread as one line
            if not isinstance(error, StudioError):
                traceback.print_exc(file=sys.stderr)
            self.op.relay.answered.emit(self.handle, False, error_text(error))
            return
        self.op.relay.answered.emit(self.handle, True, result)


class QueryOp(Generic[T]):
    """A short read (database, files, numpy) in a thread pool, its answer delivered in the GUI thread.

    `parent` owns the op: when it is destroyed, late answers are dropped. `latest_only(key)` drops the
    answer of any query superseded by a newer one with the same key (a filter typed twice quickly).
    """

    _serials: ClassVar[itertools.count[int]] = itertools.count(1)
    _latest: ClassVar[dict[tuple[int, object], int]] = {}  # (id of parent, key) -> newest serial
    _watched: ClassVar[set[int]] = set()  # parents whose keys are forgotten when they are destroyed
    _in_flight: ClassVar[set[QueryOp[Any]]] = set()  # kept alive until answered: the queued answer needs the relay

    def __init__(self, parent: QObject, work: Callable[[], T], pool: QThreadPool | None = None) -> None:
        self.parent = parent
        self.work = work
        self.pool = pool or QThreadPool.globalInstance()
        self.relay = _QueryRelay()
        self.relay.answered.connect(self._answered, Qt.ConnectionType.QueuedConnection)
        self._key: object | None = None
        self._on_success: list[Callable[[T], None]] = []
        self._on_failure: list[Callable[[str], None]] = []
        self._on_ended: list[Callable[[], None]] = []
        self._on_dropped: list[Callable[[], None]] = []
        self._priority = 0

    def success(self, callback: Callable[[T], None]) -> QueryOp[T]:
        """Call `callback(result)` in the GUI thread when the read succeeds."""
        self._on_success.append(callback)
        return self

    def failure(self, callback: Callable[[str], None]) -> QueryOp[T]:
        """Call `callback(reason)` in the GUI thread when the read raises (default: print the reason)."""
        self._on_failure.append(callback)
        return self

    def ended(self, callback: Callable[[], None]) -> QueryOp[T]:
        """Call `callback()` after success or failure (not for a dropped answer)."""
        self._on_ended.append(callback)
        return self

    def dropped(self, callback: Callable[[], None]) -> QueryOp[T]:
        """Call `callback()` when the read ran but a newer query of its key had been asked for meanwhile (so
        its answer is dropped); for counting overtaken reads. A read skipped before it ran calls nothing."""
        self._on_dropped.append(callback)
        return self

    def latest_only(self, key: object) -> QueryOp[T]:
        """Only the newest query of `key` (per parent) is answered; older ones are skipped or dropped."""
        self._key = key
        return self

    def priority(self, value: int) -> QueryOp[T]:
        """The pool's priority for this read (higher runs first)."""
        self._priority = value
        return self

    def superseded(self, handle: QueryHandle) -> bool:
        """Whether a newer query of the same key was asked for after `handle`'s."""
        if handle.key is None:
            return False
        return self._latest.get((id(self.parent), handle.key), handle.serial) != handle.serial

    def run_in_background(self) -> QueryHandle:
        """Start the read in the pool; the handle can drop its answer."""
        handle = QueryHandle(self._key, next(self._serials))
        if self._key is not None:
            parent_id = id(self.parent)
            self._latest[(parent_id, self._key)] = handle.serial
            if parent_id not in QueryOp._watched:
                # Without this the table would grow with every page ever built, and a new object given
                # a dead one's id would inherit its serials.
                QueryOp._watched.add(parent_id)
                self.parent.destroyed.connect(lambda *_: QueryOp._forget(parent_id))
        QueryOp._in_flight.add(self)
        self.pool.start(_QueryTask(self, handle), self._priority)
        return handle

    @classmethod
    def _forget(cls, parent_id: int) -> None:
        for entry in [entry for entry in cls._latest if entry[0] == parent_id]:
            del cls._latest[entry]
        cls._watched.discard(parent_id)

    @Slot(object, bool, object)
    def _answered(self, handle: QueryHandle, succeeded: bool, payload: Any) -> None:
        handle.done = True
        QueryOp._in_flight.discard(self)
        if handle.cancelled or not shiboken6.isValid(self.parent):
            return
        if self.superseded(handle):
            if succeeded or payload is not None:  # it ran (a read skipped before running has nothing to drop)
                for dropped_callback in self._on_dropped:
                    dropped_callback()
            return
        if succeeded:
            for callback in self._on_success:
                callback(payload)
        elif payload is not None:
            if self._on_failure:
                for failure_callback in self._on_failure:
                    failure_callback(payload)
            else:
                print(f"studio: a background read failed: {payload}", file=sys.stderr)
        else:
            return  # skipped before it ran: nothing to report
        for ended_callback in self._on_ended:
            ended_callback()
