"""Importing models on the Models page: the name a model gets (`ModelImportDialog`), what an ONNX generator's
file cannot say (`OnnxImportDialog`), a pick from the local Hugging Face cache (`HfCacheDialog`), and the flow
that asks and then runs the engine's `import_any` as a job (`ModelImporter`).

Each dialog opens with `open()` (window-modal, no nested event loop), so tests and scripts can fill and accept it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.checkpoints import read_config
from studio.engine.datasets.decode import human_bytes
from studio.engine.datasets.storage import validate_name
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.library import ModelSummary, model_exists
from studio.errors import StudioError
from studio.store.database import Store
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle, JobState
from studio.ui.operations import EngineOp, QueryOp
from studio.ui.widgets import named
from studio.ui.widgets.job_panel import JobPanel

if TYPE_CHECKING:
    from studio.engine.importers import ImportOptions
    from studio.engine.importers.hf_cache import CacheEntry, CacheListing

ERROR_COLOUR = "#c0392b"
MUTED_COLOUR = "#7f8c8d"
# (label, value range): None lets the import's test run on seeded noise decide.
VALUE_RANGES: tuple[tuple[str, tuple[float, float] | None], ...] = (
    ("Infer from a test run", None),
    ("-1 .. 1 (tanh output)", (-1.0, 1.0)),
    ("0 .. 1 (sigmoid output)", (0.0, 1.0)),
    ("0 .. 255 (pixel levels)", (0.0, 255.0)),
)


# The engine's advice for an ambiguous value range names the command line's flags; here it is a dialog's choice.
_RANGE_ADVICE = re.compile(r"say which with --value-range=\S+, --value-range=\S+ or --value-range=\S+")


def ui_wording(message: str) -> str:
    """An engine refusal as the window says it: command-line flags become the import dialog's settings."""
    return _RANGE_ADVICE.sub("import it again and choose its Value range (-1..1, 0..1 or 0..255)", message)


def suggest_model_name(store: Store, base: str) -> str:
    """A valid model name from `base` (a folder, file or repository name), made free with -2, -3, ..."""
    try:
        suggested = validate_name(base)
    except StudioError:
        suggested = re.sub(r"[^A-Za-z0-9._-]+", "-", base).lstrip("._-")[:64].rstrip("._-") or "model"
    number, candidate = 1, suggested
    while model_exists(store, candidate):
        number += 1
        candidate = f"{suggested[:60]}-{number}"
    return candidate


