"""Export a diffusion model as a diffusers pipeline folder (`studio export MODEL --format diffusers --to DEST`).

The folder loads with `DDPMPipeline.from_pretrained(DEST)` or `DDIMPipeline.from_pretrained(DEST)` (the
model's sampler decides which; latent diffusion models give an LDMPipeline): model_index.json, unet/ (the
EMA weights, the ones Studio samples with, as diffusion_pytorch_model.safetensors), scheduler/ (the
model's noise schedule as a DDPMScheduler or DDIMScheduler config), vqvae/ for latent diffusion, and
README.md (the model's card, or one written here). It is written in a hidden folder beside DEST and
renamed into place: DEST appears whole or not at all.

A class-conditional model exports too: its U-Net is a real diffusers UNet2DModel with
`num_class_embeds = K + 1` (class_labels 0..K-1 are the dataset's classes in Studio's order, K is "no
class", what classifier-free guidance compares against). The pipeline files are kept, so the folder
loads whole with from_pretrained, but DDPMPipeline, DDIMPipeline and LDMPipeline pass no class labels:
the model card says so and gives the sampling loop with guidance to run instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studio import __version__
from studio.engine.checkpoints import LEGACY_SETTINGS, load_model, read_config
from studio.engine.families.base import GeneratorFamily
from studio.engine.families.diffusion.declaration import DEFAULT_GUIDANCE, GUIDANCE
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.model_locks import hold_model
from studio.engine.schedulers import scheduler_to_diffusers
from studio.engine.schedulers.diffusers_config import DIFFUSERS_VERSION
from studio.engine.untrusted.model_files import CARD_FILE, MAX_CARD_BYTES
from studio.engine.untrusted.values import read_limited
from studio.errors import StudioError
from studio.store.database import Store

# DDPMPipeline runs whatever scheduler it is given (DDIMPipeline would turn it into DDIM).
PIPELINE_CLASSES = {"ddpm": "DDPMPipeline", "ddim": "DDIMPipeline", "dpmpp2m": "DDPMPipeline"}
SCHEDULER_CLASSES = {"ddpm": "DDPMScheduler", "ddim": "DDIMScheduler", "dpmpp2m": "DPMSolverMultistepScheduler"}
LATENT_FAMILY = "latent_diffusion"


@dataclass
class DiffusersExportResult:
    """What was written where."""

    model: str
    folder: str
    pipeline: str
    scheduler: str
    files: list[str]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio export --format diffusers --json`)."""
        return {**self.__dict__, "seconds": round(self.seconds, 2)}


def check_destination(store: Store, destination: Path) -> Path:
    """DEST as an absolute path: refused when it exists and is not an empty folder, or lies in the data home."""
    destination = Path(os.path.abspath(Path(destination).expanduser()))
    home = store.home.root.resolve()
    resolved = destination.resolve()
    if resolved == home or home in resolved.parents:
        raise StudioError(f"{destination} is inside the data home: export to a folder outside {store.home.root}")
    if destination.is_symlink() or (destination.exists() and not destination.is_dir()):
        raise StudioError(f"{destination} exists and is not a folder: give a new or empty folder")
    if destination.is_dir() and any(destination.iterdir()):
        raise StudioError(f"{destination} is not empty: give a new or empty folder")
    if not destination.parent.is_dir():
        raise StudioError(f"{destination.parent} does not exist: create it first")
    return destination


def _check_exportable(name: str, config: Mapping[str, Any]) -> None:
    family = str(config.get("family"))
    if family == LATENT_FAMILY:
        return
    if family != "diffusion":
        raise StudioError(
            f"'{name}' is a {family} model: only diffusion models (diffusers' UNet2DModel) export to diffusers"
        )
    settings = {**LEGACY_SETTINGS.get(family, {}), **(config.get("hyperparameters") or {})}
    if settings.get("network") != "unet2d":
        raise StudioError(
            f"'{name}' uses Studio's first U-Net (network={settings.get('network')}), which diffusers cannot load: "
            "only models with network=unet2d export to diffusers (export it to ONNX instead)"
        )


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    _write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _save_network(network: nn.Module, folder: Path, extra: Mapping[str, Any] | None = None) -> None:
    """config.json and diffusion_pytorch_model.safetensors as diffusers' save_pretrained writes them."""
    save_pretrained = getattr(network, "save_pretrained", None)
    if save_pretrained is None:  # a Studio network: never for the families checked above
        raise StudioError("this model's network is not a diffusers network")
    save_pretrained(str(folder), safe_serialization=True)
    if extra:
        path = folder / "config.json"
        _write_json(path, {**json.loads(path.read_text(encoding="utf-8")), **extra})
    for child in folder.iterdir():
        with open(child, "rb+") as handle:
            os.fsync(handle.fileno())


