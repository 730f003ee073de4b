"""The encoder in the app, with real tiny encoders: the Datasets page's encoder panel (train, pause, cancel,
resume, the loss curve), the Map page (every point drawn, a click shows the item in the gallery, the
empty state), the Models page's quality score, and the score the training monitor shows after a run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.embedding.queries import datasets_with_encoders, map_points, no_encoder_hint
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.ui.jobs import JobState
from studio.ui.main_window import MainWindow
from studio.ui.pages.map import MapPage, describe_point, group_of
from tests.embedding.conftest import World, build_world

LEFT = Qt.MouseButton.LeftButton
TINY_GAN: dict[str, Any] = {"width": 8, "latent_dim": 8, "batch_size": 8}
# A folder to save the pages to as PNGs, to look at them: only when STUDIO_TEST_SHOTS names one.
SHOTS = os.environ.get("STUDIO_TEST_SHOTS")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Digits at 16 px with a tiny encoder, a tiny GAN 'g' and its gallery items (built once: ~15 s)."""
    built = build_world(tmp_path_factory.mktemp("world"))
    yield built
    built.store.close()


@pytest.fixture
def studio(qtbot: QtBot, world: World, settings: QSettings) -> Iterator[MainWindow]:
    """The main window over the world's store; closed (engine thread stopped) after the test."""
    main = MainWindow(world.store, settings)
    main.confirm_close = lambda: True
    qtbot.addWidget(main)
    main.resize(1240, 800)
    main.show()
    yield main
    main.close()


def save_shot(widget: Any, name: str) -> None:
    """Save a PNG of a widget to look at, when STUDIO_TEST_SHOTS asks for them."""
    if SHOTS:
        QApplication.processEvents()  # the layouts settle (a label's new height) before the grab
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        assert widget.grab().save(str(Path(SHOTS) / name))


def test_the_encoder_panel_trains_pauses_cancels_and_resumes(qtbot: QtBot, studio: MainWindow, world: World) -> None:
    run_job(add_sample(world.store, "shapes", name="shapes8", size=8, count=64))
    studio.show_page("datasets")
    page = studio.page["datasets"]
    page.refresh(select="shapes8")
    panel = page.encoder_panel
    page.tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.facts is not None and panel.facts.dataset == "shapes8")
    assert "No encoder yet" in panel.summary.text()
    assert panel.train_button.isEnabled() and panel.resume_button.isHidden()
    for name, value in {"width": 8, "input_size": 8, "batch_size": 32, "projection_dims": 8}.items():
        panel.form.set_value(name, value)
    panel.steps_spin.setValue(1_000_000)  # stopped by hand below

    qtbot.mouseClick(panel.train_button, LEFT)
    handle = panel.handle
    assert handle is not None and not panel.train_button.isEnabled() and not panel.form.isEnabled()
    qtbot.waitUntil(lambda: len(panel.losses) >= 3, timeout=60_000)  # the trainer reports twice a second
    save_shot(page, "datasets_encoder_training.png")
    qtbot.mouseClick(panel.pause_button, LEFT)
    assert handle.state is JobState.PAUSED and panel.pause_button.text() == "Continue"
    qtbot.mouseClick(panel.pause_button, LEFT)
    assert handle.state is JobState.RUNNING and panel.pause_button.text() == "Pause"
    qtbot.mouseClick(panel.cancel_button, LEFT)
    qtbot.waitUntil(lambda: handle.done, timeout=60_000)
    assert handle.state is JobState.CANCELLED and "Resume" in panel.status.text()
    stopped_at = handle.result.steps
    qtbot.waitUntil(lambda: panel.facts is not None and panel.facts.resumable)
    assert panel.resume_button.isVisible() and panel.resume_button.isEnabled()
    assert "shapes8" not in datasets_with_encoders(world.store)

    panel.steps_spin.setValue(10)
    qtbot.mouseClick(panel.resume_button, LEFT)
    resumed = panel.handle
    assert resumed is not None and resumed is not handle
    qtbot.waitUntil(lambda: resumed.done, timeout=120_000)
    assert resumed.state is JobState.FINISHED, resumed.error
    assert resumed.result.steps == stopped_at + 10 and resumed.result.encoder is not None
    # The curve holds every reported loss, the second run's after the first's.
    steps, losses = panel.curve.getData()
    assert len(losses) == len(panel.losses) >= 1 and np.all(np.isfinite(losses)) and steps[-1] == stopped_at + 10
    qtbot.waitUntil(lambda: panel.facts is not None and panel.facts.encoder is not None)
    summary = panel.summary.text()
    assert "Linear probe" in summary and "Near-duplicates" in summary and "Memorised" in summary
    assert not panel.facts.resumable and panel.resume_button.isHidden() and panel.train_button.text() == "Train again"
    assert "shapes8" in datasets_with_encoders(world.store)
    save_shot(page, "datasets_encoder_panel.png")


