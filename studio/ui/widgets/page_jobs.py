"""Job bookkeeping for the pages that run engine jobs beside their own work (Datasets, Models).

A page submits its jobs with `_submit`; the first of its pending jobs shows in the page's progress
panel (built by `_build_job_panel`), a failure opens the error dialog, and the fuller status line a
page asks for with `_say_when_ended` replaces the window's own once the job has ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton

from studio.engine.jobs import CancelToken
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.widgets import named


class PageJobsMixin:
    """A page's queued and running jobs, the first shown in its progress panel.

    Mixed into a QWidget page (listed before QWidget) that has a `context`: the page calls `_init_jobs()`
    in `__init__` and adds the frame `_build_job_panel()` returns to its layout.
    """

    COUNT_QUEUED = False  # whether the panel adds "(+N more)" while more of the page's jobs wait

    context: StudioContext
    jobs: list[JobHandle]
    _outcomes: dict[JobHandle, str]
    panel: QFrame
    panel_label: QLabel
    progress: QProgressBar
    cancel_button: QPushButton

    def _init_jobs(self) -> None:
        self.jobs = []  # this page's jobs, queued or running
        self._outcomes = {}  # status lines to show once a job has ended

    def _build_job_panel(self, noun: str, cancel_tooltip: str, cancel: Callable[[], None]) -> QFrame:
        """The hidden panel `{noun}Panel` with the first job's status, its progress and a Cancel button."""
        title = noun.capitalize()
        self.panel = named(QFrame(), f"{noun}Panel", f"{title} progress")
        self.panel.setFrameShape(QFrame.Shape.StyledPanel)
        panel_layout = QHBoxLayout(self.panel)
        panel_layout.setContentsMargins(8, 4, 8, 4)
        self.panel_label = named(QLabel(), f"{noun}Status", f"{title} status")
        self.progress = named(QProgressBar(), f"{noun}Progress", f"{title} progress")
        self.progress.setMaximumWidth(320)
        self.cancel_button = named(QPushButton("Cancel"), f"{noun}CancelButton", f"Cancel the {noun}",
                                   cancel_tooltip)
        self.cancel_button.clicked.connect(cancel)
        panel_layout.addWidget(self.panel_label, 1)
        panel_layout.addWidget(self.progress)
        panel_layout.addWidget(self.cancel_button)
        self.panel.setVisible(False)
        return self.panel

    def _submit(self, title: str, factory: Callable[[CancelToken], Any]) -> JobHandle:
        before = self.context.runner.pending
        handle = self.context.runner.submit(title, factory)
        self.jobs.append(handle)
        handle.started.connect(self._update_panel)
        handle.event.connect(self._update_panel)
        handle.ended.connect(lambda: self._job_ended(handle))
        if before:
            # The runner runs one job at a time: say why nothing seems to happen yet.
            self.context.notify(f"{title}: queued after {before[0].title}", 10_000)
        self._update_panel()
        return handle

    def _job_failed(self, handle: JobHandle, title: str, message: str) -> None:
        handle.error_shown = True  # type: ignore[attr-defined] - the window then skips its own status line
        self.context.error(title, message)

    def _say_when_ended(self, handle: JobHandle, message: str) -> None:
        # The window's own "done"/"cancelled" line comes first when the job ends; this fuller one replaces it.
        self._outcomes[handle] = message

    def _forget_job(self, handle: JobHandle) -> None:
        """Drop what the page keeps about an ended job besides the list (nothing here)."""

    def _job_ended(self, handle: JobHandle) -> None:
        if handle in self.jobs:
            self.jobs.remove(handle)
        self._forget_job(handle)
        message = self._outcomes.pop(handle, None)
        if message:
            self.context.notify(message)
        self._update_panel()

    def _update_panel(self, *_: object) -> None:
        pending = [h for h in self.jobs if not h.done]
        self.panel.setVisible(bool(pending))
        if not pending:
            return
        handle = pending[0]
        more = f" (+{len(pending) - 1} more)" if self.COUNT_QUEUED and len(pending) > 1 else ""
        event = handle.last_event
        if handle.state == "queued":
            current = self.context.runner.current
            self.panel_label.setText(f"{handle.title}: queued after {current.title if current else 'another job'}"
                                     f"{more}")
            self.progress.setRange(0, 0)
        elif event is not None and getattr(event, "total", 0):
            self.panel_label.setText(f"{handle.title}: {event.message or event.stage}{more}")
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(1.0, event.done / event.total)))
        else:
            self.panel_label.setText(f"{handle.title}: {getattr(event, 'message', '') or 'starting'}{more}")
            self.progress.setRange(0, 0)  # busy: the total is not known yet (scanning)

    def _cancel_first_job(self) -> None:
        pending = [h for h in self.jobs if not h.done]
        if pending:
            pending[0].cancel()
            self.panel_label.setText(f"{pending[0].title}: cancelling…")
