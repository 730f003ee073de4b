"""Painting helpers of the gallery: stars, flag badges, placeholders and whole-pixel image scaling.

The delegate draws these once into pixmaps and reuses them, so a grid cell costs a handful of painter calls.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPalette, QPen, QPixmap, QPolygonF

from studio.engine.thumbnails import THUMBNAIL_SIZE

CELL = QSize(THUMBNAIL_SIZE + 12, THUMBNAIL_SIZE + 30)  # thumbnail, margins, and the stars row under it

STAR_GOLD = QColor(245, 181, 20)
PICK_GREEN = QColor(46, 160, 67)
REJECT_RED = QColor(210, 55, 50)


def scale_crisp(image: QImage, box: int) -> QPixmap:
    """A pixmap of `image` fitting a `box` square: whole-pixel nearest upscaling, smooth downscaling."""
    if image.isNull():
        return QPixmap()
    width, height = image.width(), image.height()
    factor = box // max(width, height)
    if factor >= 1:
        scaled = image.scaled(
            width * factor,
            height * factor,
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
    else:
        scaled = image.scaled(box, box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(scaled)


def fit_thumbnail(image: QImage) -> QImage:
    """Scale an image into the grid's square: whole pixels up (crisp), smooth down. Safe off the GUI thread."""
    width, height = image.width(), image.height()
    factor = THUMBNAIL_SIZE // max(width, height)
    if factor == 1:
        return image
    if factor > 1:
        return image.scaled(
            width * factor,
            height * factor,
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
    return image.scaled(
        THUMBNAIL_SIZE, THUMBNAIL_SIZE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


def star_polygon(center: QPointF, outer: float) -> QPolygonF:
    """A five-pointed star around `center`."""
    inner = outer * 0.45
    points = []
    for corner in range(10):
        radius = outer if corner % 2 == 0 else inner
        angle = math.pi / 2 + corner * math.pi / 5
        points.append(QPointF(center.x() + radius * math.cos(angle), center.y() - radius * math.sin(angle)))
    return QPolygonF(points)


def paint_stars(painter: QPainter, origin: QPointF, stars: int, size: float, empty: QColor) -> float:
    """Five stars from `origin` (their left middle), `stars` of them filled; returns the width painted."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    gap = size * 0.2
    for star in range(5):
        center = QPointF(origin.x() + size / 2 + star * (size + gap), origin.y())
        polygon = star_polygon(center, size / 2)
        if star < stars:
            painter.setPen(QPen(STAR_GOLD.darker(130), 1))
            painter.setBrush(STAR_GOLD)
        else:
            painter.setPen(QPen(empty, 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPolygon(polygon)
    painter.restore()
    return 5 * size + 4 * gap


def paint_flag(painter: QPainter, rect: QRectF, flag: str) -> None:
    """A round badge: a white tick on green for a pick, a white cross on red for a reject."""
    if flag not in ("pick", "reject"):
        return
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(QPen(QColor(255, 255, 255), 1.5))
    painter.setBrush(PICK_GREEN if flag == "pick" else REJECT_RED)
    painter.drawEllipse(rect)
    pen = QPen(QColor(255, 255, 255), max(1.5, rect.width() / 8))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    x, y, w, h = rect.x(), rect.y(), rect.width(), rect.height()
    if flag == "pick":
        painter.drawPolyline(
            QPolygonF(
                [
                    QPointF(x + w * 0.28, y + h * 0.52),
                    QPointF(x + w * 0.44, y + h * 0.68),
                    QPointF(x + w * 0.72, y + h * 0.34),
                ]
            )
        )
    else:
        painter.drawLine(QPointF(x + w * 0.32, y + h * 0.32), QPointF(x + w * 0.68, y + h * 0.68))
        painter.drawLine(QPointF(x + w * 0.68, y + h * 0.32), QPointF(x + w * 0.32, y + h * 0.68))
    painter.restore()


def flag_badge(flag: str, size: int) -> QPixmap:
    """A `size` square pixmap of a flag's badge (transparent around it)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    paint_flag(painter, QRectF(1, 1, size - 2, size - 2), flag)
    painter.end()
    return pixmap


def star_strip(stars: int, size: float, empty: QColor) -> QPixmap:
    """Five stars of `size` in one pixmap, `stars` of them filled."""
    width = int(5 * size + 4 * size * 0.2) + 2
    pixmap = QPixmap(width, int(size) + 2)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    paint_stars(painter, QPointF(1, (size + 2) / 2), stars, size, empty)
    painter.end()
    return pixmap


def placeholder(missing: bool, palette: QPalette) -> QPixmap:
    """A thumbnail-sized stand-in: a dashed square while loading, a crossed one saying "image missing"."""
    pixmap = QPixmap(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    pixmap.fill(palette.color(QPalette.ColorRole.Mid if missing else QPalette.ColorRole.AlternateBase))
    painter = QPainter(pixmap)
    painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1, Qt.PenStyle.DashLine))
    painter.drawRect(0, 0, THUMBNAIL_SIZE - 1, THUMBNAIL_SIZE - 1)
    if missing:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(REJECT_RED.lighter(120), 2))
        middle = THUMBNAIL_SIZE / 2
        painter.drawLine(QPointF(middle - 12, middle - 22), QPointF(middle + 12, middle + 2))
        painter.drawLine(QPointF(middle + 12, middle - 22), QPointF(middle - 12, middle + 2))
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(
            QRect(0, int(middle) + 6, THUMBNAIL_SIZE, 20), int(Qt.AlignmentFlag.AlignCenter), "image missing"
        )
    painter.end()
    return pixmap
