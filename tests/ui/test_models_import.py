"""Importing models made elsewhere from the Models page: a diffusers pipeline dropped on the window, an ONNX
generator through its dialog, a repository from the local Hugging Face cache, and refusals in one line."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QUrl
from PySide6.QtGui import QColor, QImage, QTextDocument
from pytestqt.qtbot import QtBot
from torch import nn

from studio.engine.library import list_models
from studio.ui.main_window import MainWindow, is_model_source
from studio.ui.pages.models import ModelImportDialog, ModelsPage
from studio.ui.widgets.model_card import ModelCardView, read_card, strip_front_matter
from studio.ui.widgets.model_import import HfCacheDialog, OnnxImportDialog, ui_wording

CARD = (
    "---\nlicense: mit\ntags:\n- diffusers\n---\n\n# Tiny DDPM\n\nA [test pipeline](https://example.com/tiny).\n\n"
    "![samples](samples.png)\n\n<script>alert(1)</script>\n"
)
COMMIT = "a" * 40


class LinearTanh(nn.Module):
    """z (8) -> 3 x 8 x 8, tanh times `scale` (1: in [-1, 1]; 3: a range no rule can infer)."""

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(8, 3 * 8 * 8)
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.linear(z)) * self.scale).reshape(-1, 3, 8, 8)


def export(module: nn.Module, path: Path) -> Path:
    """torch -> ONNX (TorchScript exporter, quietly): input 'z', output 'image', a dynamic batch."""
    module.eval()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.randn(2, 8),),
            str(path),
            dynamo=False,
            input_names=["z"],
            output_names=["image"],
            dynamic_axes={"z": {0: "batch"}, "image": {0: "batch"}},
            opset_version=17,
        )
    return path


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny diffusers DDPMPipeline saved with save_pretrained, with a model card."""
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )
    folder = tmp_path_factory.mktemp("pipelines") / "tiny-ddpm"
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(folder)
    (folder / "README.md").write_text(CARD)
    return folder


@pytest.fixture(scope="module")
def generators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("generators")
    bad = folder / "broken.onnx"
    bad.write_bytes(b"this is not a protobuf")
    return {
        "tanh": export(LinearTanh(), folder / "tiny gan.onnx"),
        "wide": export(LinearTanh(scale=3.0), folder / "wide.onnx"),
        "broken": bad,
    }


@pytest.fixture
def page(window: MainWindow) -> ModelsPage:
    window.show_page("models")
    return window.page["models"]


def _accept(qtbot: QtBot, window: MainWindow, dialog: ModelImportDialog) -> None:
    """Accept an import dialog and wait for the job to end, however it ends."""
    assert dialog.ok_button.isEnabled(), dialog.message.text()
    dialog.accept()
    qtbot.waitUntil(lambda: window.runner.current is None and not window.runner.pending, timeout=60_000)
    assert window.runner.wait_idle(60_000)


def test_a_dropped_diffusers_pipeline_is_listed_with_its_origin_and_card(
    qtbot: QtBot, window: MainWindow, page: ModelsPage, pipeline_folder: Path
) -> None:
    window.show_page("datasets")
    window.handle_drop([pipeline_folder])
    assert window.current_key == "models"
    dialog = page.import_dialog
    assert isinstance(dialog, ModelImportDialog) and not isinstance(dialog, OnnxImportDialog)
    assert dialog.isVisible() and dialog.name_edit.text() == "tiny-ddpm"
    assert "a diffusers DDPMPipeline" in dialog.findChild(object, "modelImportSource").text()
    with qtbot.waitSignal(window.context.signals.modelsChanged, timeout=60_000):
        _accept(qtbot, window, dialog)
    assert [m.name for m in list_models(page.store)] == ["tiny-ddpm"]
    assert page.selected_name == "tiny-ddpm" and page.table.item(0, 1).text() == "diffusion"
    details = page.details.text()
    for fact in ("Imported from", "a diffusers DDPMPipeline", "DDPMScheduler", "Licence", "mit", "tiny-ddpm"):
        assert fact in details, fact
    assert "- (imported)" in details and page.export_button.isEnabled()
    # The card: Markdown without its front matter, its image as alt text, its HTML as text; nothing loaded.
    card = page.card_view
    assert card.isVisibleTo(page) and page.card_label.isVisibleTo(page)
    text = card.toPlainText()
    assert "Tiny DDPM" in text and "license: mit" not in text and "(image: samples)" in text
    assert "<script>alert(1)</script>" in text and card.blocked == []
    assert not card.openExternalLinks() and not card.openLinks()


