"""Convert diffusers' scheduler_config.json to Studio's scheduler settings and back (numpy only, no diffusers).

A missing key takes the value diffusers' `DDIMScheduler.from_config(config)` would give it (DDIM's and
DDPM's defaults agree), so Studio samples as diffusers does once the scheduler is swapped for DDIM; a
DPMSolverMultistepScheduler file takes that class's defaults (its timestep_spacing is "linspace").
The file is untrusted: every value read is type- and range-checked, and a bad one is a one-line StudioError.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from studio.engine.schedulers.ddim import DdimConfig
from studio.errors import StudioError

# Studio implements these two solvers exactly; the value is the Studio sampler that matches.
NATIVE_CLASSES = {"DDPMScheduler": "ddpm", "DDIMScheduler": "ddim"}
# Studio's "dpmpp2m" is this class with the options below (its defaults); other options are sampled with DDIM.
DPM_SOLVER_CLASS = "DPMSolverMultistepScheduler"
# (key, diffusers' default, the values that give DPM-Solver++(2M)): diffusers itself maps solver_type
# "logrho"/"bh1"/"bh2" to "midpoint". lower_order_final and euler_at_final change nothing here: with
# final_sigmas_type "zero" the last step is first order anyway.
DPM_SOLVER_OPTIONS: tuple[tuple[str, object, tuple[object, ...]], ...] = (
    ("algorithm_type", "dpmsolver++", ("dpmsolver++",)),
    ("solver_order", 2, (2,)),
    ("solver_type", "midpoint", ("midpoint", "logrho", "bh1", "bh2")),
    ("final_sigmas_type", "zero", ("zero",)),
    ("use_karras_sigmas", False, (False,)),
    ("use_exponential_sigmas", False, (False,)),
    ("use_beta_sigmas", False, (False,)),
    ("use_lu_lambdas", False, (False,)),
    ("use_dynamic_shifting", False, (False,)),
    ("lambda_min_clipped", -math.inf, (-math.inf,)),
)
# Solvers over the same discrete beta schedule that Studio does not implement: sampled with DDIM instead.
SUBSTITUTED_CLASSES = (
    "PNDMScheduler",
    "LMSDiscreteScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",
    "KDPM2DiscreteScheduler",
    "KDPM2AncestralDiscreteScheduler",
    "DPMSolverSinglestepScheduler",
    "DPMSolverSDEScheduler",
    "DEISMultistepScheduler",
    "UniPCMultistepScheduler",
    "DDIMInverseScheduler",
)
# diffusers' spelling of Studio's beta schedule names.
DIFFUSERS_BETA_SCHEDULES = {"linear": "linear", "scaled_linear": "scaled_linear", "squaredcos_cap_v2": "cosine"}
STUDIO_BETA_SCHEDULES = {studio: theirs for theirs, studio in DIFFUSERS_BETA_SCHEDULES.items()}
# diffusers' DDPM variance types Studio samples with, as Studio's names. "fixed_small_log" draws with
# exp(0.5 * log(beta-tilde)) = sqrt(beta-tilde), the same standard deviation as "fixed_small".
VARIANCE_TYPES = {"fixed_small": "fixed_small", "fixed_small_log": "fixed_small", "fixed_large": "fixed_large"}
MAX_TRAIN_TIMESTEPS = 10000
# Written into exported files; every key Studio writes exists in diffusers since this version.
DIFFUSERS_VERSION = "0.30.0"
SUPPORTED = (
    "Studio loads DDPMScheduler and DDIMScheduler configs, DPMSolverMultistepScheduler's DPM-Solver++(2M)"
    " (and samples PNDM, Euler, other DPM-Solvers etc. with DDIM)"
)


@dataclass(frozen=True)
class DiffusersScheduler:
    """A diffusers scheduler config as Studio's: the settings, the sampler that matches, and what differs."""

    config: dict[str, Any]  # DdimConfig.to_dict(): DdpmScheduler.from_dict takes it less "set_alpha_to_one"
    native_sampler: str  # "ddpm", "ddim" or "dpmpp2m": the Studio sampler closest to the source class's solver
    source_class: str  # the file's "_class_name"
    note: str | None  # None when Studio samples exactly as the source class; else one line saying how it differs