class ModelImportDialog(QDialog):
    """Asks for the name a model made elsewhere (a folder, a file, a cached repository) gets in the library."""

    OBJECT_NAME = "modelImportDialog"

    def __init__(
        self,
        source: Path | str,
        suggested: str,
        description: str,
        parent: QWidget | None = None,
        title: str = "Import model",
    ) -> None:
        super().__init__(parent)
        named(self, self.OBJECT_NAME, title)
        self.setWindowTitle(title)
        self.source = source
        self.folder = Path(source)  # kept for callers of the folder-only dialog
        layout = QVBoxLayout(self)
        origin = named(
            QLabel(f"<b>From</b> {html.escape(str(source))}<br>{html.escape(description)}"),
            "modelImportSource",
            "What is imported",
        )
        origin.setWordWrap(True)
        origin.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(origin)
        self.form = QFormLayout()
        self.name_edit = named(
            QLineEdit(suggested),
            "modelImportNameEdit",
            "Model name",
            "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
        self.form.addRow("&Name", self.name_edit)
        self._add_rows(layout)
        layout.addLayout(self.form)
        self.message = named(QLabel(), "modelImportMessage", "Model import message")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {ERROR_COLOUR};")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = named(
            buttons.button(QDialogButtonBox.StandardButton.Ok), "modelImportOkButton", "Import the model"
        )
        self.ok_button.setText("Import")
        named(
            buttons.button(QDialogButtonBox.StandardButton.Cancel), "modelImportCancelButton", "Do not import the model"
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.name_edit.textChanged.connect(self._validate)
        self.name_edit.selectAll()
        self.resize(max(480, self.sizeHint().width()), self.sizeHint().height())
        self._validate()

    def _add_rows(self, layout: QVBoxLayout) -> None:
        """Room for a subclass's own settings (below the source, in `self.form`)."""

    @property
    def name(self) -> str:
        """The chosen name."""
        return self.name_edit.text().strip()

    def problem(self) -> str | None:
        """Why the settings cannot be used (the name invalid or taken), or None."""
        try:
            validate_name(self.name)
        except StudioError as error:
            return str(error)
        store = getattr(self.parent(), "store", None)
        if store is not None and model_exists(store, self.name):
            return f"a model named '{self.name}' already exists: choose another name"
        return None

    def _validate(self) -> None:
        problem = self.problem()
        self.ok_button.setEnabled(problem is None)
        self.message.setText(problem or "")

    def accept(self) -> None:
        """Close only with usable settings."""
        if self.problem() is None:
            super().accept()


class OnnxImportDialog(ModelImportDialog):
    """Import an ONNX generator: its name, the value range its images come in and its noise shape (or infer)."""

    OBJECT_NAME = "onnxImportDialog"

    def __init__(
        self,
        source: Path | str,
        suggested: str,
        description: str,
        parent: QWidget | None = None,
        revision: str | None = None,
    ) -> None:
        self.revision = revision
        super().__init__(source, suggested, description, parent, "Import an ONNX generator")

    def _add_rows(self, layout: QVBoxLayout) -> None:
        explanation = named(
            QLabel(
                "Studio checks the file on seeded noise; settings left to infer are read from that test run. "
                "Set them when the file's documentation says so."
            ),
            "onnxImportExplanation",
            "About these settings",
        )
        explanation.setWordWrap(True)
        explanation.setStyleSheet(f"color: {MUTED_COLOUR};")
        layout.addWidget(explanation)
        self.range_combo = named(
            QComboBox(),
            "onnxValueRangeCombo",
            "Value range",
            "The values the generator's images come in; the test run infers it when the outputs leave no doubt",
        )
        for label, value in VALUE_RANGES:
            self.range_combo.addItem(label, value)
        self.shape_edit = named(
            QLineEdit(),
            "onnxLatentShapeEdit",
            "Latent shape",
            "One image's noise, without the batch: 100, or 100,1,1 for a DCGAN; empty: read it from the file",
        )
        self.shape_edit.setPlaceholderText("empty: from the file (e.g. 100 or 100,1,1)")
        self.form.addRow("&Value range", self.range_combo)
        self.form.addRow("&Latent shape", self.shape_edit)
        self.shape_edit.textChanged.connect(self._validate)

    @property
    def value_range(self) -> tuple[float, float] | None:
        """The chosen value range; None: inferred."""
        value = self.range_combo.currentData()
        return (float(value[0]), float(value[1])) if value is not None else None

    @property
    def latent_shape(self) -> tuple[int, ...] | None:
        """The noise shape typed (without the batch); None when empty or unreadable (then `problem` says so)."""
        from studio.engine.importers import parse_latent_shape

        text = self.shape_edit.text().strip()
        if not text:
            return None
        try:
            return parse_latent_shape(text)
        except StudioError:
            return None

    def problem(self) -> str | None:
        """The name's problem, or a latent shape that is not sizes separated by commas."""
        problem = super().problem()
        if problem is None and self.shape_edit.text().strip() and self.latent_shape is None:
            return "the latent shape is one image's noise sizes separated by commas, such as 100 or 100,1,1"
        return problem

    def options(self) -> ImportOptions:
        """What the import is told about the file."""
        from studio.engine.importers import ImportOptions

        return ImportOptions(value_range=self.value_range, latent_shape=self.latent_shape, revision=self.revision)


class HfCacheDialog(QDialog):
    """The models in the local Hugging Face cache, each said whether Studio can import it; pick one to import."""

    COLUMNS = ("Repository", "Revision", "What it is", "Importable", "Size")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "hfCacheDialog", "Import from the Hugging Face cache")
        self.setWindowTitle("Import from the Hugging Face cache")
        self.entries: list[CacheEntry] = []
        layout = QVBoxLayout(self)
        self.label = named(QLabel("Reading the Hugging Face cache…"), "hfCacheLabel", "About the cache")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label)
        self.table = named(QTableWidget(0, len(self.COLUMNS)), "hfCacheTable", "Cached model repositories")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for column in (0, 1, 3, 4):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda _item: self.accept())
        layout.addWidget(self.table, 1)
        self.message = named(QLabel(), "hfCacheMessage", "Why the selection cannot be imported")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(f"color: {ERROR_COLOUR};")
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = named(
            buttons.button(QDialogButtonBox.StandardButton.Ok), "hfCacheImportButton", "Import the selected repository"
        )
        self.ok_button.setText("Import…")
        self.ok_button.setEnabled(False)
        named(buttons.button(QDialogButtonBox.StandardButton.Cancel), "hfCacheCancelButton", "Import nothing")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(860, 420)

    def load(self) -> None:
        """Scan the cache off the GUI thread (it reads every repository's folders), then fill the table."""
        QueryOp(self, _list_cache).success(self.fill).failure(self._failed).run_in_background()

    def _failed(self, reason: str) -> None:
        self.label.setText(f"<span style='color: {ERROR_COLOUR}'>{html.escape(reason)}</span>")

    def fill(self, listing: CacheListing) -> None:
        """Show a cache listing: importable repositories first, the others greyed with what they are."""
        self.entries = list(listing.entries)
        where = html.escape(str(listing.cache))
        never = "Studio never downloads: add a model with <code>huggingface-cli download org/name</code>."
        if not self.entries:
            self.label.setText(f"The Hugging Face cache at {where} holds no model. {never}")
        else:
            importable = sum(entry.loadable for entry in self.entries)
            self.label.setText(
                f"{len(self.entries)} model revision(s) in the Hugging Face cache at {where}, {importable} that "
                f"Studio can import. {never}"
            )
        if listing.warnings:
            self.label.setText(
                self.label.text() + f"<br><span style='color: {MUTED_COLOUR}'>{len(listing.warnings)} "
                f"unreadable entr{'y' if len(listing.warnings) == 1 else 'ies'} skipped: "
                f"{html.escape(listing.warnings[0][:200])}</span>"
            )
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            revision = ", ".join(entry.refs) or entry.commit[:12]
            cells = (
                entry.repo_id,
                revision,
                entry.what,
                "yes" if entry.loadable else "no",
                human_bytes(entry.size_bytes),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(entry.what if column == 2 else entry.path if column == 0 else text)
                if not entry.loadable:
                    item.setForeground(QBrush(QColor(MUTED_COLOUR)))
                if column == 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, item)
        first = next((row for row, entry in enumerate(self.entries) if entry.loadable), None)
        if first is not None:
            self.table.selectRow(first)
        self._selection_changed()

    @property
    def chosen(self) -> CacheEntry | None:
        """The selected entry, if any."""
        rows = self.table.selectionModel().selectedRows()
        return self.entries[rows[0].row()] if rows and rows[0].row() < len(self.entries) else None

    def select(self, repo_id: str) -> None:
        """Select a repository by id (its first cached revision)."""
        for row, entry in enumerate(self.entries):
            if entry.repo_id == repo_id:
                self.table.selectRow(row)
                return

    def _selection_changed(self) -> None:
        entry = self.chosen
        self.ok_button.setEnabled(entry is not None and entry.loadable)
        self.message.setText(
            f"{entry.repo_id} is {entry.what}: Studio cannot import it"
            if entry is not None and not entry.loadable
            else ""
        )

    def accept(self) -> None:
        """Close only with an importable repository chosen."""
        entry = self.chosen
        if entry is not None and entry.loadable:
            super().accept()


