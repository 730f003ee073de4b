"""The Interpolate page."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.ui.context import StudioContext


class InterpolatePage(QWidget):
    """Interpolate."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("interpolatePage")
        self.setAccessibleName("Interpolate")
        QVBoxLayout(self).addWidget(QLabel("<h2>Interpolate</h2>"))

    def refresh(self) -> None:
        """Reload from the store."""
