"""The line under the gallery's action bar: how many items match, how many are selected or missing, and when
nothing matches, why (with a link that clears the filters)."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from studio.ui.widgets import named


class CountLine:
    """The count label and the empty-gallery hint; the page puts both in its layout, each on a line of its own
    (a long count and the missing-files note must never widen the window)."""

    def __init__(self) -> None:
        self.count_label = named(QLabel(), "galleryCount", "Matching items")
        self.count_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.count_label.setWordWrap(True)
        self.empty_hint = named(QLabel(), "galleryEmptyHint", "Why the gallery is empty")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setVisible(False)

    def show_error(self, text: str) -> None:
        """Say why there is no count (the rows could not be read, the filter bar contradicts itself)."""
        self.count_label.setText(f"<span style='color:#c0392b'>{html.escape(text)}</span>")

    def show_failure(self, text: str) -> None:
        """Say, in plain text, why the gallery cannot be read."""
        self.count_label.setText(html.escape(text))

    def show(self, total: int, trash: bool, filtered: bool, selected: int, missing: int) -> None:
        """`total` items in the trash or the (filtered) gallery, `selected` of them, `missing` without image."""
        where = "in the trash" if trash else "match" if filtered else "in the gallery"
        text = f"{total:,} item{'s' if total != 1 else ''} {where}"
        if selected:
            text += f" · {selected:,} selected"
        if missing:
            text += (
                f" · <span style='color:#c0392b'>{missing:,} image"
                f"{'s' if missing != 1 else ''} missing or unreadable</span>"
            )
        self.count_label.setText(text)
        self.count_label.setToolTip("Run `studio gallery check --repair` to tidy missing files" if missing else "")
        if total:
            self.empty_hint.setVisible(False)
            return
        if trash:
            hint = "The trash is empty."
        elif filtered:
            hint = "No items match these filters. <a href='clear'>Clear the filters</a>."
        else:
            hint = "No images yet: generate some on the Generate page, and they appear here."
        self.empty_hint.setText(hint)
        self.empty_hint.setVisible(True)
