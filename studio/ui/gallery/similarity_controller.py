"""The Gallery page's encoder features: more like this, the nearest training image, near-duplicate groups.

`SimilarityController` wires the page's detail pane, filter bar and duplicates action to `SimilarityReads`
(the reads themselves, off the GUI thread) and shows their answers on the page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio.errors import StudioError
from studio.ui.gallery.commands import FlagCommand
from studio.ui.gallery.duplicates import DuplicatesDialog
from studio.ui.gallery.similarity import DuplicateFindings, NearestTraining, SimilarityReads

if TYPE_CHECKING:
    from studio.ui.gallery.page import GalleryPage


class SimilarityController:
    """Owned by the page: asks the encoder's reads and puts their answers in the grid, pane and dialog."""

    def __init__(self, page: GalleryPage) -> None:
        self.page = page
        self.duplicates_dialog: DuplicatesDialog | None = None
        self._shown_once = False
        # The encoder's reads (more like this, nearest training image, duplicates, background embedding).
        self.reads = SimilarityReads(page.context.store, page)
        self.reads.embedded.connect(self._items_embedded)
        page.detail.similarRequested.connect(self.more_like_this)
        page.detail.itemShown.connect(self._item_shown)
        page.action_bar.duplicates.triggered.connect(lambda _checked=False: self.find_duplicates())
        # New items (a generation finished): their vectors are computed in the background, one round at a time.
        # Connected before the page's own slot, so the round is asked before the page reloads (as it always was).
        page.context.signals.galleryChanged.connect(self.reads.embed_in_background)
        # An encoder trained (or a dataset changed) may leave items without vectors: a round embeds them.
        page.context.signals.datasetsChanged.connect(self.reads.embed_in_background)

    def page_shown(self) -> None:
        """The page came on screen: the first time, items made before (or by the CLI) get their vectors."""
        if not self._shown_once:
            self._shown_once = True
            self.reads.embed_in_background()

    def more_like_this(self, item_id: int) -> None:
        """Show the items most like `item_id` in the grid, nearest first, under a removable "Like #n" chip."""
        context = self.page.context
        context.notify(f"Finding the items most like #{item_id}…")
        self.reads.similar(
            item_id,
            lambda ids: self._show_similar(item_id, ids),
            lambda reason: context.notify(f"No items like #{item_id}: {reason}", 10_000),
        )

    def _show_similar(self, item_id: int, ids: list[int]) -> None:
        page = self.page
        if page._closing:
            return
        page.filter_bar.set_similar(item_id, ids)
        page._reload(keep_position=False, select_ids=ids[:1])  # the nearest one selected, in the detail pane
        page.context.notify(f"{len(ids)} item{'s' if len(ids) != 1 else ''} like #{item_id}, nearest first")

    def _item_shown(self, item_id: int) -> None:
        """The detail pane shows another item: ask for its nearest training image (-1: none wanted)."""
        if item_id < 0:
            self.reads.forget_nearest()
            return
        detail = self.page.detail
        self.reads.nearest(item_id, self._nearest_found, lambda reason: detail.show_nearest_failure(item_id, reason))

    def _nearest_found(self, result: NearestTraining) -> None:
        self.page.detail.show_nearest(result.item_id, result.found, result.training_image)

    def _items_embedded(self, count: int) -> None:
        """A background round gave items their vectors: a memorised filter now knows about them."""
        page = self.page
        if page.memorised_filter.isChecked() and page.isVisible():
            page.refresh()

    def find_duplicates(self) -> None:
        """Group the near-identical items among those the filters show, in a dialog that can keep the best."""
        page = self.page
        if page.trash_mode:
            page.context.notify("Near-duplicates are looked for in the gallery, not in the trash")
            return
        try:
            filters = page.filters
        except StudioError as error:
            page.context.notify(str(error))
            return
        total = page.model.rowCount()
        scope = (
            f"the {total:,} item{'s' if total != 1 else ''} the filters show"
            if filters.describe()
            else f"all {total:,} item{'s' if total != 1 else ''} in the gallery"
        )
        if self.duplicates_dialog is None:
            self.duplicates_dialog = DuplicatesDialog(self._reject_duplicates, page)
        dialog = self.duplicates_dialog
        dialog.show_waiting(scope)
        self.reads.duplicates(
            filters, lambda findings: dialog.show_findings(findings, scope), lambda reason: dialog.show_failure(reason)
        )

    def _reject_duplicates(self, ids: list[int]) -> bool:
        """ "Keep the best, reject the rest": one flag change on the undo stack (Ctrl+Z gives each its flag back)."""
        page = self.page
        if page.trash_mode or not ids:
            return False
        return page._do(FlagCommand(page, ids, "reject"))

    def duplicate_findings(self) -> DuplicateFindings | None:
        """What the near-duplicates dialog shows (for scripts and tests); None before it was opened."""
        return self.duplicates_dialog.findings if self.duplicates_dialog is not None else None
