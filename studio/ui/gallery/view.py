"""The gallery grid's view and its selection helpers: an icon-mode grid tuned for a large fixed-size model (one
layout, cheap selections of every row), whose curation keys (Lightroom's) become signals."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, cast

from PySide6.QtCore import (
    QAbstractItemModel,
    QItemSelection,
    QItemSelectionModel,
    QItemSelectionRange,
    QPoint,
    Qt,
    QTimerEvent,
    Signal,
)
from PySide6.QtGui import QKeyEvent, QKeySequence, QMouseEvent, QRegion, QWheelEvent
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from studio.ui.gallery.model import GalleryModel
from studio.ui.gallery.painting import CELL


@dataclass
class GridPosition:
    """Where the grid is, by item id (a reload renumbers the rows): the top left item (None at the very top),
    the current item and the selection."""

    anchor: int | None = None
    current: int | None = None
    selected: list[int] = field(default_factory=list)

    def near(self) -> list[int]:
        """The ids the grid returns to first: their blocks are worth reading with the id list."""
        return [i for i in (self.anchor, self.current, *self.selected[:1]) if i is not None]


def selection_of_rows(model: QAbstractItemModel, rows: Iterable[int]) -> QItemSelection:
    """A selection of rows as ranges of adjacent rows (thousands of single-row ranges are slow)."""
    selection = QItemSelection()
    ordered = sorted(set(rows))
    start = previous = None
    for row in [*ordered, None]:
        if row is not None and previous is not None and row == previous + 1:
            previous = row
            continue
        if start is not None and previous is not None:
            selection.select(model.index(start, 0), model.index(previous, 0))
        start = previous = row
    return selection


def ranges(selection: QItemSelection) -> Iterable[QItemSelectionRange]:
    """A selection's ranges (QItemSelection is a QList, iterable at run time; PySide6's stubs do not say so)."""
    return cast(Iterable[QItemSelectionRange], selection)


def selected_spans(view: QListView) -> list[tuple[int, int]]:
    """The selection as sorted, disjoint (first, last) row spans: Ctrl+A on a million rows is one span."""
    # PySide6's stubs say never None, but a view without a model has no selection model.
    model: QItemSelectionModel | None = view.selectionModel()
    if model is None:
        return []
    spans: list[tuple[int, int]] = []
    for first, last in sorted((r.top(), r.bottom()) for r in ranges(model.selection()) if r.isValid()):
        if spans and first <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(spans[-1][1], last))
        else:
            spans.append((first, last))
    return spans


def selected_rows(view: QListView) -> list[int]:
    """The selected rows, in order, read from the selection's ranges (cheap with everything selected)."""
    rows: list[int] = []
    for first, last in selected_spans(view):
        rows.extend(range(first, last + 1))
    return rows


def selection_count(view: QListView) -> int:
    """How many rows are selected, without listing them."""
    return sum(last - first + 1 for first, last in selected_spans(view))


def first_selected_row(view: QListView) -> int | None:
    """The topmost selected row, or None."""
    spans = selected_spans(view)
    return spans[0][0] if spans else None


