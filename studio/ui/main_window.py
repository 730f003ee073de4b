"""The main window: a navigation sidebar, stacked pages and a status bar."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.storage import PREVIEW_FILE, list_datasets
from studio.engine.library import list_models
from studio.store.database import Store


class DatasetsPage(QWidget):
    """Every dataset in the data home with its preview sheet, size and classes."""

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
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


class ModelsPage(QWidget):
    """Every model with its family, shape, dataset, steps and size."""

    COLUMNS = ("Name", "Family", "Shape", "Dataset", "Steps", "Parameters", "Updated")

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.setObjectName("modelsPage")
        self.setAccessibleName("Models")
        layout = QVBoxLayout(self)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("modelTable")
        self.table.setAccessibleName("Model list")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(QLabel("<h2>Models</h2>"))
        layout.addWidget(self.hint)
        layout.addWidget(self.table, 1)
        self.refresh()

    def refresh(self) -> None:
        """Reload the table from the store."""
        models = list_models(self.store)
        self.hint.setText(
            "Train one with <code>studio train --family vae --dataset digits --name first --minutes 3</code>."
            if not models else f"{len(models)} model(s) in {self.store.home.models}"
        )
        self.table.setRowCount(len(models))
        for row, model in enumerate(models):
            values = (model.name, model.family, f"{model.resolution}x{model.resolution}x{model.channels}",
                      model.dataset or "-", f"{model.steps:,}", f"{model.parameter_count / 1e6:.2f} M",
                      model.updated_at.replace("T", " "))
            for column, value in enumerate(values):
                self.table.setItem(row, column, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()


class MainWindow(QMainWindow):
    """Sidebar + stacked pages + status bar; pages grow with the UI issue."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.setObjectName("mainWindow")
        self.setWindowTitle("Studio")
        self.resize(1100, 720)
        central = QWidget()
        layout = QHBoxLayout(central)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setAccessibleName("Pages")
        self.sidebar.setFixedWidth(170)
        self.pages = QStackedWidget()
        self.datasets_page = DatasetsPage(store)
        self.models_page = ModelsPage(store)
        self._add_page("Datasets", self.datasets_page)
        self._add_page("Models", self.models_page)
        self.sidebar.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.sidebar.setCurrentRow(0)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        status = f"Data home: {store.home.root}"
        if store.read_only:
            status += f"  |  read-only: {store.read_only_reason}"
        self.statusBar().showMessage(status)

    def _add_page(self, title: str, page: QWidget) -> None:
        self.sidebar.addItem(title)
        self.pages.addWidget(page)
