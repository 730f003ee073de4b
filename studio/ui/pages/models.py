"""The Models page: every model with its family, shape, dataset, steps and export state."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.library import list_models
from studio.ui.context import StudioContext


class ModelsPage(QWidget):
    """Every model with its family, shape, dataset, steps and size."""

    COLUMNS = ("Name", "Family", "Shape", "Dataset", "Steps", "Parameters", "Updated")

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
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

    def import_model_folder(self, folder: object) -> None:
        """Import a dropped model folder (the full flow arrives with the Models page work)."""
        self.context.notify(f"model folder dropped: {folder}")
