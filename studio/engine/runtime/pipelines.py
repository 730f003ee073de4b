"""Each family's sampling, interpolation and inpainting, written once in numpy over network callables.

A pipeline never sees torch or ONNX Runtime: it is given plain functions from numpy arrays to numpy
arrays (the generator, the decoder, the denoiser...). The torch families hand it functions that run
their modules; the ONNX runtime hands it functions that run sessions. Both backends therefore share
every random draw and every step of every procedure, which is what "same seed, same image" needs.

Random-number conventions (per image, from `numpy.random.default_rng(seed)`):
- gan, vae: z = standard_normal((latent_dim,)), scaled by the truncation or the temperature.
- diffusion: x_T = standard_normal((C, H, W)); then per step, in step order, one draw for the step
  noise when the sampler is stochastic (DDPM, or DDIM with eta > 0); when inpainting, each of the
  `resample` rounds of a step draws its step noise (if stochastic), then one draw to noise the known
  pixels, then (except after the last round) one draw to re-noise the sample back up a step.
- pixelcnn: u = random((H, W, C)) up front; sub-pixels are visited row, column, channel and each
  takes the smallest value k with cumsum(softmax(logits / T))[k] > u (float64), capped at 255.
- vae inpainting: the unknown pixels start from the decoded z of the seed, then `inpaint_iterations`
  rounds of encode -> decode, each time putting the known pixels back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from studio.engine.models.schema import Hyperparameter, validate_options
from studio.engine.runtime.numerics import (
    from_levels,
    gaussian_noise,
    inverse_cdf,
    iterate_batches,
    lerp,
    seed_generators,
    slerp,
    to_network,
    to_uint8,
)
from studio.engine.schedulers import DdimScheduler, DdpmScheduler
from studio.errors import StudioError

Array = np.ndarray
ArrayFunction = Callable[..., Any]

# What each capability means to a user, for the one-line refusals.
_VERBS = {"interpolate": "interpolate", "encode": "encode images", "inpaint": "inpaint"}
_WHY_NOT = {
    ("gan", "inpaint"): "a GAN has no way to condition on known pixels (use a VAE, PixelCNN or diffusion model)",
    ("gan", "encode"): "a GAN has no encoder: interpolate between seeds or items sampled from this model",
    ("diffusion", "encode"): "interpolate between seeds or items sampled from this model",
    ("pixelcnn", "interpolate"): "a PixelCNN has no latent space to walk through",
    ("pixelcnn", "encode"): "a PixelCNN has no latent space",
}


@dataclass(frozen=True)
class ModelSpec:
    """What a pipeline needs to know of a model besides its networks (a manifest carries the same)."""

    family: str
    resolution: int
    channels: int
    hyperparameters: Mapping[str, Any]
    sampling_schema: tuple[Hyperparameter, ...]
    scheduler: Mapping[str, Any] | None = None  # diffusion: the noise schedule it was trained with
    reach: int | None = None  # pixelcnn: how far (rows up, columns either side) a logit looks
    extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """H, W, C of one image."""
        return (self.resolution, self.resolution, self.channels)


@dataclass(frozen=True)
class Endpoint:
    """One end of an interpolation: a seed (its Gaussian latent) or an image (its encoding)."""

    seed: int | None = None
    image: Array | None = None  # uint8 H x W x C at the model's resolution

    def __post_init__(self) -> None:
        if (self.seed is None) == (self.image is None):
            raise ValueError("an endpoint is either a seed or an image")


class Pipeline(ABC):
    """A family's procedures over numpy network callables; subclasses declare what they can do."""

    family: ClassVar[str]
    capabilities: ClassVar[frozenset[str]]
    chunk: ClassVar[int] = 256  # images per network call

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @property
    def resolution(self) -> int:
        """Height and width in pixels."""
        return self.spec.resolution

    @property
    def channels(self) -> int:
        """1 (grey) or 3 (RGB)."""
        return self.spec.channels

    def sampling_options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The model's stored sampling settings overlaid with `values`, each validated."""
        return validate_options(self.spec.sampling_schema, self.spec.hyperparameters, values, self.family)

    @classmethod
    def unsupported(cls, capability: str) -> StudioError:
        """The one-line refusal for a capability this family lacks (it depends on the family alone)."""
        reason = _WHY_NOT.get((cls.family, capability), f"the {cls.family} family does not support it")
        return StudioError(f"{cls.family} models cannot {_VERBS.get(capability, capability)}: {reason}")

    def require(self, capability: str) -> None:
        """Raise the refusal unless the family declares `capability`."""
        if capability not in self.capabilities:
            raise self.unsupported(capability)

    # --- the operations ------------------------------------------------------------------

    @abstractmethod
    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """One image per seed, uint8 N x H x W x C."""

    def latent_shape(self) -> tuple[int, ...]:
        """The shape of one image's latent (families with latents override)."""
        raise self.unsupported("interpolate")

    def latent_scale(self, options: Mapping[str, Any]) -> float:
        """How seed latents are scaled before decoding (truncation, temperature); 1 by default."""
        del options
        return 1.0

    def seed_latents(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """The latents that `sample` decodes for these seeds."""
        return gaussian_noise(seeds, self.latent_shape()) * np.float32(self.latent_scale(options))

    def decode(self, latents: Array, options: Mapping[str, Any]) -> Array:
        """Images (uint8 NHWC) from explicit latents."""
        del latents, options
        raise self.unsupported("interpolate")

    def encode(self, images: Array) -> Array:
        """Latents of uint8 NHWC images."""
        del images
        raise self.unsupported("encode")

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Keep the known pixels of uint8 NHWC `images`, generate the rest; one result per seed."""
        del images, known, seeds, options
        raise self.unsupported("inpaint")

    def interpolation_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The sampling settings an interpolation uses (diffusion forces its deterministic sampler)."""
        return self.sampling_options(options)

    def interpolate(self, start: Endpoint, end: Endpoint, frames: int, options: Mapping[str, Any]) -> Array:
        """`frames` images from start to end (both included): slerp between seed latents, else a line."""
        self.require("interpolate")
        if frames < 2:
            raise StudioError(f"invalid frame count {frames}: an interpolation needs at least 2 frames")
        options = self.interpolation_options(options)
        weights = np.linspace(0.0, 1.0, frames)
        first, second = self._endpoint_latent(start, options), self._endpoint_latent(end, options)
        both_gaussian = start.seed is not None and end.seed is not None
        latents = slerp(first, second, weights) if both_gaussian else lerp(first, second, weights)
        return self.decode(latents, options)

    def _endpoint_latent(self, endpoint: Endpoint, options: Mapping[str, Any]) -> Array:
        if endpoint.seed is not None:
            return self.seed_latents([endpoint.seed], options)[0]
        self.require("encode")
        return self.encode(np.asarray(endpoint.image)[None])[0]

    def completion_inputs(self, images: Array, known: Array, count: int) -> tuple[Array, Array]:
        """uint8 NHWC images and a per-sub-pixel NHWC known mask, checked, or a StudioError."""
        expected = (count, *self.spec.shape)
        images = np.asarray(images)
        if images.shape != expected or images.dtype != np.uint8:
            raise StudioError(
                f"images to complete must be uint8 of shape {expected}, not {images.dtype} {images.shape}"
            )
        known = np.asarray(known, dtype=bool)
        if known.shape == expected[:3]:
            known = np.repeat(known[..., None], self.channels, axis=3)
        if known.shape != expected:
            raise StudioError(f"the known mask must have shape {expected[:3]} or {expected}, not {known.shape}")
        return images, known


class GanPipeline(Pipeline):
    """z -> generator -> image; interpolation walks the latent sphere."""

    family = "gan"
    capabilities = frozenset({"sample", "interpolate"})

    def __init__(self, spec: ModelSpec, generator: ArrayFunction) -> None:
        super().__init__(spec)
        self.generator = generator

    def latent_shape(self) -> tuple[int, ...]:
        """(latent_dim,)."""
        return (int(self.spec.hyperparameters["latent_dim"]),)

    def latent_scale(self, options: Mapping[str, Any]) -> float:
        """The truncation: smaller latents are safer and less varied."""
        return float(options["truncation"])

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Decode each seed's scaled Gaussian latent."""
        options = self.sampling_options(options)
        return self.decode(self.seed_latents(seeds, options), options)

    def decode(self, latents: Array, options: Mapping[str, Any]) -> Array:
        """The generator's images of explicit latents."""
        del options
        latents = np.asarray(latents, np.float32)
        if len(latents) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        return np.concatenate([to_uint8(self.generator(np.ascontiguousarray(latents[part])))
                               for part in iterate_batches(len(latents), self.chunk)])


class VaePipeline(Pipeline):
    """Decoder images from latents; an encoder for real images; inpainting by projection."""

    family = "vae"
    capabilities = frozenset({"sample", "interpolate", "encode", "inpaint"})

    def __init__(self, spec: ModelSpec, encoder: ArrayFunction, decoder: ArrayFunction) -> None:
        """`encoder`: float NCHW in [-1, 1] -> latent means; `decoder`: latents -> float NCHW in [-1, 1]."""
        super().__init__(spec)
        self.encoder = encoder
        self.decoder = decoder

    def latent_shape(self) -> tuple[int, ...]:
        """(latent_dim,)."""
        return (int(self.spec.hyperparameters["latent_dim"]),)

    def latent_scale(self, options: Mapping[str, Any]) -> float:
        """The temperature."""
        return float(options["temperature"])

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Decode each seed's scaled Gaussian latent."""
        options = self.sampling_options(options)
        return self.decode(self.seed_latents(seeds, options), options)

    def _decode_float(self, latents: Array) -> Array:
        return np.concatenate([np.asarray(self.decoder(np.ascontiguousarray(latents[part], np.float32)), np.float32)
                               for part in iterate_batches(len(latents), self.chunk)])

    def _encode_float(self, images: Array) -> Array:
        return np.concatenate([np.asarray(self.encoder(np.ascontiguousarray(images[part])), np.float32)
                               for part in iterate_batches(len(images), self.chunk)])

    def decode(self, latents: Array, options: Mapping[str, Any]) -> Array:
        """The decoder's mean images."""
        del options
        latents = np.asarray(latents, np.float32)
        if len(latents) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        return to_uint8(self._decode_float(latents))

    def encode(self, images: Array) -> Array:
        """Latent means (float32 N x latent_dim) of uint8 NHWC images."""
        images = np.asarray(images)
        if images.shape[1:] != self.spec.shape or images.dtype != np.uint8:
            raise StudioError(f"images to encode must be uint8 N x {' x '.join(map(str, self.spec.shape))}")
        if len(images) == 0:
            return np.zeros((0, *self.latent_shape()), np.float32)
        return self._encode_float(to_network(images))

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Projection: start the unknown pixels from the seed's sample, then encode -> decode -> restore."""
        options = self.sampling_options(options)
        images, known = self.completion_inputs(images, known, len(seeds))
        if len(seeds) == 0:
            return images.copy()
        target = to_network(images)
        keep = np.ascontiguousarray(known.transpose(0, 3, 1, 2)).astype(np.float32)
        current = keep * target + (1 - keep) * self._decode_float(self.seed_latents(seeds, options))
        for _ in range(int(options["inpaint_iterations"])):
            rebuilt = self._decode_float(self._encode_float(current.astype(np.float32)))
            current = keep * target + (1 - keep) * rebuilt
        return to_uint8(current)


class DiffusionPipeline(Pipeline):
    """DDPM/DDIM sampling with the numpy schedulers; DDIM-deterministic interpolation; RePaint inpainting."""

    family = "diffusion"
    capabilities = frozenset({"sample", "interpolate", "inpaint"})

    def __init__(self, spec: ModelSpec, denoiser: ArrayFunction) -> None:
        """`denoiser(x, t)`: float32 NCHW noisy images and int64 [N] timesteps -> predicted noise."""
        super().__init__(spec)
        if spec.scheduler is None:
            raise StudioError("a diffusion model needs its scheduler configuration")
        self.denoiser = denoiser

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

    def interpolation_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Only deterministic DDIM maps each x_T to one image, so interpolation uses it."""
        return self.sampling_options({**options, "sampler": "ddim", "eta": 0.0})

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
        return to_uint8(np.concatenate([self.denoise(latents[part], [], options)
                                        for part in iterate_batches(len(latents), self.chunk)]))

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
            completed.append(self.denoise(self.initial_noise(generators), generators, options,
                                          known=known_images[part], keep=keep[part]))
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


class RasterLogits(Protocol):
    """How a PixelCNN backend computes the logits at one sub-pixel position during raster sampling."""

    def start_row(self, inputs: Array, row: int) -> None:
        """Called before the first column of `row`; rows above it are final from now on."""

    def logits(self, inputs: Array, row: int, column: int) -> Array:
        """Logits (N, 256, C) at (row, column) given float32 NCHW `inputs` in [-1, 1]."""


class PixelCnnPipeline(Pipeline):
    """Sub-pixel-by-sub-pixel sampling and completion; the whole batch shares each network call."""

    family = "pixelcnn"
    capabilities = frozenset({"sample", "inpaint"})
    chunk = 64  # bounds activation memory at 64 px

    def __init__(self, spec: ModelSpec, raster: Callable[[], RasterLogits]) -> None:
        super().__init__(spec)
        self.raster = raster

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Completion with nothing known."""
        shape = (len(seeds), *self.spec.shape)
        return self.inpaint(np.zeros(shape, np.uint8), np.zeros(shape, bool), seeds, options)

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Keep the known sub-pixels and sample the rest in raster order, conditioned on all before them."""
        settings = self.sampling_options(options)
        images, known = self.completion_inputs(images, known, len(seeds))
        result = images.copy()
        for part in iterate_batches(len(seeds), self.chunk):
            uniforms = np.stack([np.random.default_rng(seed).random(self.spec.shape) for seed in seeds[part]])
            result[part] = self._complete_chunk(images[part], known[part], uniforms, settings["temperature"])
        return result

    def _complete_chunk(self, images: Array, known: Array, uniforms: Array, temperature: float) -> Array:
        levels = images.copy()
        inputs = to_network(levels)
        raster = self.raster()
        for row in range(self.resolution):
            if known[:, row].all():
                continue
            raster.start_row(inputs, row)
            for column in range(self.resolution):
                for channel in range(self.channels):
                    unknown = ~known[:, row, column, channel]
                    if not unknown.any():
                        continue
                    logits = np.asarray(raster.logits(inputs, row, column))[:, :, channel]
                    chosen = inverse_cdf(logits, temperature, uniforms[:, row, column, channel])
                    values = np.where(unknown, chosen, levels[:, row, column, channel]).astype(np.uint8)
                    levels[:, row, column, channel] = values
                    inputs[:, channel, row, column] = from_levels(values)
        return levels


PIPELINES: dict[str, type[Pipeline]] = {
    cls.family: cls for cls in (GanPipeline, VaePipeline, DiffusionPipeline, PixelCnnPipeline)
}
CAPABILITIES: dict[str, frozenset[str]] = {name: cls.capabilities for name, cls in PIPELINES.items()}
