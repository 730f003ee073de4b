"""The Inpaint page and its mask canvas, with the real window, simulated mouse strokes and tiny real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.generation import generate
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.store.database import Store
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.ui.gallery.reuse import use_settings
from studio.ui.main_window import MainWindow
from studio.ui.pages.inpaint import InpaintPage
from studio.ui.widgets.mask_canvas import MaskCanvas
from tests.engine.conftest import TINY

LEFT = Qt.MouseButton.LeftButton


def _train(store: Store, *families: str) -> None:
    run_job(add_sample(store, "digits", size=8))
    for family in families:
        run_job(
            train(
                store,
                TrainOptions(family, family=family, dataset="digits", steps=3, settings=TINY[family], preview_every=0),
            )
        )


def _page(window: MainWindow) -> InpaintPage:
    window.show_page("inpaint")
    return window.page["inpaint"]


def _image_file(folder: Path, width: int = 8, height: int = 8) -> Path:
    path = folder / f"source-{width}x{height}.png"
    pixels = (np.arange(width * height, dtype=np.uint32).reshape(height, width) * 7 % 256).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _stroke(qtbot: QtBot, canvas: MaskCanvas, points: list[tuple[float, float]]) -> None:
    """Press at the first image point, drag through the others, release at the last (pixel centres)."""
    where = [canvas.widget_point(x + 0.5, y + 0.5) for x, y in points]
    qtbot.mousePress(canvas, LEFT, pos=where[0])
    for point in where[1:]:
        qtbot.mouseMove(canvas, point)
    qtbot.mouseRelease(canvas, LEFT, pos=where[-1])


def _wheel(widget: MaskCanvas, up: bool, modifiers: Qt.KeyboardModifier) -> None:
    centre = QPointF(widget.width() / 2, widget.height() / 2)
    event = QWheelEvent(
        centre,
        widget.mapToGlobal(centre),
        QPoint(0, 0),
        QPoint(0, 120 if up else -120),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(widget, event)


def test_painting_sets_mask_pixels_and_undo_redo_work(
    qtbot: QtBot, window: MainWindow, store: Store, tmp_path: Path
) -> None:
    page = _page(window)
    for name in (
        "inpaintOpenButton",
        "inpaintItemEdit",
        "inpaintItemLoadButton",
        "inpaintCanvas",
        "inpaintBrushButton",
        "inpaintEraserButton",
        "inpaintBrushSize",
        "inpaintSoftEdgeCheck",
        "inpaintUndoButton",
        "inpaintRedoButton",
        "inpaintClearButton",
        "inpaintInvertButton",
        "inpaintZoomInButton",
        "inpaintZoomOutButton",
        "inpaintZoomFitButton",
        "inpaintModelCombo",
        "inpaintBackendCombo",
        "inpaintProviderCombo",
        "inpaintCountSpin",
        "inpaintSeedSpin",
        "inpaintSeedDiceButton",
        "inpaintRunButton",
        "inpaintResults",
        "inpaintComparison",
        "inpaintOpenGalleryButton",
        "inpaintCompareMaskCheck",
    ):
        widget = window.findChild(object, name)
        assert widget is not None and widget.accessibleName(), name
    assert page.open_image_file(_image_file(tmp_path))
    canvas = page.canvas
    assert canvas.zoom > 8  # fitted to the view, by whole pixels
    page.size_slider.setValue(1)
    _stroke(qtbot, canvas, [(1, 1), (4, 1)])
    expected = np.zeros((8, 8), bool)
    expected[1, 1:5] = True
    assert np.array_equal(canvas.mask_bool(), expected)
    assert "4 of 64 pixels" in page.mask_info.text()
    _stroke(qtbot, canvas, [(6, 6)])
    assert canvas.mask_bool()[6, 6] and canvas.mask_bool().sum() == 5

    qtbot.mouseClick(page.undo_button, LEFT)
    assert np.array_equal(canvas.mask_bool(), expected)
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.mask_bool().any() and not page.undo_button.isEnabled()
    qtbot.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(canvas.mask_bool(), expected)
    qtbot.mouseClick(page.redo_button, LEFT)
    assert canvas.mask_bool().sum() == 5 and not page.redo_button.isEnabled()
    # A new stroke after an undo forgets what was undone.
    canvas.undo()
    _stroke(qtbot, canvas, [(0, 7)])
    assert not canvas.can_redo

    qtbot.mouseClick(page.clear_button, LEFT)
    assert not canvas.mask_bool().any()
    canvas.undo()
    assert canvas.mask_bool()[1, 1]


def test_the_eraser_clears_and_the_soft_edge_is_thresholded(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    page = _page(window)
    page.open_image_file(_image_file(tmp_path, 16, 16))
    canvas = page.canvas
    page.size_slider.setValue(3)
    _stroke(qtbot, canvas, [(3, 3), (12, 3), (12, 12)])
    painted = canvas.mask_bool().copy()
    assert painted[2:5, 3:13].all() and painted[3:13, 11:14].all()

    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_E)  # E and B switch tools while the canvas has the focus
    assert canvas.tool == "eraser" and page.eraser_button.isChecked() and not page.brush_button.isChecked()
    qtbot.keyClick(canvas, Qt.Key.Key_B)
    assert canvas.tool == "brush"
    qtbot.mouseClick(page.eraser_button, LEFT)
    assert canvas.tool == "eraser"
    _stroke(qtbot, canvas, [(3, 3), (12, 3)])
    after = canvas.mask_bool()
    assert not after[2:5, 2:12].any()  # erased along the top
    assert after[6:13, 11:14].all()  # the rest is kept

    # A soft brush stores values between 0 and 1; thresholded at 0.5 it is the hard brush's disc.
    qtbot.mouseClick(page.brush_button, LEFT)
    page.size_slider.setValue(5)
    canvas.clear()
    _stroke(qtbot, canvas, [(4, 10)])
    hard = canvas.mask_bool().copy()
    canvas.clear()
    qtbot.mouseClick(page.soft_check, LEFT)
    assert canvas.soft_edge
    _stroke(qtbot, canvas, [(4, 10)])
    soft = canvas.mask_values()
    assert ((soft > 0) & (soft < 1)).any()
    assert np.array_equal(canvas.mask_bool(), hard)


def test_zoom_by_ctrl_wheel_and_buttons(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    page = window.page["inpaint"]
    window.show_page("generate")
    page.open_image_file(_image_file(tmp_path))  # while hidden: fitted once the page shows
    window.show_page("inpaint")
    canvas = page.canvas
    start = canvas.zoom
    assert start > 8 and canvas.width() <= page.canvas_scroll.viewport().width()
    _wheel(canvas, up=True, modifiers=Qt.KeyboardModifier.ControlModifier)
    assert canvas.zoom > start and canvas.width() == 8 * canvas.zoom
    _wheel(canvas, up=False, modifiers=Qt.KeyboardModifier.NoModifier)  # a plain wheel scrolls, no zoom
    assert canvas.zoom > start
    qtbot.mouseClick(page.zoom_out_button, LEFT)
    qtbot.mouseClick(page.zoom_out_button, LEFT)
    assert canvas.zoom < start
    assert page.zoom_label.text() == f"{canvas.zoom}x"
    qtbot.mouseClick(page.zoom_in_button, LEFT)
    qtbot.mouseClick(page.zoom_fit_button, LEFT)
    assert canvas.zoom == start


def test_inpainting_keeps_the_unmasked_pixels(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "vae")
    source = run_job(generate(store, "vae", count=1, seed=4)).items[0]
    source_pixels = np.asarray(Image.open(source["path"]))
    page = _page(window)
    window.show_page("gallery")
    window.context.signals.useGalleryItems.emit("inpaint", [source["id"]])
    assert window.current_key == "inpaint" and page.source == f"#{source['id']}"
    assert page.model_picker.current_name() == "vae"
    page.size_slider.setValue(2)
    _stroke(qtbot, page.canvas, [(2, 2), (5, 2), (5, 5)])
    mask = page.canvas.mask_bool()
    assert 0 < mask.sum() < 64
    page.count_spin.setValue(2)
    page.seed_spin.setValue(30)
    gallery = GalleryRepository(store)
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        qtbot.mouseClick(page.run_button, LEFT)
    assert window.runner.wait_idle()
    results = gallery.query(GalleryFilter(operation="inpaint"), sort="oldest").items
    assert [item.seed for item in results] == [30, 31]
    for item in results:
        pixels = np.asarray(Image.open(store.home.absolute(item.path)))
        assert np.array_equal(pixels[~mask], source_pixels[~mask])
        assert dict(gallery.parents(item.id)) == {source["id"]: "source"}
    qtbot.waitUntil(lambda: page.strip.count() == 2 and page.strip.pending == 0)
    assert page.comparison.original is not None and page.comparison.result is not None
    assert page.comparison.overlay is not None
    assert "2 completions" in page.status.text()
    page.compare_item(results[1].id)
    assert f"#{results[1].id}" in page.comparison.result_caption
    # "Use these settings" on a completion brings back its source, mask and seed.
    page.canvas.clear()
    page.seed_spin.setValue(0)
    window.show_page("gallery")
    assert use_settings(window.context, store, gallery.get(results[1].id))
    assert window.current_key == "inpaint" and page.source == f"#{source['id']}"
    assert page.seed_spin.value() == 31 and page.model_picker.current_name() == "vae"
    assert np.array_equal(page.canvas.mask_bool(), mask)


def test_a_file_of_another_size_is_completed_at_the_models_resolution(
    qtbot: QtBot, window: MainWindow, store: Store, tmp_path: Path
) -> None:
    _train(store, "pixelcnn")
    page = _page(window)
    page.open_image_file(_image_file(tmp_path, 20, 16))  # not square: the centre 16x16 reaches the model
    assert page.canvas.crop is not None and page.canvas.crop.width() == 16 and page.canvas.crop.x() == 2
    page.size_slider.setValue(4)
    _stroke(qtbot, page.canvas, [(8, 6), (12, 6)])
    page.count_spin.setValue(1)
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        page.run()
    assert window.runner.wait_idle()
    (item,) = GalleryRepository(store).query(GalleryFilter(operation="inpaint")).items
    assert (item.width, item.height) == (8, 8)
    kept = np.asarray(Image.open(store.home.absolute(item.params["mask"]))) < 128
    source = np.asarray(Image.open(store.home.absolute(item.params["source"])))
    result = np.asarray(Image.open(store.home.absolute(item.path)))
    assert 0 < (~kept).sum() < 64 and np.array_equal(result[kept], source[kept])


def test_an_empty_mask_is_refused_and_nothing_is_stored(
    qtbot: QtBot, window: MainWindow, store: Store, tmp_path: Path
) -> None:
    _train(store, "vae")
    page = _page(window)
    page.open_image_file(_image_file(tmp_path))
    qtbot.mouseClick(page.run_button, LEFT)
    title, message = window.last_error
    assert title == "Empty mask" and "paint the area" in message
    assert window.runner.wait_idle()
    assert GalleryRepository(store).count() == 0
    assert not (store.home.gallery / "_inputs").exists()

    # Painted, then wholly erased: still empty.
    _stroke(qtbot, page.canvas, [(3, 3)])
    page.eraser_button.click()
    _stroke(qtbot, page.canvas, [(3, 3)])
    assert page.run() is None and window.last_error[0] == "Empty mask"

    # The whole image: nothing would be kept.
    qtbot.mouseClick(page.invert_button, LEFT)
    assert page.canvas.mask_bool().all()
    assert page.run() is None
    assert window.last_error[0] == "Full mask" and "use Generate" in window.last_error[1]
    assert GalleryRepository(store).count() == 0


def test_no_image_is_refused(window: MainWindow, store: Store) -> None:
    _train(store, "vae")
    page = _page(window)
    assert not page.run_button.isEnabled() and "open an image" in page.run_button.toolTip()
    assert page.run() is None
    assert window.last_error[0] == "No image"
    page.item_edit.setText("#999")
    page.item_button.click()
    assert window.last_error[0] == "Gallery item not found"
    page.open_image_file(Path("/nonexistent/picture.png"))
    assert window.last_error[0] == "Cannot open the image"


def test_gan_is_disabled_with_its_reason(window: MainWindow, store: Store) -> None:
    _train(store, "gan", "vae")
    page = _page(window)
    combo = page.model_picker
    index = combo.findData("gan")
    assert not combo.model().item(index).isEnabled()
    assert "no way to condition on known pixels" in combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert combo.current_name() == "vae"
