"""The Models page with the real window: the table, export with parity, import by drop, delete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.engine.checkpoints import CHECKPOINT_FILE, CONFIG_FILE
from studio.engine.datasets.samples import add_sample
from studio.engine.jobs import run_job
from studio.engine.library import get_model, import_model, list_models
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import NotFoundError, StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.ui.main_window import MainWindow
from studio.ui.pages import models as models_module
from studio.ui.pages.models import ModelImportDialog, ModelsPage, export_label, parity_rows

TINY_GAN = {"width": 8, "latent_dim": 8, "batch_size": 8}


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GAN model folder made once, outside any test's data home (import it where needed)."""
    home = DataHome(tmp_path_factory.mktemp("trained") / "home").ensure()
    store = open_store(home)
    try:
        run_job(add_sample(store, "digits", size=8))
        run_job(
            train(store, TrainOptions("g", family="gan", dataset="digits", steps=3, settings=TINY_GAN, preview_every=0))
        )
        outside = tmp_path_factory.mktemp("outside") / "g"
        outside.mkdir()
        for name in (CONFIG_FILE, CHECKPOINT_FILE):
            shutil.copyfile(home.models / "g" / name, outside / name)
    finally:
        store.close()
    return outside


@pytest.fixture
def page(window: MainWindow, store: Store, trained_folder: Path) -> ModelsPage:
    """The Models page on show, with the tiny GAN in the library as 'g'."""
    import_model(store, trained_folder, "g")
    window.show_page("models")
    return window.page["models"]


def test_the_table_lists_models_with_their_export_state(page: ModelsPage) -> None:
    assert page.table.objectName() == "modelTable" and page.table.rowCount() == 1
    cells = [page.table.item(0, column).text() for column in range(page.table.columnCount())]
    assert cells[:5] == ["g", "gan", "8x8x1", "-", "3"]
    assert cells[7] == "not exported" and cells[6].endswith("KiB")
    assert page.selected_name == "g"
    details = page.details.text()
    digest = get_model(page.store, "g").weights_hash
    assert "latent_dim" in details and "Weights hash" in details and f"{digest[:32]}<br>{digest[32:]}" in details
    assert not page.parity_table.isVisible()


def test_export_runs_as_a_job_and_shows_the_parity(qtbot: QtBot, window: MainWindow, page: ModelsPage) -> None:
    page.fp16_check.setChecked(True)
    with qtbot.waitSignal(window.context.signals.modelsChanged, timeout=60_000):
        qtbot.mouseClick(page.export_button, Qt.MouseButton.LeftButton)
        assert page.panel.isVisible() and not page.export_button.isEnabled()
    assert window.runner.wait_idle(60_000)
    assert page.table.item(0, 7).text() == "current (fp32 + fp16)"
    assert page.export_button.isEnabled() and not page.panel.isVisible()
    rows = [[page.parity_table.item(r, c).text() for c in range(5)] for r in range(page.parity_table.rowCount())]
    assert [row[:2] for row in rows] == [["generator", "fp32"], ["generator", "fp16"]]
    assert all(row[4] == "within" for row in rows) and rows[0][3] == "0.0001"
    assert "Exported in" in page.parity_label.text()
    # The parity of an existing export shows again whenever the model is selected.
    page.refresh()
    assert page.parity_table.rowCount() == 2 and "Parity with torch" in page.parity_label.text()


def test_export_failure_is_readable(
    qtbot: QtBot, window: MainWindow, page: ModelsPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.engine import export

    def broken(store: Store, model: str, fp16: bool = False, cancel: object = None) -> object:
        raise StudioError("the exported generator (fp32) differs from torch by 0.5 (allowed 1e-4)")
        yield

    monkeypatch.setattr(export, "export_model", broken)
    page.export_selected()
    assert window.runner.wait_idle(20_000)
    assert window.last_error == (
        "Export of 'g' failed",
        "the exported generator (fp32) differs from torch by 0.5 (allowed 1e-4)",
    )
    assert page.table.item(0, 7).text() == "not exported" and page.export_button.isEnabled()


def test_dropping_a_model_folder_imports_it_under_a_confirmed_name(
    qtbot: QtBot, window: MainWindow, page: ModelsPage, trained_folder: Path
) -> None:
    window.show_page("datasets")
    window.handle_drop([trained_folder])
    assert window.current_key == "models"
    dialog = page.import_dialog
    assert isinstance(dialog, ModelImportDialog) and dialog.isVisible()
    assert dialog.name_edit.text() == "g-2"  # 'g' is taken: the suggestion is free
    dialog.name_edit.setText("g")
    assert not dialog.ok_button.isEnabled() and "already exists" in dialog.message.text()
    dialog.name_edit.setText("imported")
    with qtbot.waitSignal(window.context.signals.modelsChanged, timeout=20_000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle(20_000)
    assert page.selected_name == "imported" and page.table.rowCount() == 2
    assert get_model(page.store, "imported").family == "gan"


def test_a_folder_that_is_not_a_model_says_why(window: MainWindow, page: ModelsPage, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / CONFIG_FILE).write_text(json.dumps({"family": "gan"}))
    window.handle_drop([bad])
    assert page.import_dialog is None
    title, message = window.last_error
    assert title == "Not a model folder" and "lacks resolution, channels, hyperparameters" in message
    # A config that reads but weights that do not: the import job fails with the engine's reason.
    shutil.copytree(page.store.home.models / "g", tmp_path / "copy", ignore=shutil.ignore_patterns("onnx"))
    (tmp_path / "copy" / CHECKPOINT_FILE).write_bytes(b"not safetensors")
    page.import_model_folder(tmp_path / "copy")
    page.import_dialog.accept()
    assert window.runner.wait_idle(20_000)
    title, message = window.last_error
    assert title == "Model import failed" and "damaged or not a safetensors file" in message
    assert [m.name for m in list_models(page.store)] == ["g"]


def test_delete_asks_then_removes(qtbot: QtBot, window: MainWindow, page: ModelsPage) -> None:
    asked: list[str] = []
    page.confirm_delete = lambda title, question: asked.append(question) is not None
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert asked and "'g'" in asked[0] and page.table.rowCount() == 1
    page.confirm_delete = lambda title, question: True
    with qtbot.waitSignal(window.context.signals.modelsChanged, timeout=5000):
        qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    with pytest.raises(NotFoundError):
        get_model(page.store, "g")
    assert page.table.rowCount() == 0 and not page.export_button.isEnabled() and page.details.text() == ""


def test_models_changed_elsewhere_refreshes_the_table(
    window: MainWindow, page: ModelsPage, trained_folder: Path
) -> None:
    import_model(page.store, trained_folder, "from-training")
    window.context.signals.modelsChanged.emit()
    assert page.table.rowCount() == 2


def test_labels() -> None:
    assert export_label(None) == "not exported"
    assert export_label({"current": False, "damaged": True}) == "damaged"
    assert export_label({"current": False, "fp16": False}) == "out of date"
    assert export_label({"current": True, "fp16": True}) == "current (fp32 + fp16)"
    networks = {
        "decoder": {"max_abs_difference": 1e-6, "tolerance": 1e-4},
        "encoder": {
            "max_abs_difference": 2e-6,
            "tolerance": 1e-4,
            "fp16": {"max_abs_difference": 1e-3, "tolerance": 2e-2},
        },
    }
    assert parity_rows(networks) == [
        ("decoder", "fp32", 1e-6, 1e-4),
        ("encoder", "fp32", 2e-6, 1e-4),
        ("encoder", "fp16", 1e-3, 2e-2),
    ]
    assert models_module.parameters_label(1_250_000) == "1.25 M"