def model_card(folder: Path, name: str, config: Mapping[str, Any], pipeline: str, sampler: str) -> bytes:
    """The model's own README.md (an imported model's card), or one saying what the model is."""
    classes = [str(c) for c in config.get("classes") or []]
    path = folder / CARD_FILE
    if path.is_file() and not path.is_symlink() and not classes:
        with contextlib.suppress(StudioError):
            return read_limited(path, MAX_CARD_BYTES)
    settings = config.get("hyperparameters") or {}
    dataset = config.get("dataset")
    kind = "A class-conditional" if classes else "An unconditional"
    lines = [
        "---",
        "library_name: diffusers",
        "tags:",
        f"- {'class-conditional' if classes else 'unconditional'}-image-generation",
        "- studio",
        "---",
        "",
        f"# {name}",
        "",
        f"{kind} {config.get('resolution')} px {'colour' if config.get('channels') == 3 else 'grey'} "
        f"image model made with Studio {__version__}"
        + (f", trained on the dataset '{dataset}'" if dataset else "")
        + f" for {int(config.get('steps') or 0)} steps.",
        "",
        f"Family: {config.get('family')}; {settings.get('timesteps')} timesteps, "
        f"{settings.get('schedule')} noise schedule; samples with {sampler.upper()} "
        f"({settings.get('steps')} steps by default).",
        "",
    ]
    if classes:
        lines += _conditional_usage(config, classes, pipeline)
    else:
        lines += [
            "```python",
            f"from diffusers import {pipeline}",
            "",
            f'pipeline = {pipeline}.from_pretrained("path/to/this/folder")',
            f"image = pipeline(num_inference_steps={_card_steps(config)}).images[0]",
            "```",
            "",
        ]
    return "\n".join(lines).encode("utf-8")


def _card_steps(config: Mapping[str, Any]) -> int:
    """The step count the card's code samples with: the model's own default (the sampler it exports)."""
    settings = config.get("hyperparameters") or {}
    return int(settings.get("steps") or 20)


def _conditional_usage(config: Mapping[str, Any], classes: list[str], pipeline: str) -> list[str]:
    """The card's part for a class-conditional model: the class indices and a guided sampling loop."""
    settings = config.get("hyperparameters") or {}
    guidance = float(settings.get(GUIDANCE, DEFAULT_GUIDANCE))
    latent = config.get("family") == LATENT_FAMILY
    size, channels = config.get("resolution"), config.get("channels")
    shape = (
        "unet.config.in_channels, unet.config.sample_size, unet.config.sample_size"
        if latent
        else f"{channels}, {size}, {size}"
    )
    listed = ", ".join(f"{index} = {json.dumps(name)}" for index, name in enumerate(classes))
    lines = [
        f"Classes (the U-Net's `class_labels`): {listed}; {len(classes)} = no class (the unconditional "
        f"prediction classifier-free guidance compares against). Studio samples with guidance {guidance:g}.",
        "",
        f"Note: {pipeline} passes no class labels, so calling the pipeline fails; sample with its U-Net and "
        "scheduler and classifier-free guidance instead:",
        "",
        "```python",
        "import torch",
        f"from diffusers import {pipeline}",
        "",
        f'pipeline = {pipeline}.from_pretrained("path/to/this/folder")',
        "unet, scheduler = pipeline.unet, pipeline.scheduler",
        f"label, no_class, guidance = 0, {len(classes)}, {guidance:g}  # label: a class index above",
        f"sample = torch.randn(1, {shape})",
        f"scheduler.set_timesteps({_card_steps(config)})",
        "for t in scheduler.timesteps:",
        "    with torch.no_grad():",
        "        both = unet(sample.repeat(2, 1, 1, 1), t, class_labels=torch.tensor([label, no_class])).sample",
        "    noise = both[1:] + guidance * (both[:1] - both[1:])",
        "    sample = scheduler.step(noise, t, sample).prev_sample",
    ]
    if latent:
        lines += [
            "with torch.no_grad():",
            "    sample = pipeline.vqvae.decode(sample / pipeline.vqvae.config.scaling_factor).sample",
        ]
    return [*lines, "image = (sample.clamp(-1, 1) + 1) / 2  # 1 x C x H x W in [0, 1]", "```", ""]


