"""Import a diffusers pipeline folder (DDPMPipeline, DDIMPipeline, LDMPipeline) or a bare UNet2DModel folder
as a Studio model.

Everything is read through bounded readers: the JSON files with size and shape limits, the network
configurations checked (and their size measured on torch's meta device) before a network is built,
the safetensors header checked against the file and then against the built network by name, shape and
dtype before a tensor is read, and every tensor finite. Only safetensors weights are read: Studio never
unpickles, so a folder holding only `.bin`/`.ckpt`/`.pt` weights is refused. Symbolic links are followed
only to files inside the folder (or inside the Hugging Face cache repository it lies in).

The model folder is written in a staging folder (config.json with the architecture and the origin,
checkpoint.safetensors holding only the sampling weights `network.ema.*`, the model card) and published
whole before its row is added: a refusal or a crash leaves no row and no folder.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from studio import __version__
from studio.engine.checkpoints import CHECKPOINT_FILE, weights_hash, write_config
from studio.engine.datasets.storage import fsync_path, validate_name
from studio.engine.families import registry
from studio.engine.families.base import GeneratorFamily
from studio.engine.families.declaration import RESOLUTIONS, describe_resolutions
from studio.engine.families.diffusion.unet import checked_config, network_class
from studio.engine.importers.sources import cache_repository, card_license, default_name, read_json, read_model_card
from studio.engine.library import ModelSummary, get_model, model_exists, publish_model
from studio.engine.schedulers import DiffusersScheduler, scheduler_from_diffusers
from studio.engine.untrusted.model_files import (
    CARD_FILE,
    FORMAT,
    META_KEY,
    CheckpointHeader,
    first_non_finite,
    read_checkpoint_header,
)
from studio.engine.untrusted.values import shown
from studio.errors import AlreadyExistsError, StudioError
from studio.files import StagingFolder
from studio.store.database import Store

PIPELINES = ("DDPMPipeline", "DDIMPipeline", "LDMPipeline")
UNET_CLASS = "UNet2DModel"
AUTOENCODER_CLASSES = ("VQModel", "AutoencoderKL")
INDEX_FILE = "model_index.json"
CONFIG_FILE = "config.json"
SCHEDULER_FILE = "scheduler_config.json"
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
FP16_WEIGHTS_FILE = "diffusion_pytorch_model.fp16.safetensors"
# Weights in these formats are pickles (or may be): never opened.
PICKLE_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle")
FLOAT_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}
# What a model imported without sampling settings samples with (at most its timesteps).
DEFAULT_STEPS = 50
NO_SCHEDULER_NOTE = (
    "no scheduler config beside the U-Net: diffusers' DDPMScheduler defaults assumed "
    "(1000 timesteps, linear betas 1e-4 to 0.02)"
)
LATENT_FAMILY = "latent_diffusion"


@dataclass
class SourceNetwork:
    """One network of the source: its folder, class, checked configuration and weights file."""

    folder: Path
    class_name: str
    config: dict[str, Any]
    weights: Path  # as found in the folder (named in messages)
    real: Path  # the file read: `weights` with links resolved (a Hugging Face cache's blob)
    raw: dict[str, Any] = field(default_factory=dict)  # the config.json as read (diffusers' defaults unapplied)


@dataclass
class ImportPlan:
    """What the source is and what the Studio model will be, decided before any weight is read."""

    kind: str  # "diffusers" (a pipeline) or "unet2d" (a bare U-Net)
    pipeline: str | None
    unet: SourceNetwork
    scheduler: DiffusersScheduler
    scheduler_note: str | None
    autoencoder: SourceNetwork | None = None
    card: bytes | None = None


# --- reading the source ---------------------------------------------------------------------


def _inside(path: Path, root: Path) -> Path:
    """`path` with links resolved, refused when it leads outside `root` (a link out of the folder)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise StudioError(f"{path} is a symbolic link to {resolved}, outside {root}: not imported")
    return resolved


