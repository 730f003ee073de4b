"""The gallery's curation controls through the real window: collections, text search, saved filters, "Use these
settings", "Reproduce", making a dataset of the selection, and saving an interpolation as an animation."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QListWidgetItem
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.generation import EndpointRef, generate, interpolate
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.collections import CollectionRepository
from studio.store.database import open_store
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.store.tables import Dataset
from studio.ui.gallery import GalleryPage
from studio.ui.main_window import MainWindow
from studio.ui.pages.interpolate import InterpolatePage
from tests.ui.gallery_helpers import gallery_page as _gallery
from tests.ui.gallery_helpers import settle_gallery as _settle

TINY_GAN = {"width": 8, "latent_dim": 8, "batch_size": 8}
# Items: 1-4 samples (seeds 100-103), 5-7 an interpolation from seed 1 to seed 2, 8 an image from another tool.
SAMPLES, FRAMES, IMPORTED = [1, 2, 3, 4], [5, 6, 7], 8
SHOTS = os.environ.get("STUDIO_SHOTS")  # a folder to keep the rendered controls in (they are looked at)


@pytest.fixture(scope="module")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with a tiny GAN, four samples, a three-frame interpolation and one imported image."""
    root = tmp_path_factory.mktemp("curation-template") / "home"
    store = open_store(DataHome(root).ensure())
    try:
        run_job(add_sample(store, "digits", size=8))
        run_job(
            train(store, TrainOptions("m", family="gan", dataset="digits", steps=3, settings=TINY_GAN, preview_every=0))
        )
        run_job(generate(store, "m", 4, seed=100))
        run_job(interpolate(store, "m", EndpointRef(seed=1), EndpointRef(seed=2), frames=3))
        path = store.home.gallery / "elsewhere.png"
        Image.new("L", (8, 8), 90).save(path)
        GalleryRepository(store).add(store.home.relative(path), "sd-1.5", "import", 8, 8, operation="import")
    finally:
        store.close()
    return root


@pytest.fixture
def window(qtbot: QtBot, isolated_home: Path, template_home: Path, settings: QSettings) -> Iterator[MainWindow]:
    """The main window on a copy of the template home, showing the Gallery with its rows loaded."""
    shutil.copytree(template_home, isolated_home)
    store = open_store(DataHome(isolated_home).ensure())
    main = MainWindow(store, settings)
    main.confirm_close = lambda: True
    qtbot.addWidget(main)
    main.resize(1400, 820)
    main.show()
    main.show_page("gallery")
    _settle(_gallery(main))
    yield main
    main.close()
    store.close()


def _ids(page: GalleryPage) -> list[int]:
    _settle(page)
    return sorted(page.model.ids())


def _shot(widget: object, name: str, tmp_path: Path) -> None:
    folder = Path(SHOTS) if SHOTS else tmp_path
    assert widget.grab().save(str(folder / f"{name}.png"))  # type: ignore[attr-defined]


def _row(panel_list: object, name: str) -> QListWidgetItem:
    for row in range(panel_list.count()):  # type: ignore[attr-defined]
        item = panel_list.item(row)  # type: ignore[attr-defined]
        if item.data(Qt.ItemDataRole.UserRole) == name:
            return item
    raise AssertionError(f"no row {name}")


