"""The Gallery page: browse, curate and export what the models made.

A virtualised thumbnail grid (`studio.ui.widgets.thumbnail_grid`) knows every matching id from the start
(read off the GUI thread) and reads entries in blocks as rows are shown, so 100,000 items open as fast as
ten and the last one is one jump away. Curation follows Lightroom: 0-5 rate the selection, P picks, X
rejects, U unflags, Delete moves to the trash and Ctrl+Z undoes the last change. A filter bar narrows the
grid; the detail pane shows how the selected image was made and edits its tags and note; two selected
images can be compared side by side, interpolated, or one sent to inpainting.
"""

from __future__ import annotations

import dataclasses
import functools
import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDate, QObject, QPoint, QRunnable, QSignalBlocker, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QCompleter,
    QDateEdit,
    QDialog,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine import curation
from studio.errors import StudioError
from studio.store.gallery import SORTS, GalleryEntry, GalleryFilter, GalleryRepository
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.widgets import ask_yes, named
from studio.ui.widgets.thumbnail_grid import (
    GalleryModel,
    GalleryView,
    StarRating,
    ThumbnailDelegate,
    ThumbnailLoader,
    first_selected_row,
    image_path,
    load_image,
    scale_crisp,
    selected_rows,
    selected_spans,
    selection_count,
)

ANY_DATE = QDate(2000, 1, 1)  # the date edits' "any" state: their minimum, shown as "any"
UNDO_DEPTH = 100
DETAIL_SIZE = 256
COMPARE_SIZE = 320
SORT_TITLES = {"newest": "Newest first", "oldest": "Oldest first", "rating": "Top rated"}
FLAG_TITLES = {"none": "Unflagged", "pick": "Pick", "reject": "Reject"}


@dataclass
class _Restore:
    """What a reload brings back once its rows arrive: the top left item, the current one and the selection."""

    anchor: int | None = None
    current: int | None = None
    selected: list[int] = field(default_factory=list)


@dataclass
class UndoStep:
    """One undoable change: what was done, to which items, and what they were before."""

    action: str  # "rate", "flag", "delete" or "restore"
    ids: list[int]
    previous: dict[int, Any] = field(default_factory=dict)


class _FacetSignals(QObject):
    """Lives in the GUI thread: facet counts computed in the pool arrive through it, queued."""

    ready = Signal(int, object)  # generation, facets dict
    failed = Signal(int, str)


class _FacetsTask(QRunnable):
    """Counts per model, family and tag; ~0.3 s at 100,000 items, so never on the GUI thread."""

    def __init__(self, repository: GalleryRepository, filters: GalleryFilter, generation: int,
                 signals: _FacetSignals) -> None:
        super().__init__()
        self.repository, self.filters, self.generation, self.signals = repository, filters, generation, signals

    def run(self) -> None:
        """In a pool thread: database reads only."""
        try:
            facets = self.repository.facets(self.filters)
        except Exception as error:  # noqa: BLE001 - the filter lists are a convenience: report, go on
            self.signals.failed.emit(self.generation, str(error))
            return
        self.signals.ready.emit(self.generation, facets)


def _local_time(value: datetime) -> str:
    """A stored (naive UTC) time in the user's time zone."""
    return value.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _day_start_utc(day: date) -> datetime:
    """Local midnight of `day` as the naive UTC the store compares with."""
    return datetime(day.year, day.month, day.day).astimezone().astimezone(UTC).replace(tzinfo=None)


def _parameters(entry: GalleryEntry) -> list[tuple[str, str]]:
    """How an item was made, as (label, value) rows."""
    settings = ", ".join(f"{key}={value}" for key, value in sorted(entry.params.items())) or "defaults"
    backend = entry.backend + (f" / {entry.provider}" if entry.provider else "")
    return [
        ("Model", entry.model), ("Family", entry.family), ("Operation", entry.operation),
        ("Seed", "none" if entry.seed is None else str(entry.seed)), ("Settings", settings),
        ("Backend", backend), ("Size", f"{entry.width} x {entry.height}"), ("Created", _local_time(entry.created_at)),
        ("File", entry.path),
    ]


