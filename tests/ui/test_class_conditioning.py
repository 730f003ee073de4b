"""Class-conditional models through the real window: the Generate page's class picker (hidden for an
unconditional model, remembered per model), the Interpolate and Inpaint pages' classes, the gallery's class
filter and detail row, the Models page's class list, the Train page's conditional setting, and guidance."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from studio.engine.datasets.importer import import_dataset
from studio.engine.datasets.samples import add_sample
from studio.engine.families.registry import full_schema
from studio.engine.generation import generate
from studio.engine.jobs import run_job
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.home import DataHome
from studio.store.database import open_store
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.ui.gallery import GalleryPage
from studio.ui.gallery.actions import restore_generate_settings
from studio.ui.gallery.model import ENTRY_ROLE
from studio.ui.main_window import MainWindow
from studio.ui.pages.generate import GeneratePage
from studio.ui.pages.inpaint import InpaintPage
from studio.ui.pages.interpolate import InterpolatePage
from studio.ui.pages.models import ModelsPage
from studio.ui.train import TrainPage
from studio.ui.widgets.generation_controls import sampling_schema
from tests.engine.conftest import TINY

DIGITS = [str(digit) for digit in range(10)]


@pytest.fixture(scope="module")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits at 8 px, tiny class-conditional GAN and VAE ('cgan', 'cvae') and an unconditional GAN ('ugan'),
    built once for the module."""
    root = tmp_path_factory.mktemp("classes-template") / "home"
    store = open_store(DataHome(root).ensure())
    try:
        run_job(add_sample(store, "digits", size=8))
        for name, family, conditional in (("cgan", "gan", "auto"), ("ugan", "gan", "no"), ("cvae", "vae", "auto")):
            settings = {**TINY[family], "conditional": conditional}
            run_job(train(store, TrainOptions(name, family=family, dataset="digits", steps=2, settings=settings)))
    finally:
        store.close()
    return root


@pytest.fixture
def home(isolated_home: Path, template_home: Path) -> DataHome:
    """The test's own copy of the template home (the `store` and `window` fixtures open it)."""
    shutil.copytree(template_home, isolated_home)
    return DataHome(isolated_home).ensure()


def _show(window: MainWindow, key: str) -> object:
    window.show_page(key)
    page = window.page[key]
    page.refresh()
    return page


def _run(qtbot: QtBot, window: MainWindow, start: object) -> None:
    """Press a page's run button (or call its run) and wait for the job and the gallery reload."""
    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=30_000):
        start()
    assert window.runner.wait_idle()


def _texts(combo: QComboBox) -> list[str]:
    return [combo.itemText(index) for index in range(combo.count())]


def test_the_generate_page_makes_the_class_chosen_and_hides_the_picker_otherwise(
    qtbot: QtBot, window: MainWindow
) -> None:
    page = _show(window, "generate")
    assert isinstance(page, GeneratePage)
    gallery = GalleryRepository(page.store)
    assert page.model_picker.select("cgan")
    picker = page.class_picker
    assert picker.isVisible() and picker.objectName() == "generateClassCombo" and picker.accessibleName()
    assert _texts(picker) == ["Any class", *DIGITS] and picker.chosen() is None
    assert "10 classes" in page.model_info.text()
    picker.setFocus()
    qtbot.keyClicks(picker, "3")  # typing a class's name chooses it, as in any combo box
    assert picker.chosen() == "3"
    page.count_spin.setValue(4)
    page.seed_spin.setValue(10)
    _run(qtbot, window, lambda: qtbot.mouseClick(page.generate_button, Qt.MouseButton.LeftButton))
    items = gallery.query(GalleryFilter(model="cgan"), sort="oldest").items
    assert [(item.seed, item.class_name, item.params["class"]) for item in items] == [
        (seed, "3", "3") for seed in range(10, 14)
    ]
    qtbot.waitUntil(lambda: page.strip.count() == 4 and page.strip.pending == 0)
    assert "4 new images of class 3 in the gallery" in page.results_caption.text()
    assert [page.strip.item(row).text() for row in range(4)] == [f"#{item.id} · {item.seed}" for item in items]
    assert all("class 3" in page.strip.item(row).toolTip() for row in range(4))

    # An unconditional model has no classes to offer: the picker's row is hidden and no class is sent.
    assert page.model_picker.select("ugan")
    assert not picker.isVisible() and not page.settings_layout.isRowVisible(picker)
    assert "classes" not in page.model_info.text()
    page.count_spin.setValue(2)
    _run(qtbot, window, page.generate)
    plain = gallery.query(GalleryFilter(model="ugan")).items
    assert len(plain) == 2 and all(item.class_name is None and "class" not in item.params for item in plain)

    # Back on the conditional model, its class is remembered; "Any class" draws each image's class from its seed.
    assert page.model_picker.select("cgan")
    assert picker.isVisible() and picker.chosen() == "3"
    picker.choose(None)
    page.seed_spin.setValue(20)
    page.count_spin.setValue(6)
    _run(qtbot, window, page.generate)
    drawn = gallery.query(GalleryFilter(model="cgan", seed=None), sort="oldest").items[4:]
    assert [item.seed for item in drawn] == list(range(20, 26))
    assert all(item.class_name in DIGITS and item.params["class"] is None for item in drawn)
    assert len({item.class_name for item in drawn}) > 1  # drawn per seed, not one class for all
    qtbot.waitUntil(lambda: page.strip.count() == 6 and page.strip.pending == 0)
    assert "each as #gallery id · seed · class" in page.results_caption.text()
    assert [page.strip.item(row).text() for row in range(6)] == [
        f"#{item.id} · {item.seed} · {item.class_name}" for item in drawn
    ]


