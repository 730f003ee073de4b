"""Two gallery items side by side at the same whole-pixel scale, the settings that differ in bold."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDialog, QFrame, QGridLayout, QLabel, QPushButton, QWidget

from studio.store.database import Store
from studio.store.gallery import GalleryEntry
from studio.ui.gallery.detail import parameter_rows
from studio.ui.gallery.painting import scale_crisp
from studio.ui.gallery.thumbnails import image_path, load_image
from studio.ui.widgets import named

COMPARE_SIZE = 320


class CompareView(QDialog):
    """Two items side by side at the same whole-pixel scale; the settings that differ are in bold."""

    def __init__(self, store: Store, pick: Callable[[int], None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "compareView", "Compare two images")
        self.setWindowTitle("Compare")
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.store = store
        self._pick = pick
        self.entries: list[GalleryEntry] = []
        layout = QGridLayout(self)
        self.titles: list[QLabel] = []
        self.images: list[QLabel] = []
        self.details: list[QLabel] = []
        self.pick_buttons: list[QPushButton] = []
        for side, name in enumerate(("Left", "Right")):
            title = named(QLabel(), f"compare{name}Title", f"{name} image title")
            image = named(QLabel(), f"compare{name}Image", f"{name} image")
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            image.setFixedSize(COMPARE_SIZE + 8, COMPARE_SIZE + 8)
            image.setFrameShape(QFrame.Shape.StyledPanel)
            detail = named(QLabel(), f"compare{name}Details", f"{name} image settings")
            detail.setTextFormat(Qt.TextFormat.RichText)
            detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            detail.setWordWrap(True)
            detail.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            button = named(QPushButton(f"Pick {name.lower()}"), f"comparePick{name}", f"Pick the {name.lower()} image")
            button.clicked.connect(lambda _=False, side=side: self._pick_side(side))
            layout.addWidget(title, 0, side)
            layout.addWidget(image, 1, side)
            layout.addWidget(detail, 2, side)
            layout.addWidget(button, 3, side)
            self.titles.append(title)
            self.images.append(image)
            self.details.append(detail)
            self.pick_buttons.append(button)
        close = named(QPushButton("Close"), "compareCloseButton", "Close the comparison")
        close.clicked.connect(self.close)
        layout.addWidget(close, 4, 1, Qt.AlignmentFlag.AlignRight)

    def show_entries(self, entries: list[GalleryEntry]) -> None:
        """Show two items (their images read now) and bring the window up."""
        images = [load_image(image_path(self.store, entry)) for entry in entries]
        self.show_pair(entries[0], entries[1], images)
        self.show()
        self.raise_()

    def refresh(self, read: Callable[[list[int]], dict[int, GalleryEntry]]) -> None:
        """While open: show its two items as they are now (`read` gives entries by id)."""
        if self.isVisible() and len(self.entries) == 2:
            entries = read([entry.id for entry in self.entries])
            if len(entries) == 2:
                self.show_entries([entries[entry.id] for entry in self.entries])

    def show_pair(
        self, left: GalleryEntry, right: GalleryEntry, images: list[tuple[QImage | None, str | None]]
    ) -> None:
        """Show two items (their images already read, or the reason they could not be)."""
        self.entries = [left, right]
        rows = [dict(parameter_rows(left)), dict(parameter_rows(right))]
        # One scale for both, so equal-sized images compare pixel for pixel.
        sizes = [max(image.width(), image.height()) for image, _ in images if image is not None]
        box = COMPARE_SIZE if not sizes else max(1, COMPARE_SIZE // max(sizes)) * max(sizes)
        for side, entry in enumerate(self.entries):
            other = rows[1 - side]
            flag = {"pick": " · picked", "reject": " · rejected"}.get(entry.flag, "")
            self.titles[side].setText(
                f"<b>#{entry.id}</b> · {html.escape(entry.model)} · {'★' * entry.rating or 'unrated'}{flag}"
            )
            image, reason = images[side]
            if image is None:
                self.images[side].setPixmap(scale_crisp(QImage(), box))
                self.images[side].setText(f"image unavailable:\n{reason}")
            else:
                self.images[side].setText("")
                self.images[side].setPixmap(scale_crisp(image, min(box, COMPARE_SIZE)))
            lines = []
            for label, value in rows[side].items():
                text = html.escape(value)
                if other.get(label) != value and label not in ("File", "Created"):
                    text = f"<b>{text}</b>"
                lines.append(f"<tr><td style='color:gray;padding-right:8px'>{label}</td><td>{text}</td></tr>")
            self.details[side].setText("<table>" + "".join(lines) + "</table>")
        self.setWindowTitle(f"Compare #{left.id} and #{right.id}")

    def _pick_side(self, side: int) -> None:
        if len(self.entries) == 2:
            self._pick(self.entries[side].id)
