"""The Datasets page: every dataset with its preview sheet, a thumbnail grid of the chosen one, imports and samples.

Imports come from the Import buttons or from a drop anywhere on the window (`start_import`). An
`ImportDialog` asks for the name, size, channels and whether sub-folders are class labels; the engine's
import job then runs as an `EngineOp` (queued behind any running job), with progress here and in
the status bar, and ends with an `ImportReport` that lists every skipped path and why. Dialogs are
opened with `open()`, never `exec()`, so tests (and scripts) can fill them in and accept them.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.decode import IMAGE_SUFFIXES
from studio.engine.datasets.importer import ImportResult, import_dataset
from studio.engine.datasets.samples import SAMPLES, add_sample
from studio.engine.datasets.sources import ARCHIVE_SUFFIXES
from studio.engine.datasets.storage import (
    PREVIEW_FILE,
    DatasetSummary,
    delete_dataset,
    list_datasets,
    load_images,
    load_labels,
)
from studio.engine.families.declaration import CPU_TRAINING_LIMIT, RESOLUTIONS, describe_resolutions
from studio.engine.jobs import CancelToken, Job
from studio.engine.library import list_models
from studio.errors import StudioError
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle, JobState
from studio.ui.operations import EngineOp, QueryOp
from studio.ui.widgets import ask_yes, named
from studio.ui.widgets.dataset_import import ERROR_STYLE, NOTE_STYLE, ImportDialog, ImportReport, suggest_name
from studio.ui.widgets.dataset_thumbnails import THUMBNAIL_LIMIT, ThumbnailModel
from studio.ui.widgets.encoder_panel import EncoderPanel
from studio.ui.widgets.job_panel import JobPanel

__all__ = ["DatasetsPage", "ImportDialog", "ImportReport", "suggest_name", "unimportable_reason"]

IMPORT_FILTER = "Images and zip files ({});;All files (*)".format(
    " ".join(f"*{suffix}" for suffix in sorted(IMAGE_SUFFIXES | ARCHIVE_SUFFIXES))
)
PREVIEW_SIDE = 96  # the preview sheet's icon in the list


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


def read_previews(paths: dict[str, Path]) -> dict[str, QImage]:
    """Each dataset's preview sheet scaled for the list (off the GUI thread: QImage is thread-safe)."""
    previews = {}
    for name, path in paths.items():
        image = QImage(str(path))
        if image.isNull():
            continue
        # Whole-pixel scaling keeps tiny images (8 px digits) crisp.
        fast = image.width() < PREVIEW_SIDE
        previews[name] = image.scaled(
            PREVIEW_SIDE,
            PREVIEW_SIDE,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation if fast else Qt.TransformationMode.SmoothTransformation,
        )
    return previews


