"""The Models page's milestones panel through the real window: grids and ratings listed, Promote asked
and run as a job, a damaged milestone refused with the weights kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.engine.checkpoints import CHECKPOINT_FILE
from studio.engine.datasets.samples import add_sample
from studio.engine.jobs import run_job
from studio.engine.library import get_model, model_folder
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from studio.store.milestones import MilestoneRepository
from studio.ui.main_window import MainWindow
from studio.ui.pages.models import ModelsPage
from studio.ui.widgets.milestones_panel import MilestonesPanel

TINY_VAE = {"width": 8, "latent_dim": 4, "batch_size": 8}


@pytest.fixture
def page(qtbot: QtBot, window: MainWindow, store: Store) -> ModelsPage:
    """The Models page on show with 'm', trained 5 steps with milestones at 2 and 4, step 2's grid rated."""
    run_job(add_sample(store, "digits", size=8))
    options = TrainOptions(
        "m", family="vae", dataset="digits", steps=5, settings=TINY_VAE, preview_every=0, milestone_every=2
    )
    run_job(train(store, options))
    GalleryRepository(store).rate(MilestoneRepository(store).get("m", 2).items[:2], 4)
    window.show_page("models")
    models: ModelsPage = window.page["models"]
    qtbot.waitUntil(lambda: models.milestones.table.rowCount() == 2, timeout=10_000)
    return models


def test_the_panel_lists_milestones_with_grids_and_ratings(page: ModelsPage) -> None:
    panel = page.milestones
    assert isinstance(panel, MilestonesPanel) and panel.objectName() == "milestonesPanel"
    assert panel.isVisible()
    table = panel.table
    cells = [[table.item(r, c).text() for c in (0, 2, 4)] for r in range(table.rowCount())]
    assert [row[0] for row in cells] == ["4", "2"]  # newest first
    assert cells[1][1] == "4.0 \u2605 (2)" and cells[0][1] == "not rated"
    grid = table.cellWidget(1, 1)
    assert grid.objectName() == "milestoneGrid2" and grid.pixmap().width() > 7 * 24
    assert not panel.promote_button.isEnabled()  # nothing selected
    if os.environ.get("STUDIO_SCREENSHOTS"):  # the render looked at while building it
        page.window().resize(1400, 900)
        page.window().grab().save(str(Path(os.environ["STUDIO_SCREENSHOTS"]) / "milestones.png"))


def test_promote_asks_then_makes_the_milestone_the_model(qtbot: QtBot, window: MainWindow, page: ModelsPage) -> None:
    panel = page.milestones
    asked: list[str] = []
    panel.confirm_promote = lambda title, question: asked.append(question) is not None  # answers No
    panel.select_step(2)
    assert panel.promote_button.isEnabled()
    qtbot.mouseClick(panel.promote_button, Qt.MouseButton.LeftButton)
    assert "step 2" in asked[0] and "4.0 \u2605" in asked[0] and get_model(page.store, "m").steps == 5
    panel.confirm_promote = lambda title, question: True
    with qtbot.waitSignal(window.context.signals.modelsChanged, timeout=60_000):
        qtbot.mouseClick(panel.promote_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle(60_000)
    model = get_model(page.store, "m")
    assert model.steps == 2 and model.weights_hash == MilestoneRepository(page.store).get("m", 2).weights_hash
    assert page.table.item(0, 4).text() == "2"
    # The replaced weights (step 5) are a milestone now; step 2 is marked current and cannot be promoted again.
    qtbot.waitUntil(lambda: panel.table.rowCount() == 3, timeout=10_000)
    assert [panel.table.item(r, 0).text() for r in range(3)] == ["5", "4", "2  (current)"]
    panel.select_step(2)
    assert not panel.promote_button.isEnabled()


def test_a_damaged_milestone_is_refused_and_the_weights_kept(
    qtbot: QtBot, window: MainWindow, page: ModelsPage
) -> None:
    errors: list[tuple[str, str]] = []
    window.context.signals.errorRaised.connect(lambda title, message: errors.append((title, message)))
    damaged = model_folder(page.store, "m") / "milestones" / "4" / CHECKPOINT_FILE
    damaged.write_bytes(damaged.read_bytes()[:100])
    before = get_model(page.store, "m").weights_hash
    page.milestones.confirm_promote = lambda title, question: True
    page.milestones.select_step(4)
    qtbot.mouseClick(page.milestones.promote_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(errors), timeout=60_000)
    assert window.runner.wait_idle(60_000)
    title, message = errors[0]
    assert title == "Promoting step 4 of 'm' failed"
    assert "is damaged" in message and message.endswith("the current weights are kept") and "\n" not in message
    assert get_model(page.store, "m").weights_hash == before
