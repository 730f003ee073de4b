"""UI test fixtures: a fresh QSettings per test, a main window, and a guard that fails any test that
leaves a QThread, a QTimer or a Python thread running (as napari's test suite does)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QSettings, QThread, QThreadPool, QTimer
from pytestqt.qtbot import QtBot

from studio.store.database import Store

_started_threads: list[QThread] = []
_started_timers: list[QTimer] = []
_original_thread_start = QThread.start
_original_timer_start = QTimer.start


def _tracking_thread_start(self: QThread, *args: object) -> None:
    _started_threads.append(self)
    _original_thread_start(self, *args)


def _tracking_timer_start(self: QTimer, *args: object) -> None:
    _started_timers.append(self)
    _original_timer_start(self, *args)


QThread.start = _tracking_thread_start  # type: ignore[method-assign]
QTimer.start = _tracking_timer_start  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def no_leftover_threads_or_timers(qtbot: QtBot) -> Iterator[None]:
    """Fail the test if it leaves a QThread, an active QTimer, a pool task or a Python thread behind."""
    _started_threads.clear()
    _started_timers.clear()
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        qtbot.wait(10)
        running = [t for t in _started_threads if shiboken6.isValid(t) and t.isRunning()]
        active = [t for t in _started_timers if shiboken6.isValid(t) and t.isActive()]
        pool = QThreadPool.globalInstance().activeThreadCount()
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
        if not (running or active or pool or extra):
            return
    names = [t.objectName() or type(t).__name__ for t in running]
    timers = [t.objectName() or f"interval {t.interval()} ms" for t in active]
    pytest.fail(f"left running: QThreads {names}, QTimers {timers}, pool tasks {pool}, threads {extra}")


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """An INI QSettings private to the test (never the user's)."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot: QtBot, store: Store, settings: QSettings) -> Iterator[object]:
    """The main window on a fresh data home; closed (engine thread stopped) after the test."""
    from studio.ui.main_window import MainWindow

    main = MainWindow(store, settings)
    main.confirm_close = lambda: True
    main.choose_run_closing = lambda model: "stop"  # a run left going is stopped, never waited on
    qtbot.addWidget(main)
    main.show()
    yield main
    main.close()
