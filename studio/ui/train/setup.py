"""The Train page's setup form: family, model and data, budget and the family's settings, as one
typed `TrainOptions` (the same object the CLI builds), or one readable line on why it cannot start.

The form reads nothing itself: the page hands it the datasets, models and interrupted runs it lists
(`show_choices`). Fine-tuning or resuming fixes the family, and resuming also the dataset and name,
to the existing model's.
"""

from __future__ import annotations

import contextlib
import enum
from typing import Any

from PySide6.QtCore import QRegularExpression, Qt
from PySide6.QtGui import QRegularExpressionValidator, QStandardItemModel
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
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.engine.datasets.storage import DatasetSummary, validate_name
from studio.engine.families.conditioning import CONDITIONAL_SETTING, MAX_CLASSES, MIN_CLASSES, class_names
from studio.engine.families.registry import declaration, trainable_family_names
from studio.engine.library import ModelSummary
from studio.engine.runs import InterruptedRun
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.ui.train.advanced import AdvancedTrainingOptions
from studio.ui.widgets import named
from studio.ui.widgets.class_picker import classes_line
from studio.ui.widgets.schema_form import SchemaForm

GROUP_TITLES = {"model": "Network", "training": "Training", "sampling": "Preview sampling"}
PROBLEM_COLOUR = "#b3261e"


def conditioning_note(setting: str, dataset: DatasetSummary | None) -> tuple[str, bool]:
    """What the `conditional` setting (auto, yes or no) makes of a new model on `dataset`, as the trainer
    decides it, and whether that is a refusal: ('Class-conditional: 10 classes of 'digits' (0, 1 ...)', False)."""
    if dataset is None:
        return "", False
    names = class_names(dataset.class_counts)
    unlabelled = dataset.count - sum(dataset.class_counts.values())
    if setting == "no":
        return ("Unconditional: the dataset's class labels are not used." if names else "Unconditional."), False
    problem = (
        f"'{dataset.name}' has {len(names) or 'no'} class label{'s' if len(names) != 1 else ''}"
        if len(names) < MIN_CLASSES
        else f"{unlabelled:,} of the images of '{dataset.name}' have no class label"
        if unlabelled > 0
        else f"'{dataset.name}' has {len(names):,} classes, more than {MAX_CLASSES:,}"
        if len(names) > MAX_CLASSES
        else ""
    )
    if problem and setting == "yes":
        return (
            f"Cannot be class-conditional: {problem}. Choose auto or no, or import the dataset from class folders.",
            True,
        )
    if problem:
        return f"Unconditional: {problem} (auto: conditional when every image has one of 2 or more classes).", False
    return (
        f"Class-conditional: {len(names)} classes of '{dataset.name}' ({classes_line(names)}); "
        "the Generate page asks for one.",
        False,
    )


def preview_count(family: str) -> int:
    """How many preview images a run of `family` draws (its declaration says)."""
    return declaration(family).preview_count


class TrainMode(enum.StrEnum):
    """How a run starts: a new model, a new model from another's weights, or more steps of one."""

    NEW = "new"
    FINETUNE = "finetune"
    RESUME = "resume"


