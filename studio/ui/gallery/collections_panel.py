"""The gallery's collections panel: every collection with its item count; create, rename and delete one
(its items stay), add the selection to the chosen one, and click one to open it as a filter.

The counts are read off the GUI thread (`QueryOp`); the changes are quick single-row writes made where the
user clicks, and the page is told (`itemsChanged`) so the grid and the detail pane show the new collections.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSignalBlocker, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
)

from studio.errors import StudioError
from studio.store.collections import CollectionRepository, CollectionSummary
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from studio.ui.gallery.commands import plural
from studio.ui.operations import QueryHandle, QueryOp
from studio.ui.widgets import named

ALL_ITEMS = "All items"


class CollectionsPanel(QFrame):
    """A list of collections ("All items" first) and New, Rename, Delete and Add-selection buttons."""

    opened = Signal(object)  # the collection chosen (a name), or None for every item
    itemsChanged = Signal()  # noqa: N815 - Qt naming: items joined a collection, or one was renamed or deleted
    readFailed = Signal(str)  # noqa: N815 - why the collections could not be listed

    def __init__(
        self,
        store: Store,
        selected_ids: Callable[[], list[int]],
        ask_text: Callable[[str, str, str], str | None],
        confirm: Callable[[str, str], bool],
        notify: Callable[[str], None],
        error: Callable[[str, str], None],
        pool: QThreadPool | None = None,
    ) -> None:
        super().__init__()
        named(self, "collectionsPanel", "Collections")
        self.repository = CollectionRepository(store)
        self.gallery = GalleryRepository(store)
        self.selected_ids = selected_ids
        self.ask_text, self.confirm, self.notify, self.error = ask_text, confirm, notify, error
        self._pool = pool
        self._reading: QueryHandle | None = None
        self.summaries: list[CollectionSummary] = []
        self.open_name: str | None = None  # the collection the grid shows (the page keeps this up to date)
        self._choose_next: str | None = None  # chosen once the next read lists it (a new or renamed one)
        title = QLabel("<b>Collections</b>")
        self.list = named(QListWidget(), "collectionsList", "Collections", "Click a collection to show only its items")
        self.list.itemClicked.connect(self._clicked)
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        self.new_button = self._button("newCollectionButton", "New…", "Create an empty collection")
        self.rename_button = self._button("renameCollectionButton", "Rename…", "Rename the chosen collection")
        self.delete_button = self._button(
            "deleteCollectionButton", "Delete…", "Delete the chosen collection (its images stay in the gallery)"
        )
        self.add_button = self._button(
            "addToCollectionButton", "Add selected", "Add the selected images to the chosen collection"
        )
        self.new_button.clicked.connect(self.create_collection)
        self.rename_button.clicked.connect(self.rename_chosen)
        self.delete_button.clicked.connect(self.delete_chosen)
        self.add_button.clicked.connect(self.add_selection)
        # Two buttons a row: the panel is narrow, and whole words read better than elided ones.
        edits = QGridLayout()
        edits.setSpacing(2)
        for index, button in enumerate((self.new_button, self.rename_button, self.delete_button, self.add_button)):
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            edits.addWidget(button, index // 2, index % 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(title)
        layout.addWidget(self.list, 1)
        layout.addLayout(edits)
        self.setMinimumWidth(150)
        self.show_summaries([])

    @staticmethod
    def _button(object_name: str, text: str, tip: str) -> QToolButton:
        button = named(QToolButton(), object_name, tip, tip)
        button.setText(text)
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        return button

    # --- reading -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Read the collections and their counts again (off the GUI thread)."""
        repository = self.repository
        self._reading = (
            QueryOp(self, repository.list, pool=self._pool)
            .latest_only("collections")
            .success(self.show_summaries)
            .failure(self.readFailed.emit)
            .run_in_background()
        )

    def stop_reading(self) -> None:
        """Drop a read on its way (the page closes)."""
        if self._reading is not None:
            self._reading.cancel()

    def show_summaries(self, summaries: list[CollectionSummary]) -> None:
        """List these collections; the chosen one stays chosen while it exists."""
        chosen, self._choose_next = self._choose_next or self.chosen(), None
        self.summaries = list(summaries)
        with QSignalBlocker(self.list):
            self.list.clear()
            every = QListWidgetItem(ALL_ITEMS)
            every.setData(Qt.ItemDataRole.UserRole, None)
            self.list.addItem(every)
            for summary in self.summaries:
                item = QListWidgetItem(f"{summary.name} ({summary.count:,})")
                item.setData(Qt.ItemDataRole.UserRole, summary.name)
                item.setToolTip(f"{summary.name}: {plural(summary.count)}")
                self.list.addItem(item)
            self.list.setCurrentRow(self._row_of(chosen))
        self._update_buttons()

    def _row_of(self, name: str | None) -> int:
        for row in range(self.list.count()):
            value = self.list.item(row).data(Qt.ItemDataRole.UserRole)
            if value is not None and name is not None and value.casefold() == name.casefold():
                return row
        return 0

    def chosen(self) -> str | None:
        """The collection chosen in the list (None: "All items" or nothing)."""
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def choose(self, name: str | None) -> None:
        """Make `name` the chosen (and open) row without a signal (the filter bar changed the collection)."""
        self.open_name = name
        with QSignalBlocker(self.list):
            self.list.setCurrentRow(self._row_of(name))
        self._update_buttons()

    @property
    def names(self) -> list[str]:
        """The collections listed, in order."""
        return [summary.name for summary in self.summaries]

    def _update_buttons(self) -> None:
        chosen = self.chosen() is not None
        self.rename_button.setEnabled(chosen)
        self.delete_button.setEnabled(chosen)
        self.add_button.setEnabled(chosen)

    def _clicked(self, item: QListWidgetItem) -> None:
        self.opened.emit(item.data(Qt.ItemDataRole.UserRole))

    # --- changes -----------------------------------------------------------------------------

    def _change(self, title: str, change: Callable[[], str], items_changed: bool, choose: str | None = None) -> bool:
        """Make a change; say what was done, or why not; list the collections again (choosing `choose`)."""
        try:
            message = change()
        except StudioError as error:
            self.error(title, str(error))
            return False
        self.notify(message)
        if choose is not None:
            self._choose_next = choose
        self.refresh()
        if items_changed:
            self.itemsChanged.emit()
        return True

    def create_collection(self) -> None:
        """Ask for a name, then create an empty collection (chosen once listed)."""
        name = (self.ask_text("New collection", "Name of the new collection:", "") or "").strip()
        if name:
            self._change(
                "Collection not created",
                lambda: f"Collection '{self.repository.create(name).name}' created: select images, then Add selected",
                False,
                name,
            )

    def rename_chosen(self) -> None:
        """Ask for a new name for the chosen collection; an open collection stays open under its new name."""
        old = self.chosen()
        if old is None:
            return
        new = (self.ask_text("Rename collection", f"New name of '{old}':", old) or "").strip()
        if not new or new == old:
            return
        was_open = self.open_name is not None and self.open_name.casefold() == old.casefold()
        renamed = self._change(
            "Collection not renamed",
            lambda: f"Collection '{old}' renamed '{self.repository.rename(old, new).name}'",
            True,
            new,
        )
        if renamed and was_open:
            self.opened.emit(new)

    def delete_chosen(self) -> None:
        """After asking: delete the chosen collection (its images stay in the gallery)."""
        name = self.chosen()
        if name is None:
            return
        count = next((s.count for s in self.summaries if s.name == name), 0)
        question = f"'{name}' holds {plural(count)}: they stay in the gallery, only the collection goes."
        if not self.confirm("Delete the collection?", question):
            return
        deleted = self._change(
            "Collection not deleted",
            lambda: f"Collection '{name}' deleted ({plural(self.repository.delete(name))} stay in the gallery)",
            True,
        )
        if deleted and self.open_name is not None and self.open_name.casefold() == name.casefold():
            self.opened.emit(None)

    def add_selection(self) -> None:
        """Add the selected images to the chosen collection."""
        name = self.chosen()
        ids = self.selected_ids()
        if name is None or not ids:
            self.notify("Choose a collection and select images first")
            return
        self._change(
            "Not added to the collection",
            lambda: f"Added {plural(len(ids))} to '{self.gallery.collect(ids, name).details['collection']}'",
            True,
        )
