"""Scheduler options read from diffusers' scheduler_config.json, pinned against diffusers over whole sampling chains.

Each chain runs Studio's numpy scheduler and diffusers' torch one side by side on float32 arrays, with the same
fake network (a deterministic function of the sample and t) and the same step noise. diffusers keeps float32
tables whose cumulative product drifts (~3e-7) from Studio's float64 ones: the tables are compared on their
own, and the chains step diffusers with Studio's tables, so that the chain comparison checks the formulas.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from studio.engine.schedulers import (
    DdimConfig,
    DdimScheduler,
    DdpmScheduler,
    SchedulerConfig,
    scheduler_from_diffusers,
    scheduler_to_diffusers,
)
from studio.engine.schedulers.diffusers_config import SUBSTITUTED_CLASSES
from studio.errors import StudioError

SHAPE = (2, 3, 16, 16)
TOLERANCE = 1e-6  # absolute, on samples of magnitude ~1
# Drift allowed when diffusers steps with its own float32 tables (DDPM's 1 - alpha_t / alpha_{t-1} near t = 0).
FLOAT32_TABLE_DRIFT = 2e-4

# In the style of the published files: google/ddpm-cifar10-32 and CompVis/ldm-celebahq-256 (diffusers 0.1-era
# files, with keys diffusers no longer reads), and a Stable Diffusion v1 style PNDM file.
DDPM_CIFAR10 = {
    "_class_name": "DDPMScheduler",
    "_diffusers_version": "0.1.1",
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "beta_start": 0.0001,
    "clip_sample": True,
    "num_train_timesteps": 1000,
    "timestep_values": None,
    "trained_betas": None,
    "variance_type": "fixed_large",
}
LDM_CELEBAHQ = {
    "_class_name": "DDIMScheduler",
    "_diffusers_version": "0.0.4",
    "beta_end": 0.0195,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.0015,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "tensor_format": "pt",
    "timestep_values": None,
    "trained_betas": None,
}
SD_PNDM = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

V_PREDICTION = {"prediction_type": "v_prediction"}
COSINE = {"beta_schedule": "squaredcos_cap_v2"}
TRAINED_LINEAR = {"num_train_timesteps": 100, "trained_betas": np.linspace(0.001, 0.05, 100).tolist()}
TRAINED_GEOMETRIC = {"num_train_timesteps": 100, "trained_betas": np.geomspace(0.001, 0.05, 100).tolist()}
AS_DDPM, AS_DDIM = {"_class_name": "DDPMScheduler"}, {"_class_name": "DDIMScheduler"}

# (name, diffusers config, Studio sampler, steps, eta): every new option, alone and combined.
CHAINS: list[tuple[str, dict[str, Any], str, int, float]] = [
    ("ldm-celebahq-ddim", LDM_CELEBAHQ, "ddim", 50, 0.0),
    ("ldm-celebahq-ddim-eta1", LDM_CELEBAHQ, "ddim", 20, 1.0),
    ("ldm-celebahq-as-ddpm", {**LDM_CELEBAHQ, **AS_DDPM}, "ddpm", 50, 0.0),
    ("cifar10-ddpm-fixed-large", DDPM_CIFAR10, "ddpm", 50, 0.0),
    ("cifar10-ddpm-fixed-large-full", DDPM_CIFAR10, "ddpm", 1000, 0.0),
    ("cifar10-as-ddim", {**DDPM_CIFAR10, **AS_DDIM}, "ddim", 10, 0.0),
    ("vpred-ddim-trailing", {**LDM_CELEBAHQ, **V_PREDICTION, "timestep_spacing": "trailing"}, "ddim", 30, 0.5),
    (
        "vpred-ddpm-linspace",
        {**DDPM_CIFAR10, **V_PREDICTION, "timestep_spacing": "linspace", "steps_offset": 1},
        "ddpm",
        30,
        0.0,
    ),
    ("vpred-ddim-leading-offset", {**SD_PNDM, **AS_DDIM, **V_PREDICTION}, "ddim", 25, 0.0),
    ("eps-ddim-linspace-offset", {**LDM_CELEBAHQ, "timestep_spacing": "linspace", "steps_offset": 1}, "ddim", 15, 0.3),
    ("eps-ddim-trailing-uneven", {**LDM_CELEBAHQ, "timestep_spacing": "trailing", "steps_offset": 1}, "ddim", 13, 0.0),
    ("eps-ddpm-leading-offset-large", {**DDPM_CIFAR10, "steps_offset": 1}, "ddpm", 10, 0.0),
    (
        "eps-ddpm-leading-offset-small",
        {**DDPM_CIFAR10, "steps_offset": 1, "variance_type": "fixed_small"},
        "ddpm",
        10,
        0,
    ),
    ("eps-ddpm-trailing-large", {**DDPM_CIFAR10, "timestep_spacing": "trailing"}, "ddpm", 20, 0.0),
    (
        "sample-ddim-clip",
        {**LDM_CELEBAHQ, "prediction_type": "sample", "clip_sample": True, "clip_sample_range": 0.8},
        "ddim",
        20,
        0.3,
    ),
    ("sample-ddpm-cosine", {**AS_DDPM, **COSINE, "prediction_type": "sample"}, "ddpm", 25, 0.0),
    (
        "vpred-ddim-cosine-final-alpha",
        {**AS_DDIM, **COSINE, **V_PREDICTION, "set_alpha_to_one": False, "timestep_spacing": "trailing"},
        "ddim",
        10,
        1.0,
    ),
    (
        "trained-betas-ddpm",
        {**AS_DDPM, **TRAINED_LINEAR, "variance_type": "fixed_large", "timestep_spacing": "linspace"},
        "ddpm",
        40,
        0.0,
    ),
    ("trained-betas-ddim", {**AS_DDIM, **TRAINED_GEOMETRIC}, "ddim", 10, 0.6),
]


def _studio_scheduler(config: dict[str, Any], sampler: str) -> DdpmScheduler | DdimScheduler:
    """Studio's scheduler for a converted config, as studio/engine/families/diffusion/pipeline.py builds it."""
    settings = dict(config)
    if sampler == "ddim":
        return DdimScheduler.from_dict(settings)
    settings.pop("set_alpha_to_one", None)
    return DdpmScheduler.from_dict(settings)


