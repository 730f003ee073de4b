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
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from studio import __version__
from studio.engine.families.base import GeneratorFamily
from studio.engine.families.registry import family_class
from studio.errors import StudioError

CONFIG_FILE = "config.json"
CHECKPOINT_FILE = "checkpoint.safetensors"
FORMAT = 1
_META_KEY = "studio"


class CheckpointError(StudioError):
    """A model folder that cannot be read or does not match what it claims to be."""


class DiskFullError(StudioError):
    """The checkpoint could not be written; the previous one is untouched."""


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
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
    _write_atomic(folder / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True).encode("utf-8"))


def _optimizer_split(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
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


def _optimizer_join(name: str, tensors: Mapping[str, torch.Tensor], info: Mapping[str, Any]) -> dict[str, Any]:
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


def save_checkpoint(folder: Path, family: GeneratorFamily, state: TrainingState, config: Mapping[str, Any]) -> str:
    """Write checkpoint.safetensors then config.json; returns the weights hash."""
    tensors: dict[str, torch.Tensor] = {}
    for name, network in family.networks().items():
        for key, value in network.state_dict().items():
            tensors[f"network.{name}.{key}"] = value.detach().cpu().contiguous().clone()
    optimizer_info = {}
    for name, optimizer in family.optimizers().items():
        opt_tensors, info = _optimizer_split(name, optimizer)
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
    data = save_safetensors(tensors, metadata={_META_KEY: json.dumps(meta)})
    _write_atomic(folder / CHECKPOINT_FILE, data)
    write_config(folder, {**config, "steps": state.step, "weights_hash": digest})
    return digest


@dataclass
class LoadedModel:
    """A model folder read back: its config, the family with weights loaded, and training state."""

    config: dict[str, Any]
    family: GeneratorFamily
    state: TrainingState
    meta: dict[str, Any]


def read_config(folder: Path) -> dict[str, Any]:
    """config.json of a model folder, checked for the fields Studio needs."""
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise CheckpointError(f"not a folder: {folder}")
    if not path.is_file():
        raise CheckpointError(f"not a Studio model folder: {folder} has no {CONFIG_FILE}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path} does not describe a model")
    missing = [key for key in ("family", "resolution", "channels", "hyperparameters") if key not in config]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}")
    if config.get("format", FORMAT) > FORMAT:
        raise CheckpointError(f"{path} was written by a newer Studio (format {config['format']})")
    return config


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
    try:
        return cls(resolution, channels, hparams)
    except StudioError as error:
        raise CheckpointError(f"config.json does not describe a valid {cls.name} model: {error}") from None


def load_model(folder: Path, device: torch.device | None = None, with_optimizers: bool = True) -> LoadedModel:
    """Read a model folder into a family object (weights, and optimiser state if asked)."""
    config = read_config(folder)
    family = build_family(config)
    path = folder / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(f"not a Studio model folder: {folder} has no {CHECKPOINT_FILE}")
    try:
        data = path.read_bytes()
        tensors = load_safetensors(data)
        header_length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_length])
        meta = json.loads(header.get("__metadata__", {}).get(_META_KEY, "{}"))
    except (OSError, SafetensorError, ValueError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is damaged or not a safetensors file ({error})") from None
    if meta.get("family") != family.name:
        raise CheckpointError(
            f"{path} holds a {meta.get('family', 'unknown')} model but config.json says {family.name}"
        )
    for name, network in family.networks().items():
        prefix = f"network.{name}."
        weights = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            network.load_state_dict(weights, strict=True)
        except RuntimeError as error:
            first = str(error).splitlines()[0] if str(error) else "mismatch"
            raise CheckpointError(
                f"{path}: the {name} weights do not fit a {family.name} model "
                f"of {family.resolution}px x {family.channels} with these settings ({first})"
            ) from None
    if with_optimizers:
        for name, optimizer in family.optimizers().items():
            info = meta.get("optimizers", {}).get(name)
            if info is not None:
                try:
                    optimizer.load_state_dict(_optimizer_join(name, tensors, info))
                except (ValueError, KeyError, RuntimeError) as error:
                    raise CheckpointError(f"{path}: optimiser state does not fit ({error})") from None
    state = TrainingState(
        step=int(meta.get("step", config.get("steps", 0))),
        seed=int(meta.get("seed", 0)),
        sampler_state=tensors.get("rng.sampler", torch.Generator().get_state()),
        torch_rng=tensors.get("rng.torch", torch.get_rng_state()),
        cuda_rng=[tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")] or None,
    )
    if device is not None:
        family.to(device)
    return LoadedModel(config, family, state, meta)
