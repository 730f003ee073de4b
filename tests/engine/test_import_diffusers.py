"""diffusers pipelines and bare UNet2DModel folders in and out of Studio: the same images as diffusers' own
sampling loop on both backends, a lossless round trip, and one-line refusals that leave nothing behind.

The networks have the published layouts (google/ddpm-cifar10-32, google/ddpm-celebahq-256) at reduced
widths and random weights; one test runs the cifar10 network at its full width.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import DDIMPipeline, DDIMScheduler, DDPMPipeline, DDPMScheduler, LDMPipeline, UNet2DModel, VQModel
from PIL import Image
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file, save_file
from sqlalchemy import select

from bench.published import (
    CELEBAHQ_SCHEDULER,
    CELEBAHQ_UNET,
    CIFAR10_SCHEDULER,
    CIFAR10_UNET,
    LDM_SCHEDULER,
    LDM_UNET,
    LDM_VQVAE,
)
from studio.cli import main
from studio.engine.checkpoints import load_model
from studio.engine.diffusers_export import export_diffusers
from studio.engine.export import export_model
from studio.engine.generation import generate
from studio.engine.importers.diffusers_folder import import_diffusers
from studio.engine.jobs import run_job
from studio.engine.numerics import seed_generators
from studio.engine.runtime import load_exported
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.tables import Model

TOLERANCE = 1e-4
# The random-weight VQ decoder fed latents of |z| ~ 190 (unscaled) magnifies float32 rounding, and how
# much depends on the CPU's kernels: under 1e-4 on earlier CI hosts, 1.16e-4 on an AVX2-only AMD EPYC with
# the same code and packages. 5e-4 is still 15x below one 8-bit level (2/255 of the [-1, 1] range).
DECODER_TOLERANCE = 5e-4
CARD = "---\nlicense: apache-2.0\ntags:\n- pytorch\n- diffusers\n---\n\n# A test pipeline\n"


def reduced(config: Mapping[str, Any], divisor: int, groups: int, sample_size: int | None = None) -> dict[str, Any]:
    """The same layout (levels, blocks, attention) with every width divided by `divisor`."""
    return {
        **config,
        "block_out_channels": [width // divisor for width in config["block_out_channels"]],
        "norm_num_groups": groups,
        "sample_size": sample_size or config["sample_size"],
    }


def save_pipeline(
    folder: Path,
    unet_config: Mapping[str, Any],
    scheduler_config: Mapping[str, Any],
    sampler: str = "ddpm",
    seed: int = 0,
    card: str | None = CARD,
) -> Path:
    """A randomly initialised DDPMPipeline (or DDIMPipeline) saved with diffusers' save_pretrained."""
    torch.manual_seed(seed)
    unet = UNet2DModel(**unet_config)
    if sampler == "ddpm":
        DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**scheduler_config)).save_pretrained(folder)
    else:
        settings = {key: value for key, value in scheduler_config.items() if key != "variance_type"}
        DDIMPipeline(unet=unet, scheduler=DDIMScheduler(**settings)).save_pretrained(folder)
    if card is not None:
        (folder / "README.md").write_text(card)
    return folder


def diffusers_sample(
    unet: UNet2DModel,
    scheduler: DDPMScheduler | DDIMScheduler,
    initial: np.ndarray,
    steps: int,
    generators: list[np.random.Generator],
    monkeypatch: pytest.MonkeyPatch,
) -> np.ndarray:
    """diffusers' DDPMPipeline/DDIMPipeline loop from x_T; DDPM's step noise drawn from Studio's generators."""

    def studio_noise(shape: tuple[int, ...], **_: Any) -> torch.Tensor:
        return torch.from_numpy(np.stack([g.standard_normal(tuple(shape[1:]), dtype=np.float32) for g in generators]))

    monkeypatch.setattr("diffusers.schedulers.scheduling_ddpm.randn_tensor", studio_noise)
    scheduler.set_timesteps(steps)
    sample = torch.from_numpy(initial.copy())
    with torch.no_grad():
        for t in scheduler.timesteps:
            output = unet(sample, t).sample
            if isinstance(scheduler, DDIMScheduler):
                sample = scheduler.step(output, t, sample, eta=0.0).prev_sample
            else:
                sample = scheduler.step(output, t, sample).prev_sample
    return sample.numpy()