def test_a_model_without_a_card_hides_the_card_pane(
    qtbot: QtBot, window: MainWindow, page: ModelsPage, generators: dict[str, Path]
) -> None:
    page.import_source(generators["tanh"])
    _accept(qtbot, window, page.import_dialog)
    assert page.selected_name == "tiny-gan"
    assert not page.card_view.isVisibleTo(page) and page.card_view.toPlainText() == ""


def test_an_onnx_generator_imports_through_its_dialog(
    qtbot: QtBot, window: MainWindow, page: ModelsPage, generators: dict[str, Path]
) -> None:
    window.handle_drop([generators["tanh"]])
    dialog = page.import_dialog
    assert isinstance(dialog, OnnxImportDialog) and dialog.isVisible()
    assert dialog.windowTitle() == "Import an ONNX generator" and dialog.name_edit.text() == "tiny-gan"
    assert dialog.range_combo.itemText(0) == "Infer from a test run" and dialog.range_combo.count() == 4
    dialog.shape_edit.setText("8,x")
    assert not dialog.ok_button.isEnabled() and "100,1,1" in dialog.message.text()
    dialog.shape_edit.setText("8")
    dialog.range_combo.setCurrentIndex(1)  # -1 .. 1
    assert dialog.options().latent_shape == (8,) and dialog.options().value_range == (-1.0, 1.0)
    with qtbot.waitSignal(window.context.signals.modelsChanged, timeout=60_000):
        _accept(qtbot, window, dialog)
    assert page.selected_name == "tiny-gan" and page.table.item(0, 1).text() == "onnx_generator"
    assert page.table.item(0, 7).text() == "imported"
    details = page.details.text()
    for fact in ("Latent shape", "Value range", "-1 .. 1 (given at import)", "ONNX Runtime only", "an ONNX file"):
        assert fact in details, fact
    assert not page.export_button.isEnabled() and page.delete_button.isEnabled()
    assert "no torch networks to export" in page.export_button.toolTip()
    assert not page.parity_table.isVisible() and page.parity_label.text() == ""


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("wide", "fits none of -1..1, 0..1 or 0..255: import it again and choose its Value range"),
        ("broken", "broken.onnx"),
    ],
)
def test_a_refused_onnx_file_is_one_line_and_nothing_is_listed(
    qtbot: QtBot, window: MainWindow, page: ModelsPage, generators: dict[str, Path], key: str, expected: str
) -> None:
    page.import_source(generators[key])
    _accept(qtbot, window, page.import_dialog)
    title, message = window.last_error
    assert title == "Model import failed" and expected in message
    assert "\n" not in message and "Traceback" not in message and "--value-range" not in message
    assert list_models(page.store) == [] and page.table.rowCount() == 0


