"""The diffusion family: schema, U-Net geometry, training steps, and seed-exact sampling."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from studio.engine.families.base import Precision, gaussian_noise, to_uint8
from studio.engine.families.diffusion.model import DiffusionFamily
from studio.engine.schedulers import DdimScheduler, DdpmScheduler
from studio.errors import StudioError

TINY: dict[str, Any] = {"width": 8, "timesteps": 50, "steps": 4}
CPU = Precision(torch.device("cpu"))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; on a busy machine, several spin-wait on each other for seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(resolution: int = 8, channels: int = 3, **overrides: Any) -> DiffusionFamily:
    torch.manual_seed(0)
    return DiffusionFamily(resolution, channels, {**TINY, **overrides})


def _trained(family: DiffusionFamily, steps: int = 3) -> DiffusionFamily:
    """A few steps, so the EMA network's output no longer starts as zero (its last conv is zero-initialised)."""
    batch = torch.linspace(-1, 1, 8 * family.channels * family.resolution**2).reshape(
        8, family.channels, family.resolution, -1
    )
    for step in range(steps):
        family.training_step(batch, step, CPU)
    return family


def test_schema_defaults_and_description() -> None:
    defaults = DiffusionFamily.resolve({})
    assert {
        key: defaults[key]
        for key in (
            "width",
            "attention",
            "timesteps",
            "schedule",
            "learning_rate",
            "ema_decay",
            "sampler",
            "steps",
            "eta",
        )
    } == {
        "width": 32,
        "attention": True,
        "timesteps": 1000,
        "schedule": "cosine",
        "learning_rate": 2e-4,
        "ema_decay": 0.999,
        # DPM-Solver++ at 20 steps: as good as 50 on the digits benchmark and 2.5x faster than DDIM at 50.
        "sampler": "dpmpp2m",
        "steps": 20,
        "eta": 0.0,
    }
    groups = {h.name: h.group for h in DiffusionFamily.schema}
    assert groups["width"] == groups["timesteps"] == groups["schedule"] == groups["attention"] == "model"
    assert groups["learning_rate"] == groups["ema_decay"] == "training"
    assert groups["sampler"] == groups["steps"] == groups["eta"] == "sampling"
    assert DiffusionFamily.name == "diffusion"
    assert DiffusionFamily.capabilities == frozenset({"sample", "interpolate", "inpaint"})
    assert 2 <= DiffusionFamily.description.count(". ") + 1 <= 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"width": 4}, "below the minimum"),
        ({"schedule": "sigmoid"}, "not one of"),
        ({"ema_decay": 1.0}, "above the maximum"),
        ({"timesteps": 100, "steps": 200}, "above this model's 100 timesteps"),
        ({"depth": 3}, "unknown setting 'depth'"),
    ],
)
def test_invalid_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(StudioError, match=message):
        DiffusionFamily(8, 3, {"width": 8, **settings})


def test_default_model_is_small_enough_for_a_cpu() -> None:
    family = DiffusionFamily(32, 3, {})
    assert family.sampling_networks() == ("ema",)
    assert set(family.networks()) == {"unet", "ema"} and set(family.optimizers()) == {"unet"}
    assert 200_000 < family.parameter_count() < 1_500_000


@pytest.mark.parametrize("resolution", [8, 16, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("network", ["unet2d", "studio"])
def test_unet_keeps_the_image_shape(resolution: int, channels: int, network: str) -> None:
    family = _tiny(resolution, channels, attention=resolution in (8, 64), network=network)
    noisy = torch.randn(2, channels, resolution, resolution)
    denoiser = family.denoiser(family.unet)
    with torch.no_grad():
        by_index = denoiser(noisy, torch.tensor([0, 49]))
        by_float = denoiser(noisy, torch.tensor([0.0, 49.0]))
    assert by_index.shape == noisy.shape
    torch.testing.assert_close(by_index, by_float)


def test_training_steps_lower_the_loss() -> None:
    family = _tiny(8, 1, learning_rate=3e-3)
    # A tiny, fixed dataset: two flat images, so the noise is easy to tell from the image.
    batch = torch.cat([torch.full((8, 1, 8, 8), -0.8), torch.full((8, 1, 8, 8), 0.8)])
    losses = [family.training_step(batch, step, CPU)["loss"] for step in range(40)]
    assert all(isinstance(loss, float) and math.isfinite(loss) for loss in losses)
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:8])


def test_ema_follows_the_network() -> None:
    without_average = _trained(_tiny(ema_decay=0.0), steps=2)
    for average, current in zip(without_average.ema.parameters(), without_average.unet.parameters(), strict=True):
        torch.testing.assert_close(average, current)
    averaged = _trained(_tiny(ema_decay=0.999), steps=2)
    assert any(
        not torch.equal(a, c) for a, c in zip(averaged.ema.parameters(), averaged.unet.parameters(), strict=True)
    )
    assert all(not p.requires_grad for p in averaged.ema.parameters())


