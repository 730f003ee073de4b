"""The gallery's detail pane: the selected item enlarged, how it was made, its rating, flag, tags, note,
lineage, "more like this" and its nearest training image. The pane shows and asks; the page makes the changes
(undoable ones through its undo stack) and runs the encoder's reads."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QComboBox,
    QCompleter,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio.engine.families.conditioning import CLASS_OPTION
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryEntry, GalleryRepository
from studio.ui.gallery.importing import imported_rows
from studio.ui.gallery.memorisation import MemorisationPanel
from studio.ui.gallery.painting import scale_crisp
from studio.ui.gallery.reuse import ReuseButtons
from studio.ui.gallery.stars import StarRating
from studio.ui.gallery.thumbnails import image_path, load_image
from studio.ui.widgets import named

DETAIL_SIZE = 256
FLAG_TITLES = {"none": "Unflagged", "pick": "Pick", "reject": "Reject"}


def local_time(value: datetime) -> str:
    """A stored (naive UTC) time in the user's time zone."""
    return value.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def class_text(entry: GalleryEntry) -> str | None:
    """The class a conditional model made the item as, and how it came to be that class; None without one."""
    if entry.class_name is None:
        return None
    if entry.operation == "interpolate":
        return f"{entry.class_name} (the class the frame leans to most)"
    if CLASS_OPTION in entry.params and entry.params[CLASS_OPTION] is None:
        return f"{entry.class_name} (any class was asked for: drawn from the seed)"
    return entry.class_name


def parameter_rows(entry: GalleryEntry) -> list[tuple[str, str]]:
    """How an item was made, as (label, value) rows."""
    # The class asked for has its own row (with the class the item was made as).
    settings = (
        ", ".join(f"{key}={value}" for key, value in sorted(entry.params.items()) if key != CLASS_OPTION) or "defaults"
    )
    backend = entry.backend + (f" / {entry.provider}" if entry.provider else "")
    made_as = class_text(entry)
    rows = [
        ("Model", entry.model),
        ("Family", entry.family),
        ("Operation", entry.operation),
        ("Seed", "none" if entry.seed is None else str(entry.seed)),
        *([("Class", made_as)] if made_as is not None else []),
        ("Settings", settings),
        ("Backend", backend),
        ("Size", f"{entry.width} x {entry.height}"),
        ("Created", local_time(entry.created_at)),
        ("File", entry.path),
    ]
    return rows if entry.origin is None else imported_rows(entry, rows)  # made by another tool (or home)