def test_collections_are_made_filled_opened_renamed_and_deleted(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    page = _gallery(window)
    panel = page.curation.collections
    for name in ("collectionsPanel", "collectionsList", "newCollectionButton", "renameCollectionButton",
                 "deleteCollectionButton", "addToCollectionButton"):  # fmt: skip
        assert window.findChild(object, name) is not None, name
    answers = iter(["Keepers", "Best"])
    page.curation.ask_text = lambda *_: next(answers)
    page.confirm = lambda *_: True
    qtbot.mouseClick(panel.new_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.names == ["Keepers"] and panel.chosen() == "Keepers")
    page.select_ids([1, 3])
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.list.item(1).text() == "Keepers (2)")

    # A click opens the collection as a filter, with a chip that says so.
    panel.list.itemClicked.emit(_row(panel.list, "Keepers"))
    qtbot.waitUntil(lambda: _ids(page) == [1, 3])
    assert page.filter_bar.collection_chip.isVisible() and "Keepers" in page.filter_bar.collection_chip.text()
    page.select_ids([1])
    qtbot.waitUntil(lambda: "Keepers" in page.tag_list.toolTip())
    _shot(window, "gallery-collections", tmp_path)

    # Renamed while open: the grid stays on it under its new name.
    qtbot.mouseClick(panel.rename_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.names == ["Best"] and page.filter_bar.collection == "Best")
    assert _ids(page) == [1, 3]

    # Deleted: the items stay, the grid shows everything again.
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.names == [] and page.filter_bar.collection is None)
    assert _ids(page) == [*SAMPLES, *FRAMES, IMPORTED]
    assert CollectionRepository(page.store).list() == []
    assert not page.filter_bar.collection_chip.isVisible()

    # A taken name is refused with the store's reason.
    CollectionRepository(page.store).create("Taken")
    page.curation.ask_text = lambda *_: "taken"
    qtbot.mouseClick(panel.new_button, Qt.MouseButton.LeftButton)
    assert "exists already" in window.last_error[1]


