"""The job queue panel through the real window: see the jobs, reorder the queued ones, cancel any one."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.ui.jobs import JobState
from studio.ui.main_window import MainWindow
from tests.ui.helpers import slow_job


def test_queued_jobs_are_listed_reordered_and_cancelled_one_by_one(qtbot: QtBot, window: MainWindow) -> None:
    panel = window.job_queue
    assert panel.dock is not None and panel.toggle_button is not None
    assert not panel.dock.isVisible()
    window.show()
    qtbot.mouseClick(panel.toggle_button, Qt.MouseButton.LeftButton)
    assert panel.dock.isVisible()
    started: list[str] = []
    window.runner.jobStarted.connect(lambda handle: started.append(handle.title))

    running = window.runner.submit("Long", slow_job(2_000))
    first = window.runner.submit("First", slow_job(1))
    second = window.runner.submit("Second", slow_job(1))
    third = window.runner.submit("Third", slow_job(1))
    qtbot.waitUntil(lambda: running.state is JobState.RUNNING)
    assert panel.jobs == [running, first, second, third]
    assert panel.list.item(0).text().startswith("\u25b6 Long — running")
    assert panel.list.item(1).text() == "1. First — queued"
    assert panel.toggle_button.text() == "Jobs (4)"

    # The running job cannot move; the last queued one cannot go further down.
    panel.choose(running)
    assert not panel.up_button.isEnabled() and not panel.down_button.isEnabled()
    panel.choose(third)
    assert panel.up_button.isEnabled() and not panel.down_button.isEnabled()
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.up_button, Qt.MouseButton.LeftButton)
    assert window.runner.queued == [third, first, second]
    assert panel.jobs == [running, third, first, second] and panel.chosen() is third

    # Cancelling a queued job takes it out at once; the running one goes on.
    panel.choose(first)
    with qtbot.waitSignal(first.cancelled, timeout=2_000):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert first.state is JobState.CANCELLED and running.state is JobState.RUNNING
    assert panel.jobs == [running, third, second]

    # Cancelling the running job lets the queue go on, in its new order.
    panel.choose(running)
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle(10_000)
    assert running.state is JobState.CANCELLED
    assert started == ["Long", "Third", "Second"]
    assert third.result == "done" and second.result == "done"
    assert not panel.list.item(0).flags() & Qt.ItemFlag.ItemIsSelectable  # the "No jobs" line
    assert panel.toggle_button.text() == "Jobs"


def test_the_panel_renders(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    panel = window.job_queue
    running = window.runner.submit("Generate 8 images with gan-1", slow_job(1_000))
    window.runner.submit("Export 12 images", slow_job(1))
    window.runner.submit("Train vae-2", slow_job(1))
    qtbot.waitUntil(lambda: running.state is JobState.RUNNING)
    panel.resize(640, 150)
    panel.refresh()
    assert panel.grab().save(str(tmp_path / "queue.png"))
    window.runner.cancel_all()
    assert window.runner.wait_idle(10_000)
