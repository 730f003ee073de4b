"""Images of other tools dropped on the Gallery page through the real window: imported, shown with their
tool's prompt and settings, and marked as not reproducible."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from studio.store.gallery import GalleryRepository
from studio.ui.gallery import GalleryPage
from studio.ui.main_window import MainWindow

A1111_TEXT = (
    "a lighthouse at dusk\nNegative prompt: blurry\n"
    "Steps: 28, Sampler: Euler a, CFG scale: 6.5, Seed: 1234, Size: 24x24, Model hash: 0123456789, Model: dreamy_v2"
)
COMFY = {
    "3": {"class_type": "KSampler", "inputs": {"seed": 5, "steps": 12, "cfg": 4, "sampler_name": "dpmpp_2m",
          "scheduler": "karras", "denoise": 1, "positive": ["6", 0], "negative": ["7", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "flux_dev.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "low quality"}},
}  # fmt: skip


def _image(path: Path, key: str, text: str, colour: tuple[int, int, int]) -> Path:
    info = PngInfo()
    info.add_text(key, text)
    pixels = np.zeros((24, 24, 3), np.uint8)
    pixels[:, :12] = colour
    pixels[6:18, 6:18] = (240, 220, 120)
    Image.fromarray(pixels).save(path, pnginfo=info)
    return path


def _drop(page: GalleryPage, paths: list[Path]) -> bool:
    """A real drag-enter and drop on the page (what Qt delivers when files are dropped on it)."""
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    enter = QDragEnterEvent(
        QPoint(20, 20), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(page, enter)
    drop = QDropEvent(
        QPointF(20, 20), Qt.DropAction.CopyAction, data, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(page, drop)
    return enter.isAccepted() and drop.isAccepted()


def test_dropped_images_of_other_tools_join_the_gallery_with_their_settings(
    qtbot: QtBot, window: MainWindow, tmp_path: Path
) -> None:
    window.show_page("gallery")
    page = window.page["gallery"]
    assert isinstance(page, GalleryPage)
    folder = tmp_path / "outputs"
    folder.mkdir()
    _image(folder / "a1111.png", "parameters", A1111_TEXT, (40, 90, 160))
    _image(folder / "comfy.png", "prompt", json.dumps(COMFY), (160, 60, 40))
    (folder / "notes.txt").write_text("not an image")
    messages: list[str] = []
    window.context.signals.statusMessage.connect(lambda text, _ms: messages.append(text))

    with qtbot.waitSignal(window.context.signals.galleryChanged, timeout=20_000):
        assert _drop(page, [folder])
    result = page.import_drop.last_result
    assert result is not None and len(result.imported) == 2 and len(result.skipped) == 1
    assert any(m.startswith("Imported 2 images, 1 skipped (notes.txt: not an image") for m in messages)
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=10_000)

    ids = {Path(item["path"]).name: item["id"] for item in result.imported}
    page.show_item(ids["a1111.png"])
    qtbot.waitUntil(lambda: page.detail.entry is not None and page.detail.entry.id == ids["a1111.png"], timeout=5_000)
    shown = page.detail_params.text()
    for expected in ("Made by", "A1111", "a lighthouse at dusk", "blurry", "Euler a", "dreamy_v2", "1234"):
        assert expected in shown
    assert "cannot be reproduced: made by A1111, not by a Studio model: Studio cannot run it" in shown
    if os.environ.get("STUDIO_SCREENSHOTS"):  # for the README: the window tall enough to show every row
        window.resize(1240, 1100)
        qtbot.wait(1500)
        window.grab().save(os.environ["STUDIO_SCREENSHOTS"])

    page.show_item(ids["comfy.png"])
    qtbot.waitUntil(lambda: page.detail.entry is not None and page.detail.entry.id == ids["comfy.png"], timeout=5_000)
    shown = page.detail_params.text()
    assert "ComfyUI" in shown and "a red fox" in shown and "flux_dev" in shown and "karras" in shown

    # The same folder again: nothing added twice.
    messages.clear()
    handle = page.import_drop.drop([folder])
    assert handle is not None
    with qtbot.waitSignal(handle.ended, timeout=20_000):
        pass
    assert page.import_drop.last_result is not None and len(page.import_drop.last_result.duplicates) == 2
    assert len(GalleryRepository(page.store).ids()) == 2