@pytest.mark.parametrize("options", [{"sampler": "ddim"}, {"sampler": "ddim", "eta": 0.7}, {"sampler": "ddpm"}])
def test_a_seed_gives_the_same_image_in_any_batch(options: dict[str, Any]) -> None:
    family = _trained(_tiny())
    batch = family.sample([11, 12, 13], options)
    alone = family.sample([12], options)
    assert batch.shape == (3, 8, 8, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch[1], alone[0])
    np.testing.assert_array_equal(family.sample([12, 99], options)[0], alone[0])
    assert (batch[0] != batch[2]).mean() > 0.5  # different seeds, different images


def test_sampling_follows_the_documented_noise_convention() -> None:
    """What the ONNX backend must reproduce: x_T, then one draw per step, from default_rng(seed)."""
    family = _trained(_tiny(resolution=8, channels=1, steps=5, schedule="linear"))
    seeds = [5, 6]
    generators = [np.random.default_rng(seed) for seed in seeds]
    sample = np.stack([g.standard_normal((1, 8, 8), dtype=np.float32) for g in generators])
    scheduler = family.scheduler("ddpm")
    assert isinstance(scheduler, DdpmScheduler)
    scheduler.set_timesteps(5)
    for timestep in scheduler.timesteps:
        with torch.no_grad():
            predicted = family.denoiser(family.ema)(torch.from_numpy(sample), torch.full((2,), int(timestep))).numpy()
        noise = np.stack([g.standard_normal((1, 8, 8), dtype=np.float32) for g in generators])
        sample = scheduler.step(predicted, int(timestep), sample, noise=noise)
    np.testing.assert_array_equal(family.sample(seeds, {"sampler": "ddpm"}), to_uint8(torch.from_numpy(sample)))


def test_previews_are_quick_deterministic_samples() -> None:
    family = _trained(_tiny(steps=30))
    real = torch.zeros(2, 3, 8, 8)
    expected = family.sample([7, 8], {"sampler": "ddim", "eta": 0.0, "steps": 20})
    np.testing.assert_array_equal(family.preview(real, [7, 8], {"sampler": "ddpm"}), expected)


def test_deterministic_ddim_ignores_nothing_but_the_start() -> None:
    family = _trained(_tiny())
    start = family.initial_noise([np.random.default_rng(3)])
    first = family.denoise(start, [np.random.default_rng(100)], family.sampling_options({}))
    second = family.denoise(start, [np.random.default_rng(200)], family.sampling_options({}))
    np.testing.assert_array_equal(first, second)  # eta = 0 draws nothing after x_T
    assert isinstance(family.scheduler("ddim"), DdimScheduler)


def test_interpolation_latents_are_the_seeds_starting_noise() -> None:
    family = _trained(_tiny())
    latents = gaussian_noise([4, 5], family.latent_shape())
    np.testing.assert_array_equal(family.generate(latents, {}), family.sample([4, 5], {}))
    middle = family.generate((latents[:1] + latents[1:]) / np.sqrt(2), {})
    assert middle.shape == (1, 8, 8, 3)
    for options in ({"sampler": "ddpm"}, {"sampler": "ddim", "eta": 0.5}):
        with pytest.raises(StudioError, match="deterministic"):
            family.generate(latents, options)


def test_completion_keeps_the_known_pixels() -> None:
    family = _trained(_tiny())
    images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    known = np.zeros((2, 8, 8), dtype=bool)
    known[:, :, :4] = True  # the left half is known
    for options in ({"sampler": "ddpm"}, {"sampler": "ddim"}):
        filled = family.complete(images, known, [1, 2], options)
        assert filled.shape == (2, 8, 8, 3) and filled.dtype == np.uint8
        np.testing.assert_array_equal(filled[:, :, :4], images[:, :, :4])
        np.testing.assert_array_equal(family.complete(images[1:], known[1:], [2], options)[0], filled[1])
    with pytest.raises(StudioError, match="uint8 of shape"):
        family.complete(images[:, :4], known, [1, 2], {})


def test_sampling_options_are_validated() -> None:
    family = _tiny()
    assert family.sampling_options({"steps": 50}) == {"sampler": "dpmpp2m", "steps": 50, "eta": 0.0, "resample": 3}
    for values, message in [
        ({"cfg_scale": 2.0}, "unknown sampling setting 'cfg_scale'"),
        ({"guidance": 2.0}, "not class-conditional"),
        ({"steps": 0}, "below the minimum"),
        ({"steps": 51}, "above this model's 50 timesteps"),
        ({"eta": 1.5}, "above the maximum"),
        ({"sampler": "euler"}, "not one of"),
    ]:
        with pytest.raises(StudioError, match=message):
            family.sampling_options(values)
