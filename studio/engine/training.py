"""The headless trainer: one job that trains (or resumes, or fine-tunes) a model and checkpoints it.

The job yields small events (progress, previews, checkpoints, warnings) and finishes with a
TrainResult. It honours pause, resume and cancel between steps, stops at a step target or a
wall-clock budget, and saves a checkpoint on the way out, so a cancelled run can be resumed and a
killed one resumes from its last periodic checkpoint with the same step count, optimiser state
and random-number state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from studio import __version__
from studio.engine.checkpoints import TrainingState, save_checkpoint
from studio.engine.datasets.storage import load_images, load_labels, validate_name
from studio.engine.devices import select_device as select_device  # here before; importers keep it
from studio.engine.distributed import DistributedRun, LocalControl, PeerLostError, SharedControl, finite
from studio.engine.families.base import GeneratorFamily, Precision
from studio.engine.families.conditioning import label_indices
from studio.engine.jobs import CancelToken, Finished
from studio.engine.launch import worker_place
from studio.engine.library import mark_interrupted_runs, model_exists, model_folder
from studio.engine.milestones import MilestoneRecorder, MilestoneSaved
from studio.engine.model_locks import ModelHold, hold_model, hold_new_folder, reserve_name
from studio.engine.runs import LOCK_FILE, RunStatus
from studio.engine.training_events import CheckpointSaved as CheckpointSaved
from studio.engine.training_events import PreviewReady as PreviewReady
from studio.engine.training_events import TrainingProgress as TrainingProgress
from studio.engine.training_events import TrainingWarning as TrainingWarning
from studio.engine.training_history import MetricRecorder, check_tensorboard
from studio.engine.training_options import TrainOptions
from studio.engine.training_setup import prepare_model
from studio.errors import AlreadyExistsError, CancelledError, NotFoundError, StudioError
from studio.files import StagingFolder
from studio.store.database import Store
from studio.store.tables import Dataset, Model, TrainingRun, utcnow

PREVIEW_SEEDS = tuple(range(1000, 1064))  # fixed, so previews show the same latents improving


# What a training job yields: its own events, then Finished(TrainResult).
TrainingEvent = TrainingProgress | PreviewReady | CheckpointSaved | TrainingWarning | MilestoneSaved | Finished
TrainingJob = Generator[TrainingEvent, None, None]


@dataclass
class TrainResult:
    """How a run ended."""

    model: str
    family: str
    dataset: str
    steps: int
    start_step: int
    final_losses: dict[str, float]
    status: RunStatus
    device: str
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio train --json`)."""
        return {
            "model": self.model,
            "family": self.family,
            "dataset": self.dataset,
            "steps": self.steps,
            "start_step": self.start_step,
            "final_losses": self.final_losses,
            "status": self.status,
            "device": self.device,
            "seconds": round(self.seconds, 2),
            "warnings": self.warnings,
        }


def dataset_tensor(store: Store, name: str, device: torch.device) -> torch.Tensor:
    """The whole dataset as float32 NCHW in [-1, 1], resident on the device (no per-step decoding)."""
    images = np.array(load_images(store, name))  # a writable copy: torch refuses read-only memory
    tensor = torch.from_numpy(images).to(device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1)
    return tensor.contiguous()


def dataset_labels(store: Store, name: str, classes: tuple[str, ...], device: torch.device) -> torch.Tensor | None:
    """Each image's class index (int64, on the device) for a conditional model; None for an unconditional one."""
    if not classes:
        return None
    try:
        indices = label_indices(load_labels(store, name), classes)
    except StudioError as error:
        raise StudioError(f"dataset '{name}': {error}") from None
    return torch.from_numpy(indices).to(device)