def _fail(problem: str) -> StudioError:
    return StudioError(f"scheduler config: {problem}; {SUPPORTED}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _read_int(config: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(f"{key} must be an integer from {low} to {high}, not {value!r}")
    return value


def _read_fraction(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    if not (_is_number(value) and 0 < value < 1):
        raise _fail(f"{key} must be a number between 0 and 1, not {value!r}")
    return float(value)


def _read_positive(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    if not (_is_number(value) and value > 0):
        raise _fail(f"{key} must be a positive number, not {value!r}")
    return float(value)


def _read_bool(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise _fail(f"{key} must be true or false, not {value!r}")
    return value


def _read_choice(config: Mapping[str, Any], key: str, default: str, choices: Mapping[str, str]) -> str:
    value = config.get(key, default)
    if not isinstance(value, str) or value not in choices:
        raise _fail(f"{key} {value!r} is not supported (Studio reads {', '.join(choices)})")
    return choices[value]


def _read_trained_betas(config: Mapping[str, Any], count: int) -> list[float] | None:
    value = config.get("trained_betas")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != count:
        raise _fail(f"trained_betas must be a list of num_train_timesteps = {count} numbers")
    if not all(_is_number(beta) and 0 < beta < 1 for beta in value):
        raise _fail("trained_betas must all be numbers between 0 and 1")
    return [float(beta) for beta in value]


def _refuse_unsupported_features(config: Mapping[str, Any]) -> None:
    """Settings that change what the network was trained on or how x_0 is treated, which Studio lacks."""
    if _read_bool(config, "thresholding", False):
        raise _fail("dynamic thresholding (thresholding: true) is not supported")
    if _read_bool(config, "rescale_betas_zero_snr", False):
        raise _fail("zero terminal SNR betas (rescale_betas_zero_snr: true) are not supported")
    if _read_bool(config, "use_flow_sigmas", False):
        raise _fail("flow-matching sigmas (use_flow_sigmas: true) are not supported")
    if config.get("timestep_type", "discrete") != "discrete":
        raise _fail(f"timestep_type {config.get('timestep_type')!r} is not supported, only 'discrete'")
    variance = config.get("variance_type")
    if variance is not None and not (isinstance(variance, str) and variance in VARIANCE_TYPES):
        if variance in ("learned", "learned_range"):
            raise _fail(f"a network that predicts its own variance (variance_type {variance!r}) is not supported")
        raise _fail(f"variance_type {variance!r} is not supported (Studio reads {', '.join(VARIANCE_TYPES)})")


def _prediction_type(config: Mapping[str, Any]) -> str:
    # diffusers before 0.10 wrote predict_epsilon instead; false meant the network predicts x_0.
    legacy = "sample" if config.get("predict_epsilon") is False else "epsilon"
    return _read_choice(config, "prediction_type", legacy, {k: k for k in ("epsilon", "v_prediction", "sample")})


def _dpm_solver_difference(config: Mapping[str, Any]) -> str | None:
    """The first DPMSolverMultistepScheduler option that Studio's DPM-Solver++(2M) lacks, as "key=value"."""
    for key, default, accepted in DPM_SOLVER_OPTIONS:
        value = config.get(key, default)
        # bool is an int and 2.0 == 2 in Python: compare the type too, so that only JSON's own values match.
        if not any(type(value) is type(ok) and value == ok for ok in accepted):
            return f"{key}={str(value)[:40]}"
    return None


def scheduler_from_diffusers(config: Mapping[str, Any]) -> DiffusersScheduler:
    """Studio's scheduler settings for a diffusers scheduler_config.json dict (with "_class_name").

    DDPMScheduler and DDIMScheduler convert exactly (note None), and DPMSolverMultistepScheduler too when its
    options are DPM-Solver++(2M)'s (sampler "dpmpp2m"); other DPM-Solver options and the solvers in
    SUBSTITUTED_CLASSES keep their betas and are sampled with DDIM (a note says so). Anything else is a
    one-line StudioError.
    """
    if not isinstance(config, Mapping):
        raise _fail(f"expected a JSON object, not {type(config).__name__}")
    class_name = config.get("_class_name")
    if not isinstance(class_name, str):
        raise _fail("it has no _class_name naming the scheduler")
    if class_name not in NATIVE_CLASSES and class_name not in SUBSTITUTED_CLASSES and class_name != DPM_SOLVER_CLASS:
        raise _fail(f"{class_name[:80]!r} is not supported")
    _refuse_unsupported_features(config)
    count = _read_int(config, "num_train_timesteps", 1000, 1, MAX_TRAIN_TIMESTEPS)
    spacing = "linspace" if class_name == DPM_SOLVER_CLASS else "leading"  # the class's own default
    settings: dict[str, Any] = {
        "num_train_timesteps": count,
        "beta_schedule": _read_choice(config, "beta_schedule", "linear", DIFFUSERS_BETA_SCHEDULES),
        "beta_start": _read_fraction(config, "beta_start", 0.0001),
        "beta_end": _read_fraction(config, "beta_end", 0.02),
        "trained_betas": _read_trained_betas(config, count),
        "clip_sample": _read_bool(config, "clip_sample", True),
        "clip_sample_range": _read_positive(config, "clip_sample_range", 1.0),
        "prediction_type": _prediction_type(config),
        "timestep_spacing": _read_choice(
            config, "timestep_spacing", spacing, {k: k for k in ("leading", "trailing", "linspace")}
        ),
        "steps_offset": _read_int(config, "steps_offset", 0, 0, count - 1),
        "variance_type": VARIANCE_TYPES[config.get("variance_type") or "fixed_small"],
        "set_alpha_to_one": _read_bool(config, "set_alpha_to_one", True),
    }
    try:
        studio_config = DdimConfig(**settings)
    except ValueError as error:  # combinations, e.g. beta_start above beta_end
        raise _fail(str(error)) from None
    if class_name == DPM_SOLVER_CLASS:
        difference = _dpm_solver_difference(config)
        if difference is None:
            return DiffusersScheduler(studio_config.to_dict(), "dpmpp2m", class_name, None)
        return DiffusersScheduler(
            studio_config.to_dict(),
            "ddim",
            class_name,
            f"{class_name} with {difference} is not implemented in Studio: sampled with DDIM",
        )
    native = NATIVE_CLASSES.get(class_name)
    note = None if native else f"{class_name} is not implemented in Studio: sampled with DDIM"
    return DiffusersScheduler(studio_config.to_dict(), native or "ddim", class_name, note)


def scheduler_to_diffusers(config: Mapping[str, Any], sampler: str) -> dict[str, Any]:
    """The scheduler_config.json that loads in diffusers as a scheduler equal to Studio's `config` for `sampler`.

    `sampler` ("ddpm", "ddim" or "dpmpp2m") picks DDPMScheduler, DDIMScheduler or DPMSolverMultistepScheduler.
    The first two files carry set_alpha_to_one and variance_type (diffusers ignores the other class's key
    without a warning), so a round trip is lossless; the third carries DPM-Solver++(2M)'s own options.
    """
    if sampler not in ("ddpm", "ddim", "dpmpp2m"):
        raise ValueError(f"sampler must be 'ddpm', 'ddim' or 'dpmpp2m', not {sampler!r}")
    try:
        settings = DdimConfig.from_dict(dict(config))
    except (TypeError, ValueError) as error:
        raise StudioError(f"the model's scheduler settings cannot be exported: {error}") from None
    if sampler == "dpmpp2m":  # DPM-Solver++(2M) with the options Studio implements, nothing else
        return {
            "_class_name": "DPMSolverMultistepScheduler",
            "_diffusers_version": DIFFUSERS_VERSION,
            "num_train_timesteps": settings.num_train_timesteps,
            "beta_schedule": STUDIO_BETA_SCHEDULES[settings.beta_schedule],
            "beta_start": float(settings.beta_start),
            "beta_end": float(settings.beta_end),
            "trained_betas": None if settings.trained_betas is None else list(settings.trained_betas),
            "prediction_type": settings.prediction_type,
            "timestep_spacing": settings.timestep_spacing,
            "steps_offset": settings.steps_offset,
            "algorithm_type": "dpmsolver++",
            "solver_order": 2,
            "solver_type": "midpoint",
            "lower_order_final": True,
            "final_sigmas_type": "zero",
            "use_karras_sigmas": False,
            "thresholding": False,
        }
    return {
        "_class_name": "DDPMScheduler" if sampler == "ddpm" else "DDIMScheduler",
        "_diffusers_version": DIFFUSERS_VERSION,
        "num_train_timesteps": settings.num_train_timesteps,
        "beta_schedule": STUDIO_BETA_SCHEDULES[settings.beta_schedule],
        "beta_start": float(settings.beta_start),
        "beta_end": float(settings.beta_end),
        "trained_betas": None if settings.trained_betas is None else list(settings.trained_betas),
        "clip_sample": settings.clip_sample,
        "clip_sample_range": float(settings.clip_sample_range),
        "prediction_type": settings.prediction_type,
        "timestep_spacing": settings.timestep_spacing,
        "steps_offset": settings.steps_offset,
        "set_alpha_to_one": settings.set_alpha_to_one,
        "variance_type": settings.variance_type,
        "thresholding": False,
        "rescale_betas_zero_snr": False,
    }
