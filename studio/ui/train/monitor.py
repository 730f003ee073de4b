"""The Train page's monitor: the run's controls, step, speed and ETA, a live loss plot, the latest
preview grid with the family's diagnostic figures, and a banner for training warnings.

It only shows what it is told: the page feeds it the job's events (in the GUI thread, through the
runner's queued signals) and tells it the job's state. The plot is redrawn by a 200 ms timer, never
once per event. One thing it starts itself: when a run completes and the model's dataset has an
encoder, it scores the model (an `EngineOp`, queued like any job) and shows the score under the plot.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.engine.embedding.scoring import can_score, describe, score_model
from studio.engine.families.registry import declaration
from studio.engine.training import CheckpointSaved, PreviewReady, TrainingProgress, TrainingWarning
from studio.store.embeddings import ScoreRecord
from studio.ui.context import StudioContext
from studio.ui.operations import EngineOp, JobHandle, JobState, QueryOp
from studio.ui.widgets import image_grid, named
from studio.ui.widgets.plots import style_axes, themed_plot

PLOT_INTERVAL_MS = 200  # the loss plot redraws at most five times a second, however fast events come
PREVIEW_COLUMNS = 8
PEN_WIDTH = 1  # thin cosmetic lines paint 2-3x faster than wide ones once a curve holds thousands of points
CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FIGURE_NAMES = {
    "diversity": ("diversity", "spread of samples over that of the data; near 0 means mode collapse"),
    "reconstruction_error": ("reconstruction error", "mean absolute error on a 0-255 scale; high means blurry"),
}


def format_duration(seconds: float | None) -> str:
    """'45 s', '3 min 05 s', '2 h 04 min', or an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "\u2014"
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at or above `value`: axis bounds that change rarely and read well."""
    if value <= 1:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(factor * power for factor in (1, 2, 5, 10) if factor * power >= value)


class LossHistory:
    """Loss values per key against the step, in numpy arrays that grow by doubling (no per-point lists)."""

    def __init__(self) -> None:
        self.steps: dict[str, np.ndarray] = {}
        self.values: dict[str, np.ndarray] = {}
        self.count: dict[str, int] = {}

    def clear(self) -> None:
        """Forget every curve."""
        self.steps.clear()
        self.values.clear()
        self.count.clear()

    def append(self, step: int, losses: dict[str, float]) -> None:
        """Add one point to each loss's curve (a new key starts a new curve)."""
        for key, value in losses.items():
            if key not in self.count:
                self.steps[key] = np.empty(256, dtype=np.float64)
                self.values[key] = np.empty(256, dtype=np.float64)
                self.count[key] = 0
            used = self.count[key]
            if used == len(self.steps[key]):
                self.steps[key] = np.resize(self.steps[key], 2 * used)
                self.values[key] = np.resize(self.values[key], 2 * used)
            self.steps[key][used] = step
            self.values[key][used] = value
            self.count[key] = used + 1

    def bounds(self) -> tuple[float, float, float] | None:
        """(last step, lowest value, highest value) over every curve; None while empty."""
        if not any(self.count.values()):
            return None
        curves = [self.curve(key) for key, used in self.count.items() if used]
        return (
            max(float(steps[-1]) for steps, _ in curves),
            min(float(values.min()) for _, values in curves),
            max(float(values.max()) for _, values in curves),
        )

    def curve(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of a key: views of the filled part."""
        used = self.count[key]
        return self.steps[key][:used], self.values[key][:used]


class PreviewGrid(QLabel):
    """The latest preview images as a grid, re-laid out (by whole pixels) to fit its size."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images: np.ndarray | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # Ignored: the pixmap must follow the widget's size, never push it larger.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setMinimumSize(QSize(160, 120))

    def show_images(self, images: np.ndarray | None) -> None:
        """Show uint8 NHWC images (None or empty: keep the placeholder text)."""
        self.images = images if images is not None and len(images) else None
        self._render()

    def clear_images(self, text: str) -> None:
        """Drop the images and show a placeholder."""
        self.images = None
        self.clear()
        self.setText(text)

    def _render(self) -> None:
        if self.images is None:
            return
        count, height = len(self.images), self.images.shape[1]
        columns = max(1, min(PREVIEW_COLUMNS, count))
        rows = math.ceil(count / columns)
        gap = 3
        fit = min((self.width() - 8 - gap * (columns - 1)) // columns, (self.height() - 8 - gap * (rows - 1)) // rows)
        # Whole multiples of the image size keep the pixels crisp; tiny images may shrink below 1x.
        cell = max(8, (fit // height) * height if fit >= height else fit)
        self.setPixmap(image_grid(self.images, columns=columns, cell=cell, gap=gap))

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Re-lay out the grid for the new size."""
        super().resizeEvent(event)
        self._render()


def _banner(object_name: str, accessible_name: str, background: str, border: str, text: str) -> QLabel:
    label = named(QLabel(), object_name, accessible_name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setStyleSheet(
        f"QLabel {{ background: {background}; border: 1px solid {border}; color: {text}; "
        "border-radius: 4px; padding: 6px 8px; }"
    )
    label.setVisible(False)
    return label


class TrainMonitor(QWidget):
    """Start, pause and cancel buttons over a run's figures, status, warnings, loss plot and previews.

    The buttons only report clicks; the page decides what they do and tells the monitor the job's state.
    """

    def __init__(self, parent: QWidget | None = None, context: StudioContext | None = None) -> None:
        super().__init__(parent)
        # For the score after a run; without one, the monitor uses its page's (see `_context`).
        self.context = context
        self.score_job: JobHandle | None = None
        self.scored_model: str | None = None  # the run whose score the line waits for or shows
        self.history = LossHistory()
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.current_step = 0
        self.warnings: list[str] = []
        self._plot_dirty = False
        self._figures: dict[str, float] = {}
        self._following = True  # the loss plot's view follows the data until the user pans or zooms
        self._view_range: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None)
        self._x_origin = 0.0
        self._x_target: float | None = None

        self.plot_timer = QTimer(self)
        self.plot_timer.setObjectName("trainPlotTimer")
        self.plot_timer.setInterval(PLOT_INTERVAL_MS)
        self.plot_timer.timeout.connect(self.redraw_plot)

        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(8)
        box.addLayout(self._build_buttons())
        box.addLayout(self._build_figures())
        self.status_label = named(QLabel(), "trainResultLabel", "Run status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        box.addWidget(self.status_label)
        self.warning_banner = _banner("trainWarningBanner", "Training warnings", "#fff4ce", "#d6a600", "#4d3800")
        box.addWidget(self.warning_banner)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("trainSplitter")
        splitter.setChildrenCollapsible(False)
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_layout.setSpacing(2)
        plot_layout.addWidget(self._build_plot(), 1)
        self.score_label = named(QLabel(), "trainScoreLabel", "Quality score of the run")
        self.score_label.setWordWrap(True)
        self.score_label.setTextFormat(Qt.TextFormat.RichText)
        self.score_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.score_label.setStyleSheet("color: palette(placeholder-text);")
        self.score_label.setVisible(False)
        plot_layout.addWidget(self.score_label)
        # The live plot's tab; the page adds the history's (past runs) beside it.
        self.plot_tabs = named(QTabWidget(), "trainPlotTabs", "Live run or history")
        self.plot_tabs.addTab(plot_box, "Live run")
        splitter.addWidget(self.plot_tabs)
        splitter.addWidget(self._build_preview())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([330, 270])
        box.addWidget(splitter, 1)

    # --- building -------------------------------------------------------------------------------

    def _build_buttons(self) -> QHBoxLayout:
        buttons = QHBoxLayout()
        self.start_button = named(
            QPushButton("Start training"),
            "trainStartButton",
            "Start training",
            "Start training with these settings (Ctrl+Return)",
        )
        self.start_button.setDefault(True)
        self.pause_button = named(
            QPushButton("Pause"), "trainPauseButton", "Pause training", "Pause after the current step (Space or Ctrl+P)"
        )
        self.cancel_button = named(
            QPushButton("Cancel"),
            "trainCancelButton",
            "Cancel training",
            "Stop the run; the weights so far are saved and can be resumed",
        )
        for button in (self.start_button, self.pause_button, self.cancel_button):
            button.setMinimumWidth(110)
            buttons.addWidget(button)
        buttons.addSpacing(12)
        self.progress = named(QProgressBar(), "trainProgressBar", "Training progress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        buttons.addWidget(self.progress, 1)
        return buttons

    def _build_figures(self) -> QHBoxLayout:
        figures = QHBoxLayout()
        self.step_label = named(QLabel("Step \u2014"), "trainStepLabel", "Step")
        self.speed_label = named(QLabel("\u2014 samples/s"), "trainSpeedLabel", "Training speed")
        self.eta_label = named(QLabel("ETA \u2014"), "trainEtaLabel", "Time left")
        self.checkpoint_label = named(QLabel(""), "trainCheckpointLabel", "Last checkpoint")
        for label in (self.step_label, self.speed_label, self.eta_label, self.checkpoint_label):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            figures.addWidget(label)
            figures.addSpacing(18)
        figures.addStretch(1)
        return figures

    def _build_plot(self) -> QWidget:
        plot = themed_plot(
            self,
            "lossPlot",
            "Loss plot",
            "Training losses against the step (drag to pan, wheel to zoom, right-click for options)",
        )
        self.loss_plot, foreground, background = plot.widget, plot.foreground, plot.background
        self.loss_plot.setMinimumHeight(180)
        item = self.loss_plot.getPlotItem()
        self._plot_colour = foreground.name()
        item.setTitle("Losses appear here once a run starts", color=self._plot_colour, size="10pt")
        style_axes(item, foreground, "step", "loss")
        # Long runs: draw only the points in view, reduced to about one per pixel (peaks kept).
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        # The monitor sets the view range itself, growing it in steps (see _follow_range): autorange would
        # move both axes at every update, and each move repaints twice and regenerates the axes.
        view = item.getViewBox()
        view.disableAutoRange()
        view.sigRangeChangedManually.connect(self._stop_following)
        item.autoBtn.clicked.connect(self._follow_again)  # after pyqtgraph's own handler: the "A" button
        # One row across the top (the view keeps headroom for it), rather than a box over the newest points.
        self.legend = item.addLegend(offset=(8, 4), labelTextColor=foreground, colCount=len(CURVE_COLOURS))
        self.legend.setBrush(pg.mkBrush(background.red(), background.green(), background.blue(), 200))
        return self.loss_plot

    def _build_preview(self) -> QWidget:
        panel = QFrame()
        panel.setObjectName("trainPreviewPanel")
        panel.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(8, 6, 8, 6)
        header = QHBoxLayout()
        self.preview_step_label = named(QLabel("<b>Preview</b>"), "trainPreviewStepLabel", "Preview step")
        self.figures_label = named(QLabel(""), "trainFiguresLabel", "Diagnostic figures")
        self.figures_label.setTextFormat(Qt.TextFormat.RichText)
        header.addWidget(self.preview_step_label)
        header.addStretch(1)
        header.addWidget(self.figures_label)
        layout.addLayout(header)
        self.preview_grid = named(
            PreviewGrid(),
            "previewGrid",
            "Preview images",
            "The same latents or seeds at every preview, so you see them improve",
        )
        self.preview_grid.clear_images("Preview images appear here while training.")
        self.preview_grid.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.preview_grid, 1)
        self.preview_caption = named(QLabel(""), "trainPreviewCaption", "Preview caption")
        self.preview_caption.setWordWrap(True)
        self.preview_caption.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.preview_caption)
        return panel

    # --- state ----------------------------------------------------------------------------------

    def show_controls(self, state: JobState | None, cancelling: bool) -> None:
        """Enable the buttons for a job in `state` (None: no job, or it ended); `cancelling` once asked to stop."""
        running = state is not None and not state.final
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running and state is not None and state.active)
        self.cancel_button.setEnabled(running and not cancelling)
        paused = state is JobState.PAUSED
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setAccessibleName("Resume training" if paused else "Pause training")

    def show_cancelling(self) -> None:
        """The user asked the run to stop: the trainer saves a checkpoint on its way out."""
        self.cancel_button.setText("Cancelling\u2026")
        self.set_status("Cancelling: saving a checkpoint\u2026")

    def set_status(self, text: str) -> None:
        """One line (rich text) about the run as a whole."""
        self.status_label.setText(text)

    def start_plotting(self) -> None:
        """The job started: redraw the plot on the timer from now on."""
        self.plot_timer.start()

    def stop_plotting(self) -> None:
        """The job ended (or the window closes): stop the timer after drawing what arrived."""
        self.plot_timer.stop()
        self.redraw_plot()
        self.cancel_button.setText("Cancel")

    def reset(self, family: str, first_step: int = 0, target: int | None = None) -> None:
        """Clear everything for a new run of `family` that starts at `first_step` and aims at `target`."""
        self.history.clear()
        self._following, self._view_range = True, (None, None)
        self._x_origin, self._x_target = float(first_step), None if target is None else float(target)
        self.loss_plot.getPlotItem().getViewBox().disableAutoRange()
        for curve in self.curves.values():
            self.loss_plot.removeItem(curve)
        self.curves.clear()
        self.legend.clear()
        self.warnings.clear()
        self._figures = {}
        self.warning_banner.setVisible(False)
        self.score_label.setVisible(False)
        self.score_label.setText("")
        self.scored_model = None  # a score still on its way belongs to the previous run: not shown
        self.current_step = 0
        self.progress.setValue(0)
        self.step_label.setText("Step \u2014")
        self.speed_label.setText("\u2014 samples/s")
        self.eta_label.setText("ETA \u2014")
        self.checkpoint_label.setText("")
        self.figures_label.setText("")
        self.preview_step_label.setText("<b>Preview</b>")
        self.preview_grid.clear_images("Waiting for the first preview\u2026")
        self.preview_caption.setText(declaration(family).preview_caption)
        self.cancel_button.setText("Cancel")

    # --- events ---------------------------------------------------------------------------------

    def show_event(self, event: Any, paused: bool = False) -> None:
        """Show one event of the trainer; while `paused`, the speed keeps saying so."""
        if isinstance(event, TrainingProgress):
            self._show_progress(event, paused)
        elif isinstance(event, PreviewReady):
            self._show_preview(event)
        elif isinstance(event, TrainingWarning):
            self._show_warning(event)
        elif isinstance(event, CheckpointSaved):
            self.current_step = max(self.current_step, event.step)
            self.checkpoint_label.setText(f"checkpoint: step {event.step:,}")

    def _show_progress(self, event: TrainingProgress, paused: bool) -> None:
        self.current_step = event.step
        target = f" / {event.target_steps:,}" if event.target_steps else ""
        self.step_label.setText(f"Step <b>{event.step:,}</b>{target}")
        if not paused:
            self.speed_label.setText(f"{event.samples_per_second:,.0f} samples/s")
        self.eta_label.setText(
            f"ETA {format_duration(event.eta_seconds)}  \u00b7  elapsed {format_duration(event.elapsed_seconds)}"
        )
        if event.target_steps:
            self.progress.setValue(int(1000 * min(1.0, event.step / event.target_steps)))
        elif event.eta_seconds is not None:
            done = event.elapsed_seconds / max(1e-9, event.elapsed_seconds + event.eta_seconds)
            self.progress.setValue(int(1000 * min(1.0, done)))
        finite = {k: v for k, v in event.losses.items() if math.isfinite(v)}
        if finite:
            self.history.append(event.step, finite)
            self._plot_dirty = True

    def redraw_plot(self) -> None:
        """Timer slot: push new loss points to the curves (setData on existing items, no re-adding)."""
        if not self._plot_dirty:
            return
        self._plot_dirty = False
        for key in self.history.count:
            curve = self.curves.get(key)
            if curve is None:
                if not self.curves:
                    self.loss_plot.getPlotItem().setTitle("Losses", color=self._plot_colour, size="10pt")
                colour = CURVE_COLOURS[len(self.curves) % len(CURVE_COLOURS)]
                curve = self.loss_plot.plot(name=key.replace("_", " "), pen=pg.mkPen(colour, width=PEN_WIDTH))
                self.curves[key] = curve
            steps, values = self.history.curve(key)
            curve.setData(steps, values)
        self._follow_range()

    def _follow_range(self) -> None:
        """Keep every point in view, changing the range only when the data leaves it (or shrinks far inside)."""
        bounds = self.history.bounds()
        if bounds is None or not self._following:
            return
        last, low, high = bounds
        x_range, y_range = self._view_range
        if x_range is None or last > x_range[1]:
            high_step = self._x_origin + nice_ceiling(max(1.5 * (last - self._x_origin), 10))
            if self._x_target is not None and self._x_target >= last:
                high_step = min(high_step, self._x_target)
            x_range = (self._x_origin, high_step)
        span = max(high - low, 1e-6 * max(1.0, abs(high)))
        if y_range is None or low < y_range[0] or high > y_range[1] or y_range[1] - y_range[0] > 4 * span:
            # Margins, so jitter does not move it again; more at the top, where the legend is.
            y_range = (low - 0.15 * span, high + 0.3 * span)
        if (x_range, y_range) != self._view_range:
            self._view_range = (x_range, y_range)
            self.loss_plot.getPlotItem().getViewBox().setRange(xRange=x_range, yRange=y_range, padding=0)

    def _stop_following(self) -> None:
        """The user panned or zoomed: leave the view where they put it."""
        self._following = False

    def _follow_again(self) -> None:
        """The plot's "A" button: back to following the data (without pyqtgraph's per-update autorange)."""
        self.loss_plot.getPlotItem().getViewBox().disableAutoRange()
        self._following = True
        self._view_range = (None, None)
        self._follow_range()

    def _show_preview(self, event: PreviewReady) -> None:
        self.current_step = max(self.current_step, event.step)
        self.preview_step_label.setText(f"<b>Preview</b> at step {event.step:,}")
        if event.images is not None:
            self.preview_grid.show_images(event.images)
        parts = []
        for key, value in event.figures.items():
            label, meaning = FIGURE_NAMES.get(key, (key.replace("_", " "), ""))
            before = self._figures.get(key)
            trend = ""
            if before is not None and not math.isclose(before, value, rel_tol=0.02):
                trend = " \u2191" if value > before else " \u2193"
            parts.append(f"<span title='{meaning}'>{label}: <b>{value:.3g}</b>{trend}</span>")
        self._figures = dict(event.figures)
        self.figures_label.setText("  \u00b7  ".join(parts))
        self.figures_label.setToolTip(
            "\n".join(f"{FIGURE_NAMES[k][0]}: {FIGURE_NAMES[k][1]}" for k in event.figures if k in FIGURE_NAMES)
        )

    def _show_warning(self, event: TrainingWarning) -> None:
        if event.message not in self.warnings:
            self.warnings.append(event.message)
        shown = "<br>".join(f"\u26a0 {html.escape(message)}" for message in self.warnings[-3:])
        self.warning_banner.setText(f"<b>Step {event.step:,}:</b> {shown}")
        self.warning_banner.setVisible(True)

    # --- endings --------------------------------------------------------------------------------

    def show_result(self, result: Any, verb: str) -> None:
        """A TrainResult, as 'Completed' or 'Cancelled': where the model is now and what it took."""
        losses = ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in (result.final_losses or {}).items())
        new_steps = result.steps - result.start_step
        kept = " The weights so far are saved: choose Resume to go on." if verb == "Cancelled" else ""
        self.set_status(
            f"<b>{verb}:</b> '{html.escape(str(result.model))}' is at step {result.steps:,} "
            f"({new_steps:,} new steps in "
            f"{format_duration(result.seconds)}){'; final losses ' + losses if losses else ''}.{kept}"
        )
        self.current_step = result.steps
        self.step_label.setText(f"Step <b>{result.steps:,}</b>")
        self.speed_label.setText(verb.lower())
        self.eta_label.setText(f"took {format_duration(result.seconds)}")
        if verb == "Completed":
            self.progress.setValue(1000)
            if new_steps > 0:
                self.score_after(str(result.model))

    def show_failure(self, message: str) -> None:
        """The run failed with a one-line reason."""
        self.set_status(f"<b>Failed:</b> {html.escape(message)}")
        self.speed_label.setText("failed")

    # --- the quality score after a run ----------------------------------------------------------

    def _context(self) -> StudioContext | None:
        """The context given, else the one of the page the monitor sits in."""
        if self.context is not None:
            return self.context
        widget = self.parentWidget()
        while widget is not None:
            context = getattr(widget, "context", None)
            if isinstance(context, StudioContext):
                return context
            widget = widget.parentWidget()
        return None

    def score_after(self, model: str) -> None:
        """Score a model that just finished training when its dataset has an encoder; the score shows under
        the plot (a model whose dataset has none is left alone: nothing shows)."""
        context = self._context()
        if context is None or context.store.read_only:
            return
        store = context.store
        QueryOp(self, lambda: can_score(store, model)).success(
            lambda scorable: self._start_score(context, model) if scorable else None
        ).run_in_background()

    def _start_score(self, context: StudioContext, model: str) -> None:
        store = context.store
        self.scored_model = model
        self._score_line(model, f"Scoring '{html.escape(model)}' in its dataset's encoder space\u2026")
        self.score_job = (
            EngineOp[ScoreRecord](context, f"Score '{model}'", lambda token: score_model(store, model, cancel=token))
            .success(lambda record: self.show_score(model, record))
            # A score is a bonus after a run: its failure is a line here, never a dialog.
            .failure(lambda message: self._score_line(model, f"No quality score: {html.escape(message)}"))
            .cancelled(lambda: self._score_line(model, "Quality score cancelled."))
            .run()
        )

    def _score_line(self, model: str, text: str) -> None:
        if model == self.scored_model:  # a new run since clears the line for its own score
            self.score_label.setText(text)
            self.score_label.setVisible(True)

    def show_score(self, model: str, record: ScoreRecord) -> None:
        """A model's quality score, as one line under the loss plot (unless a new run started since)."""
        self._score_line(
            model, f"<b>Quality</b> of '{html.escape(model)}' at step {record.steps:,}: {html.escape(describe(record))}"
        )
