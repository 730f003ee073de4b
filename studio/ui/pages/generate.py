"""The Generate page."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.ui.context import StudioContext


class GeneratePage(QWidget):
    """Generate."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("generatePage")
        self.setAccessibleName("Generate")
        QVBoxLayout(self).addWidget(QLabel("<h2>Generate</h2>"))

    def refresh(self) -> None:
        """Reload from the store."""
