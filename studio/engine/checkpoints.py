"""Model folders: `config.json` plus one `checkpoint.safetensors` holding every tensor of a model.

The checkpoint file is the unit of atomicity: networks, optimiser state and random-number state
are written together through a temporary file, fsync and `os.replace`, so a crash or a full disk
leaves the previous checkpoint whole. Nothing is ever unpickled: tensors are safetensors, every
other piece of state is JSON (in the file's metadata and in config.json).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors

from studio import __version__
from studio.engine.families.base import GeneratorFamily
from studio.engine.families.registry import family_class
from studio.engine.untrusted.model_files import (
    FORMAT,
    META_KEY,
    CheckpointHeader,
    first_non_finite,
    read_checkpoint_header,
    read_model_config,
)
from studio.engine.untrusted.values import shown
from studio.errors import StudioError
from studio.files import partial_path

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
# Settings that configs written before they existed lack, with the value those models were made with
# (a missing setting otherwise takes today's default).
LEGACY_SETTINGS: dict[str, dict[str, Any]] = {"diffusion": {"network": "studio"}, "pixelcnn": {"output": "softmax"}}


class CheckpointError(StudioError):
    """A model folder that cannot be read or does not match what it claims to be."""


class DiskFullError(StudioError):
    """The checkpoint could not be written; the previous one is untouched."""


def write_atomic(path: Path, data: bytes) -> None:
    partial = partial_path(path)
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFullError(
                f"disk full while saving {path.name}: the previous checkpoint is kept; free some space"
            ) from None
        raise


def write_config(folder: Path, config: Mapping[str, Any]) -> None:
    """config.json, atomically."""
    write_atomic(folder / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True).encode("utf-8"))


def split_optimizer(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser's state_dict as tensors (for safetensors) and everything else (for JSON)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param_id, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{name}.{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(param_id), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def join_optimizer(name: str, tensors: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optimizer.{name}."
    for key, value in tensors.items():
        if key.startswith(prefix):
            param_id, entry = key[len(prefix) :].split(".", 1)
            state.setdefault(int(param_id), {})[entry] = value
    for param_id, entries in info.get("scalars", {}).items():
        state.setdefault(int(param_id), {}).update(entries)
    return {"state": state, "param_groups": info["param_groups"]}


def weights_hash(family: GeneratorFamily) -> str:
    """sha256 over the sampling networks' tensors: names the exact weights an image came from."""
    digest = hashlib.sha256()
    for network in family.sampling_networks():
        for key, value in sorted(family.networks()[network].state_dict().items()):
            digest.update(f"{network}.{key}".encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class TrainingState:
    """Where a run stands: what the checkpoint must restore for a resumed run to continue exactly."""

    step: int
    seed: int
    sampler_state: torch.Tensor  # the batch sampler's torch.Generator state
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None = None


def save_checkpoint(
    folder: Path,
    family: GeneratorFamily,
    state: TrainingState,
    config: Mapping[str, Any],
    with_optimizers: bool = True,
) -> str:
    """Write checkpoint.safetensors then config.json; returns the weights hash.

    Without `with_optimizers` (a milestone: weights to choose from) the optimisers' state is left out.
    """
    tensors: dict[str, torch.Tensor] = {}
    for name, network in family.networks().items():
        for key, value in network.state_dict().items():
            tensors[f"network.{name}.{key}"] = value.detach().cpu().contiguous().clone()
    optimizer_info = {}
    for name, optimizer in family.optimizers().items() if with_optimizers else ():
        opt_tensors, info = split_optimizer(name, optimizer)
        tensors.update(opt_tensors)
        optimizer_info[name] = info
    tensors["rng.sampler"] = state.sampler_state.clone()
    tensors["rng.torch"] = state.torch_rng.clone()
    for index, cuda_state in enumerate(state.cuda_rng or []):
        tensors[f"rng.cuda.{index}"] = cuda_state.clone()
    digest = weights_hash(family)
    meta = {
        "format": FORMAT,
        "family": family.name,
        "step": state.step,
        "seed": state.seed,
        "optimizers": optimizer_info,
        "weights_hash": digest,
        "studio_version": __version__,
    }
    data = save_safetensors(tensors, metadata={META_KEY: json.dumps(meta)})
    write_atomic(folder / CHECKPOINT_FILE, data)
    architecture = family.architecture()
    extra: dict[str, Any] = {"architecture": architecture} if architecture is not None else {}
    if family.classes:
        extra["classes"] = list(family.classes)
    write_config(folder, {**config, **extra, "steps": state.step, "weights_hash": digest})
    return digest


@dataclass
class LoadedModel:
    """A model folder read back: its config, the family with weights loaded, and training state."""

    config: dict[str, Any]
    family: GeneratorFamily
    state: TrainingState
    meta: dict[str, Any]


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a model folder, checked: bounded JSON; family, size, settings, steps and hash typed."""
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise CheckpointError(f"not a folder: {folder}")
    if not path.is_file():
        raise CheckpointError(f"not a Studio model folder: {folder} has no {CONFIG_FILE}")
    try:
        return read_model_config(path).values
    except StudioError as error:
        raise CheckpointError(str(error)) from None


def build_family(config: Mapping[str, Any]) -> GeneratorFamily:
    """An untrained family object of the configured kind, size and hyperparameters."""
    cls = family_class(str(config["family"]))
    try:
        resolution, channels = int(config["resolution"]), int(config["channels"])
    except (TypeError, ValueError):
        raise CheckpointError("config.json: resolution and channels must be whole numbers") from None
    hparams = config.get("hyperparameters") or {}
    if not isinstance(hparams, dict):
        raise CheckpointError("config.json: hyperparameters must be an object")
    hparams = {**LEGACY_SETTINGS.get(cls.name, {}), **hparams}
    architecture = config.get("architecture")
    if architecture is not None and not isinstance(architecture, dict):
        raise CheckpointError("config.json: architecture must be an object")
    classes = config.get("classes") or ()
    if not isinstance(classes, list | tuple) or not all(isinstance(name, str) for name in classes):
        raise CheckpointError("config.json: classes must be a list of class names")
    try:
        return cls(resolution, channels, hparams, architecture, tuple(classes))
    except StudioError as error:
        raise CheckpointError(f"config.json does not describe a valid {cls.name} model: {error}") from None


def load_model(
    folder: Path, device: torch.device | None = None, with_optimizers: bool = True, check_every_tensor: bool = False
) -> LoadedModel:
    """Read a model folder into a family object (weights, and optimiser state if asked).

    The checkpoint is memory-mapped and its tensors copied out one at a time, after its header
    has been checked against the file and the model (names and shapes), so a huge or forged
    file is refused before it costs memory. Every tensor loaded must be finite; with
    `check_every_tensor` (an import) so must every tensor in the file, read in blocks.
    """
    config = read_config(folder)
    family = build_family(config)
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"not a Studio model folder: {folder} has no {CHECKPOINT_FILE}")
    try:
        header = read_checkpoint_header(path)
        bad = first_non_finite(path, header) if check_every_tensor else None
    except StudioError as error:
        raise CheckpointError(str(error)) from None
    if bad is not None:
        raise CheckpointError(f"{path}: {_non_finite(bad)}")
    if header.meta.family != family.name:
        raise CheckpointError(
            f"{path} holds a {header.meta.family or 'unknown'} model but config.json says {family.name}"
        )
    meta = dict(header.meta.values or {})
    wanted = [name for name in header.tensors if name.startswith("rng.")]
    for name in wanted:  # torch takes a generator state only as a flat byte tensor: refuse anything else now
        if header.tensors[name].dtype != "U8" or len(header.tensors[name].shape) != 1:
            raise CheckpointError(f"{path}: {shown(name)} is not a random-number state (a flat U8 tensor)")
    present = {name.split(".", 2)[1] for name in header.tensors if name.startswith("network.")}
    copies = {name: source for name, source in family.copied_networks.items() if name not in present}
    for name, network in family.networks().items():
        if name in copies:
            continue
        _check_fit(path, family, name, network, header)
        wanted += [f"network.{name}.{key}" for key in network.state_dict()]
    if with_optimizers:
        wanted += [name for name in header.tensors if name.startswith("optimizer.")]
    tensors = _read_tensors(path, header, wanted)
    for name, network in family.networks().items():
        prefix = f"network.{copies.get(name, name)}."
        weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            network.load_state_dict(weights, strict=True)
        except RuntimeError as error:
            first = str(error).splitlines()[0] if str(error) else "mismatch"
            raise CheckpointError(f"{path}: {_misfit(family, name)} ({first})") from None
    if with_optimizers:
        for name, optimizer in family.optimizers().items():
            info = (header.meta.optimizers or {}).get(name)
            if info is not None:
                try:
                    optimizer.load_state_dict(join_optimizer(name, tensors, info))
                except (ValueError, KeyError, RuntimeError) as error:
                    raise CheckpointError(f"{path}: optimiser state does not fit ({error})") from None
    state = TrainingState(
        step=header.meta.step if "step" in meta else int(config.get("steps") or 0),
        seed=header.meta.seed,
        sampler_state=tensors.get("rng.sampler", torch.Generator().get_state()),
        torch_rng=tensors.get("rng.torch", torch.get_rng_state()),
        cuda_rng=[tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")] or None,
    )
    if device is not None:
        family.to(device)
    return LoadedModel(config, family, state, meta)


def _misfit(family: GeneratorFamily, network: str) -> str:
    return (
        f"the {network} weights do not fit a {family.name} model "
        f"of {family.resolution}px x {family.channels} with these settings"
    )


def _check_fit(
    path: Path, family: GeneratorFamily, name: str, network: torch.nn.Module, header: CheckpointHeader
) -> None:
    """The header's tensors for a network match its state_dict by name and shape (checked before reading any)."""
    prefix = f"network.{name}."
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    found = {key[len(prefix) :]: entry.shape for key, entry in header.tensors.items() if key.startswith(prefix)}
    missing, unexpected = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or unexpected:
        what = f"missing {missing[0]}" if missing else f"unexpected {shown(unexpected[0])}"
        raise CheckpointError(f"{path}: {_misfit(family, name)} ({what})")
    for key, shape in expected.items():
        if found[key] != shape:
            raise CheckpointError(
                f"{path}: {_misfit(family, name)} ({key} is {list(found[key])} in the file, {list(shape)} in the model)"
            )


def _read_tensors(path: Path, header: CheckpointHeader, names: list[str]) -> dict[str, torch.Tensor]:
    """The named tensors, copied out of a memory map one at a time, each one checked to be finite."""
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as handle:
            for name in names:
                tensor = handle.get_tensor(name)
                if header.tensors[name].is_float and not bool(torch.isfinite(tensor).all()):
                    raise CheckpointError(f"{path}: {_non_finite(name)}")
                tensors[name] = tensor
    except (OSError, SafetensorError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is damaged or not a safetensors file ({detail})") from None
    return tensors


def _non_finite(name: str) -> str:
    return f"the tensor {shown(name, 80)} holds NaN or infinite values (damaged, or trained until it diverged)"
