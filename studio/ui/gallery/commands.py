"""The gallery's undoable changes as `QUndoCommand`s: rate, flag, tag, untag, delete (to the trash) and restore.

A command changes the store through `GalleryRepository` and asks its editor (the page) to show the change.
`GalleryUndoStack.run` does the change first and pushes the command only when it worked (a push drops the
redo history, so a failed change must never reach the stack); a redo or undo that fails marks its command
obsolete, so the stack drops it and nothing half-done can be undone (or redone) later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand, QUndoStack

from studio.errors import StudioError
from studio.store.gallery import GalleryEntry, GalleryRepository
from studio.store.gallery_values import name_key, validate_name


class GalleryEditor(Protocol):
    """What a command needs from the page: the store, the entries, and ways to show a change or a failure."""

    repository: GalleryRepository

    def entries_of(self, ids: list[int]) -> dict[int, GalleryEntry]:
        """The items by id, as they are now (read from the store where the grid has not read them)."""
        ...

    def show_changed(self, ids: list[int], **changes: Any) -> None:
        """Mirror a change of fields (rating, flag) on the grid, the detail pane and a comparison."""
        ...

    def show_retagged(self, ids: list[int], change: Callable[[set[str]], set[str]]) -> None:
        """Mirror a change of tags (`change` maps an item's tags to its new ones)."""
        ...

    def show_removed(self, ids: list[int], select_next: bool) -> None:
        """Take items off the grid (moved to or out of the trash); `select_next` selects the next one."""
        ...

    def show_returned(self, ids: list[int] | None) -> None:
        """Reload the grid where it is: items came back (then selected, when `ids` are given) or left."""
        ...

    def report_failure(self, title: str, reason: str) -> None:
        """Say why a change could not be made."""
        ...


def plural(count: int, word: str = "image") -> str:
    """'1 image', '3 images'."""
    return f"{count} {word}{'s' if count != 1 else ''}"


def tag_key(name: str) -> str:
    """The store's rule for when two tag names are the same tag (trimmed, NFC, casefolded); raises
    StudioError for a name the store refuses."""
    return name_key(validate_name(name))


def _has_tag(entry: GalleryEntry, key: str) -> bool:
    return any(name_key(tag) == key for tag in entry.tags)


def _without(key: str) -> Callable[[set[str]], set[str]]:
    return lambda tags: {t for t in tags if name_key(t) != key}


class GalleryCommand(QUndoCommand):
    """A change to some gallery items; `redo()` does (or redoes) it, `undo()` puts back what was there."""

    action: ClassVar[str] = ""  # "rate", "flag", "tag", "untag", "delete" or "restore"
    failure_title: ClassVar[str] = "Not changed"  # when doing it the first time fails

    def __init__(self, editor: GalleryEditor, ids: Iterable[int]) -> None:
        self.ids = list(ids)
        super().__init__(f"{self.action} of {plural(len(self.ids))}")
        self.editor = editor
        self.repository = editor.repository
        self.failed = False  # the last redo() or undo() failed (a plain attribute: it outlives a dropped command)
        self._done_once = False
        self._pushing = False  # done already, being pushed: the redo() push runs must not do it again

    def skip_next_redo(self) -> None:
        """The change is done already: the next redo() (the one a push runs) does nothing."""
        self._pushing = True

    @property
    def message(self) -> str:
        """What the status bar says once the change is done."""
        return f"Done: {self.text()}"

    def apply(self) -> None:
        """Make the change in the store and show it (raises StudioError or OSError when it cannot)."""
        raise NotImplementedError

    def revert(self) -> None:
        """Put back what `apply` changed, and show it."""
        raise NotImplementedError

    def redo(self) -> None:
        """Do the change (the first time) or do it again (after an undo)."""
        if self._pushing:
            self._pushing = False
            return
        first = not self._done_once
        self._done_once = True
        self.failed = False
        try:
            self.apply()
        except (StudioError, OSError) as error:
            self.failed = True
            self.setObsolete(True)  # the stack drops it: there is nothing to undo
            self.editor.report_failure(self.failure_title if first else "Cannot redo", str(error))

    def undo(self) -> None:
        """Put things back as they were before the change."""
        self.failed = False
        try:
            self.revert()
        except (StudioError, OSError) as error:
            self.failed = True
            self.setObsolete(True)  # the stack drops it: a half-undone change must not be redone
            self.editor.report_failure("Cannot undo", str(error))


class _SetFieldCommand(GalleryCommand):
    """Set one field (rating or flag) of every item; undo gives each item its own earlier value back."""

    field: ClassVar[str] = ""

    def __init__(self, editor: GalleryEditor, ids: Iterable[int], value: Any, remember: bool = True) -> None:
        super().__init__(editor, ids)
        self.value = value
        self.remember = remember  # False: never undone, so the earlier values need not be read
        self.previous: dict[int, Any] | None = None

    def _store(self, ids: list[int], value: Any) -> None:
        raise NotImplementedError

    def apply(self) -> None:
        """Read what undo puts back (the first time), then set the field."""
        if self.previous is None and self.remember:
            # Read from the store for rows not cached: a Ctrl+A selection has 100,000.
            self.previous = {i: getattr(e, self.field) for i, e in self.editor.entries_of(self.ids).items()}
        self._store(self.ids, self.value)
        self.editor.show_changed(self.ids, **{self.field: self.value})

    def revert(self) -> None:
        """One store call per earlier value."""
        by_value: dict[Any, list[int]] = {}
        for item_id, value in (self.previous or {}).items():
            by_value.setdefault(value, []).append(item_id)
        for value, ids in by_value.items():
            self._store(ids, value)
            self.editor.show_changed(ids, **{self.field: value})


class RateCommand(_SetFieldCommand):
    """Give items a star rating (0-5)."""

    action = "rate"
    field = "rating"
    failure_title = "Rating not changed"

    def _store(self, ids: list[int], value: Any) -> None:
        self.repository.rate(ids, value)

    @property
    def message(self) -> str:
        """'Rated 3 images 4 stars'."""
        return f"Rated {plural(len(self.ids))} {plural(self.value, 'star')}"


class FlagCommand(_SetFieldCommand):
    """Pick, reject or unflag items."""

    action = "flag"
    field = "flag"
    failure_title = "Flag not changed"

    def _store(self, ids: list[int], value: Any) -> None:
        self.repository.set_flag(ids, value)

    @property
    def message(self) -> str:
        """'Picked 2 images'."""
        word = {"pick": "Picked", "reject": "Rejected", "none": "Unflagged"}[self.value]
        return f"{word} {plural(len(self.ids))}"


class TagCommand(GalleryCommand):
    """Tag items; undo takes the tag off the items that did not have it before."""

    action = "tag"
    failure_title = "Tag not added"

    def __init__(self, editor: GalleryEditor, ids: Iterable[int], name: str) -> None:
        super().__init__(editor, ids)
        self.name = name
        self.stored = name  # the tag's name as the store keeps it (an existing tag keeps its own spelling)
        self.added: list[int] | None = None

    def apply(self) -> None:
        """Tag every item (items that have the tag already keep it)."""
        if self.added is None:
            key = tag_key(self.name)
            had = {i for i, e in self.editor.entries_of(self.ids).items() if _has_tag(e, key)}
            self.added = [i for i in self.ids if i not in had]
        result = self.repository.tag(self.ids, self.name)
        self.stored = str(result.details["tag"])
        stored = self.stored
        self.editor.show_retagged(self.ids, lambda tags: tags | {stored})

    def revert(self) -> None:
        """Untag the items this command tagged."""
        if self.added:
            self.repository.untag(self.added, self.stored)
            self.editor.show_retagged(self.added, _without(tag_key(self.stored)))

    @property
    def message(self) -> str:
        """ "Tagged 2 images 'keeper'"."""
        return f"Tagged {plural(len(self.ids))} '{self.stored}'"


class UntagCommand(GalleryCommand):
    """Take a tag off items; undo puts it back on the items that had it."""

    action = "untag"
    failure_title = "Tag not removed"

    def __init__(self, editor: GalleryEditor, ids: Iterable[int], name: str) -> None:
        super().__init__(editor, ids)
        self.name = name
        self.stored = name
        self.had: list[int] | None = None

    def apply(self) -> None:
        """Untag every item."""
        if self.had is None:
            key = tag_key(self.name)
            self.had = [i for i, e in self.editor.entries_of(self.ids).items() if _has_tag(e, key)]
        result = self.repository.untag(self.ids, self.name)
        self.stored = str(result.details["tag"])
        self.editor.show_retagged(self.ids, _without(tag_key(self.stored)))

    def revert(self) -> None:
        """Tag again the items that had the tag."""
        if self.had:
            self.repository.tag(self.had, self.stored)
            stored = self.stored
            self.editor.show_retagged(self.had, lambda tags: tags | {stored})

    @property
    def message(self) -> str:
        """ "Removed 'keeper' from 2 images"."""
        return f"Removed '{self.name}' from {plural(len(self.ids))}"


class DeleteCommand(GalleryCommand):
    """Move items to the trash (files to trash/, rows marked); undo brings them back, selected."""

    action = "delete"
    failure_title = "Nothing deleted"

    def apply(self) -> None:
        """To the trash, and off the grid."""
        self.repository.delete(self.ids)
        self.editor.show_removed(self.ids, select_next=True)

    def revert(self) -> None:
        """Out of the trash, back on the grid and selected."""
        self.repository.undelete(self.ids)
        self.editor.show_returned(self.ids)

    @property
    def message(self) -> str:
        """'Moved 2 images to the trash (Ctrl+Z to undo)'."""
        return f"Moved {plural(len(self.ids))} to the trash (Ctrl+Z to undo)"


class RestoreCommand(GalleryCommand):
    """Take items out of the trash; undo puts them back in."""

    action = "restore"
    failure_title = "Nothing restored"

    def apply(self) -> None:
        """Out of the trash, and off the trash's grid."""
        self.repository.undelete(self.ids)
        self.editor.show_removed(self.ids, select_next=False)

    def revert(self) -> None:
        """Back to the trash."""
        self.repository.delete(self.ids)
        self.editor.show_returned(None)

    @property
    def message(self) -> str:
        """'Restored 2 images from the trash'."""
        return f"Restored {plural(len(self.ids))} from the trash"


class GalleryUndoStack(QUndoStack):
    """The page's undo stack of `GalleryCommand`s; undo and redo pass over obsolete commands (their items left
    the trash for good) as if they were not there."""

    def __init__(self, limit: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setUndoLimit(limit)

    def run(self, command: GalleryCommand, undoable: bool = True) -> bool:
        """Do a change, pushed to be undone later unless `undoable` is False; False when it failed."""
        # Done before it is pushed: a push drops the commands above the index (the redo history), so only
        # a change that worked may be pushed; a failed one leaves the stack as it was.
        command.redo()
        if command.failed:
            return False
        if undoable:
            command.skip_next_redo()  # the push runs redo() once: it must not do the change again
            self.push(command)
        return True

    def step(self, undo: bool) -> tuple[str, bool] | None:
        """Undo (or redo) the next command: its text and whether it worked; None when there is nothing to do."""
        do = self.undo if undo else self.redo
        while True:
            command = self.command_at(self.index() - 1 if undo else self.index())
            if command is None or not command.isObsolete():
                break
            do()  # the stack drops an obsolete command without running it
        if command is None:
            return None
        text = command.text()
        do()
        return text, not command.failed

    def command_at(self, index: int) -> GalleryCommand | None:
        """The command at `index` of the stack, or None out of range."""
        command = self.command(index) if 0 <= index < self.count() else None
        return command if isinstance(command, GalleryCommand) else None

    def next_command(self, undo: bool) -> GalleryCommand | None:
        """The command undo (or redo) would run, passing over obsolete ones; None when there is none."""
        indexes = range(self.index() - 1, -1, -1) if undo else range(self.index(), self.count())
        return next((c for i in indexes if (c := self.command_at(i)) is not None and not c.isObsolete()), None)

    def forget_items(self, gone: set[int]) -> None:
        """Items are gone for good (the trash was emptied): every command about them becomes obsolete."""
        for index in range(self.count()):
            command = self.command_at(index)
            if command is not None and gone.intersection(command.ids):
                command.setObsolete(True)
