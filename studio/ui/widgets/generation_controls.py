"""The controls the generation pages (Generate, Interpolate, Inpaint) share, and their common base class.

A model picker that disables the families lacking a capability with the engine's own reason, the
backend and provider choice that knows whether an ONNX export is current, a seed box that holds
the engine's full 63-bit seeds, a job helper, the strip of results, and `GenerationPage`: the
model, backend and sampling-settings controls, the run button with its progress, and the page's
reaction to a new model choice.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QImage, QKeySequence, QPixmap, QShortcut, QValidator
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.generation import MAX_COUNT, MAX_SEED
from studio.engine.jobs import CancelToken, Job, Progress
from studio.engine.library import ModelSummary, list_models
from studio.engine.models.registry import family_class
from studio.engine.models.schema import Hyperparameter
from studio.engine.runtime.pipelines import PIPELINES
from studio.engine.runtime.providers import PROVIDER_CHOICES, available_providers
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.widgets import named
from studio.ui.widgets.schema_form import SchemaForm

INPAINT_ONLY_SETTINGS = frozenset({"resample", "inpaint_iterations"})
DICE_RANGE = 2**31  # the range the engine draws from when no seed is given
LEFT_COLUMN_WIDTH = 350


# --- what a family can do ---------------------------------------------------------------------


def unsupported_reason(family: str, capability: str | None) -> str | None:
    """The engine's one-line reason why `family` cannot do `capability`, or None when it can."""
    pipeline_class = PIPELINES.get(family)
    if pipeline_class is None:
        return f"unknown family '{family}': this version of Studio cannot open it"
    if capability is None or capability in pipeline_class.capabilities:
        return None
    return str(pipeline_class.unsupported(capability))


def sampling_schema(family: str, exclude: Iterable[str] = ()) -> tuple[Hyperparameter, ...]:
    """A family's generation options (the schema's "sampling" group), less those named in `exclude`."""
    skipped = set(exclude)
    return tuple(h for h in family_class(family).full_schema() if h.group == "sampling" and h.name not in skipped)


def model_caption(model: ModelSummary) -> str:
    """'gan, 8x8 grey, 1,200 steps trained': what a model is, in a line."""
    colour = "RGB" if model.channels == 3 else "grey"
    return f"{model.family}, {model.resolution}x{model.resolution} {colour}, {model.steps:,} steps trained"


def export_problem(model: ModelSummary) -> str | None:
    """Why the ONNX backend cannot run `model` now (no export, damaged, stale), or None when it can."""
    state = model.export
    if state is None:
        return f"'{model.name}' has no ONNX export yet: export it on the Models page first"
    if state.get("damaged"):
        return f"the ONNX export of '{model.name}' is damaged: export it again on the Models page"
    if not state.get("current"):
        return f"the ONNX export of '{model.name}' is older than its weights: export it again on the Models page"
    return None


# --- shared controls --------------------------------------------------------------------------


