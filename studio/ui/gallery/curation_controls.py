"""The gallery page's curation controls, built and connected in one place: the collections panel (left of the
grid), saved filters (in the filter bar), "Use these settings" and "Reproduce" (in the detail pane), and
"Make dataset…" from the selection (action bar and context menu).

The page makes one `CurationControls(page)` at the end of its constructor; dialogs are attributes that tests
and scripts replace to answer without one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QHBoxLayout, QInputDialog, QLineEdit, QWidget

from studio.store.gallery import GalleryEntry, GalleryFilter
from studio.ui.gallery.collections_panel import CollectionsPanel
from studio.ui.gallery.reuse import start_reproduce, use_settings
from studio.ui.gallery.saved_filters import SavedFiltersButton
from studio.ui.gallery.to_dataset import ask_dataset, start_to_dataset
from studio.ui.jobs import JobHandle

if TYPE_CHECKING:
    from studio.ui.gallery.page import GalleryPage


def ask_text(parent: QWidget, title: str, label: str, text: str) -> str | None:
    """One line of text from the user; None when cancelled."""
    answer, accepted = QInputDialog.getText(parent, title, label, QLineEdit.EchoMode.Normal, text)
    return answer if accepted else None


class CurationControls:
    """Builds the controls into the page's parts and connects them to the page."""

    def __init__(self, page: GalleryPage) -> None:
        self.page = page
        context = page.context
        # Tests and scripts replace these to answer without a dialog.
        self.ask_text: Callable[[str, str, str], str | None] = functools.partial(ask_text, page)
        self.ask_dataset: Callable[[int], tuple[str, str] | None] = functools.partial(ask_dataset, page)

        self.collections = CollectionsPanel(
            page.store,
            page.selected_ids,
            lambda *args: self.ask_text(*args),
            lambda *args: page.confirm(*args),
            context.notify,
            context.error,
            pool=page._pool,
        )
        self.collections.opened.connect(page.filter_bar.set_collection)
        self.collections.itemsChanged.connect(page.refresh)
        self.collections.readFailed.connect(lambda reason: context.notify(f"Collections not listed: {reason}"))
        page.splitter.insertWidget(0, self.collections)
        page.splitter.setCollapsible(0, True)
        page.splitter.setSizes([180, 680, 320])
        # The panel's counts are read whenever the filter lists are; its choice follows the grid's filter.
        page.filter_bar.facetsRead.connect(lambda _facets: self.collections.refresh())
        page.model.queryLoaded.connect(lambda: self.collections.choose(page.model.filters.collection))

        self.saved_filters = SavedFiltersButton(
            page.store,
            lambda: (page.filters, page.sort),
            lambda *args: self.ask_text(*args),
            lambda *args: page.confirm(*args),
            context.notify,
            context.error,
        )
        self.saved_filters.applied.connect(self.apply_saved)
        bar_layout = page.filter_bar.layout()
        assert isinstance(bar_layout, QHBoxLayout)  # the filter bar is one row
        bar_layout.insertWidget(bar_layout.indexOf(page.clear_filters_button), self.saved_filters)

        reuse = page.detail.reuse
        reuse.useRequested.connect(lambda entry: use_settings(context, page.store, entry))
        reuse.reproduceRequested.connect(self.reproduce)
        page.action_bar.to_dataset.triggered.connect(lambda _checked=False: self.to_dataset_selection())

    def apply_saved(self, filters: GalleryFilter, sort: str) -> None:
        """Show a saved filter in the bar and the grid."""
        self.page.filter_bar.set_filters(filters, sort)
        self.page.apply_filters()

    def reproduce(self, entry: GalleryEntry) -> JobHandle:
        """Make the item again in the engine thread; the detail pane says whether the pixels matched."""
        return start_reproduce(self.page.context, self.page.store, self.page.detail.reuse, entry)

    def to_dataset_selection(self) -> JobHandle | None:
        """Ask for a name and labels, then make a dataset of the selected images as an engine job."""
        ids = self.page.selected_ids()
        if not ids:
            self.page.context.notify("Select the images to make a dataset of first")
            return None
        choice = self.ask_dataset(len(ids))
        if choice is None:
            return None
        return start_to_dataset(self.page.context, self.page.store, ids, *choice)

    def shutdown(self) -> None:
        """Drop the collections read on its way (the page closes)."""
        self.collections.stop_reading()
