"""A dataset's first images as a lazy list model for an icon-mode view (the Datasets page's grid)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QWidget

from studio.ui.widgets import image_to_qimage

THUMBNAIL_LIMIT = 512  # the grid shows a dataset's first images: enough to judge it, cheap to build


def display_cell(size: int) -> int:
    """Thumbnail cell in pixels: small images grow by whole pixels (crisp) to about 64 px."""
    return size * max(1, 64 // size) if size <= 64 else 64


class ThumbnailModel(QAbstractListModel):
    """A dataset's first images for a grid view: rows arrive in batches as the view scrolls (fetchMore) and
    each image becomes a pixmap only when the view first paints it, reading one row of the memory map."""

    BATCH = 96

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: np.ndarray | None = None
        self.labels: list[str | None] = []
        self.limit = 0
        self.loaded = 0
        self.cell = 64
        self._pixmaps: dict[int, QPixmap] = {}

    def show(
        self, images: np.ndarray | None, labels: list[str | None] | None = None, limit: int = THUMBNAIL_LIMIT
    ) -> None:
        """Show these images (None: none); the array stays memory-mapped, nothing is read yet."""
        self.beginResetModel()
        self.images = images
        self.labels = list(labels or [])
        self.limit = 0 if images is None else min(len(images), limit)
        self.loaded = min(self.BATCH, self.limit)  # the first batch at once; the view fetches the rest
        self.cell = display_cell(int(images.shape[1])) if images is not None and len(images) else 64
        self._pixmaps.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Rows fetched so far."""
        return 0 if parent.isValid() else self.loaded

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> bool:
        """Whether more of the first THUMBNAIL_LIMIT images remain to be shown."""
        return not parent.isValid() and self.loaded < self.limit

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> None:
        """Add the next batch of rows (the view asks when it scrolls near the end)."""
        if parent.isValid() or self.loaded >= self.limit:
            return
        count = min(self.BATCH, self.limit - self.loaded)
        self.beginInsertRows(QModelIndex(), self.loaded, self.loaded + count - 1)
        self.loaded += count
        self.endInsertRows()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The image as a pixmap (decoration) and its number and label (tooltip)."""
        if not index.isValid() or self.images is None:
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self._pixmaps.get(row)
            if pixmap is None:
                image = image_to_qimage(np.asarray(self.images[row]))
                pixmap = QPixmap.fromImage(
                    image.scaled(
                        self.cell,
                        self.cell,
                        Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.FastTransformation
                        if image.width() < self.cell
                        else Qt.TransformationMode.SmoothTransformation,
                    )
                )
                self._pixmaps[row] = pixmap
            return pixmap
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            label = self.labels[row] if row < len(self.labels) else None
            return f"image {row + 1}" + (f", class {label}" if label else "")
        return None
