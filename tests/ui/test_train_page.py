"""The Train page: a real tiny training run through the window, with live losses, previews, pause,
resume, cancel, resume of an interrupted run, fine-tuning, readable refusals and engine errors."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from studio.engine.datasets.samples import add_sample
from studio.engine.datasets.storage import delete_dataset
from studio.engine.families.registry import trainable_family_names
from studio.engine.jobs import run_job
from studio.engine.library import get_model, list_models
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.store.database import Store
from studio.store.tables import TrainingRun
from studio.ui.jobs import JobHandle
from studio.ui.main_window import MainWindow
from studio.ui.train import TrainPage

TINY_GAN: dict[str, Any] = {"width": 8, "latent_dim": 8, "batch_size": 8}
LEFT = Qt.MouseButton.LeftButton
CONTROLS = (
    "trainFamilyCombo",
    "trainNewRadio",
    "trainFinetuneRadio",
    "trainResumeRadio",
    "trainSourceModelCombo",
    "trainDatasetCombo",
    "trainNameEdit",
    "trainStepsCheck",
    "trainStepsSpin",
    "trainMinutesCheck",
    "trainMinutesSpin",
    "trainSeedSpin",
    "trainPreviewEverySpin",
    "trainCheckpointEverySpin",
    "trainThreadsSpin",
    "trainStartButton",
    "trainPauseButton",
    "trainCancelButton",
    "trainResumeInterruptedButton",
    "lossPlot",
    "previewGrid",
    "trainStepLabel",
    "trainSpeedLabel",
    "trainEtaLabel",
    "trainWarningBanner",
    "trainResultLabel",
)


@pytest.fixture
def page(window: MainWindow, store: Store) -> TrainPage:
    """The Train page on show, with the digits sample at 8 px in the store."""
    run_job(add_sample(store, "digits", size=8))
    window.show_page("train")  # showing the page refreshes it from the store
    train_page = window.page["train"]
    assert isinstance(train_page, TrainPage)
    return train_page


def configure(page: TrainPage, name: str, steps: int = 1_000_000, preview_every: int = 5) -> None:
    """A tiny GAN on digits: fast steps, frequent previews, no periodic checkpoints."""
    page.setup.set_mode("new")
    page.setup.set_family("gan")
    page.setup.set_dataset("digits")
    page.setup.name_edit.setText(name)
    page.setup.set_settings(TINY_GAN)
    page.setup.steps_check.setChecked(True)
    page.setup.steps_spin.setValue(steps)
    page.setup.minutes_check.setChecked(False)
    page.setup.preview_every_spin.setValue(preview_every)
    page.setup.checkpoint_every_spin.setValue(1_000_000)


def run_to_end(qtbot: QtBot, page: TrainPage, start: Any) -> JobHandle:
    """Start through `start()` (a click or a key) and wait for the job to end."""
    start()
    handle = page.handle
    assert handle is not None
    qtbot.waitUntil(lambda: handle.done, timeout=20_000)
    return handle


def plotted_points(page: TrainPage) -> int:
    """How many loss points the plot's curves hold."""
    return sum(len(item.getData()[0] or []) for item in page.monitor.loss_plot.getPlotItem().listDataItems())


def test_controls_have_stable_names_and_the_family_picker_explains_each_family(page: TrainPage) -> None:
    for name in CONTROLS:
        widget = page.findChild(object, name)
        assert widget is not None, name
        assert widget.accessibleName(), name
    # Every trainable family, in registry order; imported-only ones (ONNX generators) are never offered.
    offered = [page.setup.family_combo.itemData(i) for i in range(page.setup.family_combo.count())]
    assert offered == list(trainable_family_names()) and "onnx_generator" not in offered
    page.setup.set_family("gan")
    assert "mode collapse" in page.setup.family_description.text()
    assert "interpolate" in page.setup.family_capabilities.text()
    assert page.findChild(object, "trainSetting_latent_dim") is not None
    page.setup.set_family("vae")
    assert "blurry" in page.setup.family_description.text()
    assert page.findChild(object, "trainSetting_beta") is not None
    assert page.findChild(object, "trainSetting_loss") is None  # the GAN's editors are gone
    assert page.setup.dataset_combo.currentData() == "digits" and "8 px" in page.setup.dataset_combo.currentText()
    assert page.setup.name_edit.text() == "digits-vae"  # a free name is proposed until the user types one


