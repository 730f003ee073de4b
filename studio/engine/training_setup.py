"""What a run starts from: a new family object, a fine-tune of another model, or a resumed checkpoint.

Everything is checked here, before a row, lock or file is written: the family, the dataset's shape and
labels, settings that may not change once weights exist, and the step target of a resumed run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from studio.engine.checkpoints import LoadedModel, load_model
from studio.engine.datasets.storage import get_dataset, load_labels
from studio.engine.families.base import GeneratorFamily
from studio.engine.families.conditioning import CONDITIONAL_SETTING, resolve_classes
from studio.engine.families.declaration import check_training_size
from studio.engine.families.registry import family_class, trainable_family_names
from studio.engine.library import get_model, model_exists, model_folder
from studio.engine.model_locks import hold_model
from studio.errors import AlreadyExistsError, NotFoundError, StudioError
from studio.store.database import Store


def _check_settings_for_existing(family: GeneratorFamily, settings: Mapping[str, Any], why: str) -> dict[str, Any]:
    """Model-group settings are fixed once weights exist; the others may change."""
    schema = {h.name: h for h in family.full_schema()}
    changes: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in schema:
            raise StudioError(f"unknown setting '{key}' for {family.name}: choose from {', '.join(sorted(schema))}")
        value = schema[key].validate(value)
        if schema[key].group == "model" and value != family.hparams[key]:
            raise StudioError(
                f"{key} is part of the network's shape and cannot change when {why} (it is {family.hparams[key]!r})"
            )
        changes[key] = value
    return changes


def _apply_learning_rate(family: GeneratorFamily) -> None:
    rate = family.hparams.get("learning_rate")
    if rate is None:
        return
    for optimizer in family.optimizers().values():
        for group in optimizer.param_groups:
            group["lr"] = rate


def prepare_model(
    store: Store,
    name: str,
    family: str | None,
    dataset: str | None,
    settings: Mapping[str, Any],
    init_from: str | None,
    resume: bool,
    steps: int | None,
    seed: int,
    device_type: str,
) -> tuple[GeneratorFamily, str, LoadedModel | None]:
    """Build (or load) the family object and resolve the dataset, refusing anything inconsistent
    (or too large to train on `device_type`)."""
    if resume:
        if init_from:
            raise StudioError("choose --resume (continue this model) or --init-from (start a new one), not both")
        if not model_exists(store, name):
            raise NotFoundError(f"no model named '{name}' to resume (see `studio models list`)")
        loaded = load_model(model_folder(store, name))
        model = loaded.family
        check_training_size(model.resolution, device_type)
        if family and family != model.name:
            raise StudioError(f"model '{name}' is a {model.name} model, not {family}")
        recorded = str(loaded.config.get("dataset") or "")
        if dataset and recorded and dataset != recorded:
            raise StudioError(f"a resumed run continues on its own dataset '{recorded}', not '{dataset}'")
        dataset = dataset or recorded
        if not dataset:
            raise StudioError(f"model '{name}' does not record its dataset: give --dataset")
        model.hparams.update(_check_settings_for_existing(model, settings, "resuming"))
        _apply_learning_rate(model)
        if steps is not None and steps <= loaded.state.step:
            raise StudioError(
                f"model '{name}' is already at step {loaded.state.step}: ask for more with --steps "
                f"(a total, e.g. --steps {loaded.state.step + 1000})"
            )
        return model, dataset, loaded
    if model_exists(store, name):
        raise AlreadyExistsError(f"a model named '{name}' already exists: continue it with --resume or pick a new name")
    if family is None and init_from is not None:
        family = get_model(store, init_from).family  # fine-tuning keeps the family: no need to repeat it
    if family is None:
        raise StudioError(f"give --family ({', '.join(trainable_family_names())})")
    cls = family_class(family)
    if dataset is None:
        raise StudioError("give --dataset (see `studio datasets list`)")
    summary = get_dataset(store, dataset)
    cls.check_geometry(summary.size, summary.channels)
    check_training_size(summary.size, device_type)
    torch.manual_seed(seed)  # before the networks are built: the seed fixes their initial weights too
    if init_from is None:
        resolved = cls.resolve(settings)  # the conditional setting, validated before the labels are read
        classes = _classes_for(cls, resolved[CONDITIONAL_SETTING], store, dataset)
        return cls(summary.size, summary.channels, dict(settings), None, classes), dataset, None
    with hold_model(store, init_from):  # not deleted while it is read
        source = load_model(model_folder(store, init_from), with_optimizers=False)
    if source.family.name != cls.name:
        raise StudioError(f"--init-from '{init_from}' is a {source.family.name} model; fine-tuning keeps the family")
    if (source.family.resolution, source.family.channels) != (summary.size, summary.channels):
        raise StudioError(
            f"'{init_from}' takes {source.family.resolution}px x {source.family.channels} images but dataset "
            f"'{dataset}' is {summary.size}px x {summary.channels}: fine-tune on a dataset of the same shape"
        )
    changes = _check_settings_for_existing(source.family, settings, "fine-tuning")
    architecture = source.family.architecture()  # the source's exact networks (e.g. a published UNet2DModel)
    settings = {**source.family.hparams, **changes}
    # Fine-tuning keeps the source's classes (its class embedding): the dataset's labels must be among them.
    model = cls(summary.size, summary.channels, settings, architecture, source.family.classes)
    for key, network in model.networks().items():
        network.load_state_dict(source.family.networks()[key].state_dict())
    return model, dataset, None


def _classes_for(cls: type[GeneratorFamily], setting: str, store: Store, dataset: str) -> tuple[str, ...]:
    """A new model's classes: its dataset's labels when the conditional setting and the family allow."""
    if setting == "no":
        return ()
    if not cls.accepts_classes:
        if setting == "yes":
            raise StudioError(f"{cls.name} models cannot be class-conditional: train with --set conditional=no")
        return ()
    return resolve_classes(setting, load_labels(store, dataset), dataset)
