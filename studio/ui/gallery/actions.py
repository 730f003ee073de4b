"""The gallery page's actions: the action bar's buttons, the grid's context menu, and what leaves the page (an
export job and its destination dialog, a dropped PNG's settings sent to Generate). The page connects each
action to its slot and says when to enable them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QMenu, QToolButton, QWidget

from studio.engine import curation
from studio.errors import StudioError
from studio.store.database import Store
from studio.ui.context import StudioContext
from studio.ui.gallery.commands import GalleryCommand, plural
from studio.ui.jobs import JobHandle
from studio.ui.operations import EngineOp
from studio.ui.widgets import named

UNDO_TIP = "Undo the last delete, rating, flag or tag (Ctrl+Z)"
REDO_TIP = "Redo the change undone last (Ctrl+Shift+Z)"


def ask_export_destination(parent: QWidget, count: int) -> tuple[Path, bool] | None:
    """Ask for a new folder or a zip to export `count` images to; (path, as zip) or None when cancelled."""
    zip_filter, folder_filter = "Zip archive (*.zip)", "New folder of PNG files (*)"
    suggested = Path.home() / f"studio-export-{datetime.now():%Y%m%d-%H%M}"
    chosen, selected_filter = QFileDialog.getSaveFileName(
        parent,
        f"Export {plural(count)}",
        str(suggested),
        f"{folder_filter};;{zip_filter}",
        folder_filter,
        QFileDialog.Option.DontConfirmOverwrite,  # export never overwrites: it says so itself
    )
    if not chosen:
        return None
    path = Path(chosen)
    as_zip = selected_filter == zip_filter or path.suffix.lower() == ".zip"
    if as_zip and path.suffix.lower() != ".zip":
        path = path.with_suffix(".zip")
    return path, as_zip


def start_export(context: StudioContext, store: Store, ids: list[int], destination: Path, as_zip: bool) -> JobHandle:
    """Copy the items and a manifest to `destination` (a new folder, or a zip) as an engine job."""
    return (
        EngineOp[Any](
            context,
            f"Export {plural(len(ids))}",
            lambda token: curation.export_selection(store, destination, as_zip=as_zip, ids=ids, cancel=token),
        )
        .success(lambda result: context.notify(f"Exported {plural(result.count)} to {result.destination}"))
        .failure(lambda reason: context.error("Export failed", reason))
        .run()
    )


def restore_generate_settings(context: StudioContext, path: Path, quiet: bool = False) -> bool:
    """Put a dropped Studio PNG's settings back in Generate; False (and, unless quiet, why) when it is not one."""
    try:
        metadata = curation.read_metadata(Path(path))
    except StudioError as error:
        if not quiet:
            context.error("Not a Studio image", str(error))
        return False
    metadata.pop("_pixels", None)
    context.signals.restoreGenerateSettings.emit(metadata)
    context.go_to("generate")
    seed = metadata.get("seed")
    context.notify(
        f"Settings of {Path(path).name} restored: model {metadata['model']}"
        + (f", seed {seed}" if seed is not None else "")
    )
    return True


