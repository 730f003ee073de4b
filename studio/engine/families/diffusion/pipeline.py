"""The diffusion family's numpy pipeline (no torch): what both backends run.

A class-conditional model's denoiser takes a third input, the class weights (N x K: one-hot, zeros for
"no class", or a mix while interpolating). Classifier-free guidance with scale w (the `guidance`
setting) runs the conditional and the unconditional pass as one doubled batch and takes
eps = eps_u + w (eps_c - eps_u); w = 1 is the conditional pass alone, w = 0 the unconditional alone.
Guidance takes no random numbers, so the per-seed draws are those of an unconditional model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.engine.families.diffusion.declaration import DECLARATION, GUIDANCE
from studio.engine.families.pipeline import Array, ArrayFunction, ModelSpec, NetworkRunner, Pipeline, StepCounter
from studio.engine.numerics import iterate_batches, seed_generators, to_network, to_uint8
from studio.engine.schedulers import DdimScheduler, DdpmScheduler, DpmSolverScheduler
from studio.errors import StudioError

Scheduler = DdpmScheduler | DdimScheduler | DpmSolverScheduler
# Samplers that map each x_T to one image, whatever the generators: DDIM needs eta 0 on top.
DETERMINISTIC_SAMPLERS = ("ddim", "dpmpp2m")


def scheduler_for(config: Mapping[str, Any], sampler: str) -> Scheduler:
    """A fresh scheduler of the named kind ("ddpm", "ddim" or "dpmpp2m") for a saved scheduler configuration."""
    settings = dict(config)
    if sampler == "ddim":
        return DdimScheduler.from_dict(settings)
    if sampler in ("ddpm", "dpmpp2m"):
        settings.pop("set_alpha_to_one", None)  # DDIM's alone
        if sampler == "ddpm":
            return DdpmScheduler.from_dict(settings)
        return DpmSolverScheduler.from_dict(settings)
    raise StudioError(f"unknown sampler '{sampler}': choose ddim, ddpm or dpmpp2m")


def _check_inpainting_sampler(sampler: str) -> None:
    # RePaint re-noises and repeats each step, which a multistep solver's history cannot follow.
    if sampler == "dpmpp2m":
        raise StudioError("inpainting needs sampler ddim or ddpm: dpmpp2m cannot repeat a step (RePaint)")


def inpainting_sampler(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options RePaint runs with: dpmpp2m (the default sampler) takes deterministic DDIM steps instead,
    because a multistep solver's history cannot follow a step that is repeated."""
    if options["sampler"] != "dpmpp2m":
        return dict(options)
    return {**options, "sampler": "ddim", "eta": 0.0}