class ModelPicker(QComboBox):
    """A combo box of the library's models; models whose family lacks `capability` are disabled.

    A disabled model's tooltip (in the popup list) is the engine's reason, e.g. why a PixelCNN
    cannot interpolate, so the user learns what each family can do where they choose.
    """

    modelChanged = Signal(object)  # noqa: N815 - Qt naming; the ModelSummary, or None when nothing is chosen

    def __init__(self, capability: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.capability = capability
        self.models: dict[str, ModelSummary] = {}
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(14)
        self.currentIndexChanged.connect(lambda _index: self.modelChanged.emit(self.current()))

    def set_models(self, models: Sequence[ModelSummary]) -> None:
        """Show these models, keeping the current choice when it is still there and usable."""
        keep = self.current_name()
        self.blockSignals(True)
        self.clear()
        self.models = {model.name: model for model in models}
        for index, model in enumerate(models):
            self.addItem(model.name, model.name)
            reason = unsupported_reason(model.family, self.capability)
            item = self.model().item(index)  # a QStandardItemModel: items can be disabled one by one
            if reason:
                item.setEnabled(False)
                item.setToolTip(f"{model.name} ({model_caption(model)}) — {reason}")
            else:
                item.setToolTip(f"{model.name}: {model_caption(model)}")
        if not self.select(keep or ""):
            enabled = [name for name in self.models if self.is_usable(name)]
            if not (enabled and self.select(enabled[0])):
                self.setCurrentIndex(-1)
        self.blockSignals(False)
        self.modelChanged.emit(self.current())  # once, whether or not the choice changed

    def is_usable(self, name: str) -> bool:
        """Whether the model is listed and its family can do what this page needs."""
        model = self.models.get(name)
        return model is not None and unsupported_reason(model.family, self.capability) is None

    def select(self, name: str) -> bool:
        """Choose a model by name; False (and no change) when it is missing or disabled."""
        index = self.findData(name)
        if index < 0 or not self.is_usable(name):
            return False
        self.setCurrentIndex(index)
        return True

    def current_name(self) -> str | None:
        """The chosen model's name."""
        data = self.currentData()
        return str(data) if data is not None else None

    def current(self) -> ModelSummary | None:
        """The chosen model's summary, or None when nothing usable is chosen."""
        name = self.current_name()
        return self.models.get(name) if name and self.is_usable(name) else None


class BackendPicker(QWidget):
    """torch or onnx, the ONNX Runtime provider, and an "Export first" way out when there is no export."""

    changed = Signal()

    def __init__(self, context: StudioContext, prefix: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model: ModelSummary | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.backend_combo = named(QComboBox(), f"{prefix}BackendCombo", "Backend",
                                   "torch runs the trained networks; onnx runs the exported ONNX models")
        self.backend_combo.addItem("torch", "torch")
        self.backend_combo.addItem("onnx", "onnx")
        self.provider_combo = named(QComboBox(), f"{prefix}ProviderCombo", "ONNX Runtime provider",
                                    "the ONNX Runtime execution provider (used by the onnx backend only)")
        offered = set(available_providers())
        for index, provider in enumerate(PROVIDER_CHOICES):
            self.provider_combo.addItem(provider, provider)
            if provider != "auto" and provider not in offered:
                item = self.provider_combo.model().item(index)
                item.setEnabled(False)
                item.setToolTip(f"{provider}: not offered by this ONNX Runtime build")
        self.export_button = named(QPushButton("Export first…"), f"{prefix}ExportButton",
                                   "Export the model to ONNX first", "open the Models page to export this model")
        self.export_button.clicked.connect(self._go_export)
        layout.addWidget(self.backend_combo)
        layout.addWidget(self.provider_combo, 1)
        layout.addWidget(self.export_button)
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)
        self.provider_combo.currentIndexChanged.connect(lambda _index: self.changed.emit())
        self.set_model(None)

    def set_model(self, model: ModelSummary | None) -> None:
        """Enable onnx only when the model has a current export; say why otherwise."""
        self.model = model
        problem = export_problem(model) if model is not None else "choose a model first"
        onnx_item = self.backend_combo.model().item(1)
        onnx_item.setEnabled(problem is None)
        onnx_item.setToolTip(problem or "run the exported ONNX model with ONNX Runtime")
        self.backend_combo.setToolTip(
            "torch runs the trained networks; onnx runs the exported ONNX models"
            + (f"\nonnx is unavailable: {problem}" if problem else "")
        )
        if problem is not None and self.backend() == "onnx":
            self.backend_combo.setCurrentIndex(0)
        self.export_button.setVisible(model is not None and problem is not None)
        self.export_button.setToolTip(problem or "")
        self._backend_changed()

    def onnx_problem(self) -> str | None:
        """Why onnx is unavailable for the current model, or None."""
        return export_problem(self.model) if self.model is not None else "choose a model first"

    def backend(self) -> str:
        """'torch' or 'onnx'."""
        return str(self.backend_combo.currentData())

    def provider(self) -> str:
        """The provider for the engine: 'auto' on torch (the engine refuses a provider there)."""
        return str(self.provider_combo.currentData()) if self.backend() == "onnx" else "auto"

    def set_backend(self, backend: str, provider: str | None = None) -> bool:
        """Choose a backend (and provider); False when onnx was asked for but is unavailable."""
        if backend == "onnx" and self.onnx_problem() is not None:
            self.backend_combo.setCurrentIndex(0)
            return False
        self.backend_combo.setCurrentIndex(max(0, self.backend_combo.findData(backend)))
        if provider is not None and backend == "onnx":
            index = self.provider_combo.findData(provider)
            usable = index >= 0 and self.provider_combo.model().item(index).isEnabled()
            self.provider_combo.setCurrentIndex(index if usable else 0)
        return True

    def _backend_changed(self, _index: int = 0) -> None:
        self.provider_combo.setEnabled(self.backend() == "onnx")
        self.changed.emit()

    def _go_export(self) -> None:
        name = self.model.name if self.model is not None else "the model"
        self.context.go_to("models")
        self.context.notify(f"Export {name} to ONNX here, then come back to use the onnx backend")


class SeedSpinBox(QAbstractSpinBox):
    """A spin box for seeds from 0 to 2**63 - 1 (a QSpinBox stops at 2**31 - 1)."""

    valueChanged = Signal(object)  # noqa: N815 - Qt naming; a Python int

    def __init__(self, maximum: int = MAX_SEED, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._maximum = maximum
        self._value = 0
        self.setAccelerated(True)
        self.lineEdit().setText("0")
        self.lineEdit().textEdited.connect(self._edited)
        self.editingFinished.connect(lambda: self.setValue(self._value))

    def value(self) -> int:
        """The seed."""
        return self._value

    def maximum(self) -> int:
        """The largest seed accepted."""
        return self._maximum

    def setValue(self, value: int) -> None:
        """Show a seed, clamped to 0..maximum."""
        value = max(0, min(self._maximum, int(value)))
        changed = value != self._value
        self._value = value
        if self.lineEdit().text() != str(value):
            self.lineEdit().setText(str(value))
        if changed:
            self.valueChanged.emit(value)

    def stepBy(self, steps: int) -> None:
        """Arrow keys, wheel and the arrows step the seed by one."""
        self.setValue(self._value + steps)

    def stepEnabled(self) -> QAbstractSpinBox.StepEnabledFlag:
        """Up unless at the maximum, down unless at zero."""
        flags = QAbstractSpinBox.StepEnabledFlag.StepNone
        if self._value < self._maximum:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepUpEnabled
        if self._value > 0:
            flags |= QAbstractSpinBox.StepEnabledFlag.StepDownEnabled
        return flags

    def validate(self, text: str, pos: int) -> tuple[QValidator.State, str, int]:
        """Digits only, at most the maximum; an empty box is allowed while typing."""
        if text == "":
            return QValidator.State.Intermediate, text, pos
        if not text.isdigit():
            return QValidator.State.Invalid, text, pos
        if int(text) > self._maximum:
            return QValidator.State.Invalid, text, pos
        return QValidator.State.Acceptable, text, pos

    def fixup(self, text: str) -> str:
        """An emptied box goes back to the last seed."""
        return text if text.isdigit() else str(self._value)

    def _edited(self, text: str) -> None:
        if text.isdigit():
            value = min(self._maximum, int(text))
            if value != self._value:
                self._value = value
                self.valueChanged.emit(value)


def seed_row(prefix: str, maximum: int, dice_name: str | None = None) -> tuple[QWidget, SeedSpinBox, QToolButton]:
    """A seed box and a dice button that draws a new random seed."""
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    spin = named(SeedSpinBox(maximum), f"{prefix}SeedSpin", "Seed",
                 "the first image's seed; image k uses seed + k. The same seed gives the same image")
    dice = named(QToolButton(), dice_name or f"{prefix}SeedDiceButton", "Draw a random seed",
                 "draw a random seed")
    dice.setText("Random")

    def roll() -> None:
        current = spin.value()
        drawn = current
        while drawn == current:  # a "new" seed equal to the old one would look like a broken button
            drawn = secrets.randbelow(min(DICE_RANGE, maximum + 1))
        spin.setValue(drawn)

    dice.clicked.connect(roll)
    layout.addWidget(spin, 1)
    layout.addWidget(dice)
    return row, spin, dice


def crisp_pixmap(image: QImage, cell: int) -> QPixmap:
    """The image scaled by the largest whole factor that fits `cell` (smoothly down when it is larger)."""
    side = max(image.width(), image.height(), 1)
    if side > cell:
        return QPixmap.fromImage(image.scaled(cell, cell, Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))
    factor = max(1, cell // side)
    return QPixmap.fromImage(image.scaled(image.width() * factor, image.height() * factor,
                                          Qt.AspectRatioMode.IgnoreAspectRatio,
                                          Qt.TransformationMode.FastTransformation))


class ResultStrip(QListWidget):
    """The images a job made, as crisp thumbnails labelled with their gallery ids.

    Thumbnails load a few dozen per event-loop turn, so a thousand interpolation frames appear as
    they load instead of freezing the window. Clicking one emits `itemChosen(id)`.
    """

    itemChosen = Signal(int)  # noqa: N815 - Qt naming; a gallery item id
    itemOpened = Signal(int)  # noqa: N815 - a double click
    LIMIT = 1000  # thumbnails shown at most; the gallery has them all
    BATCH = 48

    def __init__(self, cell: int = 96, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cell = cell
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWrapping(True)
        self.setIconSize(QSize(cell, cell))
        self.setGridSize(QSize(cell + 14, cell + 24))
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self._queue: list[tuple[dict[str, Any], str]] = []
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._load_some)
        self.itemClicked.connect(lambda item: self.itemChosen.emit(int(item.data(Qt.ItemDataRole.UserRole))))
        self.itemActivated.connect(lambda item: self.itemOpened.emit(int(item.data(Qt.ItemDataRole.UserRole))))
        self.total = 0

    def show_items(self, items: Sequence[Mapping[str, Any]], caption: Callable[[int, Mapping[str, Any]], str]
                   | None = None) -> None:
        """Replace the strip with these gallery items ({id, path, seed}), loading them progressively."""
        self.clear()
        self.total = len(items)
        label = caption or (lambda _index, item: f"#{item['id']}")
        self._queue = [(dict(item), label(index, item)) for index, item in enumerate(items[: self.LIMIT])]
        if self._queue:
            self._timer.start()
        else:
            self._timer.stop()

    @property
    def pending(self) -> int:
        """Thumbnails still to load."""
        return len(self._queue)

    def ids(self) -> list[int]:
        """The gallery ids shown, in order."""
        return [int(self.item(row).data(Qt.ItemDataRole.UserRole)) for row in range(self.count())]

    def shutdown(self) -> None:
        """Stop loading (the window is closing)."""
        self._timer.stop()
        self._queue.clear()

    def _load_some(self) -> None:
        batch, self._queue = self._queue[: self.BATCH], self._queue[self.BATCH:]
        for item, text in batch:
            image = QImage(str(item["path"]))
            entry = QListWidgetItem(QIcon(crisp_pixmap(image, self.cell)) if not image.isNull() else QIcon(), text)
            entry.setData(Qt.ItemDataRole.UserRole, int(item["id"]))
            seed = item.get("seed")
            entry.setToolTip(f"gallery item #{item['id']}" + (f", seed {seed}" if seed is not None else "")
                             + ("" if not image.isNull() else " (its file could not be read)"))
            entry.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.addItem(entry)
        if not self._queue:
            self._timer.stop()


class PageJob:
    """Runs one engine job for a page: the run button waits, the progress bar follows, errors are shown."""

    def __init__(self, context: StudioContext, button: QPushButton, progress: QProgressBar, status: QLabel,
                 ready: Callable[[], None] | None = None) -> None:
        """`ready()` decides whether the run button comes back enabled once the job ends (default: yes)."""
        self.context = context
        self.button = button
        self.progress = progress
        self.status = status
        self.ready = ready or (lambda: button.setEnabled(True))
        self.handle: JobHandle | None = None

    @property
    def running(self) -> bool:
        """Whether this page's job is queued or running."""
        return self.handle is not None and not self.handle.done

    def submit(self, title: str, factory: Callable[[CancelToken], Job], on_finished: Callable[[Any], None],
               error_title: str) -> JobHandle:
        """Queue the job; `on_finished(result)` runs in the GUI thread; galleryChanged follows every end."""
        handle = self.context.runner.submit(title, factory)
        self.handle = handle
        self.button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.status.setText(f"{title}: waiting for the engine…" if self.context.runner.current else f"{title}…")
        handle.started.connect(lambda: self.status.setText(f"{title}…"))
        handle.event.connect(self._event)
        handle.finished.connect(on_finished)
        handle.failed.connect(lambda message: self._failed(handle, error_title, message))
        handle.cancelled.connect(lambda: self.status.setText(f"{title}: cancelled"))
        handle.ended.connect(self._ended)
        return handle

    def _event(self, event: Any) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
            if event.message:
                self.status.setText(event.message)

    def _failed(self, handle: JobHandle, title: str, message: str) -> None:
        handle.error_shown = True  # the main window then leaves the dialog to us
        self.status.setText(f"{title}: {message}")
        self.context.error(title, message)

    def _ended(self) -> None:
        self.progress.setVisible(False)
        self.ready()
        # Even a failed or cancelled job may have saved a batch before it stopped: the gallery reloads.
        self.context.signals.galleryChanged.emit()


def result_summary(result: Any, noun: str = "image") -> str:
    """'4 images in 0.21 s (0.05 s each) on torch/cpu', plus the engine's note (e.g. a CPU fallback)."""
    count = len(result.items)
    each = result.seconds / max(1, count)
    text = (f"{count} {noun}{'s' if count != 1 else ''} in {result.seconds:.2f} s ({each:.3f} s each) "
            f"on {result.backend}/{result.device}")
    return f"{text}. {result.note}" if result.note else text


def scroll_column(content: QWidget, width: int = LEFT_COLUMN_WIDTH) -> QScrollArea:
    """The settings column: fixed width, scrolling vertically when the window is short."""
    area = QScrollArea()
    area.setWidget(content)
    area.setWidgetResizable(True)
    area.setFixedWidth(width)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area



def limit_diffusion_steps(form: SchemaForm, model: ModelSummary) -> None:
    """A diffusion model cannot take more sampling steps than its timesteps: bound the editor."""
    steps = form.editors.get("steps")
    timesteps = model.hyperparameters.get("timesteps")
    if model.family == "diffusion" and isinstance(steps, QSpinBox) and isinstance(timesteps, int):
        steps.setMaximum(timesteps)




def count_spin(object_name: str, accessible_name: str, tooltip: str, value: int) -> QSpinBox:
    """A spin box for how many images one run makes (1 to the engine's limit)."""
    spin = named(QSpinBox(), object_name, accessible_name, tooltip)
    spin.setRange(1, MAX_COUNT)
    spin.setValue(value)
    return spin


# --- the pages' common base -------------------------------------------------------------------


class GenerationPage(QWidget):
    """A page that runs one model on the sampling settings form: model, backend, run button and results.

    Subclasses build their controls with the `_build_*` helpers, call `_start(run)`, and adjust the
    class attributes and the `_no_model_text`, `_model_text` and `_run_problem` hooks.
    """

    EXCLUDED_SETTINGS: frozenset[str] = frozenset()  # sampling settings this page does not offer
    NO_USABLE_MODEL = "No model here can do this."  # the hint when there are models but none can
    RUN_TIP = ""  # the run button's tooltip while it can run

    model_picker: ModelPicker
    model_info: QLabel
    backend: BackendPicker
    form: SchemaForm
    options_box: QGroupBox
    progress: QProgressBar
    status: QLabel
    strip: ResultStrip
    job: PageJob

    def __init__(self, context: StudioContext, page_key: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.page_key = page_key
        self.setObjectName(f"{page_key}Page")
        self.setAccessibleName(title)
        self._form_family: str | None = None

    # --- construction --------------------------------------------------------------------

    def _build_model_controls(self, capability: str, tooltip: str) -> None:
        """The model picker and its caption, the backend choice, and the sampling settings form."""
        key = self.page_key
        self.model_picker = named(ModelPicker(capability), f"{key}ModelCombo", "Model", tooltip)
        self.model_info = QLabel()
        self.model_info.setObjectName(f"{key}ModelInfo")
        self.model_info.setWordWrap(True)
        self.backend = BackendPicker(self.context, key)
        self.form = named(SchemaForm(f"{key}Option_"), f"{key}Options", "Sampling settings")

    def _build_run_controls(self, text: str, object_name: str, activity: str) -> QPushButton:
        """The run button, its progress bar and status line, and the PageJob that drives them."""
        button = named(QPushButton(text), object_name, text, self.RUN_TIP)
        button.setMinimumHeight(34)
        self.progress = named(QProgressBar(), f"{self.page_key}Progress", f"{activity} progress")
        self.progress.setVisible(False)
        self.status = named(QLabel(), f"{self.page_key}Status", f"{activity} status")
        self.status.setWordWrap(True)
        self.job = PageJob(self.context, button, self.progress, self.status, self._update_run_state)
        return button

    def _build_settings(self, rows: Sequence[tuple[str, QWidget]], top: Sequence[QWidget] = (),
                        notes: Sequence[QWidget] = ()) -> QWidget:
        """The settings column: `top`, the model and `rows` as a form, the sampling settings, the run controls."""
        settings = QWidget()
        column = QVBoxLayout(settings)
        column.setContentsMargins(0, 0, 8, 0)
        for widget in top:
            column.addWidget(widget)
        form = QFormLayout()
        for label, widget in (("Model", self.model_picker), ("", self.model_info), *rows):
            form.addRow(label, widget)
        column.addLayout(form)
        self.options_box = QGroupBox("Sampling settings")
        options = QVBoxLayout(self.options_box)
        for widget in (self.form, *notes):
            options.addWidget(widget)
        column.addWidget(self.options_box)
        for widget in (self.job.button, self.progress, self.status):
            column.addWidget(widget)
        column.addStretch(1)
        return settings

    def _strip_body(self, settings: QWidget, caption: QLabel) -> QHBoxLayout:
        """The settings column beside the results: a caption over the strip."""
        results = QVBoxLayout()
        results.addWidget(caption)
        results.addWidget(self.strip, 1)
        body = QHBoxLayout()
        body.addWidget(scroll_column(settings))
        body.addLayout(results, 1)
        return body

    def _lay_out(self, body: QHBoxLayout, hint: str | None = None) -> None:
        """The page: its title, an optional hint, then the body."""
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<h2>{self.accessibleName()}</h2>"))
        if hint:
            label = QLabel(hint)
            label.setWordWrap(True)
            layout.addWidget(label)
        layout.addLayout(body, 1)

    def _start(self, run: Callable[[], object]) -> None:
        """Connect the model picker, the run button and Ctrl+Return; load the models and the last one used."""
        self.model_picker.modelChanged.connect(self._model_changed)
        self.job.button.clicked.connect(run)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            # A window shortcut on the page: Qt only matches it while the page is visible.
            QShortcut(QKeySequence(keys), self, run)
        self.context.signals.modelsChanged.connect(self.refresh)
        self.refresh()
        self.model_picker.select(str(self.context.value(f"{self.page_key}/model", "")))

    # --- state ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the models (an export or a new model may have appeared), keeping the choices."""
        backend, provider = self.backend.backend(), self.backend.provider_combo.currentData()
        self.model_picker.set_models(list_models(self.store))
        self.backend.set_backend(backend, str(provider))

    def on_shown(self) -> None:
        """Called when the page comes on screen."""
        self.refresh()

    def shutdown(self) -> None:
        """Stop loading thumbnails (the window is closing)."""
        self.strip.shutdown()

    def _no_model_text(self) -> str:
        """The model caption when no usable model is chosen."""
        usable = [m for m in self.model_picker.models if self.model_picker.is_usable(m)]
        return ("No model yet: train one on the Train page." if not self.model_picker.models else
                self.NO_USABLE_MODEL if not usable else "Choose a model.")

    def _model_text(self, model: ModelSummary) -> str:
        """The model caption under the picker."""
        return model_caption(model)

    def _model_changed(self, model: ModelSummary | None) -> None:
        """Show the chosen model: its caption, its backends and its family's sampling settings."""
        previous = self.form.values() if self.form.settings else {}
        self.backend.set_model(model)
        if model is None:
            self.form.set_schema(())
            self.options_box.setVisible(False)
            self.model_info.setText(self._no_model_text())
            self._update_run_state()
            return
        self.model_info.setText(self._model_text(model))
        schema = sampling_schema(model.family, self.EXCLUDED_SETTINGS)
        # The model's stored sampling settings are its defaults; a setting the user changed on the
        # same family carries over, so switching between two GANs keeps the chosen truncation.
        values = {h.name: model.hyperparameters.get(h.name, h.default) for h in schema}
        if self._form_family == model.family:
            values.update({k: v for k, v in previous.items() if k in values})
        self.form.set_schema(schema, values)
        limit_diffusion_steps(self.form, model)
        self._form_family = model.family
        self.options_box.setVisible(bool(schema))
        self._update_run_state()

    def _run_problem(self) -> str | None:
        """Why the page cannot run, besides a read-only database; None when it can."""
        return None if self.model_picker.current() is not None else "choose a model first"

    def _update_run_state(self) -> None:
        reason = (f"the database is read-only: {self.store.read_only_reason}" if self.store.read_only
                  else self._run_problem())
        self.job.button.setEnabled(reason is None and not self.job.running)
        self.job.button.setToolTip(reason or self.RUN_TIP)

    def _open_in_gallery(self, item_id: int) -> None:
        self.context.go_to("gallery")
        self.context.notify(f"gallery item #{item_id}")
