"""The detail pane's memorisation panel: the selected item beside its nearest training image, the distance
between them, and a "Memorised" badge when the item is closer to a training image than the encoder's rule."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QVBoxLayout, QWidget

from studio.ui.gallery.painting import scale_crisp
from studio.ui.widgets import named

PANEL_SIZE = 96  # each of the two images: side by side they fit a narrow detail pane (16 px scales by 6)
BADGE_STYLE = "background:#d23732; color:white; font-weight:bold; border-radius:3px; padding:2px 6px;"
RULE = (
    "Memorised: the item is at most {threshold:.4f} (cosine distance) from a training image, closer than 95% "
    "of the training images are to their own nearest other training image (the encoder's rule)."
)


class MemorisationPanel(QFrame):
    """The item and its nearest training image side by side, at one whole-pixel scale, with the distance."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "memorisationPanel", "Nearest training image")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.item_id: int | None = None  # the item the panel shows, or waits for
        self.found: dict[str, Any] | None = None  # the last answer shown
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.heading = QLabel("<b>Nearest training image</b>")
        self.badge = named(QLabel("Memorised"), "memorisedBadge", "Memorised")
        self.badge.setStyleSheet(BADGE_STYLE)
        self.badge.setVisible(False)
        top = QGridLayout()
        top.addWidget(self.heading, 0, 0)
        top.addWidget(self.badge, 0, 1, Qt.AlignmentFlag.AlignRight)
        layout.addLayout(top)
        pair = QGridLayout()
        pair.setHorizontalSpacing(6)
        self.item_image = self._image_label("memorisationItemImage", "The selected item")
        self.training_image = self._image_label("memorisationTrainingImage", "Its nearest training image")
        self.item_caption = named(QLabel(), "memorisationItemCaption", "The selected item")
        self.training_caption = named(QLabel(), "memorisationTrainingCaption", "The training image")
        for caption in (self.item_caption, self.training_caption):
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            caption.setWordWrap(True)
            caption.setMaximumWidth(PANEL_SIZE + 4)
        pair.addWidget(self.item_image, 0, 0)
        pair.addWidget(self.training_image, 0, 1)
        pair.addWidget(self.item_caption, 1, 0)
        pair.addWidget(self.training_caption, 1, 1)
        pair.setColumnStretch(2, 1)
        layout.addLayout(pair)
        self.summary = named(QLabel(), "memorisationSummary", "Distance to the nearest training image")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.summary)
        self.clear()

    @staticmethod
    def _image_label(object_name: str, accessible_name: str) -> QLabel:
        label = named(QLabel(), object_name, accessible_name)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setFixedSize(PANEL_SIZE + 4, PANEL_SIZE + 4)
        label.setFrameShape(QFrame.Shape.StyledPanel)
        return label

    @property
    def memorised(self) -> bool:
        """The item shown is flagged as memorised."""
        return bool(self.found and self.found.get("memorised"))

    def clear(self) -> None:
        """No item: the panel hides."""
        self.item_id = None
        self.found = None
        self.setVisible(False)

    def show_waiting(self, item_id: int) -> None:
        """The item's answer is on its way (its vector may be computed first)."""
        self.item_id = item_id
        self.found = None
        self._show_pictures(False)
        self.badge.setVisible(False)
        self.summary.setText("<span style='color:gray'>finding the nearest training image…</span>")
        self.summary.setToolTip("")
        self.setVisible(True)

    def show_message(self, item_id: int, text: str) -> None:
        """One line instead of the pictures (no encoder yet, file missing): never a dialog."""
        if item_id != self.item_id:
            return  # an answer about an item no longer shown
        self.found = None
        self._show_pictures(False)
        self.badge.setVisible(False)
        self.summary.setText(f"<span style='color:gray'>{html.escape(text)}</span>")
        self.summary.setToolTip(text)
        self.setVisible(True)

    def show_found(self, item_id: int, found: dict[str, Any], item: QImage | None, training: QImage | None) -> None:
        """The item beside its nearest training image (one scale for both), the distance and the verdict."""
        if item_id != self.item_id:
            return
        self.found = found
        sizes = [max(image.width(), image.height()) for image in (item, training) if image is not None]
        # One box for both, so a 16 px item and a 16 px training image are scaled alike and compare pixel by pixel.
        box = PANEL_SIZE if not sizes else max(1, PANEL_SIZE // max(sizes)) * max(sizes)
        box = min(box, PANEL_SIZE)
        for label, image, missing in (
            (self.item_image, item, "image unavailable"),
            (self.training_image, training, "training image unavailable"),
        ):
            if image is None or image.isNull():
                label.clear()
                label.setText(missing)
            else:
                label.setPixmap(scale_crisp(image, box))
        self.item_caption.setText(f"#{item_id}")
        label_text = f" · {found['label']}" if found.get("label") not in (None, "") else ""
        self.training_caption.setText(f"{html.escape(str(found['source']))}{html.escape(label_text)}")
        self.training_caption.setToolTip(
            f"Dataset '{found['dataset']}', image {found['position']} ({found['source']}){label_text}"
        )
        self._show_pictures(True)
        memorised = bool(found.get("memorised"))
        self.badge.setVisible(memorised)
        threshold = float(found.get("memorised_threshold", 0.0))
        verdict = (
            "<b style='color:#d23732'>memorised</b>: as close as a copy of a training image"
            if memorised
            else "not memorised"
        )
        self.summary.setText(
            f"distance <b>{float(found['distance']):.4f}</b> (memorised at ≤ {threshold:.4f})<br>{verdict}<br>"
            f"<span style='color:gray'>dataset {html.escape(str(found['dataset']))}, "
            f"image {int(found['position'])}</span>"
        )
        self.summary.setToolTip(RULE.format(threshold=threshold))
        self.badge.setToolTip(RULE.format(threshold=threshold))
        self.setVisible(True)

    def _show_pictures(self, shown: bool) -> None:
        for widget in (self.item_image, self.training_image, self.item_caption, self.training_caption):
            widget.setVisible(shown)