class CompareView(QDialog):
    """Two items side by side at the same whole-pixel scale; the settings that differ are in bold."""

    def __init__(self, pick: Callable[[int], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "compareView", "Compare two images")
        self.setWindowTitle("Compare")
        self._pick = pick
        self.entries: list[GalleryEntry] = []
        layout = QGridLayout(self)
        self.titles: list[QLabel] = []
        self.images: list[QLabel] = []
        self.details: list[QLabel] = []
        self.pick_buttons: list[QPushButton] = []
        for side, name in enumerate(("Left", "Right")):
            title = named(QLabel(), f"compare{name}Title", f"{name} image title")
            image = named(QLabel(), f"compare{name}Image", f"{name} image")
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            image.setFixedSize(COMPARE_SIZE + 8, COMPARE_SIZE + 8)
            image.setFrameShape(QFrame.Shape.StyledPanel)
            detail = named(QLabel(), f"compare{name}Details", f"{name} image settings")
            detail.setTextFormat(Qt.TextFormat.RichText)
            detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            detail.setWordWrap(True)
            detail.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            button = named(QPushButton(f"Pick {name.lower()}"), f"comparePick{name}", f"Pick the {name.lower()} image")
            button.clicked.connect(lambda _=False, side=side: self._pick_side(side))
            layout.addWidget(title, 0, side)
            layout.addWidget(image, 1, side)
            layout.addWidget(detail, 2, side)
            layout.addWidget(button, 3, side)
            self.titles.append(title)
            self.images.append(image)
            self.details.append(detail)
            self.pick_buttons.append(button)
        close = named(QPushButton("Close"), "compareCloseButton", "Close the comparison")
        close.clicked.connect(self.close)
        layout.addWidget(close, 4, 1, Qt.AlignmentFlag.AlignRight)

    def show_pair(self, left: GalleryEntry, right: GalleryEntry,
                  images: list[tuple[QImage | None, str | None]]) -> None:
        """Show two items (their images already read, or the reason they could not be)."""
        self.entries = [left, right]
        rows = [dict(_parameters(left)), dict(_parameters(right))]
        # One scale for both, so equal-sized images compare pixel for pixel.
        sizes = [max(image.width(), image.height()) for image, _ in images if image is not None]
        box = COMPARE_SIZE if not sizes else max(1, COMPARE_SIZE // max(sizes)) * max(sizes)
        for side, entry in enumerate(self.entries):
            other = rows[1 - side]
            flag = {"pick": " · picked", "reject": " · rejected"}.get(entry.flag, "")
            self.titles[side].setText(f"<b>#{entry.id}</b> · {html.escape(entry.model)} · "
                                      f"{'★' * entry.rating or 'unrated'}{flag}")
            image, reason = images[side]
            if image is None:
                self.images[side].setPixmap(scale_crisp(QImage(), box))
                self.images[side].setText(f"image unavailable:\n{reason}")
            else:
                self.images[side].setText("")
                self.images[side].setPixmap(scale_crisp(image, min(box, COMPARE_SIZE)))
            lines = []
            for label, value in rows[side].items():
                text = html.escape(value)
                if other.get(label) != value and label not in ("File", "Created"):
                    text = f"<b>{text}</b>"
                lines.append(f"<tr><td style='color:gray;padding-right:8px'>{label}</td><td>{text}</td></tr>")
            self.details[side].setText("<table>" + "".join(lines) + "</table>")
        self.setWindowTitle(f"Compare #{left.id} and #{right.id}")

    def _pick_side(self, side: int) -> None:
        if len(self.entries) == 2:
            self._pick(self.entries[side].id)


class GalleryPage(QWidget):
    """The gallery: a virtualised grid with filters, Lightroom-style curation keys, details and compare."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.repository = GalleryRepository(context.store)
        self.setObjectName("galleryPage")
        self.setAccessibleName("Gallery")
        self.undo_stack: list[UndoStep] = []
        self.missing: set[int] = set()  # thumbnails that failed since the last refresh
        self._total: int | None = 0
        self._count_error = ""
        self.trash_mode = False
        self._stale = True
        self._closing = False
        self._shown: GalleryEntry | None = None
        self._facets_generation = 0
        self._restore: _Restore | None = None  # of the reload on its way
        # Facet counts (~0.3 s at 100,000) and the grid's id lists (~0.1 s): two threads, so a filter change
        # never waits behind a facet count.
        self._pool = QThreadPool(self)
        self._pool.setObjectName("gallery-queries")
        self._pool.setMaxThreadCount(2)
        self._facet_signals = _FacetSignals(self)
        self._facet_signals.ready.connect(self._facets_ready)
        self._facet_signals.failed.connect(self._facets_failed)
        self.compare_view: CompareView | None = None
        # Tests and scripts replace these to answer without a dialog.
        self.confirm: Callable[[str, str], bool] = functools.partial(ask_yes, self)
        self.ask_export_destination: Callable[[int], tuple[Path, bool] | None] = self._ask_export_destination

        self.loader = ThumbnailLoader(context.store, threads=2, parent=self)
        self.model = GalleryModel(context.store, self.loader, pool=self._pool, parent=self)
        self.model.thumbnailFailed.connect(self._thumbnail_failed)
        self.model.fetchFailed.connect(lambda reason: self.context.error("The gallery cannot be read", reason))
        self.model.queryLoaded.connect(self._query_loaded)
        self.model.queryFailed.connect(self._query_failed)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._build_filter_bar())
        layout.addLayout(self._build_action_bar())
        # On a line of its own: a long count (and the missing-files note) must never widen the window.
        self.count_label = named(QLabel(), "galleryCount", "Matching items")
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.count_label.setWordWrap(True)
        layout.addWidget(self.count_label)
        self.empty_hint = named(QLabel(), "galleryEmptyHint", "Why the gallery is empty")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setVisible(False)
        self.empty_hint.linkActivated.connect(lambda _link: self.clear_filters())
        layout.addWidget(self.empty_hint)

        self.view = named(GalleryView(), "galleryView", "Gallery images",
                          "0-5 rate, P pick, X reject, U unflag, Delete trash, Ctrl+Z undo, C compare")
        self.view.setModel(self.model)
        self.view.setItemDelegate(ThumbnailDelegate(self.view))
        self.view.ratingRequested.connect(self.rate_selection)
        self.view.flagRequested.connect(self.flag_selection)
        self.view.deleteRequested.connect(self._delete_key)
        self.view.undoRequested.connect(self.undo)
        self.view.compareRequested.connect(self.compare_selection)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.selectionModel().currentChanged.connect(self._selection_changed)

        self.splitter = named(QSplitter(Qt.Orientation.Horizontal), "gallerySplitter", "Grid and details")
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self._build_detail_pane())
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([760, 320])
        self.splitter.setCollapsible(0, False)
        layout.addWidget(self.splitter, 1)

        context.signals.galleryChanged.connect(self._gallery_changed)
        self._update_actions()
        self._show_entry(None)

    # --- building ---------------------------------------------------------------------------

    def _build_filter_bar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setSpacing(6)
        self.model_filter = named(QComboBox(), "modelFilter", "Filter by model")
        self.model_filter.addItem("All models", None)
        self.family_filter = named(QComboBox(), "familyFilter", "Filter by family")
        self.family_filter.addItem("All families", None)
        self.rating_filter = named(QComboBox(), "ratingFilter", "Filter by rating")
        self.rating_filter.addItem("Any rating", None)
        for stars in range(1, 6):
            self.rating_filter.addItem(f"≥ {stars} star{'s' if stars > 1 else ''}", stars)
        self.flag_filter = named(QComboBox(), "flagFilter", "Filter by flag")
        for title, flag in (("Any flag", None), ("Picks", "pick"), ("Rejects", "reject"), ("Unflagged", "none")):
            self.flag_filter.addItem(title, flag)
        self.tag_filter = named(QComboBox(), "tagFilter", "Filter by tag", "Type a tag and press Enter")
        self.tag_filter.setEditable(True)
        self.tag_filter.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.tag_filter.addItem("")
        self.tag_filter.lineEdit().setPlaceholderText("any tag")
        self.tag_filter.setMinimumContentsLength(8)
        self.since_filter = self._date_edit("sinceFilter", "Created on or after")
        self.until_filter = self._date_edit("untilFilter", "Created on or before")
        self.sort_combo = named(QComboBox(), "sortCombo", "Sort order")
        for sort in SORTS:
            self.sort_combo.addItem(SORT_TITLES[sort], sort)
        self.clear_filters_button = named(QToolButton(), "clearFiltersButton", "Clear every filter")
        self.clear_filters_button.setText("Clear")
        self.clear_filters_button.clicked.connect(self.clear_filters)
        for combo, width in ((self.model_filter, 12), (self.family_filter, 9), (self.rating_filter, 8),
                             (self.flag_filter, 8), (self.sort_combo, 9)):
            # A fixed width in characters: a 64-character model name must not push the window wider.
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(width)
            combo.currentIndexChanged.connect(self.apply_filters)
        self.tag_filter.activated.connect(self.apply_filters)
        self.tag_filter.lineEdit().editingFinished.connect(self._tag_typed)
        for edit in (self.since_filter, self.until_filter):
            edit.dateChanged.connect(self.apply_filters)
        # Explicit small minimums: the bar keeps its natural widths when there is room and squeezes (rather
        # than forcing the window wider) on a small screen.
        for widget in (self.model_filter, self.family_filter, self.rating_filter, self.flag_filter,
                       self.tag_filter, self.since_filter, self.until_filter):
            widget.setMinimumWidth(48)
        bar.addWidget(self.model_filter)
        bar.addWidget(self.family_filter)
        bar.addWidget(self.rating_filter)
        bar.addWidget(self.flag_filter)
        bar.addWidget(self.tag_filter)
        bar.addWidget(QLabel("from"))
        bar.addWidget(self.since_filter)
        bar.addWidget(QLabel("to"))
        bar.addWidget(self.until_filter)
        bar.addWidget(self.clear_filters_button)
        bar.addStretch(1)
        return bar

    def _date_edit(self, object_name: str, accessible_name: str) -> QDateEdit:
        edit = named(QDateEdit(), object_name, accessible_name, f"{accessible_name} (the earliest date means any)")
        edit.setCalendarPopup(True)
        edit.setMinimumDate(ANY_DATE)
        edit.setSpecialValueText("any")  # shown while the date is at its minimum
        edit.setDisplayFormat("yyyy-MM-dd")
        edit.setDate(ANY_DATE)
        return edit

    def _action(self, object_name: str, text: str, tip: str, slot: Callable[[], Any],
                checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setObjectName(object_name)
        action.setToolTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_action_bar(self) -> QHBoxLayout:
        self.compare_action = self._action("galleryCompareAction", "Compare", "Compare the two selected images (C)",
                                           self.compare_selection)
        self.interpolate_action = self._action("galleryInterpolateAction", "Interpolate between these two",
                                               "Open the two selected images in Interpolate",
                                               self.interpolate_selection)
        self.inpaint_action = self._action("galleryInpaintAction", "Inpaint this", "Open the selected image in Inpaint",
                                           self.inpaint_selection)
        self.export_action = self._action("galleryExportAction", "Export…", "Copy the selection to a new folder or zip",
                                          self.export_selection)
        self.delete_action = self._action("galleryDeleteAction", "Delete", "Move the selection to the trash (Delete)",
                                          self.delete_selection)
        self.restore_action = self._action("galleryRestoreAction", "Restore", "Take the selection out of the trash",
                                           self.restore_selection)
        self.undo_action = self._action("galleryUndoAction", "Undo", "Undo the last delete, rating or flag (Ctrl+Z)",
                                        self.undo)
        self.trash_action = self._action("galleryTrashAction", "Show trash", "Show the items in the trash",
                                         lambda: self.set_trash_mode(self.trash_action.isChecked()), checkable=True)
        self.empty_trash_action = self._action("galleryEmptyTrashAction", "Empty trash…",
                                               "Delete every item in the trash for good", self.empty_trash)
        bar = QHBoxLayout()
        bar.setSpacing(4)
        self.buttons: dict[str, QToolButton] = {}
        for action, name, accessible in (
            (self.compare_action, "galleryCompareButton", "Compare two images"),
            (self.interpolate_action, "galleryInterpolateButton", "Interpolate between the two selected images"),
            (self.inpaint_action, "galleryInpaintButton", "Inpaint the selected image"),
            (self.export_action, "galleryExportButton", "Export the selection"),
            (self.delete_action, "galleryDeleteButton", "Move the selection to the trash"),
            (self.restore_action, "galleryRestoreButton", "Restore the selection from the trash"),
            (self.undo_action, "galleryUndoButton", "Undo"),
            (self.trash_action, "galleryTrashToggle", "Show the trash"),
            (self.empty_trash_action, "galleryEmptyTrashButton", "Empty the trash"),
        ):
            button = named(QToolButton(), name, accessible)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setMinimumWidth(40)  # squeezes on a small screen; the tooltip keeps the whole name
            self.buttons[name] = button
            bar.addWidget(button)
            if name in ("galleryInpaintButton", "galleryUndoButton"):
                bar.addSpacing(12)
        bar.addStretch(1)
        bar.addWidget(QLabel("Sort"))
        self.sort_combo.setMinimumWidth(48)
        bar.addWidget(self.sort_combo)
        return bar

    def _build_detail_pane(self) -> QScrollArea:
        pane = QWidget()
        self.detail_pane = named(pane, "detailPane", "Selected image details")
        pane.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        layout = QVBoxLayout(pane)
        self.detail_title = named(QLabel(), "detailTitle", "Selected image")
        self.detail_title.setWordWrap(True)
        self.detail_image = named(QLabel(), "detailImage", "Selected image, enlarged")
        self.detail_image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.detail_image.setFixedSize(DETAIL_SIZE + 4, DETAIL_SIZE + 4)
        self.detail_image.setFrameShape(QFrame.Shape.StyledPanel)
        self.detail_status = named(QLabel(), "detailStatus", "Image problems")
        self.detail_status.setWordWrap(True)
        self.detail_status.setStyleSheet("color: #c0392b;")
        self.detail_params = named(QLabel(), "detailParams", "How the image was made")
        self.detail_params.setTextFormat(Qt.TextFormat.RichText)
        self.detail_params.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail_params.setWordWrap(True)
        self.detail_params.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)

        self.detail_rating = named(StarRating(), "detailRating", "Rating", "Click a star, or press 0-5")
        self.detail_rating.ratingChanged.connect(self._detail_rated)
        self.detail_flag = named(QComboBox(), "detailFlag", "Flag")
        for flag, title in FLAG_TITLES.items():
            self.detail_flag.addItem(title, flag)
        self.detail_flag.activated.connect(self._detail_flagged)

        self.tag_list = named(QListWidget(), "tagList", "Tags of the selected image")
        self.tag_list.setMaximumHeight(52)
        self.tag_edit = named(QLineEdit(), "tagEdit", "New tag", "Adds the tag to every selected image")
        self.tag_edit.setPlaceholderText("add a tag…")
        self.tag_edit.returnPressed.connect(self.add_tag)
        self.tag_completer = QCompleter([], self.tag_edit)
        self.tag_completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.tag_edit.setCompleter(self.tag_completer)
        self.add_tag_button = named(QPushButton("Add"), "addTagButton", "Add the tag to the selection")
        self.add_tag_button.clicked.connect(self.add_tag)
        self.remove_tag_button = named(QPushButton("Remove"), "removeTagButton",
                                       "Remove the chosen tag from the selection")
        self.remove_tag_button.clicked.connect(self.remove_tag)
        tag_row = QHBoxLayout()
        tag_row.addWidget(self.add_tag_button)
        tag_row.addWidget(self.remove_tag_button)
        tag_row.addStretch(1)

        self.note_edit = named(QPlainTextEdit(), "noteEdit", "Note")
        self.note_edit.setPlaceholderText("a note about this image…")
        self.note_edit.setMaximumHeight(70)
        self.note_edit.textChanged.connect(self._note_edited)
        self.save_note_button = named(QPushButton("Save note"), "saveNoteButton", "Save the note")
        self.save_note_button.clicked.connect(self.save_note)

        self.lineage_label = named(QLabel(), "lineageLabel", "Lineage", "Click an id to show that item")
        self.lineage_label.setTextFormat(Qt.TextFormat.RichText)
        self.lineage_label.setWordWrap(True)
        self.lineage_label.linkActivated.connect(self._lineage_clicked)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Rating", self.detail_rating)
        form.addRow("Flag", self.detail_flag)
        form.addRow("Tags", self.tag_list)
        form.addRow("", self.tag_edit)
        form.addRow("", tag_row)
        form.addRow("Note", self.note_edit)
        form.addRow("", self.save_note_button)
        form.addRow("Lineage", self.lineage_label)

        layout.addWidget(self.detail_title)
        layout.addWidget(self.detail_image, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.detail_status)
        layout.addWidget(self.detail_params)
        layout.addLayout(form)
        layout.addStretch(1)
        scroll = named(QScrollArea(), "detailScroll", "Details")
        scroll.setWidget(pane)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(200)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return scroll

    # --- loading ----------------------------------------------------------------------------

    @property
    def filters(self) -> GalleryFilter:
        """The filter bar as a GalleryFilter (a StudioError when its dates contradict each other)."""
        since = self.since_filter.date()
        until = self.until_filter.date()
        tag = self.tag_filter.currentText().strip() or None
        return GalleryFilter(
            model=self.model_filter.currentData(), family=self.family_filter.currentData(),
            min_rating=self.rating_filter.currentData(), flag=self.flag_filter.currentData(), tag=tag,
            since=None if since == ANY_DATE else _day_start_utc(since.toPython()),
            until=None if until == ANY_DATE else _day_start_utc(until.toPython() + timedelta(days=1)),
            trash=self.trash_mode,
        )

    @property
    def sort(self) -> str:
        """The sort combo's choice: newest, oldest or rating."""
        return str(self.sort_combo.currentData())

    def on_shown(self) -> None:
        """The page came on screen: load it the first time, and again if the gallery changed meanwhile."""
        if self._stale:
            self.refresh()

    def _gallery_changed(self) -> None:
        if self.isVisible():
            self.refresh()
        else:
            self._stale = True  # reloaded when next shown: no queries for a page nobody looks at

    def refresh(self) -> None:
        """Reload from the store, keeping the selection and the scroll position where they still exist."""
        self._reload(keep_position=True)
        self._start_facets()

    def apply_filters(self) -> None:
        """Show what the filter bar asks for, from the top."""
        self._reload(keep_position=False)

    def _tag_typed(self) -> None:
        if self.tag_filter.currentText().strip() != (self.model.filters.tag or ""):
            self.apply_filters()

    def clear_filters(self) -> None:
        """Every filter back to "any" (sort and trash stay), then one reload."""
        for combo in (self.model_filter, self.family_filter, self.rating_filter, self.flag_filter):
            with QSignalBlocker(combo):
                combo.setCurrentIndex(0)
        with QSignalBlocker(self.tag_filter):
            self.tag_filter.setCurrentIndex(0)
            self.tag_filter.setEditText("")
        for edit in (self.since_filter, self.until_filter):
            with QSignalBlocker(edit):
                edit.setDate(ANY_DATE)
        self.apply_filters()

    def _reload(self, keep_position: bool, select_ids: list[int] | None = None) -> None:
        """Ask for the filter bar's rows (off the GUI thread); `_query_loaded` puts the selection and the scroll
        position back when they arrive. `select_ids` are selected then instead of the current selection."""
        try:
            filters = self.filters
        except StudioError as error:
            self.count_label.setText(f"<span style='color:#c0392b'>{html.escape(str(error))}</span>")
            return
        restore = _Restore(selected=list(select_ids or []))
        if keep_position:
            if self.model.loading and self._restore is not None and select_ids is None:
                restore = self._restore  # the grid still shows the rows from before the reload on its way
            else:
                restore.anchor = self._top_visible_id()
                if select_ids is None:
                    restore.selected = self.selected_ids()
                    restore.current = self._current_id()
        self._restore = restore
        self._stale = False
        self.missing.clear()
        self.loader.forget_failures()
        near = [i for i in (restore.anchor, restore.current, *restore.selected[:1]) if i is not None]
        self.model.set_query(filters, self.sort, near)

    def _query_loaded(self) -> None:
        """The rows of the last reload arrived (the model was reset): select and scroll back."""
        restore, self._restore = self._restore or _Restore(), None
        rows = self.model.rows_of(restore.selected)
        current_row = self.model.row_of(restore.current) if restore.current is not None else None
        if rows:
            self.view.select_rows(rows, current_row if current_row is not None and current_row in set(rows)
                                  else rows[0])
        anchor_row = self.model.row_of(restore.anchor) if restore.anchor is not None else None
        if anchor_row is not None:
            self.view.scroll_when_laid_out(anchor_row, QAbstractItemView.ScrollHint.PositionAtTop)
        elif rows:
            self.view.scroll_when_laid_out(min(rows))
        else:
            self.view.scrollToTop()
        self._count()
        self._selection_changed()

    def _query_failed(self, reason: str) -> None:
        """The id list could not be read: the grid keeps its rows; the count line says why."""
        self._restore = None
        self._total, self._count_error = None, f"The gallery cannot be read: {reason}"
        self._update_count_label()
        self.context.error("The gallery cannot be read", reason)

    @property
    def loading(self) -> bool:
        """A reload is on its way (its rows have not replaced the grid's yet)."""
        return self.model.loading

    def _top_visible_id(self) -> int | None:
        """The item at the top left of the grid, or None when the grid is scrolled to the top."""
        if self.view.verticalScrollBar().value() == 0:
            return None
        index = self.view.indexAt(QPoint(self.view.gridSize().width() // 2, self.view.gridSize().height() // 2))
        return self.model.id_of(index.row()) if index.isValid() else None

    def _count(self) -> None:
        """The grid holds every matching row, so its row count is the count: no query."""
        self._total, self._count_error = self.model.rowCount(), ""
        self._update_count_label()

    def _update_count_label(self) -> None:
        if self._total is None:
            self.count_label.setText(html.escape(self._count_error))
            return
        total = self._total
        where = "in the trash" if self.trash_mode else "match" if self.model.filters.describe() else "in the gallery"
        text = f"{total:,} item{'s' if total != 1 else ''} {where}"
        selected = selection_count(self.view)
        if selected:
            text += f" · {selected:,} selected"
        if self.missing:
            text += (f" · <span style='color:#c0392b'>{len(self.missing):,} image"
                     f"{'s' if len(self.missing) != 1 else ''} missing or unreadable</span>")
        self.count_label.setText(text)
        self.count_label.setToolTip("Run `studio gallery check --repair` to tidy missing files" if self.missing else "")
        self._update_empty_hint(total)

    def _update_empty_hint(self, total: int) -> None:
        if total:
            self.empty_hint.setVisible(False)
            return
        if self.trash_mode:
            text = "The trash is empty."
        elif self.model.filters.describe():
            text = "No items match these filters. <a href='clear'>Clear the filters</a>."
        else:
            text = "No images yet: generate some on the Generate page, and they appear here."
        self.empty_hint.setText(text)
        self.empty_hint.setVisible(True)

    def _thumbnail_failed(self, item_id: int, reason: str) -> None:
        first = not self.missing
        self.missing.add(item_id)
        if first:  # one status message per reload, never a dialog per image
            self.context.notify(f"Some gallery images cannot be shown: {reason}")
        self._update_count_label()
        if self._shown is not None and self._shown.id == item_id:
            self._show_entry(self._shown)

    # --- facets (off the GUI thread) ----------------------------------------------------------

    def _start_facets(self) -> None:
        if self._closing:
            return
        self._facets_generation += 1
        self._pool.start(_FacetsTask(self.repository, GalleryFilter(trash=self.trash_mode),
                                     self._facets_generation, self._facet_signals))

    def _facets_ready(self, generation: int, facets: dict[str, dict[str, int]]) -> None:
        if generation != self._facets_generation or self._closing:
            return  # a newer request is on its way
        self._fill_combo(self.model_filter, facets.get("model", {}))
        self._fill_combo(self.family_filter, facets.get("family", {}))
        tags = facets.get("tag", {})
        current = self.tag_filter.currentText()
        with QSignalBlocker(self.tag_filter):
            self.tag_filter.clear()
            self.tag_filter.addItem("")
            for name in sorted(tags, key=str.casefold):
                self.tag_filter.addItem(name)
            self.tag_filter.setEditText(current)
        self.tag_completer.model().setStringList(sorted(tags, key=str.casefold))  # type: ignore[attr-defined]

    def _facets_failed(self, generation: int, reason: str) -> None:
        if generation == self._facets_generation:
            self.context.notify(f"Filter lists not updated: {reason}")

    @staticmethod
    def _fill_combo(combo: QComboBox, counts: dict[str, int]) -> None:
        """Options with their counts; the current choice stays, even if no item has it any more."""
        chosen = combo.currentData()
        with QSignalBlocker(combo):
            while combo.count() > 1:
                combo.removeItem(1)
            names = sorted(set(counts) | ({chosen} if chosen else set()), key=str.casefold)
            for name in names:
                combo.addItem(f"{name} ({counts.get(name, 0):,})", name)
            combo.setCurrentIndex(max(0, combo.findData(chosen)) if chosen else 0)
        combo.view().setMinimumWidth(combo.view().sizeHintForColumn(0) + 24)  # the list shows names whole

    # --- selection and details ---------------------------------------------------------------

    def selected_ids(self) -> list[int]:
        """The ids of the selected items, in grid order (every row's id is known: nothing is read)."""
        return self.model.ids_in_spans(selected_spans(self.view))

    def select_ids(self, ids: list[int]) -> None:
        """Select these items where they are in the grid (for scripts and tests)."""
        rows = self.model.rows_of(ids)
        self.view.select_rows(rows)
        if rows:
            self.view.scroll_when_laid_out(rows[0])  # right after a reload, the layout may not have reached it

    def _current_id(self) -> int | None:
        index = self.view.currentIndex()
        return self.model.id_of(index.row()) if index.isValid() else None

    def _selection_changed(self, *_args: object) -> None:
        count = selection_count(self.view)
        shown: GalleryEntry | None = None
        if count:
            current = self.view.currentIndex()
            on_current = current.isValid() and self.view.selectionModel().isSelected(current)
            row = current.row() if on_current else first_selected_row(self.view)
            shown = self.model.entry(row) if row is not None else None
        self._show_entry(shown, count)
        self._update_actions()
        self._update_count_label()

    def _update_actions(self) -> None:
        count = selection_count(self.view)
        live = not self.trash_mode
        self.compare_action.setEnabled(count == 2)
        self.interpolate_action.setEnabled(live and count == 2)
        self.inpaint_action.setEnabled(live and count == 1)
        self.export_action.setEnabled(live and count >= 1)
        self.delete_action.setEnabled(live and count >= 1)
        self.restore_action.setEnabled(not live and count >= 1)
        self.buttons["galleryDeleteButton"].setVisible(live)
        self.buttons["galleryRestoreButton"].setVisible(not live)
        self.undo_action.setEnabled(bool(self.undo_stack))
        if self.undo_stack:
            step = self.undo_stack[-1]
            self.undo_action.setToolTip(f"Undo: {step.action} of {len(step.ids)} item(s) (Ctrl+Z)")

    def _show_entry(self, entry: GalleryEntry | None, selected: int = 1) -> None:
        """Fill the detail pane with one item (or clear it)."""
        self._shown = entry
        editable = entry is not None and not entry.deleted
        for widget in (self.detail_rating, self.detail_flag, self.tag_edit, self.add_tag_button, self.note_edit):
            widget.setEnabled(editable)
        self.remove_tag_button.setEnabled(editable)
        if entry is None:
            self.detail_title.setText("<b>No image selected</b><br>Click an image; Shift or Ctrl adds more.")
            self.detail_image.clear()
            self.detail_status.clear()
            self.detail_params.clear()
            self.detail_rating.setValue(0)
            self.tag_list.clear()
            with QSignalBlocker(self.note_edit):
                self.note_edit.setPlainText("")
            self.save_note_button.setEnabled(False)
            self.lineage_label.clear()
            return
        extra = f" ({selected} selected)" if selected > 1 else ""
        state = " · in the trash" if entry.deleted else ""
        self.detail_title.setText(f"<b>#{entry.id}</b> · {html.escape(entry.model)}{extra}{state}")
        image, reason = load_image(image_path(self.store, entry))
        if image is None:
            self.detail_image.setText("image unavailable")
            self.detail_status.setText(f"Item {entry.id}: {reason}")
        else:
            self.detail_image.setPixmap(scale_crisp(image, DETAIL_SIZE))
            self.detail_status.clear()
        rows = "".join(f"<tr><td style='color:gray;padding-right:8px'>{label}</td><td>{html.escape(value)}</td></tr>"
                       for label, value in _parameters(entry))
        self.detail_params.setText(f"<table>{rows}</table>")
        self.detail_rating.setValue(entry.rating)
        with QSignalBlocker(self.detail_flag):
            self.detail_flag.setCurrentIndex(max(0, self.detail_flag.findData(entry.flag)))
        self.tag_list.clear()
        self.tag_list.addItems(list(entry.tags))
        if entry.collections:
            self.tag_list.setToolTip("Collections: " + ", ".join(entry.collections))
        with QSignalBlocker(self.note_edit):
            self.note_edit.setPlainText(entry.note)
        self.save_note_button.setEnabled(False)
        self.lineage_label.setText(self._lineage_html(entry.id))

    def _lineage_html(self, item_id: int) -> str:
        try:
            parents = self.repository.parents(item_id)
            children = self.repository.children(item_id)
        except StudioError as error:
            return html.escape(str(error))
        if not parents and not children:
            return "<span style='color:gray'>made from scratch; nothing made from it</span>"

        def links(pairs: list[tuple[int, str]]) -> str:
            return ", ".join(f"<a href='item:{i}'>#{i}</a> ({html.escape(role)})" for i, role in pairs)

        parts = []
        if parents:
            parts.append(f"made from {links(parents)}")
        if children:
            parts.append(f"used by {links(children)}")
        return "<br>".join(parts)

    def _lineage_clicked(self, link: str) -> None:
        if link.startswith("item:") and link[5:].isdigit():
            self.show_item(int(link[5:]))

    def show_item(self, item_id: int) -> None:
        """Select an item in the grid if it is there; else show it in the detail pane alone."""
        row = self.model.row_of(item_id)
        if row is not None:
            self.view.select_rows([row])
            self.view.scroll_when_laid_out(row)
            return
        try:
            entry = self.repository.get(item_id)
        except StudioError as error:
            self.context.notify(str(error))
            return
        self.view.clearSelection()
        self._show_entry(entry)
        self.detail_title.setText(self.detail_title.text() + "<br><i>not in the grid: filtered out</i>")

    # --- curation -----------------------------------------------------------------------------

    def _push_undo(self, step: UndoStep) -> None:
        self.undo_stack.append(step)
        del self.undo_stack[:-UNDO_DEPTH]
        self._update_actions()

    def _entries_of(self, ids: list[int], cached_only: bool = False) -> dict[int, GalleryEntry]:
        """Entries by id: those in the grid (read from the store unless `cached_only`), and the detail pane's
        item when it is not in the grid."""
        in_grid = self.model.ids_of_rows(self.model.rows_of(ids))
        found = self.model.cached_entries(in_grid) if cached_only else self.model.entries_of(in_grid)
        if self._shown is not None and self._shown.id in ids and self._shown.id not in found:
            found[self._shown.id] = self._shown
        return found

    def _target_ids(self) -> list[int]:
        ids = self.selected_ids()
        if not ids and self._shown is not None:
            ids = [self._shown.id]
        if not ids:
            self.context.notify("Select one or more images first")
        return ids

    def rate_selection(self, stars: int) -> None:
        """Give every selected item `stars` (0-5); undoable."""
        self.rate_ids(self._target_ids(), stars)

    def rate_ids(self, ids: list[int], stars: int, undoable: bool = True) -> None:
        """Rate items in the store and on the grid."""
        if not ids:
            return
        try:
            # What undo puts back: read from the store for rows not cached (a Ctrl+A selection has 100,000).
            previous = {i: e.rating for i, e in self._entries_of(ids).items()} if undoable else {}
            self.repository.rate(ids, stars)
        except StudioError as error:
            self.context.error("Rating not changed", str(error))
            return
        self._changed(ids, rating=stars)
        if undoable:
            self._push_undo(UndoStep("rate", ids, previous))
        self.context.notify(f"Rated {len(ids)} image{'s' if len(ids) != 1 else ''} {stars} star"
                            f"{'s' if stars != 1 else ''}")

    def flag_selection(self, flag: str) -> None:
        """Pick, reject or unflag every selected item; undoable."""
        self.flag_ids(self._target_ids(), flag)

    def flag_ids(self, ids: list[int], flag: str, undoable: bool = True) -> None:
        """Flag items in the store and on the grid."""
        if not ids:
            return
        try:
            previous = {i: e.flag for i, e in self._entries_of(ids).items()} if undoable else {}
            self.repository.set_flag(ids, flag)
        except StudioError as error:
            self.context.error("Flag not changed", str(error))
            return
        self._changed(ids, flag=flag)
        if undoable:
            self._push_undo(UndoStep("flag", ids, previous))
        word = {"pick": "Picked", "reject": "Rejected", "none": "Unflagged"}[flag]
        self.context.notify(f"{word} {len(ids)} image{'s' if len(ids) != 1 else ''}")

    def _changed(self, ids: list[int], **changes: Any) -> None:
        """Mirror a store change on the grid, the detail pane and an open comparison."""
        self.model.update_entries(ids, **changes)
        if self._shown is not None and self._shown.id in ids:
            self._show_entry(dataclasses.replace(self._shown, **changes), selection_count(self.view))
        if self.compare_view is not None and self.compare_view.isVisible():
            entries = self._entries_of([e.id for e in self.compare_view.entries])
            if len(entries) == 2:
                self._open_compare([entries[e.id] for e in self.compare_view.entries])

    def _detail_rated(self, stars: int) -> None:
        if self._shown is not None:
            self.rate_ids([self._shown.id], stars)

    def _detail_flagged(self, _index: int) -> None:
        if self._shown is not None:
            self.flag_ids([self._shown.id], str(self.detail_flag.currentData()))

    def _delete_key(self) -> None:
        if self.trash_mode:
            self.context.notify("These items are in the trash already: Restore puts them back, "
                                "Empty trash removes them for good")
        else:
            self.delete_selection()

    def delete_selection(self) -> None:
        """Move the selected items to the trash (Ctrl+Z brings them back)."""
        ids = self.selected_ids()
        if not ids:
            self.context.notify("Select the images to delete first")
            return
        first_row = first_selected_row(self.view) or 0
        try:
            self.repository.delete(ids)
        except (StudioError, OSError) as error:
            self.context.error("Nothing deleted", str(error))
            return
        self.model.remove_ids(ids)
        self._count()
        self._push_undo(UndoStep("delete", ids))
        if self.model.rowCount():
            self.view.select_rows([min(first_row, self.model.rowCount() - 1)])
        self._selection_changed()
        self.context.notify(f"Moved {len(ids)} image{'s' if len(ids) != 1 else ''} to the trash (Ctrl+Z to undo)")

    def restore_selection(self) -> None:
        """Take the selected items out of the trash."""
        ids = self.selected_ids()
        if not ids:
            return
        try:
            self.repository.undelete(ids)
        except (StudioError, OSError) as error:
            self.context.error("Nothing restored", str(error))
            return
        self.model.remove_ids(ids)
        self._count()
        self._push_undo(UndoStep("restore", ids))
        self._selection_changed()
        self.context.notify(f"Restored {len(ids)} image{'s' if len(ids) != 1 else ''} from the trash")

    def undo(self) -> None:
        """Undo the last delete, restore, rating or flag change."""
        if not self.undo_stack:
            self.context.notify("Nothing to undo")
            return
        step = self.undo_stack.pop()
        try:
            if step.action in ("rate", "flag"):
                apply = self.repository.rate if step.action == "rate" else self.repository.set_flag
                by_value: dict[Any, list[int]] = {}
                for item_id, value in step.previous.items():
                    by_value.setdefault(value, []).append(item_id)
                for value, ids in by_value.items():
                    apply(ids, value)
                    self._changed(ids, **{"rating" if step.action == "rate" else "flag": value})
            elif step.action == "delete":
                self.repository.undelete(step.ids)
                self._reload(keep_position=True, select_ids=step.ids)
            else:
                self.repository.delete(step.ids)
                self._reload(keep_position=True)
        except (StudioError, OSError) as error:
            self.context.error("Cannot undo", str(error))
            self._update_actions()
            return
        self._update_actions()
        self.context.notify(f"Undone: {step.action} of {len(step.ids)} image{'s' if len(step.ids) != 1 else ''}")

    def add_tag(self) -> None:
        """Tag every selected item with the tag typed."""
        name = self.tag_edit.text().strip()
        ids = self._target_ids()
        if not name or not ids:
            return
        try:
            result = self.repository.tag(ids, name)
        except StudioError as error:
            self.context.error("Tag not added", str(error))
            return
        stored = str(result.details["tag"])
        self._retag(ids, lambda tags: tags | {stored})
        self.tag_edit.clear()
        self._start_facets()
        self.context.notify(f"Tagged {len(ids)} image{'s' if len(ids) != 1 else ''} '{stored}'")

    def remove_tag(self) -> None:
        """Remove the tag chosen in the list (or typed) from every selected item."""
        chosen = self.tag_list.currentItem()
        name = chosen.text() if chosen is not None else self.tag_edit.text().strip()
        ids = self._target_ids()
        if not name or not ids:
            self.context.notify("Choose a tag in the list to remove")
            return
        try:
            self.repository.untag(ids, name)
        except StudioError as error:
            self.context.error("Tag not removed", str(error))
            return
        key = name.casefold()
        self._retag(ids, lambda tags: {t for t in tags if t.casefold() != key})
        self._start_facets()
        self.context.notify(f"Removed '{name}' from {len(ids)} image{'s' if len(ids) != 1 else ''}")

    def _retag(self, ids: list[int], change: Callable[[set[str]], set[str]]) -> None:
        # Only the cached entries: the others are read from the store, tags and all, when they are shown.
        updated = [dataclasses.replace(entry, tags=tuple(sorted(change(set(entry.tags)), key=str.casefold)))
                   for entry in self._entries_of(ids, cached_only=True).values()]
        self.model.replace_entries(updated)
        shown = next((e for e in updated if self._shown is not None and e.id == self._shown.id), None)
        if shown is not None:
            self._show_entry(shown, selection_count(self.view))

    def _note_edited(self) -> None:
        self.save_note_button.setEnabled(self._shown is not None and
                                         self.note_edit.toPlainText() != self._shown.note)

    def save_note(self) -> None:
        """Store the note of the item in the detail pane."""
        if self._shown is None:
            return
        note = self.note_edit.toPlainText()
        try:
            self.repository.set_note(self._shown.id, note)
        except StudioError as error:
            self.context.error("Note not saved", str(error))
            return
        self._changed([self._shown.id], note=note)
        self.context.notify(f"Note saved on #{self._shown.id}")

    # --- trash --------------------------------------------------------------------------------

    def set_trash_mode(self, on: bool) -> None:
        """Show the trash (deleted items) instead of the gallery, or back."""
        self.trash_mode = on
        with QSignalBlocker(self.trash_action):
            self.trash_action.setChecked(on)
        self.trash_action.setText("Back to gallery" if on else "Show trash")
        self._reload(keep_position=False)
        self._start_facets()
        self._update_actions()

    def empty_trash(self) -> None:
        """After asking: delete every trashed item's file and row for good."""
        count = self.repository.count(GalleryFilter(trash=True))
        if not count:
            self.context.notify("The trash is empty")
            return
        if not self.confirm("Empty the trash?", f"{count:,} image{'s' if count != 1 else ''} will be deleted for "
                            "good, files and records. This cannot be undone."):
            return
        try:
            result = self.repository.empty_trash()
        except (StudioError, OSError) as error:
            self.context.error("Trash not emptied", str(error))
            return
        gone = set(result.ids)
        # Those items cannot come back: forget the steps that would try.
        self.undo_stack = [s for s in self.undo_stack if s.action != "delete" or not gone & set(s.ids)]
        self._reload(keep_position=False)
        self._update_actions()
        self.context.notify(f"Emptied the trash: {len(gone):,} image{'s' if len(gone) != 1 else ''} deleted")

    # --- other pages, compare, export ---------------------------------------------------------

    def interpolate_selection(self) -> None:
        """Open the two selected items in Interpolate."""
        ids = self.selected_ids()
        if len(ids) != 2:
            self.context.notify("Select exactly two images to interpolate between")
            return
        self.context.signals.useGalleryItems.emit("interpolate", ids)
        self.context.go_to("interpolate")

    def inpaint_selection(self) -> None:
        """Open the selected item in Inpaint."""
        ids = self.selected_ids()
        if len(ids) != 1:
            self.context.notify("Select one image to inpaint")
            return
        self.context.signals.useGalleryItems.emit("inpaint", ids)
        self.context.go_to("inpaint")

    def compare_selection(self) -> None:
        """Show the two selected items side by side."""
        if selection_count(self.view) != 2:
            self.context.notify("Select exactly two images to compare")
            return
        entries = [self.model.entry(row) for row in selected_rows(self.view)]
        if None in entries:
            self.context.notify("One of these images is no longer in the gallery: refresh it")
            return
        self._open_compare([entry for entry in entries if entry is not None])

    def _open_compare(self, entries: list[GalleryEntry]) -> None:
        if self.compare_view is None:
            self.compare_view = CompareView(lambda item_id: self.flag_ids([item_id], "pick"), self)
            self.compare_view.setWindowFlag(Qt.WindowType.Window, True)
        images = [load_image(image_path(self.store, entry)) for entry in entries]
        self.compare_view.show_pair(entries[0], entries[1], images)
        self.compare_view.show()
        self.compare_view.raise_()

    def export_selection(self) -> JobHandle | None:
        """Ask where, then copy the selected images and a manifest there as a job."""
        ids = self.selected_ids()
        if not ids:
            self.context.notify("Select the images to export first")
            return None
        choice = self.ask_export_destination(len(ids))
        if choice is None:
            return None
        destination, as_zip = choice
        store = self.store
        handle = self.context.runner.submit(
            f"Export {len(ids)} image{'s' if len(ids) != 1 else ''}",
            lambda token: curation.export_selection(store, destination, as_zip=as_zip, ids=ids, cancel=token),
        )
        handle.finished.connect(lambda result: self.context.notify(
            f"Exported {result.count} image{'s' if result.count != 1 else ''} to {result.destination}"))

        def failed(reason: str) -> None:
            handle.error_shown = True  # type: ignore[attr-defined] - the window then adds no second message
            self.context.error("Export failed", reason)

        handle.failed.connect(failed)
        return handle

    def _ask_export_destination(self, count: int) -> tuple[Path, bool] | None:
        zip_filter, folder_filter = "Zip archive (*.zip)", "New folder of PNG files (*)"
        suggested = Path.home() / f"studio-export-{datetime.now():%Y%m%d-%H%M}"
        chosen, selected_filter = QFileDialog.getSaveFileName(
            self, f"Export {count} image{'s' if count != 1 else ''}", str(suggested),
            f"{folder_filter};;{zip_filter}", folder_filter,
            QFileDialog.Option.DontConfirmOverwrite,  # export never overwrites: it says so itself
        )
        if not chosen:
            return None
        path = Path(chosen)
        as_zip = selected_filter == zip_filter or path.suffix.lower() == ".zip"
        if as_zip and path.suffix.lower() != ".zip":
            path = path.with_suffix(".zip")
        return path, as_zip

    def _context_menu(self, position: QPoint) -> None:
        index = self.view.indexAt(position)
        if index.isValid() and not self.view.selectionModel().isSelected(index):
            self.view.select_rows([index.row()])
        menu = QMenu(self)
        menu.setObjectName("galleryContextMenu")
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # one per right click: none pile up
        if not self.trash_mode:
            rate = menu.addMenu("Rate")
            for stars in range(6):
                rate.addAction(f"{stars} star{'s' if stars != 1 else ''}\t{stars}",
                               lambda stars=stars: self.rate_selection(stars))
            for flag, title, key in (("pick", "Pick", "P"), ("reject", "Reject", "X"), ("none", "Unflag", "U")):
                menu.addAction(f"{title}\t{key}", lambda flag=flag: self.flag_selection(flag))
            menu.addSeparator()
        for action in (self.compare_action, self.interpolate_action, self.inpaint_action, self.export_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.restore_action if self.trash_mode else self.delete_action)
        menu.addAction(self.undo_action)
        menu.popup(self.view.viewport().mapToGlobal(position))

    # --- dropped PNGs -------------------------------------------------------------------------

    def restore_settings_from(self, path: Path, quiet: bool = False) -> bool:
        """Put a Studio PNG's settings back in Generate; False (and, unless quiet, why) when it is not one."""
        try:
            metadata = curation.read_metadata(Path(path))
        except StudioError as error:
            if not quiet:
                self.context.error("Not a Studio image", str(error))
            return False
        metadata.pop("_pixels", None)
        self.context.signals.restoreGenerateSettings.emit(metadata)
        self.context.go_to("generate")
        seed = metadata.get("seed")
        self.context.notify(f"Settings of {Path(path).name} restored: model {metadata['model']}"
                            + (f", seed {seed}" if seed is not None else ""))
        return True

    # --- closing ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the thumbnail, entry, id-list and facet workers and wait for them (the window calls this on close)."""
        self._closing = True
        self.model.shutdown()
        self.loader.shutdown()
        self._pool.clear()
        self._pool.waitForDone(10_000)
        if self.compare_view is not None:
            self.compare_view.close()
