"""The Gallery page with the real window: the grid, Lightroom keys, undo, filters, details, compare, drops,
other pages, export, missing files, and a 100,000-row gallery that must stay virtualised and quick."""

from __future__ import annotations

import shutil
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialog, QMenu, QMessageBox
from pytestqt.qtbot import QtBot
from sqlalchemy import insert

from studio.engine.datasets.samples import add_sample
from studio.engine.generation import generate
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.gallery import GalleryFilter, GalleryRepository, thumbnail_path
from studio.store.tables import GalleryItem
from studio.ui.gallery import GalleryPage
from studio.ui.gallery.model import (
    BLOCK_SIZE,
    ENTRY_ROLE,
    INLINE_FETCH_BUDGET,
    MAX_BLOCKS,
    STATE_ROLE,
)
from studio.ui.gallery.view import selection_count
from studio.ui.main_window import MainWindow
from tests.ui.gallery_helpers import gallery_page as _gallery
from tests.ui.gallery_helpers import settle_gallery as _settle

TINY_GAN = {"width": 8, "latent_dim": 8, "batch_size": 8}
SEEDS = list(range(100, 106))  # items 1-6, made in this order: the grid (newest first) shows 6..1


@pytest.fixture(scope="module")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home with a tiny trained GAN and six generated images, built once for the module."""
    root = tmp_path_factory.mktemp("gallery-template") / "home"
    store = open_store(DataHome(root).ensure())
    try:
        run_job(add_sample(store, "digits", size=8))
        run_job(
            train(store, TrainOptions("m", family="gan", dataset="digits", steps=3, settings=TINY_GAN, preview_every=0))
        )
        run_job(generate(store, "m", len(SEEDS), seed=SEEDS[0]))
    finally:
        store.close()
    return root


@pytest.fixture
def items_store(isolated_home: Path, template_home: Path) -> Iterator[Store]:
    """The test's own copy of the template home, opened."""
    shutil.copytree(template_home, isolated_home)
    store = open_store(DataHome(isolated_home).ensure())
    yield store
    store.close()


@pytest.fixture
def gallery_window(qtbot: QtBot, items_store: Store, settings: QSettings) -> Iterator[MainWindow]:
    """The main window on the six-item home, showing the Gallery with its thumbnails loaded."""
    main = MainWindow(items_store, settings)
    main.confirm_close = lambda: True
    qtbot.addWidget(main)
    main.show()
    main.show_page("gallery")
    page = main.page["gallery"]
    qtbot.waitUntil(lambda: _states(page) == ["ready"] * len(SEEDS), timeout=10_000)
    yield main
    main.close()


def _states(page: GalleryPage) -> list[str]:
    _settle(page)
    return [page.model.data(page.model.index(row), STATE_ROLE) for row in range(page.model.rowCount())]


def _ids(page: GalleryPage) -> list[int]:
    _settle(page)
    return page.model.ids()


def _select(qtbot: QtBot, page: GalleryPage, ids: list[int]) -> None:
    _settle(page)
    page.select_ids(ids)
    page.view.setFocus()
    qtbot.waitUntil(lambda: sorted(page.selected_ids()) == sorted(ids))


def _no_error_dialog(window: MainWindow) -> bool:
    return not [box for box in window.findChildren(QMessageBox) if box.isVisible()]


