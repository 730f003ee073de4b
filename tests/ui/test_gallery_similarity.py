"""The gallery with a real tiny encoder: more like this, the memorisation panel, the memorised filter,
near-duplicates with "keep the best" (undoable), and embeddings computed in the background as items arrive."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.datasets.storage import load_images
from studio.engine.embedding.queries import dataset_encoder, similar
from studio.engine.generation import generate
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.embeddings import EmbeddingRepository
from studio.store.gallery import GalleryRepository
from studio.ui.gallery import GalleryPage
from studio.ui.gallery.memorisation import PANEL_SIZE
from studio.ui.gallery.painting import scale_crisp
from studio.ui.gallery.similarity import SIMILAR_COUNT
from studio.ui.main_window import MainWindow
from studio.ui.widgets import image_to_qimage
from tests.embedding.conftest import build_world
from tests.ui.gallery_helpers import gallery_page as _gallery
from tests.ui.gallery_helpers import settle_gallery as _settle

SHOTS = Path("/tmp/notes/shots14")


@dataclass(frozen=True)
class Ids:
    """The template's items: the GAN's (seeds 0..5, then seed 0 again), the copied training image, and one
    item of a model whose dataset has no encoder."""

    items: list[int]
    copy_id: int
    copy_position: int
    shapes_item: int


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Ids]:
    """A data home with the embedding tests' world (digits, a tiny encoder, a tiny GAN and its items) plus a
    'shapes' dataset without an encoder and one item of a model trained on it; built once for the module."""
    root = tmp_path_factory.mktemp("similarity-template") / "home"
    world = build_world(root)
    store = world.store
    try:
        run_job(add_sample(store, "shapes", size=16, count=64))
        gan = {"width": 8, "batch_size": 8}
        run_job(train(store, TrainOptions("s", family="gan", dataset="shapes", steps=1, settings=gan)))
        shapes_item = run_job(generate(store, "s", count=1, seed=7)).items[0]["id"]
    finally:
        store.close()
    return root, Ids(world.items, world.copy_id, world.copy_position, shapes_item)


@pytest.fixture
def ids(template: tuple[Path, Ids]) -> Ids:
    """The template's item ids."""
    return template[1]


@pytest.fixture
def sim_store(isolated_home: Path, template: tuple[Path, Ids]) -> Iterator[Store]:
    """The test's own copy of the template home, opened."""
    shutil.copytree(template[0], isolated_home)
    store = open_store(DataHome(isolated_home).ensure())
    yield store
    store.close()


@pytest.fixture
def sim_window(qtbot: QtBot, sim_store: Store, settings: QSettings) -> Iterator[MainWindow]:
    """The main window showing the Gallery of the copied home, its rows loaded."""
    main = MainWindow(sim_store, settings)
    main.confirm_close = lambda: True
    qtbot.addWidget(main)
    main.resize(1280, 860)
    main.show()
    main.show_page("gallery")
    _settle(_gallery(main))
    yield main
    main.close()


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


def _grid_flag(page: GalleryPage, item_id: int) -> str:
    """The flag the grid shows for an item."""
    row = page.model.row_of(item_id)
    entry = page.model.entry(row) if row is not None else None
    assert entry is not None
    return entry.flag


def _pixels(pixmap: QPixmap) -> QImage:
    return pixmap.toImage().convertToFormat(QImage.Format.Format_RGB32)


def _shot(widget: QWidget | None, name: str) -> None:
    assert widget is not None
    for _ in range(3):  # the layout a changed text asked for, as the event loop does before a paint
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert widget.grab().save(str(SHOTS / name))


