"""The model library: model rows and folders in the data home; list, show, import, delete."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from studio.engine.checkpoints import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    CheckpointError,
    LoadedModel,
    load_model,
    weights_hash,
    write_config,
)
from studio.engine.datasets.storage import fsync_path, validate_name
from studio.engine.model_locks import claim_for_delete
from studio.engine.runs import RunStatus
from studio.engine.runtime.package import EXPORT_FOLDER, MANIFEST_FILE, read_manifest
from studio.engine.untrusted.model_files import CARD_FILE, MAX_CARD_BYTES, read_model_config
from studio.errors import AlreadyExistsError, NotFoundError, StudioError
from studio.files import StagingFolder
from studio.store.database import Store, retry_when_busy
from studio.store.staging import delete_row_and_folder
from studio.store.tables import Dataset, Model, TrainingRun


@dataclass
class ModelSummary:
    """What the CLI and UI show of a model."""

    name: str
    family: str
    resolution: int
    channels: int
    steps: int
    dataset: str | None
    folder: str
    parameter_count: int
    size_bytes: int
    weights_hash: str | None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    parent: str | None = None
    export: dict[str, Any] | None = None  # the ONNX export's state, None when never exported
    # From config.json, for models made elsewhere: how the file was read (an imported ONNX generator's
    # latent_shape and value_range) and where it came from (origin: kind, source, repo_id, revision, license).
    architecture: dict[str, Any] | None = None
    origin: dict[str, Any] | None = None
    classes: list[str] = field(default_factory=list)  # a class-conditional model's classes, in label order

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return dict(self.__dict__)


def _summary(store: Store, row: Model, session: Any) -> ModelSummary:
    folder = store.home.absolute(row.folder)
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) if folder.is_dir() else 0
    dataset = session.get(Dataset, row.dataset_id).name if row.dataset_id else None
    parent = session.get(Model, row.parent_model_id).name if row.parent_model_id else None
    return ModelSummary(
        row.name,
        row.family,
        row.resolution,
        row.channels,
        row.steps,
        dataset,
        row.folder,
        row.parameter_count,
        size,
        row.weights_hash,
        dict(row.hyperparameters or {}),
        row.created_at.isoformat(timespec="seconds"),
        row.updated_at.isoformat(timespec="seconds"),
        parent,
        export_state(folder, row.weights_hash),
        *_described(folder),
        list(row.classes or []),
    )


def _described(folder: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """config.json's `architecture` and `origin` (None where absent, or when the file cannot be read)."""
    try:
        values = read_model_config(folder / CONFIG_FILE).values
    except (StudioError, OSError):
        return None, None
    architecture, origin = values.get("architecture"), values.get("origin")
    return (architecture if isinstance(architecture, dict) else None, origin if isinstance(origin, dict) else None)


def export_state(folder: Path, weights: str | None) -> dict[str, Any] | None:
    """What the UI and `models show` say about a model's ONNX export (read and checked, files not verified)."""
    if not (folder / EXPORT_FOLDER / MANIFEST_FILE).is_file():
        return None
    try:
        manifest = read_manifest(folder / EXPORT_FOLDER)
        networks = manifest["networks"]
        imported = manifest.get("imported") is True  # a file made elsewhere: no torch to compare it with
        return {
            "current": manifest.get("weights_hash") == weights,
            "exported_at": manifest.get("exported_at"),
            "fp16": all("fp16" in entry for entry in networks.values()),
            "max_abs_difference": (
                0.0 if imported else max(float(entry["max_abs_difference"]) for entry in networks.values())
            ),
            "imported": imported,
        }
    except (StudioError, KeyError):  # KeyError: a manifest without its parity figures
        return {"current": False, "damaged": True}


def list_models(store: Store) -> list[ModelSummary]:
    """Every model, most recently updated first."""
    with store.sessions() as session:
        rows = session.scalars(select(Model).order_by(Model.updated_at.desc(), Model.id.desc()))
        return [_summary(store, row, session) for row in rows]


def get_model(store: Store, name: str) -> ModelSummary:
    """One model by name, or NotFoundError."""
    with store.sessions() as session:
        row = session.scalar(select(Model).where(Model.name == name))
        if row is None:
            raise NotFoundError(f"no model named '{name}' (see `studio models list`)")
        return _summary(store, row, session)


def model_folder(store: Store, name: str) -> Path:
    """The folder of an existing model."""
    return store.home.absolute(get_model(store, name).folder)