class DetailPane(QScrollArea):
    """One item in detail, with its curation controls; signals say what the user asked for."""

    rated = Signal(int)  # stars chosen
    flagged = Signal(str)  # "pick", "reject" or "none" chosen
    addTagRequested = Signal()  # noqa: N815 - Qt naming: Add (or Enter in the tag edit)
    removeTagRequested = Signal()  # noqa: N815
    saveNoteRequested = Signal()  # noqa: N815
    itemRequested = Signal(int)  # noqa: N815 - an id in the lineage was clicked
    similarRequested = Signal(int)  # noqa: N815 - "More like this" was clicked for this item
    itemShown = Signal(int)  # noqa: N815 - the pane shows another item now (-1: none): its nearest image is asked

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.repository = GalleryRepository(store)
        self.entry: GalleryEntry | None = None  # the item shown
        self.selected = -1  # how many were selected when it was shown (-1: the pane was never filled)
        self.image: QImage | None = None  # the item's pixels as read for the pane (the memorisation panel shows them)
        named(self, "detailScroll", "Details")
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
        self.similar_button = named(
            QPushButton("More like this"),
            "moreLikeThisButton",
            "More like this",
            "Show the gallery items most like this one (nearest first), by the dataset's encoder",
        )
        self.similar_button.clicked.connect(self._similar_clicked)
        self.memorisation = MemorisationPanel()
        self.reuse = ReuseButtons()  # "Use these settings" and "Reproduce"

        self.detail_rating = named(StarRating(), "detailRating", "Rating", "Click a star, or press 0-5")
        self.detail_rating.ratingChanged.connect(self.rated)
        self.detail_flag = named(QComboBox(), "detailFlag", "Flag")
        for flag, title in FLAG_TITLES.items():
            self.detail_flag.addItem(title, flag)
        self.detail_flag.activated.connect(lambda _index: self.flagged.emit(str(self.detail_flag.currentData())))

        self.tag_list = named(QListWidget(), "tagList", "Tags of the selected image")
        self.tag_list.setMaximumHeight(52)
        self.tag_edit = named(QLineEdit(), "tagEdit", "New tag", "Adds the tag to every selected image")
        self.tag_edit.setPlaceholderText("add a tag…")
        self.tag_edit.returnPressed.connect(self.addTagRequested)
        self.tag_completer = QCompleter([], self.tag_edit)
        self.tag_completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.tag_edit.setCompleter(self.tag_completer)
        self.add_tag_button = named(QPushButton("Add"), "addTagButton", "Add the tag to the selection")
        self.add_tag_button.clicked.connect(self.addTagRequested)
        self.remove_tag_button = named(
            QPushButton("Remove"), "removeTagButton", "Remove the chosen tag from the selection"
        )
        self.remove_tag_button.clicked.connect(self.removeTagRequested)
        tag_row = QHBoxLayout()
        tag_row.addWidget(self.add_tag_button)
        tag_row.addWidget(self.remove_tag_button)
        tag_row.addStretch(1)

        self.note_edit = named(QPlainTextEdit(), "noteEdit", "Note")
        self.note_edit.setPlaceholderText("a note about this image…")
        self.note_edit.setMaximumHeight(70)
        self.note_edit.textChanged.connect(self._note_edited)
        self.save_note_button = named(QPushButton("Save note"), "saveNoteButton", "Save the note")
        self.save_note_button.clicked.connect(self.saveNoteRequested)

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
        layout.addWidget(self.similar_button, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.memorisation)
        layout.addWidget(self.reuse)
        layout.addWidget(self.detail_params)
        layout.addLayout(form)
        layout.addStretch(1)
        self.setWidget(pane)
        self.setWidgetResizable(True)
        self.setMinimumWidth(200)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    # --- what the user typed or chose ---------------------------------------------------------

    def typed_tag(self) -> str:
        """The tag typed in the tag edit, trimmed."""
        return self.tag_edit.text().strip()

    def chosen_tag(self) -> str:
        """The tag chosen in the list, else the one typed."""
        chosen = self.tag_list.currentItem()
        return chosen.text() if chosen is not None else self.typed_tag()

    def note(self) -> str:
        """The note as edited."""
        return self.note_edit.toPlainText()

    def set_tag_names(self, names: list[str]) -> None:
        """The tags the tag edit completes to."""
        self.tag_completer.model().setStringList(names)  # type: ignore[attr-defined]

    # --- showing ------------------------------------------------------------------------------

    def show_entry(self, entry: GalleryEntry | None, selected: int = 1) -> None:
        """Fill the pane with one item (or clear it); `selected` says how many are selected with it."""
        previous = self.entry.id if self.entry is not None else None
        self.reuse.show_entry(entry)
        self.entry = entry
        self.selected = selected
        self.similar_button.setEnabled(entry is not None and not entry.deleted)
        self.tag_list.setToolTip("")
        editable = entry is not None and not entry.deleted
        for widget in (self.detail_rating, self.detail_flag, self.tag_edit, self.add_tag_button, self.note_edit):
            widget.setEnabled(editable)
        self.remove_tag_button.setEnabled(editable)
        if entry is None:
            self.detail_title.setText("<b>No image selected</b><br>Click an image; Shift or Ctrl adds more.")
            self.detail_image.clear()
            self.image = None
            self.memorisation.clear()
            self.detail_status.clear()
            self.detail_params.clear()
            self.detail_rating.setValue(0)
            with QSignalBlocker(self.detail_flag):
                self.detail_flag.setCurrentIndex(max(0, self.detail_flag.findData("none")))
            self.tag_list.clear()
            with QSignalBlocker(self.note_edit):
                self.note_edit.setPlainText("")
            self.save_note_button.setEnabled(False)
            self.lineage_label.clear()
            if previous is not None:
                self.itemShown.emit(-1)
            return
        extra = f" ({selected} selected)" if selected > 1 else ""
        state = " · in the trash" if entry.deleted else ""
        self.detail_title.setText(f"<b>#{entry.id}</b> · {html.escape(entry.model)}{extra}{state}")
        image, reason = load_image(image_path(self.store, entry))
        self.image = image
        if image is None:
            self.detail_image.setText("image unavailable")
            self.detail_status.setText(f"Item {entry.id}: {reason}")
        else:
            self.detail_image.setPixmap(scale_crisp(image, DETAIL_SIZE))
            self.detail_status.clear()
        rows = "".join(
            f"<tr><td style='color:gray;padding-right:8px'>{label}</td><td>{html.escape(value)}</td></tr>"
            for label, value in parameter_rows(entry)
        )
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
        # A rating or a tag shows the same item again: its nearest training image is the same, not asked again.
        wanted = None if entry.deleted else entry.id  # an item in the trash is compared with nothing
        if entry.id != previous or self.memorisation.item_id != wanted:
            if wanted is None:
                self.memorisation.clear()
            else:
                self.memorisation.show_waiting(wanted)
            self.itemShown.emit(-1 if wanted is None else wanted)

    def mark_outside_grid(self) -> None:
        """Say that the item shown is not in the grid (the filters leave it out)."""
        self.detail_title.setText(self.detail_title.text() + "<br><i>not in the grid: filtered out</i>")

    def _note_edited(self) -> None:
        self.save_note_button.setEnabled(self.entry is not None and self.note_edit.toPlainText() != self.entry.note)

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

    def _similar_clicked(self) -> None:
        if self.entry is not None:
            self.similarRequested.emit(self.entry.id)

    def show_nearest(self, item_id: int, found: dict[str, object], training: QImage | None) -> None:
        """The nearest training image of an item arrived: shown beside the item if the pane still shows it."""
        if self.entry is not None and self.entry.id == item_id:
            self.memorisation.show_found(item_id, found, self.image, training)

    def show_nearest_failure(self, item_id: int, reason: str) -> None:
        """Why an item has no nearest training image (no encoder yet...): one line in the panel."""
        if self.entry is not None and self.entry.id == item_id:
            self.memorisation.show_message(item_id, reason)

    def _lineage_clicked(self, link: str) -> None:
        if link.startswith("item:") and link[5:].isdigit():
            self.itemRequested.emit(int(link[5:]))