class BatchSampler:
    """Uniform batches with replacement from a seeded generator whose state checkpoints restore."""

    def __init__(
        self, data: torch.Tensor, batch_size: int, hflip: bool, seed: int, labels: torch.Tensor | None = None
    ) -> None:
        self.data = data
        self.labels = labels
        self.batch_size = batch_size
        self.hflip = hflip
        self.generator = torch.Generator().manual_seed(seed)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next batch (on the data's device) and its class indices (None without labels)."""
        indices = torch.randint(self.data.shape[0], (self.batch_size,), generator=self.generator)
        on_device = indices.to(self.data.device)
        batch = self.data[on_device]
        if self.hflip:
            flip = (torch.rand(self.batch_size, generator=self.generator) < 0.5).to(self.data.device)
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        return batch, (None if self.labels is None else self.labels[on_device])


def _training_refusal(name: str) -> str:
    return f"model '{name}' is being trained by another process: wait for it to finish"


class _Run:
    """The state of one training run and its persistence (folder, rows, locks)."""

    def __init__(
        self,
        store: Store,
        name: str,
        family: GeneratorFamily,
        dataset: str,
        seed: int,
        config: dict[str, Any],
        start_step: int,
        target: int | None,
        minutes: float | None,
        device: torch.device,
        parent: str | None,
        main: bool = True,
    ) -> None:
        self.store, self.name, self.family, self.dataset = store, name, family, dataset
        # Only the main process (rank 0) writes the model's files, rows and locks; other ranks train alongside.
        self.main = main
        self.seed, self.config, self.start_step, self.target, self.minutes = seed, config, start_step, target, minutes
        self.device, self.parent = device, parent
        self.run_id: int | None = None
        self.folder: Path | None = model_folder(store, name) if model_exists(store, name) else None
        self.hold: ModelHold | None = None  # the model's use and training locks
        self.name_lock: BinaryIO | None = None  # a new model's reserved name (see reserve_name)
        self.saved_step = start_step if self.folder else -1
        self.losses: dict[str, float] = {}
        self.history = MetricRecorder(store, self)  # per-step metrics, written in batches

    def acquire(self) -> None:
        """Only one process trains a model at a time; a run of an existing model is recorded at once.

        A new model is claimed by its reserved name until its first checkpoint makes its folder.
        """
        if self.folder is None or not self.main:
            return
        if self.hold is None:
            self.hold = hold_model(self.store, self.name)  # refuses while the model is being deleted
            self.hold.add_exclusive(LOCK_FILE, _training_refusal(self.name))
        if self.run_id is None:

            def record(session: Session) -> None:
                model_id = session.scalar(select(Model.id).where(Model.name == self.name))
                if model_id is None:
                    raise NotFoundError(f"model '{self.name}' was deleted")
                self._add_run(session, model_id, self._ids(session)["dataset"], self.start_step)

            self.store.write(record)

    def release(self) -> None:
        """Drop the training locks (and the name)."""
        if self.hold is not None:
            self.hold.close()
            self.hold = None
        if self.name_lock is not None:
            self.name_lock.close()
            self.name_lock = None

    def save(self, step: int, sampler: BatchSampler) -> str:
        """Write a checkpoint (creating the model on the first save) and update the rows."""
        if not self.main:
            return ""
        state = TrainingState(
            step=step,
            seed=self.seed,
            sampler_state=sampler.generator.get_state(),
            torch_rng=torch.get_rng_state(),
            cuda_rng=torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
        )
        config = {
            **self.config,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "losses": self.losses,
            "hyperparameters": self.family.hparams,
            "device": self.device.type,
        }
        if self.folder is None:
            staging = StagingFolder(self.store.home.staging, f"model-{self.name}")
            try:
                digest = save_checkpoint(staging.path, self.family, state, config)
                destination = self.store.home.models / self.name
                if destination.exists():
                    raise AlreadyExistsError(f"{destination} exists but is not a model of this home")
                staging.publish(destination)
                # Locked before any row names it, so no delete can come between.
                self.hold = hold_new_folder(self.name, destination)
                self.hold.add_exclusive(LOCK_FILE, _training_refusal(self.name))

                def create(session: Session) -> None:
                    ids = self._ids(session)
                    model = Model(
                        name=self.name,
                        family=self.family.name,
                        folder=self.store.home.relative(destination),
                        resolution=self.family.resolution,
                        channels=self.family.channels,
                        dataset_id=ids["dataset"],
                        parent_model_id=ids["parent"],
                        hyperparameters=self.family.hparams,
                        weights_hash=digest,
                        steps=step,
                        parameter_count=self.family.parameter_count(),
                        classes=list(self.family.classes),
                    )
                    session.add(model)
                    session.flush()
                    self._add_run(session, model.id, ids["dataset"], step)

                self.store.write(create)
                staging.commit()
            except BaseException:
                if self.hold is not None:
                    self.hold.close()
                    self.hold = None
                staging.discard()
                raise
            self.folder = destination
            self.acquire()
        else:
            digest = save_checkpoint(self.folder, self.family, state, config)

            def update(session: Session) -> None:
                row = session.scalar(select(Model).where(Model.name == self.name))
                if row is None:
                    raise NotFoundError(f"model '{self.name}' was deleted while training")
                row.steps, row.weights_hash, row.hyperparameters = step, digest, self.family.hparams
                row.updated_at = utcnow()
                if self.run_id is None:
                    self._add_run(session, row.id, self._ids(session)["dataset"], step)
                else:
                    run = session.get(TrainingRun, self.run_id)
                    if run is not None:
                        run.end_step, run.final_losses = step, self.losses

            self.store.write(update)
        self.saved_step = step
        return digest

    def _ids(self, session: Any) -> dict[str, int | None]:
        return {
            "dataset": session.scalar(select(Dataset.id).where(Dataset.name == self.dataset)),
            "parent": session.scalar(select(Model.id).where(Model.name == self.parent)) if self.parent else None,
        }

    def _add_run(self, session: Any, model_id: int, dataset_id: int | None, step: int) -> None:
        run = TrainingRun(
            model_id=model_id,
            dataset_id=dataset_id,
            status=RunStatus.RUNNING,
            seed=self.seed,
            start_step=self.start_step,
            end_step=step,
            target_steps=self.target,
            budget_minutes=self.minutes,
            device=self.device.type,
            settings=self.family.hparams,
            final_losses=self.losses,
        )
        session.add(run)
        session.flush()
        self.run_id = run.id

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        """Record how the run ended (if it ever reached the database)."""
        if self.run_id is None or not self.main:
            return

        def record(session: Session) -> None:
            run = session.get(TrainingRun, self.run_id)
            if run is not None:
                run.status, run.error, run.finished_at = status, error, utcnow()
                run.final_losses = self.losses
                run.end_step = max(run.end_step, self.saved_step)

        self.store.write(record)


def train(store: Store, options: TrainOptions, cancel: CancelToken | None = None) -> TrainingJob:
    """Train a model; yields TrainingProgress, PreviewReady, CheckpointSaved and TrainingWarning events.

    Finishes with Finished(TrainResult) when the budget is spent or the run is cancelled (a
    checkpoint is saved either way). NaN losses stop the run with a StudioError and keep the last
    good checkpoint.
    """
    validate_name(options.name)
    options.check()
    place = worker_place()
    if options.distributed and not place.distributed:
        raise StudioError("a run on several processes starts through `studio train --nproc-per-node N` (torchrun)")
    main = place.main
    if main:
        check_tensorboard(store, options.tensorboard)  # before any row or lock: a bad folder starts nothing
    if store.read_only:
        raise StudioError(f"the database is read-only: {store.read_only_reason}")
    name, steps, minutes, seed = options.name, options.steps, options.minutes, options.seed
    init_from, resume, threads = options.init_from, options.resume, options.threads
    cancel = cancel or CancelToken()
    torch_device = select_device(options.device)
    group = DistributedRun.join(place, torch_device) if place.distributed else None
    torch_device = torch_device if group is None else group.device
    # Claimed before anything is loaded or trained, so a second trainer of the same model is refused
    # at once: a new name by its reservation, an existing model by its locks (by rank 0 for all ranks).
    name_lock = None if resume or not main else reserve_name(store, name)
    hold: ModelHold | None = None
    previous_threads = torch.get_num_threads()
    try:
        if resume and main and model_exists(store, name):
            hold = hold_model(store, name)
            hold.add_exclusive(LOCK_FILE, _training_refusal(name))
        model, dataset_name, loaded = prepare_model(
            store,
            name,
            options.family,
            options.dataset,
            options.settings,
            init_from,
            resume,
            steps,
            seed,
            torch_device.type,
        )
        if resume and main:
            mark_interrupted_runs(store, name)  # only now: while another process trained it, its run was live
        if threads is not None:
            torch.set_num_threads(max(1, threads))
        model.to(torch_device)
        data = dataset_tensor(store, dataset_name, torch_device)
        if tuple(data.shape[1:]) != (model.channels, model.resolution, model.resolution):
            raise StudioError(
                f"dataset '{dataset_name}' is now {data.shape[2]}px x {data.shape[1]}, but the model takes "
                f"{model.resolution}px x {model.channels}"
            )
        labels = dataset_labels(store, dataset_name, model.classes, torch_device)
        hp = model.hparams
        sampler_seed = seed if loaded is None else loaded.state.seed
        sampler = _sampler(data, labels, hp["batch_size"], hp["hflip"], sampler_seed, group)
        if loaded is None:
            start_step, run_seed = 0, seed
            config = {
                "format": 1,
                "studio_version": __version__,
                "name": name,
                "family": model.name,
                "resolution": model.resolution,
                "channels": model.channels,
                "dataset": dataset_name,
                "init_from": init_from,
                "seed": seed,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        else:
            # Restore every source of randomness so the resumed run continues exactly.
            sampler.generator.set_state(loaded.state.sampler_state)
            torch.set_rng_state(loaded.state.torch_rng)
            if loaded.state.cuda_rng and torch_device.type == "cuda":
                torch.cuda.set_rng_state_all(loaded.state.cuda_rng)
            start_step, run_seed, config = loaded.state.step, loaded.state.seed, dict(loaded.config)
        config["target_steps"] = steps
        config["processes"] = place.world_size  # the last run's; checkpoints do not depend on it
        control: LocalControl = LocalControl(cancel)
        if group is not None:
            # Every rank draws its own batches and noise; rank 0 keeps the run's streams (a checkpoint's).
            if group.rank:
                sampler.generator.manual_seed(group.seed(run_seed, start_step, 0))
                torch.manual_seed(group.seed(run_seed, start_step, 1))
            model.distribute(group.wrap, group.collective())
            control = SharedControl(cancel, group)
        run = _Run(
            store,
            name,
            model,
            dataset_name,
            run_seed,
            config,
            start_step,
            steps,
            minutes,
            torch_device,
            init_from,
            main,
        )
        run.hold, run.name_lock = hold, name_lock  # the run lets go of them when it ends
        run.acquire()
        loop = _loop(
            run,
            model,
            sampler,
            data,
            torch_device,
            steps,
            minutes,
            options.checkpoint_every,
            options.preview_every,
            options.preview_count,
            options.amp,
            control,
            MilestoneRecorder(store, options.milestone_every, options.keep_milestones),
            hp["batch_size"],
        )
        yield from run.history.watch(loop, options.tensorboard) if main else loop
    finally:
        if threads is not None:
            torch.set_num_threads(previous_threads)
        # Normally released by the run as it ends; here for a failure before or while it starts.
        if hold is not None:
            hold.close()
        if name_lock is not None:
            name_lock.close()


def _loop(
    run: _Run,
    model: GeneratorFamily,
    sampler: BatchSampler,
    data: torch.Tensor,
    device: torch.device,
    steps: int | None,
    minutes: float | None,
    checkpoint_every: int,
    preview_every: int,
    preview_count: int,
    amp: bool,
    control: LocalControl,
    milestones: MilestoneRecorder,
    batch_size: int,
) -> TrainingJob:
    """The steps of a run; `batch_size` is the global batch (all ranks), `control` how ranks agree."""
    precision = Precision(device, amp)
    step = run.start_step
    warnings: list[str] = []
    started = time.monotonic()
    paused_for = 0.0
    last_report = started
    report_step = step
    rate = 0.0
    out_of_time = False
    model.train_mode(True)
    try:
        while (steps is None or step < steps) and not out_of_time:
            paused_for += control.wait()
            batch, batch_labels = sampler.next()
            losses = model.training_step(batch, step, precision, batch_labels)
            step += 1
            spent = minutes is not None and time.monotonic() - started - paused_for >= minutes * 60
            losses, out_of_time = control.agree(losses, spent)  # every rank stops at the same step
            if not finite(losses):
                bad = ", ".join(f"{k}={v}" for k, v in losses.items() if not math.isfinite(v))
                kept = (
                    f"the last good checkpoint (step {run.saved_step}) is kept"
                    if run.saved_step >= 0
                    else "nothing was saved"
                )
                message = f"training diverged at step {step} ({bad}); {kept}: try a lower learning_rate"
                run.finish(RunStatus.FAILED, message)
                raise StudioError(message)
            run.losses = losses
            if not run.main:
                continue  # rank 0 alone reports, previews and saves
            run.history.losses(step, losses)
            now = time.monotonic()
            if now - last_report >= 0.5 or step == steps:
                measured = (step - report_step) * batch_size / max(now - last_report, 1e-9)
                rate = measured if rate == 0 else 0.7 * rate + 0.3 * measured
                yield TrainingProgress(
                    step,
                    steps,
                    dict(losses),
                    rate,
                    _eta(step, steps, minutes, rate, batch_size, now - started - paused_for),
                    now - started,
                )
                last_report, report_step = now, step
            if preview_every > 0 and step % preview_every == 0:
                preview, found = _preview(model, data, preview_count, step)
                for message in found:
                    if message not in warnings:
                        warnings.append(message)
                    yield TrainingWarning(step, message)
                yield preview
                model.train_mode(True)
            if step % checkpoint_every == 0:
                yield CheckpointSaved(step, run.save(step, sampler))
            if milestones.due(step):  # weights to choose from later, with a sample grid in the gallery
                if step > run.saved_step:
                    yield CheckpointSaved(step, run.save(step, sampler))
                yield milestones.record(run.name, model, step, run.seed, sampler.generator.get_state())
        status = RunStatus.COMPLETED
    except (CancelledError, KeyboardInterrupt) as stop:
        # A stop by the user is not a failure: keep what was learned so far.
        if step > run.saved_step:
            run.save(step, sampler)
        run.finish(RunStatus.CANCELLED)
        run.release()
        if not isinstance(stop, KeyboardInterrupt):
            control.finish()
        if isinstance(stop, KeyboardInterrupt):
            raise
        yield Finished(_result(run, step, RunStatus.CANCELLED, device, started, warnings))
        return
    except BaseException as error:
        reason = control.explain(error, run.saved_step)  # a peer's death, in the words of this run
        # A run whose peer died is interrupted (offered for resuming), not failed.
        status = RunStatus.INTERRUPTED if isinstance(reason, PeerLostError) else RunStatus.FAILED
        run.finish(status, str(reason).splitlines()[0] if str(reason) else type(reason).__name__)
        run.release()
        if reason is not error:
            raise reason from None
        raise
    if step > run.saved_step and run.main:
        yield CheckpointSaved(step, run.save(step, sampler))
    run.finish(status)
    run.release()
    control.finish()
    yield Finished(_result(run, step, status, device, started, warnings))


def _sampler(
    data: torch.Tensor,
    labels: torch.Tensor | None,
    batch_size: int,
    hflip: bool,
    seed: int,
    group: DistributedRun | None,
) -> BatchSampler:
    """The run's batches; under torchrun, this rank's share of the global batch from its shard of the data."""
    if group is None:
        return BatchSampler(data, batch_size, hflip, seed, labels)
    local = group.local_batch(batch_size)
    shard = group.shard(data.shape[0]).to(data.device)
    return BatchSampler(data[shard], local, hflip, seed, None if labels is None else labels[shard])


def _result(
    run: _Run, step: int, status: RunStatus, device: torch.device, started: float, warnings: list[str]
) -> TrainResult:
    """How the run ended, for the Finished event."""
    return TrainResult(
        run.name,
        run.family.name,
        run.dataset,
        step,
        run.start_step,
        run.losses,
        status,
        device.type,
        time.monotonic() - started,
        warnings,
    )


def _eta(step: int, steps: int | None, minutes: float | None, rate: float, batch: int, elapsed: float) -> float | None:
    candidates = []
    if steps is not None and rate > 0:
        candidates.append((steps - step) * batch / rate)
    if minutes is not None:
        candidates.append(max(0.0, minutes * 60 - elapsed))
    return min(candidates) if candidates else None


def _preview(model: GeneratorFamily, data: torch.Tensor, count: int, step: int) -> tuple[PreviewReady, list[str]]:
    model.train_mode(False)
    with torch.no_grad():
        real = data[: min(64, data.shape[0])]
        diagnostics = model.diagnostics(real)
        images = None
        if count > 0:
            images = model.preview(real, PREVIEW_SEEDS[:count], model.sampling_options({}))
    return PreviewReady(step, images, diagnostics.figures), diagnostics.warnings
