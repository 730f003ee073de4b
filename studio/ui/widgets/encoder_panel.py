"""The Datasets page's encoder panel: the selected dataset's contrastive encoder, its figures, and its training.

It shows the encoder (or that there is none yet), its linear probe against the majority class, its
near-duplicate and memorised rules and how many gallery items wait to be embedded; a form of the
encoder's settings and a budget; Train, Resume (a stopped training), Pause and Cancel; and the live
NT-Xent loss. The training runs as an `EngineOp`, so it queues behind any other job of the app.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.engine.embedding.queries import embed_job, stopped_training
from studio.engine.embedding.settings import ENCODER_SCHEMA, MIN_IMAGES
from studio.engine.jobs import CancelToken, Progress
from studio.engine.training import TrainingProgress
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.embeddings import EmbeddingRepository, EncoderRecord
from studio.ui.context import StudioContext
from studio.ui.operations import EngineOp, JobHandle, JobState, QueryOp
from studio.ui.widgets import named
from studio.ui.widgets.plots import style_axes, themed_plot
from studio.ui.widgets.schema_form import SchemaForm

DEFAULT_MINUTES = 3.0  # the engine's own default budget (studio embed train)
LOSS_COLOUR = "#1f77b4"
MUTED = "color: #7f8c8d"  # rich text knows no palette() colours: the grey the other pages use
# Fixed by a stopped training's weights: a resume keeps them, whatever the form says.
FIXED_ON_RESUME = ("input_size", "width", "projection_dims")


@dataclass(frozen=True)
class EncoderFacts:
    """What the panel shows of a dataset: its encoder (if any), the gallery items it has not embedded yet,
    and whether a stopped training can be resumed."""

    dataset: str
    encoder: EncoderRecord | None
    pending: int
    resumable: bool


def read_encoder_facts(store: Store, dataset: str) -> EncoderFacts:
    """The panel's figures for a dataset (database and file reads: call it off the GUI thread)."""
    repository = EmbeddingRepository(store)
    encoder = repository.current_encoder(repository.dataset_id(dataset))
    pending = repository.missing_count(encoder) if encoder is not None else 0
    resumable = stopped_training(store, dataset)
    return EncoderFacts(dataset, encoder, pending, resumable)


def describe_encoder(facts: EncoderFacts) -> str:
    """The encoder's figures as rich text: identity, linear probe, distance rules, pending gallery items."""
    encoder = facts.encoder
    if encoder is None:
        return (
            f"<b>No encoder yet</b> for '{_escape(facts.dataset)}'. Train one here (about 3 minutes on a CPU): "
            "it powers <i>more like this</i>, near-duplicates, memorisation checks, quality scores and the map."
        )
    when = encoder.created_at.strftime("%Y-%m-%d %H:%M")
    lines = [
        f"<b>Encoder</b> <code>{encoder.weights_hash[:12]}</code> · {encoder.steps:,} steps · "
        f"{encoder.dims} dimensions from {encoder.input_size} px images · trained {when} UTC"
    ]
    accuracy, chance = encoder.metrics.get("probe_accuracy"), encoder.metrics.get("probe_chance")
    if isinstance(accuracy, int | float) and isinstance(chance, int | float):
        colour = "#1e8449" if accuracy >= 0.9 else ("#b9770e" if accuracy > chance else "#c0392b")
        lines.append(
            f"Linear probe: <b style='color: {colour}'>{accuracy:.0%}</b> of held-out images get their class right "
            f"(always guessing the most common class: {chance:.0%})"
        )
    else:
        lines.append(f"<span style='{MUTED}'>Linear probe: not measured (the images have no class labels)</span>")
    lines.append(
        f"Near-duplicates: within <b>{encoder.duplicate_threshold:.4f}</b> of each other (closer than 99% of the "
        f"training images are to their nearest other). Memorised: a generated image within "
        f"<b>{encoder.memorised_threshold:.4f}</b> of a training image (closer than 95% of the training images "
        "are to their nearest other)"
    )
    lines.append(
        "Gallery: every item of the models trained on it is embedded"
        if facts.pending == 0
        else f"Gallery: <b>{facts.pending:,}</b> item(s) wait to be embedded (done when a search or the map "
        "needs them, or now with <i>Embed now</i>)"
    )
    return "<br>".join(lines)


