"""A form built from a family's hyperparameter schema: one validated editor per setting.

Ints get spin boxes, floats get double spin boxes (log-friendly decimals), bools check boxes and
choices combo boxes, each bounded by the schema's minimum and maximum, with the help text as its
tooltip. `values()` returns only what differs from the defaults, ready for the engine's `settings`
or `options` arguments, which validate again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSpinBox,
    QWidget,
)

from studio.engine.families.schema import Hyperparameter

INT_LIMIT = 2_147_483_647  # QSpinBox holds a C int


def _decimals(setting: Hyperparameter) -> int:
    smallest = min((abs(v) for v in (setting.minimum, setting.default) if isinstance(v, int | float) and v), default=1)
    return max(2, min(8, 2 - math.floor(math.log10(smallest)) if smallest else 2))


class SchemaForm(QWidget):
    """Editors for a list of settings, named `<prefix><setting>` for automation."""

    changed = Signal()

    def __init__(self, prefix: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prefix = prefix
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, QWidget] = {}
        self.settings: dict[str, Hyperparameter] = {}

    def set_schema(self, schema: Iterable[Hyperparameter], values: Mapping[str, Any] | None = None) -> None:
        """Rebuild the editors for `schema`, showing `values` where given, else the defaults."""
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.editors.clear()
        self.settings = {setting.name: setting for setting in schema}
        values = values or {}
        for setting in self.settings.values():
            editor = self._editor(setting)
            editor.setObjectName(f"{self.prefix}{setting.name}")
            editor.setAccessibleName(setting.name.replace("_", " "))
            editor.setToolTip(setting.help)
            self.editors[setting.name] = editor
            label = QLabel(setting.name.replace("_", " "))
            label.setToolTip(setting.help)
            label.setBuddy(editor)
            self.layout_.addRow(label, editor)
            self.set_value(setting.name, values.get(setting.name, setting.default))

    def _editor(self, setting: Hyperparameter) -> QWidget:
        if setting.choices:
            combo = QComboBox()
            for choice in setting.choices:
                combo.addItem(str(choice), choice)
            combo.currentIndexChanged.connect(self.changed)
            return combo
        if setting.kind is bool:
            box = QCheckBox()
            box.toggled.connect(self.changed)
            return box
        if setting.kind is int:
            spin = QSpinBox()
            spin.setRange(
                int(setting.minimum if setting.minimum is not None else -INT_LIMIT),
                int(min(setting.maximum, INT_LIMIT) if setting.maximum is not None else INT_LIMIT),
            )
            spin.setGroupSeparatorShown(True)
            spin.valueChanged.connect(self.changed)
            return spin
        if setting.kind is float:
            double_spin = QDoubleSpinBox()
            double_spin.setDecimals(_decimals(setting))
            double_spin.setRange(
                float(setting.minimum if setting.minimum is not None else -1e9),
                float(setting.maximum if setting.maximum is not None else 1e9),
            )
            double_spin.setSingleStep(10 ** -min(double_spin.decimals(), 3) if double_spin.maximum() <= 10 else 1.0)
            double_spin.valueChanged.connect(self.changed)
            return double_spin
        combo = QComboBox()
        combo.setEditable(True)
        combo.currentTextChanged.connect(self.changed)
        return combo

    def set_value(self, name: str, value: Any) -> None:
        """Show a value in its editor (values outside the range are clamped by the editor)."""
        editor = self.editors[name]
        if isinstance(editor, QComboBox) and not editor.isEditable():
            index = editor.findData(value)
            editor.setCurrentIndex(max(0, index))
        elif isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QSpinBox):
            editor.setValue(int(value))
        elif isinstance(editor, QDoubleSpinBox):
            editor.setValue(float(value))
        elif isinstance(editor, QComboBox):
            editor.setEditText(str(value))

    def value(self, name: str) -> Any:
        """The editor's current value, typed as the schema says."""
        editor = self.editors[name]
        if isinstance(editor, QComboBox) and not editor.isEditable():
            return editor.currentData()
        if isinstance(editor, QCheckBox):
            return editor.isChecked()
        if isinstance(editor, QSpinBox):
            return editor.value()
        if isinstance(editor, QDoubleSpinBox):
            return editor.value()
        return editor.currentText() if isinstance(editor, QComboBox) else None

    def values(self, only_changed: bool = False) -> dict[str, Any]:
        """Every setting's value (or only those that differ from the defaults), validated by the schema."""
        result = {}
        for name, setting in self.settings.items():
            value = setting.validate(self.value(name))
            if not only_changed or value != setting.default:
                result[name] = value
        return result
