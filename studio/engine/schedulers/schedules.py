"""Noise schedules and the configuration the DDPM and DDIM schedulers share (numpy only).

Papers cited by equation number:
- DDPM: Ho, Jain, Abbeel, "Denoising Diffusion Probabilistic Models", 2020 (arXiv 2006.11239).
- Improved DDPM: Nichol, Dhariwal, "Improved Denoising Diffusion Probabilistic Models", 2021 (arXiv 2102.09672).
- Latent diffusion: Rombach et al., "High-Resolution Image Synthesis with Latent Diffusion Models", 2022.
- v-prediction: Salimans, Ho, "Progressive Distillation for Fast Sampling of Diffusion Models", 2022 (arXiv 2202.00512).
- Timestep spacing: Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed", 2024 (arXiv 2305.08891).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self

import numpy as np

# "cosine" is diffusers' "squaredcos_cap_v2"; the diffusers conversion maps the name (diffusers_config.py).
BETA_SCHEDULES = ("linear", "scaled_linear", "cosine")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")
VARIANCE_TYPES = ("fixed_small", "fixed_large")  # DDPM only; DDIM ignores it
# Improved DDPM clips betas below 1 so that the last steps of the cosine schedule stay invertible.
MAX_BETA = 0.999
# Improved DDPM's offset s: keeps beta_1 from being vanishingly small near t = 0.
COSINE_OFFSET = 0.008


def linear_betas(num_train_timesteps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """DDPM's schedule: betas evenly spaced from beta_start to beta_end (section 4: 1e-4 to 0.02 for T = 1000)."""
    return np.linspace(beta_start, beta_end, num_train_timesteps, dtype=np.float64)


def scaled_linear_betas(num_train_timesteps: int, beta_start: float, beta_end: float) -> np.ndarray:
    """Latent diffusion's schedule: sqrt(beta) evenly spaced from sqrt(beta_start) to sqrt(beta_end)."""
    return np.linspace(math.sqrt(beta_start), math.sqrt(beta_end), num_train_timesteps, dtype=np.float64) ** 2


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


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


