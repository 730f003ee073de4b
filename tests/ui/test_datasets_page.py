"""The Datasets page with the real window: drop -> import dialog -> job -> report; samples; errors; delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.engine.datasets.storage import get_dataset, list_datasets
from studio.errors import NotFoundError, StudioError
from studio.store.database import Store
from studio.ui.main_window import MainWindow
from studio.ui.pages import datasets as datasets_module
from studio.ui.pages.datasets import DatasetsPage, ImportDialog, suggest_name, unimportable_reason
from tests.images import make_folder, noise, save
from tests.ui.helpers import slow_job


@pytest.fixture
def page(window: MainWindow) -> DatasetsPage:
    """The window's Datasets page, with samples made small so they take milliseconds."""
    datasets = window.page["datasets"]
    datasets.sample_size = 8
    datasets.shapes_count = 24
    return datasets


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Five images in two class folders, and a broken PNG at the top."""
    root = tmp_path / "holiday photos"
    make_folder(root, 5, size=24)
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a PNG")
    return root


def test_drop_imports_through_the_dialog_and_reports_the_broken_file(
    qtbot: QtBot, window: MainWindow, page: DatasetsPage, folder: Path, store: Store
) -> None:
    window.show_page("train")
    window.handle_drop([folder])
    assert window.current_key == "datasets"
    dialog = page.import_dialog
    assert isinstance(dialog, ImportDialog) and dialog.isVisible() and dialog.objectName() == "importDialog"
    assert dialog.name_edit.text() == "holiday-photos"  # pre-filled from the folder, made valid
    assert dialog.size_spin.value() == 32 and dialog.labels_check.isChecked()
    dialog.size_spin.setValue(16)
    dialog.channels_combo.setCurrentIndex(dialog.channels_combo.findData(1))
    with qtbot.waitSignal(window.context.signals.datasetsChanged, timeout=20_000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
        assert page.panel.isVisible()  # the page shows the job's progress at once
    assert window.runner.wait_idle(20_000)

    summary = get_dataset(store, "holiday-photos")
    assert (summary.count, summary.size, summary.channels) == (5, 16, 1)
    assert summary.class_counts == {"a": 3, "b": 2}
    assert page.selected_name == "holiday-photos" and page.list.count() == 1
    assert page.thumbnails.rowCount() == 5 and not page.panel.isVisible()
    assert page.thumbnails.data(page.thumbnails.index(0), Qt.ItemDataRole.DecorationRole).width() == 64

    report = page.report_dialog
    assert report is not None and report.isVisible() and report.objectName() == "importReport"
    assert report.model.rowCount() == 1
    path = report.model.data(report.model.index(0, 0))
    reason = report.model.data(report.model.index(0, 1))
    assert path.endswith("broken.png") and reason and "\n" not in reason
    assert "5" in report.summary.text() and "1</b> skipped" in report.summary.text()
    assert f"broken.png: {reason}" in report.text()
    report.close()


def test_the_dialog_refuses_bad_and_taken_names(
    qtbot: QtBot, window: MainWindow, page: DatasetsPage, folder: Path
) -> None:
    qtbot.mouseClick(page.digits_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle(20_000)
    window.handle_drop([folder])
    dialog = page.import_dialog
    dialog.name_edit.setText("digits")
    assert not dialog.ok_button.isEnabled() and "already exists" in dialog.message.text()
    dialog.name_edit.setText("-no good")
    assert not dialog.ok_button.isEnabled() and "invalid name" in dialog.message.text()
    dialog.accept()  # refused: the dialog stays open, nothing is queued
    assert dialog.isVisible() and not window.runner.busy
    dialog.name_edit.setText("fine")
    dialog.size_spin.setValue(100)
    assert dialog.ok_button.isEnabled() and "not trained on" in dialog.message.text()
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible() and not window.runner.busy


def test_sample_buttons_add_digits_and_shapes(
    qtbot: QtBot, window: MainWindow, page: DatasetsPage, store: Store
) -> None:
    assert page.findChild(object, "addDigitsButton") is page.digits_button
    qtbot.mouseClick(page.digits_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(page.shapes_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle(30_000)
    names = {d.name: d for d in list_datasets(store)}
    assert names["digits"].count == 1797 and names["digits"].channels == 1 and names["digits"].size == 8
    assert names["shapes"].count == 24 and names["shapes"].channels == 3
    assert page.list.count() == 2 and page.selected_name == "shapes"
    # A second click on a sample that is here already selects it instead of making a copy.
    qtbot.mouseClick(page.digits_button, Qt.MouseButton.LeftButton)
    assert not window.runner.busy and page.selected_name == "digits" and len(list_datasets(store)) == 2
    assert "already here" in window.statusBar().currentMessage()
    # The grid is lazy: it shows the first batch of the 1,797 digits and fetches more, up to 512, on demand.
    thumbnails = page.thumbnails
    assert 0 < thumbnails.rowCount() < 1797 and thumbnails.limit == datasets_module.THUMBNAIL_LIMIT
    while thumbnails.canFetchMore(thumbnails.index(-1)):
        thumbnails.fetchMore(thumbnails.index(-1))
    assert thumbnails.rowCount() == 512 and "first 512 of 1,797" in page.grid_note.text()
    assert thumbnails.data(thumbnails.index(511), Qt.ItemDataRole.ToolTipRole).startswith("image 512, class")


def test_dropping_nothing_importable_says_why(
    qtbot: QtBot, window: MainWindow, page: DatasetsPage, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    window.handle_drop([notes, tmp_path / "missing.png"])
    assert page.import_dialog is None
    title, message = window.last_error
    assert title == "Nothing to import" and "notes.txt: not an image or a zip ('.txt')" in message
    assert "missing.png: no such file or folder" in message

    # A folder holding no image passes the cheap check; the engine then says why in one line.
    empty = tmp_path / "papers"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.md").write_text("# no images")
    window.handle_drop([empty])
    page.import_dialog.accept()
    assert window.runner.wait_idle(20_000)
    title, message = window.last_error
    assert title == "Import failed" and message.startswith("nothing to import")
    assert "readme.md" in message and not list_datasets(window.store)
    assert page.report_dialog is None and not page.panel.isVisible()


def test_a_drop_during_another_job_is_queued_and_can_be_cancelled(
    qtbot: QtBot, window: MainWindow, page: DatasetsPage, folder: Path
) -> None:
    slow = window.runner.submit("Train 'big'", slow_job(10_000))
    qtbot.waitUntil(lambda: slow.state == "running", timeout=5000)
    window.handle_drop([folder])
    page.import_dialog.accept()
    assert "queued after Train 'big'" in window.statusBar().currentMessage()
    assert "queued after Train 'big'" in page.panel.label.text() and page.panel.isVisible()
    qtbot.mouseClick(page.panel.cancel_button, Qt.MouseButton.LeftButton)  # cancels the page's import, not training
    assert slow.state == "running"
    slow.cancel()
    assert window.runner.wait_idle(20_000)
    assert not list_datasets(window.store) and not page.panel.isVisible()
    assert "cancelled" in window.statusBar().currentMessage()


def test_delete_asks_then_removes(
    qtbot: QtBot, window: MainWindow, page: DatasetsPage, store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    save(noise(16, 16, 1), tmp_path / "one" / "a.png")
    save(noise(16, 16, 2), tmp_path / "one" / "b.png")
    window.handle_drop([tmp_path / "one"])
    page.import_dialog.accept()
    assert window.runner.wait_idle(20_000)
    page.report_dialog.close()
    questions: list[str] = []

    def refuse(title: str, question: str) -> bool:
        questions.append(question)
        return False

    page.confirm_delete = refuse
    qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    assert questions and "'one'" in questions[0] and get_dataset(store, "one").count == 2

    def fail(store: Store, name: str) -> None:
        raise StudioError("the database is read-only: disk full")

    page.confirm_delete = lambda title, question: True
    monkeypatch.setattr(datasets_module, "delete_dataset", fail)
    assert not page.delete_selected()
    assert window.last_error == ("Could not delete the dataset", "'one': the database is read-only: disk full")
    monkeypatch.undo()
    with qtbot.waitSignal(window.context.signals.datasetsChanged, timeout=5000):
        qtbot.mouseClick(page.delete_button, Qt.MouseButton.LeftButton)
    with pytest.raises(NotFoundError):
        get_dataset(store, "one")
    assert page.list.count() == 0 and page.thumbnails.rowCount() == 0


def test_names_and_importability_helpers(tmp_path: Path) -> None:
    assert suggest_name([tmp_path / "My Cats!.zip"], set()) == "My-Cats"
    assert suggest_name([tmp_path / "__x.png"], {"x"}) == "x-2"
    assert suggest_name([Path("/")], set()) == "dataset"
    (tmp_path / "pics").mkdir()
    assert unimportable_reason([tmp_path / "a.txt", tmp_path / "pics"]) is None
    assert unimportable_reason([tmp_path / "a.zip"]) is not None  # missing
    save(noise(8, 8, 0), tmp_path / "x.webp")
    assert unimportable_reason([tmp_path / "x.webp"]) is None


def test_a_large_import_decodes_in_worker_processes_from_the_engine_thread(
    qtbot: QtBot, window: MainWindow, page: DatasetsPage, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the engine's parallel threshold, decoding workers start from this threaded process.
    from studio.engine.datasets import importer

    contexts: list[str] = []
    original = importer._process_context

    def spy() -> object:
        context = original()
        contexts.append(context.get_start_method())
        return context

    monkeypatch.setattr(importer, "_process_context", spy)
    monkeypatch.setattr(importer, "default_workers", lambda: 2)
    count = importer.PARALLEL_THRESHOLD + 4
    make_folder(tmp_path / "many", count, size=12)
    window.handle_drop([tmp_path / "many"])
    page.import_dialog.size_spin.setValue(8)
    page.import_dialog.accept()
    assert window.runner.wait_idle(60_000)
    assert contexts  # the worker pool ran (the dataset is complete and in order either way)
    assert get_dataset(store, "many").count == count
    page.report_dialog.close()


def test_a_damaged_dataset_says_so_instead_of_showing_images(
    window: MainWindow, page: DatasetsPage, store: Store
) -> None:
    page.add_sample("shapes")
    assert window.runner.wait_idle(20_000)
    # Shapes at 8 px keep no separate thumbnails: the grid reads images.npy itself.
    (store.home.absolute(get_dataset(store, "shapes").folder) / "images.npy").write_bytes(b"garbage")
    page.refresh()
    assert page.selected_name == "shapes" and page.grid.isHidden()
    assert "dataset 'shapes' is damaged" in page.grid_note.text()
