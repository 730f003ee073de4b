"""The strip of images a generation job made, as crisp thumbnails labelled with their gallery ids."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

from studio.ui.operations import QueryHandle, QueryOp


def crisp_image(image: QImage, cell: int) -> QImage:
    """The image scaled by the largest whole factor that fits `cell` (smoothly down when it is larger)."""
    side = max(image.width(), image.height(), 1)
    if side > cell:
        return image.scaled(cell, cell, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    factor = max(1, cell // side)
    return image.scaled(
        image.width() * factor,
        image.height() * factor,
        Qt.AspectRatioMode.IgnoreAspectRatio,
        Qt.TransformationMode.FastTransformation,
    )


def read_thumbnails(paths: Sequence[str], cell: int) -> list[QImage]:
    """Read and scale image files for the strip (in a pool thread: QImage is thread-safe, QPixmap is not);
    a file that cannot be read gives a null image."""
    thumbnails = []
    for path in paths:
        image = QImage(path)
        thumbnails.append(image if image.isNull() else crisp_image(image, cell))
    return thumbnails


def seed_caption(_index: int, item: Mapping[str, Any]) -> str:
    """A result's label: '#12 · 5' (gallery id · seed), then the class a conditional model made it as."""
    made_as = item.get("class")
    return f"#{item['id']} · {item['seed']}" + (f" · {made_as}" if made_as is not None else "")


class ResultStrip(QListWidget):
    """The images a job made, as crisp thumbnails labelled with their gallery ids.

    Thumbnails are read a few dozen at a time off the GUI thread (a QueryOp per batch), so a thousand
    interpolation frames appear as they load instead of freezing the window. Clicking one emits
    `itemChosen(id)`.
    """

    itemChosen = Signal(int)  # noqa: N815 - Qt naming; a gallery item id
    itemOpened = Signal(int)  # noqa: N815 - a double click
    LIMIT = 1000  # thumbnails shown at most; the gallery has them all
    BATCH = 48

    def __init__(self, cell: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cell = cell
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWrapping(True)
        self.setIconSize(QSize(cell, cell))
        self.setGridSize(QSize(cell + 14, cell + 24))
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self._queue: list[tuple[dict[str, Any], str]] = []  # items not shown yet, the batch being read first
        self._reading: QueryHandle | None = None
        self.itemClicked.connect(lambda item: self.itemChosen.emit(int(item.data(Qt.ItemDataRole.UserRole))))
        self.itemActivated.connect(lambda item: self.itemOpened.emit(int(item.data(Qt.ItemDataRole.UserRole))))
        self.total = 0

    def show_items(
        self, items: Sequence[Mapping[str, Any]], caption: Callable[[int, Mapping[str, Any]], str] | None = None
    ) -> None:
        """Replace the strip with these gallery items ({id, path, seed}), loading them progressively."""
        self._stop_reading()
        self.clear()
        self.total = len(items)
        label = caption or (lambda _index, item: f"#{item['id']}")
        self._queue = [(dict(item), label(index, item)) for index, item in enumerate(items[: self.LIMIT])]
        self._read_next()

    @property
    def pending(self) -> int:
        """Thumbnails still to load."""
        return len(self._queue)

    def ids(self) -> list[int]:
        """The gallery ids shown, in order."""
        return [int(self.item(row).data(Qt.ItemDataRole.UserRole)) for row in range(self.count())]

    def shutdown(self) -> None:
        """Stop loading (the window is closing)."""
        self._stop_reading()
        self._queue.clear()

    def _stop_reading(self) -> None:
        if self._reading is not None:
            self._reading.cancel()  # a batch still being read is dropped when it arrives
            self._reading = None

    def _read_next(self) -> None:
        if not self._queue:
            self._reading = None
            return
        batch = self._queue[: self.BATCH]
        paths, cell = [str(item["path"]) for item, _text in batch], self.cell
        self._reading = (
            QueryOp(self, lambda: read_thumbnails(paths, cell))
            .latest_only("thumbnails")
            .success(lambda images: self._add(batch, images))
            .run_in_background()
        )

    def _add(self, batch: list[tuple[dict[str, Any], str]], images: list[QImage]) -> None:
        del self._queue[: len(batch)]
        for (item, text), image in zip(batch, images, strict=True):
            entry = QListWidgetItem(QIcon(QPixmap.fromImage(image)) if not image.isNull() else QIcon(), text)
            entry.setData(Qt.ItemDataRole.UserRole, int(item["id"]))
            seed, made_as = item.get("seed"), item.get("class")
            entry.setToolTip(
                f"gallery item #{item['id']}"
                + (f", seed {seed}" if seed is not None else "")
                + (f", class {made_as}" if made_as is not None else "")
                + ("" if not image.isNull() else " (its file could not be read)")
            )
            entry.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.addItem(entry)
        self._read_next()
