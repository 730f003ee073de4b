"""The DDIM sampler (Song, Meng, Ermon 2021, arXiv 2010.02502) in numpy, after diffusers' `scheduling_ddim.py`.

Equation numbers are the paper's, whose alpha_t is DDPM's alpha_bar_t (the cumulative product).
eta = 0 gives the deterministic sampler; eta = 1 the DDPM-like one. The caller supplies the noise
used when eta > 0, so the same numpy generator gives the same image in both backends. The network
may predict epsilon, v or x_0 (the config's prediction_type); Eq. (12) needs both x_0 and epsilon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studio.engine.schedulers.schedules import NoiseSchedule, SchedulerConfig


@dataclass(frozen=True)
class DdimConfig(SchedulerConfig):
    """The shared settings plus the alpha_bar used after the last step."""

    # After the last step there is no alpha_bar_{t-1}: True uses 1 (a clean x_0), False reuses alpha_bar_0.
    set_alpha_to_one: bool = True


class DdimScheduler(NoiseSchedule):
    """DDIM sampling on a sub-sequence of the training timesteps (section 4.2), with eta choosing the noise."""

    config_class = DdimConfig
    config: DdimConfig

    def __init__(self, config: DdimConfig | None = None) -> None:
        super().__init__(config or DdimConfig())
        self.final_alpha_cumprod = 1.0 if self.config.set_alpha_to_one else float(self.alphas_cumprod[0])

    def previous_timestep(self, timestep: int) -> int:
        """The noise level a step from `timestep` lands on, t - T // n as in diffusers; negative after the last step.

        With "leading" spacing (and "trailing" where n divides T) that is the chain's next timestep; otherwise
        diffusers still steps to t - T // n, and the next step starts from the chain's own next timestep.
        """
        return int(timestep) - self.config.num_train_timesteps // self.num_inference_steps

    def variance(self, timestep: int, previous: int) -> float:
        """sigma_t(1)^2 of Eq. (16): (1 - alpha_{t-1}) / (1 - alpha_t) * (1 - alpha_t / alpha_{t-1})."""
        alpha_bar_t = float(self.alphas_cumprod[timestep])
        alpha_bar_prev = float(self.alphas_cumprod[previous]) if previous >= 0 else self.final_alpha_cumprod
        return (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t) * (1.0 - alpha_bar_t / alpha_bar_prev)

    def step(
        self,
        model_output: np.ndarray,
        timestep: int,
        sample: np.ndarray,
        eta: float = 0.0,
        noise: np.ndarray | None = None,
    ) -> np.ndarray:
        """x_{t_prev} from x_t and the network output; `noise` (standard normal, sample's shape) is read if eta > 0."""
        timestep = self._check_timestep(timestep)
        if not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be between 0 and 1, not {eta}")
        previous = self.previous_timestep(timestep)
        alpha_bar_prev = float(self.alphas_cumprod[previous]) if previous >= 0 else self.final_alpha_cumprod

        # Eq. (9): the "predicted x_0", f_theta(x_t) = (x_t - sqrt(1 - alpha_t) eps_theta(x_t)) / sqrt(alpha_t),
        # and the eps_theta that the direction term below needs (the output itself for epsilon-prediction).
        original, predicted_noise = self.predict_original_and_noise(model_output, timestep, sample)

        # Eq. (16): sigma_t(eta) = eta * sqrt((1 - alpha_{t-1}) / (1 - alpha_t)) * sqrt(1 - alpha_t / alpha_{t-1}).
        sigma = eta * math.sqrt(self.variance(timestep, previous))

        # Eq. (12): x_{t-1} = sqrt(alpha_{t-1}) * "predicted x_0"
        #                   + sqrt(1 - alpha_{t-1} - sigma_t^2) * eps_theta   ("direction pointing to x_t")
        #                   + sigma_t * eps_t                                  ("random noise").
        # max(..., 0) only guards against rounding: sigma_t^2 <= 1 - alpha_{t-1} whenever eta <= 1.
        direction = math.sqrt(max(1.0 - alpha_bar_prev - sigma**2, 0.0)) * predicted_noise
        previous_sample = math.sqrt(alpha_bar_prev) * original + direction
        if eta > 0:
            if noise is None:
                raise ValueError("DDIM steps with eta > 0 need a noise array")
            previous_sample = previous_sample + sigma * noise
        return previous_sample.astype(sample.dtype, copy=False)