class GalleryView(QListView):
    """An icon-mode grid tuned for a large fixed-size model (one layout, cheap selections of every row);
    Lightroom's curation keys become signals."""

    ratingRequested = Signal(int)  # noqa: N815 - 0-5 pressed
    flagRequested = Signal(str)  # noqa: N815 - P, X, U: "pick", "reject", "none"
    deleteRequested = Signal()  # noqa: N815 - Delete or Backspace
    undoRequested = Signal()  # noqa: N815 - Ctrl+Z
    redoRequested = Signal()  # noqa: N815 - Ctrl+Shift+Z or Ctrl+Y
    compareRequested = Signal()  # noqa: N815 - C

    _FLAG_KEYS: ClassVar[dict[Qt.Key, str]] = {Qt.Key.Key_P: "pick", Qt.Key.Key_X: "reject", Qt.Key.Key_U: "none"}
    _pending_scroll: tuple[int, QAbstractItemView.ScrollHint] | None = None  # set before Qt may call reset()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)  # a grid, not a desktop: no dragging cells about
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)  # one size hint for every row: layout without asking each
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setGridSize(CELL)
        self.setSpacing(0)
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(CELL.height() // 3)
        self.setMouseTracking(True)
        self.setDragEnabled(False)
        self.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        # Dragging or clicking the scroll bar is the user moving on: a pending scroll must not pull them back.
        self.verticalScrollBar().actionTriggered.connect(lambda _action: self.cancel_pending_scroll())

    def layout_complete(self) -> bool:
        """Whether every row has been placed (batched layouts place them over several passes)."""
        model = self.model()
        rows = model.rowCount() if model is not None else 0
        return rows == 0 or self.rectForIndex(model.index(rows - 1, 0)).isValid()

    def rows_on_screen(self) -> tuple[int, int] | None:
        """(first, last) rows that can be on screen, from the top left cell and the grid; None when unknown."""
        model = self.model()
        grid = self.gridSize()
        if model is None or not model.rowCount() or grid.isEmpty():
            return None
        top = self.indexAt(QPoint(grid.width() // 2, 1))
        if not top.isValid():
            top = self.indexAt(QPoint(grid.width() // 2, grid.height() // 2))
        if not top.isValid():
            return None
        columns = max(1, self.viewport().width() // grid.width())
        lines = self.viewport().height() // grid.height() + 2  # partly shown lines at the top and bottom
        return top.row(), min(model.rowCount() - 1, top.row() + columns * lines - 1)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:
        """The selected cells on screen. Qt's own looks at every selected row: Ctrl+A on 100,000 rows took
        0.35 s (3.4 s on a million); only the rows on screen can need a repaint."""
        rows = self.rows_on_screen()
        model = self.model()
        if rows is None or model is None:
            return QRegion(self.viewport().rect())  # not laid out yet: repainting everything is cheap and right
        viewport = self.viewport().rect()
        region = QRegion()
        for selection_range in ranges(selection):
            for row in range(max(rows[0], selection_range.top()), min(rows[1], selection_range.bottom()) + 1):
                rect = self.visualRect(model.index(row, 0))
                if rect.isValid() and rect.intersects(viewport):
                    region += rect
        return region

    # --- returning to a row after a reset ---------------------------------------------------

    def scroll_when_laid_out(
        self, row: int, hint: QAbstractItemView.ScrollHint = QAbstractItemView.ScrollHint.EnsureVisible
    ) -> None:
        """Scroll to `row` once the batched layout has placed it (at once if it has). Until then the viewport
        keeps its last picture: a refresh must not flash the top rows of a half-done layout first."""
        self.cancel_pending_scroll()
        self._pending_scroll = (row, hint)
        self.executeDelayedItemsLayout()  # the first batch now: the row may be in it
        if not self._apply_pending_scroll():
            self.viewport().setUpdatesEnabled(False)

    def cancel_pending_scroll(self) -> None:
        """Forget a scroll waiting for the layout (the user moved on, or the rows changed)."""
        self._pending_scroll = None
        if not self.viewport().updatesEnabled():
            self.viewport().setUpdatesEnabled(True)

    @property
    def scroll_pending(self) -> bool:
        """A scroll waits for the layout to reach its row."""
        return self._pending_scroll is not None

    def _apply_pending_scroll(self) -> bool:
        """Scroll if the pending row has its place now; True when nothing is left pending."""
        if self._pending_scroll is None:
            return True
        row, hint = self._pending_scroll
        model = self.model()
        if model is None or not 0 <= row < model.rowCount():
            self.cancel_pending_scroll()
            return True
        index = model.index(row, 0)
        # A screenful below it must be placed too: the scroll range ends at the last placed row, and a row
        # at its very end cannot be scrolled to the top (the view would stop a few lines short).
        grid = self.gridSize()
        columns = max(1, self.viewport().width() // max(1, grid.width()))
        lines = self.viewport().height() // max(1, grid.height()) + 2
        below = model.index(min(model.rowCount() - 1, row + columns * lines), 0)
        if not (self.rectForIndex(index).isValid() and self.rectForIndex(below).isValid()):
            if self.layout_complete():  # every row placed but this one: give up rather than stay frozen
                self.cancel_pending_scroll()
                return True
            return False
        self._pending_scroll = None
        self.updateGeometries()  # the scroll range must reach the row first
        self.scrollTo(index, hint)
        self.viewport().setUpdatesEnabled(True)
        self.viewport().update()
        return True

    def timerEvent(self, event: QTimerEvent) -> None:
        """After each batch of the layout: scroll to a pending row once it is placed."""
        super().timerEvent(event)
        if self._pending_scroll is not None:
            self._apply_pending_scroll()

    def reset(self) -> None:
        """The model was reset: a pending scroll named a row of the old rows."""
        self.cancel_pending_scroll()
        super().reset()

    def wheelEvent(self, event: QWheelEvent) -> None:
        """The user scrolls: a pending scroll must not pull them back."""
        self.cancel_pending_scroll()
        super().wheelEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """The user clicks: a pending scroll must not move the grid under the pointer."""
        self.cancel_pending_scroll()
        super().mousePressEvent(event)

    def selectAll(self) -> None:
        """Every row as one range. Qt's own selectAll asks the model about each row first (100,000 Python calls,
        0.1 s; a second at a million); selecting the range itself is instant."""
        model = self.model()
        selection_model = self.selectionModel()
        single = self.selectionMode() in (QListView.SelectionMode.NoSelection, QListView.SelectionMode.SingleSelection)
        if model is None or selection_model is None or not model.rowCount() or single:
            return
        selection_model.select(
            QItemSelection(model.index(0, 0), model.index(model.rowCount() - 1, 0)),
            QItemSelectionModel.SelectionFlag.ClearAndSelect,
        )

    def keyboardSearch(self, search: str) -> None:
        """Off: letters and digits are curation keys here, not type-to-find."""
        del search

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """0-5 rate, P/X/U flag, Delete trashes, Ctrl+Z undoes, Ctrl+Shift+Z or Ctrl+Y redoes, C compares, Ctrl+A
        selects every row."""
        key = event.key()
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undoRequested.emit()
        elif event.matches(QKeySequence.StandardKey.Redo) or self._is_redo(key, modifiers):
            self.redoRequested.emit()
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.selectAll()
        elif modifiers != Qt.KeyboardModifier.NoModifier:
            self.cancel_pending_scroll()  # Ctrl+End and the like: the user navigates
            super().keyPressEvent(event)
        elif Qt.Key.Key_0 <= key <= Qt.Key.Key_5:
            self.ratingRequested.emit(int(key) - int(Qt.Key.Key_0))
        elif key in self._FLAG_KEYS:
            self.flagRequested.emit(self._FLAG_KEYS[Qt.Key(key)])
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.deleteRequested.emit()
        elif key == Qt.Key.Key_C:
            self.compareRequested.emit()
        else:
            self.cancel_pending_scroll()  # arrows, Page Down, End: the user navigates
            super().keyPressEvent(event)
            return
        event.accept()

    @staticmethod
    def _is_redo(key: int, modifiers: Qt.KeyboardModifier) -> bool:
        """Both redo keys on every platform: the standard binding has only one of them on some."""
        control = Qt.KeyboardModifier.ControlModifier
        return (key == Qt.Key.Key_Z and modifiers == control | Qt.KeyboardModifier.ShiftModifier) or (
            key == Qt.Key.Key_Y and modifiers == control
        )

    # --- positions by item id ---------------------------------------------------------------

    def gallery_model(self) -> GalleryModel:
        """The model, which must be a GalleryModel."""
        model = self.model()
        assert isinstance(model, GalleryModel), "a GalleryView shows a GalleryModel"
        return model

    def top_visible_id(self) -> int | None:
        """The item at the top left of the grid, or None when the grid is scrolled to the top."""
        if self.verticalScrollBar().value() == 0:
            return None
        index = self.indexAt(QPoint(self.gridSize().width() // 2, self.gridSize().height() // 2))
        return self.gallery_model().id_of(index.row()) if index.isValid() else None

    def current_id(self) -> int | None:
        """The current item's id, or None."""
        index = self.currentIndex()
        return self.gallery_model().id_of(index.row()) if index.isValid() else None

    def position(self, selected: list[int] | None = None) -> GridPosition:
        """Where the grid is now (with `selected` instead of the selection and no current item, when given)."""
        if selected is not None:
            return GridPosition(self.top_visible_id(), None, list(selected))
        model = self.gallery_model()
        return GridPosition(self.top_visible_id(), self.current_id(), model.ids_in_spans(selected_spans(self)))

    def return_to(self, position: GridPosition) -> None:
        """After a reset: select the position's items that are still there and scroll back to its top item
        (or to the selection), once the batched layout has reached it."""
        model = self.gallery_model()
        rows = model.rows_of(position.selected)
        current_row = model.row_of(position.current) if position.current is not None else None
        if rows:
            self.select_rows(rows, current_row if current_row is not None and current_row in set(rows) else rows[0])
        anchor_row = model.row_of(position.anchor) if position.anchor is not None else None
        if anchor_row is not None:
            self.scroll_when_laid_out(anchor_row, QAbstractItemView.ScrollHint.PositionAtTop)
        elif rows:
            self.scroll_when_laid_out(min(rows))
        else:
            self.scrollToTop()

    def select_rows(self, rows: Iterable[int], current: int | None = None) -> None:
        """Select these rows (replacing the selection) and make `current` the current one."""
        model = self.model()
        selection_model: QItemSelectionModel | None = self.selectionModel()  # None before a model is set
        if model is None or selection_model is None:
            return
        rows = list(rows)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        selection_model.select(selection_of_rows(model, rows), flags)
        if current is None and rows:
            current = rows[0]
        if current is not None:
            selection_model.setCurrentIndex(model.index(current, 0), QItemSelectionModel.SelectionFlag.NoUpdate)