def _diffusers_scheduler(config: dict[str, Any], sampler: str) -> Any:
    diffusers = pytest.importorskip("diffusers")
    with _quiet_diffusers():  # the 0.1-era files carry keys diffusers warns about
        if sampler == "ddim":
            return diffusers.DDIMScheduler.from_config(config)
        return diffusers.DDPMScheduler.from_config(config)


class _quiet_diffusers:  # noqa: N801 - used as a context manager
    def __enter__(self) -> None:
        self.logger = logging.getLogger("diffusers")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


class FakeNetwork:
    """A deterministic stand-in for a denoiser that knows a target image, slightly perturbed by the sample.

    Its x_0 is target + 0.1 tanh(x_t), returned as the prediction type asks, so that chains stay bounded and
    every prediction type exercises its own formulas.
    """

    def __init__(self, alphas_cumprod: np.ndarray, prediction_type: str) -> None:
        phase = np.random.default_rng(7).uniform(0, 2 * np.pi, SHAPE)
        self.target = np.sin(3 * phase).astype(np.float32)
        self.alphas_cumprod = alphas_cumprod
        self.prediction_type = prediction_type

    def __call__(self, sample: np.ndarray, timestep: int) -> np.ndarray:
        alpha_bar = float(self.alphas_cumprod[timestep])
        original = self.target + 0.1 * np.tanh(sample)
        noise = (sample - math.sqrt(alpha_bar) * original) / math.sqrt(1 - alpha_bar)
        if self.prediction_type == "epsilon":
            output = noise
        elif self.prediction_type == "sample":
            output = original
        else:
            output = math.sqrt(alpha_bar) * noise - math.sqrt(1 - alpha_bar) * original
        return np.asarray(output, dtype=np.float32)


