"""Milestone checkpoints: weights to choose from, kept every K steps of training, and promoting one.

A milestone is a copy of a model's networks at one step (`models/NAME/milestones/STEP/`: the same
safetensors + config.json format as the model's own folder, without the optimisers' state) with a
sample grid from fixed seeds in the gallery (operation `checkpoint`), so checkpoints are rated like
images. The keep rule bounds the disk: the newest `keep` milestones, the best rated, the best scored
and the one holding the model's current weights stay; the others go. Promoting one makes its weights
the model's (the weights hash changes, so an ONNX export becomes out of date).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.engine.checkpoints import (
    CheckpointError,
    LoadedModel,
    TrainingState,
    load_model,
    read_config,
    save_checkpoint,
    weights_hash,
)
from studio.engine.datasets.storage import fsync_path
from studio.engine.devices import select_device
from studio.engine.families.base import GeneratorFamily
from studio.engine.generation import OpenedModel, _GalleryWriter, item_classes
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.library import export_state, get_model, model_folder
from studio.engine.model_locks import hold_model
from studio.engine.runs import LOCK_FILE as TRAINING_LOCK
from studio.errors import NotFoundError, StudioError
from studio.files import MARKER, StagingFolder
from studio.store.database import Store
from studio.store.milestones import MilestoneRecord, MilestoneRepository
from studio.store.tables import Model, utcnow

MILESTONES_FOLDER = "milestones"
CHECKPOINT_OPERATION = "checkpoint"  # the gallery operation of a milestone's sample grid
GRID_SEEDS = tuple(range(8))  # fixed: every milestone of every model shows the same latents
MILESTONE_KEY = "milestone_step"  # the PNG metadata member (and params key) naming the milestone's step


@dataclass(frozen=True)
class MilestoneSaved:
    """A training event: a milestone is on disk with its grid in the gallery; `pruned` went by the keep rule."""

    step: int
    weights_hash: str
    items: tuple[int, ...]
    pruned: tuple[int, ...] = ()


@dataclass
class PromoteResult:
    """What `promote` did: the model's weights are now those of the milestone at `step`."""

    model: str
    step: int
    weights_hash: str
    previous_step: int
    previous_hash: str | None
    kept_previous: int | None  # the step of the milestone that now holds the replaced weights
    pruned: list[int] = field(default_factory=list)
    export_stale: bool = False  # an ONNX export exists and no longer matches the weights

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio models promote --json`)."""
        return dict(self.__dict__)


def kept_steps(records: Sequence[MilestoneRecord], keep: int) -> set[int]:
    """The keep rule: the newest `keep` steps, the best rated grid (highest mean stars, the later on a tie),
    the best quality score (lowest Fréchet distance) and the milestone holding the current weights."""
    kept = {record.step for record in sorted(records, key=lambda r: r.step)[-keep:]} if keep > 0 else set()
    rated = [r for r in records if r.mean_rating is not None]
    if rated:
        kept.add(max(rated, key=lambda r: (r.mean_rating, r.step)).step)
    scored = [r for r in records if r.frechet is not None]
    if scored:
        kept.add(min(scored, key=lambda r: (r.frechet, -r.step)).step)
    kept.update(r.step for r in records if r.current)
    return kept


def prune_milestones(store: Store, model: str, keep: int, only: set[int] | None = None) -> list[int]:
    """Remove the milestones the keep rule lets go (or all but `only`); returns their steps.

    Rows go first, then folders; milestone folders no row names (left by a crash) are swept too. The
    caller holds the model's training lock, so nothing else writes milestones meanwhile.
    """
    repository = MilestoneRepository(store)
    records = repository.list(model)
    wanted = only if only is not None else kept_steps(records, keep)
    doomed = sorted(r.step for r in records if r.step not in wanted)
    repository.remove(model, doomed)
    root = model_folder(store, model) / MILESTONES_FOLDER
    named = {store.home.absolute(r.folder) for r in records if r.step in wanted}
    if root.is_dir():
        for child in root.iterdir():
            if child.is_dir() and child not in named:
                _remove_folder(child)
    return doomed


def _remove_folder(folder: Path) -> None:
    """Rename aside and remove (a crash midway leaves a marked folder the next prune sweeps)."""
    with contextlib.suppress(OSError, RuntimeError):
        StagingFolder.adopt(folder).discard()


def _model_id(session: Session, name: str) -> int:
    model_id = session.scalar(select(Model.id).where(Model.name == name))
    if model_id is None:
        raise NotFoundError(f"model '{name}' was deleted")
    return model_id


def save_milestone(
    store: Store, model: str, family: GeneratorFamily, state: TrainingState, config: Mapping[str, Any]
) -> tuple[str, list[int]]:
    """Copy the networks to `milestones/STEP/` atomically, sample its grid into the gallery, record it.

    Returns the weights hash and the grid's gallery item ids. A milestone at the same step (made
    again after a promote and a resume) is replaced.
    """
    root = model_folder(store, model) / MILESTONES_FOLDER
    root.mkdir(exist_ok=True)
    staging = StagingFolder(store.home.staging, f"milestone-{model}")
    try:
        values = {**config, "steps": state.step, MILESTONE_KEY: state.step}
        digest = save_checkpoint(staging.path, family, state, values, with_optimizers=False)
        fsync_path(staging.path)
        size = sum(p.stat().st_size for p in staging.path.iterdir() if p.is_file() and p.name != MARKER)
        destination = root / str(state.step)
        if destination.exists():
            _remove_folder(destination)
        staging.publish(destination)
        fsync_path(root)
        items = _sample_grid(store, model, family, digest, state.step)
        MilestoneRepository(store).add(model, state.step, digest, store.home.relative(destination), size, items)
        staging.commit()
    except BaseException:
        staging.discard()
        raise
    return digest, items


def _sample_grid(store: Store, model: str, family: GeneratorFamily, digest: str, step: int) -> list[int]:
    """The grid from GRID_SEEDS through generation's own writer: PNGs with metadata, then rows."""
    with store.sessions() as session:
        model_id = _model_id(session, model)
    pipeline = family.pipeline()
    chosen = pipeline.sampling_options({})
    seeds = list(GRID_SEEDS)
    # Sampling draws from numpy generators seeded per image; torch's own state is put back all the
    # same, so a run with milestones trains exactly as one without.
    cpu_state = torch.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        images = pipeline.sample(seeds, chosen)
    finally:
        torch.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
    opened = OpenedModel(model, model_id, family.name, pipeline, "torch", family.device.type, digest, step)
    extras = [{**made, MILESTONE_KEY: step} for made in item_classes(pipeline, seeds, chosen)]
    saved = _GalleryWriter(store, opened, CHECKPOINT_OPERATION, chosen).save(images, seeds, extras)
    return [int(entry["id"]) for entry in saved]


class MilestoneRecorder:
    """The trainer's milestones: one every `every` steps (0: never), then pruned by the keep rule."""

    def __init__(self, store: Store, every: int, keep: int) -> None:
        self.store, self.every, self.keep = store, every, keep

    def due(self, step: int) -> bool:
        """Whether a milestone is to be made at this step."""
        return self.every > 0 and step % self.every == 0

    def record(
        self, model: str, family: GeneratorFamily, step: int, seed: int, sampler_state: torch.Tensor
    ) -> MilestoneSaved:
        """Make the milestone of `step`; the model's checkpoint must be saved at this step already."""
        state = TrainingState(
            step=step,
            seed=seed,
            sampler_state=sampler_state,
            torch_rng=torch.get_rng_state(),
            cuda_rng=torch.cuda.get_rng_state_all() if family.device.type == "cuda" else None,
        )
        # config.json as the checkpoint at this step just wrote it: settings, losses, classes, architecture.
        config = read_config(model_folder(self.store, model))
        digest, items = save_milestone(self.store, model, family, state, config)
        pruned = prune_milestones(self.store, model, self.keep)
        return MilestoneSaved(step, digest, tuple(items), tuple(pruned))


# --- promote ------------------------------------------------------------------------------


def _load_milestone(store: Store, record: MilestoneRecord) -> LoadedModel:
    """A milestone's weights, checked against the hash recorded when it was made; one line otherwise."""
    kept = "the current weights are kept"
    where = f"the milestone at step {record.step} of '{record.model}'"
    try:
        folder = store.home.absolute(record.folder)
    except ValueError:
        raise StudioError(f"{where} has a folder outside the data home: {kept}") from None
    if not folder.is_dir():
        raise StudioError(f"{where} is missing ({record.folder} is gone): {kept}")
    try:
        loaded = load_model(folder, with_optimizers=False)
    except CheckpointError as error:
        raise StudioError(f"{where} is damaged ({error}): {kept}") from None
    if weights_hash(loaded.family) != record.weights_hash:
        raise StudioError(f"{where} is damaged (its weights no longer match their recorded hash): {kept}")
    return loaded


def promote(
    store: Store,
    model: str,
    step: int | None = None,
    item: int | None = None,
    prune: bool = False,
    cancel: CancelToken | None = None,
) -> Job:
    """Make a milestone's weights (by step, or by a gallery item of its grid) the model's weights.

    The replaced weights are kept as a milestone first (unless one holds them already); with `prune`,
    every other milestone goes instead. A missing or damaged milestone changes nothing. Finishes with
    Finished(PromoteResult).
    """
    if (step is None) == (item is None):
        raise StudioError("give the milestone's --step N or one of its checkpoint items with --item ID")
    if store.read_only:
        raise StudioError(f"the database is read-only: {store.read_only_reason}")
    cancel = cancel or CancelToken()
    repository = MilestoneRepository(store)
    if item is not None:
        found = repository.of_item(item)
        if found is None or found.model != model:
            raise StudioError(
                f"gallery item {item} is not in a milestone's sample grid of '{model}' "
                f"(see `studio models milestones {model}`)"
            )
        step = found.step
    assert step is not None
    record = repository.get(model, step)
    yield Progress("promoting", 0, 3, f"{model}: checking the milestone at step {step}")
    with hold_model(store, model) as hold:
        hold.add_exclusive(TRAINING_LOCK, f"model '{model}' is being trained: wait for it to finish, then promote")
        folder = hold.folder
        loaded = _load_milestone(store, record)
        cancel.check()
        current = get_model(store, model)
        kept: int | None = None
        digest = record.weights_hash
        if current.weights_hash != record.weights_hash:
            if not prune:  # pruned right after, a milestone of the replaced weights would be made for nothing
                yield Progress("promoting", 1, 3, f"{model}: keeping the current weights (step {current.steps})")
                kept = _keep_current(store, model, folder, current.weights_hash)
            cancel.check()  # the last chance: from here on the model's weights change
            yield Progress("promoting", 2, 3, f"{model}: writing the weights of step {step}")
            config = {
                **read_config(folder),
                "losses": loaded.config.get("losses") or {},
                "promoted_from": step,
                "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            digest = save_checkpoint(folder, loaded.family, loaded.state, config, with_optimizers=False)

            def update(session: Session) -> None:
                row = session.get(Model, _model_id(session, model))
                assert row is not None
                row.steps, row.weights_hash, row.updated_at = loaded.state.step, digest, utcnow()

            store.write(update)
        pruned = prune_milestones(store, model, 0, only={step}) if prune else []
        export = export_state(folder, digest)
    yield Progress("promoting", 3, 3, f"{model}: step {step} promoted")
    yield Finished(
        PromoteResult(
            model,
            step,
            digest,
            current.steps,
            current.weights_hash,
            kept,
            pruned,
            export is not None and not export.get("imported") and not export.get("current"),
        )
    )


def _keep_current(store: Store, model: str, folder: Path, current_hash: str | None) -> int | None:
    """The model's current weights as a milestone (so a promote can be undone); its step, or None.

    Nothing is made when a milestone holds those weights already, or when the current step's
    milestone holds others (a run resumed after an earlier promote): that one is not overwritten.
    """
    repository = MilestoneRepository(store)
    if current_hash is not None and (held := repository.find_hash(model, current_hash)) is not None:
        return held.step
    loaded = load_model(folder, select_device(), with_optimizers=False)  # its grid as training would sample it
    if any(r.step == loaded.state.step for r in repository.list(model)):
        return None
    loaded.family.train_mode(False)
    save_milestone(store, model, loaded.family, loaded.state, loaded.config)
    return loaded.state.step
