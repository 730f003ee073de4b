"""Choosing what a generation page runs: the model picker and the backend (torch or ONNX) picker.

A model whose family lacks the page's capability is listed but disabled, with the engine's reason as
its tooltip; onnx is offered only when the model's ONNX export is current, with an "Export first" way out.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QWidget

from studio.engine.families.registry import declaration, declarations, family_names
from studio.engine.library import ModelSummary
from studio.engine.runtime.provider_names import PROVIDER_CHOICES
from studio.ui.context import StudioContext
from studio.ui.widgets import named


def unsupported_reason(family: str, capability: str | None) -> str | None:
    """The engine's one-line reason why `family` cannot do `capability`, or None when it can."""
    if family not in family_names():
        return f"unknown family '{family}': this version of Studio cannot open it"
    family_declaration = declaration(family)
    if capability is None or family_declaration.can(capability):
        return None
    return str(family_declaration.refusal(capability))


def combo_item(combo: QComboBox, index: int) -> QStandardItem:
    """A combo box's entry as an item that can be disabled (a plain QComboBox's model is a QStandardItemModel)."""
    model = combo.model()
    assert isinstance(model, QStandardItemModel)
    item = model.item(index)
    assert item is not None, f"{combo.objectName()} has no entry {index}"
    return item


def families_that_can(capability: str) -> str:
    """'VAE, PixelCNN or diffusion': the families that declare `capability`, for hints (the registry's order)."""
    names = []
    for family in declarations():
        if family.can(capability):
            short = family.title.split(" (")[0]
            names.append(short if short[1:] != short[1:].lower() else short.lower())  # acronyms keep their case
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def model_caption(model: ModelSummary) -> str:
    """'gan, 8x8 grey, 1,200 steps trained, 10 classes': what a model is, in a line."""
    colour = "RGB" if model.channels == 3 else "grey"
    classes = f", {len(model.classes)} classes" if model.classes else ""
    return f"{model.family}, {model.resolution}x{model.resolution} {colour}, {model.steps:,} steps trained{classes}"


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
            item = combo_item(self, index)  # a QStandardItemModel: items can be disabled one by one
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

    def __init__(self, context: StudioContext, prefix: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.model: ModelSummary | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.backend_combo = named(
            QComboBox(),
            f"{prefix}BackendCombo",
            "Backend",
            "torch runs the trained networks; onnx runs the exported ONNX models",
        )
        self.backend_combo.addItem("torch", "torch")
        self.backend_combo.addItem("onnx", "onnx")
        self.provider_combo = named(
            QComboBox(),
            f"{prefix}ProviderCombo",
            "ONNX Runtime provider",
            "the ONNX Runtime execution provider (used by the onnx backend only)",
        )
        from studio.engine.runtime.providers import available_providers  # loads onnxruntime: only when asked

        offered = set(available_providers())
        for index, provider in enumerate(PROVIDER_CHOICES):
            self.provider_combo.addItem(provider, provider)
            if provider != "auto" and provider not in offered:
                item = combo_item(self.provider_combo, index)
                item.setEnabled(False)
                item.setToolTip(f"{provider}: not offered by this ONNX Runtime build")
        self.export_button = named(
            QPushButton("Export first…"),
            f"{prefix}ExportButton",
            "Export the model to ONNX first",
            "open the Models page to export this model",
        )
        self.export_button.clicked.connect(self._go_export)
        layout.addWidget(self.backend_combo)
        layout.addWidget(self.provider_combo, 1)
        layout.addWidget(self.export_button)
        self.backend_combo.currentIndexChanged.connect(self._backend_changed)
        self.set_model(None)

    def set_model(self, model: ModelSummary | None) -> None:
        """Enable onnx only when the model has a current export; say why otherwise."""
        self.model = model
        problem = export_problem(model) if model is not None else "choose a model first"
        onnx_item = combo_item(self.backend_combo, 1)
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
            usable = index >= 0 and combo_item(self.provider_combo, index).isEnabled()
            self.provider_combo.setCurrentIndex(index if usable else 0)
        return True

    def _backend_changed(self, _index: int = 0) -> None:
        self.provider_combo.setEnabled(self.backend() == "onnx")

    def _go_export(self) -> None:
        name = self.model.name if self.model is not None else "the model"
        self.context.go_to("models")
        self.context.notify(f"Export {name} to ONNX here, then come back to use the onnx backend")