class EncoderPanel(QWidget):
    """The selected dataset's encoder: its figures, a settings form and budget, the training controls and
    the live NT-Xent loss."""

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        named(self, "encoderPanel", "Encoder")
        self.dataset: str | None = None  # the dataset on show
        self.count = 0  # its image count
        self.facts: EncoderFacts | None = None
        self.handle: JobHandle | None = None  # this panel's training (or embedding) job
        self.job_dataset: str | None = None  # the dataset that job works on
        self.job_kind = ""  # "train" or "embed"
        self.steps: list[float] = []
        self.losses: list[float] = []
        self._build()
        self._update_controls()

    # --- layout -----------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 6, 4, 4)
        layout.setSpacing(6)
        self.summary = named(QLabel(), "encoderSummary", "Encoder figures")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.summary)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Budget"))
        self.minutes_spin = named(
            QDoubleSpinBox(),
            "encoderMinutesSpin",
            "Minutes of encoder training",
            "Stop after this many minutes of training (3 is the default of studio embed train)",
        )
        self.minutes_spin.setRange(0.1, 24 * 60)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setValue(DEFAULT_MINUTES)
        self.steps_spin = named(
            QSpinBox(),
            "encoderStepsSpin",
            "Most steps of encoder training",
            "Also stop after this many steps (whichever comes first); 0: no step limit",
        )
        self.steps_spin.setRange(0, 10_000_000)
        self.steps_spin.setGroupSeparatorShown(True)
        self.steps_spin.setSpecialValueText("no step limit")
        self.steps_spin.setSuffix(" steps")
        controls.addWidget(self.minutes_spin)
        controls.addWidget(self.steps_spin)
        controls.addSpacing(8)
        self.train_button = named(
            QPushButton("Train encoder"),
            "encoderTrainButton",
            "Train the encoder",
            "Train a new encoder for this dataset with these settings (it replaces the current one when done)",
        )
        self.train_button.clicked.connect(lambda: self.train())
        self.resume_button = named(
            QPushButton("Resume"),
            "encoderResumeButton",
            "Resume the stopped encoder training",
            "Continue the stopped training where it was cancelled, for this budget",
        )
        self.resume_button.clicked.connect(lambda: self.train(resume=True))
        self.pause_button = named(
            QPushButton("Pause"), "encoderPauseButton", "Pause the encoder training", "Pause after the current step"
        )
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = named(
            QPushButton("Cancel"),
            "encoderCancelButton",
            "Cancel the encoder training",
            "Stop; the training so far is kept and can be resumed",
        )
        self.cancel_button.clicked.connect(self.cancel)
        self.embed_button = named(
            QPushButton("Embed now"),
            "encoderEmbedButton",
            "Embed the waiting gallery items",
            "Embed the gallery items of this dataset's models that have no vector yet",
        )
        self.embed_button.clicked.connect(lambda: self.embed_now())
        for button in (self.train_button, self.resume_button, self.pause_button, self.cancel_button):
            controls.addWidget(button)
        controls.addStretch(1)
        controls.addWidget(self.embed_button)
        layout.addLayout(controls)

        status = QHBoxLayout()
        self.progress = named(QProgressBar(), "encoderProgress", "Encoder training progress")
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.status = named(QLabel(), "encoderStatus", "Encoder training status")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        status.addWidget(self.progress)
        status.addWidget(self.status, 1)
        layout.addLayout(status)

        splitter = named(QSplitter(Qt.Orientation.Horizontal), "encoderSplitter", "Encoder settings and loss")
        splitter.setChildrenCollapsible(False)
        settings = QGroupBox("Settings")
        settings.setObjectName("encoderSettings")
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(4, 4, 4, 4)
        self.form = SchemaForm("encoderSetting_")
        self.form.set_schema(ENCODER_SCHEMA)
        scroll = named(QScrollArea(), "encoderSettingsScroll", "Encoder settings")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.form)
        settings_layout.addWidget(scroll)
        settings.setMinimumWidth(250)
        splitter.addWidget(settings)
        splitter.addWidget(self._build_plot())
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([270, 360])
        layout.addWidget(splitter, 1)

    def _build_plot(self) -> QWidget:
        plot = themed_plot(
            self,
            "encoderLossPlot",
            "Encoder loss plot",
            "The NT-Xent loss against the step (drag to pan, wheel to zoom)",
        )
        self.loss_plot, foreground = plot.widget, plot.foreground
        self.loss_plot.setMinimumSize(220, 160)
        item = self.loss_plot.getPlotItem()
        self._plot_colour = foreground.name()
        item.setTitle("NT-Xent loss (appears once training starts)", color=self._plot_colour, size="9pt")
        style_axes(item, foreground, "step", "loss")
        self.curve = self.loss_plot.plot(pen=pg.mkPen(LOSS_COLOUR, width=1))
        return self.loss_plot

    # --- the dataset on show ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether this panel's job is queued, running or paused."""
        return self.handle is not None and not self.handle.done

    def show_dataset(self, dataset: str | None, count: int = 0) -> None:
        """Show this dataset's encoder (read off the GUI thread); None: nothing selected."""
        self.dataset, self.count = dataset, count
        if dataset is None:
            self.facts = None
            self.summary.setText("Select a dataset to see its encoder.")
            self._update_controls()
            return
        if self.facts is None or self.facts.dataset != dataset:
            self.facts = None
            self.summary.setText(f"<span style='{MUTED}'>Reading the encoder of '{_escape(dataset)}'\u2026</span>")
        self._update_controls()
        self.reload()

    def reload(self) -> None:
        """Read the figures of the dataset on show again."""
        dataset, store = self.dataset, self.store
        if dataset is None:
            return
        QueryOp(self, lambda: read_encoder_facts(store, dataset)).latest_only("facts").success(
            self._show_facts
        ).failure(self._facts_failed).run_in_background()

    def _show_facts(self, facts: EncoderFacts) -> None:
        if facts.dataset != self.dataset:
            return  # an answer for a dataset no longer on show
        self.facts = facts
        self.summary.setText(describe_encoder(facts))
        self._update_controls()

    def _facts_failed(self, reason: str) -> None:
        self.facts = None
        self.summary.setText(f"<span style='color: #c0392b'>Cannot read the encoder: {_escape(reason)}</span>")
        self._update_controls()

    def _update_controls(self) -> None:
        """Enable what makes sense for the dataset on show and this panel's job."""
        running, handle = self.running, self.handle
        facts, read_only = self.facts, self.store.read_only
        too_small = self.dataset is not None and self.count < MIN_IMAGES
        can_start = self.dataset is not None and facts is not None and not running and not read_only and not too_small
        self.train_button.setEnabled(can_start)
        if read_only:
            self.train_button.setToolTip(f"Read-only: {self.store.read_only_reason}")
        elif too_small:
            self.train_button.setToolTip(
                f"'{self.dataset}' has {self.count} images: an encoder needs at least {MIN_IMAGES} (it learns by "
                "telling each image from the others in its batch)"
            )
        elif running:
            self.train_button.setToolTip(f"The encoder of '{self.job_dataset}' is training: wait or cancel it")
        else:
            self.train_button.setToolTip(
                "Train a new encoder for this dataset with these settings (it replaces the current one when done)"
            )
        self.train_button.setText("Train again" if facts is not None and facts.encoder is not None else "Train encoder")
        self.resume_button.setVisible(facts is not None and facts.resumable)
        self.resume_button.setEnabled(can_start and facts is not None and facts.resumable)
        training = running and self.job_kind == "train" and handle is not None
        self.pause_button.setEnabled(training and handle is not None and handle.state.active)
        paused = handle is not None and handle.state is JobState.PAUSED
        self.pause_button.setText("Continue" if paused else "Pause")
        self.pause_button.setAccessibleName("Continue the encoder training" if paused else "Pause the encoder training")
        self.cancel_button.setEnabled(running and handle is not None and not handle.token.cancelled)
        pending = facts is not None and facts.encoder is not None and facts.pending > 0
        self.embed_button.setVisible(pending)
        self.embed_button.setEnabled(pending and not running and not read_only)
        self.progress.setVisible(running)
        self.form.setEnabled(not running)
        self.minutes_spin.setEnabled(not running)
        self.steps_spin.setEnabled(not running)

    # --- training ---------------------------------------------------------------------------

    def train(self, resume: bool = False) -> JobHandle | None:
        """Train (or resume) the encoder of the dataset on show with the form's settings and budget."""
        dataset = self.dataset
        if dataset is None or self.running:
            return None
        try:
            settings = self.form.values(only_changed=True)
        except StudioError as error:
            self.context.error("Cannot train the encoder", str(error))
            return None
        if resume:
            settings = {k: v for k, v in settings.items() if k not in FIXED_ON_RESUME}
        steps = self.steps_spin.value() or None
        minutes = float(self.minutes_spin.value())
        store = self.store

        def factory(token: CancelToken) -> Iterable[object]:
            # Imported in the engine thread: the ONNX exporter loads there, not in the GUI's.
            from studio.engine.embedding.training import EncoderOptions, train_encoder

            options = EncoderOptions(dataset, steps=steps, minutes=minutes, settings=settings, resume=resume)
            return train_encoder(store, options, cancel=token)

        if not (resume and self.job_dataset == dataset):
            # A resume of the training shown goes on from its curve; anything else starts a new one.
            self.steps.clear()
            self.losses.clear()
            self.curve.setData([], [])
        self.loss_plot.getPlotItem().setTitle("NT-Xent loss", color=self._plot_colour, size="9pt")
        self.progress.setValue(0)
        self.job_dataset, self.job_kind = dataset, "train"
        verb = "Resume" if resume else "Train"
        self.handle = (
            EngineOp[Any](self.context, f"{verb} the encoder of '{dataset}'", factory)
            .started(self._started)
            .on_event(self._event)
            .success(self._finished)
            .failure(self._failed)
            .cancelled(self._cancelled)
            .ended(self._ended)
            .run()
        )
        current = self.context.runner.current
        if current is not None and current is not self.handle:
            self.status.setText(f"Waiting for {_escape(current.title)} to finish\u2026")
        else:
            self.status.setText(f"{'Resuming' if resume else 'Training'} the encoder of '{_escape(dataset)}'\u2026")
        self._update_controls()
        return self.handle

    def embed_now(self) -> JobHandle | None:
        """Embed the gallery items of the dataset's models that have no vector yet (a job)."""
        dataset = self.dataset
        if dataset is None or self.running:
            return None
        store = self.store
        self.job_dataset, self.job_kind = dataset, "embed"
        self.handle = (
            EngineOp[int](
                self.context, f"Embed the gallery items of '{dataset}'", lambda token: embed_job(store, dataset, token)
            )
            .on_event(self._event)
            .success(lambda count: self.status.setText(f"Embedded {count:,} gallery item(s)."))
            .failure(self._failed)
            .ended(self._ended)
            .run()
        )
        self._update_controls()
        return self.handle

    def toggle_pause(self) -> None:
        """Pause the running training, or let a paused one continue."""
        handle = self.handle
        if handle is None or handle.done:
            return
        if handle.state is JobState.PAUSED:
            handle.resume()
            self.status.setText(f"Training the encoder of '{_escape(self.job_dataset or '')}'\u2026")
        elif handle.state is JobState.RUNNING:
            handle.pause()
            self.status.setText("Paused after the current step (the minutes budget keeps running).")
        self._update_controls()

    def cancel(self) -> None:
        """Stop the job; a training keeps its state so that Resume can continue it."""
        if self.handle is None or self.handle.done:
            return
        self.handle.cancel()
        self.status.setText("Cancelling: keeping the training so far\u2026")
        self._update_controls()

    # --- job callbacks (GUI thread) ---------------------------------------------------------

    def _started(self) -> None:
        self.status.setText(f"Training the encoder of '{_escape(self.job_dataset or '')}'\u2026")
        self._update_controls()

    def _event(self, event: Any) -> None:
        if isinstance(event, TrainingProgress):
            loss = event.losses.get("nt_xent")
            if loss is not None and math.isfinite(loss):
                self.steps.append(float(event.step))
                self.losses.append(float(loss))
                # The trainer reports at most twice a second: one redraw per event is cheap.
                self.curve.setData(self.steps, self.losses)
            target = f" / {event.target_steps:,}" if event.target_steps else ""
            left = f", about {_duration(event.eta_seconds)} left" if event.eta_seconds is not None else ""
            loss_text = f", loss {loss:.4f}" if loss is not None else ""
            self.status.setText(f"Step <b>{event.step:,}</b>{target}{loss_text}{left}")
            # The budget that runs out first sets the progress: steps, or minutes (through the ETA).
            elapsed, eta = event.elapsed_seconds, event.eta_seconds
            done = event.step / event.target_steps if event.target_steps else 0.0
            if eta is not None:
                done = max(done, elapsed / max(1e-9, elapsed + eta))
            self.progress.setValue(int(1000 * min(1.0, done)))
        elif isinstance(event, Progress):
            self.status.setText(_escape(event.message or event.stage))
            if event.total:
                self.progress.setValue(int(1000 * min(1.0, event.done / event.total)))

    def _finished(self, result: Any) -> None:
        if getattr(result, "status", None) != "completed":
            return
        encoder = result.encoder
        probe = encoder.metrics.get("probe_accuracy") if encoder is not None else None
        probe_text = f", linear probe {probe:.0%}" if isinstance(probe, int | float) else ""
        loss = f", final loss {result.loss:.4f}" if result.loss is not None else ""
        self.status.setText(f"<b>Trained:</b> {result.steps:,} steps in {_duration(result.seconds)}{loss}{probe_text}.")
        self.context.notify(f"The encoder of '{result.dataset}' is ready{probe_text}")
        # A dataset with a new encoder: the map offers it, and the gallery embeds its models' items again.
        self.context.signals.datasetsChanged.emit()

    def _cancelled(self) -> None:
        result = self.handle.result if self.handle is not None else None
        steps = getattr(result, "steps", None)
        self.status.setText(f"Cancelled at step {steps:,}: choose <b>Resume</b> to go on." if steps else "Cancelled.")

    def _failed(self, message: str) -> None:
        self.status.setText(f"<span style='color: #c0392b'><b>Failed:</b> {_escape(message)}</span>")
        self.context.error("Encoder training failed" if self.job_kind == "train" else "Embedding failed", message)

    def _ended(self) -> None:
        self._update_controls()
        self.reload()


def _duration(seconds: float | None) -> str:
    """'45 s' or '3 min 05 s' (an em dash when unknown)."""
    if seconds is None or not math.isfinite(seconds):
        return "\u2014"
    whole = max(0, round(seconds))
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


def _escape(text: str) -> str:
    return html.escape(text, quote=False)  # the text goes between tags, never into an attribute
