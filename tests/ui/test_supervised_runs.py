"""The Train page over supervised runs: a run started in one window is left going when it closes, a new
window on the same home attaches to it (progress, plot, previews) and stops it; a run whose process is
killed ends the page's job in one line and is offered for resume."""

from __future__ import annotations

import json
import os
import signal

import pytest
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.jobs import run_job
from studio.engine.supervision import ControlState, list_runs, live_runs
from studio.engine.supervision.run_folder import find_run
from studio.store.database import Store
from studio.ui.main_window import MainWindow
from studio.ui.train import TrainPage
from studio.ui.train.closing import RunClosing
from tests.supervised import no_leftover_runs  # noqa: F401 - an autouse fixture
from tests.ui.test_train_page import TINY_GAN, configure

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def page(window: MainWindow, store: Store) -> TrainPage:
    """The Train page on show, with the digits sample at 8 px in the store."""
    run_job(add_sample(store, "digits", size=8))
    window.show_page("train")
    train_page = window.page["train"]
    assert isinstance(train_page, TrainPage)
    return train_page


def start_run(qtbot: QtBot, page: TrainPage, name: str, checkpoint_every: int = 1_000_000) -> str:
    """Start a tiny endless GAN from the page; its run id once the page shows a step."""
    configure(page, name, preview_every=20)
    page.setup.threads_spin.setValue(1)
    page.setup.checkpoint_every_spin.setValue(checkpoint_every)
    qtbot.mouseClick(page.monitor.start_button, LEFT)
    qtbot.waitUntil(lambda: page.attached_run is not None and page.monitor.current_step > 0, timeout=60_000)
    assert page.attached_run is not None
    return page.attached_run


def test_a_run_left_going_is_attached_by_the_next_window_which_stops_it(
    qtbot: QtBot, window: MainWindow, page: TrainPage, store: Store, settings: QSettings
) -> None:
    run_id = start_run(qtbot, page, "left")
    first_handle = page.handle
    asked: list[str] = []

    def cancel_closing(model: str) -> RunClosing:
        asked.append(model)
        return RunClosing.CANCEL

    window.choose_run_closing = cancel_closing
    window.close()
    assert asked == ["left"] and window.isVisible() and first_handle is not None and not first_handle.done

    window.choose_run_closing = lambda model: RunClosing.LEAVE
    window.close()
    assert not window.isVisible()
    qtbot.waitUntil(lambda: first_handle.done, timeout=5_000)  # the window let go of it at once...
    assert [run.id for run in live_runs(store)] == [run_id]  # ...and the run goes on in its own process
    assert find_run(store.home, run_id).control() is ControlState.RUNNING

    second = MainWindow(store, settings)
    second.confirm_close = lambda: True
    second.choose_run_closing = lambda model: RunClosing.STOP
    qtbot.addWidget(second)
    second.show()
    second.show_page("train")
    attached = second.page["train"]
    handle = attached.handle
    assert handle is not None and attached.model_name == "left"
    # The greyed form says what the run is, not the new window's defaults.
    form = attached.setup
    assert (form.mode, form.family, form.name_edit.text(), form.steps_spin.value()) == ("new", "gan", "left", 1_000_000)
    assert form.settings() == TINY_GAN and form.dataset_combo.currentData() == "digits"
    qtbot.waitUntil(lambda: attached.run_id == run_id and attached.monitor.current_step > 0, timeout=30_000)
    seen = attached.monitor.current_step
    qtbot.waitUntil(lambda: attached.monitor.current_step > seen + 20, timeout=30_000)  # live progress
    # The whole curve, replayed from the run's first steps, is plotted.
    qtbot.waitUntil(lambda: len(attached.monitor.history.curve("d_loss")[0]) > 2, timeout=20_000)
    events = [json.loads(line) for line in find_run(store.home, run_id).events_file.read_text().splitlines()]
    first = next(event["step"] for event in events if event["event"] == "progress")
    assert min(attached.monitor.history.curve("d_loss")[0]) == first <= seen
    qtbot.waitUntil(lambda: "d_loss" in attached.monitor.curves, timeout=10_000)
    grid = attached.monitor.preview_grid
    qtbot.waitUntil(lambda: grid.pixmap() is not None and not grid.pixmap().isNull(), timeout=30_000)
    assert not attached.monitor.start_button.isEnabled() and attached.monitor.cancel_button.isEnabled()

    qtbot.mouseClick(attached.monitor.pause_button, LEFT)  # through control.json
    qtbot.waitUntil(lambda: list_runs(store)[0].state == "paused", timeout=10_000)
    qtbot.mouseClick(attached.monitor.pause_button, LEFT)
    qtbot.waitUntil(lambda: list_runs(store)[0].state == "running", timeout=10_000)

    with qtbot.waitSignal(handle.ended, timeout=60_000):
        qtbot.mouseClick(attached.monitor.cancel_button, LEFT)
    assert handle.state == "cancelled" and handle.result.status == "cancelled" and handle.result.model == "left"
    assert "Cancelled" in attached.monitor.status_label.text()
    assert live_runs(store) == [] and list_runs(store)[0].state == "cancelled"
    second.close()


def test_a_killed_run_ends_in_one_line_and_is_offered_for_resume(
    qtbot: QtBot, window: MainWindow, page: TrainPage, store: Store
) -> None:
    run_id = start_run(qtbot, page, "doomed", checkpoint_every=25)
    handle = page.handle
    assert handle is not None
    qtbot.waitUntil(lambda: "checkpoint: step" in page.monitor.checkpoint_label.text(), timeout=30_000)
    with qtbot.waitSignal(handle.ended, timeout=30_000):
        os.kill(find_run(store.home, run_id).info()["pid"], signal.SIGKILL)
    assert handle.state == "failed"
    title, message = window.last_error
    assert title == "Training failed" and message.startswith("the run's process ended unexpectedly at step ")
    assert "\n" not in message and message.endswith("is kept: resume it")
    page.refresh()
    assert page.setup.interrupted_banner.isVisible() and "'doomed'" in page.setup.interrupted_label.text()
