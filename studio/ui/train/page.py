"""The Train page: the setup form on the left, the monitor of the running job on the right.

The page joins them: it lists what the form offers (through engine calls), starts the form's
`TrainOptions` as a supervised run (a `studio train` child process, so a crash in training cannot take
the window down) and follows it with an attach job run by `EngineOp`, feeds the job's events to the
monitor, and answers the monitor's buttons and the keyboard (start, pause, resume, cancel: written to the
run's control file). A window opened while a run goes on attaches to it.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QWidget

from studio.engine.datasets.storage import list_datasets
from studio.engine.library import list_models
from studio.engine.runs import interrupted_runs
from studio.engine.supervision import RunAttached, ask_to_stop, attach, live_runs, run_options, supervise
from studio.ui.context import StudioContext
from studio.ui.operations import EngineOp, JobHandle, JobState
from studio.ui.train.history import TrainHistory
from studio.ui.train.monitor import TrainMonitor
from studio.ui.train.setup import TrainMode, TrainSetup

VERBS = {TrainMode.NEW: "Training", TrainMode.FINETUNE: "Fine-tuning", TrainMode.RESUME: "Resuming"}


class TrainPage(QWidget):
    """Set up, start, pause, resume and cancel a training run, with live losses, previews and warnings."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.setObjectName("trainPage")
        self.setAccessibleName("Train")
        self.handle: JobHandle | None = None
        self.model_name = ""  # the model this page's current (or last) run trains
        self.run_id: str | None = None  # the supervised run this page follows (or last followed)
        self._detach = threading.Event()  # set when the window closes and the run is left going

        self.setup = TrainSetup()
        self.monitor = TrainMonitor(context=context)
        self.history = TrainHistory(context)  # past runs' curves, in a tab beside the live plot
        self.monitor.plot_tabs.addTab(self.history, "History")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(10)
        layout.addWidget(self.setup)
        layout.addWidget(self.monitor, 1)
        self.setup.resume_interrupted_button.clicked.connect(self.resume_interrupted)
        self.monitor.start_button.clicked.connect(self.start)
        self.monitor.pause_button.clicked.connect(self.toggle_pause)
        self.monitor.cancel_button.clicked.connect(self.cancel)

        # Window-wide shortcuts owned by the page: Qt ignores them while the page is hidden.
        QShortcut(QKeySequence("Ctrl+Return"), self, self._start_shortcut)
        QShortcut(QKeySequence("Ctrl+Enter"), self, self._start_shortcut)
        self.pause_shortcuts = [QShortcut(QKeySequence(key), self, self.toggle_pause) for key in ("Space", "Ctrl+P")]
        for shortcut in self.pause_shortcuts:
            shortcut.setEnabled(False)  # only while a run is going

        context.signals.datasetsChanged.connect(self.refresh)
        context.signals.modelsChanged.connect(self.refresh)
        self.refresh()
        self._update_controls()
        self.attach_live_run()  # a run left going when the app last closed (or started from the CLI)

    @property
    def running(self) -> bool:
        """Whether this page's job is queued, running or paused."""
        return self.handle is not None and not self.handle.done

    # --- the store ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload datasets, models and interrupted runs, keeping the form's current choices."""
        # The model this window trains holds its lock and is not interrupted, whatever its rows say.
        training = self.model_name if self.running else None
        models = list_models(self.store)
        self.setup.show_choices(list_datasets(self.store), models, interrupted_runs(self.store, exclude=training))
        self.history.show_models(models)

    def on_shown(self) -> None:
        """The main window shows this page: anything may have changed meanwhile."""
        if not self.running:
            self.refresh()
            self.show_history()

    def show_history(self) -> None:
        """Show the latest run of the model in view (this page's last run, the form's model, else the newest)
        in the History tab; a page that has run nothing yet opens on it."""
        source = self.setup.source_model
        name = self.model_name or (source.name if source is not None else "") or self.history.model_combo.itemData(0)
        if name:
            self.history.select_model(str(name))
        if self.handle is None:
            self.monitor.plot_tabs.setCurrentWidget(self.history)

    # --- starting and controlling a run ---------------------------------------------------------

    def start(self) -> JobHandle | None:
        """Check the form and submit the training job (a readable message instead when it cannot start)."""
        if self.running:
            return None
        problem = self.setup.problem()
        if problem is not None:
            self.context.error("Cannot start training", problem)
            return None
        options = self.setup.options()
        mode, store = self.setup.mode, self.store
        self.model_name, self.run_id = options.name, None
        self.monitor.reset(str(options.family), self.setup.first_step, options.steps)
        self.monitor.plot_tabs.setCurrentIndex(0)  # the live plot
        detach = self._detach = threading.Event()
        # The run starts when the engine thread reaches the job (after the jobs queued before it).
        self.handle = self._follow(f"Train {options.name}", lambda token: supervise(store, options, token, detach))
        queued = self.context.runner.current is not None and self.context.runner.current is not self.handle
        self.monitor.set_status(
            f"Waiting for the current job to finish before training '{options.name}'\u2026"
            if queued
            else f"{VERBS[mode]} '{options.name}'\u2026"
        )
        self._update_controls()
        return self.handle

    def attach_live_run(self) -> JobHandle | None:
        """Follow the newest supervised run still going (its whole curve so far, then live); None when none is."""
        if self.running:
            return None
        runs = live_runs(self.store)
        if not runs:
            return None
        run, store = runs[0], self.store
        self.model_name, self.run_id = run.model, run.id
        options = run_options(self.store, run.id)
        if options is not None:
            self.setup.show_options(options)  # the greyed form says what this run is
        self.monitor.reset(run.family or "", 0, run.target_steps)
        self.monitor.plot_tabs.setCurrentIndex(0)
        detach = self._detach = threading.Event()
        self.handle = self._follow(f"Train {run.model}", lambda token: attach(store, run.id, token, detach))
        self.monitor.set_status(f"Following the run training '{run.model}'\u2026")
        self._update_controls()
        return self.handle

    def _follow(self, title: str, job: Any) -> JobHandle:
        """Run an attach job, its events going to the monitor."""
        return (
            EngineOp(self.context, title, job)
            .started(self._job_started)
            .on_event(self._job_event)  # looked up now, so a benchmark may wrap it before starting
            .success(self._job_finished)
            .failure(self._job_failed)
            .cancelled(self._job_cancelled)
            .ended(self._job_ended)
            .run()
        )

    def _start_shortcut(self) -> None:
        if self.isVisible():
            self.start()

    def resume_interrupted(self) -> JobHandle | None:
        """Resume the chosen interrupted run with the budget it had."""
        if self.running or not self.setup.prepare_interrupted_resume():
            return None
        return self.start()

    def toggle_pause(self) -> None:
        """Pause a running job, or resume a paused one."""
        if self.handle is None or self.handle.done:
            return
        if self.handle.state is JobState.PAUSED:
            self.handle.resume()
            self.monitor.set_status(f"Training '{self.model_name}'\u2026")
        elif self.handle.state is JobState.RUNNING:
            self.handle.pause()
            self.monitor.set_status("Paused after the current step. Resume with Space or Ctrl+P.")
            self.monitor.speed_label.setText("paused")
        self._update_controls()

    def cancel(self) -> None:
        """Stop the run; the trainer saves a checkpoint on its way out."""
        if self.handle is None or self.handle.done:
            return
        self.handle.cancel()
        self.monitor.show_cancelling()
        self._update_controls()

    @property
    def attached_run(self) -> str | None:
        """The id of the supervised run this page follows now (None when none is going)."""
        return self.run_id if self.running else None

    @property
    def following(self) -> bool:
        """Whether a supervised run is starting or followed now (its id may not have arrived yet)."""
        return self.running

    def let_go(self, stop: bool) -> None:
        """The window closes: ask the run to stop (it saves a checkpoint first) or leave it going, and stop
        following it either way, so the window need not wait for the run."""
        if stop and self.attached_run is None:
            return  # still starting: cancelling the job (as the window's runner does) stops the run it starts
        if stop and self.attached_run is not None:
            ask_to_stop(self.store, self.attached_run)
        self._detach.set()

    def shutdown(self) -> None:
        """The window closes: stop the plot timer (the runner cancels the job itself)."""
        self.monitor.plot_timer.stop()

    def _update_controls(self) -> None:
        """Enable what makes sense for the job's state, in the form, the monitor and the shortcuts."""
        running = self.running
        self.setup.set_running(running)
        handle = self.handle
        self.monitor.show_controls(
            handle.state if handle is not None else None, handle is not None and handle.token.cancelled
        )
        for shortcut in self.pause_shortcuts:
            shortcut.setEnabled(running)

    # --- job callbacks (GUI thread) -------------------------------------------------------------

    def _job_started(self) -> None:
        self.monitor.start_plotting()
        self.monitor.set_status(f"Training '{self.model_name}'\u2026 (Space pauses)")
        self._update_controls()

    def _job_event(self, event: Any) -> None:
        if isinstance(event, RunAttached):
            self._run_attached(event)
            return
        paused = self.handle is not None and self.handle.state is JobState.PAUSED
        self.monitor.show_event(event, paused=paused)

    def _run_attached(self, event: RunAttached) -> None:
        """The attach job found its run: show it from its first step; a paused run shows as paused."""
        self.run_id, self.model_name = event.run_id, event.model
        self.monitor.reset(event.family or "", event.start_step, event.target_steps)
        if event.paused and self.handle is not None and self.handle.state is JobState.RUNNING:
            self.toggle_pause()
        self._update_controls()

    def _job_finished(self, result: Any) -> None:
        self.monitor.show_result(result, "Completed")

    def _job_cancelled(self) -> None:
        result = self.handle.result if self.handle is not None else None
        if result is not None:
            self.monitor.show_result(result, "Cancelled")
        else:
            self.monitor.set_status("Cancelled before training began: nothing was saved.")

    def _job_failed(self, message: str) -> None:
        # EngineOp has marked the failure as shown: the window adds no error line of its own.
        self.monitor.show_failure(message)
        self.context.error("Training failed", message)

    def _job_ended(self) -> None:
        self.monitor.stop_plotting()
        self._update_controls()
        # The run wrote (or updated) a model; every page listing models reloads, this one included.
        self.context.signals.modelsChanged.emit()
        self.context.signals.galleryChanged.emit()  # milestones' sample grids are gallery items
        self.setup.offer_next_name()
