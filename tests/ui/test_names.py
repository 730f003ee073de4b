"""Every control a user acts on has a stable objectName and an accessibleName, and docs/ui.md lists them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QWidget

from studio.ui.main_window import MainWindow
from studio.ui.names import interactive_controls

REQUIRED = (
    "datasetsPage",
    "trainPage",
    "modelsPage",
    "generatePage",
    "galleryPage",
    "mapPage",
    "interpolatePage",
    "inpaintPage",
    "importButton",
    "trainStartButton",
    "trainPauseButton",
    "trainCancelButton",
    "lossPlot",
    "previewGrid",
    "exportButton",
    "generateButton",
    "galleryView",
    "ratingFilter",
    "interpolateButton",
    "inpaintCanvas",
    "inpaintRunButton",
    "jobCancelButton",
)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "ui.md"


def test_every_control_is_named_for_automation_and_screen_readers(window: MainWindow) -> None:
    unnamed = [
        f"{type(w).__name__} in {w.parentWidget().objectName() or type(w.parentWidget()).__name__}"
        f" ({w.text() if hasattr(w, 'text') else ''})"
        for w in interactive_controls(window)
        if not w.objectName() or not w.accessibleName()
    ]
    assert unnamed == []


def test_the_required_names_exist_and_are_documented(window: MainWindow) -> None:
    names = {w.objectName() for w in window.findChildren(QWidget)}
    assert [name for name in REQUIRED if name not in names] == []
    documented = DOCS.read_text(encoding="utf-8")
    missing = sorted(w.objectName() for w in interactive_controls(window) if f"`{w.objectName()}`" not in documented)
    assert missing == []


def test_control_names_are_unique(window: MainWindow) -> None:
    """findChild by name must find the one control meant (e.g. the Models page's exportButton)."""
    from collections import Counter

    counts = Counter(w.objectName() for w in interactive_controls(window))
    assert [name for name, count in counts.items() if count > 1] == []