class GalleryActions:
    """Compare, interpolate, inpaint, export, delete, restore, undo, redo, trash, empty trash and find
    near-duplicates, as QActions owned by the page, and the tool buttons that show them."""

    def __init__(self, page: QWidget) -> None:
        def action(object_name: str, text: str, tip: str, checkable: bool = False) -> QAction:
            made = QAction(text, page)
            made.setObjectName(object_name)
            made.setToolTip(tip)
            made.setCheckable(checkable)
            return made

        self.compare = action("galleryCompareAction", "Compare", "Compare the two selected images (C)")
        self.interpolate = action(
            "galleryInterpolateAction", "Interpolate between these two", "Open the two selected images in Interpolate"
        )
        self.inpaint = action("galleryInpaintAction", "Inpaint this", "Open the selected image in Inpaint")
        self.export = action("galleryExportAction", "Export…", "Copy the selection to a new folder or zip")
        self.to_dataset = action(
            "galleryToDatasetAction", "Make dataset…", "Make a new dataset of the selected images (for training)"
        )
        self.delete = action("galleryDeleteAction", "Delete", "Move the selection to the trash (Delete)")
        self.restore = action("galleryRestoreAction", "Restore", "Take the selection out of the trash")
        self.undo = action("galleryUndoAction", "Undo", UNDO_TIP)
        self.redo = action("galleryRedoAction", "Redo", REDO_TIP)
        self.trash = action("galleryTrashAction", "Show trash", "Show the items in the trash", checkable=True)
        self.empty_trash = action("galleryEmptyTrashAction", "Empty trash…", "Delete every item in the trash for good")
        self.duplicates = action(
            "galleryDuplicatesAction",
            "Find near-duplicates…",
            "Group the near-identical items among those the filters show (by the datasets' encoders)",
        )
        self.buttons: dict[str, QToolButton] = {}

    def bar(self, sort_combo: QComboBox) -> QHBoxLayout:
        """The row of buttons, with the sort combo at its right end."""
        bar = QHBoxLayout()
        bar.setSpacing(4)
        for action, name, accessible in (
            (self.compare, "galleryCompareButton", "Compare two images"),
            (self.interpolate, "galleryInterpolateButton", "Interpolate between the two selected images"),
            (self.inpaint, "galleryInpaintButton", "Inpaint the selected image"),
            (self.export, "galleryExportButton", "Export the selection"),
            (self.to_dataset, "galleryToDatasetButton", "Make a dataset of the selection"),
            (self.delete, "galleryDeleteButton", "Move the selection to the trash"),
            (self.restore, "galleryRestoreButton", "Restore the selection from the trash"),
            (self.undo, "galleryUndoButton", "Undo"),
            (self.redo, "galleryRedoButton", "Redo"),
            (self.trash, "galleryTrashToggle", "Show the trash"),
            (self.empty_trash, "galleryEmptyTrashButton", "Empty the trash"),
            (self.duplicates, "galleryDuplicatesButton", "Find near-duplicates"),
        ):
            button = named(QToolButton(), name, accessible)
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setMinimumWidth(40)  # squeezes on a small screen; the tooltip keeps the whole name
            self.buttons[name] = button
            bar.addWidget(button)
            if name in ("galleryInpaintButton", "galleryRedoButton", "galleryEmptyTrashButton"):
                bar.addSpacing(12)
        bar.addStretch(1)
        bar.addWidget(QLabel("Sort"))
        bar.addWidget(sort_combo)
        return bar

    def update(
        self, selected: int, trash_mode: bool, next_undo: GalleryCommand | None, next_redo: GalleryCommand | None
    ) -> None:
        """Enable what makes sense for `selected` items, in the gallery or the trash, and what can be undone."""
        live = not trash_mode
        self.compare.setEnabled(selected == 2)
        self.interpolate.setEnabled(live and selected == 2)
        self.inpaint.setEnabled(live and selected == 1)
        self.export.setEnabled(live and selected >= 1)
        self.to_dataset.setEnabled(live and selected >= 1)
        self.delete.setEnabled(live and selected >= 1)
        self.restore.setEnabled(not live and selected >= 1)
        self.duplicates.setEnabled(live)  # the trash is for restoring or emptying, not curating
        if self.buttons:
            self.buttons["galleryDeleteButton"].setVisible(live)
            self.buttons["galleryRestoreButton"].setVisible(not live)
        self.undo.setEnabled(next_undo is not None)
        self.undo.setToolTip(
            UNDO_TIP if next_undo is None else f"Undo: {next_undo.action} of {len(next_undo.ids)} item(s) (Ctrl+Z)"
        )
        self.redo.setEnabled(next_redo is not None)
        self.redo.setToolTip(
            REDO_TIP
            if next_redo is None
            else f"Redo: {next_redo.action} of {len(next_redo.ids)} item(s) (Ctrl+Shift+Z)"
        )

    def context_menu(
        self, parent: QWidget, trash_mode: bool, rate: Callable[[int], None], flag: Callable[[str], None]
    ) -> QMenu:
        """The grid's right-click menu (deleted when closed, so none pile up)."""
        menu = QMenu(parent)
        menu.setObjectName("galleryContextMenu")
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if not trash_mode:
            rate_menu = menu.addMenu("Rate")
            for stars in range(6):
                rate_menu.addAction(f"{plural(stars, 'star')}\t{stars}", functools.partial(rate, stars))
            for value, title, key in (("pick", "Pick", "P"), ("reject", "Reject", "X"), ("none", "Unflag", "U")):
                menu.addAction(f"{title}\t{key}", functools.partial(flag, value))
            menu.addSeparator()
        for action in (self.compare, self.interpolate, self.inpaint, self.export, self.to_dataset):
            menu.addAction(action)
        if not trash_mode:
            menu.addAction(self.duplicates)
        menu.addSeparator()
        menu.addAction(self.restore if trash_mode else self.delete)
        menu.addAction(self.undo)
        menu.addAction(self.redo)
        return menu