def test_more_like_this_shows_the_identical_item_first_under_a_removable_chip(
    qtbot: QtBot, sim_window: MainWindow, ids: Ids
) -> None:
    page = _gallery(sim_window)
    first, twin = ids.items[0], ids.items[-1]
    everything = sorted(_ids(page))
    _select(qtbot, page, [first])
    assert page.more_like_this_button.isEnabled() and not page.similar_chip.isVisible()
    page.more_like_this_button.click()
    qtbot.waitUntil(page.similar_chip.isVisible, timeout=30_000)
    shown = _ids(page)
    assert shown[0] == twin and first not in shown
    # The grid keeps the encoder's order (nearest first), not the sort combo's.
    assert shown == [hit["id"] for hit in similar(page.store, first, SIMILAR_COUNT)]
    assert ids.shapes_item not in shown  # another dataset's encoder space: never compared
    assert page.filter_bar.similar_label.text() == f"Like #{first}"
    assert "nearest first" in page.similar_chip.toolTip() and not page.sort_combo.isEnabled()
    assert page.filters.ids == tuple(shown) and f"{len(shown)} items match" in page.count_label.text()
    assert page.selected_ids() == [twin]  # the nearest one, shown in the detail pane
    _shot(page.filter_bar, "filter_bar_like_chip.png")

    page.filter_bar.similar_remove.click()  # the chip's close button: every item again, sorted again
    assert sorted(_ids(page)) == everything
    assert not page.similar_chip.isVisible() and page.sort_combo.isEnabled()
    assert page.filter_bar.order is None

    page.more_like_this(first)  # Clear takes the chip off too
    qtbot.waitUntil(page.similar_chip.isVisible, timeout=30_000)
    page.clear_filters_button.click()
    assert sorted(_ids(page)) == everything and not page.similar_chip.isVisible()
    assert _no_error_dialog(sim_window)


def test_memorisation_panel_shows_the_copied_training_image_and_the_badge(
    qtbot: QtBot, sim_window: MainWindow, ids: Ids
) -> None:
    page = _gallery(sim_window)
    panel = page.memorisation_panel
    _select(qtbot, page, [ids.copy_id])
    assert panel.isVisible() and panel.item_id == ids.copy_id
    qtbot.waitUntil(lambda: panel.found is not None, timeout=30_000)
    found = panel.found
    assert found is not None and found["position"] == ids.copy_position and found["dataset"] == "digits"
    assert panel.memorised and panel.badge.isVisible() and panel.badge.text() == "Memorised"
    assert found["distance"] < 1e-4 and "distance" in panel.summary.text()
    assert "95%" in panel.badge.toolTip()  # the rule, said where the verdict is
    training = np.asarray(load_images(page.store, "digits"))[ids.copy_position]
    expected = scale_crisp(image_to_qimage(training), PANEL_SIZE)
    assert _pixels(panel.training_image.pixmap()) == _pixels(expected)
    # The item is that training image, pixel for pixel, and both are shown at one scale.
    assert _pixels(panel.item_image.pixmap()) == _pixels(panel.training_image.pixmap())
    assert panel.item_caption.text() == f"#{ids.copy_id}"
    _shot(page.detail.widget(), "detail_memorised.png")
    _shot(sim_window, "window_memorised.png")

    _select(qtbot, page, [ids.items[1]])  # another item: the panel follows the selection
    qtbot.waitUntil(lambda: panel.found is not None and panel.item_id == ids.items[1], timeout=30_000)
    assert panel.found is not None and panel.found["distance"] > found["distance"]
    assert panel.badge.isVisible() == panel.memorised
    _shot(page.detail.widget(), "detail_generated.png")
    page.rate_selection(3)  # the same item shown again: its nearest image is not asked for again
    assert panel.found is not None and panel.item_id == ids.items[1]
    assert _no_error_dialog(sim_window)


def test_an_item_without_an_encoder_says_so_in_one_line_and_no_dialog(
    qtbot: QtBot, sim_window: MainWindow, ids: Ids
) -> None:
    page = _gallery(sim_window)
    panel = page.memorisation_panel
    _select(qtbot, page, [ids.shapes_item])
    hint = "dataset 'shapes' has no encoder yet: train one with `studio embed train shapes`"
    qtbot.waitUntil(lambda: hint in panel.summary.toolTip(), timeout=30_000)
    assert panel.isVisible() and not panel.item_image.isVisible() and not panel.badge.isVisible()
    _shot(page.detail.widget(), "detail_no_encoder.png")
    with qtbot.waitSignal(
        sim_window.context.signals.statusMessage,
        check_params_cb=lambda message, _timeout: "No items like" in message,
        timeout=30_000,
    ) as said:
        page.more_like_this_button.click()
    assert hint in said.args[0] and not page.similar_chip.isVisible()
    assert _no_error_dialog(sim_window) and getattr(sim_window, "last_error", None) is None


