"""The detail pane's star rating: five clickable stars, keyboard friendly."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QBrush, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import QWidget

from studio.ui.gallery.painting import paint_stars


class StarRating(QWidget):
    """Five clickable stars: click a star to rate, click the current one again to clear; 0-5 keys too."""

    ratingChanged = Signal(int)  # noqa: N815 - by the user only

    STAR = 18

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value = 0
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFixedSize(int(5 * self.STAR + 4 * self.STAR * 0.2) + 4, self.STAR + 6)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def value(self) -> int:
        """The stars shown."""
        return self._value

    def setValue(self, stars: int) -> None:
        """Show `stars` (no signal)."""
        self._value = max(0, min(5, int(stars)))
        self.setAccessibleDescription(f"{self._value} of 5 stars")
        self.update()

    def _choose(self, stars: int) -> None:
        self.setValue(stars)
        self.ratingChanged.emit(self._value)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Rate by the star under the pointer."""
        if not self.isEnabled() or event.button() != Qt.MouseButton.LeftButton:
            return
        star = min(5, max(1, int((event.position().x() - 2) // (self.STAR * 1.2)) + 1))
        self._choose(0 if star == self._value else star)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """0-5 set the rating; left and right step it."""
        key = event.key()
        if Qt.Key.Key_0 <= key <= Qt.Key.Key_5:
            self._choose(int(key) - int(Qt.Key.Key_0))
        elif key == Qt.Key.Key_Right:
            self._choose(min(5, self._value + 1))
        elif key == Qt.Key.Key_Left:
            self._choose(max(0, self._value - 1))
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        """The stars, dimmed when disabled."""
        del event
        painter = QPainter(self)
        if not self.isEnabled():
            painter.setOpacity(0.4)
        empty = self.palette().color(QPalette.ColorRole.PlaceholderText)
        paint_stars(painter, QPointF(2, self.height() / 2), self._value, self.STAR, empty)
        if self.hasFocus():
            painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 1, Qt.PenStyle.DotLine))
            painter.setBrush(QBrush(Qt.BrushStyle.NoBrush))
            painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        painter.end()
