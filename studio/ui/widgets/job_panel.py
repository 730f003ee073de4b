"""A page's progress panel: the first of its queued or running jobs, with its progress and a Cancel button.

Display only: a page runs its work with `EngineOp` (studio.ui.operations), lets the op's started, event
and ended callbacks call `refresh`, and hands the handle to `add`:

    handle = panel.add(EngineOp(context, title, factory).started(panel.refresh).on_event(panel.refresh)
                       .success(...).ended(panel.refresh).run())
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from studio.ui.jobs import JobHandle, JobRunner, JobState
from studio.ui.widgets import named


class JobPanel(QFrame):
    """The hidden panel `{noun}Panel`: the first pending job's status (`{noun}Status`), its progress
    (`{noun}Progress`) and `{noun}CancelButton`; it shows while any job added to it is pending."""

    def __init__(
        self,
        runner: JobRunner,
        noun: str,
        cancel_tooltip: str,
        notify: Callable[[str, int], None],
        count_queued: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        """`notify(message, timeout_ms)` puts a line in the status bar (the context's `notify`)."""
        super().__init__(parent)
        title = noun.capitalize()
        named(self, f"{noun}Panel", f"{title} progress")
        self.runner = runner
        self.notify = notify
        self.count_queued = count_queued  # whether the label adds "(+N more)" while more of the page's jobs wait
        self.jobs: list[JobHandle] = []
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = named(QLabel(), f"{noun}Status", f"{title} status")
        self.progress = named(QProgressBar(), f"{noun}Progress", f"{title} progress")
        self.progress.setMaximumWidth(320)
        self.cancel_button = named(QPushButton("Cancel"), f"{noun}CancelButton", f"Cancel the {noun}", cancel_tooltip)
        self.cancel_button.clicked.connect(self.cancel_first)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.cancel_button)
        self.setVisible(False)

    @property
    def pending(self) -> list[JobHandle]:
        """The added jobs that have not ended, the first on show."""
        return [handle for handle in self.jobs if not handle.done]

    def add(self, handle: JobHandle) -> JobHandle:
        """Show this job (after the ones added before it) until it ends; say so when it waits for another."""
        self.jobs.append(handle)
        ahead = [other for other in self.runner.pending if other is not handle]
        if ahead:
            # The runner runs one job at a time: say why nothing seems to happen yet.
            self.notify(f"{handle.title}: queued after {ahead[0].title}", 10_000)
        self.refresh()
        return handle

    def refresh(self, *_: object) -> None:
        """Show the first pending job's state and progress; hide when none is left."""
        self.jobs = self.pending  # an ended job is forgotten
        self.setVisible(bool(self.jobs))
        if not self.jobs:
            return
        handle = self.jobs[0]
        more = f" (+{len(self.jobs) - 1} more)" if self.count_queued and len(self.jobs) > 1 else ""
        event = handle.last_event
        total = getattr(event, "total", None)
        if handle.state is JobState.QUEUED:
            current = self.runner.current
            self.label.setText(f"{handle.title}: queued after {current.title if current else 'another job'}{more}")
            self.progress.setRange(0, 0)
        elif total:
            self.label.setText(f"{handle.title}: {event.message or event.stage}{more}")
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * min(1.0, event.done / total)))
        else:
            self.label.setText(f"{handle.title}: {getattr(event, 'message', '') or 'starting'}{more}")
            self.progress.setRange(0, 0)  # busy: the total is not known yet (scanning)

    def cancel_first(self) -> None:
        """Cancel the job on show (the page's other jobs and everyone else's keep going)."""
        pending = self.pending
        if pending:
            pending[0].cancel()
            self.label.setText(f"{pending[0].title}: cancelling…")
