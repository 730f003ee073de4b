"""The diffusion family's numpy pipeline (no torch): what both backends run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.engine.families.diffusion.declaration import DECLARATION
from studio.engine.families.pipeline import Array, ArrayFunction, ModelSpec, NetworkRunner, Pipeline
from studio.engine.numerics import iterate_batches, seed_generators, to_network, to_uint8
from studio.engine.schedulers import DdimScheduler, DdpmScheduler
from studio.errors import StudioError


class DiffusionPipeline(Pipeline):
    """DDPM/DDIM sampling with the numpy schedulers; DDIM-deterministic interpolation; RePaint inpainting."""

    declaration = DECLARATION

    def __init__(self, spec: ModelSpec, denoiser: ArrayFunction) -> None:
        """`denoiser(x, t)`: float32 NCHW noisy images and int64 [N] timesteps -> predicted noise."""
        super().__init__(spec)
        if spec.scheduler is None:
            raise StudioError("a diffusion model needs its scheduler configuration")
        self.denoiser = denoiser

    @classmethod
    def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> DiffusionPipeline:
        """Over an exported denoiser."""
        return cls(spec, network("denoiser"))

    def scheduler(self, sampler: str) -> DdpmScheduler | DdimScheduler:
        """A fresh scheduler of the named kind ("ddpm" or "ddim") for this model's noise schedule."""
        settings = dict(self.spec.scheduler or {})
        if sampler == "ddim":
            return DdimScheduler.from_dict(settings)
        if sampler == "ddpm":
            settings.pop("set_alpha_to_one", None)
            return DdpmScheduler.from_dict(settings)
        raise StudioError(f"unknown sampler '{sampler}': choose ddim or ddpm")

    def sampling_options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validated settings; steps may not exceed the model's timesteps."""
        options = super().sampling_options(values)
        timesteps = int((self.spec.scheduler or {})["num_train_timesteps"])
        if options["steps"] > timesteps:
            raise StudioError(f"steps: {options['steps']} is above this model's {timesteps} timesteps")
        return options

    def latent_shape(self) -> tuple[int, ...]:
        """x_T: C x H x W."""
        return (self.channels, self.resolution, self.resolution)

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """One image per seed; the same seed gives the same image in any batch."""
        options = self.sampling_options(options)
        if len(seeds) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        images = []
        for part in iterate_batches(len(seeds), self.chunk):
            generators = seed_generators(seeds[part])
            images.append(self.denoise(self.initial_noise(generators), generators, options))
        return to_uint8(np.concatenate(images))

    def initial_noise(self, generators: Sequence[np.random.Generator]) -> Array:
        """x_T: the first standard-normal (C, H, W) draw of each image's generator."""
        return np.stack([g.standard_normal(self.latent_shape(), dtype=np.float32) for g in generators])

    def decode(self, latents: Array, options: Mapping[str, Any]) -> Array:
        """Images from explicit x_T (N x C x H x W); only deterministic DDIM (eta 0) is allowed."""
        options = self.sampling_options(options)
        if options["sampler"] != "ddim" or options["eta"] != 0:
            raise StudioError("decoding a latent needs the deterministic sampler: sampler=ddim with eta=0")
        latents = np.asarray(latents, dtype=np.float32)
        if latents.shape[1:] != self.latent_shape():
            raise StudioError(f"latents must be N x {' x '.join(map(str, self.latent_shape()))}, not {latents.shape}")
        if len(latents) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        return to_uint8(
            np.concatenate(
                [self.denoise(latents[part], [], options) for part in iterate_batches(len(latents), self.chunk)]
            )
        )

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """RePaint: after every step the known pixels are put back at the sample's noise level, and each
        step is repeated `resample` times (re-noised in between) so the generated part can agree with them."""
        options = self.sampling_options(options)
        images, known = self.completion_inputs(images, known, len(seeds))
        if len(seeds) == 0:
            return images.copy()
        known_images = to_network(images)
        keep = np.ascontiguousarray(known.transpose(0, 3, 1, 2)).astype(np.float32)
        completed = []
        for part in iterate_batches(len(seeds), self.chunk):
            generators = seed_generators(seeds[part])
            completed.append(
                self.denoise(
                    self.initial_noise(generators), generators, options, known=known_images[part], keep=keep[part]
                )
            )
        return to_uint8(np.concatenate(completed))

    def denoise(
        self,
        initial: Array,
        generators: Sequence[np.random.Generator],
        options: Mapping[str, Any],
        known: Array | None = None,
        keep: Array | None = None,
    ) -> Array:
        """Run the sampler from x_T (float32 NCHW) to x_0 (float32 NCHW, unclipped).

        Step noise comes from `generators` (one per image). With `known` (float32 NCHW in [-1, 1]) and
        `keep` (1 where known), the known pixels are replaced after every step (see the module docstring).
        """
        scheduler = self.scheduler(options["sampler"])
        scheduler.set_timesteps(options["steps"])
        eta = float(options["eta"])
        stochastic = options["sampler"] == "ddpm" or eta > 0
        if (stochastic or known is not None) and len(generators) != len(initial):
            raise ValueError("stochastic sampling and inpainting need one generator per image")
        shape = initial.shape[1:]
        rounds = int(options.get("resample", 1)) if known is not None else 1
        sample = np.array(initial, dtype=np.float32, copy=True)

        def draw() -> Array:
            return np.stack([g.standard_normal(shape, dtype=np.float32) for g in generators])

        for timestep in scheduler.timesteps:
            t = int(timestep)
            previous = scheduler.previous_timestep(t)
            timesteps = np.full((len(sample),), t, dtype=np.int64)
            for round_index in range(rounds if previous >= 0 else 1):
                predicted = np.asarray(self.denoiser(sample, timesteps), np.float32)
                noise = draw() if stochastic else None
                if isinstance(scheduler, DdimScheduler):
                    sample = scheduler.step(predicted, t, sample, eta=eta, noise=noise)
                else:
                    sample = scheduler.step(predicted, t, sample, noise=noise)
                if known is None or keep is None:
                    continue
                noised_known = scheduler.add_noise(known, draw(), previous) if previous >= 0 else known
                sample = (keep * noised_known + (1.0 - keep) * sample).astype(np.float32)
                if round_index < rounds - 1 and previous >= 0:
                    # Back up one step (DDPM Eq. 2 over the skipped interval) and take it again.
                    ratio = float(scheduler.alphas_cumprod[t] / scheduler.alphas_cumprod[previous])
                    sample = (np.sqrt(ratio) * sample + np.sqrt(1.0 - ratio) * draw()).astype(np.float32)
            sample = np.asarray(sample, np.float32)
        return sample
