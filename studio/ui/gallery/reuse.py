"""The detail pane's "Use these settings" and "Reproduce": an item's way of being made, sent back to the page
that made it (Generate, Interpolate or Inpaint), or run again to see whether the same pixels come out.

Only what Studio made can be made again: an image imported from another tool (operation "import"), a
checkpoint's sample grid, or an item in the trash has both buttons disabled, with the reason as tooltip.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.engine import curation
from studio.engine.jobs import CancelToken, Finished, Progress
from studio.store.database import Store
from studio.store.gallery import GalleryEntry
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.operations import EngineOp
from studio.ui.widgets import named

REPRODUCIBLE = ("sample", "interpolate", "inpaint")
# The page each operation's settings go back to.
SETTINGS_PAGE = {"sample": "generate", "interpolate": "interpolate", "inpaint": "inpaint"}
MATCH_STYLE = "color: #1e8449;"
MISMATCH_STYLE = "color: #c0392b;"


def reuse_problem(entry: GalleryEntry | None) -> str | None:
    """Why an item's settings cannot be used or the item made again, or None when they can."""
    if entry is None:
        return "select an image first"
    if entry.deleted:
        return "this image is in the trash: restore it first"
    if entry.operation == "import":
        return "imported from another tool: Studio did not make it, so it cannot make it again"
    if entry.operation not in REPRODUCIBLE:
        return f"a '{entry.operation}' image is not made from settings Studio can run again"
    return None


def use_settings(context: StudioContext, store: Store, entry: GalleryEntry) -> bool:
    """Open the page that made `entry` with its model, seed and settings filled in; False (and why) if not."""
    problem = reuse_problem(entry)
    if problem is not None:
        context.notify(f"#{entry.id}: {problem}")
        return False
    if entry.operation == "interpolate":
        # The Interpolate page reads the item's ends, frame count and settings itself.
        context.signals.useGalleryItems.emit("interpolate-settings", [entry.id])
        return True
    if entry.operation == "inpaint":
        # The Inpaint page reads the item's source, mask, seed and settings itself.
        context.signals.useGalleryItems.emit("inpaint-settings", [entry.id])
        return True
    metadata: dict[str, Any] = {
        "model": entry.model,
        "family": entry.family,
        "operation": entry.operation,
        "seed": entry.seed,
        "params": dict(entry.params),
        "backend": entry.backend,
        "provider": entry.provider,
    }
    context.signals.restoreGenerateSettings.emit(metadata)  # Generate fills itself and comes on screen
    return True


def reproduce_job(store: Store, entry: GalleryEntry) -> Any:
    """An engine job that makes the item again from its PNG and compares the pixels (`curation.reproduce`)."""
    path = store.home.absolute(entry.path)

    def factory(token: CancelToken) -> Iterator[object]:
        yield Progress("reproducing", 0, 1, f"making #{entry.id} again")
        token.check()
        yield Finished(curation.reproduce(store, path))

    return factory


class ReuseButtons(QWidget):
    """ "Use these settings" and "Reproduce" for the item the pane shows, and what the last reproduction found."""

    useRequested = Signal(object)  # noqa: N815 - Qt naming: the GalleryEntry whose settings to use
    reproduceRequested = Signal(object)  # noqa: N815 - the GalleryEntry to make again

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entry: GalleryEntry | None = None
        self.use_button = named(
            QPushButton("Use these settings"),
            "useSettingsButton",
            "Use these settings",
            "Open the page that made this image with its model, seed and settings",
        )
        self.reproduce_button = named(
            QPushButton("Reproduce"),
            "reproduceButton",
            "Reproduce",
            "Make this image again from its settings and check the pixels match",
        )
        self.result_label = named(QLabel(), "reproduceResult", "Reproduction result")
        self.result_label.setWordWrap(True)
        self.use_button.clicked.connect(lambda: self.useRequested.emit(self.entry) if self.entry else None)
        self.reproduce_button.clicked.connect(lambda: self.reproduceRequested.emit(self.entry) if self.entry else None)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.use_button)
        row.addWidget(self.reproduce_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.result_label, 0, Qt.AlignmentFlag.AlignHCenter)
        self.show_entry(None)

    def show_entry(self, entry: GalleryEntry | None) -> None:
        """Enable both buttons for an item Studio can make again; else disable them with the reason as tooltip."""
        if entry is None or self.entry is None or entry.id != self.entry.id:
            self.result_label.clear()
            self.result_label.setVisible(False)
        self.entry = entry
        problem = reuse_problem(entry)
        for button, tip in (
            (self.use_button, "Open the page that made this image with its model, seed and settings"),
            (self.reproduce_button, "Make this image again from its settings and check the pixels match"),
        ):
            button.setEnabled(problem is None)
            button.setToolTip(tip if problem is None else f"Not possible: {problem}")

    def show_running(self, item_id: int) -> None:
        """Say that the item is being made again."""
        if self.entry is not None and self.entry.id == item_id:
            self._say(f"Making #{item_id} again…", "")

    def show_result(self, item_id: int, result: curation.ReproduceResult) -> None:
        """Say whether the pixels matched (when the pane still shows the item)."""
        if self.entry is None or self.entry.id != item_id:
            return
        if result.match:
            self._say(f"Reproduced: the pixels match (largest difference {result.max_difference}/255)", MATCH_STYLE)
        else:
            self._say(f"Not reproduced: the pixels differ by up to {result.max_difference}/255", MISMATCH_STYLE)

    def show_failure(self, item_id: int, reason: str) -> None:
        """Say why the item could not be made again."""
        if self.entry is not None and self.entry.id == item_id:
            self._say(f"Cannot reproduce: {reason}", MISMATCH_STYLE)

    def _say(self, text: str, style: str) -> None:
        self.result_label.setText(text)
        self.result_label.setStyleSheet(style)
        self.result_label.setVisible(True)


def start_reproduce(context: StudioContext, store: Store, buttons: ReuseButtons, entry: GalleryEntry) -> JobHandle:
    """Run the reproduction as an engine job; the buttons' label says how it went."""
    item_id = entry.id
    buttons.show_running(item_id)
    return (
        EngineOp[curation.ReproduceResult](context, f"Reproduce #{item_id}", reproduce_job(store, entry))
        .success(lambda result: buttons.show_result(item_id, result))
        .failure(lambda reason: buttons.show_failure(item_id, reason))
        .run()
    )
