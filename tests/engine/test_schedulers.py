"""The numpy DDPM/DDIM schedulers: pinned against diffusers' own schedulers, and their contracts."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from studio.engine.schedulers import DdimConfig, DdimScheduler, DdpmScheduler, SchedulerConfig

# (our settings, diffusers' spelling of the same): diffusers calls the cosine schedule "squaredcos_cap_v2".
CONFIGURATIONS: list[dict[str, Any]] = [
    {"num_train_timesteps": 1000, "beta_schedule": "linear", "clip_sample": True},
    {"num_train_timesteps": 1000, "beta_schedule": "cosine", "clip_sample": False},
    {"num_train_timesteps": 1000, "beta_schedule": "cosine", "clip_sample": True},
    {"num_train_timesteps": 100, "beta_schedule": "linear", "beta_start": 0.001, "beta_end": 0.2, "clip_sample": False},
    {"num_train_timesteps": 50, "beta_schedule": "cosine", "clip_sample": True},
]
STEP_COUNTS = (None, 1, 7, 50)  # None: the full chain, as before set_timesteps is called
SHAPE = (2, 3, 8, 8)
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def _diffusers_settings(settings: dict[str, Any]) -> dict[str, Any]:
    translated = dict(settings)
    if translated["beta_schedule"] == "cosine":
        translated["beta_schedule"] = "squaredcos_cap_v2"
    return translated


def _fixed_arrays(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A model output, a sample and a noise array, the same on every run."""
    rng = np.random.default_rng(seed)
    model_output = rng.standard_normal(SHAPE, dtype=np.float32)
    sample = (1.5 * rng.standard_normal(SHAPE)).astype(np.float32)
    noise = rng.standard_normal(SHAPE, dtype=np.float32)
    return model_output, sample, noise


def _checked_timesteps(timesteps: np.ndarray) -> list[int]:
    """Every timestep of short chains; a spread of them (first and last included) of the full chain."""
    if len(timesteps) <= 50:
        return [int(t) for t in timesteps]
    return sorted({int(t) for t in timesteps[::37]} | {int(timesteps[0]), *map(int, timesteps[-3:])}, reverse=True)


