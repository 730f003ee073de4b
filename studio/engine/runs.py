"""Training runs as the store records them: which stopped before their budget, which are going on now.

Torch-free, so the Train page and the CLI can ask without loading any network. A run's liveness is
its model's training lock (an OS file lock the trainer holds, released by the kernel when the process
dies): a run marked running whose lock is free belongs to a process that is gone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sqlalchemy import select

from studio.files import hold_lock
from studio.store.database import Store
from studio.store.tables import Model, TrainingRun

LOCK_FILE = ".training.lock"  # in the model's folder, held by the process that trains it


class RunStatus(enum.StrEnum):
    """A training run's status as the store keeps it."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


# Statuses only a live process may hold: seen with a free lock, the process died.
_LIVE = (RunStatus.RUNNING, RunStatus.PAUSED)


@dataclass(frozen=True)
class InterruptedRun:
    """A run that stopped without finishing: its model, the step it reached and the budget it had."""

    model: str
    family: str
    step: int
    target_steps: int | None
    budget_minutes: float | None


def _lock_held(store: Store, folder: str) -> bool | None:
    """True while a process holds the training lock in a model's folder, False when free, None if unknown."""
    try:
        lock = hold_lock(store.home.absolute(folder) / LOCK_FILE)
    except (OSError, ValueError):
        return None  # no folder, no permission, or a path outside the home: say nothing rather than guess
    if lock is None:
        return True
    lock.close()
    return False


def is_training(store: Store, name: str) -> bool:
    """Whether some process (this one included) is training the model `name` right now."""
    with store.sessions() as session:
        folder = session.scalar(select(Model.folder).where(Model.name == name))
    return folder is not None and _lock_held(store, folder) is True


def interrupted_runs(store: Store, exclude: str | None = None) -> list[InterruptedRun]:
    """Each model whose latest run stopped before its budget, newest run first.

    A run counts when marked interrupted, or when left running or paused by a process that is gone
    (its training lock is free). `exclude` names a model this process is training now.
    """
    with store.sessions() as session:
        rows = session.execute(
            select(
                TrainingRun.status,
                TrainingRun.target_steps,
                TrainingRun.budget_minutes,
                Model.name,
                Model.family,
                Model.steps,
                Model.folder,
            )
            .join(Model, TrainingRun.model_id == Model.id)
            .order_by(TrainingRun.id.desc())
        ).all()
    seen: set[str] = set()
    found: list[InterruptedRun] = []
    for status, target_steps, budget_minutes, name, family, steps, folder in rows:
        if name in seen or name == exclude:
            continue
        seen.add(name)  # only a model's latest run counts: one that ended properly hides older ones
        if status == RunStatus.INTERRUPTED or (status in _LIVE and _lock_held(store, folder) is False):
            found.append(InterruptedRun(name, family, steps, target_steps, budget_minutes))
    return found
