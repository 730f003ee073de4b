"""The job queue panel: every running and queued engine job, with moving a queued one up or down and
cancelling any one of them (the status bar's Cancel stops only the running one).

A dock at the bottom of the window, opened by the status bar's "Jobs" button; it reads the runner's
`pending` list whenever the queue changes and the running job's progress as it comes.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QFrame,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.ui.jobs import JobHandle, JobRunner, JobState
from studio.ui.widgets import named

RUNNING_MARK = "\u25b6"  # a play triangle before the running job


def describe(handle: JobHandle, place: int) -> str:
    """One line per job: what it is, and where it stands (its progress, or its place in the queue)."""
    if handle.state is JobState.QUEUED:
        return f"{place}. {handle.title} — queued"
    event: Any = handle.last_event
    total = getattr(event, "total", 0)
    share = f" {int(100 * min(1.0, event.done / total))}%" if total else ""
    message = getattr(event, "message", "") or ""
    state = "paused" if handle.state is JobState.PAUSED else "running"
    if handle.token.cancelled:
        state = "cancelling"
    return f"{RUNNING_MARK} {handle.title} — {state}{share}" + (f" · {message}" if message else "")


class JobQueuePanel(QFrame):
    """The list of pending jobs (the running one first) and Up, Down and Cancel for the chosen one."""

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        named(self, "jobQueuePanel", "Job queue")
        self.runner = runner
        self.dock: QDockWidget | None = None  # set by install_job_queue
        self.toggle_button: QToolButton | None = None
        self.list = named(
            QListWidget(), "jobQueueList", "Running and queued jobs", "The running job first, then the queue in order"
        )
        self.up_button = named(QPushButton("Up"), "jobQueueUpButton", "Run the chosen job sooner")
        self.down_button = named(QPushButton("Down"), "jobQueueDownButton", "Run the chosen job later")
        self.cancel_button = named(
            QPushButton("Cancel job"),
            "jobQueueCancelButton",
            "Cancel the chosen job",
            "A queued job leaves the queue; the running one stops at its next step (training keeps its checkpoint)",
        )
        self.up_button.clicked.connect(lambda: self.move_chosen(-1))
        self.down_button.clicked.connect(lambda: self.move_chosen(1))
        self.cancel_button.clicked.connect(self.cancel_chosen)
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        buttons = QVBoxLayout()
        for button in (self.up_button, self.down_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        runner.queueChanged.connect(self.refresh)
        runner.jobStarted.connect(self._job_started)
        self.refresh()

    def _job_started(self, handle: JobHandle | None) -> None:
        if handle is not None:
            handle.progressed.connect(self._progressed)
        self.refresh()

    def _progressed(self, _event: object) -> None:
        # Only the running job reports progress: its row (the first) is written again, nothing else.
        pending = self.runner.pending
        if pending and self.list.count():
            self.list.item(0).setText(describe(pending[0], 0))

    @property
    def jobs(self) -> list[JobHandle]:
        """The jobs as listed, in order."""
        return [self.list.item(row).data(Qt.ItemDataRole.UserRole) for row in range(self.list.count())]

    def chosen(self) -> JobHandle | None:
        """The job chosen in the list, if any."""
        item = self.list.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def choose(self, handle: JobHandle) -> None:
        """Make `handle` the chosen row (tests and scripts)."""
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) is handle:
                self.list.setCurrentRow(row)

    def refresh(self) -> None:
        """List the pending jobs again; the chosen one stays chosen while it is pending."""
        chosen = self.chosen()
        self.list.clear()
        place = 0
        for handle in self.runner.pending:
            if handle.state is JobState.QUEUED:
                place += 1
            item = QListWidgetItem(describe(handle, place))
            item.setData(Qt.ItemDataRole.UserRole, handle)
            self.list.addItem(item)
        if not self.list.count():
            empty = QListWidgetItem("No jobs: generation, training, imports and exports queue here")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(empty)
        if chosen is not None:
            self.choose(chosen)
        self._update_buttons()

    def _update_buttons(self) -> None:
        chosen = self.chosen()
        queued = self.runner.queued
        place = queued.index(chosen) if chosen is not None and chosen in queued else None
        self.up_button.setEnabled(place is not None and place > 0)
        self.down_button.setEnabled(place is not None and place < len(queued) - 1)
        self.cancel_button.setEnabled(chosen is not None and not chosen.done and not chosen.token.cancelled)

    def move_chosen(self, offset: int) -> None:
        """Move the chosen queued job sooner (-1) or later (+1)."""
        chosen = self.chosen()
        if chosen is not None:
            self.runner.move(chosen, offset)

    def cancel_chosen(self) -> None:
        """Cancel the chosen job (the others keep their places)."""
        chosen = self.chosen()
        if chosen is not None:
            self.runner.cancel(chosen)
            self.refresh()


def install_job_queue(window: QMainWindow, runner: JobRunner) -> JobQueuePanel:
    """A hidden dock at the bottom of `window` holding the panel, and a "Jobs" status bar button toggling it."""
    panel = JobQueuePanel(runner)
    dock = QDockWidget("Jobs", window)
    dock.setObjectName("jobQueueDock")
    dock.setAccessibleName("Job queue")
    dock.setWidget(panel)
    dock.setAllowedAreas(Qt.DockWidgetArea.BottomDockWidgetArea | Qt.DockWidgetArea.RightDockWidgetArea)
    window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    dock.setVisible(False)
    button = named(QToolButton(), "jobQueueButton", "Show the job queue", "See, reorder and cancel jobs")
    button.setCheckable(True)
    button.setAutoRaise(True)

    def count() -> None:
        pending = len(runner.pending)
        button.setText(f"Jobs ({pending})" if pending else "Jobs")

    button.toggled.connect(dock.setVisible)
    dock.visibilityChanged.connect(button.setChecked)
    runner.queueChanged.connect(count)
    count()
    window.statusBar().addPermanentWidget(button)
    panel.dock, panel.toggle_button = dock, button
    return panel