def _noise_arrays(seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    while True:
        yield rng.standard_normal(SHAPE, dtype=np.float32)


def _run_chains(
    ours: DdpmScheduler | DdimScheduler, theirs: Any, steps: int, eta: float, monkeypatch: pytest.MonkeyPatch
) -> tuple[float, np.ndarray]:
    """Run both schedulers from the same x_T with the same network and noise; (worst difference, our x_0)."""
    torch = pytest.importorskip("torch")
    scheduling_ddpm = pytest.importorskip("diffusers.schedulers.scheduling_ddpm")
    network = FakeNetwork(ours.alphas_cumprod, ours.config.prediction_type)
    ours.set_timesteps(steps)
    theirs.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, theirs.timesteps.numpy())
    noises = _noise_arrays(11)
    sample = next(noises)
    theirs_sample = torch.from_numpy(sample.copy())
    worst = 0.0
    for timestep in (int(t) for t in ours.timesteps):
        noise = next(noises)
        if isinstance(ours, DdimScheduler):
            sample = ours.step(network(sample, timestep), timestep, sample, eta=eta, noise=noise)
            theirs_sample = theirs.step(
                torch.from_numpy(network(theirs_sample.numpy(), timestep)),
                timestep,
                theirs_sample,
                eta=eta,
                variance_noise=torch.from_numpy(noise),
            ).prev_sample
        else:
            # diffusers draws DDPM's noise itself: hand it this step's array instead.
            monkeypatch.setattr(scheduling_ddpm, "randn_tensor", lambda *a, noise=noise, **k: torch.from_numpy(noise))
            sample = ours.step(network(sample, timestep), timestep, sample, noise=noise)
            theirs_sample = theirs.step(
                torch.from_numpy(network(theirs_sample.numpy(), timestep)), timestep, theirs_sample
            ).prev_sample
        assert sample.dtype == np.float32 and theirs_sample.dtype == torch.float32
        worst = max(worst, float(np.abs(sample - theirs_sample.numpy()).max()))
    return worst, sample