class TrainSetup(QScrollArea):
    """The setup column: what to train, on what, for how long and with which settings.

    In a scroll area so every setting stays reachable on small screens.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.datasets: list[DatasetSummary] = []
        self.models: list[ModelSummary] = []
        self.interrupted: list[InterruptedRun] = []
        self.running = False  # while a run goes on, the form is read-only
        self._suggested_name = ""  # the name last proposed; replaced freely, unlike one the user gave
        self._form_key: tuple[str, str | None] | None = None
        self.conditioning_problem: str | None = None  # why the conditional setting cannot be met, if it cannot

        column = QWidget()
        box = QVBoxLayout(column)
        box.setContentsMargins(0, 0, 6, 0)
        box.setSpacing(8)
        box.addWidget(QLabel("<h2 style='margin:0'>Train</h2>"))
        box.addWidget(self._build_interrupted())
        family_group = self._build_family()
        source_group = self._build_source()
        budget_group = self._build_budget()
        for group in (family_group, source_group, budget_group):
            box.addWidget(group)
        self.forms: dict[str, SchemaForm] = {}
        self.form_groups: dict[str, QGroupBox] = {}
        for group_name in ("model", "training", "sampling"):
            group_box = QGroupBox(GROUP_TITLES[group_name])
            group_box.setObjectName(f"train{group_name.capitalize()}Settings")
            group_box.setAccessibleName(f"{GROUP_TITLES[group_name]} settings")
            schema_form = SchemaForm("trainSetting_")
            group_layout = QVBoxLayout(group_box)
            group_layout.addWidget(schema_form)
            if group_name == "model":
                # What the conditional setting makes of the chosen dataset's classes, kept up to date.
                self.classes_note = named(QLabel(), "trainClassesNote", "Class conditioning")
                self.classes_note.setWordWrap(True)
                group_layout.addWidget(self.classes_note)
                schema_form.changed.connect(self._show_conditioning)
            self.forms[group_name] = schema_form
            self.form_groups[group_name] = group_box
            box.addWidget(group_box)
        advanced = AdvancedTrainingOptions()
        self.preview_every_spin = advanced.preview_every_spin
        self.checkpoint_every_spin = advanced.checkpoint_every_spin
        self.milestone_every_spin = advanced.milestone_every_spin
        self.keep_milestones_spin = advanced.keep_milestones_spin
        self.threads_spin = advanced.threads_spin
        self.processes_spin = advanced.processes_spin
        self.advanced = advanced
        box.addWidget(advanced)
        box.addStretch(1)

        self.setup_widgets: list[QWidget] = [
            family_group,
            source_group,
            budget_group,
            advanced,
            *self.form_groups.values(),
        ]
        self.setObjectName("trainSetupScroll")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWidget(column)
        self.setFixedWidth(400)
        self._family_changed()

    # --- building -------------------------------------------------------------------------------

    def _build_interrupted(self) -> QFrame:
        self.interrupted_banner = QFrame()
        self.interrupted_banner.setObjectName("trainInterruptedBanner")
        self.interrupted_banner.setStyleSheet(
            "#trainInterruptedBanner { background: #e8f1fb; border: 1px solid #8fb3dc; border-radius: 4px; }"
        )
        banner_layout = QVBoxLayout(self.interrupted_banner)
        banner_layout.setContentsMargins(8, 6, 8, 6)
        self.interrupted_label = named(QLabel(), "trainInterruptedLabel", "Interrupted run")
        self.interrupted_label.setWordWrap(True)
        self.interrupted_combo = named(
            QComboBox(), "trainInterruptedCombo", "Interrupted runs", "Runs that stopped before their budget was spent"
        )
        self.resume_interrupted_button = named(
            QPushButton("Resume interrupted run"),
            "trainResumeInterruptedButton",
            "Resume interrupted run",
            "Continue the run from its last checkpoint with the budget it had",
        )
        banner_layout.addWidget(self.interrupted_label)
        banner_layout.addWidget(self.interrupted_combo)
        banner_layout.addWidget(self.resume_interrupted_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.interrupted_banner.setVisible(False)
        return self.interrupted_banner

    def _build_family(self) -> QGroupBox:
        family_group = QGroupBox("Generator family")
        family_layout = QVBoxLayout(family_group)
        self.family_combo = named(QComboBox(), "trainFamilyCombo", "Family", "The kind of generator to train")
        for name in trainable_family_names():  # imported-only families (ONNX generators) are never trained
            self.family_combo.addItem(declaration(name).title, name)
        self.family_combo.currentIndexChanged.connect(self._family_changed)
        self.family_description = named(QLabel(), "trainFamilyDescription", "Family description")
        self.family_description.setWordWrap(True)
        self.family_description.setTextFormat(Qt.TextFormat.PlainText)
        self.family_description.setStyleSheet("color: palette(placeholder-text);")
        self.family_capabilities = named(QLabel(), "trainFamilyCapabilities", "Family capabilities")
        family_layout.addWidget(self.family_combo)
        family_layout.addWidget(self.family_description)
        family_layout.addWidget(self.family_capabilities)
        return family_group

    def _build_source(self) -> QGroupBox:
        source_group = QGroupBox("Model and data")
        form = QFormLayout(source_group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        modes = QHBoxLayout()
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[TrainMode, QRadioButton] = {}
        for index, (mode, text, tip) in enumerate(
            (
                (TrainMode.NEW, "New", "Train a new model from random weights"),
                (
                    TrainMode.FINETUNE,
                    "Fine-tune",
                    "Start a new model from an existing model's weights (transfer learning)",
                ),
                (TrainMode.RESUME, "Resume", "Continue an existing model from its last checkpoint"),
            )
        ):
            button = named(QRadioButton(text), f"train{mode.capitalize()}Radio", f"{text} model", tip)
            self.mode_group.addButton(button, index)
            self.mode_buttons[mode] = button
            modes.addWidget(button)
        modes.addStretch(1)
        self.mode_buttons[TrainMode.NEW].setChecked(True)
        self.mode_group.idToggled.connect(self._mode_toggled)
        form.addRow("Start", modes)
        self.source_combo = named(
            QComboBox(), "trainSourceModelCombo", "Existing model", "The model to fine-tune from or to resume"
        )
        self.source_combo.currentIndexChanged.connect(self._source_changed)
        form.addRow("From model", self.source_combo)
        self.dataset_combo = named(
            QComboBox(),
            "trainDatasetCombo",
            "Dataset",
            "Only square datasets of 8 to 128 px (256 px with a GPU) can be trained on",
        )
        self.dataset_combo.currentIndexChanged.connect(self._suggest_name)
        self.dataset_combo.currentIndexChanged.connect(self._show_conditioning)
        form.addRow("Dataset", self.dataset_combo)
        self.name_edit = named(
            QLineEdit(),
            "trainNameEdit",
            "Model name",
            "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
        self.name_edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")))
        self.name_edit.setPlaceholderText("e.g. digits-gan")
        self.name_edit.textChanged.connect(self._check_name)
        form.addRow("Name", self.name_edit)
        self.name_hint = named(QLabel(), "trainNameHint", "Name check")
        self.name_hint.setWordWrap(True)
        self.name_hint.setStyleSheet("color: #b3261e;")
        self.name_hint.setVisible(False)
        form.addRow("", self.name_hint)
        return source_group

    def _build_budget(self) -> QGroupBox:
        budget_group = QGroupBox("Budget")
        budget = QFormLayout(budget_group)
        self.steps_check = named(
            QCheckBox("Steps"), "trainStepsCheck", "Limit by steps", "Stop when the model reaches this total step count"
        )
        self.steps_check.setChecked(True)
        self.steps_spin = named(QSpinBox(), "trainStepsSpin", "Total steps")
        self.steps_spin.setRange(1, 10_000_000)
        self.steps_spin.setValue(2000)
        self.steps_spin.setSingleStep(500)
        self.steps_spin.setGroupSeparatorShown(True)
        self.minutes_check = named(
            QCheckBox("Minutes"),
            "trainMinutesCheck",
            "Limit by time",
            "Stop after this much training time (pauses do not count)",
        )
        self.minutes_spin = named(QDoubleSpinBox(), "trainMinutesSpin", "Minutes of training")
        self.minutes_spin.setRange(0.1, 100_000)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setValue(10)
        self.steps_check.toggled.connect(self.update_controls)
        self.minutes_check.toggled.connect(self.update_controls)
        budget.addRow(self.steps_check, self.steps_spin)
        budget.addRow(self.minutes_check, self.minutes_spin)
        self.seed_spin = named(QSpinBox(), "trainSeedSpin", "Seed", "Fixes the initial weights and the batches")
        self.seed_spin.setRange(0, 2_147_483_647)
        budget.addRow("Seed", self.seed_spin)
        return budget_group

    # --- the choices ----------------------------------------------------------------------------

    def show_choices(
        self, datasets: list[DatasetSummary], models: list[ModelSummary], interrupted: list[InterruptedRun]
    ) -> None:
        """List these datasets, models and interrupted runs, keeping the current choices where they remain."""
        self.datasets, self.models, self.interrupted = datasets, models, interrupted
        self._fill_sources()
        self._fill_datasets()
        self._fill_interrupted()
        self._suggest_name()
        self._check_name()
        self._show_conditioning()

    def _fill_sources(self) -> None:
        chosen = self.source_combo.currentData()
        self.source_combo.blockSignals(True)
        self.source_combo.clear()
        trainable = set(trainable_family_names())  # an imported ONNX generator cannot be resumed or fine-tuned
        for model in self.models:
            if model.family in trainable:
                self.source_combo.addItem(
                    f"{model.name}  ({model.family}, {model.resolution} px, step {model.steps:,})", model.name
                )
        index = self.source_combo.findData(chosen)
        self.source_combo.setCurrentIndex(index if index >= 0 else (0 if self.source_combo.count() else -1))
        self.source_combo.blockSignals(False)
        if self.mode != TrainMode.NEW and not self.running:
            self._source_changed()  # the model may have moved on (more steps) or gone

    def _dataset_refusal(self, dataset: DatasetSummary, source: ModelSummary | None) -> str | None:
        """Why this setup cannot train on `dataset` (a few words for a tooltip), or None."""
        try:
            declaration(self.family).check_geometry(dataset.size, dataset.channels)
        except StudioError as error:
            return str(error).split(":")[0]
        if source is None:
            return None
        if self.mode == TrainMode.FINETUNE and (dataset.size, dataset.channels) != (source.resolution, source.channels):
            return f"'{source.name}' takes {source.resolution} px x {source.channels} images"
        if self.mode == TrainMode.RESUME and dataset.name != source.dataset:
            return f"a resumed run continues on its own dataset '{source.dataset}'"
        return None

    def _fill_datasets(self) -> None:
        """List every dataset; those this setup cannot train on are shown but disabled, with the reason."""
        chosen = self.dataset_combo.currentData()
        self.dataset_combo.blockSignals(True)
        self.dataset_combo.clear()
        source = self.source_model
        for dataset in self.datasets:
            colour = "grey" if dataset.channels == 1 else "colour"
            self.dataset_combo.addItem(
                f"{dataset.name}  ({dataset.size} px, {colour}, {dataset.count:,} images)", dataset.name
            )
            reason = self._dataset_refusal(dataset, source)
            if reason is not None:
                item = self._dataset_items().item(self.dataset_combo.count() - 1)
                item.setEnabled(False)
                item.setToolTip(reason)
        if self.mode == TrainMode.RESUME and source is not None:
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
        item = self._dataset_items().item(index)
        return item is not None and item.isEnabled()

    def _dataset_items(self) -> QStandardItemModel:
        # A QComboBox keeps its entries in a QStandardItemModel unless given another model.
        model = self.dataset_combo.model()
        assert isinstance(model, QStandardItemModel)
        return model

    def _mode_toggled(self, _button_id: int, checked: bool) -> None:
        if checked:
            self._source_changed()

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
                "resume it from its last checkpoint."
            )
        self.interrupted_combo.setVisible(len(self.interrupted) > 1)
        self.interrupted_banner.setVisible(bool(self.interrupted))

    def prepare_interrupted_resume(self) -> bool:
        """Set the form to resume the chosen interrupted run with the budget it had; False when none is chosen."""
        name = self.interrupted_combo.currentData() if self.interrupted_combo.count() else None
        run = next((r for r in self.interrupted if r.model == name), None)
        if run is None:
            return False
        self.set_mode(TrainMode.RESUME)
        self.set_source_model(run.model)
        if run.target_steps and run.target_steps > run.step:
            self.steps_check.setChecked(True)
            self.steps_spin.setValue(run.target_steps)
        if run.budget_minutes:
            self.minutes_check.setChecked(True)
            self.minutes_spin.setValue(run.budget_minutes)
        return True

    # --- the form -------------------------------------------------------------------------------

    @property
    def family(self) -> str:
        """The chosen family's registry name."""
        return str(self.family_combo.currentData())

    @property
    def mode(self) -> TrainMode:
        """New, fine-tune or resume."""
        return list(TrainMode)[max(0, self.mode_group.checkedId())]

    @property
    def source_model(self) -> ModelSummary | None:
        """The model picked to fine-tune from or resume (None when starting fresh)."""
        if self.mode == TrainMode.NEW:
            return None
        name = self.source_combo.currentData()
        return next((model for model in self.models if model.name == name), None)

    def set_mode(self, mode: str) -> None:
        """Choose 'new', 'finetune' or 'resume'."""
        self.mode_buttons[TrainMode(mode)].setChecked(True)

    def set_family(self, family: str) -> None:
        """Choose a family by registry name."""
        self.family_combo.setCurrentIndex(self.family_combo.findData(family))

    def set_dataset(self, name: str) -> None:
        """Choose a dataset by name."""
        self.dataset_combo.setCurrentIndex(self.dataset_combo.findData(name))

    def set_source_model(self, name: str) -> None:
        """Choose the model to fine-tune from or resume."""
        self.source_combo.setCurrentIndex(self.source_combo.findData(name))

    def show_options(self, options: TrainOptions) -> None:
        """Show what a run was started with (a run this window re-attached to); what no longer fits the
        form (a dataset since deleted, a setting of another version) is left as it is."""
        mode = "resume" if options.resume else "finetune" if options.init_from else "new"
        self.set_mode(mode)
        if options.family:
            self.set_family(options.family)
        if mode == "new":
            self.set_dataset(options.dataset or "")
            self.name_edit.setText(options.name)
        else:
            self.set_source_model(options.name if options.resume else options.init_from or "")
        self.steps_check.setChecked(options.steps is not None)
        self.steps_spin.setValue(options.steps or self.steps_spin.value())
        self.minutes_check.setChecked(options.minutes is not None)
        self.minutes_spin.setValue(options.minutes or self.minutes_spin.value())
        self.seed_spin.setValue(options.seed)
        self.processes_spin.setValue(options.nproc_per_node)
        with contextlib.suppress(StudioError):
            self.set_settings(dict(options.settings))

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
        if self.mode == TrainMode.NEW:
            return {k: v for form in self.forms.values() for k, v in form.values(only_changed=True).items()}
        return {**self.forms["training"].values(), **self.forms["sampling"].values()}

    def _family_changed(self) -> None:
        cls = declaration(self.family)
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
        self._show_conditioning()

    def _show_conditioning(self) -> None:
        """Say whether the run makes a class-conditional model, and with which classes."""
        if not hasattr(self, "classes_note"):
            return  # still being built
        source = self.source_model
        form = self.forms["model"]
        if source is not None:
            text, problem = (
                (
                    f"Class-conditional: {len(source.classes)} classes ({classes_line(source.classes)}), "
                    "as the model has.",
                    False,
                )
                if source.classes
                else ("Unconditional, as the model is.", False)
            )
        elif CONDITIONAL_SETTING in form.editors:
            name = self.dataset_combo.currentData()
            dataset = next((d for d in self.datasets if d.name == name), None)
            text, problem = conditioning_note(str(form.value(CONDITIONAL_SETTING)), dataset)
        else:
            text, problem = "", False
        self.conditioning_problem = text if problem else None
        self.classes_note.setText(text)
        self.classes_note.setStyleSheet(f"color: {PROBLEM_COLOUR};" if problem else "color: palette(placeholder-text);")
        self.classes_note.setVisible(bool(text))

    def _source_changed(self) -> None:
        """Fine-tuning or resuming fixes the family (and for resume the dataset and name) to the model's."""
        source = self.source_model
        if source is not None:
            self.family_combo.blockSignals(True)
            self.set_family(source.family)
            self.family_combo.blockSignals(False)
        self._family_changed()
        if source is not None and self.mode == TrainMode.RESUME:
            self._suggested_name = source.name  # leaving Resume replaces it with a free name
            self.name_edit.setText(source.name)
            self.steps_spin.setMinimum(source.steps + 1)
            self.steps_spin.setValue(max(self.steps_spin.value(), source.steps + 1000))
        else:
            self.steps_spin.setMinimum(1)
            self._suggest_name()
        self._check_name()
        self.update_controls()

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
        if self.mode == TrainMode.RESUME or self.name_edit.text() not in ("", self._suggested_name):
            return
        dataset = self.dataset_combo.currentData()
        self._suggested_name = self._free_name(f"{dataset}-{self.family}" if dataset else self.family)
        self.name_edit.setText(self._suggested_name)

    def offer_next_name(self) -> None:
        """After a run: the name just used is taken now, so offer its next free variant (not when resuming)."""
        name = self.name_edit.text().strip()
        if self.mode != TrainMode.RESUME and any(model.name == name for model in self.models):
            self._suggested_name = self._free_name(name)
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
        if taken and self.mode != TrainMode.RESUME:
            return f"A model named '{name}' already exists: pick another name, or choose Resume to continue it."
        return None

    def _check_name(self) -> None:
        problem = self.name_problem() if self.name_edit.text() else None
        self.name_hint.setText(problem or "")
        self.name_hint.setVisible(problem is not None)

    def set_running(self, running: bool) -> None:
        """A run started or ended: the form is read-only while one goes on."""
        self.running = running
        self.update_controls()

    def update_controls(self) -> None:
        """Enable what makes sense for the current state (idle or running, new, fine-tune or resume)."""
        running = self.running
        for widget in self.setup_widgets:
            widget.setEnabled(not running)
        self.interrupted_banner.setEnabled(not running)
        mode = self.mode
        existing = mode != TrainMode.NEW
        self.source_combo.setEnabled(existing and not running)
        self.family_combo.setEnabled(not existing)
        self.dataset_combo.setEnabled(mode != TrainMode.RESUME)
        self.name_edit.setEnabled(mode != TrainMode.RESUME)
        # An existing model's network shape is fixed; only training and sampling settings may change.
        self.form_groups["model"].setEnabled(not existing and not running)
        self.form_groups["model"].setTitle(
            f"{GROUP_TITLES['model']} (fixed: taken from the model)" if existing else GROUP_TITLES["model"]
        )
        self.steps_spin.setEnabled(self.steps_check.isChecked())
        self.minutes_spin.setEnabled(self.minutes_check.isChecked())

    # --- the result -----------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why the form cannot start a run (one readable line), or None."""
        if self.mode != TrainMode.NEW and self.source_model is None:
            return "Choose the model to fine-tune from or to resume (train one first)."
        if self.mode != TrainMode.RESUME:
            problem = self.name_problem()
            if problem:
                return problem
            if not self.datasets:
                return "No dataset yet: add one on the Datasets page (for example the digits sample)."
            if self.dataset_combo.currentData() is None:
                return "No dataset fits this setup: choose a square dataset of 8 to 128 px (256 px with a GPU)."
        if self.mode == TrainMode.NEW and self.conditioning_problem:
            return self.conditioning_problem
        if not (self.steps_check.isChecked() or self.minutes_check.isChecked()):
            return "Give a budget: a total number of steps, a number of minutes, or both."
        source = self.source_model
        if (
            self.mode == TrainMode.RESUME
            and source is not None
            and self.steps_check.isChecked()
            and (self.steps_spin.value() <= source.steps)
        ):
            return f"'{source.name}' is already at step {source.steps:,}: ask for a larger total."
        try:
            settings = self.settings()
        except StudioError as error:
            return str(error)
        shown = {key: value for form in self.forms.values() for key, value in form.values().items()}
        processes, batch = self.processes_spin.value(), {**shown, **settings}.get("batch_size")
        if processes > 1 and isinstance(batch, int) and batch % processes:
            return f"The batch size ({batch}) must be a multiple of the {processes} processes that share it."
        return None

    @property
    def first_step(self) -> int:
        """The step the run starts from: the model's own when resuming, else 0."""
        source = self.source_model
        return source.steps if self.mode == TrainMode.RESUME and source is not None else 0

    def options(self) -> TrainOptions:
        """The run this form describes (check `problem()` first: this does not refuse a bad form)."""
        mode, source, family = self.mode, self.source_model, self.family
        name = source.name if mode == TrainMode.RESUME and source is not None else self.name_edit.text().strip()
        return TrainOptions(
            name,
            family=family,
            dataset=None if mode == TrainMode.RESUME else self.dataset_combo.currentData(),
            steps=self.steps_spin.value() if self.steps_check.isChecked() else None,
            minutes=self.minutes_spin.value() if self.minutes_check.isChecked() else None,
            seed=self.seed_spin.value(),
            init_from=source.name if mode == TrainMode.FINETUNE and source is not None else None,
            resume=mode == TrainMode.RESUME,
            settings=self.settings(),
            checkpoint_every=self.checkpoint_every_spin.value(),
            preview_every=self.preview_every_spin.value(),
            milestone_every=self.milestone_every_spin.value(),
            keep_milestones=self.keep_milestones_spin.value(),
            preview_count=preview_count(family),
            threads=self.advanced.threads_per_process(),
            nproc_per_node=self.processes_spin.value(),
        )