class DiffusionPipeline(Pipeline):
    """DDPM/DDIM/DPM-Solver++(2M) sampling with the numpy schedulers; deterministic interpolation (DDIM with
    eta 0, or DPM-Solver++); RePaint inpainting (DDPM or DDIM)."""

    declaration = DECLARATION
    # A U-Net keeps every level's activations for its skip connections, at up to 4x the base width.
    memory_factor = 16.0

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

    def scheduler(self, sampler: str) -> Scheduler:
        """A fresh scheduler of the named kind ("ddpm", "ddim" or "dpmpp2m") for this model's noise schedule."""
        return scheduler_for(self.spec.scheduler or {}, sampler)

    def sampling_options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validated settings; steps may not exceed the model's timesteps.

        An unconditional model has nothing to guide: a guidance other than 1 (or than the value its own
        settings hold, which a form filled from them sends back) is refused, and its options carry none.
        """
        options = super().sampling_options(values)
        timesteps = int((self.spec.scheduler or {})["num_train_timesteps"])
        if options["steps"] > timesteps:
            raise StudioError(f"steps: {options['steps']} is above this model's {timesteps} timesteps")
        if not self.spec.conditional and GUIDANCE in options:
            stored = self.spec.hyperparameters.get(GUIDANCE, self._guidance_default())
            if GUIDANCE in values and options[GUIDANCE] not in (1.0, stored):
                raise StudioError(
                    f"guidance: this {self.family} model is not class-conditional, so there is no class to guide "
                    "towards (classifier-free guidance needs a model trained on a labelled dataset)"
                )
            del options[GUIDANCE]
        return options

    def _guidance_default(self) -> float | None:
        for setting in self.spec.sampling_schema:
            if setting.name == GUIDANCE:
                return float(setting.default)
        return None

    def guidance(self, options: Mapping[str, Any]) -> float:
        """The classifier-free guidance scale these options ask for (1, none, for an unconditional model)."""
        return float(options.get(GUIDANCE, 1.0)) if self.spec.conditional else 1.0

    def chunk_for(self, options: Mapping[str, Any]) -> int:
        """Images per batch: half as many when guidance doubles every network call."""
        return max(1, self.chunk // 2) if self.guidance(options) not in (0.0, 1.0) else self.chunk

    def check_weights(self, class_weights: Array | None, count: int) -> Array | None:
        """The class weights of `count` images, checked: N x K float32 for a conditional model, None otherwise."""
        if not self.spec.conditional:
            if class_weights is not None:
                raise StudioError(f"this {self.family} model is not class-conditional: it takes no class")
            return None
        if class_weights is None:
            raise StudioError(f"this {self.family} model is class-conditional: give each image's class weights")
        weights = np.asarray(class_weights, np.float32)
        expected = (count, len(self.spec.classes))
        if weights.shape != expected:
            raise StudioError(f"class weights must be {expected[0]} x {expected[1]}, not {weights.shape}")
        return weights

    def predict(self, sample: Array, timesteps: Array, class_weights: Array | None, guidance: float) -> Array:
        """The network's prediction for a batch; with class weights, guided by classifier-free guidance."""
        if class_weights is None:
            return np.asarray(self.denoiser(sample, timesteps), np.float32)
        if guidance == 1.0:
            return np.asarray(self.denoiser(sample, timesteps, class_weights), np.float32)
        if guidance == 0.0:
            return np.asarray(self.denoiser(sample, timesteps, np.zeros_like(class_weights)), np.float32)
        both = np.asarray(
            self.denoiser(
                np.concatenate([sample, sample]),
                np.concatenate([timesteps, timesteps]),
                np.concatenate([class_weights, np.zeros_like(class_weights)]),
            ),
            np.float32,
        )
        conditional, unconditional = both[: len(sample)], both[len(sample) :]
        return (unconditional + np.float32(guidance) * (conditional - unconditional)).astype(np.float32)

    def latent_shape(self) -> tuple[int, ...]:
        """x_T: C x H x W."""
        return (self.channels, self.resolution, self.resolution)

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """One image per seed; the same seed gives the same image in any batch."""
        options = self.sampling_options(options)
        if len(seeds) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        weights = self.class_weights(self.labels(seeds, options))
        images = []
        parts = iterate_batches(len(seeds), self.chunk_for(options))
        counter = self.steps(len(parts) * self.denoise_steps(options))
        for part in parts:
            generators = seed_generators(seeds[part])
            initial = self.initial_noise(generators)
            part_weights = None if weights is None else weights[part]
            images.append(
                self.to_images(self.denoise(initial, generators, options, counter=counter, class_weights=part_weights))
            )
        return to_uint8(np.concatenate(images))

    def initial_noise(self, generators: Sequence[np.random.Generator]) -> Array:
        """x_T: the first standard-normal (C, H, W) draw of each image's generator."""
        return np.stack([g.standard_normal(self.latent_shape(), dtype=np.float32) for g in generators])

    def decode(self, latents: Array, options: Mapping[str, Any], class_weights: Array | None = None) -> Array:
        """Images from explicit x_T (N x C x H x W) of the classes weighted (N x K, for a conditional model);
        only deterministic sampling (DDIM with eta 0, dpmpp2m)."""
        options = self.sampling_options(options)
        if options["sampler"] not in DETERMINISTIC_SAMPLERS or (options["sampler"] == "ddim" and options["eta"] != 0):
            raise StudioError(
                "decoding a latent needs a deterministic sampler: sampler=ddim with eta=0, or sampler=dpmpp2m"
            )
        latents = np.asarray(latents, dtype=np.float32)
        if latents.shape[1:] != self.latent_shape():
            raise StudioError(f"latents must be N x {' x '.join(map(str, self.latent_shape()))}, not {latents.shape}")
        weights = self.check_weights(class_weights, len(latents))
        if len(latents) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        parts = iterate_batches(len(latents), self.chunk_for(options))
        counter = self.steps(len(parts) * self.denoise_steps(options))
        return to_uint8(
            np.concatenate(
                [
                    self.to_images(
                        self.denoise(
                            latents[part],
                            [],
                            options,
                            counter=counter,
                            class_weights=None if weights is None else weights[part],
                        )
                    )
                    for part in parts
                ]
            )
        )

    def to_images(self, denoised: Array) -> Array:
        """What the sampler's output becomes: here the images themselves (latent diffusion decodes them)."""
        return denoised

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """RePaint: after every step the known pixels are put back at the sample's noise level, and each
        step is repeated `resample` times (re-noised in between) so the generated part can agree with them."""
        options = inpainting_sampler(self.sampling_options(options))
        images, known = self.completion_inputs(images, known, len(seeds))
        if len(seeds) == 0:
            return images.copy()
        known_images = to_network(images)
        keep = np.ascontiguousarray(known.transpose(0, 3, 1, 2)).astype(np.float32)
        weights = self.class_weights(self.labels(seeds, options))
        completed = []
        parts = iterate_batches(len(seeds), self.chunk_for(options))
        counter = self.steps(len(parts) * self.denoise_steps(options, inpainting=True))
        for part in parts:
            generators = seed_generators(seeds[part])
            initial = self.initial_noise(generators)
            completed.append(
                self.denoise(
                    initial,
                    generators,
                    options,
                    known=known_images[part],
                    keep=keep[part],
                    counter=counter,
                    class_weights=None if weights is None else weights[part],
                )
            )
        return to_uint8(np.concatenate(completed))

    def denoise_steps(self, options: Mapping[str, Any], inpainting: bool = False) -> int:
        """Network calls one `denoise` makes: one per sampling step, `resample` per step when inpainting
        (but one for the last step, which is never repeated)."""
        scheduler = self.scheduler(options["sampler"])
        scheduler.set_timesteps(options["steps"])
        rounds = int(options.get("resample", 1)) if inpainting else 1
        return sum(rounds if scheduler.previous_timestep(int(t)) >= 0 else 1 for t in scheduler.timesteps)

    def denoise(
        self,
        initial: Array,
        generators: Sequence[np.random.Generator],
        options: Mapping[str, Any],
        known: Array | None = None,
        keep: Array | None = None,
        *,
        counter: StepCounter | None = None,
        class_weights: Array | None = None,
    ) -> Array:
        """Run the sampler from x_T (float32 NCHW) to x_0 (float32 NCHW, unclipped).

        Step noise comes from `generators` (one per image). With `known` (float32 NCHW in [-1, 1]) and
        `keep` (1 where known), the known pixels are replaced after every step (see the module docstring).
        A conditional model needs `class_weights` (N x K), and guides with the options' `guidance`.
        Every network call advances `counter` (by default one counting this call's steps for `on_step`).
        """
        weights = self.check_weights(class_weights, len(initial))
        guidance = self.guidance(options)
        if known is not None:
            _check_inpainting_sampler(options["sampler"])
        if counter is None:
            counter = self.steps(self.denoise_steps(options, inpainting=known is not None))
        scheduler = self.scheduler(options["sampler"])
        scheduler.set_timesteps(options["steps"])
        eta = float(options["eta"])
        stochastic = options["sampler"] == "ddpm" or (options["sampler"] == "ddim" and eta > 0)
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
                predicted = self.predict(sample, timesteps, weights, guidance)
                counter.advance()
                noise = draw() if stochastic else None
                if isinstance(scheduler, DdimScheduler):
                    sample = scheduler.step(predicted, t, sample, eta=eta, noise=noise)
                elif isinstance(scheduler, DpmSolverScheduler):  # deterministic: eta is DDIM's alone
                    sample = scheduler.step(predicted, t, sample)
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
