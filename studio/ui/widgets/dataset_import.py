"""The Datasets page's dialogs: `ImportDialog` asks how to import, `ImportReport` shows what an import did."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.importer import ImportResult
from studio.engine.datasets.sources import Skipped
from studio.engine.datasets.storage import MAX_SIZE, MIN_SIZE, validate_name
from studio.engine.families.declaration import CPU_TRAINING_LIMIT, RESOLUTIONS, describe_resolutions
from studio.errors import StudioError
from studio.ui.widgets import named

ERROR_STYLE = "color: #c0392b;"
NOTE_STYLE = "color: #8a6d1d;"


def suggest_name(paths: list[Path], taken: set[str]) -> str:
    """A valid, free dataset name from the first path (a folder's name, a file's stem)."""
    first = Path(paths[0]) if paths else Path("dataset")
    stem = first.name if first.is_dir() or not first.suffix else first.stem
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", stem)
    base = re.sub(r"^[^A-Za-z0-9]+", "", base)[:60].rstrip("-.") or "dataset"
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    return name


class ImportDialog(QDialog):
    """Asks how to import the given paths: the dataset's name, image size, channels and class labels."""

    def __init__(self, paths: list[Path], taken: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "importDialog", "Import a dataset")
        self.setWindowTitle("Import dataset")
        self.paths = list(paths)
        self.taken = set(taken)
        layout = QVBoxLayout(self)
        shown = "<br>".join(html.escape(str(p), quote=False) for p in self.paths[:4])
        more = f"<br>and {len(self.paths) - 4} more" if len(self.paths) > 4 else ""
        sources = named(QLabel(f"<b>From</b><br>{shown}{more}"), "importSources", "What will be imported")
        sources.setWordWrap(True)
        sources.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(sources)

        form = QFormLayout()
        self.name_edit = named(
            QLineEdit(suggest_name(self.paths, self.taken)),
            "importNameEdit",
            "Dataset name",
            "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
        self.size_spin = named(
            QSpinBox(),
            "importSizeSpin",
            "Image size in pixels",
            "Every image is centre-cropped to a square and resized to this size",
        )
        self.size_spin.setRange(MIN_SIZE, MAX_SIZE)
        self.size_spin.setValue(32)
        self.size_spin.setSuffix(" px")
        self.channels_combo = named(QComboBox(), "importChannelsCombo", "Channels")
        self.channels_combo.addItem("Colour (RGB)", 3)
        self.channels_combo.addItem("Grey", 1)
        self.labels_check = named(
            QCheckBox("Sub-folder names are class labels"), "importLabelsCheck", "Use sub-folder names as class labels"
        )
        self.labels_check.setChecked(True)
        form.addRow("&Name", self.name_edit)
        form.addRow("&Size", self.size_spin)
        form.addRow("&Channels", self.channels_combo)
        form.addRow("", self.labels_check)
        layout.addLayout(form)
        self.message = named(QLabel(), "importMessage", "Import settings message")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = named(
            self.buttons.button(QDialogButtonBox.StandardButton.Ok), "importOkButton", "Start the import"
        )
        self.ok_button.setText("Import")
        named(self.buttons.button(QDialogButtonBox.StandardButton.Cancel), "importDialogCancelButton", "Do not import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.name_edit.textChanged.connect(self._validate)
        self.size_spin.valueChanged.connect(self._validate)
        self.name_edit.selectAll()
        self.resize(460, self.sizeHint().height())
        self._validate()

    def problem(self) -> str | None:
        """Why the settings cannot be used (a bad or taken name), or None."""
        name = self.name_edit.text().strip()
        try:
            validate_name(name)
        except StudioError as error:
            return str(error)
        if name in self.taken:
            return f"a dataset named '{name}' already exists: choose another name"
        return None

    def _validate(self) -> None:
        problem = self.problem()
        self.ok_button.setEnabled(problem is None)
        if problem is not None:
            self.message.setStyleSheet(ERROR_STYLE)
            self.message.setText(problem)
        elif self.size_spin.value() not in RESOLUTIONS:
            self.message.setStyleSheet(NOTE_STYLE)
            self.message.setText(
                f"Models train on {describe_resolutions()} px datasets: a {self.size_spin.value()} px dataset "
                "can be browsed but not trained on."
            )
        elif self.size_spin.value() > CPU_TRAINING_LIMIT:
            self.message.setStyleSheet(NOTE_STYLE)
            self.message.setText(
                f"Training on {self.size_spin.value()} px images needs a GPU: on the CPU models train at most "
                f"{CPU_TRAINING_LIMIT} px (generating works everywhere)."
            )
        else:
            self.message.setStyleSheet("")
            self.message.setText("")

    def accept(self) -> None:
        """Close only with usable settings."""
        if self.problem() is None:
            super().accept()

    def options(self) -> dict[str, Any]:
        """The chosen settings, as import_dataset's keyword arguments."""
        return {
            "name": self.name_edit.text().strip(),
            "size": self.size_spin.value(),
            "channels": int(self.channels_combo.currentData()),
            "labels": self.labels_check.isChecked(),
        }


class SkippedModel(QAbstractTableModel):
    """Skipped inputs (path, reason) for a table view: cheap even for tens of thousands of rows."""

    HEADERS = ("Path", "Reason")

    def __init__(self, skipped: list[Skipped], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.skipped = skipped

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """One row per skipped input."""
        return 0 if parent.isValid() else len(self.skipped)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Path and reason."""
        return 0 if parent.isValid() else 2

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The path or the reason (the tooltip shows both in full)."""
        if not index.isValid():
            return None
        entry = self.skipped[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return entry.path if index.column() == 0 else entry.reason
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{entry.path}\n{entry.reason}"
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Column titles."""
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section]
        return None


class ImportReport(QDialog):
    """What an import did: images imported, duplicates dropped, and every skipped path with its reason."""

    def __init__(self, result: ImportResult, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "importReport", "Import report")
        self.setWindowTitle(f"Imported '{result.dataset.name}'")
        self.import_result = result  # not `result`: that is QDialog's own result() method
        layout = QVBoxLayout(self)
        dataset = result.dataset
        classes = f", {len(dataset.class_counts)} classes" if dataset.class_counts else ""
        text = (
            f"<b>{result.imported:,}</b> images imported into <b>{html.escape(dataset.name, quote=False)}</b> "
            f"({dataset.size}x{dataset.size}, {'grey' if dataset.channels == 1 else 'colour'}{classes}); "
            f"{result.duplicates:,} duplicates dropped; <b>{len(result.skipped):,}</b> skipped."
        )
        self.summary = named(QLabel(text), "importReportSummary", "Import summary")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.model = SkippedModel(result.skipped, self)
        self.table = named(QTableView(), "importSkippedTable", "Skipped files and why")
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setVisible(bool(result.skipped))
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.copy_button = named(
            QPushButton("Copy list"),
            "importReportCopyButton",
            "Copy the skipped files and reasons",
            "Copy every skipped path and its reason",
        )
        self.copy_button.setVisible(bool(result.skipped))
        self.copy_button.clicked.connect(self.copy)
        close = named(QPushButton("Close"), "importReportCloseButton", "Close the import report")
        close.setDefault(True)
        close.clicked.connect(self.accept)
        buttons.addWidget(self.copy_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.resize(720, 420 if result.skipped else 140)

    def text(self) -> str:
        """The report as plain text: the summary, then one 'path: reason' line per skipped input."""
        lines = [self.summary.text().replace("<b>", "").replace("</b>", "")]
        lines += [f"{s.path}: {s.reason}" for s in self.import_result.skipped]
        return "\n".join(lines)

    def copy(self) -> None:
        """Put the skipped list on the clipboard (to fix the files, or to file a bug)."""
        QGuiApplication.clipboard().setText("\n".join(f"{s.path}\t{s.reason}" for s in self.import_result.skipped))
