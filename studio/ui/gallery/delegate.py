"""How a grid cell is painted: the thumbnail (a placeholder while loading or when missing), flag badge, stars, id."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from studio.engine.thumbnails import THUMBNAIL_SIZE
from studio.store.gallery import GalleryEntry
from studio.ui.gallery.model import ENTRY_ROLE, STATE_ROLE, THUMBNAIL_ROLE
from studio.ui.gallery.painting import CELL, flag_badge, placeholder, star_strip


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a cell: the thumbnail (a placeholder while loading or when missing), flag badge, stars, id.

    Stars, badges and placeholders are drawn once into pixmaps and reused, so a cell costs a handful of
    painter calls: a screenful repaints in a few milliseconds while scrolling.
    """

    STAR = 11

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._palette_key: int | None = None
        self._stars: list[QPixmap] = []
        self._badges: dict[str, QPixmap] = {}
        self._placeholders: dict[bool, QPixmap] = {}
        self._font: QFont | None = None

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        """Every cell is the same size (the view lays out with uniform sizes)."""
        return QSize(CELL)

    def _decorations(self, palette: QPalette, font: QFont) -> None:
        """(Re)draw the reusable pieces when the palette changes (a theme switch)."""
        if self._palette_key == palette.cacheKey():
            return
        self._palette_key = palette.cacheKey()
        empty = palette.color(QPalette.ColorRole.PlaceholderText)
        self._stars = [star_strip(stars, self.STAR, empty) for stars in range(6)]
        self._badges = {flag: flag_badge(flag, 20) for flag in ("pick", "reject")}
        self._placeholders = {missing: placeholder(missing, palette) for missing in (False, True)}
        self._font = QFont(font)
        self._font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        """Draw one cell; rejected items are dimmed; a row whose entry is still being read is a placeholder."""
        entry: GalleryEntry | None = index.data(ENTRY_ROLE)
        palette: QPalette = option.palette
        cell: QRect = option.rect
        state = option.state
        self._decorations(palette, painter.font())
        painter.save()
        selected = bool(state & QStyle.StateFlag.State_Selected)
        if selected:
            highlight = palette.color(QPalette.ColorRole.Highlight)
            fill = QColor(highlight)
            fill.setAlpha(70)
            painter.fillRect(cell.adjusted(1, 1, -1, -1), fill)
            painter.setPen(QPen(highlight, 2))
            painter.drawRect(cell.adjusted(2, 2, -2, -2))
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(cell.adjusted(1, 1, -1, -1), palette.color(QPalette.ColorRole.AlternateBase))
        left = cell.x() + (cell.width() - THUMBNAIL_SIZE) // 2
        top = cell.y() + 6
        if entry is None:
            # Its block is on its way (or the item left the store): the placeholder and the id, never a hole.
            painter.drawPixmap(left, top, self._placeholders[index.data(STATE_ROLE) == "missing"])
            if self._font is not None:
                painter.setFont(self._font)
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                QRect(left, top + THUMBNAIL_SIZE + 4, THUMBNAIL_SIZE, self.STAR + 6),
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                str(index.data(Qt.ItemDataRole.DisplayRole) or ""),
            )
            painter.restore()
            return
        dim = entry.flag == "reject"
        if dim:
            painter.setOpacity(0.35)
        image: QImage | None = index.data(THUMBNAIL_ROLE)
        if image is not None and not image.isNull():
            # Already fitted to the square off the GUI thread: drawn 1:1, crisp and cheap.
            painter.drawImage(
                left + (THUMBNAIL_SIZE - image.width()) // 2, top + (THUMBNAIL_SIZE - image.height()) // 2, image
            )
        else:
            painter.drawPixmap(left, top, self._placeholders[index.data(STATE_ROLE) == "missing"])
        stars = self._stars[max(0, min(5, entry.rating))]
        stars_top = top + THUMBNAIL_SIZE + 6
        painter.drawPixmap(left, stars_top, stars)
        if dim:
            painter.setOpacity(1.0)
        if self._font is not None:
            painter.setFont(self._font)
        painter.setPen(palette.color(QPalette.ColorRole.Text if selected else QPalette.ColorRole.PlaceholderText))
        painter.drawText(
            QRect(left, stars_top - 2, THUMBNAIL_SIZE, stars.height() + 4),
            int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
            f"#{entry.id}",
        )
        badge = self._badges.get(entry.flag)
        if badge is not None:
            painter.drawPixmap(left + 4, top + 4, badge)
        painter.restore()
