"""A canvas to paint an inpainting mask over an image: brush, eraser, soft edge, undo/redo, zoom.

The image is drawn scaled by a whole-number zoom with nearest-neighbour sampling, so every image
pixel stays a crisp square; the mask lies over it as a translucent red layer. The mask is a float
array at the image's own size with values in [0, 1]: a hard brush writes 0 or 1, a soft brush
feathers its rim, and `mask_bool()` thresholds at 0.5 for the engine. Undo and redo keep whole
mask snapshots, one per stroke or command.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QRegion,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

Tool = Literal["brush", "eraser"]
MIN_ZOOM = 1
MAX_ZOOM = 64
MASK_COLOUR = (255, 48, 48)
MASK_OPACITY = 150  # of 255: the image must stay readable under the mask
HISTORY_BYTES = 256 * 1024 * 1024  # undo snapshots kept at most (the oldest go first)
HISTORY_STEPS = 100
EMPTY_SIZE = QSize(320, 120)
EMPTY_HINT = "No image yet: open an image file or load a gallery item (#ID), then paint the area to regenerate."


class MaskCanvas(QWidget):
    """Shows an image at a whole-pixel zoom and lets the user paint which pixels to regenerate."""

    maskChanged = Signal()  # noqa: N815 - Qt naming; after a stroke, undo, redo, clear...
    zoomChanged = Signal(int)  # noqa: N815
    historyChanged = Signal()  # noqa: N815 - undo/redo availability may have changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)  # the brush outline follows the pointer
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self._image: QImage | None = None
        self._mask = np.zeros((0, 0), np.float32)
        self._overlay: QImage | None = None
        self._zoom = 8
        self.tool: Tool = "brush"
        self.brush_size = 3  # diameter, in image pixels
        self.soft_edge = False
        self.crop: QRect | None = None  # the part the model sees; drawn outlined when set
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self._last: QPointF | None = None  # the previous point of the stroke in progress
        self._hover: QPointF | None = None
        self._resize()

    # --- image and mask ------------------------------------------------------------------

    def set_image(self, image: QImage) -> None:
        """Show a new image with an empty mask and no history."""
        self._image = image.copy()
        self._mask = np.zeros((image.height(), image.width()), np.float32)
        self._undo.clear()
        self._redo.clear()
        self._last = None
        self._mask_edited(record=False)
        self._resize()
        self.historyChanged.emit()

    def has_image(self) -> bool:
        """Whether an image is loaded."""
        return self._image is not None

    def image(self) -> QImage | None:
        """The image painted over."""
        return self._image

    def image_size(self) -> QSize:
        """The image's own size in pixels (0 x 0 without an image)."""
        return QSize(self._mask.shape[1], self._mask.shape[0])

    def mask_values(self) -> np.ndarray:
        """A copy of the mask: float32 H x W in [0, 1], 1 = regenerate."""
        return self._mask.copy()

    def mask_bool(self) -> np.ndarray:
        """The mask the engine gets: True where the painted value is at least 0.5."""
        return self._mask >= 0.5

    def set_mask(self, mask: np.ndarray) -> None:
        """Replace the mask (undoable); it must have the image's size."""
        mask = np.asarray(mask, np.float32)
        if mask.shape != self._mask.shape:
            raise ValueError(f"a mask of shape {mask.shape} does not fit an image of shape {self._mask.shape}")
        self._remember()
        self._mask = np.clip(mask, 0.0, 1.0).astype(np.float32)
        self._mask_edited()

    def clear(self) -> None:
        """Empty the mask (undoable)."""
        if self._mask.any():
            self.set_mask(np.zeros_like(self._mask))

    def invert(self) -> None:
        """Swap painted and unpainted (undoable)."""
        if self._mask.size:
            self.set_mask(1.0 - self._mask)

    # --- history -------------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        """Whether there is a change to undo."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone change to redo."""
        return bool(self._redo)

    def undo(self) -> None:
        """Go back to the mask before the last stroke or command."""
        if self._undo:
            self._redo.append(self._mask)
            self._mask = self._undo.pop()
            self._mask_edited()

    def redo(self) -> None:
        """Re-apply the last undone change."""
        if self._redo:
            self._undo.append(self._mask)
            self._mask = self._redo.pop()
            self._mask_edited()

    def _remember(self) -> None:
        """Snapshot the mask before a change; a new change forgets what was undone."""
        self._undo.append(self._mask.copy())
        self._redo.clear()
        # Bounded: a large image's snapshots are big, and the oldest matter least.
        while len(self._undo) > HISTORY_STEPS or (
            len(self._undo) > 1 and sum(s.nbytes for s in self._undo) > HISTORY_BYTES
        ):
            self._undo.pop(0)

    def _mask_edited(self, record: bool = True) -> None:
        self._overlay = None
        self.update()
        if record:
            self.historyChanged.emit()
            self.maskChanged.emit()

    # --- tools ---------------------------------------------------------------------------

    def set_tool(self, tool: Tool) -> None:
        """'brush' paints the area to regenerate, 'eraser' takes it back."""
        self.tool = tool
        self.update()

    def set_brush_size(self, size: int) -> None:
        """The brush's diameter in image pixels (at least 1)."""
        self.brush_size = max(1, int(size))
        self.update()

    def set_soft_edge(self, soft: bool) -> None:
        """A feathered rim (values between 0 and 1) instead of a hard disc."""
        self.soft_edge = bool(soft)

    def _stamp(self, x: float, y: float) -> None:
        height, width = self._mask.shape
        radius = self.brush_size / 2
        if self.brush_size % 2:
            # Odd sizes centre on the pixel under the pointer, even ones on the nearest pixel corner,
            # so a 1-pixel brush paints exactly that pixel and a size-n brush is n pixels across.
            cx, cy = math.floor(x) + 0.5, math.floor(y) + 0.5
        else:
            cx, cy = float(round(x)), float(round(y))
        reach = radius + 1
        left, right = max(0, int(cx - reach)), min(width, math.ceil(cx + reach))
        top, bottom = max(0, int(cy - reach)), min(height, math.ceil(cy + reach))
        if left >= right or top >= bottom:
            return
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
        distance = np.hypot(xs + 0.5 - cx, ys + 0.5 - cy)
        if self.soft_edge:
            # A linear ramp that crosses 0.5 exactly at the hard brush's rim: thresholding a soft
            # dab at 0.5 gives the hard dab back, while the stored values fade out smoothly.
            feather = max(1.0, radius * 0.6)
            strength = np.clip((radius + 0.01 - distance) / feather + 0.5, 0.0, 1.0)
        else:
            strength = (distance <= radius + 0.01).astype(np.float32)
        region = self._mask[top:bottom, left:right]
        if self.tool == "brush":
            np.maximum(region, strength, out=region)
        else:
            np.minimum(region, 1.0 - strength, out=region)

    def _stroke_to(self, x: float, y: float) -> None:
        """Dabs from the previous point to (x, y), close enough that a fast drag leaves no gaps."""
        last = self._last if self._last is not None else QPointF(x, y)
        distance = math.hypot(x - last.x(), y - last.y())
        steps = max(1, math.ceil(distance / max(0.5, self.brush_size / 4)))
        for index in range(1, steps + 1):
            t = index / steps
            self._stamp(last.x() + (x - last.x()) * t, last.y() + (y - last.y()) * t)
        self._last = QPointF(x, y)

    # --- zoom ----------------------------------------------------------------------------

    @property
    def zoom(self) -> int:
        """Screen pixels per image pixel (a whole number keeps pixels crisp)."""
        return self._zoom

    def set_zoom(self, zoom: int) -> None:
        """Change the zoom, clamped to 1..64."""
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, int(zoom)))
        if zoom != self._zoom:
            self._zoom = zoom
            self._resize()
            self.zoomChanged.emit(zoom)

    def zoom_in(self) -> None:
        """One step closer (about 25% more, at least one whole step)."""
        self.set_zoom(max(self._zoom + 1, round(self._zoom * 1.25)))

    def zoom_out(self) -> None:
        """One step further."""
        self.set_zoom(min(self._zoom - 1, round(self._zoom / 1.25)))

    def fit_zoom(self, available: QSize) -> int:
        """The largest whole zoom at which the image fits `available`."""
        size = self.image_size()
        if size.isEmpty():
            return self._zoom
        return max(MIN_ZOOM, min(MAX_ZOOM, available.width() // size.width(), available.height() // size.height()))

    def fit_to(self, available: QSize) -> None:
        """Zoom so that the image fits `available` (a scroll area's viewport)."""
        self.set_zoom(self.fit_zoom(available))

    def widget_point(self, x: float, y: float) -> QPoint:
        """Where image coordinates (x, y) are on this widget (for scripts and tests)."""
        return QPoint(int(x * self._zoom), int(y * self._zoom))

    def _image_point(self, position: QPointF) -> QPointF:
        return QPointF(position.x() / self._zoom, position.y() / self._zoom)

    def _resize(self) -> None:
        size = self.image_size()
        if size.isEmpty():
            self.setFixedSize(EMPTY_SIZE)  # room for the "open an image" hint
        else:
            self.setFixedSize(size.width() * self._zoom, size.height() * self._zoom)
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        """The zoomed image's size."""
        size = self.image_size()
        return QSize(size.width() * self._zoom, size.height() * self._zoom)

    # --- events --------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A left press starts a stroke (one undo step) with a dab where it lands."""
        if event.button() != Qt.MouseButton.LeftButton or not self._mask.size:
            super().mousePressEvent(event)
            return
        self._remember()
        point = self._image_point(event.position())
        self._last = None
        self._stroke_to(point.x(), point.y())
        self._mask_edited(record=False)
        self.historyChanged.emit()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Drag paints along the way; hovering moves the brush outline."""
        point = self._image_point(event.position())
        self._hover = point
        if self._last is not None:  # a stroke is in progress (button state is unreliable in synthetic events)
            self._stroke_to(point.x(), point.y())
            self._mask_edited(record=False)
        else:
            self.update()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """The stroke ends: listeners hear of the new mask once."""
        if event.button() == Qt.MouseButton.LeftButton and self._last is not None:
            self._last = None
            self.maskChanged.emit()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        """Hide the brush outline."""
        self._hover = None
        self.update()
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        """Ctrl+wheel zooms; a plain wheel scrolls (the event goes on to the scroll area)."""
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            delta = event.angleDelta().y()
            if delta > 0:
                self.zoom_in()
            elif delta < 0:
                self.zoom_out()
            event.accept()
            return
        event.ignore()

    # --- drawing -------------------------------------------------------------------------

    def _overlay_image(self) -> QImage:
        if self._overlay is None:
            height, width = self._mask.shape
            rgba = np.empty((height, width, 4), np.uint8)
            rgba[..., :3] = MASK_COLOUR
            rgba[..., 3] = np.round(self._mask * MASK_OPACITY).astype(np.uint8)
            self._overlay = QImage(rgba.data, width, height, 4 * width, QImage.Format.Format_RGBA8888).copy()
        return self._overlay

    def paintEvent(self, event: QPaintEvent) -> None:
        """The image, the mask over it, the model's crop and the brush outline."""
        del event
        painter = QPainter(self)
        if self._image is None:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, EMPTY_HINT)
            painter.end()
            return
        painter.fillRect(self.rect(), QColor(40, 40, 40))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # whole, crisp pixels
        target = QRect(0, 0, self._image.width() * self._zoom, self._image.height() * self._zoom)
        painter.drawImage(target, self._image)
        painter.drawImage(target, self._overlay_image())
        if self.crop is not None and self.crop != QRect(QPoint(0, 0), self.image_size()):
            # Outside the centre square the model never looks: shade it so painting there is not a surprise.
            zoomed = QRect(
                self.crop.x() * self._zoom,
                self.crop.y() * self._zoom,
                self.crop.width() * self._zoom,
                self.crop.height() * self._zoom,
            )
            painter.save()
            painter.setClipRegion(QRegion(target).subtracted(QRegion(zoomed)))
            painter.fillRect(target, QColor(0, 0, 0, 110))
            painter.restore()
            painter.setPen(QPen(QColor(255, 220, 0), 1, Qt.PenStyle.DashLine))
            painter.drawRect(zoomed.adjusted(0, 0, -1, -1))
        if self._hover is not None:
            radius = self.brush_size / 2 * self._zoom
            centre = QPointF(self._hover.x() * self._zoom, self._hover.y() * self._zoom)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            colour = QColor(255, 255, 255) if self.tool == "brush" else QColor(120, 200, 255)
            painter.setPen(QPen(QColor(0, 0, 0, 160), 3))
            painter.drawEllipse(QRectF(centre.x() - radius, centre.y() - radius, 2 * radius, 2 * radius))
            painter.setPen(QPen(colour, 1, Qt.PenStyle.SolidLine if self.tool == "brush" else Qt.PenStyle.DashLine))
            painter.drawEllipse(QRectF(centre.x() - radius, centre.y() - radius, 2 * radius, 2 * radius))
        painter.end()
