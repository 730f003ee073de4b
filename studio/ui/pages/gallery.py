"""The Gallery page."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from studio.ui.context import StudioContext


class GalleryPage(QWidget):
    """Gallery."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("galleryPage")
        self.setAccessibleName("Gallery")
        QVBoxLayout(self).addWidget(QLabel("<h2>Gallery</h2>"))

    def refresh(self) -> None:
        """Reload from the store."""

    def restore_settings_from(self, path: object, quiet: bool = False) -> bool:
        """Restore a studio PNG's settings in Generate; False when the file is not one."""
        del path, quiet
        return False
