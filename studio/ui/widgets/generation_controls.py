"""The generation pages' (Generate, Interpolate, Inpaint) common base, `GenerationPage`, and its helpers.

`GenerationPage` holds the model, backend and sampling-settings controls, the run button with its
progress and status line, the run itself as an `EngineOp`, and the page's reaction to a new model
choice. The controls it is built from live beside it: `model_picker` (the model and backend
pickers), `class_picker` (a conditional model's class), `seed_box` (seed and count boxes) and
`result_strip` (the images a run made).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.engine.families.conditioning import CLASS_OPTION
from studio.engine.families.registry import declaration
from studio.engine.families.schema import Hyperparameter
from studio.engine.jobs import CancelToken, Job, Progress
from studio.engine.library import ModelSummary, list_models
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.operations import EngineOp
from studio.ui.widgets import named
from studio.ui.widgets.class_picker import ANY_CLASS_TEXT, ClassPicker
from studio.ui.widgets.model_picker import BackendPicker, ModelPicker, families_that_can, model_caption
from studio.ui.widgets.result_strip import ResultStrip
from studio.ui.widgets.schema_form import SchemaForm

LEFT_COLUMN_WIDTH = 350
# Sampling settings that only mean something for a class-conditional model (diffusion's classifier-free
# guidance scale): an unconditional model's form leaves them out, so they are never sent for it.
CLASS_ONLY_SETTINGS = frozenset({"guidance"})


def sampling_schema(family: str, operation: str, conditional: bool = True) -> tuple[Hyperparameter, ...]:
    """The generation options a family offers for `operation` (its declaration decides), without the
    class-only ones (guidance) for an unconditional model."""
    schema = declaration(family).settings_for(operation)
    return schema if conditional else tuple(s for s in schema if s.name not in CLASS_ONLY_SETTINGS)


def result_summary(result: Any, noun: str = "image") -> str:
    """'4 images in 0.21 s (0.05 s each) on torch/cpu', plus the engine's note (e.g. a CPU fallback)."""
    count = len(result.items)
    each = result.seconds / max(1, count)
    text = (
        f"{count} {noun}{'s' if count != 1 else ''} in {result.seconds:.2f} s ({each:.3f} s each) "
        f"on {result.backend}/{result.device}"
    )
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


def apply_sampling_limits(form: SchemaForm, model: ModelSummary) -> None:
    """Bound the settings the family ties to one of the model's hyperparameters (diffusion: steps <= timesteps)."""
    for setting, hyperparameter in declaration(model.family).sampling_limits.items():
        editor = form.editors.get(setting)
        limit = model.hyperparameters.get(hyperparameter)
        if isinstance(editor, QSpinBox) and isinstance(limit, int):
            editor.setMaximum(limit)


# --- the pages' common base -------------------------------------------------------------------