def test_what_is_not_a_model_is_refused_before_any_dialog(window: MainWindow, page: ModelsPage, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    page.import_source(notes)
    assert page.import_dialog is None
    title, message = window.last_error
    assert title == "Not a model" and "a file that is not .onnx" in message
    sd = tmp_path / "sd"
    sd.mkdir()
    (sd / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    window.handle_drop([sd])
    assert window.current_key == "models" and page.import_dialog is None
    assert "StableDiffusionPipeline, which Studio does not load" in window.last_error[1]


def test_drops_are_routed_by_what_they_are(tmp_path: Path) -> None:
    (tmp_path / "gen.onnx").write_bytes(b"x")
    (tmp_path / "pipe").mkdir()
    (tmp_path / "pipe" / "model_index.json").write_text("{}")
    (tmp_path / "studio").mkdir()
    (tmp_path / "studio" / "config.json").write_text("{}")
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "dataset.json").write_text("{}")
    (tmp_path / "dataset" / "config.json").write_text("{}")
    (tmp_path / "images").mkdir()
    (tmp_path / "a.png").write_bytes(b"x")
    routed = {name: is_model_source(tmp_path / name) for name in ("gen.onnx", "pipe", "studio", "dataset", "images")}
    assert routed == {"gen.onnx": True, "pipe": True, "studio": True, "dataset": False, "images": False}
    assert not is_model_source(tmp_path / "a.png") and not is_model_source(tmp_path / "missing.onnx")


def test_the_import_button_offers_folders_onnx_files_and_the_cache(page: ModelsPage) -> None:
    menu = page.import_button.menu()
    assert [action.text() for action in menu.actions()] == [
        "Model folder…",
        "ONNX generator…",
        "From the Hugging Face cache…",
    ]


# --- the Hugging Face cache -----------------------------------------------------------------


def _cached(cache: Path, repo_id: str, files: dict[str, bytes]) -> None:
    """A repository in huggingface_hub's layout: blobs named by hash, snapshot files linking to them."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        target = repo / "snapshots" / COMMIT / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(os.path.relpath(blob, target.parent))


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, generators: dict[str, Path]) -> Path:
    cache = tmp_path / "hub"
    card = b"---\nlicense: apache-2.0\n---\n# Tiny GAN from the hub\n"
    _cached(cache, "org/tiny-gan", {"onnx/generator.onnx": generators["tanh"].read_bytes(), "README.md": card})
    _cached(cache, "org/sd", {"model_index.json": json.dumps({"_class_name": "StableDiffusionPipeline"}).encode()})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the listing sets it: put it back afterwards
    return cache


def test_a_cached_repository_is_listed_and_imported_by_its_id(
    qtbot: QtBot, window: MainWindow, page: ModelsPage, hf_cache: Path
) -> None:
    dialog = page.choose_from_cache()
    assert isinstance(dialog, HfCacheDialog)
    qtbot.waitUntil(lambda: len(dialog.entries) == 2, timeout=20_000)
    rows = [[dialog.table.item(r, c).text() for c in range(4)] for r in range(dialog.table.rowCount())]
    assert rows[0][:2] == ["org/tiny-gan", "main"] and rows[0][3] == "yes"
    assert rows[1][0] == "org/sd" and rows[1][3] == "no" and "does not load" in rows[1][2]
    assert str(hf_cache) in dialog.label.text()
    dialog.select("org/sd")
    assert not dialog.ok_button.isEnabled() and "Studio cannot import it" in dialog.message.text()
    dialog.select("org/tiny-gan")
    assert dialog.ok_button.isEnabled()
    dialog.accept()
    onnx_dialog = page.import_dialog
    assert isinstance(onnx_dialog, OnnxImportDialog) and onnx_dialog.name_edit.text() == "tiny-gan"
    assert onnx_dialog.options().revision is None  # main
    with qtbot.waitSignal(window.context.signals.modelsChanged, timeout=60_000):
        _accept(qtbot, window, onnx_dialog)
    details = page.details.text()
    assert "org/tiny-gan" in details and COMMIT in details and "apache-2.0" in details
    assert "Tiny GAN from the hub" in page.card_view.toPlainText()


# --- the card view --------------------------------------------------------------------------


def test_the_card_view_loads_nothing_a_card_names(qtbot: QtBot, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    image = QImage(40, 40, QImage.Format.Format_RGB32)
    image.fill(QColor("red"))
    image.save(str(secret))
    view = ModelCardView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    # A reference-style image is not rewritten to its alt text: the view itself must refuse to load it.
    view.show_card(f"# Card\n\n![a][local] ![b][web]\n\n[local]: {secret.as_uri()}\n[web]: https://example.com/x.png\n")
    qtbot.wait(10)
    assert secret.as_uri() in view.blocked and "https://example.com/x.png" in view.blocked
    loaded = view.document().resource(QTextDocument.ResourceType.ImageResource.value, QUrl(secret.as_uri()))
    assert isinstance(loaded, QImage) and loaded.width() == 1
    view.show_card(None)
    assert view.toPlainText() == "" and view.blocked == []


def test_cards_are_read_bounded_without_front_matter(tmp_path: Path) -> None:
    assert read_card(tmp_path) is None
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n\n# Title\n")
    assert read_card(tmp_path) == "# Title\n"
    (tmp_path / "README.md").write_text("# Title\n" + "word " * 100_000)
    long = read_card(tmp_path)
    assert long is not None and len(long) < 300_000 and "only its start is shown" in long
    assert strip_front_matter("---\nnever closed\n# x") == "---\nnever closed\n# x"
    assert ui_wording("span [-3, 3]: say which with --value-range=-1,1, --value-range=0,1 or --value-range=0,255") == (
        "span [-3, 3]: import it again and choose its Value range (-1..1, 0..1 or 0..255)"
    )
