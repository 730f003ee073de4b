"""DPM-Solver++(2M) in numpy, after diffusers' `scheduling_dpmsolver_multistep.py` (deterministic, no torch).

Lu, Zhou, Bao, Chen, Li, Zhu, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models",
2022 (arXiv 2211.01095), Algorithm 2 (the multistep second-order solver of the data-prediction ODE), with
diffusers' choices: algorithm_type "dpmsolver++", solver_order 2, solver_type "midpoint", final_sigmas_type
"zero" (the last step lands on x_0 itself, with a first-order step), no Karras sigmas, lambda_min_clipped -inf.
Notation: alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t), lambda_t = log(alpha_t / sigma_t).
"""

from __future__ import annotations

import math

import numpy as np

from studio.engine.schedulers.schedules import NoiseSchedule, SchedulerConfig


def dpm_solver_timesteps(config: SchedulerConfig, num_inference_steps: int) -> np.ndarray:
    """The descending int64 chain diffusers' DPMSolverMultistepScheduler samples with (its own spacing).

    Unlike DDIM's, "linspace" and "leading" split the range into n + 1 parts and drop the last point (t = 0):
    "linspace": round(k * (T - 1) / n); "leading": k * (T // (n + 1)) + steps_offset, for k = n ... 1.
    "trailing" is DDIM's: round(T - k * T / n) - 1.
    """
    total, count = config.num_train_timesteps, num_inference_steps
    if config.timestep_spacing == "linspace":
        chain = np.linspace(0, total - 1, count + 1).round()[::-1][:-1].copy().astype(np.int64)
    elif config.timestep_spacing == "trailing":
        chain = np.round(np.arange(total, 0, -total / count)).astype(np.int64) - 1
    else:
        ratio = total // (count + 1)
        chain = (np.arange(0, count + 1) * ratio).round()[::-1][:-1].copy().astype(np.int64)
        chain += config.steps_offset
    if chain[0] >= total:
        raise ValueError(
            f"{count} steps with steps_offset {config.steps_offset} would start at timestep {int(chain[0])},"
            f" past the last training timestep {total - 1}: choose fewer steps"
        )
    return chain


class DpmSolverScheduler(NoiseSchedule):
    """DPM-Solver++(2M): one network call per step, second order from the previous step's x_0 prediction.

    `step` must be called once per timestep of `timesteps`, in order; the scheduler keeps the previous x_0
    prediction itself, and `set_timesteps` starts a new chain. clip_sample is ignored, as in diffusers'
    DPMSolverMultistepScheduler (its only x_0 clamp is dynamic thresholding, which Studio does not implement).
    """

    def __init__(self, config: SchedulerConfig | None = None) -> None:
        super().__init__(config or SchedulerConfig())
        self._start_chain()

    def set_timesteps(self, num_inference_steps: int) -> np.ndarray:
        """Choose the descending int64 timesteps (diffusers' DPM-Solver spacing), start a new chain; returns them."""
        total = self.config.num_train_timesteps
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int | np.integer):
            raise ValueError(f"num_inference_steps must be an int, not {num_inference_steps!r}")
        if not 1 <= num_inference_steps <= total:
            raise ValueError(f"num_inference_steps must be between 1 and {total}, not {num_inference_steps}")
        self.timesteps = dpm_solver_timesteps(self.config, int(num_inference_steps))
        self.num_inference_steps = int(num_inference_steps)
        self._start_chain()
        return self.timesteps

    def _start_chain(self) -> None:
        alpha_bar = self.alphas_cumprod[self.timesteps]
        # Noise levels visited, plus the final one: alpha = 1, sigma = 0 (diffusers' final_sigmas_type "zero").
        self.signal_levels = np.append(np.sqrt(alpha_bar), 1.0)
        self.noise_levels = np.append(np.sqrt(1.0 - alpha_bar), 0.0)
        with np.errstate(divide="ignore"):  # lambda = +inf at sigma = 0; only first-order steps go there
            self.log_snr = np.log(self.signal_levels) - np.log(self.noise_levels)
        self.step_index = 0
        self._previous_original: np.ndarray | None = None

    def previous_timestep(self, timestep: int) -> int:
        """The chain's timestep after `timestep`, or -1 after the last step."""
        matches = np.flatnonzero(self.timesteps == int(timestep))
        if len(matches) == 0:
            raise ValueError(f"timestep {int(timestep)} is not in this scheduler's chain")
        index = int(matches[0]) + 1
        return int(self.timesteps[index]) if index < len(self.timesteps) else -1

    def predict_x0(self, model_output: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """x_0 implied by the network's output at the current step (diffusers' `convert_model_output`), unclipped."""
        signal = float(self.signal_levels[self.step_index])
        noise_level = float(self.noise_levels[self.step_index])
        prediction = self.config.prediction_type
        if prediction == "epsilon":
            return (sample - noise_level * model_output) / signal
        if prediction == "v_prediction":
            return signal * sample - noise_level * model_output
        return model_output

    def step(self, model_output: np.ndarray, timestep: int, sample: np.ndarray) -> np.ndarray:
        """x at the chain's next noise level (x_0 after the last step) from x_t and the network output at t."""
        index = self.step_index
        if index >= len(self.timesteps):
            raise ValueError("this chain is finished: call set_timesteps to start another")
        if int(timestep) != int(self.timesteps[index]):
            raise ValueError(f"expected timestep {int(self.timesteps[index])} (step {index}), not {int(timestep)}")
        original = np.asarray(self.predict_x0(model_output, sample))
        signal_t, noise_t = float(self.signal_levels[index + 1]), float(self.noise_levels[index + 1])
        signal_s, noise_s = float(self.signal_levels[index]), float(self.noise_levels[index])
        # exp(-h) - 1 with h = lambda_t - lambda_s, written without logs so that sigma_t = 0 gives -1.
        decay = (noise_t * signal_s) / (signal_t * noise_s) - 1.0
        # Eq. (9) / diffusers' first-order update (DDIM in data-prediction form).
        previous_sample = (noise_t / noise_s) * sample - (signal_t * decay) * original
        earlier = self._previous_original
        # The first step has no history; the last goes to sigma = 0 first-order (diffusers' final_sigmas_type
        # "zero"); a repeated timestep (h = 0, only with as many steps as timesteps) would divide by zero.
        if earlier is not None and index < len(self.timesteps) - 1:
            h = float(self.log_snr[index + 1] - self.log_snr[index])
            h_previous = float(self.log_snr[index] - self.log_snr[index - 1])
            if h > 0 and h_previous > 0:
                # Algorithm 2, midpoint form: D1 = (m0 - m1) / r0 with r0 = h_{i-1} / h_i.
                correction = (1.0 / (h_previous / h)) * (original - earlier)
                previous_sample = previous_sample - 0.5 * (signal_t * math.expm1(-h)) * correction
        self._previous_original = original
        self.step_index = index + 1
        return np.asarray(previous_sample).astype(sample.dtype, copy=False)
