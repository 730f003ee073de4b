"""Noise schedules and the configuration the DDPM and DDIM schedulers share (numpy only).

Papers cited by equation number:
- DDPM: Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", 2020 (arXiv 2006.11239).
- Improved DDPM: Nichol, Dhariwal, "Improved Denoising Diffusion Probabilistic Models", 2021 (arXiv 2102.09672).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self

import numpy as np

BETA_SCHEDULES = ("linear", "cosine")
PREDICTION_TYPES = ("epsilon",)
# Improved DDPM clips betas below 1 so that the last steps of the cosine schedule stay invertible.
MAX_BETA = 0.999
# Improved DDPM's offset s: keeps beta_1 from being vanishingly small near t = 0.
COSINE_OFFSET = 0.008


def linear_betas(num_train_timesteps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """DDPM's schedule: betas evenly spaced from beta_start to beta_end (section 4: 1e-4 to 0.02 for T = 1000)."""
    return np.linspace(beta_start, beta_end, num_train_timesteps, dtype=np.float64)


def cosine_betas(num_train_timesteps: int, max_beta: float = MAX_BETA) -> np.ndarray:
    """Improved DDPM's cosine schedule (diffusers' "squaredcos_cap_v2").

    Eq. (17): alpha_bar(t) = f(t) / f(0), f(t) = cos(((t / T + s) / (1 + s)) * pi / 2) ** 2;
    beta_t = 1 - alpha_bar(t) / alpha_bar(t - 1), clipped to max_beta.
    """

    def squared_cosine(fraction: float) -> float:
        return math.cos((fraction + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2

    # f(0) cancels in the ratio alpha_bar(t) / alpha_bar(t - 1), so it is never computed.
    betas = [
        min(1 - squared_cosine((i + 1) / num_train_timesteps) / squared_cosine(i / num_train_timesteps), max_beta)
        for i in range(num_train_timesteps)
    ]
    return np.asarray(betas, dtype=np.float64)


@dataclass(frozen=True)
class SchedulerConfig:
    """What fixes a scheduler's maths; saved as JSON beside a model (diffusers' defaults, cosine optional).

    Timesteps are spaced "leading" (diffusers' default) with no offset: for n inference steps,
    t = k * (T // n) for k = n - 1 ... 0.
    """

    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 0.0001  # linear schedule only
    beta_end: float = 0.02  # linear schedule only
    clip_sample: bool = True  # clip the predicted x_0 to [-clip_sample_range, clip_sample_range]
    clip_sample_range: float = 1.0
    prediction_type: str = "epsilon"

    def __post_init__(self) -> None:
        if isinstance(self.num_train_timesteps, bool) or not isinstance(self.num_train_timesteps, int):
            raise ValueError(f"num_train_timesteps must be an int, not {self.num_train_timesteps!r}")
        if self.num_train_timesteps < 1:
            raise ValueError(f"num_train_timesteps must be at least 1, not {self.num_train_timesteps}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"beta_schedule must be one of {', '.join(BETA_SCHEDULES)}, not {self.beta_schedule!r}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {', '.join(PREDICTION_TYPES)}")
        if self.beta_schedule == "linear" and not 0 < self.beta_start <= self.beta_end < 1:
            raise ValueError(
                f"linear betas need 0 < beta_start <= beta_end < 1, not {self.beta_start} and {self.beta_end}"
            )
        if not self.clip_sample_range > 0:
            raise ValueError(f"clip_sample_range must be positive, not {self.clip_sample_range}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The config a `to_dict()` wrote; unknown keys are refused so a typo never passes silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown scheduler setting '{unknown[0]}': choose from {', '.join(sorted(known))}")
        return cls(**data)

    def betas(self) -> np.ndarray:
        """The float64 beta_t for t = 0 ... T - 1 (the papers' t = 1 ... T)."""
        if self.beta_schedule == "cosine":
            return cosine_betas(self.num_train_timesteps)
        return linear_betas(self.num_train_timesteps, self.beta_start, self.beta_end)


class NoiseSchedule:
    """The forward process shared by DDPM and DDIM: betas, alpha_bar, timesteps and `add_noise`."""

    config_class: ClassVar[type[SchedulerConfig]] = SchedulerConfig

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        # float64 throughout: float32 cumulative products drift by ~1e-7 over 1000 steps, and the
        # torch and ONNX paths both read these same tables, so the extra precision costs nothing.
        self.betas = config.betas()
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)  # alpha_bar_t = prod_{s <= t} (1 - beta_s)
        # Until set_timesteps is called, the chain visits every training timestep.
        self.num_inference_steps = config.num_train_timesteps
        self.timesteps = np.arange(config.num_train_timesteps, dtype=np.int64)[::-1].copy()

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict."""
        return self.config.to_dict()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """A scheduler from a dict that `to_dict()` wrote."""
        return cls(cls.config_class.from_dict(data))

    def set_timesteps(self, num_inference_steps: int) -> np.ndarray:
        """Choose the descending int64 timesteps to sample with ("leading" spacing); returns them."""
        total = self.config.num_train_timesteps
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int | np.integer):
            raise ValueError(f"num_inference_steps must be an int, not {num_inference_steps!r}")
        if not 1 <= num_inference_steps <= total:
            raise ValueError(f"num_inference_steps must be between 1 and {total}, not {num_inference_steps}")
        self.num_inference_steps = int(num_inference_steps)
        step_ratio = total // self.num_inference_steps
        self.timesteps = (np.arange(self.num_inference_steps, dtype=np.int64) * step_ratio)[::-1].copy()
        return self.timesteps

    def add_noise(self, original: np.ndarray, noise: np.ndarray, timesteps: np.ndarray | int) -> np.ndarray:
        """The forward process in one jump, DDPM Eq. (4): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.

        `timesteps` is one timestep or one per sample (leading axis); the result has `original`'s dtype.
        """
        alpha_bar = self.alphas_cumprod[np.asarray(timesteps, dtype=np.int64)]
        # One coefficient per sample, broadcast over the remaining axes.
        alpha_bar = alpha_bar.reshape(alpha_bar.shape + (1,) * (original.ndim - alpha_bar.ndim))
        noisy = np.sqrt(alpha_bar) * original + np.sqrt(1.0 - alpha_bar) * noise
        return noisy.astype(original.dtype, copy=False)

    def predict_original(self, model_output: np.ndarray, timestep: int, sample: np.ndarray) -> np.ndarray:
        """x_0 from x_t and the predicted noise, DDPM Eq. (15) (DDIM Eq. (9)), clipped if the config says so."""
        alpha_bar_t = float(self.alphas_cumprod[timestep])
        # Python floats keep float32 samples float32 (numpy's weak scalar promotion).
        original = (sample - math.sqrt(1.0 - alpha_bar_t) * model_output) / math.sqrt(alpha_bar_t)
        if self.config.clip_sample:
            original = np.clip(original, -self.config.clip_sample_range, self.config.clip_sample_range)
        return original

    def _check_timestep(self, timestep: int) -> int:
        timestep = int(timestep)
        if not 0 <= timestep < self.config.num_train_timesteps:
            raise ValueError(f"timestep {timestep} is outside 0 ... {self.config.num_train_timesteps - 1}")
        return timestep
