"""The onnx_generator family's numpy pipeline: seeded noise -> the imported generator -> uint8 images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.engine.families.gan.pipeline import GanPipeline
from studio.engine.families.onnx_generator.declaration import DECLARATION, GENERATOR_ROLE
from studio.engine.families.pipeline import Array, ArrayFunction, ModelSpec, NetworkRunner
from studio.engine.numerics import iterate_batches, to_uint8
from studio.errors import StudioError

# The value ranges an imported generator's output may have (what `--value-range` takes).
VALUE_RANGES: tuple[tuple[float, float], ...] = ((-1.0, 1.0), (0.0, 1.0), (0.0, 255.0))


def to_unit_range(images: Array, value_range: Sequence[float]) -> Array:
    """Outputs in `value_range` rescaled to [-1, 1], float32 (the scale `to_uint8` takes)."""
    low, high = (float(end) for end in value_range)
    images = np.asarray(images, np.float32)
    if (low, high) == (-1.0, 1.0):
        return images  # Studio's own scale: no arithmetic, so no rounding differences
    return (images - np.float32(low)) * np.float32(2.0 / (high - low)) - np.float32(1.0)


class OnnxGeneratorPipeline(GanPipeline):
    """z ~ N(0, 1) of the file's latent shape, times the truncation -> generator -> image, like a GAN.

    The spec's extras carry what the import found: `latent_shape` (one image's input, batch left out),
    `value_range` ([low, high] of the output) and `fixed_batch` (the batch size a file without a dynamic
    batch axis takes; shorter batches are padded with zeros and the padding's images dropped).
    """

    declaration = DECLARATION

    def __init__(self, spec: ModelSpec, generator: ArrayFunction) -> None:
        super().__init__(spec, generator)
        try:
            self._latent_shape = tuple(int(size) for size in spec.extras["latent_shape"])
            low, high = (float(end) for end in spec.extras["value_range"])
            fixed = spec.extras.get("fixed_batch")
            self.fixed_batch = int(fixed) if fixed is not None else None
        except (KeyError, TypeError, ValueError):
            raise StudioError(
                "an onnx_generator model needs its latent_shape and value_range: import it again"
            ) from None
        if not self._latent_shape or min(self._latent_shape) < 1 or not high > low:
            raise StudioError("an onnx_generator model's latent_shape or value_range is invalid: import it again")
        self.value_range = (low, high)
        self.batch = self.fixed_batch or self.chunk  # images per call

    @classmethod
    def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> OnnxGeneratorPipeline:
        """Over the imported file's session."""
        return cls(spec, network(GENERATOR_ROLE))

    def latent_shape(self) -> tuple[int, ...]:
        """The file's input shape without its batch axis, e.g. (100, 1, 1)."""
        return self._latent_shape

    def decode(self, latents: Array, options: Mapping[str, Any], class_weights: Array | None = None) -> Array:
        """The generator's images of explicit latents, mapped from its value range to uint8."""
        del options
        latents = np.asarray(latents, np.float32)
        if len(latents) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        return np.concatenate([self._run(latents[part]) for part in iterate_batches(len(latents), self.batch)])

    def _run(self, latents: Array) -> Array:
        count = len(latents)
        if self.fixed_batch is not None and count < self.fixed_batch:
            padding = np.zeros((self.fixed_batch - count, *latents.shape[1:]), np.float32)
            latents = np.concatenate([latents, padding])
        images = np.asarray(self.generator(np.ascontiguousarray(latents)))[:count]
        expected = (count, self.channels, self.resolution, self.resolution)
        if images.shape != expected:
            raise StudioError(f"the imported generator returned shape {images.shape}, not {expected}")
        return to_uint8(to_unit_range(images, self.value_range))
