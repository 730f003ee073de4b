"""The pixelcnn family's numpy pipeline (no torch): what both backends run."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from studio.engine.families.pipeline import Array, ArrayFunction, ModelSpec, NetworkRunner, Pipeline, StepCounter
from studio.engine.families.pixelcnn.declaration import DECLARATION
from studio.engine.numerics import from_levels, inverse_cdf, iterate_batches, to_network
from studio.errors import StudioError


class RasterLogits(Protocol):
    """How a PixelCNN backend computes the logits at one sub-pixel position during raster sampling."""

    def start_row(self, inputs: Array, row: int) -> None:
        """Called before the first column of `row`; rows above it are final from now on."""

    def logits(self, inputs: Array, row: int, column: int) -> Array:
        """Logits (N, 256, C) at (row, column) given float32 NCHW `inputs` in [-1, 1]."""


class PixelCnnPipeline(Pipeline):
    """Sub-pixel-by-sub-pixel sampling and completion; the whole batch shares each network call.

    `raster` makes a fresh RasterLogits for each chunk of images: called with no argument for an
    unconditional model, with the chunk's class weights (float32 N x K) for a conditional one.
    """

    declaration = DECLARATION
    # 64 images per call already amortise the per-sub-pixel calls; a larger chunk would only make each
    # row (one progress step) slower to report.
    chunk_limit = 64

    def __init__(self, spec: ModelSpec, raster: Callable[..., RasterLogits]) -> None:
        super().__init__(spec)
        self.raster = raster

    @classmethod
    def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> PixelCnnPipeline:
        """Over an exported PixelCNN run on the window each sub-pixel depends on (see WindowRaster)."""
        if spec.reach is None:
            raise StudioError("the PixelCNN manifest lacks its reach: export the model again")
        run, reach = network("pixelcnn"), int(spec.reach)
        return cls(spec, lambda *class_weights: WindowRaster(run, reach, *class_weights))

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Completion with nothing known."""
        shape = (len(seeds), *self.spec.shape)
        return self.inpaint(np.zeros(shape, np.uint8), np.zeros(shape, bool), seeds, options)

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Keep the known sub-pixels and sample the rest in raster order, conditioned on all before them.

        A conditional model draws every image of the class asked for (or each seed's own class).
        Each row of each chunk is one step for `on_step`."""
        settings = self.sampling_options(options)
        images, known = self.completion_inputs(images, known, len(seeds))
        weights = self.class_weights(self.labels(seeds, settings))
        result = images.copy()
        parts = iterate_batches(len(seeds), self.chunk)
        counter = self.steps(len(parts) * self.resolution)
        for part in parts:
            uniforms = np.stack([np.random.default_rng(seed).random(self.spec.shape) for seed in seeds[part]])
            raster = self.raster() if weights is None else self.raster(weights[part])
            result[part] = self._complete_chunk(
                raster, images[part], known[part], uniforms, settings["temperature"], counter
            )
        return result

    def _complete_chunk(
        self,
        raster: RasterLogits,
        images: Array,
        known: Array,
        uniforms: Array,
        temperature: float,
        counter: StepCounter,
    ) -> Array:
        levels = images.copy()
        inputs = to_network(levels)
        for row in range(self.resolution):
            if not known[:, row].all():
                self._sample_row(raster, levels, inputs, known, uniforms, temperature, row)
            counter.advance()
        return levels

    def _sample_row(
        self,
        raster: RasterLogits,
        levels: Array,
        inputs: Array,
        known: Array,
        uniforms: Array,
        temperature: float,
        row: int,
    ) -> None:
        """Sample the unknown sub-pixels of one row in place (levels and network inputs both)."""
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


class WindowRaster:
    """PixelCNN logits from the network run on the window around each sub-pixel (the whole batch at once).

    A logit at (row, column) depends on at most `reach + 1` rows above and `reach` columns either side,
    so the window [row - reach - 1, row] x [column - reach, column + reach], clipped to the image, gives
    the same numbers as the whole image at a fraction of the cost. A conditional model's network also
    takes the chunk's class weights.
    """

    def __init__(self, network: ArrayFunction, reach: int, class_weights: Array | None = None) -> None:
        self.network = network
        self.reach = reach
        self.class_weights = class_weights

    def start_row(self, inputs: Array, row: int) -> None:
        """Nothing to precompute: each call runs its own window."""

    def logits(self, inputs: Array, row: int, column: int) -> Array:
        """Logits (N, 256, C) at (row, column)."""
        top = max(0, row - 1 - self.reach)
        left = max(0, column - self.reach)
        right = min(inputs.shape[3], column + self.reach + 1)
        window = np.ascontiguousarray(inputs[:, :, top : row + 1, left:right])
        if self.class_weights is None:
            logits = np.asarray(self.network(window))
        else:
            logits = np.asarray(self.network(window, self.class_weights))
        return logits[:, :, :, -1, column - left]
