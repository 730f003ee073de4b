"""The filter bar's saved filters: a menu button that saves the current filter under a name, applies a saved
one, and deletes one. The filters live in the store (`SavedFilterRepository`), so the CLI sees them too."""

from __future__ import annotations

import functools
from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMenu, QToolButton

from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryFilter
from studio.store.saved_filters import SavedFilterRepository
from studio.ui.widgets import named


class SavedFiltersButton(QToolButton):
    """ "Saved ▾": Save current filter…, then one entry per saved filter (click applies it), then Delete ▸."""

    applied = Signal(object, str)  # the saved GalleryFilter and its sort

    def __init__(
        self,
        store: Store,
        current: Callable[[], tuple[GalleryFilter, str]],
        ask_text: Callable[[str, str, str], str | None],
        confirm: Callable[[str, str], bool],
        notify: Callable[[str], None],
        error: Callable[[str, str], None],
    ) -> None:
        super().__init__()
        named(self, "savedFiltersButton", "Saved filters", "Save the current filter, or apply or delete a saved one")
        self.setText("Saved")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.repository = SavedFilterRepository(store)
        self.current = current
        self.ask_text, self.confirm, self.notify, self.error = ask_text, confirm, notify, error
        self.menu_ = QMenu(self)
        self.menu_.setObjectName("savedFiltersMenu")
        self.menu_.aboutToShow.connect(self.fill_menu)
        self.setMenu(self.menu_)

    def fill_menu(self) -> None:
        """The menu as it is now (read when it opens: a handful of rows)."""
        menu = self.menu_
        menu.clear()
        save = menu.addAction("Save current filter…", self.save_current)
        save.setObjectName("saveFilterAction")
        try:
            names = self.repository.names()
        except StudioError as error:
            menu.addAction(f"Saved filters cannot be read: {error}").setEnabled(False)
            return
        if names:
            menu.addSeparator()
        for name in names:
            menu.addAction(name, functools.partial(self.apply, name)).setObjectName(f"savedFilter:{name}")
        if names:
            menu.addSeparator()
            forget = menu.addMenu("Delete")
            forget.setObjectName("deleteSavedFilterMenu")
            for name in names:
                forget.addAction(name, functools.partial(self.delete, name))

    def names(self) -> list[str]:
        """The saved filters' names, in order."""
        return self.repository.names()

    def save_current(self) -> None:
        """Ask for a name, then keep the current filter and sort under it (asking before replacing one)."""
        try:
            filters, sort = self.current()
        except StudioError as error:
            self.error("Filter not saved", str(error))
            return
        name = (self.ask_text("Save filter", "Name of this filter:", "") or "").strip()
        if not name:
            return
        try:
            taken = name.casefold() in {n.casefold() for n in self.repository.names()}
            if taken and not self.confirm("Replace the saved filter?", f"A filter named '{name}' exists: replace it?"):
                return
            entry = self.repository.save(name, filters, sort, replace=taken)
        except StudioError as error:
            self.error("Filter not saved", str(error))
            return
        self.notify(f"Filter '{entry.name}' saved: the Saved menu applies it")

    def apply(self, name: str) -> None:
        """Show the saved filter `name` in the bar (the page reloads the grid)."""
        try:
            entry = self.repository.get(name)
        except StudioError as error:
            self.error("Saved filter not applied", str(error))
            return
        self.applied.emit(entry.filters, entry.sort)
        self.notify(f"Filter '{entry.name}' applied")

    def delete(self, name: str) -> None:
        """After asking: forget the saved filter `name` (the images are untouched)."""
        if not self.confirm("Delete the saved filter?", f"Forget the filter '{name}'? No image is changed."):
            return
        try:
            self.repository.delete(name)
        except StudioError as error:
            self.error("Saved filter not deleted", str(error))
            return
        self.notify(f"Saved filter '{name}' deleted")
