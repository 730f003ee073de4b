"""The Inpaint page."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.ui.context import StudioContext


class InpaintPage(QWidget):
    """Inpaint."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("inpaintPage")
        self.setAccessibleName("Inpaint")
        QVBoxLayout(self).addWidget(QLabel("<h2>Inpaint</h2>"))

    def refresh(self) -> None:
        """Reload from the store."""
