"""The Train page's History tab through the real window: past runs' curves after a restart, runs overlaid
in their colours, TensorBoard smoothing from the slider, CSV export, and a run cancelled on the page."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_history import run_curves, smooth
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.ui.main_window import MainWindow
from studio.ui.train import TrainPage
from studio.ui.train.history import TrainHistory

TINY_GAN: dict[str, Any] = {"width": 8, "latent_dim": 8, "batch_size": 8}
LEFT = Qt.MouseButton.LeftButton


def trained_twice(home: DataHome, name: str = "past") -> None:
    """A model trained 8 steps, then resumed to 14, by another 'process' (its own store, closed after)."""
    other = open_store(home)
    try:
        run_job(add_sample(other, "digits", size=8))
        first = TrainOptions(
            name, family="gan", dataset="digits", steps=8, settings=TINY_GAN, device="cpu", preview_count=0
        )
        run_job(train(other, first.with_changes(preview_every=4, milestone_every=0)))
        run_job(train(other, TrainOptions(name, steps=14, resume=True, preview_every=4, milestone_every=0)))
    finally:
        other.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home where a model was trained and resumed, made once for this module's tests."""
    root = tmp_path_factory.mktemp("trained") / "home"
    trained_twice(DataHome(root).ensure())
    return root


@pytest.fixture
def restarted(qtbot: QtBot, isolated_home: Path, template: Path, settings: QSettings) -> Iterator[MainWindow]:
    """A window opened (as after a restart) on a copy of that home."""
    shutil.copytree(template, isolated_home, dirs_exist_ok=True)
    store = open_store(DataHome(isolated_home))
    main = MainWindow(store, settings)
    main.confirm_close = lambda: True
    qtbot.addWidget(main)
    main.show()
    yield main
    main.close()
    store.close()


def open_history(qtbot: QtBot, window: MainWindow) -> tuple[TrainPage, TrainHistory]:
    window.show_page("train")
    page = window.page["train"]
    assert isinstance(page, TrainPage)
    history = page.history
    qtbot.waitUntil(lambda: len(history.curves) > 0, timeout=10_000)
    return page, history


def drawn(history: TrainHistory) -> dict[tuple[int, str], tuple[np.ndarray, np.ndarray, str]]:
    """The plot's smoothed curves: (run id, tag) -> (steps, values, colour)."""
    found = {}
    for key, item in history.drawn.items():
        assert item in history.plot.getPlotItem().listDataItems()
        x, y = item.getData()
        found[key] = (np.asarray(x), np.asarray(y), item.opts["pen"].color().name())
    return found


def faint_curves(history: TrainHistory) -> list[Any]:
    """The raw curves drawn faintly behind the smoothed ones."""
    smoothed = list(history.drawn.values())
    return [i for i in history.plot.getPlotItem().listDataItems() if i not in smoothed]


def test_the_page_opens_on_the_latest_run_of_a_model_after_a_restart(qtbot: QtBot, restarted: MainWindow) -> None:
    page, history = open_history(qtbot, restarted)
    assert page.monitor.plot_tabs.currentWidget() is history  # nothing trains: the history is shown
    assert history.model_combo.currentData() == "past"
    assert history.run_list.count() == 2
    latest = history.curves[-1]
    assert history.ticked_runs() == [latest.run.id]
    assert "completed" in history.run_list.item(1).text() and "8-14" in history.run_list.item(1).text()
    legend = [label.text for _, label in history.legend.items]
    assert sorted(legend) == sorted(s.name for s in latest.series if s.kind == "loss")  # a dash per loss
    history.smoothing_slider.setValue(0)
    curves = drawn(history)
    series = latest.get("loss/g_loss")
    assert series is not None
    steps, values, _ = curves[(latest.run.id, "loss/g_loss")]
    assert steps.tolist() == list(range(9, 15)) and np.allclose(values, series.values)


