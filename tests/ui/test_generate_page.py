"""The Generate page with the real window and tiny real models: gallery grows, dice, restore, ONNX backend."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from studio.engine.datasets.samples import add_sample
from studio.engine.export import export_model
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.store.database import Store
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.ui.main_window import MainWindow
from studio.ui.pages.generate import GeneratePage
from tests.engine.conftest import TINY


def _train(store: Store, *families: str) -> None:
    """The digits sample at 8x8 and one tiny model per family, named after it."""
    run_job(add_sample(store, "digits", size=8))
    for family in families:
        run_job(
            train(
                store,
                TrainOptions(family, family=family, dataset="digits", steps=3, settings=TINY[family], preview_every=0),
            )
        )


def _page(window: MainWindow) -> GeneratePage:
    window.show_page("generate")
    page = window.page["generate"]
    page.refresh()
    return page


def test_generate_fills_the_gallery_and_shows_the_strip(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    for name in (
        "generateModelCombo",
        "generateBackendCombo",
        "generateProviderCombo",
        "generateCountSpin",
        "generateSeedSpin",
        "seedDiceButton",
        "generateButton",
        "generateResults",
        "generateOptions",
    ):
        widget = window.findChild(object, name)
        assert widget is not None and widget.accessibleName(), name
    assert page.model_picker.current_name() == "gan"
    assert "truncation" in page.form.editors  # the family's sampling settings
    page.count_spin.setValue(3)
    page.seed_spin.setValue(5)
    page.form.set_value("truncation", 0.5)
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        qtbot.mouseClick(page.generate_button, Qt.MouseButton.LeftButton)
    assert window.runner.wait_idle()
    gallery = GalleryRepository(store)
    items = gallery.query(GalleryFilter(model="gan"), sort="oldest").items
    assert [item.seed for item in items] == [5, 6, 7]
    assert all(item.params["truncation"] == 0.5 and item.backend == "torch" for item in items)
    qtbot.waitUntil(lambda: page.strip.count() == 3 and page.strip.pending == 0)
    assert page.strip.ids() == [item.id for item in items]
    assert "3 images" in page.status.text()

    # Ctrl+Return generates again with the same settings.
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        qtbot.keyClick(page.count_spin, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert window.runner.wait_idle()
    assert gallery.count() == 6

    # Clicking a result opens the gallery.
    qtbot.waitUntil(lambda: page.strip.count() == 3 and page.strip.pending == 0)
    first = page.strip.item(0)
    qtbot.mouseClick(page.strip.viewport(), Qt.MouseButton.LeftButton, pos=page.strip.visualItemRect(first).center())
    assert window.current_key == "gallery"


def test_the_dice_draws_a_new_seed(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    page.seed_spin.setValue(123)
    seen = {123}
    for _ in range(3):
        before = page.seed_spin.value()
        qtbot.mouseClick(page.dice_button, Qt.MouseButton.LeftButton)
        assert page.seed_spin.value() != before
        seen.add(page.seed_spin.value())
    assert len(seen) >= 3


def test_the_seed_box_holds_63_bit_seeds(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    page.seed_spin.lineEdit().selectAll()
    qtbot.keyClicks(page.seed_spin, "12345678901234x5")  # the letter is refused as it is typed
    assert page.seed_spin.value() == 123_456_789_012_345
    page.seed_spin.setValue(2**40 + 3)
    assert page.seed_spin.value() == 2**40 + 3 and page.seed_spin.text() == str(2**40 + 3)
    page.seed_spin.stepBy(1)
    assert page.seed_spin.value() == 2**40 + 4
    page.seed_spin.setValue(-5)
    assert page.seed_spin.value() == 0


def test_restore_settings_fills_the_form(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "gan", "vae")
    page = _page(window)
    window.show_page("gallery")
    page.model_picker.select("gan")
    window.context.signals.restoreGenerateSettings.emit(
        {
            "model": "vae",
            "family": "vae",
            "seed": 987_654_321_012,
            "operation": "sample",
            "params": {"temperature": 0.25, "inpaint_iterations": 7},
            "backend": "torch",
            "provider": "cpu",
        }
    )
    assert window.current_key == "generate"
    assert page.model_picker.current_name() == "vae"
    assert page.seed_spin.value() == 987_654_321_012
    assert page.form.value("temperature") == 0.25
    assert page.backend.backend() == "torch"
    assert "restored" in page.status.text()


def test_restore_settings_of_an_unknown_model_says_so(window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    window.context.signals.restoreGenerateSettings.emit({"model": "vanished", "seed": 11, "params": {}})
    title, message = window.last_error
    assert title == "Model not found" and "'vanished'" in message and "not in this library" in message
    assert page.seed_spin.value() == 11 and page.model_picker.current_name() == "gan"


def test_restore_asking_for_onnx_without_an_export_falls_back_to_torch(window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    window.context.signals.restoreGenerateSettings.emit(
        {"model": "gan", "seed": 3, "params": {"truncation": 0.7}, "backend": "onnx", "provider": "cpu"}
    )
    assert page.backend.backend() == "torch" and "no ONNX export" in page.status.text()
    assert page.form.value("truncation") == 0.7


def test_onnx_backend_is_disabled_with_a_reason_until_exported(qtbot: QtBot, window: MainWindow, store: Store) -> None:
    _train(store, "gan")
    page = _page(window)
    onnx = page.backend.backend_combo.model().item(1)
    assert not onnx.isEnabled() and "no ONNX export" in onnx.toolTip()
    assert "export it on the Models page" in page.backend.backend_combo.toolTip()
    assert not page.backend.provider_combo.isEnabled()  # only meaningful for onnx
    assert page.backend.export_button.isVisible()
    qtbot.mouseClick(page.backend.export_button, Qt.MouseButton.LeftButton)
    assert window.current_key == "models"

    run_job(export_model(store, "gan"))
    page = _page(window)  # on_shown reloads the models and so the export state
    assert page.backend.backend_combo.model().item(1).isEnabled()
    assert not page.backend.export_button.isVisible()
    assert page.backend.set_backend("onnx", "cpu")
    assert page.backend.provider_combo.isEnabled() and page.backend.provider() == "cpu"
    page.count_spin.setValue(2)
    page.seed_spin.setValue(40)
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        page.generate()
    assert window.runner.wait_idle()
    items = GalleryRepository(store).query(GalleryFilter(backend="onnx")).items
    assert sorted(item.seed for item in items) == [40, 41]
    assert all(item.provider == "cpu" for item in items)
    assert "on onnx/cpu" in page.status.text()


def test_a_failing_job_is_reported_once_and_the_button_comes_back(
    qtbot: QtBot, window: MainWindow, store: Store
) -> None:
    _train(store, "gan")
    page = _page(window)
    page.refresh()
    # The model's files vanish after the page listed it: the engine refuses with a readable line.
    folder = store.home.absolute(page.model_picker.current().folder)
    for file in folder.iterdir():
        if file.is_file():
            file.unlink()
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        page.generate()
    assert window.runner.wait_idle()
    title, _message = window.last_error
    assert title == "Generation failed"
    assert page.generate_button.isEnabled()
    assert GalleryRepository(store).count() == 0


def test_without_models_the_page_says_what_to_do(window: MainWindow) -> None:
    page = _page(window)
    assert page.model_picker.current() is None
    assert not page.generate_button.isEnabled()
    assert "train one" in page.model_info.text()