def test_the_encoder_panel_refuses_a_dataset_too_small(qtbot: QtBot, studio: MainWindow, world: World) -> None:
    run_job(add_sample(world.store, "shapes", name="few", size=8, count=20))
    page = studio.page["datasets"]
    studio.show_page("datasets")
    page.refresh(select="few")
    panel = page.encoder_panel
    qtbot.waitUntil(lambda: panel.facts is not None and panel.facts.dataset == "few")
    assert not panel.train_button.isEnabled() and "at least 32" in panel.train_button.toolTip()


def _shown_map(qtbot: QtBot, studio: MainWindow, dataset: str) -> MapPage:
    studio.show_page("map")
    page = studio.page["map"]
    qtbot.waitUntil(lambda: page.dataset_combo.findData(dataset) >= 0 and not page.loading, timeout=30_000)
    page.dataset_combo.setCurrentIndex(page.dataset_combo.findData(dataset))
    qtbot.waitUntil(lambda: not page.loading, timeout=30_000)
    return page


def _hover(qtbot: QtBot, page: MapPage, item: Any, target: dict[str, Any]) -> QPoint:
    """Hover a map point and wait until the page says what it is; where it was, in viewport pixels.

    The hover goes through the scene's own `sigMouseMoved` (what a real move emits): under the offscreen
    platform a QTest mouse move without a button reached the scene only when this test ran alone.
    """
    qtbot.wait(20)  # after the colouring changes the view settles its range over the next events
    scene = item.mapToScene(QPointF(target["x"], target["y"]))
    page.plot.scene().sigMouseMoved.emit(scene)
    qtbot.waitUntil(lambda: page.info.text() == describe_point(target))
    return page.plot.mapFromScene(scene)


def test_the_map_draws_every_point_and_a_click_shows_the_item_in_the_gallery(
    qtbot: QtBot, studio: MainWindow, world: World
) -> None:
    page = _shown_map(qtbot, studio, "digits")
    assert page.result is not None and page.stack.currentIndex() == 1
    expected = map_points(world.store, "digits")["points"]
    assert page.point_count() == len(expected) == len(page.points)
    generated = [p for p in expected if p["kind"] == "gallery"]
    assert {p["id"] for p in generated} == set(world.items) | {world.copy_id}
    # Coloured by model: one legend group, 'g'; by rating: one group per rating present.
    assert list(page.gallery_items) == ["g"]
    save_shot(page, "map.png")
    page.colour_combo.setCurrentIndex(page.colour_combo.findData("rating"))
    assert set(page.gallery_items) == {group_of(p, "rating") for p in generated}
    assert sum(len(item.data) for item in page.gallery_items.values()) == len(generated)

    # Click the generated item farthest from the others, where the plot draws it.
    mine = [index for index, point in enumerate(page.points) if point["kind"] == "gallery"]
    xy = np.array([(page.points[i]["x"], page.points[i]["y"]) for i in mine])
    gaps = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    index = mine[int(gaps.min(1).argmax())]
    target = page.points[index]
    item = next(i for i in page.gallery_items.values() if index in list(i.data["data"]))
    where = _hover(qtbot, page, item, target)
    qtbot.mouseClick(page.plot.viewport(), LEFT, pos=where)
    assert page.chosen == target["id"]
    gallery = studio.page["gallery"]
    qtbot.waitUntil(
        lambda: studio.current_key == "gallery" and gallery.selected_ids() == [target["id"]], timeout=20_000
    )