def test_runs_overlay_in_their_colours_and_the_step_axis_continues(qtbot: QtBot, restarted: MainWindow) -> None:
    _, history = open_history(qtbot, restarted)
    first, second = history.curves
    history.run_list.item(0).setCheckState(Qt.CheckState.Checked)  # as a click on its box does
    assert history.ticked_runs() == [first.run.id, second.run.id]
    curves = drawn(history)
    early, late = curves[(first.run.id, "loss/d_loss")], curves[(second.run.id, "loss/d_loss")]
    assert early[0].tolist() == list(range(1, 9)) and late[0].tolist() == list(range(9, 15))
    assert early[2] != late[2]  # one colour per run
    assert curves[(first.run.id, "loss/g_loss")][2] == early[2]  # a run's losses share its colour
    index = history.metric_combo.findData("diagnostic/diversity")
    history.metric_combo.setCurrentIndex(index)
    tag = "diagnostic/diversity"
    assert sorted(drawn(history)) == [(first.run.id, tag), (second.run.id, tag)]
    assert drawn(history)[(second.run.id, tag)][0].tolist() == [12]  # diagnostics every 4 steps: 12 only


def test_the_slider_smooths_as_tensorboard_does(qtbot: QtBot, restarted: MainWindow) -> None:
    _, history = open_history(qtbot, restarted)
    latest = history.curves[-1]
    raw = latest.get("loss/d_loss")
    assert raw is not None
    name = (latest.run.id, "loss/d_loss")
    history.smoothing_slider.setValue(90)
    assert "0.90" in history.smoothing_label.text()
    assert np.allclose(drawn(history)[name][1], smooth(raw.values, 0.9))
    faint = faint_curves(history)
    assert faint and any(np.allclose(i.getData()[1], raw.values) for i in faint)  # the raw values, faintly
    history.smoothing_slider.setValue(0)
    assert np.allclose(drawn(history)[name][1], raw.values)
    assert not faint_curves(history)


def test_export_writes_the_ticked_runs_as_csv(
    qtbot: QtBot, restarted: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, history = open_history(qtbot, restarted)
    target = tmp_path / "history.csv"
    monkeypatch.setattr(
        "studio.ui.train.history.QFileDialog.getSaveFileName", lambda *args, **kwargs: (str(target), "CSV (*.csv)")
    )
    qtbot.mouseClick(history.export_button, LEFT)
    qtbot.waitUntil(lambda: history.last_export is not None, timeout=10_000)
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    latest = history.curves[-1].run.id
    assert [(int(r["run"]), int(r["step"])) for r in rows] == [(latest, s) for s in range(9, 15)]
    history.tick_runs([])
    assert not history.export_button.isEnabled()


def test_a_run_cancelled_on_the_page_keeps_its_curves_in_the_history(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    run_job(add_sample(store, "digits", size=8))
    window.show_page("train")
    page = window.page["train"]
    assert isinstance(page, TrainPage)
    page.setup.set_mode("new")
    page.setup.set_family("gan")
    page.setup.set_dataset("digits")
    page.setup.name_edit.setText("stopped")
    page.setup.set_settings(TINY_GAN)
    page.setup.steps_check.setChecked(True)
    page.setup.steps_spin.setValue(1_000_000)
    page.setup.minutes_check.setChecked(False)
    qtbot.mouseClick(page.monitor.start_button, LEFT)
    assert page.monitor.plot_tabs.currentIndex() == 0  # the live plot while it trains
    qtbot.waitUntil(lambda: page.monitor.current_step >= 3, timeout=20_000)
    qtbot.mouseClick(page.monitor.cancel_button, LEFT)
    handle = page.handle
    assert handle is not None
    qtbot.waitUntil(lambda: handle.done, timeout=20_000)
    page.monitor.plot_tabs.setCurrentWidget(page.history)
    page.show_history()
    qtbot.waitUntil(lambda: page.history.model == "stopped" and len(page.history.curves) == 1, timeout=10_000)
    (run,) = run_curves(store, "stopped")
    assert run.run.status == "cancelled" and "cancelled" in page.history.run_list.item(0).text()
    loss = run.get("loss/g_loss")
    assert loss is not None and loss.steps[-1] == run.run.end_step >= 3
    assert drawn(page.history)[(run.run.id, "loss/g_loss")][0].tolist() == loss.steps.tolist()