def test_text_search_and_saved_filters(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    page = _gallery(window)
    repository = GalleryRepository(page.store)
    repository.set_note(2, "a lovely Curl in the stroke")
    repository.tag([4], "curly")
    search = page.filter_bar.search_edit
    assert search.objectName() == "gallerySearchEdit"
    search.setText("CURL")
    qtbot.keyClick(search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _ids(page) == [2, 4])
    assert page.filters.search == "CURL"
    search.setText("slerp")  # the interpolation's method, in its settings
    qtbot.keyClick(search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: _ids(page) == FRAMES)

    # Saved with the sort, cleared, applied again from the menu.
    page.sort_combo.setCurrentIndex(page.sort_combo.findData("oldest"))
    _settle(page)
    saved = page.curation.saved_filters
    saved.ask_text = lambda *_: "Walks"
    saved.fill_menu()
    save_action = next(a for a in saved.menu_.actions() if a.objectName() == "saveFilterAction")
    save_action.trigger()
    assert saved.names() == ["Walks"]
    page.clear_filters()
    page.sort_combo.setCurrentIndex(page.sort_combo.findData("newest"))
    qtbot.waitUntil(lambda: len(_ids(page)) == 8)
    saved.fill_menu()
    apply = next(a for a in saved.menu_.actions() if a.objectName() == "savedFilter:Walks")
    apply.trigger()
    qtbot.waitUntil(lambda: _ids(page) == FRAMES)
    assert search.text() == "slerp" and page.sort == "oldest"
    _shot(page.filter_bar, "gallery-filter-bar", tmp_path)

    # Saving under a taken name asks first; deleting asks too.
    page.confirm = lambda *_: False
    save_action = next(a for a in saved.menu_.actions() if a.objectName() == "saveFilterAction")
    save_action.trigger()
    saved.delete("Walks")
    assert saved.names() == ["Walks"]
    page.confirm = lambda *_: True
    saved.delete("Walks")
    assert saved.names() == []
    page.clear_filters()
    saved.save_current()  # nothing to save: the reason is shown
    assert "every item" in window.last_error[1]


def test_use_these_settings_opens_the_page_that_made_the_item(qtbot: QtBot, window: MainWindow) -> None:
    page = _gallery(window)
    reuse = page.detail.reuse
    page.select_ids([3])
    qtbot.waitUntil(lambda: reuse.entry is not None and reuse.entry.id == 3)
    with qtbot.waitSignal(window.context.signals.restoreGenerateSettings) as blocker:
        qtbot.mouseClick(reuse.use_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0]["seed"] == 102 and blocker.args[0]["model"] == "m"
    assert window.current_key == "generate" and window.page["generate"].seed_spin.value() == 102

    window.show_page("gallery")
    page.select_ids([FRAMES[1]])
    qtbot.waitUntil(lambda: reuse.entry is not None and reuse.entry.id == FRAMES[1])
    qtbot.mouseClick(reuse.use_button, Qt.MouseButton.LeftButton)
    interpolate_page = window.page["interpolate"]
    assert isinstance(interpolate_page, InterpolatePage)
    assert window.current_key == "interpolate"
    assert (interpolate_page.start.text(), interpolate_page.end.text()) == ("1", "2")
    assert interpolate_page.frames_spin.value() == 3 and interpolate_page.model_picker.current().name == "m"

    # An image from another tool can be neither: both buttons say why.
    window.show_page("gallery")
    page.select_ids([IMPORTED])
    qtbot.waitUntil(lambda: reuse.entry is not None and reuse.entry.id == IMPORTED)
    assert not reuse.use_button.isEnabled() and not reuse.reproduce_button.isEnabled()
    assert "imported from another tool" in reuse.reproduce_button.toolTip()
    assert "imported from another tool" in reuse.use_button.toolTip()


def test_reproduce_makes_the_item_again_and_says_whether_it_matched(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    page = _gallery(window)
    reuse = page.detail.reuse
    page.select_ids([2])
    qtbot.waitUntil(lambda: reuse.entry is not None and reuse.entry.id == 2)
    qtbot.mouseClick(reuse.reproduce_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: reuse.result_label.text().startswith("Reproduced"), timeout=30_000)
    assert "pixels match" in reuse.result_label.text()
    _shot(page.detail, "gallery-detail-reproduce", tmp_path)

    # A file changed since it was made: the pixels differ, and the pane says so.
    path = page.store.home.absolute(GalleryRepository(page.store).get(4).path)
    with Image.open(path) as image:
        info, pixels = dict(image.info), image.copy()
    pixels.putpixel((0, 0), 255 - pixels.getpixel((0, 0)))  # type: ignore[operator]
    from PIL.PngImagePlugin import PngInfo

    chunks = PngInfo()
    for key, value in info.items():
        if isinstance(value, str):
            chunks.add_text(key, value)
    pixels.save(path, pnginfo=chunks)
    page.select_ids([4])
    qtbot.waitUntil(lambda: reuse.entry is not None and reuse.entry.id == 4)
    assert not reuse.result_label.isVisible()  # another item: the last verdict is not shown on it
    qtbot.mouseClick(reuse.reproduce_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: reuse.result_label.text().startswith("Not reproduced"), timeout=30_000)


def test_the_selection_becomes_a_dataset(qtbot: QtBot, window: MainWindow) -> None:
    page = _gallery(window)
    action = page.action_bar.to_dataset
    assert not action.isEnabled()
    assert window.findChild(object, "galleryToDatasetButton") is not None
    page.select_ids(SAMPLES[:3])
    qtbot.waitUntil(action.isEnabled)
    asked: list[int] = []
    page.curation.ask_dataset = lambda count: (asked.append(count), ("curated", "model"))[1]
    with qtbot.waitSignal(window.context.signals.datasetsChanged, timeout=30_000):
        action.trigger()
    assert asked == [3]
    with page.store.sessions() as session:
        made = {row.name: row.count for row in session.query(Dataset)}
    assert made["curated"] == 3
    # In the grid's context menu too.
    page.view.customContextMenuRequested.emit(page.view.visualRect(page.model.index(0)).center())
    menu = page.findChild(object, "galleryContextMenu")
    assert menu is not None and action in menu.actions()
    menu.close()


def test_an_interpolation_is_saved_as_an_animated_gif(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    window.show_page("interpolate")
    page = window.page["interpolate"]
    assert isinstance(page, InterpolatePage)
    assert not page.animate_button.isEnabled()  # nothing to animate yet
    page.start.set_text("5")
    page.end.set_text("6")
    page.frames_spin.setValue(4)
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.animate_button.isEnabled() and page.strip.count() == 4)
    _shot(page, "interpolate-animate", tmp_path)
    destination = tmp_path / "walk.gif"
    page.ask_animation_path = lambda: destination
    page.fps_spin.setValue(5)
    qtbot.mouseClick(page.animate_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle()
    with Image.open(destination) as image:
        assert image.n_frames == 4 and image.info["duration"] == 200
    # Inside the data home: refused, with the reason.
    page.ask_animation_path = lambda: page.store.home.root / "walk.gif"
    qtbot.mouseClick(page.animate_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle()
    assert "inside the data home" in window.last_error[1]
    assert GalleryRepository(page.store).count(GalleryFilter(operation="interpolate")) == 7
