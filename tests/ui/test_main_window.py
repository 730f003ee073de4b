"""The main window: pages, names, status bar, remembered state, the job runner, closing during a job."""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.jobs import CancelToken, Finished, Progress, run_job
from studio.errors import StudioError
from studio.store.database import Store
from studio.ui.main_window import MainWindow
from studio.ui.pages import PAGES
from tests.ui.helpers import slow_job

PAGE_NAMES = (
    "datasetsPage",
    "trainPage",
    "modelsPage",
    "generatePage",
    "galleryPage",
    "mapPage",
    "interpolatePage",
    "inpaintPage",
)


def test_every_page_is_there_with_stable_names(window: MainWindow) -> None:
    assert [window.page[key].objectName() for key, *_ in PAGES] == list(PAGE_NAMES)
    for key, title, *_ in PAGES:
        assert window.page[key].accessibleName() == title
    for name in ("sidebar", "deviceLabel", "jobCancelButton", "jobProgress"):
        assert window.findChild(object, name) is not None, name
    assert "torch:" in window.device_label.text() and "ONNX Runtime:" in window.device_label.text()


def test_geometry_and_last_page_are_remembered(qtbot: QtBot, store: Store, settings: QSettings) -> None:
    first = MainWindow(store, settings)
    qtbot.addWidget(first)
    first.show()
    first.show_page("gallery")
    first.resize(790, 590)  # inside the offscreen screen (800x600), so nothing clamps it
    qtbot.wait(50)
    size = first.size()
    first.close()
    second = MainWindow(store, settings)
    qtbot.addWidget(second)
    second.show()
    assert second.current_key == "gallery" and second.size() == size
    second.close()


def test_shortcuts_switch_pages(qtbot: QtBot, window: MainWindow) -> None:
    from PySide6.QtCore import Qt

    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.current_key == "models"


def test_jobs_run_off_the_gui_thread_and_report_through_signals(qtbot: QtBot, window: MainWindow) -> None:
    import threading

    threads: list[str] = []

    def factory(token: CancelToken) -> Iterator[object]:
        threads.append(threading.current_thread().name)
        yield Progress("a", 1, 2)
        yield Finished(42)

    handle = window.runner.submit("answer", factory)
    with qtbot.waitSignal(handle.finished, timeout=5000) as blocker:
        pass
    assert blocker.args == [42] and threads and threads[0] != threading.main_thread().name
    assert isinstance(handle.last_event, Progress)
    failing = window.runner.submit("broken", lambda token: iter([_raise(StudioError("bad input: x"))]))
    with qtbot.waitSignal(failing.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["bad input: x"]
    assert window.runner.wait_idle(5000)


def _raise(error: Exception) -> object:
    raise error


def test_queued_jobs_and_cancel_from_the_status_bar(qtbot: QtBot, window: MainWindow) -> None:
    first = window.runner.submit("first", slow_job(500))
    second = window.runner.submit("second", slow_job(3))
    qtbot.waitUntil(lambda: first.state == "running" and window.job_cancel.isVisible(), timeout=5000)
    assert "first" in window.job_label.text()
    qtbot.mouseClick(window.job_cancel, __import__("PySide6.QtCore").QtCore.Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(second.finished, timeout=10_000):
        pass
    assert first.state == "cancelled" and second.result == "done"
    qtbot.waitUntil(lambda: not window.job_cancel.isVisible(), timeout=5000)


def test_closing_during_a_job_asks_then_cancels_cleanly(qtbot: QtBot, store: Store, settings: QSettings) -> None:
    main = MainWindow(store, settings)
    qtbot.addWidget(main)
    handle = main.runner.submit("long", slow_job(100_000))
    qtbot.waitUntil(lambda: handle.state == "running", timeout=5000)
    main.confirm_close = lambda: False
    assert (not main.close() and main.isVisible() is False) or handle.state == "running"
    main.confirm_close = lambda: True
    assert main.close()
    assert not main.runner._thread.isRunning()


def test_window_lists_datasets_with_previews(window: MainWindow, store: Store) -> None:
    run_job(add_sample(store, "digits", size=8))
    run_job(add_sample(store, "shapes", count=20, size=16))
    page = window.page["datasets"]
    page.refresh()
    assert page.list.count() == 2


def test_the_app_never_forks_import_workers(window: MainWindow) -> None:
    """Qt's engine thread is invisible to `threading`; forking beside it can deadlock a worker."""
    from studio.engine.datasets.importer import _process_context

    assert _process_context().get_start_method() != "fork"


def test_pyside_keeps_none_alive() -> None:
    """PySide6 6.12.0 dropped a reference to None on every void call: Python 3.11 then aborts
    (none_dealloc) after enough repaints. pyproject pins a release without the bug."""
    import sys

    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(200):
        probe.setObjectName("probe")
    assert sys.getrefcount(None) - before > -50
