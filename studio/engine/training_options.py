"""What a training run is asked to do: one typed options object shared by the CLI, the Train page and scripts.

Torch-free, so the UI's setup form and the CLI's argument parsing can build and check one without
loading the engine's networks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from studio.errors import StudioError
from studio.limits import CHECKPOINT_EVERY, DIAGNOSTICS_EVERY, SEED, STEPS, THREADS, IntRange

DEFAULT_PREVIEW_COUNT = 16
# A milestone (weights + an 8-image grid) every 1,000 steps: a few per typical run to choose from,
# while a short or test run (under 1,000 steps) pays nothing. 0 turns them off.
DEFAULT_MILESTONE_EVERY = 1000
DEFAULT_KEEP_MILESTONES = 5  # the newest 5, plus the best rated and the best scored: at most 7 on disk
MILESTONE_EVERY = IntRange(0, STEPS.high, "milestone interval")  # 0: off
KEEP_MILESTONES = IntRange(1, 1000, "milestones to keep")


@dataclass(frozen=True)
class TrainOptions:
    """A run: a new model (family + dataset), a fine-tune (`init_from`) or a resume, and its budget.

    `steps` is a total (a resumed run goes on to it); `minutes` a wall-clock limit; either or both.
    `settings` are the family's hyperparameters by name (validated against its schema when the run starts).
    """

    name: str
    family: str | None = None
    dataset: str | None = None
    steps: int | None = None
    minutes: float | None = None
    seed: int = 0
    init_from: str | None = None
    resume: bool = False
    settings: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"
    checkpoint_every: int = 500
    preview_every: int = 250
    preview_count: int = DEFAULT_PREVIEW_COUNT
    threads: int | None = None
    amp: bool = True
    milestone_every: int = DEFAULT_MILESTONE_EVERY
    keep_milestones: int = DEFAULT_KEEP_MILESTONES
    tensorboard: str | None = None  # a folder for TensorBoard event files (`--tensorboard DIR`)
    # Scale-out (torchrun's own option names): processes on this machine, machines, this machine's place
    # and the rendezvous HOST:PORT every machine meets at. 1 process on 1 machine trains in this process.
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_timeout: float | None = None  # seconds the machines wait for each other (None: the launcher's default)

    @property
    def distributed(self) -> bool:
        """Whether the run trains on more than one process (under torchrun)."""
        return self.nproc_per_node * self.nnodes > 1

    def check(self) -> None:
        """Refuse a budget or interval no run could keep, with the reason in one line."""
        if self.steps is None and self.minutes is None:
            raise StudioError("give a budget: --steps N (total steps) and/or --minutes M")
        if self.steps is not None:
            replace(STEPS, what="--steps").check(self.steps)  # worded as the option most users know
        if self.minutes is not None and not (self.minutes > 0 and math.isfinite(self.minutes)):
            raise StudioError(f"invalid --minutes {self.minutes}: give a positive number")
        # The same bounds as the CLI's options, for callers that build options themselves (the UI).
        SEED.check(self.seed)
        CHECKPOINT_EVERY.check(self.checkpoint_every)
        DIAGNOSTICS_EVERY.check(self.preview_every)
        MILESTONE_EVERY.check(self.milestone_every)
        KEEP_MILESTONES.check(self.keep_milestones)
        if self.threads is not None:
            THREADS.check(self.threads)

    def with_changes(self, **changes: Any) -> TrainOptions:
        """A copy with some fields replaced."""
        return replace(self, **changes)
