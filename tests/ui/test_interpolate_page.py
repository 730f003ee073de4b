"""The Interpolate page with the real window and tiny real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.generation import generate
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.store.database import Store
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.ui.main_window import MainWindow
from studio.ui.pages.interpolate import InterpolatePage
from tests.engine.conftest import TINY


def _train(store: Store, *families: str) -> None:
    run_job(add_sample(store, "digits", size=8))
    for family in families:
        run_job(
            train(
                store,
                TrainOptions(family, family=family, dataset="digits", steps=3, settings=TINY[family], preview_every=0),
            )
        )


def _page(window: MainWindow) -> InterpolatePage:
    window.show_page("interpolate")
    return window.page["interpolate"]


def test_interpolating_between_two_seeds_makes_k_gallery_items(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    for name in (
        "interpolateModelCombo",
        "interpolateFromEdit",
        "interpolateToEdit",
        "interpolateFromDiceButton",
        "interpolateToDiceButton",
        "interpolateFromBrowseButton",
        "interpolateToBrowseButton",
        "interpolateFramesSpin",
        "interpolateBackendCombo",
        "interpolateProviderCombo",
        "interpolateButton",
        "interpolateFrames",
    ):
        widget = window.findChild(object, name)
        assert widget is not None and widget.accessibleName(), name
    assert page.frames_spin.minimum() == 2 and page.frames_spin.maximum() == 1000
    page.start.set_text("3")
    page.end.set_text("9")
    assert "seed 3" in page.start.info.text()
    page.frames_spin.setValue(5)
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle()
    items = GalleryRepository(store).query(GalleryFilter(operation="interpolate"), sort="oldest").items
    assert len(items) == 5
    assert [item.params["frame"] for item in items] == [0, 1, 2, 3, 4]
    assert items[0].params["from"] == {"seed": 3} and items[0].params["to"] == {"seed": 9}
    qtbot.waitUntil(lambda: page.strip.count() == 5 and page.strip.pending == 0)
    assert page.strip.ids() == [item.id for item in items]
    assert page.strip.item(0).text().startswith("0 ·")
    # A GAN cannot encode: image files are not offered, and the reason says why.
    assert not page.start.browse.isEnabled() and "no encoder" in page.start.browse.toolTip()


def test_pixelcnn_is_disabled_with_its_reason(window: MainWindow, store: Store) -> None:
    _train(store, "pixelcnn", "gan")
    page = _page(window)
    combo = page.model_picker
    index = combo.findData("pixelcnn")
    item = combo.model().item(index)
    assert not item.isEnabled()
    assert "no latent space" in combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert combo.current_name() == "gan"
    assert not combo.select("pixelcnn") and combo.current_name() == "gan"


def test_only_pixelcnn_models_leave_nothing_to_run(window: MainWindow, store: Store) -> None:
    _train(store, "pixelcnn")
    page = _page(window)
    assert page.model_picker.current() is None
    assert not page.run_button.isEnabled()
    assert "No model here can interpolate" in page.model_info.text()


def test_gallery_items_become_the_ends(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "gan", "vae")
    result = run_job(generate(store, "gan", count=2, seed=20))
    first, second = (item["id"] for item in result.items)
    page = _page(window)
    page.model_picker.select("vae")
    window.show_page("gallery")
    window.context.signals.useGalleryItems.emit("interpolate", [first, second])
    assert window.current_key == "interpolate"
    assert page.start.text() == f"#{first}" and page.end.text() == f"#{second}"
    assert page.model_picker.current_name() == "gan"  # the model that sampled them
    assert "seed 20" in page.start.info.text()
    page.frames_spin.setValue(3)
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        page.run()
    assert window.runner.wait_idle()
    gallery = GalleryRepository(store)
    frames = gallery.query(GalleryFilter(operation="interpolate"), sort="oldest").items
    assert len(frames) == 3
    assert dict(gallery.parents(frames[0].id)) == {first: "from", second: "to"}
    # The other page's key is not ours.
    window.context.signals.useGalleryItems.emit("inpaint", [second])
    assert page.start.text() == f"#{first}"


def test_vae_accepts_an_image_file_end(qtbot: QtBot, window: MainWindow, store: Store, tmp_path: Path) -> None:
    _train(store, "vae")
    path = tmp_path / "face.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4).save(path)
    page = _page(window)
    assert page.start.browse.isEnabled()
    page.start.set_text(str(path))
    page.end.set_text("7")
    assert "encoded by the model" in page.start.info.text()
    page.frames_spin.setValue(4)
    # The VAE learnt the digits' classes: an image file has no class of its own, so one must be chosen.
    assert page.start_class.isVisible() and page.start_class.chosen() is None
    assert page.run() is None
    title, message = window.last_error
    assert title == "Cannot interpolate" and "(an image file) has no class of its own" in message
    page.start_class.choose("1")
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        page.run()
    assert window.runner.wait_idle()
    items = GalleryRepository(store).query(GalleryFilter(operation="interpolate"), sort="oldest").items
    assert len(items) == 4 and all(item.params["method"] == "lerp" for item in items)
    assert items[0].class_name == "1" and items[0].params["from"] == {"file": str(path), "class": "1"}


def test_a_bad_end_is_refused_readably_and_nothing_is_stored(window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    page.start.set_text("no-such-file.png")
    assert "neither a seed" in page.start.info.text()
    assert page.run() is None
    title, message = window.last_error
    assert title == "Cannot interpolate" and "neither a seed" in message
    page.start.set_text("")
    assert not page.run_button.isEnabled()
    assert window.runner.wait_idle()
    assert GalleryRepository(store).count() == 0


def test_the_dice_fills_a_random_seed(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    page.end.set_text("")
    qtbot.mouseClick(page.end.dice, Qt.MouseButton.LeftButton)
    assert page.end.text().isdigit()