def _list_cache() -> CacheListing:
    """In a pool thread: the importers cost a second to import, which the window need not wait for."""
    from studio.engine.importers.hf_cache import list_cache

    return list_cache()


def cache_revision(entry: CacheEntry) -> str | None:
    """The revision to ask `import_any` for: None for the main branch, else a ref or the commit."""
    if "main" in entry.refs:
        return None
    return entry.refs[0] if entry.refs else entry.commit


class ModelImporter:
    """The Models page's import flow: what a source is, the dialog it needs, then `import_any` as a job.

    `imported(summary)` runs when a model was added; `ended(message)` when a job ended (a status line or None).
    """

    def __init__(
        self,
        page: QWidget,
        context: StudioContext,
        panel: JobPanel,
        imported: Callable[[ModelSummary], None],
        ended: Callable[[str | None], None],
    ) -> None:
        self.page = page
        self.context = context
        self.store = context.store
        self.panel = panel
        self.imported = imported
        self.ended = ended
        self.dialog: ModelImportDialog | None = None
        self.cache_dialog: HfCacheDialog | None = None

    def _start_folder(self) -> str:
        return str(self.context.value("models/lastImportFolder", str(Path.home())))

    def choose_folder(self) -> None:
        """Pick a model folder (Studio's, a diffusers pipeline or a UNet2DModel) in a file dialog, then import it."""
        folder = QFileDialog.getExistingDirectory(self.page, "Import a model folder", self._start_folder())
        if folder:
            self.import_source(Path(folder))

    def choose_onnx(self) -> None:
        """Pick an .onnx generator file in a file dialog, then import it."""
        path, _ = QFileDialog.getOpenFileName(
            self.page, "Import an ONNX generator", self._start_folder(), "ONNX generators (*.onnx);;All files (*)"
        )
        if path:
            self.import_source(Path(path))

    def choose_from_cache(self) -> HfCacheDialog:
        """List the local Hugging Face cache (read in the background) and import the repository chosen."""
        if self.cache_dialog is not None and self.cache_dialog.isVisible():
            self.cache_dialog.reject()
        dialog = HfCacheDialog(self.page)
        dialog.accepted.connect(lambda: self._import_cached(dialog.chosen))
        self.cache_dialog = dialog
        dialog.open()
        dialog.load()
        return dialog

    def import_source(self, path: Path) -> None:
        """Work out what `path` is, ask for its name (and an ONNX file's value range), then import it as a job."""
        # Imported here: the importers load onnx (a second), which the window's start need not wait for.
        from studio.engine.importers.sources import SourceKind, cache_repository, classify

        path = Path(path)
        try:
            found = classify(path, cache_repository(path))
        except StudioError as error:
            self.context.error("Not a model", str(error))
            return
        if found.kind is SourceKind.UNKNOWN:
            self.context.error(
                "Not a model",
                f"{path} is {found.what}: Studio imports its own model folders, diffusers DDPM, DDIM and LDM "
                "pipeline folders, UNet2DModel folders and .onnx generators",
            )
            return
        if len(found.onnx_files) > 1:
            self.context.error(
                "Not a model", f"{path} holds {len(found.onnx_files)} ONNX files: import the generator's own file"
            )
            return
        base = path.parent.name if path.name == "unet" else path.stem if path.is_file() else path.name
        description = found.what
        if found.kind in (SourceKind.STUDIO_FOLDER, SourceKind.STUDIO_ONNX_FOLDER):
            try:
                config = read_config(path)  # a one-line reason for a folder that is not a model
            except StudioError as error:
                self.context.error("Not a model folder", str(error))
                return
            base = str(config.get("name") or path.name)
            description = (
                f"a {config.get('family')} model, {config.get('resolution')}x{config.get('resolution')} px, "
                f"{config.get('channels')} channel(s)"
            )
        elif found.kind in (SourceKind.DIFFUSERS_PIPELINE, SourceKind.UNET2D):
            description = f"{found.what}, converted to a Studio model (only safetensors weights are read)"
        elif found.kind is SourceKind.ONNX_FILE:
            description = "an ONNX generator: it will run on ONNX Runtime only (Studio cannot train or fine-tune it)"
        self.context.settings.setValue("models/lastImportFolder", str(path.parent))
        self._ask(path, base, description, onnx=found.kind is SourceKind.ONNX_FILE)

    def _import_cached(self, entry: CacheEntry | None) -> None:
        if entry is None:
            return
        revision = cache_revision(entry)
        where = f"revision {revision}" if revision else "its main branch"
        description = f"{entry.what}, {where}, from the local Hugging Face cache"
        self._ask(entry.repo_id, entry.repo_id.rsplit("/", 1)[-1], description, entry.kind == "onnx", revision)

    def _ask(self, source: Path | str, base: str, description: str, onnx: bool, revision: str | None = None) -> None:
        """Open the name dialog (the ONNX one for a generator file); its acceptance starts the import job."""
        from studio.engine.importers import ImportOptions

        if self.dialog is not None and self.dialog.isVisible():
            self.dialog.reject()
        suggested = suggest_model_name(self.store, base)
        dialog = (
            OnnxImportDialog(source, suggested, description, self.page, revision)
            if onnx
            else ModelImportDialog(source, suggested, description, self.page)
        )

        def accepted() -> None:
            options = dialog.options() if isinstance(dialog, OnnxImportDialog) else ImportOptions(revision=revision)
            self.run(source, dialog.name, options)

        dialog.accepted.connect(accepted)
        self.dialog = dialog
        dialog.open()  # window-modal and non-blocking: no nested event loop

    def run(self, source: Path | str, name: str, options: ImportOptions) -> JobHandle:
        """Import `source` as model `name` with `import_any`, as a job on the page's panel."""
        store = self.store
        label = source.name if isinstance(source, Path) else source

        def factory(token: CancelToken) -> Job:
            # import_any is one call (check, convert, copy, commit): a job so a big model never freezes the window.
            from studio.engine.importers import import_any

            token.check()
            yield Progress("importing", 0, 1, f"checking and copying {label}")
            summary = import_any(store, source, name, options)
            yield Progress("importing", 1, 1, "imported")
            yield Finished(summary)

        def ended() -> None:
            summary = handle.result
            self.ended(
                f"Imported model '{summary.name}' ({summary.family}, {summary.steps:,} steps)"
                if handle.state is JobState.FINISHED and isinstance(summary, ModelSummary)
                else None
            )

        op = (
            EngineOp[ModelSummary](self.context, f"Import model '{name}'", factory)
            .started(self.panel.refresh)
            .on_event(self.panel.refresh)
            .success(self.imported)
            .failure(lambda message: self.context.error("Model import failed", ui_wording(message)))
            .ended(ended)
        )
        handle = self.panel.add(op.run())
        return handle