def _read_config(path: Path, root: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StudioError(f"{path} is missing")
    return read_json(_inside(path, root))


def _weights_file(folder: Path, root: Path) -> tuple[Path, Path]:
    """The safetensors weights of a network folder (the fp16 variant only when it is the only one), as found
    and with links resolved."""
    for name in (WEIGHTS_FILE, FP16_WEIGHTS_FILE):
        if (folder / name).is_file():
            return folder / name, _inside(folder / name, root)
    if (folder / f"{WEIGHTS_FILE}.index.json").exists():
        raise StudioError(f"{folder} holds sharded weights: Studio loads one {WEIGHTS_FILE} per network")
    try:
        entries = sorted(entry.name for entry in folder.iterdir())
    except OSError as error:
        raise StudioError(f"{folder} cannot be read ({error.strerror or error})") from None
    pickled = [name for name in entries if name.lower().endswith(PICKLE_SUFFIXES)]
    if pickled:
        raise StudioError(
            f"only safetensors weights are loaded (Studio never unpickles): {folder / pickled[0]} refused"
        )
    raise StudioError(f"{folder} has no {WEIGHTS_FILE}")


def _network(folder: Path, root: Path, class_names: tuple[str, ...], where: str) -> SourceNetwork:
    """A network folder's config.json (its _class_name among `class_names`) checked, and its weights file."""
    if not folder.is_dir():
        raise StudioError(f"{folder} is missing: the {where} is not there")
    _inside(folder, root)
    raw = _read_config(folder / CONFIG_FILE, root)
    class_name = raw.get("_class_name")
    if class_name not in class_names:
        raise StudioError(
            f"{folder / CONFIG_FILE} describes {shown(class_name)}, not {' or '.join(class_names)}: not imported"
        )
    settings = {key: value for key, value in raw.items() if not key.startswith("_")}
    config = checked_config(str(class_name), settings, str(folder / CONFIG_FILE))
    return SourceNetwork(folder, str(class_name), config, *_weights_file(folder, root), raw)


def _scheduler(path: Path | None, root: Path, declared: str | None = None) -> tuple[DiffusersScheduler, str | None]:
    """The scheduler file converted to Studio's settings (diffusers' DDPM defaults when there is none)."""
    if path is None:
        return scheduler_from_diffusers({"_class_name": "DDPMScheduler"}), NO_SCHEDULER_NOTE
    raw = _read_config(path, root)
    if declared is not None:
        raw = {**raw, "_class_name": declared}  # diffusers builds the class model_index.json names
    try:
        converted = scheduler_from_diffusers(raw)
    except StudioError as error:
        raise StudioError(f"{path}: {error}") from None
    return converted, converted.note


def _declared_class(index: Mapping[str, Any], component: str, path: Path) -> str | None:
    """The class model_index.json gives a component (["diffusers", "UNet2DModel"]); None when absent."""
    entry = index.get(component)
    if entry is None:
        return None
    if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(part, str) for part in entry)):
        raise StudioError(f"{path}: {component} is not a [library, class] pair")
    return str(entry[1])


def _plan_pipeline(folder: Path, root: Path) -> ImportPlan:
    index_path = folder / INDEX_FILE
    index = _read_config(index_path, root)
    pipeline = index.get("_class_name")
    if pipeline not in PIPELINES:
        name = str(pipeline)[:64] if isinstance(pipeline, str) else "an unnamed pipeline"
        raise StudioError(
            f"Studio loads DDPMPipeline, DDIMPipeline, LDMPipeline and bare UNet2DModel folders, not {name}"
        )
    if pipeline == "LDMPipeline" and LATENT_FAMILY not in registry.family_names():
        raise StudioError("LDMPipeline needs Studio's latent_diffusion family, which this version lacks")
    unet_class = _declared_class(index, "unet", index_path)
    if unet_class not in (None, UNET_CLASS):
        raise StudioError(f"{index_path}: the unet is a {shown(unet_class)}, not a {UNET_CLASS}")
    unet = _network(folder / "unet", root, (UNET_CLASS,), "U-Net (unet/)")
    scheduler_path = folder / "scheduler" / SCHEDULER_FILE
    if not scheduler_path.is_file():
        raise StudioError(f"{scheduler_path} is missing: the pipeline's scheduler is not there")
    scheduler, note = _scheduler(scheduler_path, root, _declared_class(index, "scheduler", index_path))
    autoencoder = None
    if pipeline == "LDMPipeline":
        declared = _declared_class(index, "vqvae", index_path)
        if declared not in (None, *AUTOENCODER_CLASSES):
            raise StudioError(f"{index_path}: the vqvae is a {shown(declared)}, not a VQModel or AutoencoderKL")
        autoencoder = _network(folder / "vqvae", root, AUTOENCODER_CLASSES, "autoencoder (vqvae/)")
    card = read_model_card(folder / CARD_FILE, root)
    return ImportPlan("diffusers", str(pipeline), unet, scheduler, note, autoencoder, card)


