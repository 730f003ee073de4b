"""The gan family's numpy pipeline (no torch): what both backends run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.engine.families.gan.declaration import DECLARATION
from studio.engine.families.pipeline import (
    Array,
    ArrayFunction,
    ModelSpec,
    NetworkRunner,
    Pipeline,
    checked_weights,
    with_weights,
)
from studio.engine.numerics import iterate_batches, to_uint8


class GanPipeline(Pipeline):
    """z -> generator -> image; interpolation walks the latent sphere."""

    declaration = DECLARATION

    def __init__(self, spec: ModelSpec, generator: ArrayFunction) -> None:
        super().__init__(spec)
        self.generator = generator

    @classmethod
    def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> GanPipeline:
        """Over an exported generator."""
        return cls(spec, network("generator"))

    def latent_shape(self) -> tuple[int, ...]:
        """(latent_dim,)."""
        return (int(self.spec.hyperparameters["latent_dim"]),)

    def latent_scale(self, options: Mapping[str, Any]) -> float:
        """The truncation: smaller latents are safer and less varied."""
        return float(options["truncation"])

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Decode each seed's scaled Gaussian latent (of the seed's class, when conditional)."""
        options = self.sampling_options(options)
        weights = self.class_weights(self.labels(seeds, options))
        return self.decode(self.seed_latents(seeds, options), options, weights)

    def decode(self, latents: Array, options: Mapping[str, Any], class_weights: Array | None = None) -> Array:
        """The generator's images of explicit latents (and, for a conditional model, class weights N x K)."""
        del options
        latents = np.asarray(latents, np.float32)
        weights = checked_weights(self.spec, class_weights, len(latents))
        if len(latents) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        return np.concatenate(
            [
                to_uint8(self.generator(*with_weights(latents[part], weights, part)))
                for part in iterate_batches(len(latents), self.chunk)
            ]
        )