def test_restoring_an_item_brings_back_the_class_it_asked_for(window: MainWindow) -> None:
    made = run_job(generate(window.store, "cgan", 1, 40, {"class": "4"})).items[0]
    page = _show(window, "generate")
    assert isinstance(page, GeneratePage)
    # A studio PNG dropped on the window (or the gallery's "use these settings") asks for its class again.
    assert restore_generate_settings(window.context, Path(made["path"]))
    assert page.model_picker.current_name() == "cgan" and page.class_picker.chosen() == "4"
    assert page.seed_spin.value() == 40 and "not restored" not in page.status.text()
    restore = window.context.signals.restoreGenerateSettings
    restore.emit({"model": "cgan", "seed": 5, "params": {"class": "7", "truncation": 0.5}, "backend": "torch"})
    assert page.model_picker.current_name() == "cgan" and page.class_picker.chosen() == "7"
    assert page.form.value("truncation") == 0.5 and "not restored" not in page.status.text()
    restore.emit({"model": "cgan", "seed": 6, "params": {"class": None}, "backend": "torch"})
    assert page.class_picker.chosen() is None  # any class: the seed draws the same class again
    restore.emit({"model": "cgan", "seed": 7, "params": {"class": "cat"}, "backend": "torch"})
    assert page.class_picker.chosen() is None and "has no class 'cat'" in page.status.text()


def test_interpolation_walks_from_one_chosen_class_to_another(qtbot: QtBot, window: MainWindow) -> None:
    page = _show(window, "interpolate")
    assert isinstance(page, InterpolatePage)
    assert page.model_picker.select("ugan")
    assert not page.start_class.isVisible() and not page.end_class.isVisible()
    assert page.model_picker.select("cgan")
    assert page.start_class.isVisible() and page.end_class.isVisible()
    assert page.start_class.itemText(0) == "Own class"
    page.start.set_text("1")
    page.end.set_text("2")
    page.start_class.choose("2")
    page.end_class.choose("5")
    page.frames_spin.setValue(3)
    _run(qtbot, window, page.run)
    frames = GalleryRepository(page.store).query(GalleryFilter(operation="interpolate"), sort="oldest").items
    assert [frame.class_name for frame in frames] == ["2", frames[1].class_name, "5"]
    assert frames[0].params["from"] == {"seed": 1, "class": "2"} and frames[0].params["to"] == {"seed": 2, "class": "5"}
    qtbot.waitUntil(lambda: page.strip.count() == 3 and page.strip.pending == 0)
    assert page.strip.item(0).text().endswith(" · 2") and page.strip.item(2).text().endswith(" · 5")


def test_inpainting_completes_an_item_as_the_class_chosen(qtbot: QtBot, window: MainWindow) -> None:
    source = run_job(generate(window.store, "cvae", 1, 3, {"class": "8"})).items[0]
    page = _show(window, "inpaint")
    assert isinstance(page, InpaintPage)
    assert page.load_gallery_item(source["id"])
    assert page.model_picker.current_name() == "cvae" and "class 8" in page.source_info.text()
    assert page.class_picker.isVisible() and page.class_picker.chosen() is None
    mask = np.zeros((8, 8), bool)
    mask[4:] = True
    page.canvas.set_mask(mask)
    page.count_spin.setValue(2)
    _run(qtbot, window, page.run)  # any class: the item keeps its own
    page.class_picker.choose("6")
    _run(qtbot, window, page.run)
    made = GalleryRepository(page.store).query(GalleryFilter(operation="inpaint"), sort="oldest").items
    assert [item.class_name for item in made] == ["8", "8", "6", "6"]