def _plan_unet(folder: Path, root: Path, outer: Path) -> ImportPlan:
    """A bare U-Net; its scheduler beside it, or in ../scheduler/ (read within `outer`) for a pipeline's unet/."""
    unet = _network(folder, root, (UNET_CLASS,), "U-Net")
    beside = folder / SCHEDULER_FILE
    above = folder.parent / "scheduler" / SCHEDULER_FILE
    if beside.is_file():
        scheduler, note = _scheduler(beside, root)
    elif above.is_file():
        scheduler, note = _scheduler(above, outer)
    else:
        scheduler, note = _scheduler(None, root)
    card = read_model_card(folder / CARD_FILE, root)
    return ImportPlan("unet2d", None, unet, scheduler, note, None, card)


def plan_import(folder: Path, links_within: Path | None = None) -> ImportPlan:
    """What `folder` is and how it will be imported, from its small files only (no weights read)."""
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise StudioError(f"{folder} is not a folder")
    root = Path(links_within).absolute() if links_within is not None else folder
    if (folder / "dataset.json").exists():
        raise StudioError(f"{folder} is a Studio dataset as well as a model: not imported (give one or the other)")
    if (folder / INDEX_FILE).exists():
        return _plan_pipeline(folder, root)
    if (folder / CONFIG_FILE).exists():
        return _plan_unet(folder, root, root if links_within is not None else folder.parent)
    raise StudioError(
        f"{folder} is not a diffusers pipeline (no {INDEX_FILE}) or a UNet2DModel folder (no {CONFIG_FILE})"
    )


# --- the Studio model -----------------------------------------------------------------------


def _sample_size(config: Mapping[str, Any], where: Path) -> int:
    size = config.get("sample_size")
    if isinstance(size, list) and len(size) == 2 and size[0] == size[1]:
        size = size[0]
    if not isinstance(size, int) or isinstance(size, bool):
        raise StudioError(f"{where}: sample_size {shown(size)} is not one square size")
    return size


def _channels(config: Mapping[str, Any], where: Path, allowed: tuple[int, ...]) -> int:
    inputs, outputs = config.get("in_channels", 3), config.get("out_channels", 3)
    if inputs != outputs or inputs not in allowed:
        learned = " (a U-Net that learns its variance is not supported)" if outputs == 2 * inputs else ""
        raise StudioError(
            f"{where}: the network maps {inputs} to {outputs} channels; Studio imports networks of "
            f"{' or '.join(map(str, allowed))} channels in and out{learned}"
        )
    return int(inputs)


def _timesteps(scheduler: DiffusersScheduler) -> int:
    timesteps = int(scheduler.config["num_train_timesteps"])
    schema = {h.name: h for h in registry.full_schema("diffusion")}["timesteps"]
    low, high = schema.minimum, schema.maximum
    if low is not None and high is not None and not low <= timesteps <= high:
        raise StudioError(
            f"the scheduler's num_train_timesteps {timesteps} is outside the {low:g} to {high:g} Studio takes"
        )
    return timesteps


def studio_config(plan: ImportPlan) -> dict[str, Any]:
    """The family, size, settings and architecture of the Studio model (config.json less name and hash)."""
    timesteps = _timesteps(plan.scheduler)
    unet_where = plan.unet.folder / CONFIG_FILE
    settings: dict[str, Any] = {
        "network": "unet2d",
        "timesteps": timesteps,
        "schedule": plan.scheduler.config["beta_schedule"],
        "sampler": plan.scheduler.native_sampler,
        "steps": min(DEFAULT_STEPS, timesteps),
    }
    architecture: dict[str, Any] = {"unet": plan.unet.config, "scheduler": plan.scheduler.config}
    if plan.autoencoder is None:
        family, where = "diffusion", unet_where
        resolution = _sample_size(plan.unet.config, unet_where)
        channels = _channels(plan.unet.config, unet_where, (1, 3))
    else:
        family, where = LATENT_FAMILY, plan.autoencoder.folder / CONFIG_FILE
        latent = _latent_settings(plan.unet, plan.autoencoder)
        settings = {key: value for key, value in settings.items() if key != "network"} | latent
        resolution = _sample_size(plan.unet.config, unet_where) * latent["downscale"]
        channels = _channels(plan.autoencoder.config, where, (1, 3))
        architecture.update(
            autoencoder_class=plan.autoencoder.class_name,
            autoencoder=plan.autoencoder.config,
            scaling_factor=_scaling_factor(plan.autoencoder),
        )
    if resolution not in RESOLUTIONS:
        raise StudioError(f"{where}: the model makes {resolution} px images; Studio takes {describe_resolutions()} px")
    return {
        "family": family,
        "resolution": resolution,
        "channels": channels,
        "hyperparameters": settings,
        "architecture": architecture,
    }