def test_a_live_run_plots_previews_pauses_resumes_and_cancels(
    qtbot: QtBot, window: MainWindow, page: TrainPage, store: Store
) -> None:
    configure(page, "live")
    qtbot.mouseClick(page.monitor.start_button, LEFT)
    handle = page.handle
    assert handle is not None and window.runner.busy
    assert not page.monitor.start_button.isEnabled() and not page.setup.form_groups["training"].isEnabled()
    assert not page.setup.dataset_combo.isEnabledTo(page)

    grid = page.monitor.preview_grid
    qtbot.waitUntil(lambda: grid.pixmap() is not None and not grid.pixmap().isNull(), timeout=10_000)
    assert "Preview" in page.monitor.preview_step_label.text() and "diversity" in page.monitor.figures_label.text()
    qtbot.waitUntil(lambda: plotted_points(page) > 0, timeout=10_000)
    assert {"d_loss", "g_loss"} <= set(page.monitor.curves)
    assert page.monitor.speed_label.text().endswith("samples/s") and "ETA" in page.monitor.eta_label.text()
    assert "Step" in page.monitor.step_label.text() and "1,000,000" in page.monitor.step_label.text()

    qtbot.mouseClick(page.monitor.pause_button, LEFT)
    assert handle.state == "paused"
    assert page.monitor.pause_button.text() == "Resume"
    assert page.monitor.pause_button.accessibleName() == "Resume training"
    qtbot.wait(250)  # events already on their way arrive
    paused_at = page.monitor.current_step
    qtbot.wait(400)  # unpaused, a preview every 5 steps would move the step many times over
    assert page.monitor.current_step == paused_at

    qtbot.mouseClick(page.monitor.pause_button, LEFT)
    assert handle.state == "running" and page.monitor.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: page.monitor.current_step > paused_at, timeout=10_000)

    with qtbot.waitSignal(handle.ended, timeout=20_000):
        qtbot.mouseClick(page.monitor.cancel_button, LEFT)
    assert handle.state == "cancelled" and handle.result.status == "cancelled"
    saved = {model.name: model for model in list_models(store)}
    assert saved["live"].steps == handle.result.steps > paused_at  # the checkpoint on the way out
    assert "Cancelled" in page.monitor.status_label.text()
    assert page.monitor.start_button.isEnabled() and page.setup.form_groups["training"].isEnabled()
    assert not page.monitor.plot_timer.isActive() and not page.monitor.cancel_button.isEnabled()
    assert page.setup.name_edit.text() == "live-2" and not page.setup.name_hint.isVisible()  # "live" is taken now


