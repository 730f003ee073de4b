"""The pages' context asks the window for things through signals and never holds (or imports) the window."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

import studio.ui.context as context_module
from studio.store.database import Store
from studio.ui.context import StudioContext, StudioSignals
from studio.ui.jobs import JobRunner
from studio.ui.main_window import MainWindow


def test_go_to_notify_and_error_reach_the_window(window: MainWindow) -> None:
    context = window.context
    context.go_to("models")
    assert window.current_key == "models"
    context.notify("hello from a page", 5000)
    assert window.statusBar().currentMessage() == "hello from a page"
    context.error("Something failed", "a readable reason")
    assert window.last_error == ("Something failed", "a readable reason")


def test_without_a_window_an_error_goes_to_stderr(
    store: Store, settings: QSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    runner = JobRunner()
    try:
        context = StudioContext(store, runner, settings, StudioSignals())
        context.error("Something failed", "a readable reason")
        context.notify("nobody listens")  # dropped quietly
        context.go_to("models")
    finally:
        assert runner.shutdown(5000)
    assert "Something failed: a readable reason" in capsys.readouterr().err


def test_the_context_does_not_import_the_window() -> None:
    tree = ast.parse(Path(context_module.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "studio.ui.main_window" not in imported and not hasattr(StudioContext, "window")