@pytest.mark.parametrize(("config", "sampler", "steps", "eta"), [c[1:] for c in CHAINS], ids=[c[0] for c in CHAINS])
def test_chains_match_diffusers(
    config: dict[str, Any], sampler: str, steps: int, eta: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    converted = scheduler_from_diffusers(config)
    assert converted.note is None and converted.native_sampler == config["_class_name"][:4].lower()
    ours = _studio_scheduler(converted.config, sampler)
    theirs = _diffusers_scheduler(config, sampler)
    np.testing.assert_allclose(ours.betas, theirs.betas.numpy(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.alphas_cumprod, theirs.alphas_cumprod.numpy(), rtol=0, atol=TOLERANCE)

    # With diffusers' own float32 tables: the drift stays small, and mostly comes from those tables.
    drift, _ = _run_chains(_studio_scheduler(converted.config, sampler), theirs, steps, eta, monkeypatch)
    assert drift < FLOAT32_TABLE_DRIFT

    # With the same tables the formulas agree to float32 rounding (in practice bit for bit).
    theirs = _diffusers_scheduler(config, sampler)
    theirs.alphas_cumprod = torch.from_numpy(ours.alphas_cumprod)
    if isinstance(ours, DdimScheduler):
        theirs.final_alpha_cumprod = torch.tensor(ours.final_alpha_cumprod, dtype=torch.float64)
    worst, final = _run_chains(ours, theirs, steps, eta, monkeypatch)
    assert worst <= TOLERANCE
    assert np.isfinite(final).all() and np.abs(final).max() < 3


def test_ddim_previous_timestep_follows_diffusers() -> None:
    """diffusers' DDIM steps to t - T // n whatever the spacing; Studio's previous_timestep says the same."""
    leading = DdimScheduler(DdimConfig(steps_offset=1))
    assert leading.set_timesteps(4).tolist() == [751, 501, 251, 1]
    assert [leading.previous_timestep(int(t)) for t in leading.timesteps] == [501, 251, 1, -249]
    trailing = DdimScheduler(DdimConfig(timestep_spacing="trailing"))
    assert trailing.set_timesteps(4).tolist() == [999, 749, 499, 249]
    assert [trailing.previous_timestep(int(t)) for t in trailing.timesteps] == [749, 499, 249, -1]
    linspace = DdimScheduler(DdimConfig(timestep_spacing="linspace", steps_offset=5))  # the offset is leading-only
    assert linspace.set_timesteps(4).tolist() == [999, 666, 333, 0]
    assert linspace.previous_timestep(999) == 749  # not the chain's 666: diffusers' own arithmetic
    # DDPM walks the chain itself, whatever the spacing.
    ddpm = DdpmScheduler(SchedulerConfig(timestep_spacing="linspace"))
    ddpm.set_timesteps(4)
    assert [ddpm.previous_timestep(int(t)) for t in ddpm.timesteps] == [666, 333, 0, -1]


def test_steps_offset_past_the_last_timestep_is_refused() -> None:
    scheduler = DdpmScheduler(SchedulerConfig(num_train_timesteps=100, steps_offset=1))
    assert scheduler.set_timesteps(99)[0] == 99
    with pytest.raises(ValueError, match="past the last training timestep 99"):
        scheduler.set_timesteps(100)
    assert scheduler.timesteps[0] == 99  # the failed call changed nothing
    with pytest.raises(ValueError, match="steps_offset"):
        SchedulerConfig(num_train_timesteps=100, steps_offset=100)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_predictions_imply_a_consistent_original_and_noise(prediction_type: str) -> None:
    """sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps gives back x_t for every prediction type."""
    scheduler = DdimScheduler(DdimConfig(prediction_type=prediction_type, clip_sample=False))
    rng = np.random.default_rng(5)
    sample, output = rng.standard_normal((2, *SHAPE)).astype(np.float32)
    for timestep in (0, 300, 999):
        original, noise = scheduler.predict_original_and_noise(output, timestep, sample)
        alpha_bar = scheduler.alphas_cumprod[timestep]
        rebuilt = np.sqrt(alpha_bar) * original + np.sqrt(1 - alpha_bar) * noise
        np.testing.assert_allclose(rebuilt, sample, atol=1e-4)
        assert original.dtype == noise.dtype == np.float32


def test_ddpm_variance_types_and_the_last_step() -> None:
    """fixed_large adds beta_t's noise, more than fixed_small; a last step from t > 0 adds noise as in diffusers."""
    shape = (1, 1, 4, 4)
    zeros, noise = np.zeros(shape, np.float32), np.ones(shape, np.float32)
    small = DdpmScheduler(SchedulerConfig(steps_offset=1))
    large = DdpmScheduler(SchedulerConfig(steps_offset=1, variance_type="fixed_large"))
    for scheduler in (small, large):
        scheduler.set_timesteps(10)
    spread = [float(s.step(zeros, 501, zeros, noise=noise).max()) for s in (small, large)]  # x_0 = x_t = 0: noise only
    assert 0 < spread[0] < spread[1]
    assert spread[1] == pytest.approx(math.sqrt(1 - large.alphas_cumprod[501] / large.alphas_cumprod[401]), rel=1e-6)
    # The chain ends at t = 1: fixed_large still adds sqrt(beta_1) noise there, fixed_small ~1e-10 of it.
    beta_1 = 1 - large.alphas_cumprod[1]  # the step from t = 1 to -1 (alpha_bar = 1) spans beta_0 and beta_1
    assert float(large.step(zeros, 1, zeros, noise=noise).max()) == pytest.approx(math.sqrt(beta_1), rel=1e-6)
    assert float(small.step(zeros, 1, zeros, noise=noise).max()) < 1e-9
    with pytest.raises(ValueError, match="noise"):
        large.step(zeros, 1, zeros)
    with pytest.raises(ValueError, match="variance_type"):
        SchedulerConfig(variance_type="learned_range")


def test_new_settings_round_trip_and_old_dicts_still_load() -> None:
    config = DdimConfig(
        num_train_timesteps=10,
        beta_schedule="scaled_linear",
        prediction_type="v_prediction",
        timestep_spacing="trailing",
        steps_offset=1,
        variance_type="fixed_large",
        trained_betas=tuple(np.linspace(0.01, 0.1, 10).tolist()),
        set_alpha_to_one=False,
    )
    restored = DdimConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config and isinstance(restored.trained_betas, tuple)
    np.testing.assert_array_equal(DdimScheduler(restored).betas, np.linspace(0.01, 0.1, 10))
    old = {"num_train_timesteps": 1000, "beta_schedule": "cosine", "beta_start": 0.0001, "beta_end": 0.02}
    old |= {"clip_sample": True, "clip_sample_range": 1.0, "prediction_type": "epsilon", "set_alpha_to_one": True}
    loaded = DdimConfig.from_dict(old)
    assert (loaded.timestep_spacing, loaded.steps_offset, loaded.variance_type) == ("leading", 0, "fixed_small")
    assert loaded.trained_betas is None
    with pytest.raises(ValueError, match="trained_betas has 3 values"):
        SchedulerConfig(trained_betas=(0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match="between 0 and 1"):
        SchedulerConfig(num_train_timesteps=2, trained_betas=(0.1, 1.0))


def test_scaled_linear_betas_are_squares_of_evenly_spaced_roots() -> None:
    betas = DdimScheduler(DdimConfig(beta_schedule="scaled_linear", beta_start=0.0015, beta_end=0.0195)).betas
    assert betas[0] == pytest.approx(0.0015) and betas[-1] == pytest.approx(0.0195)
    np.testing.assert_allclose(np.diff(np.sqrt(betas)), (math.sqrt(0.0195) - math.sqrt(0.0015)) / 999)


def test_published_configs_convert() -> None:
    cifar = scheduler_from_diffusers(DDPM_CIFAR10)
    assert (cifar.native_sampler, cifar.source_class, cifar.note) == ("ddpm", "DDPMScheduler", None)
    assert cifar.config["variance_type"] == "fixed_large" and cifar.config["clip_sample"] is True
    ldm = scheduler_from_diffusers(LDM_CELEBAHQ)
    assert (ldm.native_sampler, ldm.note) == ("ddim", None)
    assert ldm.config["beta_schedule"] == "scaled_linear" and ldm.config["clip_sample"] is False
    pndm = scheduler_from_diffusers(SD_PNDM)
    assert pndm.native_sampler == "ddim"
    assert pndm.note == "PNDMScheduler is not implemented in Studio: sampled with DDIM"
    assert (pndm.config["steps_offset"], pndm.config["set_alpha_to_one"]) == (1, False)
    cosine = scheduler_from_diffusers({"_class_name": "DDPMScheduler", "beta_schedule": "squaredcos_cap_v2"})
    assert cosine.config["beta_schedule"] == "cosine"
    legacy = scheduler_from_diffusers({"_class_name": "DDPMScheduler", "predict_epsilon": False})
    assert legacy.config["prediction_type"] == "sample"
    small_log = scheduler_from_diffusers({"_class_name": "DDPMScheduler", "variance_type": "fixed_small_log"})
    assert small_log.config["variance_type"] == "fixed_small"
    # Every converted dict builds both Studio schedulers, as the diffusion pipeline does.
    for converted in (cifar, ldm, pndm, cosine, legacy, small_log):
        _studio_scheduler(converted.config, "ddpm")
        _studio_scheduler(converted.config, "ddim")


# diffusers' Karras-style schedulers call numpy on torch tensors, which numpy 2 warns about thousands of times.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("class_name", SUBSTITUTED_CLASSES)
def test_substituted_solvers_keep_their_betas_and_sample_with_ddim(class_name: str) -> None:
    """Studio's DDIM equals diffusers' `DDIMScheduler.from_config(<the pipeline's scheduler>.config)`."""
    diffusers = pytest.importorskip("diffusers")
    assert hasattr(diffusers, class_name)
    source = {**SD_PNDM, "_class_name": class_name, "prediction_type": "v_prediction", "timestep_spacing": "trailing"}
    del source["set_alpha_to_one"]  # left to the defaults, like the other keys the class may not have
    converted = scheduler_from_diffusers(source)
    assert converted.native_sampler == "ddim" and converted.source_class == class_name
    assert converted.note == f"{class_name} is not implemented in Studio: sampled with DDIM"
    with _quiet_diffusers():
        try:
            loaded = getattr(diffusers, class_name).from_config(source).config
        except ImportError:  # LMS needs scipy, DPMSolverSDE torchsde: diffusers' swap then reads the file itself
            loaded = source
        theirs = diffusers.DDIMScheduler.from_config(loaded)
    ours = DdimScheduler.from_dict(converted.config)
    for key in ("clip_sample", "set_alpha_to_one", "prediction_type", "timestep_spacing", "steps_offset"):
        assert getattr(ours.config, key) == theirs.config[key], key
    np.testing.assert_allclose(ours.alphas_cumprod, theirs.alphas_cumprod.numpy(), rtol=0, atol=TOLERANCE)
    for steps in (1, 7, 50):
        theirs.set_timesteps(steps)
        np.testing.assert_array_equal(ours.set_timesteps(steps), theirs.timesteps.numpy())


EXPORTED: list[dict[str, Any]] = [
    DdimConfig().to_dict(),
    scheduler_from_diffusers(LDM_CELEBAHQ).config,
    scheduler_from_diffusers(
        {**DDPM_CIFAR10, "prediction_type": "v_prediction", "timestep_spacing": "linspace"}
    ).config,
    DdimConfig(beta_schedule="cosine", set_alpha_to_one=False, steps_offset=2, clip_sample_range=2.0).to_dict(),
    DdimConfig(num_train_timesteps=50, trained_betas=tuple(np.linspace(0.01, 0.3, 50).tolist())).to_dict(),
]


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("config", EXPORTED, ids=range(len(EXPORTED)))
def test_export_loads_in_diffusers_as_the_same_scheduler(
    config: dict[str, Any], sampler: str, caplog: pytest.LogCaptureFixture
) -> None:
    diffusers = pytest.importorskip("diffusers")
    exported = scheduler_to_diffusers(config, sampler)
    assert json.loads(json.dumps(exported)) == exported
    assert exported["_class_name"] == {"ddpm": "DDPMScheduler", "ddim": "DDIMScheduler"}[sampler]
    with caplog.at_level(logging.WARNING, logger="diffusers"):
        theirs = getattr(diffusers, exported["_class_name"]).from_config(exported)
    assert not [r for r in caplog.records if r.name.startswith("diffusers")]  # no key diffusers does not expect
    ours = _studio_scheduler(config, sampler)
    np.testing.assert_allclose(ours.alphas_cumprod, theirs.alphas_cumprod.numpy(), rtol=0, atol=TOLERANCE)
    if isinstance(ours, DdimScheduler):
        assert float(theirs.final_alpha_cumprod) == pytest.approx(ours.final_alpha_cumprod, abs=TOLERANCE)
    else:
        assert theirs.config.variance_type == ours.config.variance_type
    for steps in (1, 10, 33):
        theirs.set_timesteps(steps)
        np.testing.assert_array_equal(ours.set_timesteps(steps), theirs.timesteps.numpy())
    # And back: the round trip through the diffusers file loses nothing.
    back = scheduler_from_diffusers(exported)
    assert back.note is None and back.native_sampler == sampler
    assert back.config == DdimConfig.from_dict(config).to_dict()


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ([1, 2], "expected a JSON object"),
        ({"num_train_timesteps": 1000}, "no _class_name"),
        ({"_class_name": 3}, "no _class_name"),
        ({"_class_name": "ScoreSdeVeScheduler"}, "'ScoreSdeVeScheduler' is not supported"),
        ({"_class_name": "LCMScheduler"}, "'LCMScheduler' is not supported"),
        ({"_class_name": "DDPMScheduler", "beta_schedule": "sigmoid"}, "beta_schedule 'sigmoid' is not supported"),
        ({"_class_name": "DDPMScheduler", "beta_schedule": "cosine"}, "beta_schedule 'cosine' is not supported"),
        ({"_class_name": "DDPMScheduler", "variance_type": "learned_range"}, "predicts its own variance"),
        ({"_class_name": "DPMSolverMultistepScheduler", "variance_type": "learned"}, "predicts its own variance"),
        ({"_class_name": "DDPMScheduler", "variance_type": "fixed_large_log"}, "variance_type 'fixed_large_log'"),
        ({"_class_name": "DDPMScheduler", "variance_type": ["x"]}, "variance_type"),
        ({"_class_name": "DDIMScheduler", "thresholding": True}, "thresholding"),
        ({"_class_name": "DDIMScheduler", "thresholding": "yes"}, "thresholding must be true or false"),
        ({"_class_name": "DDIMScheduler", "rescale_betas_zero_snr": True}, "zero terminal SNR"),
        ({"_class_name": "EulerDiscreteScheduler", "timestep_type": "continuous"}, "timestep_type"),
        ({"_class_name": "UniPCMultistepScheduler", "use_flow_sigmas": True}, "flow-matching"),
        ({"_class_name": "DDIMScheduler", "prediction_type": "flow_prediction"}, "prediction_type 'flow_prediction'"),
        ({"_class_name": "DDIMScheduler", "timestep_spacing": "karras"}, "timestep_spacing 'karras'"),
        ({"_class_name": "DDIMScheduler", "num_train_timesteps": 0}, "num_train_timesteps must be an integer"),
        ({"_class_name": "DDIMScheduler", "num_train_timesteps": 10001}, "from 1 to 10000"),
        ({"_class_name": "DDIMScheduler", "num_train_timesteps": 1000.0}, "num_train_timesteps"),
        ({"_class_name": "DDIMScheduler", "num_train_timesteps": True}, "num_train_timesteps"),
        ({"_class_name": "DDIMScheduler", "beta_start": 0}, "beta_start must be a number between 0 and 1"),
        ({"_class_name": "DDIMScheduler", "beta_end": 1.5}, "beta_end"),
        ({"_class_name": "DDIMScheduler", "beta_end": float("nan")}, "beta_end"),
        ({"_class_name": "DDIMScheduler", "beta_start": "0.1"}, "beta_start"),
        ({"_class_name": "DDIMScheduler", "beta_start": 0.03, "beta_end": 0.02}, "beta_start <= beta_end"),
        ({"_class_name": "DDIMScheduler", "clip_sample_range": -1}, "clip_sample_range"),
        ({"_class_name": "DDIMScheduler", "clip_sample_range": float("inf")}, "clip_sample_range"),
        ({"_class_name": "DDIMScheduler", "steps_offset": 1000}, "steps_offset must be an integer from 0 to 999"),
        ({"_class_name": "DDIMScheduler", "set_alpha_to_one": None}, "set_alpha_to_one"),
        ({"_class_name": "DDIMScheduler", "num_train_timesteps": 2, "trained_betas": [0.1]}, "trained_betas"),
        ({"_class_name": "DDIMScheduler", "num_train_timesteps": 2, "trained_betas": [0.1, 1.0]}, "trained_betas"),
        ({"_class_name": "DDIMScheduler", "num_train_timesteps": 1, "trained_betas": "0.1"}, "trained_betas"),
    ],
)
def test_unsupported_or_unreadable_configs_are_refused(config: Any, match: str) -> None:
    with pytest.raises(StudioError, match=match) as caught:
        scheduler_from_diffusers(config)
    message = str(caught.value)
    assert "\n" not in message and "Studio loads DDPMScheduler and DDIMScheduler" in message


def test_export_refusals() -> None:
    with pytest.raises(ValueError, match="sampler"):
        scheduler_to_diffusers(DdimConfig().to_dict(), "euler")
    with pytest.raises(StudioError, match="cannot be exported: unknown scheduler setting 'bogus'"):
        scheduler_to_diffusers({"bogus": 1}, "ddim")
    with pytest.raises(StudioError, match="cannot be exported: beta_schedule"):
        scheduler_to_diffusers({"beta_schedule": "squaredcos_cap_v2"}, "ddim")
