"""The events a training job yields (torch-free, so the history recorder, the CLI's printer and the UI can
tell them apart without loading the trainer)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrainingProgress:
    """Sent a few times a second: where the run is and how fast it goes."""

    step: int
    target_steps: int | None
    losses: dict[str, float]
    samples_per_second: float
    eta_seconds: float | None
    elapsed_seconds: float


@dataclass(frozen=True)
class PreviewReady:
    """Preview images (uint8 NHWC) and the family's diagnostic figures at a step."""

    step: int
    images: np.ndarray | None
    figures: dict[str, float]


@dataclass(frozen=True)
class CheckpointSaved:
    """A checkpoint is on disk."""

    step: int
    weights_hash: str


@dataclass(frozen=True)
class TrainingWarning:
    """Something the user should see (e.g. possible mode collapse)."""

    step: int
    message: str
