"""The class choice of a class-conditional model: "Any class" or one of the classes of its dataset.

A conditional model knows its dataset's class names (`ModelSummary.classes`, in label order). The
generation pages offer them in a `ClassPicker`, shown only for such a model; the choice goes to the
engine as the `class` option (None: any class, drawn from each image's seed).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QComboBox, QWidget

ANY_CLASS_TEXT = "Any class"


def classes_line(classes: Sequence[str], limit: int = 12) -> str:
    """'0, 1, 2, 3 … 9' for a caption: the first names and the last, with the count when some are left out."""
    names = list(classes)
    if len(names) <= limit:
        return ", ".join(names)
    return f"{', '.join(names[: limit - 1])} … {names[-1]} ({len(names)} classes)"


class ClassPicker(QComboBox):
    """ "Any class" (None) followed by a model's classes; `chosen()` is what the engine's `class` option takes."""

    def __init__(self, any_text: str = ANY_CLASS_TEXT, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.any_text = any_text
        self.classes: tuple[str, ...] = ()
        self.setMaxVisibleItems(20)
        # A fixed width in characters: a long class name must not push the settings column wider.
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self.addItem(any_text, None)

    def set_classes(self, classes: Sequence[str], chosen: str | None = None) -> None:
        """Offer these classes (none: only "Any class") and show `chosen` when it is one of them."""
        with QSignalBlocker(self):
            self.clear()
            self.addItem(self.any_text, None)
            for name in classes:
                self.addItem(name, name)
            self.classes = tuple(classes)
            self.choose(chosen)
        self.view().setMinimumWidth(self.view().sizeHintForColumn(0) + 24)  # the list shows names whole

    def choose(self, name: str | None) -> bool:
        """Show a class by name (None: any); False, showing "Any class", when the model has no such class."""
        index = self.classes.index(name) + 1 if name in self.classes else 0
        self.setCurrentIndex(index)
        return name is None or index > 0

    def chosen(self) -> str | None:
        """The class chosen, or None for any class."""
        data = self.currentData()
        return str(data) if data is not None else None