def _class_default(class_name: str, key: str) -> Any:
    parameter = inspect.signature(network_class(class_name).__init__).parameters.get(key)
    return None if parameter is None else parameter.default


def _latent_settings(unet: SourceNetwork, autoencoder: SourceNetwork) -> dict[str, Any]:
    """Latent diffusion's model settings from the autoencoder: its kind, how much it shrinks, its latents."""
    where = autoencoder.folder / CONFIG_FILE
    levels = len(autoencoder.config.get("block_out_channels") or [])
    downscale = 2 ** (levels - 1)
    if downscale > 8:
        raise StudioError(f"{where}: the autoencoder shrinks images {downscale} times a side; Studio takes 1 to 8")
    latent_channels = autoencoder.config.get(
        "latent_channels", _class_default(autoencoder.class_name, "latent_channels")
    )
    inputs, outputs = unet.config.get("in_channels", 3), unet.config.get("out_channels", 3)
    if not inputs == outputs == latent_channels:
        raise StudioError(
            f"{unet.folder / CONFIG_FILE}: the U-Net maps {inputs} to {outputs} channels, but the autoencoder's "
            f"latents have {latent_channels}"
        )
    settings: dict[str, Any] = {
        "autoencoder": "vq" if autoencoder.class_name == "VQModel" else "kl",
        "downscale": downscale,
        "latent_channels": latent_channels,
    }
    codes = autoencoder.config.get("num_vq_embeddings", _class_default(autoencoder.class_name, "num_vq_embeddings"))
    schema = {h.name: h for h in registry.full_schema(LATENT_FAMILY)}
    if "codebook_size" in schema and isinstance(codes, int):
        low, high = schema["codebook_size"].minimum, schema["codebook_size"].maximum
        if low is not None and high is not None and low <= codes <= high:
            settings["codebook_size"] = codes  # recorded for the model's description; the architecture rules
    return settings


def _scaling_factor(autoencoder: SourceNetwork) -> float:
    """The latents' scale: the autoencoder config's scaling_factor, else the class default (as diffusers reads it)."""
    value = autoencoder.raw.get("scaling_factor")
    if value is None:
        value = _class_default(autoencoder.class_name, "scaling_factor") or 1.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e3:
        raise StudioError(f"{autoencoder.folder / CONFIG_FILE}: scaling_factor {shown(value)} is not a usable number")
    return float(value)


def _build(config: Mapping[str, Any]) -> GeneratorFamily:
    cls = registry.family_class(str(config["family"]))
    return cls(config["resolution"], config["channels"], config["hyperparameters"], config["architecture"])


def _check_weights(network: SourceNetwork, module: torch.nn.Module, header: CheckpointHeader) -> None:
    """The file's tensors are the network's, by name and shape, all floats: the first difference is named."""
    expected = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    found = header.tensors
    config = network.folder / CONFIG_FILE
    for key, shape in expected.items():
        if key not in found:
            raise StudioError(f"{network.weights} does not match {config}: the tensor {shown(key, 80)} is missing")
        if found[key].shape != shape:
            raise StudioError(
                f"{network.weights} does not match {config}: {shown(key, 80)} is {list(found[key].shape)} "
                f"in the file, {list(shape)} in the configuration"
            )
        if found[key].dtype not in FLOAT_DTYPES:
            raise StudioError(
                f"{network.weights}: {shown(key, 80)} holds {found[key].dtype}, not floating-point weights"
            )
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise StudioError(
            f"{network.weights} does not match {config}: the tensor {shown(unexpected[0], 80)} is not in the network"
        )


def load_weights(network: SourceNetwork, module: torch.nn.Module) -> str:
    """Check the weights file against `module` (header first, then every value finite) and load it as float32.

    Returns the file's dtype name ("float32", or "float16" for a converted fp16 variant).
    """
    header = read_checkpoint_header(network.real)
    _check_weights(network, module, header)
    bad = first_non_finite(network.real, header)
    if bad is not None:
        raise StudioError(f"{network.weights}: the tensor {shown(bad, 80)} holds NaN or infinite values: not imported")
    targets = module.state_dict(keep_vars=True)
    try:
        with safe_open(str(network.real), framework="pt") as handle, torch.no_grad():
            for key, target in targets.items():  # one tensor in memory at a time, copied into place
                target.copy_(handle.get_tensor(key).to(torch.float32))
    except (OSError, SafetensorError) as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise StudioError(f"{network.weights} is damaged or not a safetensors file ({detail})") from None
    dtypes = {header.tensors[key].dtype for key in targets}
    return "float32" if dtypes == {"F32"} else "/".join(sorted(FLOAT_DTYPES[d] for d in dtypes))


