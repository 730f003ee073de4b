"""The one way a page runs work: EngineOp through the engine thread, QueryOp through a thread pool."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest
import shiboken6
from PySide6.QtCore import QObject, QThread
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from studio.engine.jobs import CancelToken, Finished, Progress
from studio.errors import StudioError
from studio.ui.jobs import JobRunner, JobState
from studio.ui.operations import EngineOp, QueryOp


class _Context:
    """What EngineOp needs of the app's context: a runner, and somewhere for errors to go."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        self.errors: list[tuple[str, str]] = []

    def error(self, title: str, message: str) -> None:
        self.errors.append((title, message))


@pytest.fixture
def context(qtbot: QtBot) -> Iterator[_Context]:
    runner = JobRunner()
    yield _Context(runner)
    assert runner.shutdown()


def _refuse() -> int:
    raise StudioError("no such item")


def test_query_answers_in_the_gui_thread_and_failures_are_one_line(qtbot: QtBot) -> None:
    page = QWidget()
    qtbot.addWidget(page)
    answers: list[tuple[int, bool]] = []
    gui = threading.get_ident()
    QueryOp(page, lambda: threading.get_ident()).success(
        lambda worker: answers.append((worker, threading.get_ident() == gui))
    ).run_in_background()
    qtbot.waitUntil(lambda: len(answers) == 1)
    assert answers[0][0] != gui and answers[0][1]  # read in the pool, answered in the GUI thread
    reasons: list[str] = []
    QueryOp(page, lambda: 1 // 0).failure(reasons.append).run_in_background()
    QueryOp(page, lambda: (_ for _ in ()).throw(StudioError("no such item"))).failure(
        reasons.append
    ).run_in_background()
    qtbot.waitUntil(lambda: len(reasons) == 2)
    assert sorted(reasons) == ["ZeroDivisionError: integer division or modulo by zero", "no such item"]


def test_only_the_newest_query_of_a_key_is_answered(qtbot: QtBot) -> None:
    page = QWidget()
    qtbot.addWidget(page)
    release = threading.Event()
    answers: list[int] = []

    def read(value: int) -> int:
        release.wait(5)
        return value

    for value in range(5):
        QueryOp(page, lambda value=value: read(value)).latest_only("filter").success(answers.append).run_in_background()
    release.set()
    qtbot.waitUntil(lambda: 4 in answers)
    qtbot.wait(50)
    assert answers == [4]


def test_a_destroyed_parent_gets_no_answer_and_its_keys_are_forgotten(qtbot: QtBot) -> None:
    parent = QObject()
    release = threading.Event()
    answers: list[int] = []
    QueryOp(parent, lambda: release.wait(5) and 1).latest_only("k").success(answers.append).run_in_background()
    parent_id = id(parent)
    assert any(entry[0] == parent_id for entry in QueryOp._latest)
    parent.deleteLater()
    qtbot.waitUntil(lambda: parent_id not in QueryOp._watched)
    release.set()
    qtbot.wait(100)
    assert answers == [] and not any(entry[0] == parent_id for entry in QueryOp._latest)


def test_engine_op_callbacks_run_in_the_gui_thread_in_order(qtbot: QtBot, context: _Context) -> None:
    seen: list[str] = []
    gui = QThread.currentThread()

    def job(token: CancelToken) -> Iterator[object]:
        yield Progress("working", 1, 2)
        token.check()
        yield Finished(42)

    handle = (
        EngineOp[int](context, "A job", job)
        .started(lambda: seen.append("started"))
        .on_event(lambda event: seen.append(f"event {event.done}/{event.total}"))
        .success(lambda result: seen.append(f"success {result} {QThread.currentThread() is gui}"))
        .ended(lambda: seen.append("ended"))
        .run()
    )
    qtbot.waitUntil(lambda: handle.done)
    qtbot.waitUntil(lambda: "ended" in seen)
    assert seen == ["started", "event 1/2", "success 42 True", "ended"] and handle.state is JobState.FINISHED


def test_engine_op_failure_goes_to_its_callback_or_to_the_window(qtbot: QtBot, context: _Context) -> None:
    def failing(token: CancelToken) -> Iterator[object]:
        raise StudioError("the disk is full")
        yield  # a generator

    reasons: list[str] = []
    first = EngineOp(context, "Export", failing).failure(reasons.append).run()
    second = EngineOp(context, "Import", failing).run()
    qtbot.waitUntil(lambda: first.done and second.done)
    assert reasons == ["the disk is full"] and context.errors == [("Import", "the disk is full")]
    assert first.state is JobState.FAILED and first.error_shown and second.error_shown


def test_a_read_for_a_destroyed_parent_does_no_work(qtbot: QtBot) -> None:
    from PySide6.QtCore import QThreadPool

    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    release = threading.Event()
    ran: list[str] = []
    parent = QObject()
    QueryOp(parent, lambda: release.wait(5), pool=pool).run_in_background()  # holds the pool's one thread
    QueryOp(parent, lambda: ran.append("read"), pool=pool).run_in_background()
    parent.deleteLater()
    qtbot.waitUntil(lambda: not shiboken6.isValid(parent))
    release.set()
    assert pool.waitForDone(5000)
    qtbot.wait(50)
    assert ran == []


def test_an_ended_job_handle_is_freed_once_nobody_holds_it(qtbot: QtBot, context: _Context) -> None:
    def job(token: CancelToken) -> Iterator[object]:
        yield Finished(bytearray(10))

    def failing(token: CancelToken) -> Iterator[object]:
        raise StudioError("no")
        yield  # a generator

    refs = []
    for factory in (job, failing):
        handle = EngineOp(context, "A job", factory).run()
        qtbot.waitUntil(lambda handle=handle: handle.done)
        assert context.runner.wait_idle(5000)
        assert handle.parent() is None and handle.done  # still usable by a page that holds it
        refs.append(weakref.ref(handle))
        del handle
    gc.collect()
    assert [ref() for ref in refs] == [None, None]
