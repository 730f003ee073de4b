"""The Train page: set up a run (family, dataset, settings, budget), start it, and watch it learn.

The left column is the setup form: the family with its description, the dataset, the model's name,
whether to start fresh, fine-tune an existing model or resume one, the budget and the family's
settings. The right column follows the running job: step, speed and ETA, a live loss plot, the
latest preview grid with the family's diagnostic figures, and a banner for training warnings such
as possible GAN mode collapse. Every update arrives through the runner's queued signals, so only
the GUI thread touches widgets; the plot is redrawn by a 200 ms timer, never once per event.
"""

from __future__ import annotations

import gc
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRegularExpression, QSize, Qt, QTimer
from PySide6.QtGui import QKeySequence, QPalette, QRegularExpressionValidator, QResizeEvent, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import select

from studio.engine.datasets.storage import DatasetSummary, list_datasets, validate_name
from studio.engine.library import ModelSummary, list_models, model_folder
from studio.engine.models.registry import FAMILY_NAMES, family_class
from studio.engine.training import LOCK_FILE, CheckpointSaved, PreviewReady, TrainingProgress, TrainingWarning, train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.models import Model, TrainingRun
from studio.store.staging import hold_lock
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.widgets import image_grid, named
from studio.ui.widgets.schema_form import SchemaForm

PLOT_INTERVAL_MS = 200  # the loss plot redraws at most five times a second, however fast events come
PREVIEW_COLUMNS = 8
PEN_WIDTH = 1  # thin cosmetic lines paint 2-3x faster than wide ones once a curve holds thousands of points
# VAE previews are originals, their reconstructions, then samples: 32 gives full rows of 8 of each.
PREVIEW_COUNT = {"vae": 32, "pixelcnn": 8}
DEFAULT_PREVIEW_COUNT = 16
CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FIGURE_NAMES = {
    "diversity": ("diversity", "spread of samples over that of the data; near 0 means mode collapse"),
    "reconstruction_error": ("reconstruction error", "mean absolute error on a 0-255 scale; high means blurry"),
}
GROUP_TITLES = {"model": "Network", "training": "Training", "sampling": "Preview sampling"}
MODES = ("new", "finetune", "resume")


def default_threads() -> int:
    """Torch threads for training: every core but one, which stays free for the GUI thread."""
    return max(1, (os.cpu_count() or 1) - 1)


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
        return (max(float(steps[-1]) for steps, _ in curves), min(float(values.min()) for _, values in curves),
                max(float(values.max()) for _, values in curves))

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


@dataclass(frozen=True)
class InterruptedRun:
    """A run that stopped without finishing: its model, the step it reached and the budget it had."""

    model: str
    family: str
    step: int
    target_steps: int | None
    budget_minutes: float | None