def _write_pipeline(staging: Path, family: GeneratorFamily, sampler: str) -> tuple[str, list[str]]:
    """model_index.json and the components in `staging`; returns the pipeline class and the files written."""
    networks = family.networks()
    architecture = family.architecture() or {}
    if "scheduler" not in architecture:
        raise StudioError("this model has no diffusers network configuration (architecture) to export")
    scheduler = scheduler_to_diffusers(architecture["scheduler"], sampler)
    index: dict[str, Any] = {"_diffusers_version": DIFFUSERS_VERSION}
    if family.name == LATENT_FAMILY:
        pipeline = "LDMPipeline"
        if architecture.get("scaling_factor") is None:
            raise StudioError(
                "this model's autoencoder has not finished training (its latent scale is not fixed yet): "
                "train it into the second stage before exporting"
            )
        autoencoder = networks["autoencoder"]
        (staging / "vqvae").mkdir()
        _save_network(autoencoder, staging / "vqvae", {"scaling_factor": architecture["scaling_factor"]})
        index["vqvae"] = ["diffusers", type(autoencoder).__name__]
    else:
        pipeline = PIPELINE_CLASSES[sampler]
    (staging / "unet").mkdir()
    _save_network(networks["ema"], staging / "unet")
    (staging / "scheduler").mkdir()
    _write_json(staging / "scheduler" / "scheduler_config.json", scheduler)
    index.update(
        {
            "_class_name": pipeline,
            "unet": ["diffusers", "UNet2DModel"],
            "scheduler": ["diffusers", scheduler["_class_name"]],
        }
    )
    _write_json(staging / "model_index.json", index)
    files = sorted(path.relative_to(staging).as_posix() for path in staging.rglob("*") if path.is_file())
    return pipeline, files


def export_diffusers(store: Store, model: str, destination: Path, cancel: CancelToken | None = None) -> Job:
    """Write `model` as a diffusers pipeline folder at `destination`; yields Progress, then Finished(result)."""
    cancel = cancel or CancelToken()
    destination = check_destination(store, destination)
    hold = hold_model(store, model)  # nobody deletes or retrains it while it is read
    staging = destination.parent / f".{destination.name}.partial-{uuid.uuid4().hex[:8]}"
    published = False
    try:
        started = time.monotonic()
        folder = hold.folder
        config = read_config(folder)
        _check_exportable(model, config)
        yield Progress("exporting", 0, 3, "reading the model")
        loaded = load_model(folder, torch.device("cpu"), with_optimizers=False)
        family = loaded.family
        family.train_mode(False)
        sampler = str(family.hparams.get("sampler", "ddim"))
        if sampler not in PIPELINE_CLASSES:
            raise StudioError(f"'{model}' samples with {sampler}, which has no diffusers pipeline")
        cancel.check()
        yield Progress("exporting", 1, 3, "writing the pipeline")
        staging.mkdir()
        pipeline, files = _write_pipeline(staging, family, sampler)
        _write_bytes(
            staging / CARD_FILE, model_card(folder, model, {**config, "steps": loaded.state.step}, pipeline, sampler)
        )
        files.append(CARD_FILE)
        cancel.check()
        if destination.is_dir():
            destination.rmdir()  # checked empty above; a file put there since makes this fail, as it should
        os.replace(staging, destination)
        published = True
        result = DiffusersExportResult(
            model, str(destination), pipeline, SCHEDULER_CLASSES[sampler], sorted(files), time.monotonic() - started
        )
        yield Progress("exporting", 3, 3, "done")
        yield Finished(result)
    finally:
        if not published:
            shutil.rmtree(staging, ignore_errors=True)
        hold.close()
