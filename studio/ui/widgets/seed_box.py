"""The seed and count boxes of the generation pages: a spin box for the engine's full 63-bit seeds."""

from __future__ import annotations

import secrets

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QHBoxLayout, QSpinBox, QToolButton, QWidget

from studio.engine.generation import MAX_COUNT, MAX_SEED
from studio.ui.widgets import named

DICE_RANGE = 2**31  # the range the engine draws from when no seed is given


class SeedSpinBox(QAbstractSpinBox):
    """A spin box for seeds from 0 to 2**63 - 1 (a QSpinBox stops at 2**31 - 1)."""

    valueChanged = Signal(object)  # noqa: N815 - Qt naming; a Python int

    def __init__(self, maximum: int = MAX_SEED, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._maximum = maximum
        self._value = 0
        self.setAccelerated(True)
        self.lineEdit().setText("0")
        self.lineEdit().textEdited.connect(self._edited)
        self.editingFinished.connect(lambda: self.setValue(self._value))

    def value(self) -> int:
        """The seed."""
        return self._value

    def maximum(self) -> int:
        """The largest seed accepted."""
        return self._maximum

    def setValue(self, value: int) -> None:
        """Show a seed, clamped to 0..maximum."""
        value = max(0, min(self._maximum, int(value)))
        changed = value != self._value
        self._value = value
        if self.lineEdit().text() != str(value):
            self.lineEdit().setText(str(value))
        if changed:
            self.valueChanged.emit(value)

    def stepBy(self, steps: int) -> None:
        """Arrow keys, wheel and the arrows step the seed by one."""
        self.setValue(self._value + steps)

    def stepEnabled(self) -> QAbstractSpinBox.StepEnabledFlag:
        """Up unless at the maximum, down unless at zero."""
        flags = QAbstractSpinBox.StepEnabledFlag.StepNone
        if self._value < self._maximum:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
        if self._value > 0:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepDownEnabled
        return flags

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        """Digits only, at most the maximum; an empty box is allowed while typing."""
        if text == "":
            return QValidator.State.Intermediate, text, pos
        if not text.isdigit():
            return QValidator.State.Invalid, text, pos
        if int(text) > self._maximum:
            return QValidator.State.Invalid, text, pos
        return QValidator.State.Acceptable, text, pos

    def fixup(self, text: str) -> str:
        """An emptied box goes back to the last seed."""
        return text if text.isdigit() else str(self._value)

    def _edited(self, text: str) -> None:
        if text.isdigit():
            value = min(self._maximum, int(text))
            if value != self._value:
                self._value = value
                self.valueChanged.emit(value)


def seed_row(prefix: str, maximum: int, dice_name: str | None = None) -> tuple[QWidget, SeedSpinBox, QToolButton]:
    """A seed box and a dice button that draws a new random seed."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    spin = named(
        SeedSpinBox(maximum),
        f"{prefix}SeedSpin",
        "Seed",
        "the first image's seed; image k uses seed + k. The same seed gives the same image",
    )
    dice = named(QToolButton(), dice_name or f"{prefix}SeedDiceButton", "Draw a random seed", "draw a random seed")
    dice.setText("Random")

    def roll() -> None:
        current = spin.value()
        drawn = current
        while drawn == current:  # a "new" seed equal to the old one would look like a broken button
            drawn = secrets.randbelow(min(DICE_RANGE, maximum + 1))
        spin.setValue(drawn)

    dice.clicked.connect(roll)
    layout.addWidget(spin, 1)
    layout.addWidget(dice)
    return row, spin, dice


def count_spin(object_name: str, accessible_name: str, tooltip: str, value: int) -> QSpinBox:
    """A spin box for how many images one run makes (1 to the engine's limit)."""
    spin = named(QSpinBox(), object_name, accessible_name, tooltip)
    spin.setRange(1, MAX_COUNT)
    spin.setValue(value)
    return spin
