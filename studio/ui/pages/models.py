"""The Models page: every model with its shape, training, size and ONNX export state; export, import, delete.

Export runs the engine's `export_model` job as an `EngineOp` and then shows the parity check:
for every exported network, the largest difference between torch and ONNX Runtime against its
tolerance. Import (button menu or drop) takes a Studio model folder, a diffusers pipeline or UNet2DModel
folder, an .onnx generator or a repository from the local Hugging Face cache, all through the engine's
`import_any`, under a name the user confirms in a `ModelImportDialog` (an `OnnxImportDialog` for ONNX
files), opened with `open()` (never `exec()`) so tests and scripts can accept it. A model made elsewhere
shows where it came from and its model card.
"""

from __future__ import annotations

import functools
import html
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.decode import human_bytes
from studio.engine.embedding.scoring import describe, score_model
from studio.engine.families import registry
from studio.engine.jobs import CancelToken, Job
from studio.engine.library import ModelSummary, delete_model, list_models
from studio.engine.runtime.package import EXPORT_FOLDER, read_manifest
from studio.errors import StudioError
from studio.store.embeddings import ScoreRecord
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle, JobState
from studio.ui.operations import EngineOp, QueryOp
from studio.ui.pages.model_quality import SCORE_TIP, ModelQuality, quality_text, read_quality
from studio.ui.widgets import ask_yes, named
from studio.ui.widgets.class_picker import classes_line
from studio.ui.widgets.job_panel import JobPanel
from studio.ui.widgets.milestones_panel import MilestonesPanel
from studio.ui.widgets.model_card import ModelCardView, architecture_rows, origin_rows, read_card
from studio.ui.widgets.model_import import HfCacheDialog, ModelImportDialog, ModelImporter

__all__ = [
    "ModelImportDialog",
    "ModelQuality",
    "ModelsPage",
    "export_label",
    "parameters_label",
    "parity_rows",
    "read_quality",
]

ERROR_COLOUR = "#c0392b"
GOOD_COLOUR = "#1e8449"
STALE_COLOUR = "#b9770e"
EXPORT_TIP = "Export the selected model's networks to ONNX and check them against torch (Ctrl+E)"


def export_label(export: dict[str, Any] | None) -> str:
    """A model's ONNX export state in words: not exported, current, out of date or damaged."""
    if export is None:
        return "not exported"
    if export.get("damaged"):
        return "damaged"
    if export.get("imported"):
        return "imported"
    state = "current" if export.get("current") else "out of date"
    return f"{state} (fp32 + fp16)" if export.get("fp16") else state


def parameters_label(count: int) -> str:
    """A parameter count people can read (4,217 or 1.25 M)."""
    return f"{count / 1e6:.2f} M" if count >= 1_000_000 else f"{count:,}"


def parity_rows(networks: dict[str, dict[str, Any]]) -> list[tuple[str, str, float, float]]:
    """(network, precision, largest difference, tolerance) for each exported file, fp32 then fp16."""
    rows = []
    for role, entry in networks.items():
        if "max_abs_difference" in entry:
            rows.append((role, "fp32", float(entry["max_abs_difference"]), float(entry["tolerance"])))
        half = entry.get("fp16")
        if isinstance(half, dict) and "max_abs_difference" in half:
            rows.append((role, "fp16", float(half["max_abs_difference"]), float(half["tolerance"])))
    return rows


def _when(stamp: Any) -> str:
    """An ISO time stamp as 'YYYY-MM-DD HH:MM:SS UTC' (the engine writes UTC)."""
    text = str(stamp or "?")
    return f"{text[:19].replace('T', ' ')} UTC" if len(text) >= 19 else text


