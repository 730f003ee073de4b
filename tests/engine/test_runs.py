"""Training runs as the store records them: interrupted runs and live ones, told apart by the training lock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from studio.engine.runs import LOCK_FILE, InterruptedRun, RunStatus, interrupted_runs, is_training
from studio.files import hold_lock
from studio.store.database import Store
from studio.store.tables import Model, TrainingRun


def add_model(
    store: Store, name: str, steps: int, *statuses: str, target: int | None = 40, minutes: float | None = None
) -> Path:
    """A model row with a folder and one run per status (oldest first); its folder."""
    folder = store.home.models / name
    folder.mkdir(parents=True)
    with store.session() as session:
        model = Model(
            name=name, family="gan", folder=store.home.relative(folder), resolution=8, channels=1, steps=steps
        )
        session.add(model)
        session.flush()
        for status in statuses:
            session.add(TrainingRun(model_id=model.id, status=status, target_steps=target, budget_minutes=minutes))
    return folder


def test_a_model_whose_latest_run_was_interrupted_is_listed_with_its_budget(store: Store) -> None:
    add_model(store, "done", 20, "interrupted", "completed")  # an old interruption, resumed since
    add_model(store, "cut", 20, "completed", "interrupted", target=40, minutes=2.5)
    add_model(store, "stopped", 5, "cancelled")
    assert interrupted_runs(store) == [InterruptedRun("cut", "gan", 20, 40, 2.5)]


def test_a_run_left_running_counts_only_once_its_process_is_gone(store: Store) -> None:
    folder = add_model(store, "live", 12, "running")
    add_model(store, "paused", 7, "paused", target=None)
    lock = hold_lock(folder / LOCK_FILE)  # what the trainer holds while it runs
    assert lock is not None
    try:
        assert is_training(store, "live") and not is_training(store, "paused")
        assert [run.model for run in interrupted_runs(store)] == ["paused"]
    finally:
        lock.close()  # the process died: the kernel drops its lock
    assert not is_training(store, "live")
    assert [run.model for run in interrupted_runs(store)] == ["paused", "live"]  # newest run first
    assert interrupted_runs(store, exclude="live") == [InterruptedRun("paused", "gan", 7, None, None)]


def test_unknown_models_and_missing_folders_are_neither_training_nor_interrupted(store: Store) -> None:
    assert not is_training(store, "nobody") and interrupted_runs(store) == []
    folder = add_model(store, "gone", 3, "running")
    folder.rmdir()  # the lock cannot be tried: say nothing rather than offer a resume that would fail
    assert not is_training(store, "gone") and interrupted_runs(store) == []


def test_statuses_match_what_the_store_allows() -> None:
    assert {status.value for status in RunStatus} == {
        "running",
        "paused",
        "completed",
        "cancelled",
        "failed",
        "interrupted",
    }


def test_the_trainer_takes_the_lock_these_checks_try() -> None:
    from studio.engine import training  # here, not above: the module under test must load without torch

    assert training.LOCK_FILE == LOCK_FILE


def test_asking_about_runs_loads_no_torch() -> None:
    script = "import json, sys, studio.engine.runs; print(json.dumps('torch' in sys.modules))"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(output.stdout) is False
