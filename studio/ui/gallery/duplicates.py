"""The near-duplicates dialog: groups of near-identical items, each with the one "keep the best" keeps marked,
and one button that keeps the best of every group and rejects the rest (the page does it, undoably)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.ui.gallery.commands import plural
from studio.ui.gallery.painting import scale_crisp
from studio.ui.gallery.similarity import MAX_GROUPS_SHOWN, DuplicateFindings
from studio.ui.widgets import named

TILE = 80  # an item in a group (16 px scales by a whole 5): several groups fit on screen
KEEP_STYLE = "QFrame#duplicateTile[kept='true'] { border: 3px solid #2ea043; border-radius: 4px; }"
REJECT_STYLE = "QFrame#duplicateTile[kept='false'] { border: 3px solid transparent; }"


class DuplicatesDialog(QDialog):
    """Near-duplicate groups as rows of thumbnails; the kept one of each group has a green frame and "keep"."""

    def __init__(self, apply: Callable[[list[int]], bool], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "duplicatesDialog", "Near-duplicates")
        self.setWindowTitle("Near-duplicates")
        self.setWindowFlag(Qt.WindowType.Window, True)
        self._apply = apply
        self.findings = DuplicateFindings([])
        self.tiles: dict[int, QFrame] = {}
        layout = QVBoxLayout(self)
        self.summary = named(QLabel(), "duplicatesSummary", "What was found")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.groups_area = QScrollArea()
        self.groups_area.setWidgetResizable(True)
        self.groups_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        layout.addWidget(self.groups_area, 1)
        buttons = QHBoxLayout()
        self.keep_best_button = named(
            QPushButton("Keep the best, reject the rest"),
            "keepBestButton",
            "Keep the best of each group, reject the rest",
            "In every group, flag all but the kept item (best rated, then picked, then oldest) as rejected; "
            "Ctrl+Z in the gallery undoes it",
        )
        self.keep_best_button.clicked.connect(self._keep_best)
        close = named(QPushButton("Close"), "duplicatesCloseButton", "Close the near-duplicates")
        close.clicked.connect(self.close)
        buttons.addWidget(self.keep_best_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.resize(560, 480)

    def show_waiting(self, scope: str) -> None:
        """Open at once, saying what is being looked through (new items may be embedded first)."""
        self.findings = DuplicateFindings([])
        self.summary.setText(f"Looking for near-duplicates among {scope}…")
        self.keep_best_button.setEnabled(False)
        self.groups_area.setWidget(QWidget())
        self.show()
        self.raise_()

    def show_failure(self, reason: str) -> None:
        """Why no groups could be looked for (no encoder yet...), said in the dialog: no second dialog."""
        self.summary.setText(f"Cannot look for near-duplicates: {reason}")
        self.keep_best_button.setEnabled(False)

    def show_findings(self, findings: DuplicateFindings, scope: str) -> None:
        """Show the groups found among `scope` (e.g. "the filtered items"), in the dialog `show_waiting` opened."""
        self.findings = findings
        groups = findings.groups
        rejected = findings.rejected
        if groups:
            more = (
                f" The first {MAX_GROUPS_SHOWN} are shown; the button handles all {len(groups)}."
                if len(groups) > MAX_GROUPS_SHOWN
                else ""
            )
            self.summary.setText(
                f"{plural(len(groups), 'group')} of near-identical items among {scope}. The green frame marks the "
                f"item kept in each (best rated, then picked, then oldest); {plural(len(rejected))} would be "
                f"rejected.{more}"
            )
        else:
            self.summary.setText(f"No near-duplicates among {scope}.")
        if findings.left_out:
            self.summary.setText(
                self.summary.text()
                + f" {plural(findings.left_out, 'item')} could not be compared: {findings.left_out_reason}."
            )
        self.keep_best_button.setEnabled(bool(rejected))
        # Not shown again if the user closed it meanwhile: a dialog popping back up would be a surprise.
        self.groups_area.setWidget(self._groups_widget())

    def _groups_widget(self) -> QWidget:
        holder = QWidget()
        holder.setStyleSheet(KEEP_STYLE + REJECT_STYLE)
        grid = QGridLayout(holder)
        grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.tiles = {}
        for row, group in enumerate(self.findings.groups[:MAX_GROUPS_SHOWN]):
            title = QLabel(f"<b>Group {row + 1}</b><br><span style='color:gray'>≤ {group.distance:.4f}</span>")
            title.setToolTip("The largest cosine distance between an item of the group and the kept one")
            grid.addWidget(title, row, 0, Qt.AlignmentFlag.AlignTop)
            ordered = [group.keep] + [i for i in group.ids if i != group.keep]  # the kept one first
            for column, item_id in enumerate(ordered, start=1):
                tile = self._tile(item_id, item_id == group.keep)
                self.tiles[item_id] = tile
                grid.addWidget(tile, row, column)
        grid.setColumnStretch(grid.columnCount(), 1)
        return holder

    def _tile(self, item_id: int, kept: bool) -> QFrame:
        tile = named(QFrame(), "duplicateTile", f"Item {item_id}{', kept' if kept else ', to reject'}")
        tile.setProperty("kept", "true" if kept else "false")
        column = QVBoxLayout(tile)
        column.setContentsMargins(3, 3, 3, 3)
        column.setSpacing(2)
        picture = QLabel()
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        picture.setFixedSize(TILE, TILE)
        image = self.findings.thumbnails.get(item_id)
        if image is None or image.isNull():
            picture.setText("no image")
        else:
            picture.setPixmap(scale_crisp(image, TILE))
        entry = self.findings.entries.get(item_id)
        rated = entry is not None and entry.rating > 0
        stars = f"<span style='color:#f5b514'>{'★' * entry.rating}</span>" if entry is not None and rated else "unrated"
        picked = " · pick" if entry is not None and entry.flag == "pick" else ""
        if kept:
            verdict = "<b style='color:#2ea043'>keep</b>"
        elif entry is not None and entry.flag == "reject":
            verdict = "<b style='color:#d23732'>rejected</b>"
        else:
            verdict = "<span style='color:gray'>reject</span>"
        caption = QLabel(f"#{item_id} · {verdict}<br><span style='color:gray'>{stars}{picked}</span>")
        caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(picture)
        column.addWidget(caption)
        if entry is not None:
            tile.setToolTip(f"#{item_id}: {entry.model}, seed {entry.seed}")
        return tile

    def _keep_best(self) -> None:
        rejected = self.findings.rejected
        if rejected and self._apply(rejected):
            self.keep_best_button.setEnabled(False)
            # The tiles show the flags as they are now.
            entries = {
                i: dataclasses.replace(e, flag="reject") if i in rejected else e
                for i, e in self.findings.entries.items()
            }
            self.findings = dataclasses.replace(self.findings, entries=entries)
            self.groups_area.setWidget(self._groups_widget())
            self.summary.setText(
                f"Rejected {plural(len(rejected))}; kept the best of each group. Ctrl+Z in the gallery undoes it."
            )