def reference(
    folder: Path, seeds: list[int], steps: int, monkeypatch: pytest.MonkeyPatch, sampler: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(x_T as Studio draws it, diffusers' x_0 from it) for the pipeline saved at `folder`."""
    unet = UNet2DModel.from_pretrained(folder / "unet").eval()
    index = json.loads((folder / "model_index.json").read_text())
    sampler = sampler or ("ddim" if index["scheduler"][1] == "DDIMScheduler" else "ddpm")
    scheduler_class = DDIMScheduler if sampler == "ddim" else DDPMScheduler
    scheduler = scheduler_class.from_pretrained(folder / "scheduler")
    channels, size = unet.config.in_channels, unet.config.sample_size
    generators = seed_generators(seeds)
    initial = np.stack([g.standard_normal((channels, size, size), dtype=np.float32) for g in generators])
    return initial, diffusers_sample(unet, scheduler, initial, steps, generators, monkeypatch)


def studio_sample(pipeline: Any, seeds: list[int], options: Mapping[str, Any]) -> np.ndarray:
    """x_0 of a Studio pipeline (torch or ONNX) at float level, from each seed's x_T."""
    generators = seed_generators(seeds)
    return pipeline.denoise(pipeline.initial_noise(generators), generators, pipeline.sampling_options(options))


def torch_pipeline(store: Store, name: str) -> Any:
    family = load_model(store.home.models / name, torch.device("cpu"), with_optimizers=False).family
    family.train_mode(False)
    return family.pipeline()


def largest(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


def nothing_left(store: Store) -> bool:
    """No model row, no model folder, nothing in the staging area."""
    with store.sessions() as session:
        rows = session.scalars(select(Model.name)).all()
    models = [p.name for p in store.home.models.iterdir()] if store.home.models.exists() else []
    staged = [p.name for p in store.home.staging.iterdir()] if store.home.staging.exists() else []
    return not rows and not models and not staged


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """diffusers' from_pretrained reads local folders only."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


MEASURED: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def report_differences() -> Iterator[None]:
    yield
    if MEASURED:
        print("\nlargest differences from diffusers:", json.dumps(MEASURED, indent=1))


# --- the same images as diffusers ------------------------------------------------------------


def test_ddpm_cifar10_layout_imports_and_samples_as_diffusers_on_both_backends(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = save_pipeline(tmp_path / "ddpm-cifar10-32", reduced(CIFAR10_UNET, 8, 8), CIFAR10_SCHEDULER)
    summary = import_diffusers(store, source)
    assert summary.name == "ddpm-cifar10-32" and summary.family == "diffusion"
    assert (summary.resolution, summary.channels, summary.steps) == (32, 3, 0)
    folder = store.home.models / summary.name
    config = json.loads((folder / "config.json").read_text())
    settings = config["hyperparameters"]
    assert settings["network"] == "unet2d" and settings["timesteps"] == 1000 and settings["schedule"] == "linear"
    assert settings["sampler"] == "ddpm" and settings["steps"] == 50
    assert config["architecture"]["unet"]["block_out_channels"] == [16, 32, 32, 32]
    assert config["architecture"]["scheduler"]["variance_type"] == "fixed_large"
    origin = config["origin"]
    assert origin["kind"] == "diffusers" and origin["pipeline"] == "DDPMPipeline"
    assert origin["scheduler_class"] == "DDPMScheduler" and origin["scheduler_note"] is None
    assert origin["license"] == "apache-2.0" and origin["source"] == str(source)
    assert (folder / "README.md").read_text() == CARD
    stored = load_file(folder / "checkpoint.safetensors")
    assert {key.split(".")[1] for key in stored if key.startswith("network.")} == {"ema"}  # half the disk
    original = load_file(source / "unet" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(stored[f"network.ema.{key}"], value) for key, value in original.items())

    seeds, options = [3, 4], {"steps": 4}
    initial, expected = reference(source, seeds, 4, monkeypatch)
    pipeline = torch_pipeline(store, summary.name)
    generators = seed_generators(seeds)
    assert np.array_equal(pipeline.initial_noise(generators), initial)
    on_torch = studio_sample(pipeline, seeds, options)
    MEASURED["ddpm cifar10 /8, torch"] = largest(on_torch, expected)
    assert largest(on_torch, expected) <= TOLERANCE

    run_job(export_model(store, summary.name))
    runtime = load_exported(folder / "onnx", "cpu").pipeline
    on_onnx = studio_sample(runtime, seeds, options)
    MEASURED["ddpm cifar10 /8, onnx"] = largest(on_onnx, expected)
    assert largest(on_onnx, expected) <= TOLERANCE

    # A generation job on each backend makes the same PNG (to one level of rounding).
    images = []
    for backend in ("torch", "onnx"):
        provider = "cpu" if backend == "onnx" else "auto"
        made = run_job(
            generate(store, summary.name, count=1, seed=3, options=options, backend=backend, provider=provider)
        )
        images.append(np.asarray(Image.open(made.items[0]["path"])))
    assert images[0].shape == (32, 32, 3) and largest(images[0], images[1]) <= 1
    expected_uint8 = np.round((np.clip(expected[0], -1, 1).transpose(1, 2, 0) + 1) * 127.5)
    assert largest(images[0], expected_uint8) <= 1


def test_ddim_celebahq_layout_samples_as_diffusers_and_exports_back_losslessly(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The 256 px layout (six levels, attention at the fifth) at 64 px and 1/16 of the widths, for speed.
    unet = reduced(CELEBAHQ_UNET, 16, 8, sample_size=64)
    source = save_pipeline(tmp_path / "celebahq", unet, CELEBAHQ_SCHEDULER, sampler="ddim", seed=1)
    summary = import_diffusers(store, source, "faces")
    config = json.loads((store.home.models / "faces" / "config.json").read_text())
    assert config["hyperparameters"]["sampler"] == "ddim" and config["origin"]["pipeline"] == "DDIMPipeline"
    assert summary.resolution == 64

    seeds, options = [7], {"steps": 5, "eta": 0.0}
    initial, expected = reference(source, seeds, 5, monkeypatch)
    on_torch = studio_sample(torch_pipeline(store, "faces"), seeds, options)
    MEASURED["ddim celebahq /16 at 64 px, torch"] = largest(on_torch, expected)
    assert largest(on_torch, expected) <= TOLERANCE
    run_job(export_model(store, "faces"))
    on_onnx = studio_sample(load_exported(store.home.models / "faces" / "onnx", "cpu").pipeline, seeds, options)
    MEASURED["ddim celebahq /16 at 64 px, onnx"] = largest(on_onnx, expected)
    assert largest(on_onnx, expected) <= TOLERANCE

    # Export: the same weights bit for bit, a folder DDIMPipeline loads, the same image from the same x_T.
    destination = tmp_path / "exported"
    result = run_job(export_diffusers(store, "faces", destination))
    assert result.pipeline == "DDIMPipeline" and result.scheduler == "DDIMScheduler"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exported")]  # no staging folder left
    written = load_numpy(destination / "unet" / "diffusion_pytorch_model.safetensors")
    published = load_numpy(source / "unet" / "diffusion_pytorch_model.safetensors")
    assert written.keys() == published.keys()
    assert all(
        written[k].dtype == published[k].dtype and written[k].tobytes() == published[k].tobytes() for k in written
    )
    assert (destination / "README.md").read_text() == CARD
    loaded = DDIMPipeline.from_pretrained(destination)
    assert isinstance(loaded.scheduler, DDIMScheduler) and loaded.unet.config.sample_size == 64
    again = diffusers_sample(loaded.unet.eval(), loaded.scheduler, initial, 5, [], monkeypatch)
    MEASURED["ddim celebahq, exported and reloaded"] = largest(again, on_torch)
    assert largest(again, on_torch) <= TOLERANCE
    scheduler = json.loads((destination / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["beta_schedule"] == "linear" and scheduler["num_train_timesteps"] == 1000


def test_a_ddpm_model_exports_as_a_ddpm_pipeline_from_the_command_line(
    store: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = save_pipeline(
        tmp_path / "pipe", reduced(CIFAR10_UNET, 16, 8, sample_size=16), CIFAR10_SCHEDULER, card=None
    )
    import_diffusers(store, source, "tiny")
    destination = tmp_path / "out"
    destination.mkdir()  # an empty folder is fine
    code = main(["export", "tiny", "--format", "diffusers", "--to", str(destination), "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert (
        code == 0 and out["pipeline"] == "DDPMPipeline" and "unet/diffusion_pytorch_model.safetensors" in out["files"]
    )
    index = json.loads((destination / "model_index.json").read_text())
    assert index["_class_name"] == "DDPMPipeline" and index["scheduler"] == ["diffusers", "DDPMScheduler"]
    card = (destination / "README.md").read_text()
    assert "Studio" in card and "DDPMPipeline.from_pretrained" in card  # written, the source had none
    loaded = DDPMPipeline.from_pretrained(destination)
    assert loaded.scheduler.config.variance_type == "fixed_large" and loaded.scheduler.config.clip_sample is True
    seeds = [1]
    _, expected = reference(destination, seeds, 3, monkeypatch)
    assert largest(studio_sample(torch_pipeline(store, "tiny"), seeds, {"steps": 3}), expected) <= TOLERANCE

    def refused(*argv: str) -> str:
        code = main(["export", *argv, "--json", "--quiet"])
        captured = capsys.readouterr()
        assert code != 0 and "Traceback" not in captured.err
        return json.loads(captured.out)["error"]

    assert "not empty" in refused("tiny", "--format", "diffusers", "--to", str(destination))
    assert "inside the data home" in refused("tiny", "--format", "diffusers", "--to", str(store.home.root / "x"))
    assert "needs --to" in refused("tiny", "--format", "diffusers")
    assert "--to is for --format diffusers" in refused("tiny", "--to", str(tmp_path / "y"))
    assert not (tmp_path / "y").exists() and not (store.home.root / "x").exists()


def test_a_model_trained_in_studio_exports_to_a_pipeline_diffusers_samples_alike(
    digits8: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Unconditional: diffusers' pipelines take no class (conditional exports: test_conditional_diffusion).
    settings = {
        "width": 8,
        "timesteps": 50,
        "batch_size": 8,
        "steps": 5,
        "learning_rate": 0.02,
        "conditional": "no",
        "sampler": "ddim",  # a model sampled with DDIM exports as a DDIMPipeline (dpmpp2m: test_dpm_solver)
    }
    run_job(
        train(
            digits8,
            TrainOptions("mine", family="diffusion", dataset="digits", steps=3, settings=settings, preview_every=0),
        )
    )
    result = run_job(export_diffusers(digits8, "mine", tmp_path / "mine"))
    assert result.pipeline == "DDIMPipeline"
    card = (tmp_path / "mine" / "README.md").read_text()
    assert "dataset 'digits'" in card and "for 3 steps" in card
    loaded = DDIMPipeline.from_pretrained(tmp_path / "mine")
    assert loaded.scheduler.config.beta_schedule == "squaredcos_cap_v2" and loaded.unet.config.in_channels == 1
    studio = torch_pipeline(digits8, "mine")
    seeds = [4]
    expected = studio_sample(studio, seeds, {"steps": 5, "eta": 0.0})
    initial = studio.initial_noise(seed_generators(seeds))
    produced = diffusers_sample(loaded.unet.eval(), loaded.scheduler, initial, 5, [], monkeypatch)
    MEASURED["studio-trained diffusion, exported, diffusers vs studio"] = largest(produced, expected)
    assert largest(produced, expected) <= TOLERANCE


def test_only_unet2d_diffusion_models_export_to_diffusers(digits8: Store, tmp_path: Path) -> None:
    run_job(
        train(
            digits8,
            TrainOptions(
                "g",
                family="gan",
                dataset="digits",
                steps=1,
                settings={"width": 8, "latent_dim": 8, "batch_size": 8},
                preview_every=0,
            ),
        )
    )
    with pytest.raises(StudioError, match="'g' is a gan model: only diffusion models"):
        run_job(export_diffusers(digits8, "g", tmp_path / "out"))
    assert sorted(os.listdir(tmp_path)) == ["home"]  # no DEST, no staging folder beside it


def test_a_bare_unet_folder_takes_its_scheduler_beside_it_or_diffusers_defaults(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = save_pipeline(tmp_path / "pipe", reduced(CIFAR10_UNET, 16, 8, sample_size=16), CIFAR10_SCHEDULER)
    alone = tmp_path / "alone"
    shutil.copytree(pipeline / "unet", alone)
    summary = import_diffusers(store, alone, "alone")
    config = json.loads((store.home.models / "alone" / "config.json").read_text())
    assert config["origin"]["kind"] == "unet2d" and config["origin"]["pipeline"] is None
    assert "DDPMScheduler defaults" in config["origin"]["scheduler_note"]
    assert config["architecture"]["scheduler"]["variance_type"] == "fixed_small"  # diffusers' default
    assert summary.hyperparameters["sampler"] == "ddpm"

    # A pipeline's unet/ given alone reads ../scheduler/; a scheduler_config.json beside it wins.
    import_diffusers(store, pipeline / "unet", "part")
    config = json.loads((store.home.models / "part" / "config.json").read_text())
    assert config["architecture"]["scheduler"]["variance_type"] == "fixed_large"
    assert config["origin"]["scheduler_note"] is None
    beside = dict(CIFAR10_SCHEDULER, _class_name="DDIMScheduler", beta_schedule="scaled_linear")
    (alone / "scheduler_config.json").write_text(json.dumps(beside))
    import_diffusers(store, alone, "beside")
    config = json.loads((store.home.models / "beside" / "config.json").read_text())
    assert config["hyperparameters"]["schedule"] == "scaled_linear" and config["hyperparameters"]["sampler"] == "ddim"

    # Only an fp16 variant: read and converted to float32.
    half = tmp_path / "half"
    shutil.copytree(pipeline / "unet", half)
    weights = load_file(half / "diffusion_pytorch_model.safetensors")
    (half / "diffusion_pytorch_model.safetensors").unlink()
    save_file({k: v.half() for k, v in weights.items()}, half / "diffusion_pytorch_model.fp16.safetensors")
    import_diffusers(store, half, "half")
    stored = load_file(store.home.models / "half" / "checkpoint.safetensors")
    assert all(torch.equal(stored[f"network.ema.{k}"], v.half().float()) for k, v in weights.items())
    config = json.loads((store.home.models / "half" / "config.json").read_text())
    assert config["origin"]["weights_dtype"] == {"unet": "float16"}
    seeds = [2]
    _, expected = reference(pipeline, seeds, 3, monkeypatch)
    assert largest(studio_sample(torch_pipeline(store, "part"), seeds, {"steps": 3}), expected) <= TOLERANCE


def test_ldm_celebahq_layout_imports_samples_as_diffusers_and_exports_back(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The published layout at 1/16 of the widths, over 16 x 16 latents (64 px images) for speed.
    unet_config = {**reduced(LDM_UNET, 16, 7, sample_size=16), "attention_head_dim": 2}
    vqvae_config = {**reduced(LDM_VQVAE, 16, 8, sample_size=64)}
    torch.manual_seed(2)
    pipeline = LDMPipeline(
        vqvae=VQModel(**vqvae_config), unet=UNet2DModel(**unet_config), scheduler=DDIMScheduler(**LDM_SCHEDULER)
    )
    with torch.no_grad():  # a random decoder's images reach +-7; a trained one's stay in [-1, 1]
        pipeline.vqvae.decoder.conv_out.weight.mul_(0.1)
        pipeline.vqvae.decoder.conv_out.bias.mul_(0.1)
        # A random U-Net's noise predictions are large and its chain amplifies float rounding (any change
        # of convolution algorithm, e.g. Studio's channels-last layout, grows to 1e-4 over 50 steps);
        # a trained one predicts unit-variance noise. Scaled down, the chain stays where a trained one is.
        pipeline.unet.conv_out.weight.mul_(0.1)
        pipeline.unet.conv_out.bias.mul_(0.1)
    source = tmp_path / "ldm-celebahq-256"
    pipeline.save_pretrained(source)
    summary = import_diffusers(store, source)
    assert (summary.family, summary.resolution, summary.channels) == ("latent_diffusion", 64, 3)
    config = json.loads((store.home.models / summary.name / "config.json").read_text())
    settings, architecture = config["hyperparameters"], config["architecture"]
    assert settings["autoencoder"] == "vq" and settings["downscale"] == 4 and settings["latent_channels"] == 3
    assert settings["schedule"] == "scaled_linear" and settings["sampler"] == "ddim"
    assert architecture["autoencoder_class"] == "VQModel" and architecture["scaling_factor"] == 0.18215
    assert config["origin"]["pipeline"] == "LDMPipeline"
    stored = load_file(store.home.models / summary.name / "checkpoint.safetensors")
    assert {key.split(".")[1] for key in stored if key.startswith("network.")} == {"ema", "autoencoder"}

    # diffusers' LDMPipeline loop: DDIM over latents, then decode(latents / scaling_factor). Random weights
    # leave the latents far from unit scale (|z| ~ 35, x 5.5 more once unscaled), which magnifies float32
    # rounding through the decoder: the latents are compared relative to their size, and the decoder on the
    # same latents, besides the images themselves.
    seeds, options = [5, 6], {"steps": 4, "eta": 0.0}
    generators = seed_generators(seeds)
    initial = np.stack([g.standard_normal((3, 16, 16), dtype=np.float32) for g in generators])
    latents = diffusers_sample(pipeline.unet.eval(), pipeline.scheduler, initial, 4, [], monkeypatch)
    scale = pipeline.vqvae.config.scaling_factor
    with torch.no_grad():
        expected = pipeline.vqvae.eval().decode(torch.from_numpy(latents) / scale).sample.numpy()
    size = max(1.0, float(np.abs(latents).max()))

    def check(studio: Any, backend: str) -> np.ndarray:
        found = studio_sample(studio, seeds, options)
        MEASURED[f"ldm celebahq /16 at 64 px, {backend}, latents / their size"] = largest(found, latents) / size
        assert largest(found, latents) <= TOLERANCE * size
        MEASURED[f"ldm celebahq /16 at 64 px, {backend}, decoder"] = largest(studio.to_images(latents), expected)
        assert largest(studio.to_images(latents), expected) <= DECODER_TOLERANCE
        images = studio.to_images(found)
        MEASURED[f"ldm celebahq /16 at 64 px, {backend}, end to end"] = largest(images, expected)
        assert largest(images, expected) <= DECODER_TOLERANCE
        return images

    on_torch = check(torch_pipeline(store, summary.name), "torch")
    run_job(export_model(store, summary.name))
    check(load_exported(store.home.models / summary.name / "onnx", "cpu").pipeline, "onnx")

    destination = tmp_path / "exported"
    result = run_job(export_diffusers(store, summary.name, destination))
    assert result.pipeline == "LDMPipeline"
    for part in ("unet", "vqvae"):
        written = load_numpy(destination / part / "diffusion_pytorch_model.safetensors")
        published = load_numpy(source / part / "diffusion_pytorch_model.safetensors")
        assert written.keys() == published.keys() and all(
            written[k].tobytes() == published[k].tobytes() for k in written
        )
    loaded = LDMPipeline.from_pretrained(destination)
    assert isinstance(loaded.vqvae, VQModel) and loaded.vqvae.config.scaling_factor == 0.18215
    again = diffusers_sample(loaded.unet.eval(), loaded.scheduler, initial, 4, [], monkeypatch)
    with torch.no_grad():
        decoded = loaded.vqvae.eval().decode(torch.from_numpy(again) / scale).sample.numpy()
    assert np.array_equal(again, latents) and np.array_equal(decoded, expected)  # the very same pipeline
    del on_torch


def _as_cache_repository(pipeline: Path, cache: Path, repo_id: str) -> Path:
    """`pipeline` laid out as huggingface_hub caches a download: snapshot files are links into blobs/."""
    repository = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repository / "refs").mkdir(parents=True)
    (repository / "refs" / "main").write_text(commit)
    (repository / "blobs").mkdir()
    for index, file in enumerate(sorted(p for p in pipeline.rglob("*") if p.is_file())):
        blob = repository / "blobs" / f"blob{index}"
        shutil.copyfile(file, blob)
        link = repository / "snapshots" / commit / file.relative_to(pipeline)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return repository / "snapshots" / commit


def test_import_any_takes_diffusers_folders_and_cached_repositories(
    store: Store, tmp_path: Path, tiny_pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.engine.importers import import_any

    assert import_any(store, tiny_pipeline, "direct").family == "diffusion"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    snapshot = _as_cache_repository(tiny_pipeline, tmp_path / "cache", "google/ddpm-tiny-8")
    summary = import_any(store, "google/ddpm-tiny-8")
    assert summary.name == "ddpm-tiny-8" and summary.origin is not None
    assert summary.origin["repo_id"] == "google/ddpm-tiny-8" and summary.origin["license"] == "apache-2.0"
    assert (
        summary.origin["revision"] == snapshot.name
        and summary.weights_hash == import_any(store, snapshot, "b").weights_hash
    )
    # A link in a folder given by path may not lead out of it.
    copied = tmp_path / "copied"
    for link in (p for p in snapshot.rglob("*") if p.is_symlink()):
        (copied / link.relative_to(snapshot)).parent.mkdir(parents=True, exist_ok=True)
        (copied / link.relative_to(snapshot)).symlink_to(link.resolve())
    with pytest.raises(StudioError, match="symbolic link"):
        import_any(store, copied, "c")
    (copied / "model_index.json").unlink()
    shutil.copyfile(snapshot / "model_index.json", copied / "model_index.json")
    with pytest.raises(StudioError, match=r"is a symbolic link to .+, outside .+: not imported"):
        import_any(store, copied, "c")
    assert sorted(p.name for p in store.home.models.iterdir()) == ["b", "ddpm-tiny-8", "direct"]


@pytest.mark.slow
def test_the_full_width_cifar10_network_matches_diffusers(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = save_pipeline(tmp_path / "ddpm-cifar10-32", CIFAR10_UNET, CIFAR10_SCHEDULER)
    started = time.monotonic()
    summary = import_diffusers(store, source)
    MEASURED["full cifar10 import seconds"] = time.monotonic() - started
    assert summary.parameter_count == 35_746_307  # google/ddpm-cifar10-32's U-Net
    seeds, options = [0], {"steps": 2}
    _, expected = reference(source, seeds, 2, monkeypatch)
    on_torch = studio_sample(torch_pipeline(store, summary.name), seeds, options)
    MEASURED["ddpm cifar10 full width, torch"] = largest(on_torch, expected)
    assert largest(on_torch, expected) <= TOLERANCE
    run_job(export_model(store, summary.name))
    runtime = load_exported(store.home.models / summary.name / "onnx", "cpu").pipeline
    on_onnx = studio_sample(runtime, seeds, options)
    MEASURED["ddpm cifar10 full width, onnx"] = largest(on_onnx, expected)
    assert largest(on_onnx, expected) <= TOLERANCE


# --- refusals ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small valid DDPMPipeline folder (the cifar10 layout at 8 px and 1/16 of the widths)."""
    return save_pipeline(
        tmp_path_factory.mktemp("tiny") / "pipe", reduced(CIFAR10_UNET, 16, 8, sample_size=8), CIFAR10_SCHEDULER
    )


def _edit_json(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _drop_tensor(folder: Path) -> None:
    path = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights = load_file(path)
    del weights["conv_in.bias"]
    save_file(weights, path)


def _nan_tensor(folder: Path) -> None:
    path = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights = load_file(path)
    weights["conv_out.weight"][0, 0, 0, 0] = float("nan")
    save_file(weights, path)


def _pickled(folder: Path) -> None:
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))


def _link_outside(folder: Path) -> None:
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    outside = folder.parent / "elsewhere.safetensors"
    weights.rename(outside)
    weights.symlink_to(outside)


REFUSALS = {
    "stable diffusion": (
        lambda f: _edit_json(f / "model_index.json", _class_name="StableDiffusionPipeline"),
        "Studio loads DDPMPipeline, DDIMPipeline, LDMPipeline and bare UNet2DModel folders, "
        "not StableDiffusionPipeline",
    ),
    "no unet": (lambda f: shutil.rmtree(f / "unet"), "unet is missing: the U-Net (unet/) is not there"),
    "no scheduler": (lambda f: shutil.rmtree(f / "scheduler"), "scheduler_config.json is missing"),
    "weights of another shape": (
        lambda f: _edit_json(f / "unet" / "config.json", layers_per_block=1),
        "does not match",
    ),
    "a tensor missing": (_drop_tensor, "the tensor 'conv_in.bias' is missing"),
    "a NaN": (_nan_tensor, "'conv_out.weight' holds NaN or infinite values"),
    "pickled weights": (
        _pickled,
        "only safetensors weights are loaded (Studio never unpickles): ",
    ),
    "unknown scheduler": (
        lambda f: _edit_json(f / "model_index.json", scheduler=["diffusers", "ScoreSdeVeScheduler"]),
        "'ScoreSdeVeScheduler' is not supported",
    ),
    "a dataset too": (lambda f: (f / "dataset.json").write_text("{}"), "is a Studio dataset as well as a model"),
    "a size Studio lacks": (
        lambda f: _edit_json(f / "unet" / "config.json", sample_size=48),
        "the model makes 48 px images; Studio takes 8, 16, 32, 64, 128 or 256 px",
    ),
    "learned variance": (
        lambda f: _edit_json(f / "unet" / "config.json", out_channels=6),
        "the network maps 3 to 6 channels",
    ),
    "four channels": (
        lambda f: _edit_json(f / "unet" / "config.json", in_channels=4, out_channels=4),
        "the network maps 4 to 4 channels",
    ),
    "too few timesteps": (
        lambda f: _edit_json(f / "scheduler" / "scheduler_config.json", num_train_timesteps=10),
        "num_train_timesteps 10 is outside the 50 to 4000",
    ),
    "a link out of the folder": (_link_outside, "outside"),
    "conditional": (
        lambda f: _edit_json(f / "unet" / "config.json", num_class_embeds=10),
        "class-conditional",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_bad_folders_are_refused_in_one_line_and_leave_nothing(
    store: Store, tmp_path: Path, tiny_pipeline: Path, case: str
) -> None:
    spoil, expected = REFUSALS[case]
    folder = tmp_path / "pipe"
    shutil.copytree(tiny_pipeline, folder)
    spoil(folder)
    with pytest.raises(StudioError) as refusal:
        import_diffusers(store, folder, "bad")
    message = str(refusal.value)
    assert expected in message and "\n" not in message
    assert nothing_left(store)


def test_a_valid_tiny_folder_imports_once(store: Store, tiny_pipeline: Path) -> None:
    """The refusals above spoil a folder that imports (so each refusal is the spoiling's doing)."""
    import_diffusers(store, tiny_pipeline, "fine")
    with pytest.raises(StudioError, match="a model named 'fine' already exists"):
        import_diffusers(store, tiny_pipeline, "fine")
    assert [p.name for p in store.home.models.iterdir()] == ["fine"] and not list(store.home.staging.iterdir())
