"""Reusable widgets and small helpers shared by the pages."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QWidget

W = TypeVar("W", bound=QWidget)


def named(widget: W, object_name: str, accessible_name: str, tooltip: str | None = None) -> W:
    """Give a widget its stable objectName (automation) and accessibleName (screen readers)."""
    widget.setObjectName(object_name)
    widget.setAccessibleName(accessible_name)
    if tooltip:
        widget.setToolTip(tooltip)
    return widget


def ask_yes(parent: QWidget, title: str, question: str) -> bool:
    """Ask before something destructive: Yes or Cancel, with Cancel the default."""
    from PySide6.QtWidgets import QMessageBox

    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel
    answer = QMessageBox.question(parent, title, question, buttons, QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Yes


def image_to_qimage(image: np.ndarray) -> QImage:
    """uint8 H x W x C (1 or 3 channels) to a QImage that owns a copy of the pixels."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    if image.ndim == 2 or image.shape[2] == 1:
        grey = np.ascontiguousarray(image.reshape(height, width))
        return QImage(grey.data, width, height, width, QImage.Format.Format_Grayscale8).copy()
    return QImage(image.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def image_grid(images: np.ndarray, columns: int = 8, cell: int = 64, gap: int = 2) -> QPixmap:
    """A grid of uint8 NHWC images, each scaled by whole pixels to `cell`, as one pixmap."""
    from PySide6.QtCore import QRect, Qt
    from PySide6.QtGui import QColor, QPainter

    count = len(images)
    if count == 0:
        return QPixmap()
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    pixmap = QPixmap(columns * (cell + gap) - gap, rows * (cell + gap) - gap)
    pixmap.fill(QColor(0, 0, 0, 0))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        target = QRect(column * (cell + gap), row * (cell + gap), cell, cell)
        painter.drawImage(
            target,
            image_to_qimage(image).scaled(
                cell, cell, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
            ),
        )
    painter.end()
    return pixmap