class DatasetsPage(QWidget):
    """Every dataset with its preview sheet and facts; the chosen one's images; import, samples, delete."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.setObjectName("datasetsPage")
        self.setAccessibleName("Datasets")
        self.import_dialog: ImportDialog | None = None
        self.report_dialog: ImportReport | None = None
        self._samples: dict[str, JobHandle] = {}
        self._names: dict[JobHandle, str] = {}  # dataset names that pending imports will create
        self.datasets: dict[str, DatasetSummary] = {}
        # Preview icons by (name, creation time): a refresh shows known ones at once, new ones load off the GUI thread.
        self._previews: dict[tuple[str, str], QIcon] = {}
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
        self.import_button = named(
            QPushButton("Import files…"),
            "importButton",
            "Import image files or zips",
            "Import images or zip files as a new dataset (Ctrl+I); or drop them anywhere",
        )
        self.import_button.setShortcut(QKeySequence("Ctrl+I"))
        self.import_button.clicked.connect(self.choose_files)
        self.import_folder_button = named(
            QPushButton("Import folder…"),
            "importFolderButton",
            "Import a folder of images",
            "Import a folder of images; sub-folders become classes (Ctrl+Shift+I)",
        )
        self.import_folder_button.setShortcut(QKeySequence("Ctrl+Shift+I"))
        self.import_folder_button.clicked.connect(self.choose_folder)
        self.digits_button = named(
            QPushButton("Add digits sample"),
            "addDigitsButton",
            "Add the digits sample",
            f"Add the digits sample: {SAMPLES['digits'][0]}",
        )
        self.digits_button.clicked.connect(lambda: self.add_sample("digits"))
        self.shapes_button = named(
            QPushButton("Add shapes sample"),
            "addShapesButton",
            "Add the shapes sample",
            f"Add the shapes sample: {SAMPLES['shapes'][0]}",
        )
        self.shapes_button.clicked.connect(lambda: self.add_sample("shapes"))
        self.delete_button = named(
            QPushButton("Delete…"),
            "deleteDatasetButton",
            "Delete the selected dataset",
            "Delete the selected dataset (Del)",
        )
        self.delete_button.clicked.connect(self.delete_selected)
        for button in (
            self.import_button,
            self.import_folder_button,
            self.digits_button,
            self.shapes_button,
            self.delete_button,
        ):
            top.addWidget(button)
        layout.addLayout(top)
        self.hint = named(QLabel(), "datasetsHint", "About the datasets")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)

        # The page's own progress for imports and samples (the status bar shows it too).
        self.panel = JobPanel(
            self.context.runner,
            "import",
            "Cancel: nothing of the dataset is kept",
            self.context.notify,
            count_queued=True,
        )
        layout.addWidget(self.panel)

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
        # The images and the dataset's encoder share the space below the facts, one tab each.
        self.tabs = named(QTabWidget(), "datasetTabs", "Images and encoder of the selected dataset")
        images = QWidget()
        images_layout = QVBoxLayout(images)
        images_layout.setContentsMargins(0, 4, 0, 0)
        self.thumbnails = ThumbnailModel(self)
        self.grid = named(QListView(), "datasetThumbnails", "Images of the selected dataset")
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.grid.setModel(self.thumbnails)
        images_layout.addWidget(self.grid, 1)
        self.grid_note = named(QLabel(), "datasetThumbnailsNote", "How many images are shown")
        images_layout.addWidget(self.grid_note)
        images_layout.addStretch(0)
        self.tabs.addTab(images, "Images")
        self.encoder_panel = EncoderPanel(self.context)
        self.tabs.addTab(self.encoder_panel, "Encoder")
        self.tabs.setTabToolTip(1, "The dataset's contrastive encoder: similar images, duplicates, scores, the map")
        right_layout.addWidget(self.tabs, 1)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([420, 620])
        layout.addWidget(splitter, 1)

        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.list)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self.delete_selected)
        if self.store.read_only:
            for button in (
                self.import_button,
                self.import_folder_button,
                self.digits_button,
                self.shapes_button,
                self.delete_button,
            ):
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
            "<b>Import</b>, or add a sample (digits or shapes) to try Studio at once."
            if not datasets
            else f"{len(datasets)} dataset(s). Drop folders, zips or images anywhere to import more."
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
        self._load_previews(datasets)

    def _item(self, dataset: DatasetSummary) -> QListWidgetItem:
        classes = f" · {len(dataset.class_counts)} classes" if dataset.class_counts else ""
        text = (
            f"{dataset.name}\n{dataset.count:,} images · {dataset.size}x{dataset.size} · "
            f"{'grey' if dataset.channels == 1 else 'colour'}{classes}\n{_origin(dataset.origin)}"
        )
        item = QListWidgetItem(text)
        item.setData(Qt.ItemDataRole.UserRole, dataset.name)
        item.setData(Qt.ItemDataRole.AccessibleTextRole, text.replace("\n", ", "))
        icon = self._previews.get((dataset.name, dataset.created_at))
        if icon is not None:
            item.setIcon(icon)
        return item

    def _load_previews(self, datasets: list[DatasetSummary]) -> None:
        """Read the preview sheets not shown yet in the thread pool; the icons appear when they are read."""
        missing = {
            d.name: self.store.home.absolute(d.folder) / PREVIEW_FILE
            for d in datasets
            if (d.name, d.created_at) not in self._previews
        }
        if not missing:
            return
        created = {d.name: d.created_at for d in datasets}
        QueryOp(self, lambda: read_previews(missing)).latest_only("previews").success(
            lambda images: self._show_previews(images, created)
        ).run_in_background()

    def _show_previews(self, images: dict[str, QImage], created: dict[str, str]) -> None:
        for name, image in images.items():
            self._previews[(name, created[name])] = QIcon(QPixmap.fromImage(image))
        for row in range(self.list.count()):
            item = self.list.item(row)
            name = str(item.data(Qt.ItemDataRole.UserRole))
            dataset = self.datasets.get(name)
            icon = self._previews.get((name, dataset.created_at)) if dataset is not None else None
            if icon is not None and item.icon().isNull():
                item.setIcon(icon)

    def _current_changed(self, *_: object) -> None:
        name = self.selected_name
        dataset = self.datasets.get(name) if name else None
        self.encoder_panel.show_dataset(None if dataset is None else dataset.name, dataset.count if dataset else 0)
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
        self.grid_note.setText(
            f"The first {shown:,} of {len(images):,} images" if shown < len(images) else f"All {len(images):,} images"
        )

    def _describe(self, dataset: DatasetSummary) -> str:
        facts = [
            f"<b style='font-size: 14pt'>{_escape(dataset.name)}</b>",
            f"{dataset.count:,} images, {dataset.size}x{dataset.size} px, "
            f"{'grey' if dataset.channels == 1 else 'colour (RGB)'}; {_origin(dataset.origin)}, "
            f"created {dataset.created_at.replace('T', ' ')}",
        ]
        if dataset.class_counts:
            counts = ", ".join(f"{_escape(k)}: {v:,}" for k, v in list(dataset.class_counts.items())[:20])
            more = f" and {len(dataset.class_counts) - 20} more" if len(dataset.class_counts) > 20 else ""
            facts.append(f"{len(dataset.class_counts)} classes: {counts}{more}")
        report = dataset.report
        if dataset.origin == "import" and report:
            facts.append(
                f"Import dropped {report.get('duplicates', 0):,} duplicates and skipped "
                f"{report.get('skipped', 0):,} files"
            )
        if dataset.size not in RESOLUTIONS:
            facts.append(
                f"<span style='{NOTE_STYLE}'>Models train on {describe_resolutions()} px datasets: import it "
                "again at one of those sizes to train on it.</span>"
            )
        elif dataset.size > CPU_TRAINING_LIMIT:
            facts.append(
                f"<span style='{NOTE_STYLE}'>Training on {dataset.size} px images needs a GPU: on the CPU "
                f"models train at most {CPU_TRAINING_LIMIT} px.</span>"
            )
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
        self.context.settings.setValue(
            "datasets/lastImportFolder", str(paths[0] if paths[0].is_dir() else paths[0].parent)
        )
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

        def factory(token: CancelToken) -> Job:
            # workers=None: the engine picks the process count and a fork server (this process has threads).
            return import_dataset(
                store, paths, name, options["size"], options["channels"], options["labels"], cancel=token
            )

        def ended() -> None:
            self._names.pop(handle, None)  # an ended import no longer reserves its dataset name
            result = handle.result
            if handle.state is JobState.FINISHED and isinstance(result, ImportResult):
                skipped = f", {len(result.skipped):,} skipped" if result.skipped else ""
                self._ended(f"Imported {result.imported:,} images into '{result.dataset.name}'{skipped}")
            else:
                self._ended(
                    f"Import of '{name}' cancelled: nothing was kept" if handle.state is JobState.CANCELLED else None
                )

        op = (
            EngineOp[ImportResult](self.context, f"Import '{name}'", factory)
            .started(self.panel.refresh)
            .on_event(self.panel.refresh)
            .success(self._import_finished)
            .failure(lambda message: self.context.error("Import failed", message))
            .ended(ended)
        )
        handle = self.panel.add(op.run())
        self._names[handle] = name
        return handle

    def _import_finished(self, result: ImportResult) -> None:
        self.refresh(select=result.dataset.name)
        self.context.signals.datasetsChanged.emit()
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

        def factory(token: CancelToken) -> Job:
            return add_sample(store, sample, name=name, size=size, count=count, cancel=token)

        def finished(summary: DatasetSummary) -> None:
            self.refresh(select=summary.name)
            self.context.signals.datasetsChanged.emit()

        def ended() -> None:
            summary = handle.result
            self._ended(
                f"Added '{summary.name}': {summary.count:,} images"
                if handle.state is JobState.FINISHED and isinstance(summary, DatasetSummary)
                else None
            )

        op = (
            EngineOp[DatasetSummary](self.context, f"Add the {sample} sample", factory)
            .started(self.panel.refresh)
            .on_event(self.panel.refresh)
            .success(finished)
            .failure(lambda message: self.context.error(f"Could not add the {sample} sample", message))
            .ended(ended)
        )
        handle = self.panel.add(op.run())
        self._samples[sample] = handle
        return handle

    # --- jobs -------------------------------------------------------------------------------

    def _ended(self, message: str | None) -> None:
        """A job of the page's ended: its fuller status line replaces the window's own "done" or "cancelled"."""
        if message:
            self.context.notify(message)
        self.panel.refresh()

    def cancel_import(self) -> None:
        """Cancel this page's first pending import or sample (the engine keeps nothing of it)."""
        self.panel.cancel_first()

    # --- deleting ---------------------------------------------------------------------------

    def delete_selected(self) -> bool:
        """Delete the selected dataset after asking; True when it was deleted."""
        name = self.selected_name
        if name is None:
            return False
        dataset = self.datasets[name]
        users = [m.name for m in list_models(self.store) if m.dataset == name]
        used = (
            f"\n\n{len(users)} model(s) were trained on it ({', '.join(users[:5])}); they keep working "
            "but cannot resume training on it."
            if users
            else ""
        )
        if not self.confirm_delete(
            "Delete dataset", f"Delete '{name}' ({dataset.count:,} images)? This cannot be undone.{used}"
        ):
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


def _escape(text: str) -> str:
    return html.escape(text, quote=False)  # quotes stay: the text goes between tags, never into an attribute


def _origin(origin: str) -> str:
    return f"{origin.split(':', 1)[1]} sample" if origin.startswith("sample:") else "imported"