@pytest.mark.parametrize("settings", CONFIGURATIONS, ids=lambda s: f"{s['beta_schedule']}-{s['num_train_timesteps']}")
def test_ddpm_matches_diffusers(settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    scheduling_ddpm = pytest.importorskip("diffusers.schedulers.scheduling_ddpm")
    theirs = scheduling_ddpm.DDPMScheduler(**_diffusers_settings(settings))
    ours = DdpmScheduler(SchedulerConfig(**settings))

    np.testing.assert_allclose(ours.betas, theirs.betas.numpy(), **TOLERANCE)
    np.testing.assert_allclose(ours.alphas_cumprod, theirs.alphas_cumprod.numpy(), **TOLERANCE)

    model_output, sample, noise = _fixed_arrays(1)
    timesteps = np.array([0, 1, settings["num_train_timesteps"] // 2, settings["num_train_timesteps"] - 1])
    np.testing.assert_allclose(
        ours.add_noise(sample[:1].repeat(4, 0), noise[:1].repeat(4, 0), timesteps),
        theirs.add_noise(
            torch.from_numpy(sample[:1].repeat(4, 0)),
            torch.from_numpy(noise[:1].repeat(4, 0)),
            torch.from_numpy(timesteps),
        ).numpy(),
        **TOLERANCE,
    )

    # diffusers keeps float32 tables, whose 1 - alpha_bar_t / alpha_bar_{t-1} loses digits near t = 0; with the
    # tables checked above, step both with ours (float64), so what follows compares the formulas alone.
    theirs.alphas_cumprod = torch.from_numpy(ours.alphas_cumprod)
    # diffusers draws DDPM's noise itself: hand it ours instead, so both step with the same array.
    monkeypatch.setattr(scheduling_ddpm, "randn_tensor", lambda *args, **kwargs: torch.from_numpy(noise))
    for count in STEP_COUNTS:
        if count is not None:
            ours.set_timesteps(count)
            theirs.set_timesteps(count)
        np.testing.assert_array_equal(ours.timesteps, theirs.timesteps.numpy())
        for timestep in _checked_timesteps(ours.timesteps):
            expected = theirs.step(torch.from_numpy(model_output), timestep, torch.from_numpy(sample)).prev_sample
            actual = ours.step(model_output, timestep, sample, noise=noise)
            assert actual.dtype == np.float32
            np.testing.assert_allclose(actual, expected.numpy(), **TOLERANCE, err_msg=f"{count} steps, t={timestep}")


@pytest.mark.parametrize("settings", CONFIGURATIONS, ids=lambda s: f"{s['beta_schedule']}-{s['num_train_timesteps']}")
@pytest.mark.parametrize("set_alpha_to_one", [True, False])
def test_ddim_matches_diffusers(settings: dict[str, Any], set_alpha_to_one: bool) -> None:
    torch = pytest.importorskip("torch")
    scheduling_ddim = pytest.importorskip("diffusers.schedulers.scheduling_ddim")
    theirs = scheduling_ddim.DDIMScheduler(**_diffusers_settings(settings), set_alpha_to_one=set_alpha_to_one)
    ours = DdimScheduler(DdimConfig(**settings, set_alpha_to_one=set_alpha_to_one))

    np.testing.assert_allclose(ours.betas, theirs.betas.numpy(), **TOLERANCE)
    np.testing.assert_allclose(ours.alphas_cumprod, theirs.alphas_cumprod.numpy(), **TOLERANCE)
    model_output, sample, noise = _fixed_arrays(2)
    timesteps = np.array([3, 0])
    np.testing.assert_allclose(
        ours.add_noise(sample[:2], noise[:2], timesteps),
        theirs.add_noise(torch.from_numpy(sample[:2]), torch.from_numpy(noise[:2]), torch.from_numpy(timesteps)),
        **TOLERANCE,
    )

    theirs.alphas_cumprod = torch.from_numpy(ours.alphas_cumprod)  # as in the DDPM test
    if not set_alpha_to_one:
        theirs.final_alpha_cumprod = theirs.alphas_cumprod[0]
    for count in STEP_COUNTS[1:]:  # diffusers' DDIM refuses to step before set_timesteps
        theirs.set_timesteps(count)
        np.testing.assert_array_equal(ours.set_timesteps(count), theirs.timesteps.numpy())
        for timestep in _checked_timesteps(ours.timesteps):
            for eta in (0.0, 0.3, 1.0):
                expected = theirs.step(
                    torch.from_numpy(model_output),
                    timestep,
                    torch.from_numpy(sample),
                    eta=eta,
                    variance_noise=torch.from_numpy(noise),
                ).prev_sample
                actual = ours.step(model_output, timestep, sample, eta=eta, noise=noise)
                assert actual.dtype == np.float32
                np.testing.assert_allclose(
                    actual, expected.numpy(), **TOLERANCE, err_msg=f"{count} steps, t={timestep}, eta={eta}"
                )


def test_schedules_keep_their_published_values() -> None:
    """Pinned figures, so the maths stays checked where diffusers is not installed."""
    linear = DdpmScheduler()
    assert linear.betas[0] == pytest.approx(1e-4) and linear.betas[-1] == pytest.approx(0.02)
    assert linear.alphas_cumprod[-1] == pytest.approx(4.0358e-05, rel=1e-4)
    cosine = DdpmScheduler(SchedulerConfig(beta_schedule="cosine"))
    assert cosine.betas[-1] == pytest.approx(0.999)  # Improved DDPM clips the last betas
    assert cosine.alphas_cumprod[499] == pytest.approx(0.4936, abs=1e-3)
    assert DdimScheduler().set_timesteps(7).tolist() == [852, 710, 568, 426, 284, 142, 0]


def test_one_step_with_the_true_noise_recovers_the_image() -> None:
    rng = np.random.default_rng(3)
    original = rng.uniform(-1, 1, SHAPE).astype(np.float32)
    noise = rng.standard_normal(SHAPE, dtype=np.float32)
    for scheduler in (DdimScheduler(DdimConfig(beta_schedule="cosine")), DdpmScheduler()):
        (timestep,) = scheduler.set_timesteps(1)
        noisy = scheduler.add_noise(original, noise, timestep)
        if isinstance(scheduler, DdimScheduler):
            recovered = scheduler.step(noise, int(timestep), noisy, eta=0.0)
        else:
            recovered = scheduler.step(noise, int(timestep), noisy)  # the last step adds no noise
        np.testing.assert_allclose(recovered, original, atol=1e-4)


def test_noise_is_required_exactly_where_it_is_used() -> None:
    model_output, sample, noise = _fixed_arrays(4)
    ddpm = DdpmScheduler(SchedulerConfig(num_train_timesteps=100))
    ddpm.set_timesteps(10)
    with pytest.raises(ValueError, match="noise"):
        ddpm.step(model_output, 90, sample)
    ddpm.step(model_output, 0, sample)  # the last step is noise-free
    ddim = DdimScheduler(DdimConfig(num_train_timesteps=100))
    ddim.set_timesteps(10)
    with pytest.raises(ValueError, match="noise"):
        ddim.step(model_output, 90, sample, eta=0.5)
    np.testing.assert_array_equal(ddim.step(model_output, 90, sample), ddim.step(model_output, 90, sample, noise=noise))
    with pytest.raises(ValueError, match="eta"):
        ddim.step(model_output, 90, sample, eta=1.5, noise=noise)


def test_settings_are_validated() -> None:
    scheduler = DdimScheduler(DdimConfig(num_train_timesteps=100))
    for count in (0, 101):
        with pytest.raises(ValueError, match="between 1 and 100"):
            scheduler.set_timesteps(count)
    with pytest.raises(ValueError, match="outside"):
        scheduler.step(np.zeros(SHAPE, np.float32), 100, np.zeros(SHAPE, np.float32))
    with pytest.raises(ValueError, match="beta_schedule"):
        SchedulerConfig(beta_schedule="sigmoid")
    with pytest.raises(ValueError, match="num_train_timesteps"):
        SchedulerConfig(num_train_timesteps=0)


def test_configuration_round_trips_through_json() -> None:
    scheduler = DdimScheduler(DdimConfig(num_train_timesteps=250, beta_schedule="cosine", set_alpha_to_one=False))
    restored = DdimScheduler.from_dict(json.loads(json.dumps(scheduler.to_dict())))
    assert restored.config == scheduler.config
    np.testing.assert_array_equal(restored.alphas_cumprod, scheduler.alphas_cumprod)
    ddpm = DdpmScheduler.from_dict({"beta_schedule": "cosine", "clip_sample": False})
    assert ddpm.to_dict()["clip_sample"] is False
    with pytest.raises(ValueError, match="unknown scheduler setting 'set_alpha_to_one'"):
        DdpmScheduler.from_dict(scheduler.to_dict())


def test_schedulers_never_import_torch() -> None:
    """The ONNX runtime reuses these modules on machines without torch."""
    script = "import json, sys\nimport studio.engine.schedulers\nprint(json.dumps('torch' in sys.modules))\n"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(output.stdout) is False