def _sampling_checkpoint(family: GeneratorFamily) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors: the sampling networks only (the trainable copies are filled from them)."""
    tensors: dict[str, torch.Tensor] = {}
    for name in family.sampling_networks():
        for key, value in family.networks()[name].state_dict().items():
            tensors[f"network.{name}.{key}"] = value.detach().cpu().contiguous().clone()
    tensors["rng.sampler"] = torch.Generator().manual_seed(0).get_state()
    tensors["rng.torch"] = torch.Generator().manual_seed(0).get_state()
    return tensors


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _default_name(folder: Path, origin: Mapping[str, Any]) -> str:
    """The repository's name (org/NAME, models--org--NAME in the cache), else the folder's (a unet/ its parent's)."""
    repo = origin.get("repo_id")
    if isinstance(repo, str) and repo:
        return default_name(repo.rsplit("/", 1)[-1])
    cached = cache_repository(folder)
    if cached is not None:
        return default_name(cached.name.rsplit("--", 1)[-1])
    return default_name(folder.parent.name if folder.name == "unet" else folder.name)


def import_diffusers(
    store: Store,
    folder: Path,
    name: str | None = None,
    origin_extra: Mapping[str, Any] | None = None,
    *,
    links_within: Path | None = None,
) -> ModelSummary:
    """Import a DDPMPipeline/DDIMPipeline/LDMPipeline folder or a bare UNet2DModel folder as a Studio model.

    `origin_extra` adds to the recorded origin (repo_id, revision); `links_within` is the folder whose
    symbolic links may be followed (a Hugging Face cache repository; the source folder by default).
    Every refusal is one line; nothing is left behind on any error.
    """
    folder = Path(folder).absolute()
    origin_extra = dict(origin_extra or {})
    plan = plan_import(folder, links_within)
    name = validate_name(name or _default_name(folder, origin_extra))
    if model_exists(store, name):
        raise AlreadyExistsError(f"a model named '{name}' already exists: give another with --name")
    config = studio_config(plan)
    family = _build(config)
    dtypes = {"unet": load_weights(plan.unet, family.networks()["ema"])}
    if plan.autoencoder is not None:
        dtypes["autoencoder"] = load_weights(plan.autoencoder, family.networks()["autoencoder"])
    family.train_mode(False)
    digest = weights_hash(family)
    origin = {
        "kind": plan.kind,
        "pipeline": plan.pipeline,
        "source": str(folder),
        "repo_id": None,
        "revision": None,
        "scheduler_class": plan.scheduler.source_class,
        "scheduler_note": plan.scheduler_note,
        "license": card_license(plan.card),
        **({"weights_dtype": dtypes} if any(d != "float32" for d in dtypes.values()) else {}),
        **origin_extra,
    }
    now = datetime.now(UTC).isoformat(timespec="seconds")
    full_config = {
        "format": FORMAT,
        "studio_version": __version__,
        "name": name,
        **config,
        "hyperparameters": dict(family.hparams),
        "architecture": family.architecture() or config["architecture"],
        "steps": 0,
        "seed": 0,
        "weights_hash": digest,
        "origin": origin,
        "created_at": now,
    }
    meta = {
        "format": FORMAT,
        "family": family.name,
        "step": 0,
        "seed": 0,
        "optimizers": {},
        "weights_hash": digest,
        "studio_version": __version__,
    }
    staging = StagingFolder(store.home.staging, f"model-{name}")
    try:
        save_file(_sampling_checkpoint(family), str(staging.path / CHECKPOINT_FILE), {META_KEY: json.dumps(meta)})
        _fsync(staging.path / CHECKPOINT_FILE)
        write_config(staging.path, full_config)
        if plan.card:
            (staging.path / CARD_FILE).write_bytes(plan.card)
            _fsync(staging.path / CARD_FILE)
        fsync_path(staging.path)
        publish_model(
            store,
            staging,
            name,
            family=family.name,
            resolution=family.resolution,
            channels=family.channels,
            hyperparameters=family.hparams,
            weights_hash=digest,
            steps=0,
            parameter_count=family.parameter_count(),
        )
    except BaseException:
        staging.discard()
        raise
    return get_model(store, name)