def test_grid_shows_generated_items_with_stable_names(gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    assert _ids(page) == [6, 5, 4, 3, 2, 1]
    assert page.view.objectName() == "galleryView" and page.view.accessibleName()
    assert page.view.viewMode() == page.view.ViewMode.IconMode and page.view.uniformItemSizes()
    assert page.view.layoutMode() == page.view.LayoutMode.Batched
    assert page.view.selectionMode() == page.view.SelectionMode.ExtendedSelection
    assert all(page.view.visualRect(page.model.index(row)).isValid() for row in range(6))
    assert "6 items in the gallery" in page.count_label.text()
    assert page.loader.cache.get(1) is not None and not page.missing
    for name in (
        "galleryView",
        "ratingFilter",
        "modelFilter",
        "familyFilter",
        "flagFilter",
        "tagFilter",
        "sinceFilter",
        "untilFilter",
        "sortCombo",
        "clearFiltersButton",
        "galleryCount",
        "galleryCompareButton",
        "galleryInterpolateButton",
        "galleryInpaintButton",
        "galleryExportButton",
        "galleryDeleteButton",
        "galleryRestoreButton",
        "galleryUndoButton",
        "galleryTrashToggle",
        "galleryEmptyTrashButton",
        "detailPane",
        "detailImage",
        "detailParams",
        "detailRating",
        "detailFlag",
        "tagList",
        "tagEdit",
        "addTagButton",
        "removeTagButton",
        "noteEdit",
        "saveNoteButton",
        "lineageLabel",
        "detailStatus",
        "gallerySplitter",
    ):
        widget = page.findChild(object, name)
        assert widget is not None, name
        assert widget.accessibleName(), name


def test_keys_rate_and_flag_the_selection_and_ctrl_z_undoes(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    _select(qtbot, page, [3])
    qtbot.keyClick(page.view, Qt.Key.Key_4)
    assert repository.get(3).rating == 4
    assert page.model.entry(page.model.row_of(3)).rating == 4 and page.detail_rating.value() == 4
    qtbot.keyClick(page.view, Qt.Key.Key_P)
    assert repository.get(3).flag == "pick"
    qtbot.keyClick(page.view, Qt.Key.Key_X)
    assert repository.get(3).flag == "reject"
    qtbot.keyClick(page.view, Qt.Key.Key_U)
    assert repository.get(3).flag == "none"
    qtbot.keyClick(page.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # back to reject
    assert repository.get(3).flag == "reject"

    _select(qtbot, page, [2, 3, 5])  # bulk: one key rates the whole selection
    qtbot.keyClick(page.view, Qt.Key.Key_2)
    assert [repository.get(i).rating for i in (2, 3, 5)] == [2, 2, 2]
    qtbot.keyClick(page.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # each back to its own
    assert [repository.get(i).rating for i in (2, 3, 5)] == [0, 4, 0]

    qtbot.keyClick(page.view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert sorted(page.selected_ids()) == [1, 2, 3, 4, 5, 6]
    assert _no_error_dialog(gallery_window)


def test_delete_moves_to_trash_and_ctrl_z_restores(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    files = {i: page.store.home.absolute(repository.get(i).path) for i in (2, 4)}
    _select(qtbot, page, [2, 4])
    qtbot.keyClick(page.view, Qt.Key.Key_Delete)
    assert _ids(page) == [6, 5, 3, 1]
    assert repository.get(2).deleted and repository.get(4).deleted
    assert not any(path.exists() for path in files.values())
    assert "4 items" in page.count_label.text()
    assert page.selected_ids() == [3]  # the next item takes the place of the first deleted one

    page.set_trash_mode(True)  # the trash shows them, thumbnails read from trash/
    assert _ids(page) == [4, 2] and not page.buttons["galleryDeleteButton"].isVisible()
    qtbot.waitUntil(lambda: _states(page) == ["ready", "ready"])
    page.set_trash_mode(False)

    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _ids(page) == [6, 5, 4, 3, 2, 1]
    assert not repository.get(2).deleted and all(path.exists() for path in files.values())
    assert sorted(page.selected_ids()) == [2, 4]  # what was deleted comes back selected


def test_rating_and_flag_keys_do_nothing_in_the_trash(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    _select(qtbot, page, [2])
    qtbot.keyClick(page.view, Qt.Key.Key_Delete)
    page.set_trash_mode(True)
    _select(qtbot, page, [2])
    for key in (Qt.Key.Key_4, Qt.Key.Key_0, Qt.Key.Key_P, Qt.Key.Key_X, Qt.Key.Key_U):
        qtbot.keyClick(page.view, key)
    assert (repository.get(2).rating, repository.get(2).flag) == (0, "none")
    assert _no_error_dialog(gallery_window)
    assert page.undo_stack.next_command(undo=True) is not None  # the delete can still be undone
    assert page.undo_stack.next_command(undo=True).action == "delete"


def test_one_click_fills_the_detail_pane_once_and_leaves_nothing_of_the_last_item(
    qtbot: QtBot, gallery_window: MainWindow
) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    repository.collect([4], "best")
    repository.set_flag([4], "pick")
    page.refresh()
    _settle(page)
    shown: list[int | None] = []
    fill = page.detail.show_entry
    page.detail.show_entry = lambda entry, selected=1: (  # type: ignore[method-assign]
        shown.append(entry.id if entry else None),
        fill(entry, selected),
    )[1]
    page.view.setFocus()
    rect = page.view.visualRect(page.model.index(page.model.row_of(4)))
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert shown == [4] and "best" in page.tag_list.toolTip()
    qtbot.keyClick(page.view, Qt.Key.Key_Right)  # a keyboard move: once too
    assert len(shown) == 2 and shown[1] != 4
    assert page.tag_list.toolTip() == ""  # not the collections of the item before
    _select(qtbot, page, [4])
    page.view.clearSelection()
    assert shown[-1] is None and page.detail_flag.currentData() == "none"


CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def test_ctrl_shift_z_and_ctrl_y_redo_what_ctrl_z_undid(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    _select(qtbot, page, [3])
    assert not page.undo_action.isEnabled() and not page.redo_action.isEnabled()
    qtbot.keyClick(page.view, Qt.Key.Key_4)
    qtbot.keyClick(page.view, Qt.Key.Key_P)
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)
    assert (repository.get(3).rating, repository.get(3).flag) == (0, "none") and page.redo_action.isEnabled()
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL_SHIFT)  # the rating again
    assert (repository.get(3).rating, repository.get(3).flag) == (4, "none")
    qtbot.keyClick(page.view, Qt.Key.Key_Y, CTRL)  # and the pick
    assert repository.get(3).flag == "pick" and page.model.entry(page.model.row_of(3)).flag == "pick"
    assert not page.redo_action.isEnabled() and "pick" in page.detail_flag.currentData()

    _select(qtbot, page, [2, 4])  # a delete is redone too: to the trash again, files and all
    qtbot.keyClick(page.view, Qt.Key.Key_Delete)
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)
    assert _ids(page) == [6, 5, 4, 3, 2, 1] and not repository.get(2).deleted
    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_Y, CTRL)
    assert _ids(page) == [6, 5, 3, 1] and repository.get(2).deleted and repository.get(4).deleted
    assert not page.store.home.absolute(repository.get(2).path).exists()

    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)  # a new change after an undo: nothing left to redo
    _select(qtbot, page, [1])
    qtbot.keyClick(page.view, Qt.Key.Key_1)
    assert not page.redo_action.isEnabled()
    qtbot.keyClick(page.view, Qt.Key.Key_Y, CTRL)
    assert repository.get(1).rating == 1 and not repository.get(2).deleted
    assert _no_error_dialog(gallery_window)


def test_a_change_that_fails_keeps_what_can_be_redone(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    _select(qtbot, page, [3])
    qtbot.keyClick(page.view, Qt.Key.Key_4)
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)
    assert page.undo_stack.canRedo()
    errors: list[tuple[str, str]] = []
    page.report_failure = lambda title, reason: errors.append((title, reason))  # type: ignore[method-assign]
    page.rate_ids([999], 2)  # an item gone meanwhile: the store refuses
    assert errors and page.undo_stack.canRedo() and page.redo_action.isEnabled()
    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_Y, CTRL)
    assert repository.get(3).rating == 4
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)  # a change done once is undone once, not done twice
    assert repository.get(3).rating == 0 and not page.undo_stack.canUndo()


def test_tag_and_untag_are_undone_and_redone(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    repository.tag([5], "keeper")  # 5 has the tag already: undoing the tagging below leaves it on
    page.refresh()
    _select(qtbot, page, [5, 6])
    page.tag_edit.setText("Keeper")
    page.add_tag_button.click()
    assert repository.get(5).tags == repository.get(6).tags == ("keeper",)  # the stored spelling wins
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)
    assert repository.get(5).tags == ("keeper",) and repository.get(6).tags == ()
    assert page.model.entry(page.model.row_of(6)).tags == ()
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL_SHIFT)
    assert repository.get(6).tags == ("keeper",) and page.model.entry(page.model.row_of(6)).tags == ("keeper",)

    page.tag_edit.setText("keeper")
    page.remove_tag_button.click()
    assert repository.get(5).tags == repository.get(6).tags == ()
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)  # back on both
    assert repository.get(5).tags == repository.get(6).tags == ("keeper",)
    assert page.tag_list.count() == 1
    qtbot.keyClick(page.view, Qt.Key.Key_Y, CTRL)
    assert repository.get(5).tags == repository.get(6).tags == ()
    assert _no_error_dialog(gallery_window)


