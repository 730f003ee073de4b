"""The Datasets page: every dataset with its preview sheet; import by drop or dialog."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.storage import PREVIEW_FILE, list_datasets
from studio.ui.context import StudioContext


class DatasetsPage(QWidget):
    """Every dataset in the data home with its preview sheet, size and classes."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.setObjectName("datasetsPage")
        self.setAccessibleName("Datasets")
        layout = QVBoxLayout(self)
        title = QLabel("<h2>Datasets</h2>")
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("datasetList")
        self.list.setAccessibleName("Dataset list")
        self.list.setIconSize(QSize(128, 64))
        self.list.setSpacing(4)
        layout.addWidget(title)
        layout.addWidget(self.hint)
        layout.addWidget(self.list, 1)
        self.refresh()

    def refresh(self) -> None:
        """Reload the list from the store."""
        self.list.clear()
        datasets = list_datasets(self.store)
        self.hint.setText(
            "Import with <code>studio datasets import PATH --name NAME</code> or add a sample with "
            "<code>studio datasets add-sample digits</code>." if not datasets else
            f"{len(datasets)} dataset(s) in {self.store.home.datasets}"
        )
        for dataset in datasets:
            classes = f", {len(dataset.class_counts)} classes" if dataset.class_counts else ""
            text = (f"{dataset.name}\n{dataset.count} images, {dataset.size}x{dataset.size}, "
                    f"{'grey' if dataset.channels == 1 else 'colour'}{classes} ({dataset.origin})")
            item = QListWidgetItem(text)
            preview = self.store.home.absolute(dataset.folder) / PREVIEW_FILE
            pixmap = QPixmap(str(preview))
            if not pixmap.isNull():
                item.setIcon(pixmap.scaledToHeight(64, Qt.TransformationMode.SmoothTransformation))
            self.list.addItem(item)

    def start_import(self, paths: list) -> None:
        """Import dropped paths (the full dialog arrives with the Datasets page work)."""
        self.context.notify(f"{len(paths)} path(s) dropped")