class GenerationPage(QWidget):
    """A page that runs one model on the sampling settings form: model, backend, run button and results.

    Subclasses build their controls with the `_build_*` helpers, call `_start(run)`, and adjust the
    class attributes and the `_no_model_text`, `_model_text` and `_run_problem` hooks.
    """

    OPERATION = "sample"  # what the page runs: the family's declaration says which settings apply
    # The hint when there are models but none can do what the page needs ({families}: those that can).
    NO_USABLE_MODEL = "No model here can do this: train a {families} model."
    RUN_TIP = ""  # the run button's tooltip while it can run

    model_picker: ModelPicker
    model_info: QLabel
    settings_layout: QFormLayout  # the model, backend, class... rows of the settings column
    backend: BackendPicker
    form: SchemaForm
    options_box: QGroupBox
    run_button: QPushButton
    progress: QProgressBar
    status: QLabel
    strip: ResultStrip

    def __init__(self, context: StudioContext, page_key: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.store = context.store
        self.page_key = page_key
        self.setObjectName(f"{page_key}Page")
        self.setAccessibleName(title)
        self._form_family: str | None = None
        self.handle: JobHandle | None = None  # the page's last run
        # A conditional model's class choices (one picker, or one per end of a walk), shown only for such a
        # model; each model's choices are remembered for the session, so switching models loses nothing.
        self.class_pickers: list[ClassPicker] = []
        self._class_memory: dict[str, tuple[str | None, ...]] = {}
        self._class_model: str | None = None  # the model whose classes the pickers offer

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

    def _build_class_picker(
        self, object_name: str, accessible_name: str, tooltip: str, any_text: str = ANY_CLASS_TEXT
    ) -> ClassPicker:
        """A class picker for a conditional model (its row is hidden for any other model)."""
        picker = named(ClassPicker(any_text), object_name, accessible_name, tooltip)
        self.class_pickers.append(picker)
        return picker

    def _build_run_controls(self, text: str, object_name: str, activity: str) -> QPushButton:
        """The run button, its progress bar and status line (`_run_job` drives them)."""
        self.run_button = named(QPushButton(text), object_name, text, self.RUN_TIP)
        self.run_button.setMinimumHeight(34)
        self.progress = named(QProgressBar(), f"{self.page_key}Progress", f"{activity} progress")
        self.progress.setVisible(False)
        self.status = named(QLabel(), f"{self.page_key}Status", f"{activity} status")
        self.status.setWordWrap(True)
        return self.run_button

    def _build_settings(
        self, rows: Sequence[tuple[str, QWidget]], top: Sequence[QWidget] = (), notes: Sequence[QWidget] = ()
    ) -> QWidget:
        """The settings column: `top`, the model and `rows` as a form, the sampling settings, the run controls."""
        settings = QWidget()
        column = QVBoxLayout(settings)
        column.setContentsMargins(0, 0, 8, 0)
        for widget in top:
            column.addWidget(widget)
        form = QFormLayout()
        for label, widget in (("Model", self.model_picker), ("", self.model_info), *rows):
            form.addRow(label, widget)
        self.settings_layout = form
        column.addLayout(form)
        self.options_box = QGroupBox("Sampling settings")
        options = QVBoxLayout(self.options_box)
        for widget in (self.form, *notes):
            options.addWidget(widget)
        column.addWidget(self.options_box)
        for widget in (self.run_button, self.progress, self.status):
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
        self.run_button.clicked.connect(run)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            # A window shortcut on the page: Qt only matches it while the page is visible.
            QShortcut(QKeySequence(keys), self, run)
        self.context.signals.modelsChanged.connect(self.refresh)
        self.refresh()
        self.model_picker.select(str(self.context.value(f"{self.page_key}/model", "")))

    # --- running -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether this page's run is queued or running."""
        return self.handle is not None and not self.handle.done

    def _run_job(
        self, title: str, factory: Callable[[CancelToken], Job], on_finished: Callable[[Any], None], error_title: str
    ) -> JobHandle:
        """Run the page's job as an EngineOp: the run button waits, the progress bar follows, a failure is shown
        under `error_title`; `on_finished(result)` runs in the GUI thread and galleryChanged follows every end."""
        self.run_button.setEnabled(False)
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.status.setText(f"{title}: waiting for the engine…" if self.context.runner.current else f"{title}…")
        self.handle = (
            EngineOp[Any](self.context, title, factory)
            .started(lambda: self.status.setText(f"{title}…"))
            .on_event(self._job_event)
            .success(on_finished)
            .failure(lambda message: self._job_failed(error_title, message))
            .cancelled(lambda: self.status.setText(f"{title}: cancelled"))
            .ended(self._job_ended)
            .run()
        )
        return self.handle

    def _job_event(self, event: Any) -> None:
        if isinstance(event, Progress) and event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
            if event.message:
                self.status.setText(event.message)

    def _job_failed(self, title: str, message: str) -> None:
        self.status.setText(f"{title}: {message}")
        self.context.error(title, message)

    def _job_ended(self) -> None:
        self.progress.setVisible(False)
        self._update_run_state()
        # Even a failed or cancelled job may have saved a batch before it stopped: the gallery reloads.
        self.context.signals.galleryChanged.emit()

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
        return (
            "No model yet: train one on the Train page."
            if not self.model_picker.models
            else self.NO_USABLE_MODEL.format(families=families_that_can(self.model_picker.capability or "sample"))
            if not usable
            else "Choose a model."
        )

    def _model_text(self, model: ModelSummary) -> str:
        """The model caption under the picker."""
        return model_caption(model)

    def _model_changed(self, model: ModelSummary | None) -> None:
        """Show the chosen model: its caption, its backends, its classes and its family's sampling settings."""
        previous = self.form.values() if self.form.settings else {}
        self.backend.set_model(model)
        self._show_classes(model)
        if model is None:
            self.form.set_schema(())
            self.options_box.setVisible(False)
            self.model_info.setText(self._no_model_text())
            self._update_run_state()
            return
        self.model_info.setText(self._model_text(model))
        schema = sampling_schema(model.family, self.OPERATION, bool(model.classes))
        # The model's stored sampling settings are its defaults; a setting the user changed on the
        # same family carries over, so switching between two GANs keeps the chosen truncation.
        values = {h.name: model.hyperparameters.get(h.name, h.default) for h in schema}
        if self._form_family == model.family:
            values.update({k: v for k, v in previous.items() if k in values})
        self.form.set_schema(schema, values)
        apply_sampling_limits(self.form, model)
        self._form_family = model.family
        self.options_box.setVisible(bool(schema))
        self._update_run_state()

    # --- classes -------------------------------------------------------------------------

    @property
    def conditional(self) -> bool:
        """Whether the chosen model is class-conditional (its class pickers are on show)."""
        model = self.model_picker.current()
        return model is not None and bool(model.classes)

    def _show_classes(self, model: ModelSummary | None) -> None:
        """Offer the model's classes (its choices of earlier in the session), or hide the pickers' rows."""
        if self._class_model is not None:
            self._class_memory[self._class_model] = tuple(picker.chosen() for picker in self.class_pickers)
        classes = list(model.classes) if model is not None else []
        self._class_model = model.name if model is not None and classes else None
        remembered = self._class_memory.get(self._class_model or "", ())
        for index, picker in enumerate(self.class_pickers):
            picker.set_classes(classes, remembered[index] if index < len(remembered) else None)
            if hasattr(self, "settings_layout"):
                self.settings_layout.setRowVisible(picker, bool(classes))

    def class_options(self, picker: ClassPicker | None = None) -> dict[str, str | None]:
        """The engine's `class` option from a picker (the first by default): {} for an unconditional model."""
        if not self.conditional:
            return {}
        chosen = (picker or self.class_pickers[0]).chosen() if self.class_pickers else None
        return {CLASS_OPTION: chosen}

    def _run_problem(self) -> str | None:
        """Why the page cannot run, besides a read-only database; None when it can."""
        return None if self.model_picker.current() is not None else "choose a model first"

    def _update_run_state(self) -> None:
        reason = (
            f"the database is read-only: {self.store.read_only_reason}" if self.store.read_only else self._run_problem()
        )
        self.run_button.setEnabled(reason is None and not self.running)
        self.run_button.setToolTip(reason or self.RUN_TIP)

    def _open_in_gallery(self, item_id: int) -> None:
        self.context.go_to("gallery")
        self.context.notify(f"gallery item #{item_id}")