def model_exists(store: Store, name: str) -> bool:
    """Whether a model row of that name exists."""
    with store.sessions() as session:
        return session.scalar(select(Model.id).where(Model.name == name)) is not None


def delete_model(store: Store, name: str) -> ModelSummary:
    """Delete a model's row, runs and folder (gallery items keep the model's name).

    Refused with one line while another job or process generates with, exports or trains the model.
    """
    summary = get_model(store, name)
    folder = store.home.absolute(summary.folder)
    with claim_for_delete(folder, name):
        delete_row_and_folder(store, folder, Model, name)
    return summary


def import_model(store: Store, source: Path, name: str | None = None) -> ModelSummary:
    """Copy a model folder made elsewhere into the library, after checking it loads."""
    source = Path(source)
    # Bounded, typed reads; every tensor in the file finite; a one-line CheckpointError otherwise.
    loaded = load_model(source, with_optimizers=False, check_every_tensor=True)
    digest = _verified_hash(source, loaded)
    name = validate_name(name or str(loaded.config.get("name") or source.name))
    if model_exists(store, name):
        raise AlreadyExistsError(f"a model named '{name}' already exists: give another with --name")
    if store.home.root in source.resolve().parents:
        raise StudioError(f"{source} is already inside the data home")
    staging = StagingFolder(store.home.staging, f"model-{name}")
    try:
        for file in (CHECKPOINT_FILE, CONFIG_FILE):
            if (source / file).is_symlink():
                raise StudioError(f"{source / file} is a symbolic link: not imported")
            shutil.copyfile(source / file, staging.path / file)
        card = source / CARD_FILE
        if card.is_file() and not card.is_symlink() and card.stat().st_size <= MAX_CARD_BYTES:
            shutil.copyfile(card, staging.path / CARD_FILE)  # an imported model's card travels with it
        config = {**loaded.config, "name": name, "weights_hash": digest}
        write_config(staging.path, config)
        fsync_path(staging.path)
        family = loaded.family
        publish_model(
            store,
            staging,
            name,
            family=family.name,
            resolution=family.resolution,
            channels=family.channels,
            dataset=config.get("dataset"),
            hyperparameters=family.hparams,
            weights_hash=digest,
            steps=loaded.state.step,
            parameter_count=family.parameter_count(),
            classes=list(family.classes),
        )
    except BaseException:
        staging.discard()
        raise
    return get_model(store, name)


def publish_model(store: Store, staging: StagingFolder, name: str, dataset: str | None = None, **row: Any) -> None:
    """Move a staged, fsynced model folder to `models/NAME` and add its row (`row`: the Model columns
    besides name, folder and dataset); the staging folder is committed once both are done."""
    destination = store.home.models / name
    if destination.exists():
        raise AlreadyExistsError(f"{destination} already exists")
    staging.publish(destination)
    with store.session() as session:
        dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == dataset)) if dataset else None
        session.add(Model(name=name, folder=store.home.relative(destination), dataset_id=dataset_id, **row))
    staging.commit()


def _verified_hash(source: Path, loaded: LoadedModel) -> str:
    """The weights hash computed from the weights; a different one written in the folder is refused.

    The hash is what a generated image records to name its weights, so a folder that claims one
    and holds others (edited, or forged) would make reproduce trust the wrong model: not imported.
    """
    digest = weights_hash(loaded.family)
    for where, claimed in (
        (CONFIG_FILE, loaded.config.get("weights_hash")),
        (CHECKPOINT_FILE, loaded.meta.get("weights_hash")),
    ):
        if claimed and claimed != digest:
            raise CheckpointError(
                f"{source / where} gives the weights hash {claimed[:12]}..., but the weights hash to "
                f"{digest[:12]}...: the folder was changed after Studio saved it; not imported"
            )
    return digest


@retry_when_busy
def mark_interrupted_runs(store: Store, model_name: str) -> None:
    """Runs of a model still marked running belong to a process that died: say so."""
    with store.session() as session:
        model_id = session.scalar(select(Model.id).where(Model.name == model_name))
        if model_id is None:
            return
        for run in session.scalars(
            select(TrainingRun).where(
                TrainingRun.model_id == model_id, TrainingRun.status.in_((RunStatus.RUNNING, RunStatus.PAUSED))
            )
        ):
            run.status = RunStatus.INTERRUPTED