def test_a_tag_typed_decomposed_is_the_same_tag_and_undoes(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    repository.tag([5], "caf\u00e9")  # 5 has it already (composed): undoing the tagging below leaves it on
    page.refresh()
    _select(qtbot, page, [5, 6])
    page.tag_edit.setText("Cafe\u0301")  # the same tag, typed decomposed
    page.add_tag_button.click()
    assert repository.get(5).tags == repository.get(6).tags == ("caf\u00e9",)
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)
    assert repository.get(5).tags == ("caf\u00e9",) and repository.get(6).tags == ()
    assert page.model.entry(page.model.row_of(6)).tags == ()

    page.tag_edit.setText("cafe\u0301")
    page.remove_tag_button.click()
    assert repository.get(5).tags == ()
    assert page.model.entry(page.model.row_of(5)).tags == ()
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)  # back on 5, the one that had it
    assert repository.get(5).tags == ("caf\u00e9",) and repository.get(6).tags == ()
    assert _no_error_dialog(gallery_window)


def test_undo_passes_over_steps_about_items_the_emptied_trash_took(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    _select(qtbot, page, [1])
    qtbot.keyClick(page.view, Qt.Key.Key_3)
    _select(qtbot, page, [2])
    qtbot.keyClick(page.view, Qt.Key.Key_Delete)
    page.confirm = lambda title, question: True
    page.empty_trash_action.trigger()
    _settle(page)
    assert page.undo_action.isEnabled()  # the rating can still be undone; the delete cannot
    page.view.setFocus()
    qtbot.keyClick(page.view, Qt.Key.Key_Z, CTRL)
    assert repository.get(1).rating == 0 and repository.count() == 5
    assert not page.undo_action.isEnabled() and _no_error_dialog(gallery_window)


def test_rating_flag_tag_and_date_filters_show_only_matching_items(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    repository.rate([1], 5)
    repository.rate([2], 4)
    repository.rate([3], 3)
    repository.set_flag([1, 3], "pick")
    page.refresh()
    rating_filter = page.findChild(object, "ratingFilter")
    rating_filter.setCurrentIndex(rating_filter.findData(4))
    assert _ids(page) == [2, 1]
    assert "2 items match" in page.count_label.text()
    page.flag_filter.setCurrentIndex(page.flag_filter.findData("pick"))
    assert _ids(page) == [1]
    page.clear_filters()
    assert _ids(page) == [6, 5, 4, 3, 2, 1]

    _select(qtbot, page, [5, 6])  # tags from the detail pane apply to the whole selection
    page.tag_edit.setText("keeper")
    page.add_tag_button.click()
    assert repository.get(5).tags == ("keeper",) and page.tag_list.count() == 1
    page.tag_filter.setEditText("keeper")
    page.apply_filters()
    assert _ids(page) == [6, 5]
    page.clear_filters()

    today = datetime.now().date()
    page.until_filter.setDate(today - timedelta(days=1))  # everything was made today
    assert _ids(page) == [] and page.empty_hint.isVisible()
    page.until_filter.setDate(today)
    assert len(_ids(page)) == 6
    page.since_filter.setDate(today + timedelta(days=1))  # since after until: said, never raised
    assert "--since must be before --until" in page.count_label.text()
    page.clear_filters()
    page.sort_combo.setCurrentIndex(page.sort_combo.findData("oldest"))
    assert _ids(page) == [1, 2, 3, 4, 5, 6]
    qtbot.waitUntil(lambda: page.model_filter.count() == 2)  # facets arrive from the pool thread
    assert page.model_filter.itemData(1) == "m" and "(6)" in page.model_filter.itemText(1)


def test_detail_pane_shows_parameters_and_edits_note(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    _select(qtbot, page, [3])
    params = page.detail_params.text()
    assert "102" in params and "gan" in params and "torch" in params and "sample" in params
    assert page.detail_image.pixmap().width() == 256  # 8 px scaled by a whole 32
    page.note_edit.setPlainText("crisp strokes")
    page.save_note_button.click()
    assert GalleryRepository(page.store).get(3).note == "crisp strokes"
    page.detail_rating.ratingChanged.emit(5)  # as a click on the fifth star does
    assert GalleryRepository(page.store).get(3).rating == 5


def test_lineage_ids_are_links_and_the_context_menu_offers_the_actions(
    qtbot: QtBot, gallery_window: MainWindow
) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    source = page.store.home.absolute(repository.get(1).path)
    copy = source.with_name("frame.png")
    shutil.copyfile(source, copy)
    child = repository.add(
        page.store.home.relative(copy), "m", "gan", 8, 8, operation="interpolate", parents=[(1, "from"), (2, "to")]
    )
    gallery_window.context.signals.galleryChanged.emit()
    _select(qtbot, page, [child.id])
    lineage = page.lineage_label.text()
    assert "item:1" in lineage and "item:2" in lineage and "(from)" in lineage
    page.lineage_label.linkActivated.emit("item:2")  # a click on "#2"
    assert page.selected_ids() == [2] and "item:7" in page.lineage_label.text()

    _select(qtbot, page, [3, 4])
    page._context_menu(page.view.visualRect(page.model.index(page.model.row_of(3))).center())
    menu = page.findChild(QMenu, "galleryContextMenu")
    assert menu is not None
    texts = [action.text() for action in menu.actions()]
    assert "Compare" in texts and "Delete" in texts and "Interpolate between these two" in texts
    menu.close()


def test_compare_two_items_side_by_side(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    _select(qtbot, page, [1, 2])
    assert page.compare_action.isEnabled()
    qtbot.keyClick(page.view, Qt.Key.Key_C)
    compare = page.findChild(QDialog, "compareView")
    assert compare is not None and compare.isVisible()
    titles = [label.text() for label in compare.titles]
    assert "#2" in titles[0] and "#1" in titles[1]
    assert "<b>101</b>" in compare.details[0].text()  # the seeds differ, so they are in bold
    compare.pick_buttons[1].click()
    assert GalleryRepository(page.store).get(1).flag == "pick"
    assert "picked" in compare.titles[1].text()


def test_interpolate_inpaint_and_export_actions(qtbot: QtBot, gallery_window: MainWindow, tmp_path: Path) -> None:
    page = _gallery(gallery_window)
    signals = gallery_window.context.signals
    _select(qtbot, page, [1, 2])
    with qtbot.waitSignal(signals.useGalleryItems) as blocker:
        page.interpolate_action.trigger()
    assert blocker.args == ["interpolate", [2, 1]] and gallery_window.current_key == "interpolate"
    gallery_window.show_page("gallery")
    _select(qtbot, page, [4])
    with qtbot.waitSignal(signals.useGalleryItems) as blocker:
        page.inpaint_action.trigger()
    assert blocker.args == ["inpaint", [4]] and gallery_window.current_key == "inpaint"

    gallery_window.show_page("gallery")
    _select(qtbot, page, [1, 2, 3])
    destination = tmp_path / "picked.zip"
    page.ask_export_destination = lambda count: (destination, True)
    handle = page.export_selection()
    assert handle is not None
    with qtbot.waitSignal(handle.ended, timeout=10_000):
        pass
    assert handle.state == "finished" and destination.is_file()
    import zipfile

    with zipfile.ZipFile(destination) as archive:
        assert len([n for n in archive.namelist() if n.endswith(".png")]) == 3


def test_dropping_a_studio_png_restores_its_settings_in_generate(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    png = page.store.home.absolute(GalleryRepository(page.store).get(3).path)
    gallery_window.show_page("datasets")
    with qtbot.waitSignal(gallery_window.context.signals.restoreGenerateSettings) as blocker:
        gallery_window.handle_drop([png])
    settings = blocker.args[0]
    assert settings["seed"] == 102 and settings["model"] == "m" and settings["family"] == "gan"
    assert "_pixels" not in settings and isinstance(settings["params"], dict)
    assert gallery_window.current_key == "generate"


def test_a_png_without_studio_metadata_goes_on_to_dataset_import(
    qtbot: QtBot, gallery_window: MainWindow, tmp_path: Path
) -> None:
    plain = tmp_path / "photo.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(plain)
    fired: list[dict] = []
    gallery_window.context.signals.restoreGenerateSettings.connect(fired.append)
    gallery_window.handle_drop([plain])  # must not raise
    assert not fired and gallery_window.current_key == "datasets"
    page = _gallery(gallery_window)
    assert page.restore_settings_from(plain, quiet=True) is False and _no_error_dialog(gallery_window)
    assert page.restore_settings_from(plain) is False  # not quiet: the reason is shown
    assert "carries no Studio metadata" in gallery_window.last_error[1]


def test_missing_and_corrupt_files_show_placeholders_and_a_message(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    home = page.store.home
    home.absolute(repository.get(2).path).unlink()
    home.absolute(repository.get(5).path).write_bytes(b"not a png at all")
    for item in (2, 5):
        thumbnail_path(page.store, item).unlink()
    page.loader.cache.clear()
    page.refresh()
    qtbot.waitUntil(lambda: "loading" not in _states(page), timeout=10_000)
    states = dict(zip(_ids(page), _states(page), strict=True))
    assert states[2] == states[5] == "missing" and states[1] == "ready"
    assert "2 images missing or unreadable" in page.count_label.text()
    _select(qtbot, page, [5])
    assert "cannot be read" in page.detail_status.text()
    _select(qtbot, page, [2])
    assert "missing" in page.detail_status.text()
    assert _no_error_dialog(gallery_window)


def test_gallery_changed_reloads_and_keeps_the_selection(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    _select(qtbot, page, [3])
    run_job(generate(page.store, "m", 2, seed=500))
    gallery_window.context.signals.galleryChanged.emit()
    assert _ids(page) == [8, 7, 6, 5, 4, 3, 2, 1]
    assert page.selected_ids() == [3]

    gallery_window.show_page("generate")  # off screen: only marked stale, reloaded when shown again
    run_job(generate(page.store, "m", 1, seed=600))
    gallery_window.context.signals.galleryChanged.emit()
    assert len(_ids(page)) == 8
    gallery_window.show_page("gallery")
    assert _ids(page)[0] == 9 and page.selected_ids() == [3]


def test_trash_restore_and_empty(qtbot: QtBot, gallery_window: MainWindow) -> None:
    page = _gallery(gallery_window)
    repository = GalleryRepository(page.store)
    _select(qtbot, page, [1, 6])
    page.delete_action.trigger()
    page.buttons["galleryTrashToggle"].click()
    assert page.trash_mode and _ids(page) == [6, 1]
    _select(qtbot, page, [6])
    page.restore_action.trigger()
    assert _ids(page) == [1] and not repository.get(6).deleted
    asked: list[str] = []
    page.confirm = lambda title, question: asked.append(question) is None
    page.empty_trash_action.trigger()
    assert asked and "1 image" in asked[0] and _ids(page) == []
    assert repository.count() == 5
    page.set_trash_mode(False)
    assert len(_ids(page)) == 5


def _insert_rows(store: Store, count: int) -> None:
    """`count` gallery rows whose files do not exist, inserted directly (as bench/gallery_scale.py does)."""
    start = datetime(2025, 1, 1)
    batch = 25_000
    for first in range(1, count + 1, batch):
        rows = [
            {
                "id": item,
                "path": f"gallery/scale/{item}.png",
                "model_name": f"model{item % 7}",
                "family": ("gan", "vae", "pixelcnn", "diffusion")[item % 4],
                "operation": "sample",
                "seed": item,
                "params": {"steps": 50},
                "backend": "torch",
                "provider": "cpu",
                "width": 8,
                "height": 8,
                "rating": item % 6,
                "flag": ("none", "pick", "reject")[item % 3],
                "note": "",
                "created_at": start + timedelta(seconds=item),
            }
            for item in range(first, min(count, first + batch - 1) + 1)
        ]
        with store.session() as session:
            session.execute(insert(GalleryItem), rows)
    # What a long-lived database has (bench/gallery_scale.py does the same): without statistics SQLite
    # pages through ix_gallery_deleted and sorts all 100,000 rows for every page.
    with sqlite3.connect(store.home.database) as connection:
        connection.execute("ANALYZE")


def _on_screen(page: GalleryPage) -> list[int]:
    """The rows whose cells intersect the viewport."""
    view = page.view
    span = view.rows_on_screen()
    if span is None:
        return []
    return [
        row
        for row in range(span[0], span[1] + 1)
        if view.viewport().rect().intersects(view.visualRect(page.model.index(row)))
    ]


def _jump(qtbot: QtBot, page: GalleryPage, row: int | None = None) -> float:
    """Seconds from a jump (to `row`, or to the bottom) until every cell on screen shows its real entry."""
    view = page.view
    begun = time.perf_counter()
    if row is None:
        view.scrollToBottom()
    else:
        view.scrollTo(page.model.index(row), view.ScrollHint.PositionAtCenter)
    qtbot.waitUntil(
        lambda: bool(_on_screen(page)) and all(page.model.is_cached(r) for r in _on_screen(page)), timeout=10_000
    )
    return time.perf_counter() - begun


def test_100k_rows_are_one_fixed_grid_and_its_end_is_one_quick_jump_away(
    qtbot: QtBot, window: MainWindow, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    test_started = time.perf_counter()
    total = 100_000
    _insert_rows(store, total)
    page = _gallery(window)
    view, model = page.view, page.model

    started = time.perf_counter()
    window.show_page("gallery")
    # Shown = the first cells painted with their entries (a painted entry is what asks for its thumbnail).
    qtbot.waitUntil(lambda: page.loader.requested > 0, timeout=10_000)
    first_page = time.perf_counter() - started
    assert model.rowCount() == total  # every row from the start, in one reset: nothing inserted page by page
    assert "100,000 items in the gallery" in page.count_label.text()
    qtbot.waitUntil(view.layout_complete, timeout=10_000)
    laid_out = time.perf_counter() - started
    assert model.blocks_fetched <= 2  # what the screen shows, read with the id list or on first paint

    # No files: every cell on screen fails gracefully into a "missing" placeholder, with no dialog.
    on_screen = _on_screen(page)
    qtbot.waitUntil(lambda: all(model.data(model.index(r), STATE_ROLE) == "missing" for r in on_screen), timeout=10_000)
    assert _no_error_dialog(window) and len(page.missing) >= len(on_screen)
    assert page.loader.requested < 2 * BLOCK_SIZE  # only cells that were painted asked for a thumbnail

    # The end is one jump away, and shows real entries there (no 450 pages of fetches first).
    to_end = _jump(qtbot, page)
    last = model.index(total - 1)
    assert view.viewport().rect().intersects(view.visualRect(last))
    entry = model.data(last, ENTRY_ROLE)
    assert entry is not None and entry.id == model.id_of(total - 1) == 1  # newest first: the oldest is last
    qtbot.waitUntil(lambda: model.data(last, STATE_ROLE) == "missing", timeout=10_000)  # thumbnail asked, failed
    to_middle = _jump(qtbot, page, total // 2)

    # A refresh (galleryChanged) comes back to the same place with the same selection, 50,000 rows down.
    middle_id = model.id_of(total // 2)
    page.select_ids([middle_id])
    top = page._top_visible_id()
    begun = time.perf_counter()
    window.context.signals.galleryChanged.emit()
    qtbot.waitUntil(lambda: not page.loading and not view.scroll_pending, timeout=10_000)
    refreshed = time.perf_counter() - begun
    assert top is not None and page._top_visible_id() == top and page.selected_ids() == [middle_id]
    qtbot.waitUntil(view.layout_complete, timeout=10_000)  # End goes to the last row placed so far

    view.setCurrentIndex(model.index(0))
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_End)  # End reaches the very last row
    assert view.currentIndex().row() == total - 1

    # Jumping about reads many blocks, but the cache keeps at most MAX_BLOCKS of them.
    jumps = [_jump(qtbot, page, row) for row in range(1_000, total, total // 70)]
    assert model.blocks_fetched > MAX_BLOCKS and model.cached_blocks <= MAX_BLOCKS
    assert model.cached_count <= MAX_BLOCKS * BLOCK_SIZE
    cached, cached_blocks = model.cached_count, model.cached_blocks

    # Rows not read yet show placeholders while a worker reads their block (reads made slow on purpose).
    model.inline_budget = 0.0
    view.scrollTo(model.index(total // 3), view.ScrollHint.PositionAtCenter)
    view.viewport().repaint()
    waiting = _on_screen(page)
    assert waiting and not any(model.is_cached(r) for r in waiting)
    assert model.data(model.index(waiting[0]), STATE_ROLE) == "loading"
    begun = time.perf_counter()
    qtbot.waitUntil(lambda: all(model.is_cached(r) for r in _on_screen(page)), timeout=10_000)
    off_thread = time.perf_counter() - begun
    model.inline_budget = INLINE_FETCH_BUDGET

    # Ctrl+A selects all 100,000 rows (not just those read), and quickly.
    view.setFocus()
    begun = time.perf_counter()
    qtbot.keyClick(view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    select_all = time.perf_counter() - begun
    assert selection_count(view) == total and len(page.selected_ids()) == total
    assert "100,000 selected" in page.count_label.text()
    view.clearSelection()

    # A filter resets the grid to the filtered count in one go.
    expected = GalleryRepository(store).count(GalleryFilter(min_rating=5))
    begun = time.perf_counter()
    page.rating_filter.setCurrentIndex(page.rating_filter.findData(5))
    _settle(page)
    filtered = time.perf_counter() - begun
    assert model.rowCount() == expected == total // 6
    assert f"{expected:,} items match" in page.count_label.text()
    assert model.data(model.index(0), ENTRY_ROLE).rating == 5 and model.cached_blocks <= 2
    page.clear_filters()
    assert len(_ids(page)) == total

    blocks = sorted(model.block_seconds)
    with capsys.disabled():
        print(
            f"\n100k gallery: first page shown {first_page * 1000:.0f} ms after the refresh, layout complete at "
            f"{laid_out * 1000:.0f} ms; jump to the end {to_end * 1000:.0f} ms, to the middle "
            f"{to_middle * 1000:.0f} ms, {len(jumps)} more jumps median {statistics.median(jumps) * 1000:.0f} ms "
            f"worst {max(jumps) * 1000:.0f} ms; off-thread block shown {off_thread * 1000:.0f} ms after the paint; "
            f"block of {BLOCK_SIZE} read in median {statistics.median(blocks) * 1000:.1f} ms, worst "
            f"{blocks[-1] * 1000:.1f} ms ({model.blocks_fetched} reads); after the jumps the cache held {cached} "
            f"entries in {cached_blocks} blocks (bound {MAX_BLOCKS * BLOCK_SIZE}), ids and index "
            f"{model.ids_nbytes / 2**20:.1f} MiB; Ctrl+A {select_all * 1000:.0f} ms; rating filter to "
            f"{expected:,} rows {filtered * 1000:.0f} ms; refresh back at row {total // 2:,} "
            f"{refreshed * 1000:.0f} ms; test {time.perf_counter() - test_started:.1f} s"
        )
    # Generous bounds for a shared two-core machine.
    assert first_page < 3.0
    assert to_end < 2.0 and to_middle < 2.0 and max(jumps) < 2.0
    assert select_all < 2.0 and refreshed < 3.0


def test_an_older_query_answering_late_is_dropped(
    qtbot: QtBot, gallery_window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _gallery(gallery_window)
    GalleryRepository(page.store).set_flag([1, 3], "pick")
    reading = threading.Event()
    original = GalleryRepository.ids

    def slow_for_picks(
        self: GalleryRepository, filters: GalleryFilter | None = None, sort: str = "newest"
    ) -> list[int]:
        if filters is not None and filters.flag == "pick":
            reading.set()
            time.sleep(0.4)
        return original(self, filters, sort)

    monkeypatch.setattr(GalleryRepository, "ids", slow_for_picks)
    dropped = page.model.stale_dropped
    page.flag_filter.setCurrentIndex(page.flag_filter.findData("pick"))
    assert reading.wait(5)
    page.flag_filter.setCurrentIndex(0)  # asked later, answered first
    assert _ids(page) == [6, 5, 4, 3, 2, 1]
    qtbot.waitUntil(lambda: page.model.stale_dropped == dropped + 1, timeout=5_000)
    assert _ids(page) == [6, 5, 4, 3, 2, 1] and "6 items in the gallery" in page.count_label.text()


def test_unreadable_ids_or_entries_keep_the_grid_usable_and_say_why_once(
    qtbot: QtBot, gallery_window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = _gallery(gallery_window)

    def no_ids(self: GalleryRepository, filters: GalleryFilter | None = None, sort: str = "newest") -> list[int]:
        raise StudioError("database is locked")

    monkeypatch.setattr(GalleryRepository, "ids", no_ids)
    page.refresh()
    assert _ids(page) == [6, 5, 4, 3, 2, 1]  # the rows shown stay
    assert "cannot be read" in page.count_label.text() and "locked" in gallery_window.last_error[1]
    monkeypatch.undo()

    def no_entries(self: GalleryRepository, ids: list[int]) -> list[object]:
        raise StudioError("disk I/O error")

    monkeypatch.setattr(GalleryRepository, "entries", no_entries)
    reasons: list[str] = []
    page.model.fetchFailed.connect(reasons.append)
    page.refresh()
    assert _ids(page) == [6, 5, 4, 3, 2, 1] and "6 items in the gallery" in page.count_label.text()
    qtbot.waitUntil(lambda: _states(page) == ["missing"] * 6)  # placeholders, not cells stuck "loading"
    qtbot.wait(50)
    assert reasons == ["disk I/O error"]  # one message, not one per cell

    monkeypatch.undo()
    page.refresh()  # the store is back: so are the cells
    qtbot.waitUntil(lambda: _states(page) == ["ready"] * 6, timeout=10_000)
    assert page.model.entry(0) is not None and page.model.entry(0).id == 6
