"""Images from other tools on the Gallery page: a drop imports them (`gallery import`), and the detail
pane shows what their tool wrote (prompt, settings) and why Studio cannot make them again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QWidget

from studio.engine.interchange.foreign import not_reproducible, tool_title
from studio.engine.interchange.importer import GalleryImportResult, import_gallery_images
from studio.store.gallery import GalleryEntry
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.operations import EngineOp

MAX_ROWS = 24  # settings rows shown; the rest stay in the row's metadata (`gallery show --json`)
MAX_SHOWN = 600  # characters of one value (a prompt can be long)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def import_summary(result: GalleryImportResult) -> str:
    """One line for the status bar: what the import did."""
    parts = [f"Imported {_plural(len(result.imported), 'image')}"]
    if result.duplicates:
        parts.append(f"{len(result.duplicates)} already in the gallery")
    if result.skipped:
        first = result.skipped[0]
        parts.append(f"{len(result.skipped)} skipped ({Path(first['path']).name}: {first['reason']})")
    if result.notes:
        parts.append(f"{_plural(len(result.notes), 'note')} (see the details of each image)")
    return ", ".join(parts)


class ImportDrop(QObject):
    """Makes the page a drop target: files and folders dropped on it are imported into the gallery.

    A single image of this gallery dropped back on it puts its settings in Generate, as a drop on the
    window does (it is already here: importing it would only skip it).
    """

    def __init__(self, page: Any) -> None:
        super().__init__(page)
        self.page = page
        self.context: StudioContext = page.context
        self.last_result: GalleryImportResult | None = None  # tests and scripts read it
        widget: QWidget = page
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Accept drags of files; import what is dropped."""
        if event.type() in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, QDragEnterEvent | QDropEvent)
            if event.mimeData().hasUrls():
                event.acceptProposedAction()
                return True
        elif event.type() == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
            if paths:
                event.acceptProposedAction()
                self.drop(paths)
                return True
        return super().eventFilter(watched, event)

    def drop(self, paths: list[Path]) -> JobHandle | None:
        """What a drop of `paths` on the page does; the import's handle (None when it restored settings)."""
        home = self.page.store.home.root.resolve()
        if len(paths) == 1 and paths[0].is_file() and paths[0].resolve().is_relative_to(home):
            self.page.restore_settings_from(paths[0])
            return None
        return self.import_paths(paths)

    def import_paths(self, paths: list[Path]) -> JobHandle:
        """Import files and folders as an engine job; the grid reloads and the status bar sums it up."""
        store = self.page.store
        return (
            EngineOp[GalleryImportResult](
                self.context,
                f"Import {_plural(len(paths), 'file or folder')}" if len(paths) != 1 else f"Import {paths[0].name}",
                lambda token: import_gallery_images(store, paths, token),
            )
            .success(self._imported)
            .failure(lambda reason: self.context.error("Import failed", reason))
            .run()
        )

    def _imported(self, result: GalleryImportResult) -> None:
        self.last_result = result
        self.context.notify(import_summary(result), 12_000)
        if result.imported:
            self.context.signals.galleryChanged.emit()


def imported_rows(entry: GalleryEntry, rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The detail rows of an imported item: its tool, prompt and settings, and why it cannot be made again."""
    origin = entry.origin or {}
    tool = str(origin.get("tool", "unknown"))
    if tool == "studio":  # another data home's image: Studio's own rows say how it was made
        return [("Imported", f"a Studio image ({origin.get('file', '')})"), *rows]
    shown: list[tuple[str, str]] = [("Made by", tool_title(tool) or "another tool"), ("Model", entry.model)]
    for key, label in (("prompt", "Prompt"), ("negative_prompt", "Negative prompt")):
        text = origin.get(key)
        if isinstance(text, str) and text:
            shown.append((label, text[:MAX_SHOWN]))
    settings = origin.get("settings")
    if isinstance(settings, dict):
        for key, value in list(settings.items())[:MAX_ROWS]:
            if key == "Size" or (key == "Model" and value == entry.model):
                continue  # the file's own size, and the model, have their rows already
            shown.append((str(key)[:40], str(value)[:MAX_SHOWN]))
    why = not_reproducible(origin)
    if why:
        shown.append(("Reproduce", f"cannot be reproduced: {why}"))
    notes = origin.get("notes")
    if isinstance(notes, list) and notes:
        shown.append(("Import notes", "; ".join(str(note) for note in notes[:5])))
    keep = {"Size", "Created", "File"}
    return shown + [(label, value) for label, value in rows if label in keep]