class ModelsPage(QWidget):
    """Every model with its family, shape, dataset, steps, size and export state; export, import, delete."""

    COLUMNS = ("Name", "Family", "Shape", "Dataset", "Steps", "Parameters", "Size", "ONNX export")
    panel: JobPanel  # built in _build

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.setObjectName("modelsPage")
        self.setAccessibleName("Models")
        self.models: dict[str, ModelSummary] = {}
        self.export_job: JobHandle | None = None
        self.score_job: JobHandle | None = None
        self.quality: ModelQuality | None = None  # the selected model's, once read
        # Replaced by tests and scripts to answer "delete this model?" without a dialog.
        self.confirm_delete: Callable[[str, str], bool] = functools.partial(ask_yes, self)
        self._build()
        self.importer = ModelImporter(self, context, self.panel, self._imported, self._ended)
        # Training (another page) and imports change the library: show it.
        self.context.signals.modelsChanged.connect(self.refresh)
        self.refresh()

    # --- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(QLabel("<h2>Models</h2>"))
        top.addStretch(1)
        self.import_button = named(
            QPushButton("Import…"),
            "importModelButton",
            "Import a model",
            "Import a model folder (Studio's, a diffusers pipeline or a UNet2DModel), an ONNX generator or a "
            "model from the Hugging Face cache; or drop a folder or .onnx file anywhere",
        )
        menu = QMenu(self.import_button)
        menu.setObjectName("importModelMenu")
        menu.addAction("Model folder…", lambda: self.importer.choose_folder()).setObjectName("importFolderAction")
        menu.addAction("ONNX generator…", lambda: self.importer.choose_onnx()).setObjectName("importOnnxAction")
        menu.addAction("From the Hugging Face cache…", self.choose_from_cache).setObjectName("importHfCacheAction")
        self.import_button.setMenu(menu)
        self.fp16_check = named(
            QCheckBox("Also fp16"),
            "exportFp16Check",
            "Also export half precision",
            "Also write half-precision files (smaller, faster on GPUs; checked at a looser tolerance)",
        )
        self.export_button = named(
            QPushButton("Export to ONNX"),
            "exportButton",
            "Export the model to ONNX",
            EXPORT_TIP,
        )
        self.export_button.setShortcut(QKeySequence("Ctrl+E"))
        self.export_button.clicked.connect(self.export_selected)
        self.delete_button = named(
            QPushButton("Delete…"),
            "deleteModelButton",
            "Delete the selected model",
            "Delete the selected model and its exports (Del)",
        )
        self.delete_button.clicked.connect(self.delete_selected)
        self.score_button = named(QPushButton("Score"), "scoreButton", "Score the model's quality", SCORE_TIP)
        self.score_button.clicked.connect(self.score_selected)
        for widget in (
            self.import_button,
            self.fp16_check,
            self.export_button,
            self.score_button,
            self.delete_button,
        ):
            top.addWidget(widget)
        layout.addLayout(top)
        self.hint = named(QLabel(), "modelsHint", "About the models")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)

        # The page's own progress for exports and imports (the status bar shows it too).
        self.panel = JobPanel(
            self.context.runner, "export", "Cancel: the previous export, if any, stays as it was", self.context.notify
        )
        layout.addWidget(self.panel)

        splitter = named(QSplitter(Qt.Orientation.Horizontal), "modelsSplitter", "Models and details")
        self.table = named(QTableWidget(0, len(self.COLUMNS)), "modelTable", "Model list")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for column in range(len(self.COLUMNS) - 1):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(self.COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        splitter.addWidget(self.table)

        details = QWidget()
        details_layout = QVBoxLayout(details)
        details_layout.setContentsMargins(8, 0, 0, 0)
        self.details = named(QLabel(), "modelDetails", "Model details")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        details_layout.addWidget(self.details)
        self.score_label = named(QLabel(), "scoreLabel", "Quality score")
        self.score_label.setWordWrap(True)
        self.score_label.setTextFormat(Qt.TextFormat.RichText)
        self.score_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        details_layout.addWidget(self.score_label)
        self.parity_label = named(QLabel(), "parityLabel", "ONNX parity summary")
        self.parity_label.setWordWrap(True)
        details_layout.addWidget(self.parity_label)
        self.parity_table = named(QTableWidget(0, 5), "parityTable", "ONNX parity per network")
        self.parity_table.setHorizontalHeaderLabels(("Network", "Precision", "Max difference", "Tolerance", "Result"))
        difference_header = QTableWidgetItem("Max difference")
        difference_header.setToolTip("Largest absolute difference between torch and ONNX Runtime on random inputs")
        self.parity_table.setHorizontalHeaderItem(2, difference_header)
        self.parity_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.parity_table.verticalHeader().setVisible(False)
        self.parity_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.parity_table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.parity_table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.parity_table.setSizeAdjustPolicy(QAbstractItemView.SizeAdjustPolicy.AdjustToContents)
        self.parity_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        details_layout.addWidget(self.parity_table)
        details_layout.addStretch(1)
        scroll = named(QScrollArea(), "modelDetailsScroll", "Model details")
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the details wrap instead
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(details)
        # A model made elsewhere brings its card: below the facts, in view however long they are.
        self.card_box = QWidget()
        card_layout = QVBoxLayout(self.card_box)
        card_layout.setContentsMargins(8, 4, 0, 0)
        self.card_label = named(QLabel("<b>Model card</b> (README.md, as it came)"), "modelCardLabel", "Model card")
        card_layout.addWidget(self.card_label)
        self.card_view = ModelCardView()
        card_layout.addWidget(self.card_view, 1)
        side = named(QSplitter(Qt.Orientation.Vertical), "modelSideSplitter", "Model details and card")
        side.addWidget(scroll)
        side.addWidget(self.card_box)
        self.milestones = MilestonesPanel(self.context, self.panel)  # weights to choose from, and Promote
        side.addWidget(self.milestones)
        side.setSizes([360, 300, 300])
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([630, 430])
        layout.addWidget(splitter, 1)

        delete = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self.table)
        delete.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete.activated.connect(self.delete_selected)

    # --- listing ----------------------------------------------------------------------------

    def on_shown(self) -> None:
        """The page came into view: reload (the CLI may have trained or exported meanwhile)."""
        self.refresh()

    @property
    def selected_name(self) -> str | None:
        """The name of the selected model, if any."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), 0)
        return None if item is None else str(item.data(Qt.ItemDataRole.UserRole))

    def select(self, name: str) -> None:
        """Select a model by name (when it is listed)."""
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == name:
                self.table.selectRow(row)
                return

    def refresh(self, select: str | None = None) -> None:
        """Reload the table from the store, keeping (or moving to) a selection."""
        keep = select or self.selected_name
        try:
            models = list_models(self.store)
        except StudioError as error:
            self.hint.setText(
                f"<span style='color: {ERROR_COLOUR}'>Cannot list models: {html.escape(str(error))}</span>"
            )
            return
        self.models = {m.name: m for m in models}
        self.hint.setText(
            "No model yet: train one on the Train page, or import a model folder (drop it anywhere)."
            if not models
            else f"{len(models)} model(s). Select one to see its details or export it to ONNX."
        )
        self.table.blockSignals(True)  # one selection change below, not one per cell
        self.table.clearSelection()
        self.table.setRowCount(len(models))
        for row, model in enumerate(models):
            values = (
                model.name,
                model.family,
                f"{model.resolution}x{model.resolution}x{model.channels}",
                model.dataset or "-",
                f"{model.steps:,}",
                parameters_label(model.parameter_count),
                human_bytes(model.size_bytes),
                export_label(model.export),
            )
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if column in (4, 5, 6):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if column == 0:
                    item.setData(Qt.ItemDataRole.UserRole, model.name)
                if column == 7:
                    item.setForeground(QBrush(QColor(self._state_colour(model.export))))
                self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        if models:
            target = keep if keep in self.models else models[0].name
            self.select(target)
        self._selection_changed()

    @staticmethod
    def _state_colour(export: dict[str, Any] | None) -> str:
        if export is None:
            return "#7f8c8d"
        if export.get("damaged"):
            return ERROR_COLOUR
        return GOOD_COLOUR if export.get("current") else STALE_COLOUR

    def _update_buttons(self) -> None:
        model = self.models.get(self.selected_name or "")
        selected = model is not None
        busy = self.export_job is not None and not self.export_job.done
        # An imported ONNX generator is its own export: there are no torch networks to export.
        exportable = (
            model is not None
            and model.family in registry.family_names()
            and registry.declaration(model.family).trainable
        )
        self.export_button.setEnabled(exportable and not busy and not self.store.read_only)
        self.export_button.setToolTip(
            EXPORT_TIP
            if exportable or model is None
            else f"'{model.name}' is an imported ONNX file already: there are no torch networks to export"
        )
        self.delete_button.setEnabled(selected and not self.store.read_only)
        self._update_score_button()

    def _update_score_button(self) -> None:
        name = self.selected_name
        quality = self.quality if self.quality is not None and self.quality.model == name else None
        scoring = self.score_job is not None and not self.score_job.done
        self.score_button.setEnabled(
            quality is not None and quality.scorable and not scoring and not self.store.read_only
        )
        if self.store.read_only:
            self.score_button.setToolTip(f"Read-only: {self.store.read_only_reason}")
        elif quality is not None and not quality.scorable:
            self.score_button.setToolTip(quality.hint)  # the one line that says how to get an encoder
        else:
            self.score_button.setToolTip(SCORE_TIP)

    def _selection_changed(self) -> None:
        name = self.selected_name
        model = self.models.get(name) if name else None
        self._update_buttons()
        self.milestones.show_model(name if model is not None else None)
        card = None if model is None else read_card(self.store.home.absolute(model.folder))
        self.card_view.show_card(card)
        self.card_box.setVisible(card is not None)
        if model is None:
            self.details.setText("")
            self.score_label.setText("")
            self._show_parity(None)
            return
        self.details.setText(self._describe(model))
        self._show_parity(model)
        self.read_quality()

    def read_quality(self) -> None:
        """Read the selected model's newest score and whether it can be scored (off the GUI thread)."""
        name, store = self.selected_name, self.store
        if name is None:
            return
        if self.quality is None or self.quality.model != name:
            self.score_label.setText("<b>Quality</b>: <span style='color: #7f8c8d'>reading\u2026</span>")
        QueryOp(self, lambda: read_quality(store, name)).latest_only("quality").success(self._show_quality).failure(
            lambda reason: self.score_label.setText(
                f"<b>Quality</b>: <span style='color: {ERROR_COLOUR}'>{html.escape(reason)}</span>"
            )
        ).run_in_background()

    def _show_quality(self, quality: ModelQuality) -> None:
        model = self.models.get(quality.model)
        if model is None or quality.model != self.selected_name:
            return  # the selection moved on meanwhile
        self.quality = quality
        self.score_label.setText(quality_text(quality, model.steps))
        self._update_score_button()

    def _describe(self, model: ModelSummary) -> str:
        def row(label: str, value: str) -> str:
            return (
                f"<tr><td style='padding-right: 12px; color: #7f8c8d; white-space: nowrap'>{label}</td>"
                f"<td>{value}</td></tr>"
            )

        no_dataset, no_parent = (
            ("- (imported)",) * 2 if model.origin else ("- (deleted or imported)", "- (trained from scratch)")
        )
        rows = [
            row("Family", html.escape(model.family)),
            row("Shape", f"{model.resolution}x{model.resolution} px, {'grey' if model.channels == 1 else 'colour'}"),
            *(row(label, value) for label, value in architecture_rows(model)),
            row("Dataset", html.escape(model.dataset or no_dataset)),
            row("Classes", self._classes_text(model.classes)),
            row("Steps", f"{model.steps:,}"),
            row("Parameters", f"{model.parameter_count:,}"),
            row("Size on disk", human_bytes(model.size_bytes)),
            row("Parent", html.escape(model.parent) if model.parent else no_parent),
            row("Created", model.created_at.replace("T", " ")),
            row("Updated", model.updated_at.replace("T", " ")),
            # 64 hex digits do not wrap: two lines of 32 keep the pane narrow.
            row("Weights hash", "<code>" + "<br>".join(textwrap.wrap(model.weights_hash or "-", 32)) + "</code>"),
            row("ONNX export", self._export_text(model.export)),
        ]
        hyper = "".join(row(html.escape(str(k)), html.escape(str(v))) for k, v in sorted(model.hyperparameters.items()))
        origin = "".join(row(label, value) for label, value in origin_rows(model.origin))
        return (
            f"<b style='font-size: 14pt'>{html.escape(model.name)}</b>"
            f"<table cellspacing='2'>{''.join(rows)}</table>"
            + (f"<p style='margin-top: 8px'><b>Origin</b></p><table cellspacing='2'>{origin}</table>" if origin else "")
            + f"<p style='margin-top: 8px'><b>Hyperparameters</b></p><table cellspacing='2'>{hyper}</table>"
        )

    @staticmethod
    def _classes_text(classes: list[str]) -> str:
        """A conditional model's classes ('10: 0, 1, 2 ... 9'), or that it makes no chosen class."""
        if not classes:
            return "<span style='color: #7f8c8d'>none: unconditional (no class can be asked for)</span>"
        return f"{len(classes)}: {html.escape(classes_line(classes, 24))}"

    def _export_text(self, export: dict[str, Any] | None) -> str:
        colour = self._state_colour(export)
        when = _when(export.get("exported_at")) if export else ""
        if export is None:
            text = "not exported: use Export to ONNX"
        elif export.get("damaged"):
            text = "damaged: export again"
        elif export.get("imported"):
            text = f"the ONNX file itself, imported {when}"
        elif not export.get("current"):
            text = f"out of date: the weights changed after the export of {when}; export again"
        else:
            text = f"{export_label(export)}, exported {when}"
        return f"<span style='color: {colour}'>{html.escape(text)}</span>"

    def _show_parity(self, model: ModelSummary | None) -> None:
        """The parity check of the model's current export, read from its manifest."""
        self.parity_table.setRowCount(0)
        if model is None or model.export is None or model.export.get("damaged") or model.export.get("imported"):
            self.parity_label.setText("")
            self.parity_table.setVisible(False)
            return
        try:
            manifest = read_manifest(self.store.home.absolute(model.folder) / EXPORT_FOLDER)
        except StudioError as error:
            self.parity_label.setText(f"<span style='color: {ERROR_COLOUR}'>{html.escape(str(error))}</span>")
            self.parity_table.setVisible(False)
            return
        self.fill_parity(manifest["networks"], "Parity with torch (ONNX Runtime, CPU):")

    def fill_parity(self, networks: dict[str, dict[str, Any]], heading: str) -> None:
        """Show each exported network's largest difference from torch against its tolerance."""
        rows = parity_rows(networks)
        self.parity_table.setRowCount(len(rows))
        for index, (role, precision, difference, tolerance) in enumerate(rows):
            passed = difference <= tolerance
            cells = (role, precision, f"{difference:.3g}", f"{tolerance:.3g}", "within" if passed else "over")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 4:
                    item.setForeground(QBrush(QColor(GOOD_COLOUR if passed else ERROR_COLOUR)))
                self.parity_table.setItem(index, column, item)
        self.parity_table.setVisible(bool(rows))
        self.parity_label.setText(f"<b>{html.escape(heading)}</b>")

    # --- export -----------------------------------------------------------------------------

    def export_selected(self) -> JobHandle | None:
        """Export the selected model to ONNX as a job; the parity result shows when it ends."""
        name = self.selected_name
        if name is None:
            return None
        if self.export_job is not None and not self.export_job.done:
            self.context.notify(f"{self.export_job.title} is still running")
            return None
        store, fp16 = self.store, self.fp16_check.isChecked()

        def factory(token: CancelToken) -> Job:
            # Imported here, in the engine thread: torch.onnx and onnx cost a second the window need not wait for.
            from studio.engine.export import export_model

            return export_model(store, name, fp16=fp16, cancel=token)

        def ended() -> None:
            outcome = {
                JobState.FINISHED: f"Exported '{name}' to ONNX: every network within its tolerance",
                JobState.CANCELLED: f"Export of '{name}' cancelled: nothing changed",
            }
            self._ended(outcome.get(handle.state))
            self._update_buttons()

        op = (
            EngineOp[Any](self.context, f"Export '{name}' to ONNX", factory)
            .started(self.panel.refresh)
            .on_event(self.panel.refresh)
            .success(lambda result: self._export_finished(name, result))
            .failure(lambda message: self.context.error(f"Export of '{name}' failed", message))
            .ended(ended)
        )
        handle = self.panel.add(op.run())
        self.export_job = handle
        self.export_button.setEnabled(False)
        return handle

    def _export_finished(self, name: str, result: Any) -> None:
        self.refresh(select=name)
        self.context.signals.modelsChanged.emit()
        worst = max((d / t for _, _, d, t in parity_rows(result.networks) if t), default=0.0)
        self.fill_parity(
            result.networks,
            f"Exported in {result.seconds:.1f} s; parity with torch "
            f"(largest difference at {worst:.0%} of its tolerance):",
        )

    # --- quality score ----------------------------------------------------------------------

    def score_selected(self) -> JobHandle | None:
        """Score the selected model in its dataset's encoder space as a job; the score shows when it ends."""
        name = self.selected_name
        if name is None or (self.score_job is not None and not self.score_job.done):
            return None
        store = self.store

        def ended() -> None:
            self._ended("Scoring cancelled: nothing was kept" if handle.state is JobState.CANCELLED else None)
            self._update_score_button()

        op = (
            EngineOp[ScoreRecord](self.context, f"Score '{name}'", lambda token: score_model(store, name, cancel=token))
            .started(self.panel.refresh)
            .on_event(self.panel.refresh)
            .success(lambda record: self._scored(name, record))
            .failure(lambda message: self.context.error(f"Scoring '{name}' failed", message))
            .ended(ended)
        )
        handle = self.panel.add(op.run())
        self.score_job = handle
        self._update_score_button()
        return handle

    def _scored(self, name: str, record: ScoreRecord) -> None:
        self.context.notify(f"'{name}': {describe(record)}", 10_000)
        if name == self.selected_name and self.quality is not None and self.quality.model == name:
            self.quality = replace(self.quality, score=record)
            model = self.models.get(name)
            self.score_label.setText(quality_text(self.quality, model.steps if model else record.steps))

    # --- import -----------------------------------------------------------------------------

    @property
    def import_dialog(self) -> ModelImportDialog | None:
        """The import dialog opened last (the name, and an ONNX file's settings)."""
        return self.importer.dialog

    @property
    def cache_dialog(self) -> HfCacheDialog | None:
        """The Hugging Face cache dialog opened last."""
        return self.importer.cache_dialog

    def import_model_folder(self, folder: Path) -> None:
        """Import a dropped or chosen folder or .onnx file (see `ModelImporter.import_source`)."""
        self.importer.import_source(folder)

    def import_source(self, path: Path) -> None:
        """Work out what `path` is, ask for its name (and an ONNX file's value range), then import it as a job."""
        self.importer.import_source(path)

    def choose_from_cache(self) -> HfCacheDialog:
        """List the local Hugging Face cache and import the repository chosen."""
        return self.importer.choose_from_cache()

    def _imported(self, summary: ModelSummary) -> None:
        self.refresh(select=summary.name)
        self.context.signals.modelsChanged.emit()

    # --- jobs -------------------------------------------------------------------------------

    def _ended(self, message: str | None) -> None:
        """A job of the page's ended: its fuller status line replaces the window's own "done" or "cancelled"."""
        if message:
            self.context.notify(message)
        self.panel.refresh()

    def cancel_job(self) -> None:
        """Cancel this page's first pending export or import (nothing of it is kept)."""
        self.panel.cancel_first()

    # --- delete -----------------------------------------------------------------------------

    def delete_selected(self) -> bool:
        """Delete the selected model after asking; True when it was deleted."""
        name = self.selected_name
        if name is None:
            return False
        if self.export_job is not None and not self.export_job.done and f"'{name}'" in self.export_job.title:
            self.context.error("Could not delete the model", f"'{name}' is being exported: wait or cancel first")
            return False
        model = self.models[name]
        if not self.confirm_delete(
            "Delete model",
            f"Delete '{name}' ({model.family}, {model.steps:,} steps, {human_bytes(model.size_bytes)}) with its "
            "weights and ONNX export? Gallery images keep its name. This cannot be undone.",
        ):
            return False
        try:
            delete_model(self.store, name)
        except (StudioError, OSError) as error:
            self.context.error("Could not delete the model", f"'{name}': {error}")
            self.refresh()
            return False
        self.context.notify(f"Deleted model '{name}'")
        self.refresh()
        self.context.signals.modelsChanged.emit()
        return True