@dataclass(frozen=True)
class SchedulerConfig:
    """What fixes a scheduler's maths; saved as JSON beside a model (diffusers' names and defaults).

    The default timestep spacing is "leading" with no offset: for n inference steps, t = k * (T // n) for
    k = n - 1 ... 0. `trained_betas`, when given, replaces the named schedule (diffusers' meaning).
    """

    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 0.0001  # linear and scaled_linear schedules only
    beta_end: float = 0.02  # linear and scaled_linear schedules only
    clip_sample: bool = True  # clip the predicted x_0 to [-clip_sample_range, clip_sample_range]
    clip_sample_range: float = 1.0
    prediction_type: str = "epsilon"  # what the network predicts: the noise, v, or x_0 itself
    timestep_spacing: str = "leading"
    steps_offset: int = 0  # added to "leading" timesteps (Stable Diffusion uses 1); the other spacings ignore it
    variance_type: str = "fixed_small"  # DDPM's sigma_t^2: beta-tilde_t ("fixed_small") or beta_t ("fixed_large")
    trained_betas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.num_train_timesteps):
            raise ValueError(f"num_train_timesteps must be an int, not {self.num_train_timesteps!r}")
        if self.num_train_timesteps < 1:
            raise ValueError(f"num_train_timesteps must be at least 1, not {self.num_train_timesteps}")
        self._check_choice("beta_schedule", BETA_SCHEDULES)
        self._check_choice("prediction_type", PREDICTION_TYPES)
        self._check_choice("timestep_spacing", TIMESTEP_SPACINGS)
        self._check_choice("variance_type", VARIANCE_TYPES)
        if not (_is_number(self.beta_start) and _is_number(self.beta_end)):
            raise ValueError(f"beta_start and beta_end must be numbers, not {self.beta_start!r} and {self.beta_end!r}")
        if self.beta_schedule != "cosine" and not 0 < self.beta_start <= self.beta_end < 1:
            raise ValueError(
                f"{self.beta_schedule} betas need 0 < beta_start <= beta_end < 1,"
                f" not {self.beta_start} and {self.beta_end}"
            )
        if not isinstance(self.clip_sample, bool):
            raise ValueError(f"clip_sample must be true or false, not {self.clip_sample!r}")
        if not (_is_number(self.clip_sample_range) and 0 < self.clip_sample_range < math.inf):
            raise ValueError(f"clip_sample_range must be a positive number, not {self.clip_sample_range!r}")
        if not (_is_int(self.steps_offset) and 0 <= self.steps_offset < self.num_train_timesteps):
            raise ValueError(
                f"steps_offset must be an int from 0 to {self.num_train_timesteps - 1}, not {self.steps_offset!r}"
            )
        if self.trained_betas is not None:
            # Stored as a tuple of floats, so that the config stays hashable and a JSON list compares equal.
            values: object = self.trained_betas  # typed as a tuple, but JSON gives a list and callers anything
            if not isinstance(values, list | tuple) or not all(_is_number(b) for b in values):
                raise ValueError("trained_betas must be a list of numbers")
            betas = tuple(float(b) for b in values)
            if len(betas) != self.num_train_timesteps:
                raise ValueError(
                    f"trained_betas has {len(betas)} values, not num_train_timesteps = {self.num_train_timesteps}"
                )
            if not all(0 < b < 1 for b in betas):
                raise ValueError("trained_betas must all lie strictly between 0 and 1")
            object.__setattr__(self, "trained_betas", betas)

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        data = asdict(self)
        if self.trained_betas is not None:
            data["trained_betas"] = list(self.trained_betas)
        return data

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
        if self.trained_betas is not None:
            return np.asarray(self.trained_betas, dtype=np.float64)
        if self.beta_schedule == "cosine":
            return cosine_betas(self.num_train_timesteps)
        if self.beta_schedule == "scaled_linear":
            return scaled_linear_betas(self.num_train_timesteps, self.beta_start, self.beta_end)
        return linear_betas(self.num_train_timesteps, self.beta_start, self.beta_end)

    def timesteps(self, num_inference_steps: int) -> np.ndarray:
        """The descending int64 chain of n timesteps for this spacing, computed exactly as diffusers does.

        "leading": k * (T // n) + steps_offset; "trailing": round(T - k * T / n) - 1, which always starts
        at T - 1; "linspace": round(k * (T - 1) / (n - 1)), which starts at T - 1 and ends at 0.
        """
        total, count = self.num_train_timesteps, num_inference_steps
        if self.timestep_spacing == "linspace":
            chain = np.linspace(0, total - 1, count).round()[::-1].copy().astype(np.int64)
        elif self.timestep_spacing == "trailing":
            chain = np.round(np.arange(total, 0, -total / count)).astype(np.int64) - 1
        else:
            chain = (np.arange(0, count) * (total // count)).round()[::-1].copy().astype(np.int64)
            chain += self.steps_offset
        if chain[0] >= total:
            # diffusers would index past its tables here (e.g. T steps with steps_offset 1).
            raise ValueError(
                f"{count} steps with steps_offset {self.steps_offset} would start at timestep {int(chain[0])},"
                f" past the last training timestep {total - 1}: choose fewer steps"
            )
        return chain


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
        """Choose the descending int64 timesteps to sample with (the config's spacing); returns them."""
        total = self.config.num_train_timesteps
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int | np.integer):
            raise ValueError(f"num_inference_steps must be an int, not {num_inference_steps!r}")
        if not 1 <= num_inference_steps <= total:
            raise ValueError(f"num_inference_steps must be between 1 and {total}, not {num_inference_steps}")
        self.timesteps = self.config.timesteps(int(num_inference_steps))
        self.num_inference_steps = int(num_inference_steps)
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

    def predict_original_and_noise(
        self, model_output: np.ndarray, timestep: int, sample: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(x_0, epsilon) implied by the network's output at x_t; x_0 is clipped if the config says so.

        epsilon is computed from the unclipped x_0, as diffusers' DDIM does (its use_clipped_model_output=False).
        """
        alpha_bar_t = float(self.alphas_cumprod[timestep])
        # Python floats keep float32 samples float32 (numpy's weak scalar promotion).
        signal, noise_level = math.sqrt(alpha_bar_t), math.sqrt(1.0 - alpha_bar_t)
        if self.config.prediction_type == "epsilon":
            # DDPM Eq. (15), DDIM Eq. (9): x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t).
            original = (sample - noise_level * model_output) / signal
            noise = model_output
        elif self.config.prediction_type == "sample":
            original = model_output
            noise = (sample - signal * original) / noise_level
        else:
            # v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho, section 4), solved for x_0 and eps.
            original = signal * sample - noise_level * model_output
            noise = signal * model_output + noise_level * sample
        if self.config.clip_sample:
            original = np.clip(original, -self.config.clip_sample_range, self.config.clip_sample_range)
        return original, noise

    def predict_original(self, model_output: np.ndarray, timestep: int, sample: np.ndarray) -> np.ndarray:
        """x_0 from x_t and the network's output (DDPM Eq. (15) for epsilon), clipped if the config says so."""
        return self.predict_original_and_noise(model_output, timestep, sample)[0]

    def _check_timestep(self, timestep: int) -> int:
        timestep = int(timestep)
        if not 0 <= timestep < self.config.num_train_timesteps:
            raise ValueError(f"timestep {timestep} is outside 0 ... {self.config.num_train_timesteps - 1}")
        return timestep
