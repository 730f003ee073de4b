"""DPM-Solver++(2M): pinned against diffusers' DPMSolverMultistepScheduler, its config mapping, and the families.

As in test_scheduler_configs.py, both schedulers see the same fake network (a deterministic function of the
sample and t) on float32 arrays. diffusers keeps float32 sigma tables: the chains are run once with them (a
small drift) and once with Studio's float64 noise levels put in their place, which checks the formulas.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from studio.engine.families.diffusion.pipeline import scheduler_for
from studio.engine.families.registry import family_class
from studio.engine.schedulers import DpmSolverScheduler, SchedulerConfig, scheduler_from_diffusers
from studio.errors import StudioError
from studio.store.database import Store
from tests.engine.test_scheduler_configs import SHAPE, FakeNetwork

TOLERANCE = 1e-5  # absolute, on samples of magnitude ~1
# Drift when diffusers steps with its own float32 sigmas (worst: cosine, epsilon, few steps, where x_0 =
# (x_t - sigma eps) / alpha divides by alpha_999 ~ 1e-4 on the first step).
FLOAT32_TABLE_DRIFT = 2e-3
DIFFUSERS_SCHEDULES = {
    "linear": {},
    "scaled_linear": {"beta_start": 0.00085, "beta_end": 0.012},
    "squaredcos_cap_v2": {},
}
# diffusers' DPM-Solver calls numpy on a torch tensor, which numpy 2 warns about on every set_timesteps.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
DPM = {"_class_name": "DPMSolverMultistepScheduler", "_diffusers_version": "0.42.1"}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; on a busy machine, several spin-wait on each other for seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _diffusers(config: dict[str, Any]) -> Any:
    diffusers = pytest.importorskip("diffusers")
    return diffusers.DPMSolverMultistepScheduler.from_config(config)


def _run_chains(ours: DpmSolverScheduler, theirs: Any, steps: int, same_tables: bool) -> tuple[float, np.ndarray]:
    """Both schedulers from the same x_T with the same network; (worst difference over the chain, our x_0)."""
    network = FakeNetwork(ours.alphas_cumprod, ours.config.prediction_type)
    ours.set_timesteps(steps)
    theirs.set_timesteps(steps)
    np.testing.assert_array_equal(ours.timesteps, theirs.timesteps.numpy())
    if same_tables:
        theirs.sigmas = torch.from_numpy(np.append(ours.noise_levels[:-1] / ours.signal_levels[:-1], 0.0))
    sample = np.random.default_rng(11).standard_normal(SHAPE, dtype=np.float32)
    theirs_sample = torch.from_numpy(sample.copy())
    worst = 0.0
    for timestep in (int(t) for t in ours.timesteps):
        sample = ours.step(network(sample, timestep), timestep, sample)
        output = torch.from_numpy(network(theirs_sample.numpy(), timestep))
        theirs_sample = theirs.step(output, timestep, theirs_sample).prev_sample
        assert sample.dtype == np.float32 and theirs_sample.dtype == torch.float32
        worst = max(worst, float(np.abs(sample - theirs_sample.numpy()).max()))
    return worst, sample


CHAINS = [
    (schedule, prediction, steps)
    for schedule in DIFFUSERS_SCHEDULES
    for prediction in ("epsilon", "v_prediction")
    for steps in (10, 20, 50)
]
# Every spacing and the x_0 prediction type, on the way through scheduler_from_diffusers and scheduler_for.
VARIANTS: list[tuple[str, dict[str, Any], int]] = [
    ("sample-linspace", {"prediction_type": "sample"}, 15),
    (
        "eps-leading-offset-scaled",
        {"timestep_spacing": "leading", "steps_offset": 1, "beta_schedule": "scaled_linear", "beta_end": 0.012},
        25,
    ),
    (
        "vpred-trailing-cosine",
        {"timestep_spacing": "trailing", "prediction_type": "v_prediction", "beta_schedule": "squaredcos_cap_v2"},
        12,
    ),
    ("eps-one-step", {}, 1),
    ("eps-two-steps", {}, 2),
    ("trained-betas", {"num_train_timesteps": 100, "trained_betas": np.geomspace(1e-3, 0.05, 100).tolist()}, 30),
]


@pytest.mark.parametrize(("schedule", "prediction", "steps"), CHAINS, ids=["-".join(map(str, c)) for c in CHAINS])
def test_chains_match_diffusers(schedule: str, prediction: str, steps: int) -> None:
    source = {**DPM, "beta_schedule": schedule, "prediction_type": prediction, **DIFFUSERS_SCHEDULES[schedule]}
    converted = scheduler_from_diffusers(source)
    assert (converted.native_sampler, converted.note) == ("dpmpp2m", None)
    assert converted.config["timestep_spacing"] == "linspace"  # the class's default, not DDIM's
    drift, _ = _run_chains(
        DpmSolverScheduler.from_dict(_without_ddim_keys(converted.config)), _diffusers(source), steps, False
    )
    assert drift < FLOAT32_TABLE_DRIFT
    worst, final = _run_chains(
        DpmSolverScheduler.from_dict(_without_ddim_keys(converted.config)), _diffusers(source), steps, True
    )
    assert worst <= TOLERANCE
    assert np.isfinite(final).all() and np.abs(final).max() < 3


@pytest.mark.parametrize(("extra", "steps"), [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_variants_match_diffusers(extra: dict[str, Any], steps: int) -> None:
    source = {**DPM, **extra}
    converted = scheduler_from_diffusers(source)
    assert converted.native_sampler == "dpmpp2m"
    ours = scheduler_for(converted.config, "dpmpp2m")
    assert isinstance(ours, DpmSolverScheduler)
    worst, final = _run_chains(ours, _diffusers(source), steps, True)
    assert worst <= TOLERANCE
    assert np.isfinite(final).all()


def _without_ddim_keys(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "set_alpha_to_one"}


def test_scheduler_api_and_history() -> None:
    scheduler = DpmSolverScheduler(SchedulerConfig(num_train_timesteps=100, timestep_spacing="linspace"))
    chain = scheduler.set_timesteps(4).tolist()
    assert chain == [99, 74, 50, 25]  # round(k * 99 / 4) for k = 4 ... 1: t = 0 is not visited
    assert [scheduler.previous_timestep(t) for t in chain] == [74, 50, 25, -1]
    zeros = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(ValueError, match="expected timestep 99"):
        scheduler.step(zeros, 74, zeros)
    for t in chain:
        out = scheduler.step(zeros, t, zeros + 0.5)
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="chain is finished"):
        scheduler.step(zeros, 25, zeros)
    scheduler.set_timesteps(4)  # a new chain forgets the old one's history
    assert scheduler.step_index == 0
    leading = DpmSolverScheduler(SchedulerConfig(num_train_timesteps=100, steps_offset=1))
    assert leading.set_timesteps(4).tolist() == [81, 61, 41, 21]  # k * (100 // 5) + 1
    with pytest.raises(ValueError, match="past the last training timestep"):
        leading.set_timesteps(99)
    with pytest.raises(ValueError, match="between 1 and 100"):
        leading.set_timesteps(0)


def test_as_many_steps_as_timesteps_stays_finite() -> None:
    """linspace then repeats a timestep (h = 0), where diffusers divides by zero; Studio takes a first-order step."""
    scheduler = DpmSolverScheduler(SchedulerConfig(num_train_timesteps=100, timestep_spacing="linspace"))
    chain = scheduler.set_timesteps(100)
    assert len(set(chain.tolist())) < len(chain)
    network = FakeNetwork(scheduler.alphas_cumprod, "epsilon")
    sample = np.random.default_rng(1).standard_normal(SHAPE, dtype=np.float32)
    for t in (int(t) for t in chain):
        sample = scheduler.step(network(sample, t), t, sample)
    assert np.isfinite(sample).all() and np.abs(sample - network.target).max() < 0.2


def test_clip_sample_is_ignored_as_in_diffusers() -> None:
    clipped, unclipped = (DpmSolverScheduler(SchedulerConfig(clip_sample=c)) for c in (True, False))
    big = np.full((1, 1, 2, 2), 5.0, np.float32)
    results = []
    for scheduler in (clipped, unclipped):
        scheduler.set_timesteps(1)
        results.append(scheduler.step(np.zeros_like(big), int(scheduler.timesteps[0]), big))
    np.testing.assert_array_equal(results[0], results[1])


# --- the diffusers config mapping -----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "note"),
    [
        ({"algorithm_type": "dpmsolver"}, "algorithm_type=dpmsolver"),
        ({"algorithm_type": "sde-dpmsolver++"}, "algorithm_type=sde-dpmsolver++"),
        ({"algorithm_type": "deis", "final_sigmas_type": "sigma_min"}, "algorithm_type=deis"),
        ({"solver_order": 3}, "solver_order=3"),
        ({"solver_order": 2.0}, "solver_order=2.0"),
        ({"solver_type": "heun"}, "solver_type=heun"),
        ({"final_sigmas_type": "sigma_min"}, "final_sigmas_type=sigma_min"),
        ({"use_karras_sigmas": True}, "use_karras_sigmas=True"),
        ({"use_lu_lambdas": True}, "use_lu_lambdas=True"),
        ({"lambda_min_clipped": -5.1}, "lambda_min_clipped=-5.1"),
        ({"use_karras_sigmas": [1]}, "use_karras_sigmas=[1]"),
    ],
)
def test_other_dpm_solver_options_fall_back_to_ddim(options: dict[str, Any], note: str) -> None:
    converted = scheduler_from_diffusers({**DPM, **options})
    assert converted.native_sampler == "ddim" and converted.source_class == "DPMSolverMultistepScheduler"
    assert converted.note == f"DPMSolverMultistepScheduler with {note} is not implemented in Studio: sampled with DDIM"
    scheduler_for(converted.config, "ddim")


def test_dpm_solver_configs_that_map_to_dpmpp2m() -> None:
    # Stable Diffusion 2 style file, as diffusers writes it (lambda_min_clipped as JSON's -Infinity).
    written = json.dumps({**DPM, "lambda_min_clipped": -math.inf, "lower_order_final": False, "euler_at_final": True})
    for source in (
        DPM,
        {**DPM, "solver_type": "bh2"},  # diffusers maps it to midpoint
        {**DPM, "timestep_spacing": "leading", "steps_offset": 1, "beta_schedule": "scaled_linear"},
        json.loads(written),
    ):
        converted = scheduler_from_diffusers(source)
        assert (converted.native_sampler, converted.note) == ("dpmpp2m", None), source
        ours = scheduler_for(converted.config, "dpmpp2m")
        theirs = _diffusers(source)
        for steps in (1, 7, 25):
            theirs.set_timesteps(steps)
            np.testing.assert_array_equal(ours.set_timesteps(steps), theirs.timesteps.numpy())
    assert scheduler_from_diffusers({**DPM, "timestep_spacing": "trailing"}).config["timestep_spacing"] == "trailing"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"thresholding": True}, "thresholding"),
        ({"variance_type": "learned_range"}, "predicts its own variance"),
        ({"use_flow_sigmas": True}, "flow-matching"),
        ({"prediction_type": "flow_prediction"}, "prediction_type 'flow_prediction'"),
        ({"timestep_spacing": "karras"}, "timestep_spacing 'karras'"),
    ],
)
def test_unsupported_dpm_solver_files_are_refused(options: dict[str, Any], match: str) -> None:
    with pytest.raises(StudioError, match=match) as caught:
        scheduler_from_diffusers({**DPM, **options})
    assert "\n" not in str(caught.value)


def test_scheduler_for_names_the_samplers() -> None:
    with pytest.raises(StudioError, match="choose ddim, ddpm or dpmpp2m"):
        scheduler_for(SchedulerConfig().to_dict(), "euler")


# --- the families ---------------------------------------------------------------------------

TINY = {"width": 8, "timesteps": 100, "steps": 10, "sampler": "dpmpp2m"}
TINY_LATENT = {"width": 8, "autoencoder_width": 8, "latent_channels": 2, "timesteps": 100, "steps": 10}


def _family(name: str, settings: dict[str, Any]) -> Any:
    torch.manual_seed(0)
    return family_class(name)(8, 1, settings)


def test_diffusion_family_samples_deterministically_in_any_batch() -> None:
    family = _family("diffusion", TINY)
    assert family.hparams["sampler"] == "dpmpp2m"
    together = family.sample([3, 5, 7], {})
    assert together.shape == (3, 8, 8, 1) and together.dtype == np.uint8
    np.testing.assert_array_equal(family.sample([5], {}), together[1:2])
    np.testing.assert_array_equal(family.sample([7, 3], {}), together[[2, 0]])
    assert not np.array_equal(together[0], together[1])
    # eta is DDIM's alone: dpmpp2m ignores it, and stays deterministic.
    np.testing.assert_array_equal(family.sample([3], {"eta": 1.0}), together[:1])
    assert not np.array_equal(family.sample([3], {"sampler": "ddim"}), together[:1])


def test_diffusion_family_counts_one_step_per_network_call() -> None:
    pipeline = _family("diffusion", TINY).pipeline()
    seen: list[tuple[int, int]] = []
    pipeline.on_step = lambda done, total: seen.append((done, total))
    pipeline.sample([1, 2], {"steps": 7})
    assert seen == [(k, 7) for k in range(1, 8)]
    assert pipeline.denoise_steps(pipeline.sampling_options({"steps": 7})) == 7


def test_decode_is_deterministic_and_inpainting_takes_ddim_steps() -> None:
    family = _family("diffusion", TINY)
    latents = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    first = family.generate(latents, {"eta": 0.5})
    np.testing.assert_array_equal(first, family.generate(latents[::-1].copy(), {})[::-1])
    images = np.zeros((1, 8, 8, 1), np.uint8)
    known = np.zeros((1, 8, 8, 1), np.uint8)
    known[:, :4] = 1
    # RePaint repeats steps, which DPM-Solver++'s history cannot follow: it runs on deterministic DDIM.
    completed = family.complete(images, known, [0], {"resample": 2})
    np.testing.assert_array_equal(completed, family.complete(images, known, [0], {"sampler": "ddim", "resample": 2}))
    np.testing.assert_array_equal(completed[:, :4], images[:, :4])
    with pytest.raises(StudioError, match="inpainting needs sampler ddim or ddpm"):
        family.pipeline().denoise(
            latents[:1], [], family.pipeline().sampling_options({}), known=latents[:1], keep=latents[:1]
        )


def test_latent_diffusion_family_samples_with_dpmpp2m(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        family = _family("latent_diffusion", {**TINY_LATENT, "sampler": "dpmpp2m"})
    together = family.sample([4, 9], {})
    assert together.shape == (2, 8, 8, 1)
    np.testing.assert_array_equal(family.sample([9], {}), together[1:])
    assert family.complete(np.zeros((1, 8, 8, 1), np.uint8), np.ones((1, 8, 8, 1), np.uint8), [0], {}).shape == (
        1,
        8,
        8,
        1,
    )


def test_a_dpm_solver_model_exports_to_diffusers_and_imports_back_the_same(store: Store, tmp_path: Path) -> None:
    """A pipeline saved with DPMSolverMultistepScheduler imports as native dpmpp2m, exports as a DDPMPipeline
    with that scheduler (which diffusers loads), and imports back with the same scheduler settings."""
    from diffusers import DDPMPipeline, DPMSolverMultistepScheduler, UNet2DModel

    from studio.engine.diffusers_export import export_diffusers
    from studio.engine.importers import import_any
    from studio.engine.jobs import run_job

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=[8, 16],
        layers_per_block=1,
        down_block_types=["DownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "UpBlock2D"],
        norm_num_groups=8,
    )
    scheduler = DPMSolverMultistepScheduler(num_train_timesteps=100, algorithm_type="dpmsolver++", solver_order=2)
    DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(tmp_path / "source")
    first = import_any(store, tmp_path / "source", "first")
    assert first.hyperparameters["sampler"] == "dpmpp2m"
    run_job(export_diffusers(store, "first", tmp_path / "out"))
    loaded = DDPMPipeline.from_pretrained(tmp_path / "out")
    assert isinstance(loaded.scheduler, DPMSolverMultistepScheduler)
    assert loaded.scheduler.config.algorithm_type == "dpmsolver++" and loaded.scheduler.config.solver_order == 2
    second = import_any(store, tmp_path / "out", "second")
    assert second.hyperparameters["sampler"] == "dpmpp2m"
    assert second.architecture["scheduler"] == first.architecture["scheduler"]
