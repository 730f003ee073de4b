"""The base of every family's numpy pipeline: sampling, interpolation and inpainting over network callables.

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

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from studio.engine.families.conditioning import CLASS_OPTION, check_class, labels_for, one_hot
from studio.engine.families.declaration import FamilyDeclaration
from studio.engine.families.schema import Hyperparameter, validate_options
from studio.engine.numerics import gaussian_noise, lerp, slerp
from studio.errors import StudioError

Array = np.ndarray
ArrayFunction = Callable[..., Any]
# How a backend hands a pipeline its networks: role (and optionally one named output) -> array function.
NetworkRunner = Callable[..., ArrayFunction]
# Told after every network step of an operation: (steps done, steps in the operation). It may raise
# (CancelledError) to stop the operation mid-batch; nothing of that operation is returned then.
StepCallback = Callable[[int, int], None]

MAX_CHUNK = 256  # images per network call at most: small images gain nothing from larger calls
MEMORY_SHARE = 0.5  # of the memory available, what one call's working set may take (the rest: the app, the OS)
FALLBACK_MEMORY = 2 * 1024**3  # bytes assumed available when the system does not say
DEFAULT_WIDTH = 128  # channels assumed for a network whose width no hyperparameter states (wide: safe)


def _meminfo_available() -> int | None:
    """Linux's estimate of memory available without swapping (page cache counts), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    """Room left under a container's memory limit (cgroup v2), or None when there is no limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def available_memory() -> int:
    """Bytes of host memory free for new work: MemAvailable (or free pages), capped by a container's limit."""
    available = _meminfo_available()
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):  # not a POSIX system that says
            available = None
    if available is None or available <= 0:
        available = FALLBACK_MEMORY
    headroom = _cgroup_headroom()
    return available if headroom is None else min(available, headroom)


