"""The controls a user acts on, with their objectNames and accessibleNames: checked by a test and
written to docs/ui.md (`python -m studio.ui.names docs/ui.md`)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QTextEdit,
    QWidget,
)

INTERACTIVE = (
    QAbstractButton,
    QComboBox,
    QLineEdit,
    QAbstractSpinBox,
    QAbstractItemView,
    QAbstractSlider,
    QTextEdit,
    QPlainTextEdit,
)
# Widgets that are not controls but that tests and tools address by name.
LANDMARKS = ("lossPlot", "previewGrid", "inpaintCanvas", "compareView", "deviceLabel", "jobProgress", "jobLabel")


def _inside_composite(widget: QWidget) -> bool:
    """Part of a combo box (its popup list) or a spin box (its line edit): named by its owner."""
    ancestor = widget.parentWidget()
    for _ in range(3):
        if ancestor is None:
            return False
        if isinstance(ancestor, QComboBox | QAbstractSpinBox):
            return True
        ancestor = ancestor.parentWidget()
    return False


def interactive_controls(root: QWidget) -> list[QWidget]:
    """Every control under `root` a user can act on, leaving out the parts Qt and pyqtgraph build inside
    composite widgets (scroll bars, popups, a plot's own buttons)."""
    found: list[QWidget] = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or isinstance(widget, QScrollBar):
            continue
        parent = widget.parentWidget()
        if _inside_composite(widget) or type(widget).__module__.startswith("pyqtgraph"):
            continue
        if parent is not None and (
            type(parent).__module__.startswith("pyqtgraph")
            or parent.objectName().startswith("qt_")
            or isinstance(parent, QAbstractItemView)
        ):
            continue
        if widget.objectName().startswith("qt_"):
            continue
        found.append(widget)
    return found


def _landmarks(root: QWidget) -> list[QWidget]:
    return [widget for name in LANDMARKS if (widget := root.findChild(QWidget, name)) is not None]


def _row(widget: QWidget) -> str:
    tip = " ".join(widget.toolTip().split()).replace("|", "/") or "-"
    return f"| `{widget.objectName()}` | {type(widget).__name__} | {widget.accessibleName() or '-'} | {tip} |"


def markdown(window: QWidget, page_keys: list[str]) -> str:
    """docs/ui.md: one table per page, then the window's own controls."""
    lines = [
        "# UI object names",
        "",
        "Every page and every control a user acts on has a stable `objectName` (for tests and automation)",
        "and an `accessibleName` (for screen readers). This file is written by `python -m studio.ui.names`",
        "and a test fails when a control is missing from it or has no names.",
        "",
    ]
    pages = {key: window.findChild(QWidget, f"{key}Page") for key in page_keys}
    listed: set[str] = set()
    for page in pages.values():
        if page is None:
            continue
        lines += [
            f"## {page.accessibleName()} (`{page.objectName()}`)",
            "",
            "| objectName | widget | accessibleName | what it does |",
            "|---|---|---|---|",
        ]
        widgets = interactive_controls(page) + _landmarks(page)
        for widget in sorted(widgets, key=lambda w: w.objectName()):
            if widget.objectName() in listed:
                continue
            listed.add(widget.objectName())
            lines.append(_row(widget))
        lines.append("")
    rest = [w for w in interactive_controls(window) + _landmarks(window) if w.objectName() not in listed]
    lines += [
        "## Main window and status bar",
        "",
        "| objectName | widget | accessibleName | what it does |",
        "|---|---|---|---|",
        "| `mainWindow` | MainWindow | Studio | the main window |",
    ]
    for widget in sorted(rest, key=lambda w: w.objectName()):
        if widget.objectName() in listed:
            continue
        listed.add(widget.objectName())
        lines.append(_row(widget))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the names of a freshly opened window (empty temporary data home) to a Markdown file."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "docs/ui.md")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from studio.home import DataHome
    from studio.store.database import open_store
    from studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["studio-names"])
    del app
    with tempfile.TemporaryDirectory() as root:
        store = open_store(DataHome(Path(root) / "home").ensure())
        window = MainWindow(store, QSettings(str(Path(root) / "settings.ini"), QSettings.Format.IniFormat))
        window.confirm_close = lambda: True
        window.show()
        target.write_text(markdown(window, window.page_keys), encoding="utf-8")
        window.close()
        store.close()
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
