"""The Generate page: sample new images from a trained model into the gallery, with either backend.

It shares its base, `GenerationPage` (model and backend pickers, sampling settings, the run as an
`EngineOp`), with the Interpolate and Inpaint pages: `studio.ui.widgets.generation_controls`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from PySide6.QtWidgets import QLabel, QWidget

from studio.engine.families.conditioning import CLASS_OPTION
from studio.engine.families.registry import declaration
from studio.engine.generation import MAX_COUNT, MAX_SEED, generate
from studio.engine.jobs import CancelToken, Job
from studio.engine.runtime.provider_names import PROVIDER_CHOICES
from studio.errors import StudioError
from studio.ui.context import StudioContext
from studio.ui.jobs import JobHandle
from studio.ui.widgets import named
from studio.ui.widgets.generation_controls import GenerationPage, result_summary
from studio.ui.widgets.model_picker import unsupported_reason
from studio.ui.widgets.result_strip import ResultStrip, seed_caption
from studio.ui.widgets.schema_form import SchemaForm
from studio.ui.widgets.seed_box import count_spin, seed_row


def restore_form(form: SchemaForm, values: Mapping[str, Any]) -> list[str]:
    """Put known settings back in the form; returns the names that could not be shown."""
    skipped = []
    for name, value in values.items():
        if name not in form.editors:
            skipped.append(name)
            continue
        try:
            form.set_value(name, form.settings[name].validate(value))
        except (StudioError, TypeError, ValueError):
            skipped.append(name)
    return skipped


class GeneratePage(GenerationPage):
    """Choose a model, a backend, a seed and the family's sampling settings; generate into the gallery."""

    OPERATION = "sample"
    RUN_TIP = "make the images and add them to the gallery (Ctrl+Return)"

    def __init__(self, context: StudioContext, parent: QWidget | None = None) -> None:
        super().__init__(context, "generate", "Generate", parent)
        self._build_model_controls("sample", "the model to sample from")
        self.count_spin = count_spin(
            "generateCountSpin",
            "Number of images",
            "how many images to make (seeds seed, seed+1, ...)",
            int(context.value("generate/count", 8)),
        )
        seeds, self.seed_spin, self.dice_button = seed_row("generate", MAX_SEED - MAX_COUNT, "seedDiceButton")
        self.class_picker = self._build_class_picker(
            "generateClassCombo",
            "Class",
            "the class of the model's dataset to make; Any class: each image's class is drawn from its seed",
        )
        self.generate_button = self._build_run_controls("Generate", "generateButton", "Generation")
        self.generate_button.setDefault(True)
        self._asked_class: str | None = None  # the class the last run asked for (None: any, or no classes)
        self.strip = named(
            ResultStrip(96),
            "generateResults",
            "Generated images",
            "the images just made: click one to open the gallery",
        )
        self.results_caption = QLabel("Results appear here, each as #gallery id · seed; click one to open the gallery.")
        self.results_caption.setObjectName("generateResultsCaption")
        settings = self._build_settings(
            (("Backend", self.backend), ("Class", self.class_picker), ("Images", self.count_spin), ("Seed", seeds))
        )
        self._lay_out(self._strip_body(settings, self.results_caption))

        self.strip.itemChosen.connect(self._open_in_gallery)
        context.signals.restoreGenerateSettings.connect(self.restore_settings)
        self._start(self.generate)
        self.backend.set_backend(
            str(context.value("generate/backend", "torch")), str(context.value("generate/provider", "auto"))
        )

    # --- state ---------------------------------------------------------------------------

    def _no_model_text(self) -> str:
        return (
            "No model yet: train one on the Train page, or import one on the Models page."
            if not self.model_picker.count()
            else "Choose a model."
        )

    # --- actions -------------------------------------------------------------------------

    def generate(self) -> JobHandle | None:
        """Queue a generation job with the settings on show; None when something is missing."""
        if self.running:
            return None
        model = self.model_picker.current()
        if model is None:
            self.context.error("Nothing to generate from", "choose a model first (train one on the Train page)")
            return None
        try:
            options = {**self.form.values(), **self.class_options()}
        except StudioError as error:
            self.context.error("Invalid sampling setting", str(error))
            return None
        name, count, seed = model.name, self.count_spin.value(), self.seed_spin.value()
        backend, provider, store = self.backend.backend(), self.backend.provider(), self.store
        for key, value in (
            ("model", name),
            ("count", count),
            ("backend", backend),
            ("provider", self.backend.provider_combo.currentData()),
        ):
            self.context.settings.setValue(f"generate/{key}", value)
        self.strip.show_items([])
        asked = self._asked_class = options.get(CLASS_OPTION)
        self.results_caption.setText(
            f"Generating {count} image{'s' if count != 1 else ''}"
            + (f" of class {asked}" if asked is not None else "")
            + f" from {name}…"
        )

        def factory(token: CancelToken) -> Job:
            # Runs in the engine thread: it captures plain values only, never a widget.
            return generate(store, name, count, seed, options, backend=backend, provider=provider, cancel=token)

        return self._run_job(f"Generate {count} from {name}", factory, self._finished, "Generation failed")

    def _finished(self, result: Any) -> None:
        self.status.setText(result_summary(result))
        shown = min(len(result.items), ResultStrip.LIMIT)
        # One class asked for: the caption says it once. Any class: each image's label says the one it drew.
        asked = self._asked_class
        drawn = asked is None and any(item.get(CLASS_OPTION) is not None for item in result.items)
        self.results_caption.setText(
            f"{len(result.items)} new image{'s' if len(result.items) != 1 else ''}"
            + (f" of class {asked}" if asked is not None else "")
            + " in the gallery"
            + (f" (the first {shown} shown)" if shown < len(result.items) else "")
            + f", each as #gallery id · seed{' · class' if drawn else ''}: click one to open the gallery."
        )
        self.strip.show_items(
            result.items, seed_caption if drawn else lambda _index, item: f"#{item['id']} · {item['seed']}"
        )

    def restore_settings(self, metadata: Mapping[str, Any]) -> None:
        """Fill the page from a studio PNG's metadata: model, backend, provider, seed and sampling values."""
        self.context.go_to("generate")
        self.refresh()
        name = str(metadata.get("model") or "")
        seed = metadata.get("seed")
        if isinstance(seed, int) and not isinstance(seed, bool):
            self.seed_spin.setValue(seed)
        if not name or name not in self.model_picker.models:
            self.context.error(
                "Model not found",
                f"this image was made by the model '{name or 'unknown'}', which is not in this library "
                "(deleted, renamed or never imported): the seed is restored, choose a model to go on",
            )
            return
        if not self.model_picker.select(name):
            self.context.error(
                "Cannot generate with this model",
                unsupported_reason(self.model_picker.models[name].family, "sample") or f"'{name}' cannot sample",
            )
            return
        notes = []
        backend = str(metadata.get("backend") or "torch")
        provider = metadata.get("provider")
        if not self.backend.set_backend(backend, str(provider) if provider in PROVIDER_CHOICES else "auto"):
            notes.append(f"torch is used instead of onnx ({self.backend.onnx_problem()})")
        params = dict(metadata["params"]) if isinstance(metadata.get("params"), Mapping) else {}
        if CLASS_OPTION in params:
            # The class asked for (None: any, drawn from the seed, so the seed gives the same class again).
            asked = params.pop(CLASS_OPTION)
            if not self.class_picker.choose(asked if isinstance(asked, str) else None):
                notes.append(f"'{name}' has no class '{asked}': any class is chosen")
        skipped = restore_form(self.form, params)
        # Settings only another operation uses (inpainting's resample...) are not this page's to restore.
        elsewhere = declaration(self.model_picker.models[name].family).inpainting_settings
        skipped = [setting for setting in skipped if setting not in elsewhere]
        if skipped:
            notes.append(f"not restored: {', '.join(skipped)}")
        operation = metadata.get("operation")
        if operation and operation != "sample":
            notes.append(f"this image came from {operation}: its sampling settings are restored")
        message = f"Settings of {name}, seed {seed} restored" + (f" ({'; '.join(notes)})" if notes else "")
        self.status.setText(message)
        self.context.notify(message)