def test_the_map_says_how_to_get_an_encoder(qtbot: QtBot, studio: MainWindow, world: World) -> None:
    run_job(add_sample(world.store, "digits", name="bare", size=8))
    page = _shown_map(qtbot, studio, "bare")
    assert page.stack.currentIndex() == 0 and page.point_count() == 0
    assert page.dataset_combo.currentText() == "bare (no encoder)"
    assert no_encoder_hint("bare") in page.empty_label.text()
    save_shot(page, "map_no_encoder.png")
    qtbot.mouseClick(page.datasets_button, LEFT)
    assert studio.current_key == "datasets"


def test_the_models_page_scores_a_model(qtbot: QtBot, studio: MainWindow, world: World) -> None:
    studio.show_page("models")
    page = studio.page["models"]
    page.refresh(select="g")
    qtbot.waitUntil(lambda: page.quality is not None and page.quality.model == "g")
    assert page.quality.scorable and page.score_button.isEnabled()
    qtbot.mouseClick(page.score_button, LEFT)
    handle = page.score_job
    assert handle is not None and not page.score_button.isEnabled()
    qtbot.waitUntil(lambda: handle.done, timeout=120_000)
    assert handle.state is JobState.FINISHED, handle.error
    text = page.score_label.text()
    assert "Frechet" in text and "precision" in text and "recall" in text and "256 samples" in text
    # Read back from the store on the next selection.
    page.quality = None
    page.refresh(select="g")
    qtbot.waitUntil(lambda: page.quality is not None and page.quality.score is not None)
    assert page.quality.score.samples == 256 and page.score_button.isEnabled()
    save_shot(page, "models_score.png")


def test_the_score_button_says_how_to_get_an_encoder(qtbot: QtBot, studio: MainWindow, world: World) -> None:
    run_job(add_sample(world.store, "digits", name="plain", size=8))
    run_job(train(world.store, TrainOptions("h", family="gan", dataset="plain", steps=2, settings=TINY_GAN)))
    studio.show_page("models")
    page = studio.page["models"]
    page.refresh(select="h")
    qtbot.waitUntil(lambda: page.quality is not None and page.quality.model == "h")
    assert not page.score_button.isEnabled() and page.score_button.toolTip() == no_encoder_hint("plain")
    assert no_encoder_hint("plain") in page.score_label.text()


def test_the_training_monitor_shows_the_score_after_a_run(qtbot: QtBot, studio: MainWindow) -> None:
    studio.show_page("train")
    page = studio.page["train"]
    setup = page.setup
    setup.set_mode("new")
    setup.set_family("gan")
    setup.set_dataset("digits")
    setup.name_edit.setText("scored")
    setup.set_settings(TINY_GAN)
    setup.steps_check.setChecked(True)
    setup.steps_spin.setValue(3)
    setup.minutes_check.setChecked(False)
    setup.preview_every_spin.setValue(0)
    handle = page.start()
    assert handle is not None
    qtbot.waitUntil(lambda: handle.done, timeout=60_000)
    assert handle.state is JobState.FINISHED, handle.error
    monitor = page.monitor
    qtbot.waitUntil(lambda: monitor.score_job is not None and monitor.score_job.done, timeout=120_000)
    assert monitor.score_job.state is JobState.FINISHED
    assert monitor.score_label.isVisible() and "Quality" in monitor.score_label.text()
    assert "at step 3" in monitor.score_label.text() and "recall" in monitor.score_label.text()
    save_shot(page, "train_score.png")