def _banner(object_name: str, accessible_name: str, background: str, border: str, text: str) -> QLabel:
    label = named(QLabel(), object_name, accessible_name)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setStyleSheet(f"QLabel {{ background: {background}; border: 1px solid {border}; color: {text}; "
                        "border-radius: 4px; padding: 6px 8px; }")
    label.setVisible(False)
    return label


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
        self.datasets: list[DatasetSummary] = []
        self.models: list[ModelSummary] = []
        self.interrupted: list[InterruptedRun] = []
        self.history = LossHistory()
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.current_step = 0
        self.warnings: list[str] = []
        self._plot_dirty = False
        self._suggested_name = ""  # the name last proposed; replaced freely, unlike one the user gave
        self._figures: dict[str, float] = {}
        self._form_key: tuple[str, str | None] | None = None
        self._following = True  # the loss plot's view follows the data until the user pans or zooms
        self._view_range: tuple[tuple[float, float] | None, tuple[float, float] | None] = (None, None)
        self._x_origin = 0.0
        self._x_target: float | None = None

        self.plot_timer = QTimer(self)
        self.plot_timer.setObjectName("trainPlotTimer")
        self.plot_timer.setInterval(PLOT_INTERVAL_MS)
        self.plot_timer.timeout.connect(self._redraw_plot)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(10)
        layout.addWidget(self._build_setup())
        layout.addWidget(self._build_monitor(), 1)

        # Window-wide shortcuts owned by the page: Qt ignores them while the page is hidden.
        QShortcut(QKeySequence("Ctrl+Return"), self, self._start_shortcut)
        QShortcut(QKeySequence("Ctrl+Enter"), self, self._start_shortcut)
        self.pause_shortcuts = [QShortcut(QKeySequence(key), self, self.toggle_pause) for key in ("Space", "Ctrl+P")]
        for shortcut in self.pause_shortcuts:
            shortcut.setEnabled(False)  # only while a run is going

        context.signals.datasetsChanged.connect(self.refresh)
        context.signals.modelsChanged.connect(self.refresh)
        self._family_changed()
        self.refresh()
        self._update_controls()

    # --- building -------------------------------------------------------------------------------

    def _build_setup(self) -> QWidget:
        """The setup form, in a scroll area so every setting stays reachable on small screens."""
        column = QWidget()
        box = QVBoxLayout(column)
        box.setContentsMargins(0, 0, 6, 0)
        box.setSpacing(8)
        title = QLabel("<h2 style='margin:0'>Train</h2>")
        box.addWidget(title)

        self.interrupted_banner = QFrame()
        self.interrupted_banner.setObjectName("trainInterruptedBanner")
        self.interrupted_banner.setStyleSheet(
            "#trainInterruptedBanner { background: #e8f1fb; border: 1px solid #8fb3dc; border-radius: 4px; }")
        banner_layout = QVBoxLayout(self.interrupted_banner)
        banner_layout.setContentsMargins(8, 6, 8, 6)
        self.interrupted_label = named(QLabel(), "trainInterruptedLabel", "Interrupted run")
        self.interrupted_label.setWordWrap(True)
        self.interrupted_combo = named(QComboBox(), "trainInterruptedCombo", "Interrupted runs",
                                       "Runs that stopped before their budget was spent")
        self.resume_interrupted_button = named(
            QPushButton("Resume interrupted run"), "trainResumeInterruptedButton", "Resume interrupted run",
            "Continue the run from its last checkpoint with the budget it had")
        self.resume_interrupted_button.clicked.connect(self.resume_interrupted)
        banner_layout.addWidget(self.interrupted_label)
        banner_layout.addWidget(self.interrupted_combo)
        banner_layout.addWidget(self.resume_interrupted_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.interrupted_banner.setVisible(False)
        box.addWidget(self.interrupted_banner)

        family_group = QGroupBox("Generator family")
        family_layout = QVBoxLayout(family_group)
        self.family_combo = named(QComboBox(), "trainFamilyCombo", "Family", "The kind of generator to train")
        for name in FAMILY_NAMES:
            self.family_combo.addItem(family_class(name).title, name)
        self.family_combo.currentIndexChanged.connect(self._family_changed)
        self.family_description = named(QLabel(), "trainFamilyDescription", "Family description")
        self.family_description.setWordWrap(True)
        self.family_description.setTextFormat(Qt.TextFormat.PlainText)
        self.family_description.setStyleSheet("color: palette(placeholder-text);")
        self.family_capabilities = named(QLabel(), "trainFamilyCapabilities", "Family capabilities")
        family_layout.addWidget(self.family_combo)
        family_layout.addWidget(self.family_description)
        family_layout.addWidget(self.family_capabilities)
        box.addWidget(family_group)

        source_group = QGroupBox("Model and data")
        form = QFormLayout(source_group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        modes = QHBoxLayout()
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QRadioButton] = {}
        for index, (mode, text, tip) in enumerate((
            ("new", "New", "Train a new model from random weights"),
            ("finetune", "Fine-tune", "Start a new model from an existing model's weights (transfer learning)"),
            ("resume", "Resume", "Continue an existing model from its last checkpoint"),
        )):
            button = named(QRadioButton(text), f"train{mode.capitalize()}Radio", f"{text} model", tip)
            self.mode_group.addButton(button, index)
            self.mode_buttons[mode] = button
            modes.addWidget(button)
        modes.addStretch(1)
        self.mode_buttons["new"].setChecked(True)
        self.mode_group.idToggled.connect(lambda _id, checked: checked and self._mode_changed())
        form.addRow("Start", modes)
        self.source_combo = named(QComboBox(), "trainSourceModelCombo", "Existing model",
                                  "The model to fine-tune from or to resume")
        self.source_combo.currentIndexChanged.connect(self._source_changed)
        form.addRow("From model", self.source_combo)
        self.dataset_combo = named(QComboBox(), "trainDatasetCombo", "Dataset",
                                   "Only square 8, 16, 32 or 64 px datasets can be trained on")
        self.dataset_combo.currentIndexChanged.connect(self._suggest_name)
        form.addRow("Dataset", self.dataset_combo)
        self.name_edit = named(QLineEdit(), "trainNameEdit", "Model name",
                               "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        self.name_edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")))
        self.name_edit.setPlaceholderText("e.g. digits-gan")
        self.name_edit.textChanged.connect(self._check_name)
        form.addRow("Name", self.name_edit)
        self.name_hint = named(QLabel(), "trainNameHint", "Name check")
        self.name_hint.setWordWrap(True)
        self.name_hint.setStyleSheet("color: #b3261e;")
        self.name_hint.setVisible(False)
        form.addRow("", self.name_hint)
        box.addWidget(source_group)

        budget_group = QGroupBox("Budget")
        budget = QFormLayout(budget_group)
        self.steps_check = named(QCheckBox("Steps"), "trainStepsCheck", "Limit by steps",
                                 "Stop when the model reaches this total step count")
        self.steps_check.setChecked(True)
        self.steps_spin = named(QSpinBox(), "trainStepsSpin", "Total steps")
        self.steps_spin.setRange(1, 10_000_000)
        self.steps_spin.setValue(2000)
        self.steps_spin.setSingleStep(500)
        self.steps_spin.setGroupSeparatorShown(True)
        self.minutes_check = named(QCheckBox("Minutes"), "trainMinutesCheck", "Limit by time",
                                   "Stop after this much training time (pauses do not count)")
        self.minutes_spin = named(QDoubleSpinBox(), "trainMinutesSpin", "Minutes of training")
        self.minutes_spin.setRange(0.1, 100_000)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setValue(10)
        self.steps_check.toggled.connect(self._update_controls)
        self.minutes_check.toggled.connect(self._update_controls)
        budget.addRow(self.steps_check, self.steps_spin)
        budget.addRow(self.minutes_check, self.minutes_spin)
        self.seed_spin = named(QSpinBox(), "trainSeedSpin", "Seed", "Fixes the initial weights and the batches")
        self.seed_spin.setRange(0, 2_147_483_647)
        budget.addRow("Seed", self.seed_spin)
        box.addWidget(budget_group)

        self.forms: dict[str, SchemaForm] = {}
        self.form_groups: dict[str, QGroupBox] = {}
        for group in ("model", "training", "sampling"):
            group_box = QGroupBox(GROUP_TITLES[group])
            group_box.setObjectName(f"train{group.capitalize()}Settings")
            group_box.setAccessibleName(f"{GROUP_TITLES[group]} settings")
            schema_form = SchemaForm("trainSetting_")
            QVBoxLayout(group_box).addWidget(schema_form)
            self.forms[group] = schema_form
            self.form_groups[group] = group_box
            box.addWidget(group_box)

        advanced = QGroupBox("Previews and checkpoints")
        advanced_form = QFormLayout(advanced)
        self.preview_every_spin = named(QSpinBox(), "trainPreviewEverySpin", "Preview every N steps",
                                        "Draw preview images and diagnostic figures every N steps (0: never)")
        self.preview_every_spin.setRange(0, 1_000_000)
        self.preview_every_spin.setValue(250)
        self.preview_every_spin.setSpecialValueText("never")
        self.checkpoint_every_spin = named(QSpinBox(), "trainCheckpointEverySpin", "Checkpoint every N steps",
                                           "Save a checkpoint every N steps (and always at the end)")
        self.checkpoint_every_spin.setRange(1, 1_000_000)
        self.checkpoint_every_spin.setValue(500)
        self.threads_spin = named(QSpinBox(), "trainThreadsSpin", "CPU threads",
                                  "Torch threads for CPU training; one core is left to keep the window responsive")
        self.threads_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.threads_spin.setValue(default_threads())
        advanced_form.addRow("Preview every", self.preview_every_spin)
        advanced_form.addRow("Checkpoint every", self.checkpoint_every_spin)
        advanced_form.addRow("CPU threads", self.threads_spin)
        box.addWidget(advanced)
        box.addStretch(1)

        self.setup_widgets: list[QWidget] = [family_group, source_group, budget_group, advanced,
                                             *self.form_groups.values()]
        scroll = QScrollArea()
        scroll.setObjectName("trainSetupScroll")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(column)
        scroll.setFixedWidth(400)
        return scroll

    def _build_monitor(self) -> QWidget:
        """Buttons, figures, warnings, the loss plot and the preview grid."""
        monitor = QWidget()
        box = QVBoxLayout(monitor)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(8)

        buttons = QHBoxLayout()
        self.start_button = named(QPushButton("Start training"), "trainStartButton", "Start training",
                                  "Start training with these settings (Ctrl+Return)")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.pause_button = named(QPushButton("Pause"), "trainPauseButton", "Pause training",
                                  "Pause after the current step (Space or Ctrl+P)")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.cancel_button = named(QPushButton("Cancel"), "trainCancelButton", "Cancel training",
                                   "Stop the run; the weights so far are saved and can be resumed")
        self.cancel_button.clicked.connect(self.cancel)
        for button in (self.start_button, self.pause_button, self.cancel_button):
            button.setMinimumWidth(110)
            buttons.addWidget(button)
        buttons.addSpacing(12)
        self.progress = named(QProgressBar(), "trainProgressBar", "Training progress")
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        buttons.addWidget(self.progress, 1)
        box.addLayout(buttons)

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
        box.addLayout(figures)

        self.status_label = named(QLabel(), "trainResultLabel", "Run status")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        box.addWidget(self.status_label)
        self.warning_banner = _banner("trainWarningBanner", "Training warnings", "#fff4ce", "#d6a600", "#4d3800")
        box.addWidget(self.warning_banner)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("trainSplitter")
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._build_plot())
        splitter.addWidget(self._build_preview())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([330, 270])
        box.addWidget(splitter, 1)
        return monitor

    def _build_plot(self) -> QWidget:
        palette = self.palette()
        background = palette.color(QPalette.ColorRole.Base)
        foreground = palette.color(QPalette.ColorRole.Text)
        self.loss_plot = named(pg.PlotWidget(background=background), "lossPlot", "Loss plot",
                               "Training losses against the step (drag to pan, wheel to zoom, right-click for options)")
        self.loss_plot.setMinimumHeight(180)
        item = self.loss_plot.getPlotItem()
        self._plot_colour = foreground.name()
        item.setTitle("Losses appear here once a run starts", color=self._plot_colour, size="10pt")
        for axis_name, text in (("bottom", "step"), ("left", "loss")):
            axis = item.getAxis(axis_name)
            axis.setPen(foreground)
            axis.setTextPen(foreground)
            axis.setLabel(text, color=foreground.name())
            # Grid lines at major ticks only: minor ones cost as much to paint as everything else together.
            axis.setStyle(maxTickLevel=0)
        item.showGrid(x=True, y=True, alpha=0.25)
        # Long runs: draw only the points in view, reduced to about one per pixel (peaks kept).
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        # The page sets the view range itself, growing it in steps (see _follow_range): autorange would
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
        self.preview_grid = named(PreviewGrid(), "previewGrid", "Preview images",
                                  "The same latents or seeds at every preview, so you see them improve")
        self.preview_grid.clear_images("Preview images appear here while training.")
        self.preview_grid.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.preview_grid, 1)
        self.preview_caption = named(QLabel(""), "trainPreviewCaption", "Preview caption")
        self.preview_caption.setWordWrap(True)
        self.preview_caption.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.preview_caption)
        return panel

    # --- the store ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload datasets, models and interrupted runs from the store, keeping the current choices."""
        self.datasets = list_datasets(self.store)
        self.models = list_models(self.store)
        self.interrupted = self._find_interrupted()
        self._fill_sources()
        self._fill_datasets()
        self._fill_interrupted()
        self._suggest_name()
        self._check_name()

    def on_shown(self) -> None:
        """The main window shows this page: anything may have changed meanwhile."""
        if not self.running:
            self.refresh()

    def _find_interrupted(self) -> list[InterruptedRun]:
        """Each model's latest run, where it stopped before its budget: marked interrupted, or left
        'running' by a process that is gone (its training lock is free)."""
        training = self.model_name if self.running else None
        found: dict[str, InterruptedRun] = {}
        with self.store.sessions() as session:
            rows = session.execute(
                select(TrainingRun, Model.name, Model.family, Model.steps)
                .join(Model, TrainingRun.model_id == Model.id)
                .order_by(TrainingRun.id.desc())
            ).all()
        for run, name, family, steps in rows:
            if name in found or name == training:
                continue
            stale = run.status in ("running", "paused") and self._lock_is_free(name)
            if run.status == "interrupted" or stale:
                found[name] = InterruptedRun(name, family, steps, run.target_steps, run.budget_minutes)
            else:
                found[name] = InterruptedRun("", "", 0, None, None)  # the latest run ended properly
        return [run for run in found.values() if run.model]

    def _lock_is_free(self, model: str) -> bool:
        try:
            lock = hold_lock(model_folder(self.store, model) / LOCK_FILE)
        except (OSError, StudioError):
            return False
        if lock is None:
            return False
        lock.close()
        return True

    def _fill_sources(self) -> None:
        chosen = self.source_combo.currentData()
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        for model in self.models:
            self.source_combo.addItem(
                f"{model.name}  ({model.family}, {model.resolution} px, step {model.steps:,})", model.name)
        index = self.source_combo.findData(chosen)
        self.source_combo.setCurrentIndex(index if index >= 0 else (0 if self.models else -1))
        self.source_combo.blockSignals(False)
        if self.mode != "new" and not self.running:
            self._source_changed()  # the model may have moved on (more steps) or gone

    def _fill_datasets(self) -> None:
        """List every dataset; those this setup cannot train on are shown but disabled, with the reason."""
        chosen = self.dataset_combo.currentData()
        self.dataset_combo.blockSignals(True)
        self.dataset_combo.clear()
        family = family_class(self.family)
        source = self.source_model
        mode = self.mode
        for dataset in self.datasets:
            colour = "grey" if dataset.channels == 1 else "colour"
            self.dataset_combo.addItem(f"{dataset.name}  ({dataset.size} px, {colour}, {dataset.count:,} images)",
                                       dataset.name)
            reason = None
            try:
                family.check_geometry(dataset.size, dataset.channels)
            except StudioError as error:
                reason = str(error).split(":")[0]
            if reason is None and mode == "finetune" and source is not None and (
                    (dataset.size, dataset.channels) != (source.resolution, source.channels)):
                reason = f"'{source.name}' takes {source.resolution} px x {source.channels} images"
            if reason is None and mode == "resume" and source is not None and dataset.name != source.dataset:
                reason = f"a resumed run continues on its own dataset '{source.dataset}'"
            if reason is not None:
                item = self.dataset_combo.model().item(self.dataset_combo.count() - 1)
                item.setEnabled(False)
                item.setToolTip(reason)
        if mode == "resume" and source is not None:
            chosen = source.dataset
        index = self.dataset_combo.findData(chosen)
        if index < 0 or not self._dataset_usable(index):
            index = next((i for i in range(self.dataset_combo.count()) if self._dataset_usable(i)), -1)
        self.dataset_combo.setCurrentIndex(index)
        self.dataset_combo.blockSignals(False)
        if not self.datasets:
            self.dataset_combo.setPlaceholderText("No datasets yet: import one first")
        elif index < 0:
            self.dataset_combo.setPlaceholderText("No dataset fits this setup")

    def _dataset_usable(self, index: int) -> bool:
        item = self.dataset_combo.model().item(index)
        return item is not None and item.isEnabled()

    def _fill_interrupted(self) -> None:
        self.interrupted_combo.clear()
        for run in self.interrupted:
            target = f" of {run.target_steps:,}" if run.target_steps else ""
            self.interrupted_combo.addItem(f"{run.model}  ({run.family}, step {run.step:,}{target})", run.model)
        if self.interrupted:
            first = self.interrupted[0]
            target = f" of {first.target_steps:,}" if first.target_steps and first.target_steps > first.step else ""
            more = f" ({len(self.interrupted) - 1} more below)" if len(self.interrupted) > 1 else ""
            self.interrupted_label.setText(
                f"<b>A run stopped before it finished.</b> '{first.model}' reached step {first.step:,}{target}{more}; "
                "resume it from its last checkpoint.")
        self.interrupted_combo.setVisible(len(self.interrupted) > 1)
        self.interrupted_banner.setVisible(bool(self.interrupted))

    # --- the form -------------------------------------------------------------------------------

    @property
    def family(self) -> str:
        """The chosen family's registry name."""
        return str(self.family_combo.currentData())

    @property
    def mode(self) -> str:
        """'new', 'finetune' or 'resume'."""
        return MODES[max(0, self.mode_group.checkedId())]

    @property
    def source_model(self) -> ModelSummary | None:
        """The model picked to fine-tune from or resume (None when starting fresh)."""
        if self.mode == "new":
            return None
        name = self.source_combo.currentData()
        return next((model for model in self.models if model.name == name), None)

    @property
    def running(self) -> bool:
        """Whether this page's job is queued, running or paused."""
        return self.handle is not None and not self.handle.done

    def set_mode(self, mode: str) -> None:
        """Choose 'new', 'finetune' or 'resume'."""
        self.mode_buttons[mode].setChecked(True)

    def set_family(self, family: str) -> None:
        """Choose a family by registry name."""
        self.family_combo.setCurrentIndex(self.family_combo.findData(family))

    def set_dataset(self, name: str) -> None:
        """Choose a dataset by name."""
        self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(name))

    def set_source_model(self, name: str) -> None:
        """Choose the model to fine-tune from or resume."""
        self.source_combo.setCurrentIndex(self.source_combo.findData(name))

    def set_settings(self, values: dict[str, Any]) -> None:
        """Put hyperparameter values into the settings forms (unknown names are a StudioError)."""
        for name, value in values.items():
            form = next((f for f in self.forms.values() if name in f.editors), None)
            if form is None:
                raise StudioError(f"unknown setting '{name}' for {self.family}")
            form.set_value(name, value)

    def settings(self) -> dict[str, Any]:
        """The settings to pass to the trainer: what differs from the defaults, or for an existing
        model every training and sampling value (its network shape is fixed)."""
        if self.mode == "new":
            return {k: v for form in self.forms.values() for k, v in form.values(only_changed=True).items()}
        return {**self.forms["training"].values(), **self.forms["sampling"].values()}

    def _family_changed(self) -> None:
        cls = family_class(self.family)
        self.family_description.setText(cls.description)
        capabilities = ", ".join(sorted(cls.capabilities))
        self.family_capabilities.setText(f"<b>Can:</b> {capabilities}")
        source = self.source_model
        if source is not None and source.family != self.family:
            source = None
        key = (self.family, source.name if source is not None else None)
        # Rebuild the editors only for another family or model: a refresh must not undo the user's edits.
        if key != self._form_key:
            self._form_key = key
            schema = cls.full_schema()
            names = {h.name for h in schema}
            values = {k: v for k, v in (source.hyperparameters if source else {}).items() if k in names}
            for group, form in self.forms.items():
                form.set_schema([h for h in schema if h.group == group], values)
                self.form_groups[group].setVisible(bool(form.settings))
        self._fill_datasets()
        self._suggest_name()

    def _mode_changed(self) -> None:
        self._source_changed()

    def _source_changed(self) -> None:
        """Fine-tuning or resuming fixes the family (and for resume the dataset and name) to the model's."""
        source = self.source_model
        if source is not None:
            self.family_combo.blockSignals(True)
            self.set_family(source.family)
            self.family_combo.blockSignals(False)
        self._family_changed()
        if source is not None and self.mode == "resume":
            self._suggested_name = source.name  # leaving Resume replaces it with a free name
            self.name_edit.setText(source.name)
            self.steps_spin.setMinimum(source.steps + 1)
            self.steps_spin.setValue(max(self.steps_spin.value(), source.steps + 1000))
        else:
            self.steps_spin.setMinimum(1)
            self._suggest_name()
        self._check_name()
        self._update_controls()

    def _free_name(self, base: str) -> str:
        """`base`, or `base-2`, `base-3`... whichever no model has yet."""
        taken = {model.name for model in self.models}
        name, number = base[:64], 2
        while name in taken:
            name = f"{base[:60]}-{number}"
            number += 1
        return name

    def _suggest_name(self) -> None:
        """Propose a free name like 'digits-gan' while the field is empty or holds the last proposal."""
        if self.mode == "resume" or self.name_edit.text() not in ("", self._suggested_name):
            return
        dataset = self.dataset_combo.currentData()
        self._suggested_name = self._free_name(f"{dataset}-{self.family}" if dataset else self.family)
        self.name_edit.setText(self._suggested_name)

    def name_problem(self) -> str | None:
        """Why the name cannot be used for this run, or None."""
        name = self.name_edit.text().strip()
        if not name:
            return "Give the model a name (letters, digits, '.', '_' or '-')."
        try:
            validate_name(name)
        except StudioError as error:
            return str(error)
        taken = any(model.name == name for model in self.models)
        if taken and self.mode != "resume":
            return f"A model named '{name}' already exists: pick another name, or choose Resume to continue it."
        return None

    def _check_name(self) -> None:
        problem = self.name_problem() if self.name_edit.text() else None
        self.name_hint.setText(problem or "")
        self.name_hint.setVisible(problem is not None)

    def _update_controls(self) -> None:
        """Enable what makes sense for the current state (idle or running, new, fine-tune or resume)."""
        running = self.running
        for widget in self.setup_widgets:
            widget.setEnabled(not running)
        self.interrupted_banner.setEnabled(not running)
        mode = self.mode
        existing = mode != "new"
        self.source_combo.setEnabled(existing and not running)
        self.family_combo.setEnabled(not existing)
        self.dataset_combo.setEnabled(mode != "resume")
        self.name_edit.setEnabled(mode != "resume")
        # An existing model's network shape is fixed; only training and sampling settings may change.
        self.form_groups["model"].setEnabled(not existing and not running)
        self.form_groups["model"].setTitle(
            f"{GROUP_TITLES['model']} (fixed: taken from the model)" if existing else GROUP_TITLES["model"])
        self.steps_spin.setEnabled(self.steps_check.isChecked())
        self.minutes_spin.setEnabled(self.minutes_check.isChecked())
        self.start_button.setEnabled(not running)
        self.pause_button.setEnabled(running and self.handle is not None and self.handle.state in ("running", "paused"))
        self.cancel_button.setEnabled(running and not (self.handle is not None and self.handle.token.cancelled))
        for shortcut in self.pause_shortcuts:
            shortcut.setEnabled(running)
        paused = self.handle is not None and self.handle.state == "paused"
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setAccessibleName("Resume training" if paused else "Pause training")

    # --- starting and controlling a run ---------------------------------------------------------

    def form_problem(self) -> str | None:
        """Why the form cannot start a run (one readable line), or None."""
        if self.mode != "new" and self.source_model is None:
            return "Choose the model to fine-tune from or to resume (train one first)."
        if self.mode != "resume":
            problem = self.name_problem()
            if problem:
                return problem
            if not self.datasets:
                return "No dataset yet: add one on the Datasets page (for example the digits sample)."
            if self.dataset_combo.currentData() is None:
                return "No dataset fits this setup: choose a square 8, 16, 32 or 64 px dataset."
        if not (self.steps_check.isChecked() or self.minutes_check.isChecked()):
            return "Give a budget: a total number of steps, a number of minutes, or both."
        source = self.source_model
        if self.mode == "resume" and source is not None and self.steps_check.isChecked() and (
                self.steps_spin.value() <= source.steps):
            return f"'{source.name}' is already at step {source.steps:,}: ask for a larger total."
        try:
            self.settings()
        except StudioError as error:
            return str(error)
        return None

    def start(self) -> JobHandle | None:
        """Check the form and submit the training job (a readable message instead when it cannot start)."""
        if self.running:
            return None
        problem = self.form_problem()
        if problem is not None:
            self.context.error("Cannot start training", problem)
            return None
        mode, source = self.mode, self.source_model
        name = source.name if mode == "resume" and source is not None else self.name_edit.text().strip()
        family = self.family
        options: dict[str, Any] = {
            "family": family,
            "dataset": None if mode == "resume" else self.dataset_combo.currentData(),
            "steps": self.steps_spin.value() if self.steps_check.isChecked() else None,
            "minutes": self.minutes_spin.value() if self.minutes_check.isChecked() else None,
            "seed": self.seed_spin.value(),
            "init_from": source.name if mode == "finetune" and source is not None else None,
            "resume": mode == "resume",
            "settings": self.settings(),
            "checkpoint_every": self.checkpoint_every_spin.value(),
            "preview_every": self.preview_every_spin.value(),
            "preview_count": PREVIEW_COUNT.get(family, DEFAULT_PREVIEW_COUNT),
            "threads": self.threads_spin.value(),
        }
        store = self.store
        self.model_name = name
        # A full garbage collection walks every object the app holds (torch, Qt wrappers, SQLAlchemy):
        # measured at 200-330 ms on 2 cores, and the objects a run's first steps create trigger one.
        # Objects alive now outlive the run anyway, so leave them out of collections until it ends.
        gc.freeze()
        self._reset_monitor(family, source.steps if mode == "resume" and source is not None else 0, options["steps"])
        self.handle = self.context.runner.submit(f"Train {name}", lambda token: train(store, TrainOptions(name,
                                                                                         **options), cancel=token))
        self.handle.started.connect(self._job_started)
        self.handle.event.connect(self._job_event)
        self.handle.finished.connect(self._job_finished)
        self.handle.failed.connect(self._job_failed)
        self.handle.cancelled.connect(self._job_cancelled)
        self.handle.ended.connect(self._job_ended)
        queued = self.context.runner.current is not None and self.context.runner.current is not self.handle
        verb = {"new": "Training", "finetune": "Fine-tuning", "resume": "Resuming"}[mode]
        self._set_status(f"Waiting for the current job to finish before training '{name}'\u2026" if queued
                         else f"{verb} '{name}'\u2026")
        self._update_controls()
        return self.handle

    def _start_shortcut(self) -> None:
        if self.isVisible():
            self.start()

    def resume_interrupted(self) -> JobHandle | None:
        """Resume the chosen interrupted run with the budget it had."""
        name = self.interrupted_combo.currentData() if self.interrupted_combo.count() else None
        run = next((r for r in self.interrupted if r.model == name), None)
        if run is None or self.running:
            return None
        self.set_mode("resume")
        self.set_source_model(run.model)
        if run.target_steps and run.target_steps > run.step:
            self.steps_check.setChecked(True)
            self.steps_spin.setValue(run.target_steps)
        if run.budget_minutes:
            self.minutes_check.setChecked(True)
            self.minutes_spin.setValue(run.budget_minutes)
        return self.start()

    def toggle_pause(self) -> None:
        """Pause a running job, or resume a paused one."""
        if self.handle is None or self.handle.done:
            return
        if self.handle.state == "paused":
            self.handle.resume()
            self._set_status(f"Training '{self.model_name}'\u2026")
        elif self.handle.state == "running":
            self.handle.pause()
            self._set_status("Paused after the current step. Resume with Space or Ctrl+P.")
            self.speed_label.setText("paused")
        self._update_controls()

    def cancel(self) -> None:
        """Stop the run; the trainer saves a checkpoint on its way out."""
        if self.handle is None or self.handle.done:
            return
        self.handle.cancel()
        self.cancel_button.setText("Cancelling\u2026")
        self._set_status("Cancelling: saving a checkpoint\u2026")
        self._update_controls()

    def shutdown(self) -> None:
        """The window closes: stop the plot timer (the runner cancels the job itself)."""
        self.plot_timer.stop()
        if self.running:
            gc.unfreeze()

    # --- job signals (GUI thread) ---------------------------------------------------------------

    def _reset_monitor(self, family: str, first_step: int = 0, target: int | None = None) -> None:
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
        self.current_step = 0
        self.progress.setValue(0)
        self.step_label.setText("Step \u2014")
        self.speed_label.setText("\u2014 samples/s")
        self.eta_label.setText("ETA \u2014")
        self.checkpoint_label.setText("")
        self.figures_label.setText("")
        self.preview_step_label.setText("<b>Preview</b>")
        self.preview_grid.clear_images("Waiting for the first preview\u2026")
        self.preview_caption.setText(
            "Row 1: real images; row 2: their reconstructions (blur shows here); then samples." if family == "vae"
            else "Samples from fixed seeds: the same images sharpen as training goes on.")
        self.cancel_button.setText("Cancel")

    def _job_started(self) -> None:
        self.plot_timer.start()
        self._set_status(f"Training '{self.model_name}'\u2026 (Space pauses)")
        self._update_controls()

    def _job_event(self, event: Any) -> None:
        if isinstance(event, TrainingProgress):
            self._show_progress(event)
        elif isinstance(event, PreviewReady):
            self._show_preview(event)
        elif isinstance(event, TrainingWarning):
            self._show_warning(event)
        elif isinstance(event, CheckpointSaved):
            self.current_step = max(self.current_step, event.step)
            self.checkpoint_label.setText(f"checkpoint: step {event.step:,}")

    def _show_progress(self, event: TrainingProgress) -> None:
        self.current_step = event.step
        target = f" / {event.target_steps:,}" if event.target_steps else ""
        self.step_label.setText(f"Step <b>{event.step:,}</b>{target}")
        if self.handle is not None and self.handle.state != "paused":
            self.speed_label.setText(f"{event.samples_per_second:,.0f} samples/s")
        self.eta_label.setText(f"ETA {format_duration(event.eta_seconds)}  \u00b7  elapsed "
                               f"{format_duration(event.elapsed_seconds)}")
        if event.target_steps:
            self.progress.setValue(int(1000 * min(1.0, event.step / event.target_steps)))
        elif event.eta_seconds is not None:
            done = event.elapsed_seconds / max(1e-9, event.elapsed_seconds + event.eta_seconds)
            self.progress.setValue(int(1000 * min(1.0, done)))
        finite = {k: v for k, v in event.losses.items() if math.isfinite(v)}
        if finite:
            self.history.append(event.step, finite)
            self._plot_dirty = True

    def _redraw_plot(self) -> None:
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
        self.figures_label.setToolTip("\n".join(
            f"{FIGURE_NAMES[k][0]}: {FIGURE_NAMES[k][1]}" for k in event.figures if k in FIGURE_NAMES))

    def _show_warning(self, event: TrainingWarning) -> None:
        if event.message not in self.warnings:
            self.warnings.append(event.message)
        shown = "<br>".join(f"\u26a0 {message}" for message in self.warnings[-3:])
        self.warning_banner.setText(f"<b>Step {event.step:,}:</b> {shown}")
        self.warning_banner.setVisible(True)

    def _job_finished(self, result: Any) -> None:
        self._show_result(result, "Completed")

    def _job_cancelled(self) -> None:
        result = self.handle.result if self.handle is not None else None
        if result is not None:
            self._show_result(result, "Cancelled")
        else:
            self._set_status("Cancelled before training began: nothing was saved.")

    def _show_result(self, result: Any, verb: str) -> None:
        losses = ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in (result.final_losses or {}).items())
        new_steps = result.steps - result.start_step
        kept = " The weights so far are saved: choose Resume to go on." if verb == "Cancelled" else ""
        self._set_status(
            f"<b>{verb}:</b> '{result.model}' is at step {result.steps:,} ({new_steps:,} new steps in "
            f"{format_duration(result.seconds)}){'; final losses ' + losses if losses else ''}.{kept}")
        self.current_step = result.steps
        self.step_label.setText(f"Step <b>{result.steps:,}</b>")
        self.speed_label.setText(verb.lower())
        self.eta_label.setText(f"took {format_duration(result.seconds)}")
        if verb == "Completed":
            self.progress.setValue(1000)

    def _job_failed(self, message: str) -> None:
        if self.handle is not None:
            self.handle.error_shown = True  # type: ignore[attr-defined] - the window then skips its own line
        self._set_status(f"<b>Failed:</b> {message}")
        self.speed_label.setText("failed")
        self.context.error("Training failed", message)

    def _job_ended(self) -> None:
        gc.unfreeze()
        self.plot_timer.stop()
        self._redraw_plot()
        self._update_controls()
        self.cancel_button.setText("Cancel")
        # The run wrote (or updated) a model; every page listing models reloads, this one included.
        self.context.signals.modelsChanged.emit()
        name = self.name_edit.text().strip()
        if self.mode != "resume" and any(model.name == name for model in self.models):
            # Ready for the next run: the name just used is taken now, so offer its next free variant.
            self._suggested_name = self._free_name(name)
            self.name_edit.setText(self._suggested_name)

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
