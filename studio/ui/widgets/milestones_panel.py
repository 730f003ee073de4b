"""The Models page's milestones panel: a model's milestone checkpoints with their sample grids, and Promote.

Each milestone shows its step, its grid (the gallery items of operation `checkpoint`, rated there like
any image), their mean rating, its quality score when the weights were scored, and its size. Promote
asks first, then runs the engine's `promote` job as an `EngineOp`; the replaced weights stay as a
milestone, so a promote can be undone.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.decode import human_bytes
from studio.engine.jobs import CancelToken, Job
from studio.engine.thumbnails import ensure_thumbnail
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from studio.store.milestones import MilestoneRecord, MilestoneRepository
from studio.ui.context import StudioContext
from studio.ui.operations import EngineOp, JobHandle, QueryOp
from studio.ui.widgets import ask_yes, image_grid, named
from studio.ui.widgets.job_panel import JobPanel

GRID_CELL = 24  # px per sample in the table: eight of them side by side
MUTED = "color: #7f8c8d"
PROMOTE_TIP = "Make the selected milestone's weights the model's weights (the current ones stay as a milestone)"


@dataclass(frozen=True)
class MilestoneRow:
    """A milestone and its grid's pixels (uint8 NHWC, the thumbnails at one size), read off the GUI thread."""

    record: MilestoneRecord
    grid: np.ndarray | None


def read_milestones(store: Store, model: str) -> list[MilestoneRow]:
    """A model's milestones, newest first, each with its grid's thumbnails (missing ones left out)."""
    gallery = GalleryRepository(store)
    rows = []
    for record in reversed(MilestoneRepository(store).list(model)):
        pixels = []
        for item in record.items:
            try:
                with Image.open(ensure_thumbnail(store, gallery.get(item))) as image:
                    pixels.append(
                        np.asarray(image.convert("RGB").resize((GRID_CELL, GRID_CELL), Image.Resampling.NEAREST))
                    )
            except (StudioError, OSError):
                continue  # an item deleted or a file gone: the grid shows what is left
        rows.append(MilestoneRow(record, np.stack(pixels) if pixels else None))
    return rows


def rating_text(record: MilestoneRecord) -> str:
    """The grid's mean rating in stars ('4.2 ★ (5)'), or that none of its images is rated yet."""
    if record.mean_rating is None:
        return "not rated"
    return f"{record.mean_rating:.1f} \u2605 ({record.rated})"