def test_invalid_forms_give_a_readable_message_and_start_nothing(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    window.show_page("train")
    page = window.page["train"]
    page.setup.name_edit.setText("first")
    qtbot.mouseClick(page.monitor.start_button, LEFT)
    assert window.last_error == (
        "Cannot start training",
        "No dataset yet: add one on the Datasets page (for example the digits sample).",
    )
    assert page.handle is None and not window.runner.busy

    run_job(add_sample(store, "digits", size=8))
    run_job(
        train(store, TrainOptions("taken", family="gan", dataset="digits", steps=2, settings=TINY_GAN, preview_count=0))
    )
    window.context.signals.datasetsChanged.emit()  # what the Datasets page emits after an import
    configure(page, "")
    qtbot.mouseClick(page.monitor.start_button, LEFT)
    assert window.last_error[1].startswith("Give the model a name")

    page.setup.name_edit.setText("taken")
    assert page.setup.name_hint.isVisible() and "already exists" in page.setup.name_hint.text()
    qtbot.mouseClick(page.monitor.start_button, LEFT)
    assert "A model named 'taken' already exists" in window.last_error[1]

    page.setup.name_edit.setText("fresh")
    page.setup.steps_check.setChecked(False)
    qtbot.mouseClick(page.monitor.start_button, LEFT)
    assert window.last_error[1].startswith("Give a budget")
    assert page.handle is None and not window.runner.busy and page.monitor.start_button.isEnabled()
    assert [model.name for model in list_models(store)] == ["taken"]


def test_an_engine_error_is_reported_and_the_page_stays_usable(
    qtbot: QtBot, window: MainWindow, page: TrainPage, store: Store
) -> None:
    configure(page, "wrong-size", steps=20)
    # Behind the page's back, 'digits' becomes a 24 px dataset, which no family can train on.
    delete_dataset(store, "digits")
    run_job(add_sample(store, "shapes", name="digits", size=24, count=8))
    handle = run_to_end(qtbot, page, lambda: qtbot.mouseClick(page.monitor.start_button, LEFT))
    assert handle.state == "failed"
    title, message = window.last_error
    assert title == "Training failed" and "not 24 px" in message and "\n" not in message
    assert "Failed" in page.monitor.status_label.text() and page.monitor.start_button.isEnabled()

    # The page reloaded: the 24 px dataset is listed but cannot be chosen; a fitting one trains fine.
    assert page.setup.dataset_combo.currentData() is None and page.setup.dataset_combo.count() == 1
    run_job(add_sample(store, "digits", name="digits8", size=8))
    window.context.signals.datasetsChanged.emit()
    configure(page, "right-size", steps=20)
    page.setup.set_dataset("digits8")
    handle = run_to_end(qtbot, page, lambda: qtbot.mouseClick(page.monitor.start_button, LEFT))
    assert handle.state == "finished" and get_model(store, "right-size").steps == 20
    assert "Completed" in page.monitor.status_label.text() and page.monitor.progress.value() == 1000


def test_resume_an_interrupted_run_then_fine_tune(
    qtbot: QtBot, window: MainWindow, page: TrainPage, store: Store
) -> None:
    configure(page, "base", steps=20, preview_every=0)
    run_to_end(qtbot, page, lambda: qtbot.mouseClick(page.monitor.start_button, LEFT))
    assert not page.setup.interrupted_banner.isVisible()
    for status in ("running", "interrupted"):  # left running by a process that died, or marked so since
        with store.session() as session:
            run = session.scalars(select(TrainingRun)).one()
            run.status, run.target_steps = status, 40
        page.refresh()
        assert page.setup.interrupted_banner.isVisible(), status
        assert "'base' reached step 20 of 40" in page.setup.interrupted_label.text()

    handle = run_to_end(qtbot, page, lambda: qtbot.mouseClick(page.setup.resume_interrupted_button, LEFT))
    assert handle.state == "finished" and handle.result.start_step == 20
    assert get_model(store, "base").steps == 40
    assert page.setup.mode == "resume" and not page.setup.form_groups["model"].isEnabled()
    assert not page.setup.name_edit.isEnabled() and not page.setup.family_combo.isEnabled()
    assert not page.setup.interrupted_banner.isVisible()  # its latest run completed

    page.setup.set_mode("finetune")
    page.setup.set_source_model("base")
    page.setup.name_edit.setText("tuned")
    page.setup.steps_spin.setValue(10)
    assert page.setup.forms["model"].value("latent_dim") == 8  # the source's network, fixed
    assert not page.setup.form_groups["model"].isEnabled() and page.setup.name_edit.isEnabled()
    handle = run_to_end(qtbot, page, lambda: qtbot.mouseClick(page.monitor.start_button, LEFT))
    assert handle.state == "finished"
    tuned = get_model(store, "tuned")
    assert tuned.parent == "base" and tuned.steps == 10


def test_keyboard_starts_pauses_and_resumes_only_when_it_should(
    qtbot: QtBot, window: MainWindow, page: TrainPage
) -> None:
    configure(page, "keys")
    window.show_page("datasets")
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert page.handle is None  # the Train page is hidden: its shortcut is not live
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert page.handle is None

    window.show_page("train")
    qtbot.keyClick(window, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    handle = page.handle
    assert handle is not None
    qtbot.waitUntil(lambda: handle.state == "running", timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert handle.state == "paused" and page.monitor.pause_button.text() == "Resume"
    qtbot.keyClick(window, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    assert handle.state == "running" and page.monitor.pause_button.accessibleName() == "Pause training"
    with qtbot.waitSignal(handle.ended, timeout=20_000):
        page.cancel()
    assert handle.state == "cancelled"


def test_failure_and_warning_text_is_shown_as_written(qtbot: QtBot) -> None:
    from PySide6.QtGui import QTextDocument

    from studio.engine.training import TrainingWarning
    from studio.ui.train.monitor import TrainMonitor

    monitor = TrainMonitor()
    qtbot.addWidget(monitor)

    def plain(html_text: str) -> str:
        document = QTextDocument()
        document.setHtml(html_text)
        return document.toPlainText()

    monitor.show_failure("expected <class 'int'> & got <b>")
    assert "expected <class 'int'> & got <b>" in plain(monitor.status_label.text())
    monitor.show_event(TrainingWarning(5, "loss is <nan>"))
    assert "loss is <nan>" in plain(monitor.warning_banner.text())
