"""The Gallery page: browse, curate and export what the models made.

A virtualised thumbnail grid (`model`, `view`, `delegate`) knows every matching id from the start (read off
the GUI thread) and reads entries in blocks as rows are shown, so 100,000 items open as fast as ten and the
last one is one jump away. Curation follows Lightroom: 0-5 rate the selection, P picks, X rejects, U
unflags, Delete moves to the trash; each change is a `QUndoCommand` (`commands`), so Ctrl+Z undoes it and
Ctrl+Shift+Z or Ctrl+Y redoes it. The filter bar narrows the grid; the detail pane shows how the selected
image was made, edits its tags and note, and (where its dataset has an encoder) shows its nearest training
image and finds more like it; near-duplicate groups are found over the filter and the best of each kept; two
selected images can be compared side by side, interpolated, or one sent to inpainting. New items get their
embeddings in the background (`similarity`), never holding up a generation.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPoint, QSignalBlocker, Qt, QThreadPool
from PySide6.QtWidgets import QSplitter, QVBoxLayout, QWidget

from studio.errors import StudioError
from studio.store.gallery import GalleryEntry, GalleryFilter, GalleryRepository
from studio.ui.context import StudioContext
from studio.ui.gallery.actions import (
    GalleryActions,
    ask_export_destination,
    restore_generate_settings,
    start_export,
)
from studio.ui.gallery.commands import (
    DeleteCommand,
    FlagCommand,
    GalleryCommand,
    GalleryUndoStack,
    RateCommand,
    RestoreCommand,
    TagCommand,
    UntagCommand,
)
from studio.ui.gallery.compare import CompareView
from studio.ui.gallery.curation_controls import CurationControls
from studio.ui.gallery.delegate import ThumbnailDelegate
from studio.ui.gallery.detail import DetailPane
from studio.ui.gallery.duplicates import DuplicatesDialog
from studio.ui.gallery.filter_bar import FilterBar
from studio.ui.gallery.importing import ImportDrop
from studio.ui.gallery.model import GalleryModel
from studio.ui.gallery.similarity_controller import SimilarityController
from studio.ui.gallery.status import CountLine
from studio.ui.gallery.thumbnails import ThumbnailLoader
from studio.ui.gallery.view import (
    GalleryView,
    GridPosition,
    first_selected_row,
    selected_rows,
    selected_spans,
    selection_count,
)
from studio.ui.jobs import JobHandle
from studio.ui.widgets import ask_yes, named

UNDO_DEPTH = 100


class GalleryPage(QWidget):
    """The gallery: a virtualised grid with filters, Lightroom-style curation keys, undo, details and compare."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.repository = GalleryRepository(context.store)
        self.setObjectName("galleryPage")
        self.setAccessibleName("Gallery")
        self.undo_stack = GalleryUndoStack(UNDO_DEPTH, self)
        self.missing: set[int] = set()  # thumbnails that failed since the last refresh
        self._total: int | None = 0
        self._count_error = ""
        self.trash_mode = False
        self._stale = True
        self._closing = False
        self._restore: GridPosition | None = None  # of the reload on its way
        # Facet counts (~0.3 s at 100,000) and the grid's id lists (~0.1 s): two threads, so a filter change
        # never waits behind a facet count.
        self._pool = QThreadPool(self)
        self._pool.setObjectName("gallery-queries")
        self._pool.setMaxThreadCount(2)
        self.compare_view: CompareView | None = None
        # Tests and scripts replace these to answer without a dialog.
        self.confirm: Callable[[str, str], bool] = functools.partial(ask_yes, self)
        self.ask_export_destination: Callable[[int], tuple[Path, bool] | None] = functools.partial(
            ask_export_destination, self
        )

        self.loader = ThumbnailLoader(context.store, threads=2, parent=self)
        self.model = GalleryModel(context.store, self.loader, pool=self._pool, parent=self)
        self.model.thumbnailFailed.connect(self._thumbnail_failed)
        self.model.fetchFailed.connect(lambda reason: self.context.error("The gallery cannot be read", reason))
        self.model.queryLoaded.connect(self._query_loaded)
        self.model.queryFailed.connect(self._query_failed)

        self.filter_bar = FilterBar()
        self.filter_bar.changed.connect(self.apply_filters)
        self.filter_bar.tagTyped.connect(self._tag_typed)
        self.filter_bar.clear_filters_button.clicked.connect(self.clear_filters)
        # The filter lists are a convenience: a failed count is reported, and the page goes on.
        self.filter_bar.facetsFailed.connect(lambda reason: self.context.notify(f"Filter lists not updated: {reason}"))
        bar = self.filter_bar  # the page's names for its controls, as tests and scripts use them
        self.model_filter, self.family_filter = bar.model_filter, bar.family_filter
        self.rating_filter, self.class_filter = bar.rating_filter, bar.class_filter
        self.flag_filter, self.tag_filter, self.sort_combo = bar.flag_filter, bar.tag_filter, bar.sort_combo
        self.since_filter, self.until_filter = bar.since_filter, bar.until_filter
        self.memorised_filter, self.similar_chip = bar.memorised_filter, bar.similar_chip
        self.clear_filters_button = bar.clear_filters_button

        self.action_bar = GalleryActions(self)
        self._connect_actions()
        self.buttons = self.action_bar.buttons
        self.compare_action, self.interpolate_action = self.action_bar.compare, self.action_bar.interpolate
        self.inpaint_action, self.export_action = self.action_bar.inpaint, self.action_bar.export
        self.delete_action, self.restore_action = self.action_bar.delete, self.action_bar.restore
        self.undo_action, self.redo_action = self.action_bar.undo, self.action_bar.redo
        self.trash_action, self.empty_trash_action = self.action_bar.trash, self.action_bar.empty_trash
        self.duplicates_action = self.action_bar.duplicates

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.filter_bar)
        layout.addLayout(self.action_bar.bar(self.sort_combo))
        self.count_line = CountLine()
        self.count_label, self.empty_hint = self.count_line.count_label, self.count_line.empty_hint
        self.empty_hint.linkActivated.connect(lambda _link: self.clear_filters())
        layout.addWidget(self.count_label)
        layout.addWidget(self.empty_hint)

        self.view = named(
            GalleryView(),
            "galleryView",
            "Gallery images",
            "0-5 rate, P pick, X reject, U unflag, Delete trash, Ctrl+Z undo, Ctrl+Shift+Z redo, C compare",
        )
        self.view.setModel(self.model)
        self.view.setItemDelegate(ThumbnailDelegate(self.view))
        self.view.ratingRequested.connect(self.rate_selection)
        self.view.flagRequested.connect(self.flag_selection)
        self.view.deleteRequested.connect(self._delete_key)
        self.view.undoRequested.connect(self.undo)
        self.view.redoRequested.connect(self.redo)
        self.view.compareRequested.connect(self.compare_selection)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.view.selectionModel().currentChanged.connect(self._selection_changed)

        self.detail = DetailPane(context.store)
        self.detail.rated.connect(self._detail_rated)
        self.detail.flagged.connect(self._detail_flagged)
        self.detail.addTagRequested.connect(self.add_tag)
        self.detail.removeTagRequested.connect(self.remove_tag)
        self.detail.saveNoteRequested.connect(self.save_note)
        self.detail.itemRequested.connect(self.show_item)
        self.filter_bar.facetsRead.connect(
            lambda facets: self.detail.set_tag_names(sorted(facets.get("tag", {}), key=str.casefold))
        )
        pane = self.detail  # the page's names for the pane's controls, as tests and scripts use them
        self.detail_pane, self.detail_title, self.detail_image = pane.detail_pane, pane.detail_title, pane.detail_image
        self.detail_status, self.detail_params = pane.detail_status, pane.detail_params
        self.detail_rating, self.detail_flag, self.tag_list = pane.detail_rating, pane.detail_flag, pane.tag_list
        self.tag_edit, self.add_tag_button = pane.tag_edit, pane.add_tag_button
        self.remove_tag_button, self.note_edit = pane.remove_tag_button, pane.note_edit
        self.save_note_button, self.lineage_label = pane.save_note_button, pane.lineage_label
        self.more_like_this_button, self.memorisation_panel = pane.similar_button, pane.memorisation

        self.splitter = named(QSplitter(Qt.Orientation.Horizontal), "gallerySplitter", "Grid and details")
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.detail)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([760, 320])
        self.splitter.setCollapsible(0, False)
        layout.addWidget(self.splitter, 1)

        # More like this, the nearest training image, near-duplicates; `similarity` runs the encoder's reads.
        self.encoder = SimilarityController(self)
        self.similarity = self.encoder.reads
        context.signals.galleryChanged.connect(self._gallery_changed)
        # Collections, saved filters, use settings, reproduce, make dataset (curation_controls).
        self.curation = CurationControls(self)
        self.import_drop = ImportDrop(self)  # images (of other tools) dropped on the page join the gallery
        self._update_actions()
        self.detail.show_entry(None)

    def _connect_actions(self) -> None:
        actions = self.action_bar
        for action, slot in (
            (actions.compare, self.compare_selection),
            (actions.export, self.export_selection),
            (actions.interpolate, self.interpolate_selection),
            (actions.undo, self.undo),
            (actions.inpaint, self.inpaint_selection),
            (actions.redo, self.redo),
            (actions.delete, self.delete_selection),
            (actions.empty_trash, self.empty_trash),
            (actions.restore, self.restore_selection),
        ):
            action.triggered.connect(lambda _checked=False, slot=slot: slot())
        actions.trash.triggered.connect(lambda _checked=False: self.set_trash_mode(actions.trash.isChecked()))

    # --- loading ----------------------------------------------------------------------------

    @property
    def filters(self) -> GalleryFilter:
        """The filter bar as a GalleryFilter (a StudioError when its dates contradict each other)."""
        return self.filter_bar.filters(trash=self.trash_mode)

    @property
    def sort(self) -> str:
        """The sort combo's choice: newest, oldest or rating."""
        return self.filter_bar.sort

    def on_shown(self) -> None:
        """The page came on screen: load it the first time, and again if the gallery changed meanwhile."""
        self.encoder.page_shown()  # the first time, items made before (or by the CLI) get their vectors
        if self._stale:
            self.refresh()

    def _gallery_changed(self) -> None:
        # New items (a generation finished) get their vectors from the encoder's controller, connected first.
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

    def _tag_typed(self, tag: str) -> None:
        if tag != (self.model.filters.tag or ""):
            self.apply_filters()

    def clear_filters(self) -> None:
        """Every filter back to "any" (sort and trash stay), then one reload."""
        self.filter_bar.clear()
        self.apply_filters()

    def _reload(self, keep_position: bool, select_ids: list[int] | None = None) -> None:
        """Ask for the filter bar's rows (off the GUI thread); `_query_loaded` puts the selection and the scroll
        position back when they arrive. `select_ids` are selected then instead of the current selection."""
        try:
            filters = self.filters
        except StudioError as error:
            self.count_line.show_error(str(error))
            return
        restore = GridPosition(selected=list(select_ids or []))
        if keep_position:
            if self.model.loading and self._restore is not None and select_ids is None:
                restore = self._restore  # the grid still shows the rows from before the reload on its way
            else:
                restore = self.view.position(select_ids)
        self._restore = restore
        self._stale = False
        self.missing.clear()
        self.loader.forget_failures()
        self.model.set_query(filters, self.sort, restore.near(), self.filter_bar.order)

    def _query_loaded(self) -> None:
        """The rows of the last reload arrived (the model was reset): select and scroll back."""
        restore, self._restore = self._restore or GridPosition(), None
        self.view.return_to(restore)
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
        return self.view.top_visible_id()

    def _count(self) -> None:
        """The grid holds every matching row, so its row count is the count: no query."""
        self._total, self._count_error = self.model.rowCount(), ""
        self._update_count_label()

    def _update_count_label(self) -> None:
        if self._total is None:
            self.count_line.show_failure(self._count_error)
        else:
            self.count_line.show(
                self._total,
                self.trash_mode,
                bool(self.model.filters.describe()),
                selection_count(self.view),
                len(self.missing),
            )

    def _thumbnail_failed(self, item_id: int, reason: str) -> None:
        first = not self.missing
        self.missing.add(item_id)
        if first:  # one status message per reload, never a dialog per image
            self.context.notify(f"Some gallery images cannot be shown: {reason}")
        self._update_count_label()
        if self.detail.entry is not None and self.detail.entry.id == item_id:
            self.detail.show_entry(self.detail.entry, self.detail.selected)

    def _start_facets(self) -> None:
        if not self._closing:
            self.filter_bar.read_facets(self.repository, self.trash_mode, self._pool)

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

    def _selection_changed(self, *_args: object) -> None:
        count = selection_count(self.view)
        shown: GalleryEntry | None = None
        if count:
            current = self.view.currentIndex()
            on_current = current.isValid() and self.view.selectionModel().isSelected(current)
            row = current.row() if on_current else first_selected_row(self.view)
            shown = self.model.entry(row) if row is not None else None
        # selectionChanged and currentChanged both come for one click: the pane (an image decode and lineage
        # reads) is filled once, when what it shows changes.
        if shown is not self.detail.entry or count != self.detail.selected:
            self.detail.show_entry(shown, count)
        self._update_actions()
        self._update_count_label()

    def _update_actions(self) -> None:
        self.action_bar.update(
            selection_count(self.view),
            self.trash_mode,
            self.undo_stack.next_command(undo=True),
            self.undo_stack.next_command(undo=False),
        )

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
        self.detail.show_entry(entry)
        self.detail.mark_outside_grid()

    # --- curation: every change a command on the undo stack ----------------------------------

    def _do(self, command: GalleryCommand, undoable: bool = True) -> bool:
        """Run a change (pushed on the undo stack unless `undoable` is False); False when it failed."""
        done = self.undo_stack.run(command, undoable)
        self._update_actions()
        if done:
            self.context.notify(command.message)
        return done

    def undo(self) -> None:
        """Undo the last rating, flag, tag, delete or restore (Ctrl+Z)."""
        self._step(undo=True)

    def redo(self) -> None:
        """Redo the change undone last (Ctrl+Shift+Z or Ctrl+Y)."""
        self._step(undo=False)

    def _step(self, undo: bool) -> None:
        stepped = self.undo_stack.step(undo)
        self._update_actions()
        if stepped is None:
            self.context.notify("Nothing to undo" if undo else "Nothing to redo")
        elif stepped[1]:
            self.context.notify(f"{'Undone' if undo else 'Redone'}: {stepped[0]}")

    def _target_ids(self) -> list[int]:
        ids = self.selected_ids()
        if not ids and self.detail.entry is not None:
            ids = [self.detail.entry.id]
        if not ids:
            self.context.notify("Select one or more images first")
        return ids

    def _in_trash(self) -> bool:
        """The trash is shown: its items cannot be rated or flagged (the keys do nothing but say so)."""
        if self.trash_mode:
            self.context.notify("Items in the trash cannot be rated or flagged: Restore them first")
        return self.trash_mode

    def rate_selection(self, stars: int) -> None:
        """Give every selected item `stars` (0-5); undoable."""
        if not self._in_trash():
            self.rate_ids(self._target_ids(), stars)

    def rate_ids(self, ids: list[int], stars: int, undoable: bool = True) -> None:
        """Rate items in the store and on the grid."""
        if ids:
            self._do(RateCommand(self, ids, stars, remember=undoable), undoable)

    def flag_selection(self, flag: str) -> None:
        """Pick, reject or unflag every selected item; undoable."""
        if not self._in_trash():
            self.flag_ids(self._target_ids(), flag)

    def flag_ids(self, ids: list[int], flag: str, undoable: bool = True) -> None:
        """Flag items in the store and on the grid."""
        if ids:
            self._do(FlagCommand(self, ids, flag, remember=undoable), undoable)

    def _detail_rated(self, stars: int) -> None:
        if self.detail.entry is not None:
            self.rate_ids([self.detail.entry.id], stars)

    def _detail_flagged(self, flag: str) -> None:
        if self.detail.entry is not None:
            self.flag_ids([self.detail.entry.id], flag)

    def add_tag(self) -> None:
        """Tag every selected item with the tag typed; undoable."""
        name = self.detail.typed_tag()
        ids = self._target_ids()
        if name and ids and self._do(TagCommand(self, ids, name)):
            self.tag_edit.clear()

    def remove_tag(self) -> None:
        """Remove the tag chosen in the list (or typed) from every selected item; undoable."""
        name = self.detail.chosen_tag()
        ids = self._target_ids()
        if not name or not ids:
            self.context.notify("Choose a tag in the list to remove")
            return
        self._do(UntagCommand(self, ids, name))

    def _delete_key(self) -> None:
        if self.trash_mode:
            self.context.notify(
                "These items are in the trash already: Restore puts them back, Empty trash removes them for good"
            )
        else:
            self.delete_selection()

    def delete_selection(self) -> None:
        """Move the selected items to the trash (Ctrl+Z brings them back)."""
        ids = self.selected_ids()
        if not ids:
            self.context.notify("Select the images to delete first")
            return
        self._do(DeleteCommand(self, ids))

    def restore_selection(self) -> None:
        """Take the selected items out of the trash (Ctrl+Z puts them back)."""
        ids = self.selected_ids()
        if ids:
            self._do(RestoreCommand(self, ids))

    def save_note(self) -> None:
        """Store the note of the item in the detail pane."""
        shown = self.detail.entry
        if shown is None:
            return
        note = self.detail.note()
        try:
            self.repository.set_note(shown.id, note)
        except StudioError as error:
            self.context.error("Note not saved", str(error))
            return
        self.show_changed([shown.id], note=note)
        self.context.notify(f"Note saved on #{shown.id}")

    # --- what the commands ask of the page (commands.GalleryEditor) -----------------------------

    def entries_of(self, ids: list[int], cached_only: bool = False) -> dict[int, GalleryEntry]:
        """Entries by id: those in the grid (read from the store unless `cached_only`), and the detail pane's
        item when it is not in the grid."""
        in_grid = self.model.ids_of_rows(self.model.rows_of(ids))
        found = self.model.cached_entries(in_grid) if cached_only else self.model.entries_of(in_grid)
        shown = self.detail.entry
        if shown is not None and shown.id in ids and shown.id not in found:
            found[shown.id] = shown
        if not cached_only and len(found) < len(ids):
            # Items outside the grid (a duplicate group found before the filter changed): read, so that an
            # undo has their earlier values too.
            rest = [i for i in ids if i not in found]
            found.update((entry.id, entry) for entry in self.repository.entries(rest))
        return found

    def show_changed(self, ids: list[int], **changes: Any) -> None:
        """Mirror a store change on the grid, the detail pane and an open comparison."""
        self.model.update_entries(ids, **changes)
        shown = self.detail.entry
        if shown is not None and shown.id in ids:
            self.detail.show_entry(dataclasses.replace(shown, **changes), selection_count(self.view))
        if self.compare_view is not None:
            self.compare_view.refresh(self.entries_of)

    def show_retagged(self, ids: list[int], change: Callable[[set[str]], set[str]]) -> None:
        """Mirror a change of tags on the grid and the detail pane, and count the tags again."""
        # Only the cached entries: the others are read from the store, tags and all, when they are shown.
        updated = [
            dataclasses.replace(entry, tags=tuple(sorted(change(set(entry.tags)), key=str.casefold)))
            for entry in self.entries_of(ids, cached_only=True).values()
        ]
        self.model.replace_entries(updated)
        shown = next((e for e in updated if self.detail.entry is not None and e.id == self.detail.entry.id), None)
        if shown is not None:
            self.detail.show_entry(shown, selection_count(self.view))
        self._start_facets()

    def show_removed(self, ids: list[int], select_next: bool) -> None:
        """Take items off the grid; with `select_next`, the item after them takes the first one's place."""
        rows = self.model.rows_of(ids)
        self.model.remove_ids(ids)
        self._count()
        if select_next and rows and self.model.rowCount():
            self.view.select_rows([min(min(rows), self.model.rowCount() - 1)])
        self._selection_changed()

    def show_returned(self, ids: list[int] | None) -> None:
        """Reload where the grid is (items came back or left), selecting `ids` when given."""
        self._reload(keep_position=True, select_ids=ids)

    def report_failure(self, title: str, reason: str) -> None:
        """A command could not be done or undone: say why."""
        self.context.error(title, reason)

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
        if not self.confirm(
            "Empty the trash?",
            f"{count:,} image{'s' if count != 1 else ''} will be deleted for "
            "good, files and records. This cannot be undone.",
        ):
            return
        try:
            result = self.repository.empty_trash()
        except (StudioError, OSError) as error:
            self.context.error("Trash not emptied", str(error))
            return
        gone = set(result.ids)
        self.undo_stack.forget_items(gone)  # those items cannot come back: undo and redo pass over their steps
        self._reload(keep_position=False)
        self._update_actions()
        self.context.notify(f"Emptied the trash: {len(gone):,} image{'s' if len(gone) != 1 else ''} deleted")

    # --- the encoder: more like this, nearest training image, near-duplicates -----------------

    def more_like_this(self, item_id: int) -> None:
        """Show the items most like `item_id` in the grid, nearest first, under a removable "Like #n" chip."""
        self.encoder.more_like_this(item_id)

    @property
    def duplicates_dialog(self) -> DuplicatesDialog | None:
        """The near-duplicates dialog; None before it was opened."""
        return self.encoder.duplicates_dialog

    # --- other pages, compare, export ---------------------------------------------------------

    def interpolate_selection(self) -> None:
        """Open the two selected items in Interpolate."""
        self._send_to("interpolate", 2, "Select exactly two images to interpolate between")

    def inpaint_selection(self) -> None:
        """Open the selected item in Inpaint."""
        self._send_to("inpaint", 1, "Select one image to inpaint")

    def _send_to(self, page_key: str, count: int, hint: str) -> None:
        ids = self.selected_ids()
        if len(ids) != count:
            self.context.notify(hint)
            return
        self.context.signals.useGalleryItems.emit(page_key, ids)
        self.context.go_to(page_key)

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
            self.compare_view = CompareView(self.store, lambda item_id: self.flag_ids([item_id], "pick"), self)
        self.compare_view.show_entries(entries)

    def export_selection(self) -> JobHandle | None:
        """Ask where, then copy the selected images and a manifest there as an engine job."""
        ids = self.selected_ids()
        if not ids:
            self.context.notify("Select the images to export first")
            return None
        choice = self.ask_export_destination(len(ids))
        return None if choice is None else start_export(self.context, self.store, ids, *choice)

    def _context_menu(self, position: QPoint) -> None:
        index = self.view.indexAt(position)
        if index.isValid() and not self.view.selectionModel().isSelected(index):
            self.view.select_rows([index.row()])
        menu = self.action_bar.context_menu(self, self.trash_mode, self.rate_selection, self.flag_selection)
        menu.popup(self.view.viewport().mapToGlobal(position))

    # --- dropped PNGs -------------------------------------------------------------------------

    def restore_settings_from(self, path: Path, quiet: bool = False) -> bool:
        """Put a Studio PNG's settings back in Generate; False (and, unless quiet, why) when it is not one."""
        return restore_generate_settings(self.context, path, quiet)

    # --- closing ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the thumbnail, entry, id-list and facet reads and wait for them (the window calls this on close)."""
        self._closing = True
        self.filter_bar.stop_reading()
        self.curation.shutdown()
        self.similarity.shutdown()
        self.model.shutdown()
        self.loader.shutdown()
        self._pool.waitForDone(10_000)
        if self.compare_view is not None:
            self.compare_view.close()
        if self.duplicates_dialog is not None:
            self.duplicates_dialog.close()
