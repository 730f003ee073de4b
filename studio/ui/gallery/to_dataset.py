"""Gallery to dataset from the selection: a dialog asks the new dataset's name and where its class labels come
from, then `curation.gallery_to_dataset` runs as an engine job (the same call as `studio gallery to-dataset`)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QWidget

from studio.engine import curation
from studio.limits import LABEL_SOURCES
from studio.store.database import Store
from studio.ui.context import StudioContext
from studio.ui.gallery.commands import plural
from studio.ui.jobs import JobHandle
from studio.ui.operations import EngineOp
from studio.ui.widgets import named

LABEL_TITLES = {
    "auto": "Automatic: the class it was made as, else its model",
    "class": "The class it was made as",
    "model": "The model that made it",
    "tag": "Its first tag",
    "none": "No labels",
}


class DatasetDialog(QDialog):
    """Name and label source of a dataset made from `count` gallery images."""

    def __init__(self, count: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("toDatasetDialog")
        self.setWindowTitle(f"Dataset from {plural(count)}")
        self.name_edit = named(QLineEdit(), "toDatasetNameEdit", "Dataset name", "1-64 letters, digits, - or _")
        self.name_edit.setPlaceholderText("curated-set")
        self.labels_combo = named(
            QComboBox(), "toDatasetLabelsCombo", "Class labels", "Where each image's label comes from"
        )
        for source in LABEL_SOURCES:
            self.labels_combo.addItem(LABEL_TITLES.get(source, source), source)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.setObjectName("toDatasetButtons")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(QLabel(f"A new dataset of the {plural(count)} selected (all of one size and channel count)."))
        form.addRow("Name", self.name_edit)
        form.addRow("Labels", self.labels_combo)
        form.addRow(buttons)

    def choice(self) -> tuple[str, str]:
        """The name typed and the label source chosen."""
        return self.name_edit.text().strip(), str(self.labels_combo.currentData())


def ask_dataset(parent: QWidget, count: int) -> tuple[str, str] | None:
    """Ask for the new dataset's name and label source; None when cancelled or no name was given."""
    dialog = DatasetDialog(count, parent)
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        name, labels = dialog.choice()
        return (name, labels) if name else None
    finally:
        dialog.deleteLater()


def start_to_dataset(context: StudioContext, store: Store, ids: list[int], name: str, labels: str) -> JobHandle:
    """Make the dataset as an engine job; the Datasets page lists it once done."""

    def done(summary: Any) -> None:
        context.signals.datasetsChanged.emit()
        context.notify(f"Dataset '{summary.name}' made of {plural(summary.count)}: it is on the Datasets page")

    return (
        EngineOp[Any](
            context,
            f"Dataset '{name}' from {plural(len(ids))}",
            lambda token: curation.gallery_to_dataset(store, name, label_by=labels, ids=ids, cancel=token),
        )
        .success(done)
        .failure(lambda reason: context.error("Dataset not made", reason))
        .run()
    )