def chunk_size(bytes_per_image: float, available: int, ceiling: int = MAX_CHUNK) -> int:
    """Images per network call: as many as MEMORY_SHARE of `available` bytes holds, from 1 to `ceiling`."""
    fits = int(available * MEMORY_SHARE // max(1.0, bytes_per_image))
    return max(1, min(ceiling, fits))


class StepCounter:
    """Counts one operation's network steps and tells a callback about each."""

    def __init__(self, callback: StepCallback | None, total: int) -> None:
        self.callback = callback
        self.total = max(1, total)
        self.done = 0

    def advance(self) -> None:
        """One more step done (the callback may raise to stop the operation)."""
        self.done = min(self.total, self.done + 1)
        if self.callback is not None:
            self.callback(self.done, self.total)


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
    classes: tuple[str, ...] = ()  # a conditional model's class names, in label order (see conditioning)

    @property
    def shape(self) -> tuple[int, int, int]:
        """H, W, C of one image."""
        return (self.resolution, self.resolution, self.channels)

    @property
    def conditional(self) -> bool:
        """Whether the model generates a chosen class (its networks take class weights)."""
        return bool(self.classes)


@dataclass(frozen=True)
class Endpoint:
    """One end of an interpolation: a seed (its Gaussian latent) or an image (its encoding)."""

    seed: int | None = None
    image: Array | None = None  # uint8 H x W x C at the model's resolution
    # A conditional model's class at this end: a name, or None for the seed's own draw (an image needs one).
    class_name: str | None = None

    def __post_init__(self) -> None:
        if (self.seed is None) == (self.image is None):
            raise ValueError("an endpoint is either a seed or an image")


class Pipeline(ABC):
    """A family's procedures over numpy network callables; the family's declaration says what it can do."""

    declaration: ClassVar[FamilyDeclaration]
    family: ClassVar[str]  # the declaration's name
    capabilities: ClassVar[frozenset[str]]  # the declaration's capabilities
    # Working memory of one image, in float32 maps of the network's width per pixel (the activations a
    # forward pass holds at once); families with wide skip connections (U-Nets) declare more.
    memory_factor: ClassVar[float] = 8.0
    chunk_limit: ClassVar[int] = MAX_CHUNK  # images per network call at most
    # Bytes of memory the networks run in, when a backend knows them (a GPU's free memory); None: the host's.
    memory_budget: int | None = None
    on_step: StepCallback | None = None  # set by a caller that wants to hear of every network step

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "declaration" in cls.__dict__:
            cls.family = cls.declaration.name
            cls.capabilities = cls.declaration.capabilities

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @classmethod
    @abstractmethod
    def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> Pipeline:
        """The pipeline over exported networks: `network(role, output=None)` runs one (the ONNX backend)."""

    @property
    def resolution(self) -> int:
        """Height and width in pixels."""
        return self.spec.resolution

    @property
    def channels(self) -> int:
        """1 (grey) or 3 (RGB)."""
        return self.spec.channels

    def network_width(self) -> int:
        """The network's base channel count: the `width` hyperparameter, else DEFAULT_WIDTH."""
        width = self.spec.hyperparameters.get("width")
        return width if isinstance(width, int) and not isinstance(width, bool) and width > 0 else DEFAULT_WIDTH

    def bytes_per_image(self) -> float:
        """Working memory one image takes in a network call (float32 activations at full resolution)."""
        maps = max(float(self.channels), self.memory_factor * self.network_width())
        return float(self.resolution**2) * maps * 4.0

    @property
    def chunk(self) -> int:
        """Images per network call: as many as the memory available holds (read now), 1 to `chunk_limit`."""
        available = self.memory_budget if self.memory_budget is not None else available_memory()
        return chunk_size(self.bytes_per_image(), available, self.chunk_limit)

    def steps(self, total: int) -> StepCounter:
        """A counter for an operation of `total` network steps, reporting to `on_step`."""
        return StepCounter(self.on_step, total)

    def sampling_options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The model's stored sampling settings overlaid with `values`, each validated.

        A conditional model's options also hold `class`: a class name, or None for any class.
        """
        values = dict(values)
        requested = check_class(self.spec.classes, values.pop(CLASS_OPTION, None), f"this {self.family} model")
        chosen = validate_options(self.spec.sampling_schema, self.spec.hyperparameters, values, self.family)
        if self.spec.conditional:
            chosen[CLASS_OPTION] = requested
        return chosen

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names of a conditional model (empty for an unconditional one)."""
        return self.spec.classes

    def labels(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array | None:
        """One class index per seed (int64) for a conditional model, None for an unconditional one."""
        if not self.spec.conditional:
            return None
        return labels_for(self.spec.classes, seeds, options.get(CLASS_OPTION))

    def class_weights(self, labels: Array | None) -> Array | None:
        """The networks' class input (float32 N x K) of class indices (-1: no class); None when unconditional."""
        return None if labels is None else one_hot(labels, len(self.spec.classes))

    def endpoint_weights(self, endpoint: Endpoint) -> Array | None:
        """One end's class weights (K,): its class, or its seed's draw; None for an unconditional model."""
        if not self.spec.conditional:
            return None
        if endpoint.class_name is not None:
            labels = labels_for(self.spec.classes, [0], check_class(self.spec.classes, endpoint.class_name))
        elif endpoint.seed is not None:
            labels = labels_for(self.spec.classes, [endpoint.seed], None)
        else:
            raise StudioError("an image endpoint of a class-conditional model needs a class: give --class")
        return one_hot(labels, len(self.spec.classes))[0]

    def end_class(self, endpoint: Endpoint) -> str | None:
        """The class at one end of an interpolation: asked for, else its seed's draw (None: an image without)."""
        if not self.spec.conditional:
            return None
        if endpoint.class_name is not None:
            return check_class(self.spec.classes, endpoint.class_name)
        if endpoint.seed is not None:
            return self.spec.classes[int(labels_for(self.spec.classes, [endpoint.seed], None)[0])]
        return None

    def frame_classes(self, start: Endpoint, end: Endpoint, frames: int) -> list[str | None]:
        """The class each frame is filed under: the start's up to half way, then the end's."""
        first, second = self.end_class(start), self.end_class(end)
        return [first if index * 2 <= frames - 1 else second for index in range(frames)]

    def interpolation_method(self, start: Endpoint, end: Endpoint) -> str:
        """How the frames walk between the ends: slerp between two seeds' Gaussian latents, else a line."""
        return "slerp" if start.seed is not None and end.seed is not None else "lerp"

    def interpolation_weights(self, start: Endpoint, end: Endpoint, frames: int) -> Array | None:
        """Each frame's class weights: the line from the start's class to the end's (None if unconditional)."""
        first, second = self.endpoint_weights(start), self.endpoint_weights(end)
        if first is None or second is None:
            return None
        weights = np.linspace(0.0, 1.0, frames, dtype=np.float32)[:, None]
        return ((1 - weights) * first[None] + weights * second[None]).astype(np.float32)

    @classmethod
    def unsupported(cls, capability: str) -> StudioError:
        """The one-line refusal for a capability this family lacks (it depends on the family alone)."""
        return cls.declaration.refusal(capability)

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

    def decode(self, latents: Array, options: Mapping[str, Any], class_weights: Array | None = None) -> Array:
        """Images (uint8 NHWC) from explicit latents (and, for a conditional model, class weights N x K)."""
        del latents, options, class_weights
        raise self.unsupported("interpolate")

    def encode(self, images: Array, class_weights: Array | None = None) -> Array:
        """Latents of uint8 NHWC images (of the classes weighted, for a conditional model)."""
        del images, class_weights
        raise self.unsupported("encode")

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Keep the known pixels of uint8 NHWC `images`, generate the rest; one result per seed."""
        del images, known, seeds, options
        raise self.unsupported("inpaint")

    def interpolation_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The sampling settings an interpolation uses: the family's fixed ones win (diffusion: DDIM, eta 0)."""
        return self.sampling_options({**options, **self.declaration.interpolation_settings})

    def interpolate(self, start: Endpoint, end: Endpoint, frames: int, options: Mapping[str, Any]) -> Array:
        """`frames` images from start to end (both included): slerp between seed latents, else a line."""
        self.require("interpolate")
        if frames < 2:
            raise StudioError(f"invalid frame count {frames}: an interpolation needs at least 2 frames")
        options = self.interpolation_options(options)
        weights = np.linspace(0.0, 1.0, frames)
        first, second = self._endpoint_latent(start, options), self._endpoint_latent(end, options)
        walk = slerp if self.interpolation_method(start, end) == "slerp" else lerp
        latents = walk(first, second, weights)
        return self.decode(latents, options, self.interpolation_weights(start, end, frames))

    def _endpoint_latent(self, endpoint: Endpoint, options: Mapping[str, Any]) -> Array:
        if endpoint.seed is not None:
            return self.seed_latents([endpoint.seed], options)[0]
        self.require("encode")
        weights = self.endpoint_weights(endpoint)
        return self.encode(np.asarray(endpoint.image)[None], None if weights is None else weights[None])[0]

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


def checked_weights(spec: ModelSpec, class_weights: Array | None, count: int) -> Array | None:
    """A conditional model's class weights (float32 count x K), checked; None for an unconditional model."""
    if not spec.conditional:
        if class_weights is not None:
            raise StudioError(f"this {spec.family} model is not class-conditional: it takes no class weights")
        return None
    if class_weights is None:
        raise StudioError(f"this {spec.family} model is class-conditional: give each image's class weights")
    weights = np.asarray(class_weights, np.float32)
    if weights.shape != (count, len(spec.classes)):
        raise StudioError(
            f"class weights must be {count} x {len(spec.classes)}, not {' x '.join(map(str, weights.shape))}"
        )
    return weights


def with_weights(inputs: Array, weights: Array | None, part: slice) -> tuple[Array, ...]:
    """One network call's arguments: a chunk of the inputs, and of the class weights when conditional."""
    chunk = np.ascontiguousarray(inputs[part])
    return (chunk,) if weights is None else (chunk, np.ascontiguousarray(weights[part]))
