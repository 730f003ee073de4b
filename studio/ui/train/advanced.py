"""The Train page's "Previews, checkpoints, processes" group: previews, resumable checkpoints, milestones, threads
and processes."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QFormLayout, QGroupBox, QSpinBox, QWidget

from studio.engine.training_options import (
    DEFAULT_KEEP_MILESTONES,
    DEFAULT_MILESTONE_EVERY,
    KEEP_MILESTONES,
    MILESTONE_EVERY,
)
from studio.ui.widgets import named


def default_threads() -> int:
    """Torch threads for training: every core but one, which stays free for the GUI thread."""
    return max(1, (os.cpu_count() or 1) - 1)


class AdvancedTrainingOptions(QGroupBox):
    """How often a run draws previews, saves a resumable checkpoint and keeps a milestone; CPU threads."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Previews, checkpoints, processes", parent)
        form = QFormLayout(self)
        self.preview_every_spin = named(
            QSpinBox(),
            "trainPreviewEverySpin",
            "Preview every N steps",
            "Draw preview images and diagnostic figures every N steps (0: never)",
        )
        self.preview_every_spin.setRange(0, 1_000_000)
        self.preview_every_spin.setValue(250)
        self.preview_every_spin.setSpecialValueText("never")
        self.checkpoint_every_spin = named(
            QSpinBox(),
            "trainCheckpointEverySpin",
            "Checkpoint every N steps",
            "Save a checkpoint every N steps (and always at the end)",
        )
        self.checkpoint_every_spin.setRange(1, 1_000_000)
        self.checkpoint_every_spin.setValue(500)
        self.milestone_every_spin = named(
            QSpinBox(),
            "trainMilestoneEverySpin",
            "Milestone every N steps",
            "Keep a copy of the weights and a grid of 8 samples every N steps, to rate and promote later (0: never)",
        )
        self.milestone_every_spin.setRange(MILESTONE_EVERY.low, min(MILESTONE_EVERY.high, 10_000_000))
        self.milestone_every_spin.setValue(DEFAULT_MILESTONE_EVERY)
        self.milestone_every_spin.setSpecialValueText("never")
        self.keep_milestones_spin = named(
            QSpinBox(),
            "trainKeepMilestonesSpin",
            "Milestones kept",
            "The newest N milestones stay, plus the best rated, the best scored and the current weights",
        )
        self.keep_milestones_spin.setRange(KEEP_MILESTONES.low, KEEP_MILESTONES.high)
        self.keep_milestones_spin.setValue(DEFAULT_KEEP_MILESTONES)
        self.threads_spin = named(
            QSpinBox(),
            "trainThreadsSpin",
            "CPU threads",
            "Torch threads for CPU training; one core is left to keep the window responsive",
        )
        self.threads_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.threads_spin.setValue(default_threads())
        form.addRow("Preview every", self.preview_every_spin)
        form.addRow("Checkpoint every", self.checkpoint_every_spin)
        form.addRow("Milestone every", self.milestone_every_spin)
        form.addRow("Milestones kept", self.keep_milestones_spin)
        self.processes_spin = named(
            QSpinBox(),
            "trainProcessesSpin",
            "Training processes",
            "Train on N processes together (torchrun, DistributedDataParallel): one per GPU, or several on a "
            "many-core CPU. The batch size is split between them, so it must be a multiple of N",
        )
        self.processes_spin.setRange(1, max(1, os.cpu_count() or 1))
        self.processes_spin.setValue(1)
        form.addRow("CPU threads", self.threads_spin)
        form.addRow("Processes", self.processes_spin)

    def threads_per_process(self) -> int:
        """The CPU threads each process gets: the chosen total shared between the processes."""
        return max(1, self.threads_spin.value() // self.processes_spin.value())