class MilestonesPanel(QWidget):
    """A model's milestones with their sample grids and mean ratings; Promote one to be the model's weights."""

    COLUMNS = ("Step", "Samples (seeds 0-7)", "Rating", "Fréchet", "Size")

    def __init__(self, context: StudioContext, jobs: JobPanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.jobs = jobs
        self.model: str | None = None
        self.rows: list[MilestoneRow] = []
        self.promote_job: JobHandle | None = None
        # Replaced by tests and scripts to answer "promote this milestone?" without a dialog.
        self.confirm_promote: Callable[[str, str], bool] = functools.partial(ask_yes, self)
        named(self, "milestonesPanel", "Milestones")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 0, 0)
        top = QHBoxLayout()
        top.addWidget(QLabel("<b>Milestones</b>"))
        top.addStretch(1)
        self.promote_button = named(QPushButton("Promote…"), "promoteMilestoneButton", "Promote", PROMOTE_TIP)
        self.promote_button.clicked.connect(self.promote_selected)
        top.addWidget(self.promote_button)
        layout.addLayout(top)
        self.hint = named(QLabel(), "milestonesHint", "About the milestones")
        self.hint.setWordWrap(True)
        layout.addWidget(self.hint)
        self.table = named(QTableWidget(0, len(self.COLUMNS)), "milestoneTable", "Milestones of the model")
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(GRID_CELL + 8)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_button)
        layout.addWidget(self.table, 1)
        self._update_button()

    # --- listing ----------------------------------------------------------------------------

    def show_model(self, name: str | None) -> None:
        """List a model's milestones (read off the GUI thread); None clears the panel."""
        self.model = name
        if name is None:
            self._fill([])
            return
        store = self.store
        QueryOp(self, lambda: read_milestones(store, name)).latest_only("milestones").success(
            lambda rows: self._fill(rows) if name == self.model else None
        ).failure(
            lambda reason: self.hint.setText(f"<span style='{MUTED}'>{html.escape(reason)}</span>")
        ).run_in_background()

    def _fill(self, rows: list[MilestoneRow]) -> None:
        keep = self.selected_step
        self.rows = rows
        self.table.setRowCount(len(rows))
        for index, row in enumerate(rows):
            record = row.record
            step = QTableWidgetItem(f"{record.step:,}{'  (current)' if record.current else ''}")
            step.setData(Qt.ItemDataRole.UserRole, record.step)
            step.setToolTip(f"weights {record.weights_hash}")
            self.table.setItem(index, 0, step)
            grid = named(QLabel(), f"milestoneGrid{record.step}", f"Sample grid of step {record.step}")
            if row.grid is not None:
                grid.setPixmap(image_grid(row.grid, columns=len(row.grid), cell=GRID_CELL, gap=1))
            else:
                grid.setText("no images left")
            self.table.setCellWidget(index, 1, grid)
            values = (rating_text(record), "-" if record.frechet is None else f"{record.frechet:.4g}")
            for column, text in enumerate((*values, human_bytes(record.size_bytes)), start=2):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(index, column, item)
        if self.model is None:
            self.hint.setText("")
        elif not rows:
            self.hint.setText(
                f"<span style='{MUTED}'>No milestones: training keeps one every 1,000 steps "
                "(--milestone-every), with a grid of samples in the gallery to rate.</span>"
            )
        else:
            self.hint.setText(
                f"<span style='{MUTED}'>Rate the grids in the gallery (operation: checkpoint); promote the "
                "milestone you like best.</span>"
            )
        for index, row in enumerate(rows):
            if row.record.step == keep:
                self.table.selectRow(index)
        self._update_button()

    @property
    def selected_step(self) -> int | None:
        """The step of the selected milestone, if any."""
        selected = self.table.selectionModel().selectedRows()
        if not selected:
            return None
        item = self.table.item(selected[0].row(), 0)
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def select_step(self, step: int) -> None:
        """Select a milestone by step (when it is listed)."""
        for index, row in enumerate(self.rows):
            if row.record.step == step:
                self.table.selectRow(index)

    def _update_button(self) -> None:
        step = self.selected_step
        current = any(r.record.current for r in self.rows if r.record.step == step)
        busy = self.promote_job is not None and not self.promote_job.done
        self.promote_button.setEnabled(step is not None and not current and not busy and not self.store.read_only)
        if self.store.read_only:
            self.promote_button.setToolTip(f"Read-only: {self.store.read_only_reason}")
        else:
            self.promote_button.setToolTip("These are the model's weights already" if current else PROMOTE_TIP)

    # --- promote ----------------------------------------------------------------------------

    def promote_selected(self) -> JobHandle | None:
        """Ask, then make the selected milestone's weights the model's weights as a job."""
        name, step = self.model, self.selected_step
        if name is None or step is None:
            return None
        record = next(r.record for r in self.rows if r.record.step == step)
        if not self.confirm_promote(
            "Promote milestone",
            f"Make the weights of step {step:,} ({rating_text(record)}) the weights of '{name}'? The current "
            "weights stay as a milestone, and an ONNX export becomes out of date.",
        ):
            return None
        store = self.store

        def factory(token: CancelToken) -> Job:
            from studio.engine.milestones import promote  # torch, in the engine thread

            return promote(store, name, step=step, cancel=token)

        op = (
            EngineOp[object](self.context, f"Promote step {step:,} of '{name}'", factory)
            .started(self.jobs.refresh)
            .on_event(self.jobs.refresh)
            .success(lambda _: self._promoted(name, step))
            .failure(lambda message: self.context.error(f"Promoting step {step:,} of '{name}' failed", message))
            .ended(self._ended)
        )
        handle = self.jobs.add(op.run())
        self.promote_job = handle
        self._update_button()
        return handle

    def _promoted(self, name: str, step: int) -> None:
        self.context.notify(f"'{name}' now has the weights of step {step:,}")
        # The Models page reloads (and this panel with it); a grid of the replaced weights may be new.
        self.context.signals.modelsChanged.emit()
        self.context.signals.galleryChanged.emit()

    def _ended(self) -> None:
        self.jobs.refresh()
        self._update_button()
