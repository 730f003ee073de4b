"""The Train page."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.ui.context import StudioContext


class TrainPage(QWidget):
    """Train."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("trainPage")
        self.setAccessibleName("Train")
        QVBoxLayout(self).addWidget(QLabel("<h2>Train</h2>"))

    def refresh(self) -> None:
        """Reload from the store."""
