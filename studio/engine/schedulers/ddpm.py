"""The DDPM sampler (Ho et al. 2020, arXiv 2006.11239) in numpy, after diffusers' `scheduling_ddpm.py`.

Equation numbers are the paper's. The variance is the config's variance_type: "fixed_small"
(sigma_t^2 = beta-tilde_t) or "fixed_large" (sigma_t^2 = beta_t), the two choices of section 3.2.
The network may predict epsilon, v or x_0 (prediction_type), and the caller supplies every noise
array, so the same numpy generator gives the same image in the torch and the ONNX backends.
"""

from __future__ import annotations

import math

import numpy as np

from studio.engine.schedulers.schedules import NoiseSchedule, SchedulerConfig

# diffusers clamps the variance before taking roots and logs; kept so the outputs match exactly.
MIN_VARIANCE = 1e-20


class DdpmScheduler(NoiseSchedule):
    """Ancestral DDPM sampling: x_{t-1} ~ N(mu-tilde(x_t, x_0), sigma_t^2 I), with x_0 from the network's output."""

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        super().__init__(config or SchedulerConfig())

    def previous_timestep(self, timestep: int) -> int:
        """The timestep after `timestep` in the current chain, or -1 after the last one."""
        positions = np.flatnonzero(self.timesteps == timestep)
        if positions.size == 0:
            raise ValueError(f"timestep {timestep} is not in the chain chosen by set_timesteps")
        index = int(positions[0])
        return int(self.timesteps[index + 1]) if index + 1 < len(self.timesteps) else -1

    def step(
        self, model_output: np.ndarray, timestep: int, sample: np.ndarray, noise: np.ndarray | None = None
    ) -> np.ndarray:
        """x_{t_prev} from x_t and the network output; `noise` (standard normal, sample's shape) is needed if t > 0."""
        timestep = self._check_timestep(timestep)
        previous = self.previous_timestep(timestep)
        alpha_bar_t = float(self.alphas_cumprod[timestep])
        alpha_bar_prev = float(self.alphas_cumprod[previous]) if previous >= 0 else 1.0
        beta_bar_t = 1.0 - alpha_bar_t
        beta_bar_prev = 1.0 - alpha_bar_prev
        # With fewer inference steps than training steps, one step spans several betas: alpha_t and
        # beta_t become the products over the span, which keeps Eq. (7) exact for the shorter chain.
        current_alpha_t = alpha_bar_t / alpha_bar_prev
        current_beta_t = 1.0 - current_alpha_t

        # Eq. (15) for epsilon-prediction: x_0 ~= (x_t - sqrt(1 - alpha_bar_t) eps_theta) / sqrt(alpha_bar_t).
        original = self.predict_original(model_output, timestep, sample)

        # Eq. (7): mu-tilde_t(x_t, x_0) = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
        #                                + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t.
        original_coefficient = math.sqrt(alpha_bar_prev) * current_beta_t / beta_bar_t
        sample_coefficient = math.sqrt(current_alpha_t) * beta_bar_prev / beta_bar_t
        previous_sample = original_coefficient * original + sample_coefficient * sample

        # diffusers adds noise whenever t > 0, also on a last step that starts above 0 (steps_offset,
        # "trailing"); there "fixed_small" adds ~nothing while "fixed_large" adds beta_t's worth.
        if timestep > 0:
            if noise is None:
                raise ValueError("DDPM steps from a timestep above 0 need a noise array")
            if self.config.variance_type == "fixed_large":
                # Section 3.2: sigma_t^2 = beta_t, the upper bound, optimal for x_0 ~ N(0, I).
                variance = current_beta_t
            else:
                # Eq. (7): beta-tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t, the lower bound.
                variance = max(beta_bar_prev / beta_bar_t * current_beta_t, MIN_VARIANCE)
            # Eq. (6) samples x_{t-1} = mu-tilde + sigma_t z (Algorithm 2, line 4).
            previous_sample = previous_sample + math.sqrt(variance) * noise
        return previous_sample.astype(sample.dtype, copy=False)