def test_memorised_filter_shows_the_copied_item(qtbot: QtBot, sim_window: MainWindow, ids: Ids) -> None:
    page = _gallery(sim_window)
    qtbot.waitUntil(lambda: not page.similarity.embedding, timeout=30_000)  # the first show's round
    page.memorised_filter.click()
    shown = _ids(page)
    assert ids.copy_id in shown and set(shown) <= {ids.copy_id, *ids.items}
    assert page.filters.memorised and "match" in page.count_label.text()
    page.clear_filters()
    assert not page.memorised_filter.isChecked() and len(_ids(page)) == len(ids.items) + 2


def test_near_duplicates_keep_the_best_rejects_the_rest_and_undo_restores(
    qtbot: QtBot, sim_window: MainWindow, ids: Ids
) -> None:
    page = _gallery(sim_window)
    repository = GalleryRepository(page.store)
    first, twin = ids.items[0], ids.items[-1]
    repository.rate([twin], 4)  # the better rated copy is the one kept
    page.refresh()
    _settle(page)
    page.duplicates_action.trigger()
    dialog = page.duplicates_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: bool(dialog.findings.groups), timeout=30_000)
    group = next(g for g in dialog.findings.groups if first in g.ids)
    assert group.keep == twin and twin in group.ids
    assert dialog.tiles[twin].property("kept") == "true" and dialog.tiles[first].property("kept") == "false"
    # The shapes item has no encoder: left out and said so, the others compared all the same.
    assert "1 item could not be compared" in dialog.summary.text() and "no encoder yet" in dialog.summary.text()
    assert dialog.keep_best_button.isEnabled()
    _shot(dialog, "duplicates_dialog.png")

    rejected = dialog.findings.rejected
    before = {i: repository.get(i).flag for i in rejected}
    dialog.keep_best_button.click()
    assert repository.get(first).flag == "reject" and repository.get(twin).flag == "none"
    assert all(repository.get(i).flag == "reject" for i in rejected)
    assert _grid_flag(page, first) == "reject"  # the grid shows it
    assert not dialog.keep_best_button.isEnabled() and "Ctrl+Z" in dialog.summary.text()
    _shot(dialog, "duplicates_dialog_applied.png")

    page.undo()  # one step gives each item its own flag back
    assert {i: repository.get(i).flag for i in rejected} == before
    assert _grid_flag(page, first) == "none"
    assert _no_error_dialog(sim_window)


def test_near_duplicates_over_a_filter_and_in_the_trash(qtbot: QtBot, sim_window: MainWindow, ids: Ids) -> None:
    page = _gallery(sim_window)
    page.model_filter.addItem("s", "s")  # before the facets arrive: the filter works on the name
    page.model_filter.setCurrentIndex(page.model_filter.findData("s"))
    assert _ids(page) == [ids.shapes_item]
    page.duplicates_action.trigger()
    dialog = page.duplicates_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: "Cannot look for near-duplicates" in dialog.summary.text(), timeout=30_000)
    assert "no encoder yet" in dialog.summary.text() and not dialog.keep_best_button.isEnabled()
    assert _no_error_dialog(sim_window)
    page.set_trash_mode(True)
    assert not page.duplicates_action.isEnabled()


def test_new_items_are_embedded_in_the_background_one_round_at_a_time(
    qtbot: QtBot, sim_window: MainWindow, ids: Ids
) -> None:
    page = _gallery(sim_window)
    store = page.store
    encoder = dataset_encoder(store, "digits")
    embeddings = EmbeddingRepository(store)
    qtbot.waitUntil(lambda: not page.similarity.embedding, timeout=30_000)  # the first show's round
    assert embeddings.missing_count(encoder) == 0
    run_job(generate(store, "g", count=3, seed=40))
    assert embeddings.missing_count(encoder) == 3
    rounds = page.similarity.rounds
    for _ in range(5):  # a burst of generations finishing: one round runs, at most one more follows
        sim_window.context.signals.galleryChanged.emit()
    assert page.similarity.embedding
    qtbot.waitUntil(lambda: not page.similarity.embedding, timeout=30_000)
    assert 1 <= page.similarity.rounds - rounds <= 2
    assert embeddings.missing_count(encoder) == 0
    assert _no_error_dialog(sim_window)