def test_the_gallery_filters_by_class_and_shows_each_items_class(qtbot: QtBot, window: MainWindow) -> None:
    store = window.store
    run_job(generate(store, "ugan", 2, 1))
    window.show_page("gallery")
    page = window.page["gallery"]
    assert isinstance(page, GalleryPage)
    qtbot.waitUntil(lambda: page.model.rowCount() == 2 and page.model_filter.count() == 2)
    assert not page.class_filter.isVisible()  # no item has a class yet: nothing to filter by

    threes = [item["id"] for item in run_job(generate(store, "cgan", 3, 10, {"class": "3"})).items]
    fives = [item["id"] for item in run_job(generate(store, "cgan", 2, 20, {"class": "5"})).items]
    window.context.signals.galleryChanged.emit()
    qtbot.waitUntil(lambda: page.model.rowCount() == 7 and page.class_filter.count() == 3)
    assert page.class_filter.isVisible() and page.class_filter.accessibleName() == "Filter by class"
    assert _texts(page.class_filter) == ["Any class", "class 3 (3)", "class 5 (2)"]
    page.class_filter.setCurrentIndex(page.class_filter.findData("3"))
    qtbot.waitUntil(lambda: not page.loading and sorted(page.model.ids()) == threes)
    assert "3 items match" in page.count_label.text()
    page.class_filter.setCurrentIndex(page.class_filter.findData("5"))
    qtbot.waitUntil(lambda: not page.loading and sorted(page.model.ids()) == fives)

    page.select_ids([fives[0]])
    qtbot.waitUntil(lambda: page.detail.entry is not None and page.detail.entry.id == fives[0])
    assert "<td style='color:gray;padding-right:8px'>Class</td><td>5</td>" in page.detail_params.text()
    assert "class=" not in page.detail_params.text()  # the class has its own row, not a setting
    entry = page.model.data(page.model.index(0), ENTRY_ROLE)
    assert "class 5" in page.model.data(page.model.index(0), Qt.ItemDataRole.ToolTipRole) and entry.class_name == "5"

    page.clear_filters()
    qtbot.waitUntil(lambda: not page.loading and page.model.rowCount() == 7)
    assert page.class_filter.currentData() is None


def test_the_models_page_lists_a_conditional_models_classes(window: MainWindow) -> None:
    page = _show(window, "models")
    assert isinstance(page, ModelsPage)
    page.select("cgan")
    assert "Classes</td><td>10: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9</td>" in page.details.text()
    page.select("ugan")
    assert "none: unconditional" in page.details.text()


def test_the_train_page_says_what_the_conditional_setting_makes_of_the_dataset(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for index in range(4):
        Image.fromarray(np.full((8, 8), index * 60, np.uint8)).save(flat / f"{index}.png")
    run_job(import_dataset(window.store, [flat], "plain", size=8, channels=1))
    page = _show(window, "train")
    assert isinstance(page, TrainPage)
    setup = page.setup
    setup.set_family("gan")
    setup.set_dataset("digits")
    editor = setup.forms["model"].editors["conditional"]
    assert isinstance(editor, QComboBox) and _texts(editor) == ["auto", "yes", "no"]
    help_text = next(h.help for h in full_schema("gan") if h.name == "conditional")
    assert editor.toolTip() == help_text
    note = setup.classes_note
    assert note.isVisible() and note.text().startswith("Class-conditional: 10 classes of 'digits' (0, 1, 2")
    editor.setCurrentIndex(editor.findData("no"))
    assert note.text().startswith("Unconditional: the dataset's class labels are not used")
    editor.setCurrentIndex(editor.findData("auto"))
    setup.set_dataset("plain")
    assert note.text().startswith("Unconditional: 'plain' has no class labels")
    assert setup.problem() is None
    editor.setCurrentIndex(editor.findData("yes"))  # asked for, but impossible: said before the run, and refused
    assert note.text().startswith("Cannot be class-conditional: 'plain' has no class labels")
    assert setup.problem() == note.text()
    assert page.start() is None and window.last_error == ("Cannot start training", note.text())


def test_guidance_shows_only_for_a_class_conditional_diffusion_model(qtbot: QtBot, window: MainWindow) -> None:
    assert "guidance" in {s.name for s in sampling_schema("diffusion", "sample")}
    assert "guidance" not in {s.name for s in sampling_schema("diffusion", "sample", conditional=False)}
    page = _show(window, "generate")
    assert isinstance(page, GeneratePage)
    real = page.model_picker.models["cgan"]
    # Two diffusion models as the library lists them (their files are never read: nothing is generated).
    conditional = dataclasses.replace(real, name="cdiff", family="diffusion", hyperparameters={})
    unconditional = dataclasses.replace(conditional, name="udiff", classes=[])
    page.model_picker.set_models([conditional, unconditional])
    assert page.model_picker.select("cdiff")
    assert "guidance" in page.form.editors
    qtbot.waitUntil(lambda: page.form.editors["guidance"].isVisible())  # new editors show on the next event loop
    assert page.class_picker.isVisible()
    assert page.model_picker.select("udiff")
    assert "guidance" not in page.form.editors and "guidance" not in page.form.values()
    assert not page.class_picker.isVisible()
    assert "steps" in page.form.editors  # the other sampling settings stay
