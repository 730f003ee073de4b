"""The Datasets page: every dataset with its preview sheet, a thumbnail grid of the chosen one, imports and samples.

Imports come from the Import buttons or from a drop anywhere on the window (`start_import`). An
`ImportDialog` asks for the name, size, channels and whether sub-folders are class labels; the engine's
import job then runs through the job runner (queued behind any running job), with progress here and in
the status bar, and ends with an `ImportReport` that lists every skipped path and why. Dialogs are
opened with `open()`, never `exec()`, so tests (and scripts) can fill them in and accept them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    Qt,
)
from PySide6.QtGui import QGuiApplication, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.decode import IMAGE_SUFFIXES
from studio.engine.datasets.importer import ImportResult, import_dataset
from studio.engine.datasets.samples import SAMPLES, add_sample
from studio.engine.datasets.sources import ARCHIVE_SUFFIXES, Skipped
from studio.engine.datasets.storage import (
    MAX_SIZE,
    MIN_SIZE,
    PREVIEW_FILE,
    DatasetSummary,
    delete_dataset,
    list_datasets,
    load_images,
    load_labels,
    validate_name,
)
from studio.engine.library import list_models
from studio.engine.models.base import RESOLUTIONS
from studio.errors import StudioError
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.widgets import ask_yes, image_to_qimage, named
from studio.ui.widgets.page_jobs import PageJobsMixin

THUMBNAIL_LIMIT = 512  # the grid shows a dataset's first images: enough to judge it, cheap to build
IMPORT_FILTER = "Images and zip files ({});;All files (*)".format(
    " ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES | ARCHIVE_SUFFIXES))
)
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


def unimportable_reason(paths: list[Path]) -> str | None:
    """None when some path may hold images (a folder, a zip, an image file); else why none can.

    A cheap look at names only: the import job scans folders and archives off the GUI thread.
    """
    problems: list[str] = []
    for path in paths:
        if path.is_dir():
            return None
        suffix = path.suffix.lower()
        if not path.exists():
            problems.append(f"{path.name or path}: no such file or folder")
        elif suffix in IMAGE_SUFFIXES or suffix in ARCHIVE_SUFFIXES:
            return None
        else:
            problems.append(f"{path.name}: not an image or a zip ({f'{suffix!r}' if suffix else 'no extension'})")
    shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4 else "")
    return f"Studio imports folders, zip files and images (PNG, JPEG, WebP, GIF, BMP, TIFF). {shown}"


def display_cell(size: int) -> int:
    """Thumbnail cell in pixels: small images grow by whole pixels (crisp) to about 64 px."""
    return size * max(1, 64 // size) if size <= 64 else 64


class ThumbnailModel(QAbstractListModel):
    """A dataset's first images for a grid view: rows arrive in batches as the view scrolls (fetchMore) and
    each image becomes a pixmap only when the view first paints it, reading one row of the memory map."""

    BATCH = 96

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: np.ndarray | None = None
        self.labels: list[str | None] = []
        self.limit = 0
        self.loaded = 0
        self.cell = 64
        self._pixmaps: dict[int, QPixmap] = {}

    def show(self, images: np.ndarray | None, labels: list[str | None] | None = None,
             limit: int = THUMBNAIL_LIMIT) -> None:
        """Show these images (None: none); the array stays memory-mapped, nothing is read yet."""
        self.beginResetModel()
        self.images = images
        self.labels = list(labels or [])
        self.limit = 0 if images is None else min(len(images), limit)
        self.loaded = min(self.BATCH, self.limit)  # the first batch at once; the view fetches the rest
        self.cell = display_cell(int(images.shape[1])) if images is not None and len(images) else 64
        self._pixmaps.clear()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Rows fetched so far."""
        return 0 if parent.isValid() else self.loaded

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> bool:
        """Whether more of the first THUMBNAIL_LIMIT images remain to be shown."""
        return not parent.isValid() and self.loaded < self.limit

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex) -> None:
        """Add the next batch of rows (the view asks when it scrolls near the end)."""
        if parent.isValid() or self.loaded >= self.limit:
            return
        count = min(self.BATCH, self.limit - self.loaded)
        self.beginInsertRows(QModelIndex(), self.loaded, self.loaded + count - 1)
        self.loaded += count
        self.endInsertRows()

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The image as a pixmap (decoration) and its number and label (tooltip)."""
        if not index.isValid() or self.images is None:
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self._pixmaps.get(row)
            if pixmap is None:
                image = image_to_qimage(np.asarray(self.images[row]))
                pixmap = QPixmap.fromImage(image.scaled(
                    self.cell, self.cell, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation
                    if image.width() < self.cell else Qt.TransformationMode.SmoothTransformation))
                self._pixmaps[row] = pixmap
            return pixmap
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            label = self.labels[row] if row < len(self.labels) else None
            return f"image {row + 1}" + (f", class {label}" if label else "")
        return None


class ImportDialog(QDialog):
    """Asks how to import the given paths: the dataset's name, image size, channels and class labels."""

    def __init__(self, paths: list[Path], taken: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "importDialog", "Import a dataset")
        self.setWindowTitle("Import dataset")
        self.paths = list(paths)
        self.taken = set(taken)
        layout = QVBoxLayout(self)
        shown = "<br>".join(_escape(str(p)) for p in self.paths[:4])
        more = f"<br>and {len(self.paths) - 4} more" if len(self.paths) > 4 else ""
        sources = named(QLabel(f"<b>From</b><br>{shown}{more}"), "importSources", "What will be imported")
        sources.setWordWrap(True)
        sources.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(sources)

        form = QFormLayout()
        self.name_edit = named(QLineEdit(suggest_name(self.paths, self.taken)), "importNameEdit", "Dataset name",
                               "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        self.size_spin = named(QSpinBox(), "importSizeSpin", "Image size in pixels",
                               "Every image is centre-cropped to a square and resized to this size")
        self.size_spin.setRange(MIN_SIZE, MAX_SIZE)
        self.size_spin.setValue(32)
        self.size_spin.setSuffix(" px")
        self.channels_combo = named(QComboBox(), "importChannelsCombo", "Channels")
        self.channels_combo.addItem("Colour (RGB)", 3)
        self.channels_combo.addItem("Grey", 1)
        self.labels_check = named(QCheckBox("Sub-folder names are class labels"), "importLabelsCheck",
                                  "Use sub-folder names as class labels")
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
        self.ok_button = named(self.buttons.button(QDialogButtonBox.StandardButton.Ok), "importOkButton",
                               "Start the import")
        self.ok_button.setText("Import")
        named(self.buttons.button(QDialogButtonBox.StandardButton.Cancel), "importDialogCancelButton",
              "Do not import")
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
                f"Models train on 8, 16, 32 or 64 px datasets: a {self.size_spin.value()} px dataset can be "
                "browsed but not trained on."
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
        return {"name": self.name_edit.text().strip(), "size": self.size_spin.value(),
                "channels": int(self.channels_combo.currentData()), "labels": self.labels_check.isChecked()}


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

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
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
        self.result = result
        layout = QVBoxLayout(self)
        dataset = result.dataset
        classes = f", {len(dataset.class_counts)} classes" if dataset.class_counts else ""
        text = (f"<b>{result.imported:,}</b> images imported into <b>{_escape(dataset.name)}</b> "
                f"({dataset.size}x{dataset.size}, {'grey' if dataset.channels == 1 else 'colour'}{classes}); "
                f"{result.duplicates:,} duplicates dropped; <b>{len(result.skipped):,}</b> skipped.")
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
        self.copy_button = named(QPushButton("Copy list"), "importReportCopyButton",
                                 "Copy the skipped files and reasons", "Copy every skipped path and its reason")
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
        lines += [f"{s.path}: {s.reason}" for s in self.result.skipped]
        return "\n".join(lines)

    def copy(self) -> None:
        """Put the skipped list on the clipboard (to fix the files, or to file a bug)."""
        QGuiApplication.clipboard().setText("\n".join(f"{s.path}\t{s.reason}" for s in self.result.skipped))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class DatasetsPage(PageJobsMixin, QWidget):
    """Every dataset with its preview sheet and facts; the chosen one's images; import, samples, delete."""

    COUNT_QUEUED = True  # the panel says "(+N more)" while more imports or samples wait

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.setObjectName("datasetsPage")
        self.setAccessibleName("Datasets")
        self.import_dialog: ImportDialog | None = None
        self.report_dialog: ImportReport | None = None
        self._init_jobs()  # this page's imports and samples, queued or running
        self._samples: dict[str, JobHandle] = {}
        self._names: dict[JobHandle, str] = {}  # dataset names that pending imports will create
        self.datasets: dict[str, DatasetSummary] = {}
        # Samples are made at the size models train best at; tests may make them smaller.
        self.sample_size = 32
        self.shapes_count = 2000
        # Replaced by tests and scripts to answer "delete this dataset?" without a dialog.
        self.confirm_delete: Callable[[str, str], bool] = functools.partial(ask_yes, self)
        self._build()
        self.context.signals.datasetsChanged.connect(self.refresh)
        self.refresh()

    # --- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("<h2>Datasets</h2>"))
        top.addStretch(1)
        self.import_button = named(QPushButton("Import files…"), "importButton", "Import image files or zips",
                                   "Import images or zip files as a new dataset (Ctrl+I); or drop them anywhere")
        self.import_button.setShortcut(QKeySequence("Ctrl+I"))
        self.import_button.clicked.connect(self.choose_files)
        self.import_folder_button = named(QPushButton("Import folder…"), "importFolderButton",
                                          "Import a folder of images",
                                          "Import a folder of images; sub-folders become classes (Ctrl+Shift+I)")
        self.import_folder_button.setShortcut(QKeySequence("Ctrl+Shift+I"))
        self.import_folder_button.clicked.connect(self.choose_folder)
        self.digits_button = named(QPushButton("Add digits sample"), "addDigitsButton", "Add the digits sample",
                                   f"Add the digits sample: {SAMPLES['digits'][0]}")
        self.digits_button.clicked.connect(lambda: self.add_sample("digits"))
        self.shapes_button = named(QPushButton("Add shapes sample"), "addShapesButton", "Add the shapes sample",
                                   f"Add the shapes sample: {SAMPLES['shapes'][0]}")
        self.shapes_button.clicked.connect(lambda: self.add_sample("shapes"))
        self.delete_button = named(QPushButton("Delete…"), "deleteDatasetButton", "Delete the selected dataset",
                                   "Delete the selected dataset (Del)")
        self.delete_button.clicked.connect(self.delete_selected)
        for button in (self.import_button, self.import_folder_button, self.digits_button, self.shapes_button,
                       self.delete_button):
            top.addWidget(button)
        layout.addLayout(top)
        self.hint = named(QLabel(), "datasetsHint", "About the datasets")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)

        # The page's own progress for imports and samples (the status bar shows it too).
        layout.addWidget(self._build_job_panel("import", "Cancel: nothing of the dataset is kept", self.cancel_import))

        splitter = named(QSplitter(Qt.Orientation.Horizontal), "datasetsSplitter", "Datasets and images")
        self.list = named(QListWidget(), "datasetList", "Dataset list")
        self.list.setIconSize(QSize(96, 96))
        self.list.setSpacing(3)
        self.list.setWordWrap(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.currentItemChanged.connect(self._current_changed)
        splitter.addWidget(self.list)

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(6, 0, 0, 0)
        self.details = named(QLabel(), "datasetDetails", "Dataset details")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        right_layout.addWidget(self.details)
        self.thumbnails = ThumbnailModel(self)
        self.grid = named(QListView(), "datasetThumbnails", "Images of the selected dataset")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.grid.setModel(self.thumbnails)
        right_layout.addWidget(self.grid, 1)
        self.grid_note = named(QLabel(), "datasetThumbnailsNote", "How many images are shown")
        right_layout.addWidget(self.grid_note)
        right_layout.addStretch(0)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([420, 620])
        layout.addWidget(splitter, 1)

        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self.delete_selected)
        if self.store.read_only:
            for button in (self.import_button, self.import_folder_button, self.digits_button, self.shapes_button,
                           self.delete_button):
                button.setEnabled(False)
                button.setToolTip(f"Read-only: {self.store.read_only_reason}")

    # --- listing ----------------------------------------------------------------------------

    def on_shown(self) -> None:
        """The page came into view: reload (the CLI may have changed the data home)."""
        self.refresh()

    @property
    def selected_name(self) -> str | None:
        """The name of the selected dataset, if any."""
        item = self.list.currentItem()
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))

    def refresh(self, select: str | None = None) -> None:
        """Reload the list from the store, keeping (or moving to) a selection."""
        keep = select or self.selected_name
        try:
            datasets = list_datasets(self.store)
        except StudioError as error:
            self.hint.setText(f"<span style='{ERROR_STYLE}'>Cannot list datasets: {_escape(str(error))}</span>")
            return
        self.datasets = {d.name: d for d in datasets}
        self.hint.setText(
            "No dataset yet. Drop a folder of images, a zip or image files anywhere on the window, use "
            "<b>Import</b>, or add a sample (digits or shapes) to try Studio at once." if not datasets else
            f"{len(datasets)} dataset(s). Drop folders, zips or images anywhere to import more."
        )
        self.list.blockSignals(True)  # one selection change below, not one per row
        self.list.clear()
        target = 0
        for row, dataset in enumerate(datasets):
            self.list.addItem(self._item(dataset))
            if dataset.name == keep:
                target = row
        self.list.blockSignals(False)
        self.delete_button.setEnabled(bool(datasets) and not self.store.read_only)
        if datasets:
            self.list.setCurrentRow(target)
        self._current_changed()

    def _item(self, dataset: DatasetSummary) -> QListWidgetItem:
        classes = f" · {len(dataset.class_counts)} classes" if dataset.class_counts else ""
        text = (f"{dataset.name}\n{dataset.count:,} images · {dataset.size}x{dataset.size} · "
                f"{'grey' if dataset.channels == 1 else 'colour'}{classes}\n{_origin(dataset.origin)}")
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, dataset.name)
        item.setData(Qt.ItemDataRole.AccessibleTextRole, text.replace("\n", ", "))
        preview = QPixmap(str(self.store.home.absolute(dataset.folder) / PREVIEW_FILE))
        if not preview.isNull():
            # Whole-pixel scaling keeps tiny images (8 px digits) crisp.
            fast = preview.width() < 96
            item.setIcon(preview.scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.FastTransformation if fast
                                        else Qt.TransformationMode.SmoothTransformation))
        return item

    def _current_changed(self, *_: object) -> None:
        name = self.selected_name
        dataset = self.datasets.get(name) if name else None
        if dataset is None:
            self.details.setText("" if not self.datasets else "Select a dataset to see its images.")
            self.thumbnails.show(None)
            self.grid.setVisible(False)  # an empty white box says nothing
            self.grid_note.setText("")
            return
        self.details.setText(self._describe(dataset))
        try:
            images = load_images(self.store, dataset.name, thumbnails=True)
            labels = load_labels(self.store, dataset.name)[:THUMBNAIL_LIMIT]
        except StudioError as error:
            self.thumbnails.show(None)
            self.grid.setVisible(False)
            self.grid_note.setText(f"<span style='{ERROR_STYLE}'>{_escape(str(error))}</span>")
            return
        self.thumbnails.show(images, labels)
        self.grid.setVisible(True)
        cell = self.thumbnails.cell
        self.grid.setIconSize(QSize(cell, cell))
        self.grid.setGridSize(QSize(cell + 6, cell + 6))
        shown = min(len(images), THUMBNAIL_LIMIT)
        self.grid_note.setText(f"The first {shown:,} of {len(images):,} images" if shown < len(images)
                               else f"All {len(images):,} images")

    def _describe(self, dataset: DatasetSummary) -> str:
        facts = [f"<b style='font-size: 14pt'>{_escape(dataset.name)}</b>",
                 f"{dataset.count:,} images, {dataset.size}x{dataset.size} px, "
                 f"{'grey' if dataset.channels == 1 else 'colour (RGB)'}; {_origin(dataset.origin)}, "
                 f"created {dataset.created_at.replace('T', ' ')}"]
        if dataset.class_counts:
            counts = ", ".join(f"{_escape(k)}: {v:,}" for k, v in list(dataset.class_counts.items())[:20])
            more = f" and {len(dataset.class_counts) - 20} more" if len(dataset.class_counts) > 20 else ""
            facts.append(f"{len(dataset.class_counts)} classes: {counts}{more}")
        report = dataset.report
        if dataset.origin == "import" and report:
            facts.append(f"Import dropped {report.get('duplicates', 0):,} duplicates and skipped "
                         f"{report.get('skipped', 0):,} files")
        if dataset.size not in RESOLUTIONS:
            facts.append(f"<span style='{NOTE_STYLE}'>Models train on 8, 16, 32 or 64 px datasets: import it "
                         "again at one of those sizes to train on it.</span>")
        return "<br>".join(facts)

    # --- importing --------------------------------------------------------------------------

    def choose_files(self) -> None:
        """Pick image files or zips in a file dialog, then import them."""
        files, _ = QFileDialog.getOpenFileNames(self, "Import images or zip files", self._last_folder(), IMPORT_FILTER)
        if files:
            self.start_import([Path(f) for f in files])

    def choose_folder(self) -> None:
        """Pick a folder of images in a file dialog, then import it."""
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of images", self._last_folder())
        if folder:
            self.start_import([Path(folder)])

    def _last_folder(self) -> str:
        return str(self.context.value("datasets/lastImportFolder", str(Path.home())))

    def start_import(self, paths: list[Path]) -> None:
        """Ask how to import these folders, zips or images (the ImportDialog), then run the import job."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        reason = unimportable_reason(paths)
        if reason is not None:
            self.context.error("Nothing to import", reason)
            return
        self.context.settings.setValue("datasets/lastImportFolder",
                                       str(paths[0] if paths[0].is_dir() else paths[0].parent))
        if self.import_dialog is not None and self.import_dialog.isVisible():
            self.import_dialog.reject()  # the newest drop wins: one import dialog at a time
        # Names of queued imports count as taken: the second would fail when its turn came.
        taken = {d.name for d in list_datasets(self.store)} | set(self._names.values())
        dialog = ImportDialog(paths, taken, self)
        dialog.accepted.connect(lambda: self._run_import(dialog.paths, dialog.options()))
        self.import_dialog = dialog
        dialog.open()  # window-modal and non-blocking: no nested event loop

    def _run_import(self, paths: list[Path], options: dict[str, Any]) -> JobHandle:
        name = options["name"]
        store = self.store

        def factory(token: Any) -> Any:
            # workers=None: the engine picks the process count and a fork server (this process has threads).
            return import_dataset(store, paths, name, options["size"], options["channels"], options["labels"],
                                  cancel=token)

        handle = self._submit(f"Import '{name}'", factory)
        self._names[handle] = name
        handle.finished.connect(lambda result: self._import_finished(handle, result))
        handle.failed.connect(lambda message: self._job_failed(handle, "Import failed", message))
        cancelled = f"Import of '{name}' cancelled: nothing was kept"
        handle.cancelled.connect(lambda: self._say_when_ended(handle, cancelled))
        return handle

    def _import_finished(self, handle: JobHandle, result: ImportResult) -> None:
        self.refresh(select=result.dataset.name)
        self.context.signals.datasetsChanged.emit()
        skipped = f", {len(result.skipped):,} skipped" if result.skipped else ""
        self._say_when_ended(handle, f"Imported {result.imported:,} images into '{result.dataset.name}'{skipped}")
        if self.report_dialog is not None:
            self.report_dialog.close()
            self.report_dialog.deleteLater()
        self.report_dialog = ImportReport(result, self)
        self.report_dialog.show()

    # --- samples ----------------------------------------------------------------------------

    def add_sample(self, sample: str) -> JobHandle | None:
        """Add a sample dataset ('digits' or 'shapes'); selects it when it is already here."""
        pending = self._samples.get(sample)
        if pending is not None and not pending.done:
            self.context.notify(f"The {sample} sample is already being added")
            return None
        datasets = list_datasets(self.store)
        existing = next((d for d in datasets if d.origin == f"sample:{sample}"), None)
        if existing is not None:
            self.refresh(select=existing.name)
            self.context.notify(f"The {sample} sample is already here, as '{existing.name}'")
            return None
        name = suggest_name([Path(sample)], {d.name for d in datasets})
        store, size, count = self.store, self.sample_size, self.shapes_count

        def factory(token: Any) -> Any:
            return add_sample(store, sample, name=name, size=size, count=count, cancel=token)

        handle = self._submit(f"Add the {sample} sample", factory)
        self._samples[sample] = handle

        def finished(summary: DatasetSummary) -> None:
            self.refresh(select=summary.name)
            self.context.signals.datasetsChanged.emit()
            self._say_when_ended(handle, f"Added '{summary.name}': {summary.count:,} images")

        handle.finished.connect(finished)
        handle.failed.connect(lambda message: self._job_failed(handle, f"Could not add the {sample} sample", message))
        return handle

    # --- jobs -------------------------------------------------------------------------------

    def _forget_job(self, handle: JobHandle) -> None:
        """An ended import no longer reserves its dataset name."""
        self._names.pop(handle, None)

    def cancel_import(self) -> None:
        """Cancel this page's first pending import or sample (the engine keeps nothing of it)."""
        self._cancel_first_job()

    # --- deleting ---------------------------------------------------------------------------

    def delete_selected(self) -> bool:
        """Delete the selected dataset after asking; True when it was deleted."""
        name = self.selected_name
        if name is None:
            return False
        dataset = self.datasets[name]
        users = [m.name for m in list_models(self.store) if m.dataset == name]
        used = (f"\n\n{len(users)} model(s) were trained on it ({', '.join(users[:5])}); they keep working "
                "but cannot resume training on it." if users else "")
        if not self.confirm_delete("Delete dataset",
                                   f"Delete '{name}' ({dataset.count:,} images)? This cannot be undone.{used}"):
            return False
        self.thumbnails.show(None)  # let go of the memory map before its file goes
        try:
            delete_dataset(self.store, name)
        except (StudioError, OSError) as error:
            self.context.error("Could not delete the dataset", f"'{name}': {error}")
            self.refresh()
            return False
        self.context.notify(f"Deleted dataset '{name}'")
        self.context.signals.datasetsChanged.emit()
        self.refresh()
        return True


def _origin(origin: str) -> str:
    return f"{origin.split(':', 1)[1]} sample" if origin.startswith("sample:") else "imported"
