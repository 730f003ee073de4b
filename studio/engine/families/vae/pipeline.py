"""The vae family's numpy pipeline (no torch): what both backends run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.engine.families.pipeline import (
    Array,
    ArrayFunction,
    ModelSpec,
    NetworkRunner,
    Pipeline,
    checked_weights,
    with_weights,
)
from studio.engine.families.vae.declaration import DECLARATION
from studio.engine.numerics import iterate_batches, to_network, to_uint8
from studio.errors import StudioError


class VaePipeline(Pipeline):
    """Decoder images from latents; an encoder for real images; inpainting by projection."""

    declaration = DECLARATION

    def __init__(self, spec: ModelSpec, encoder: ArrayFunction, decoder: ArrayFunction) -> None:
        """`encoder`: float NCHW in [-1, 1] -> latent means; `decoder`: latents -> float NCHW in [-1, 1]."""
        super().__init__(spec)
        self.encoder = encoder
        self.decoder = decoder

    @classmethod
    def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> VaePipeline:
        """Over an exported encoder (its mean output) and decoder."""
        return cls(spec, network("encoder", "mean"), network("decoder"))

    def latent_shape(self) -> tuple[int, ...]:
        """(latent_dim,)."""
        return (int(self.spec.hyperparameters["latent_dim"]),)

    def latent_scale(self, options: Mapping[str, Any]) -> float:
        """The temperature."""
        return float(options["temperature"])

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Decode each seed's scaled Gaussian latent (of the seed's class, when conditional)."""
        options = self.sampling_options(options)
        weights = self.class_weights(self.labels(seeds, options))
        return self.decode(self.seed_latents(seeds, options), options, weights)

    def _decode_float(self, latents: Array, weights: Array | None) -> Array:
        return np.concatenate(
            [
                np.asarray(self.decoder(*with_weights(latents.astype(np.float32), weights, part)), np.float32)
                for part in iterate_batches(len(latents), self.chunk)
            ]
        )

    def _encode_float(self, images: Array, weights: Array | None) -> Array:
        return np.concatenate(
            [
                np.asarray(self.encoder(*with_weights(images, weights, part)), np.float32)
                for part in iterate_batches(len(images), self.chunk)
            ]
        )

    def decode(self, latents: Array, options: Mapping[str, Any], class_weights: Array | None = None) -> Array:
        """The decoder's mean images (given a conditional model's class weights N x K)."""
        del options
        latents = np.asarray(latents, np.float32)
        weights = checked_weights(self.spec, class_weights, len(latents))
        if len(latents) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        return to_uint8(self._decode_float(latents, weights))

    def encode(self, images: Array, class_weights: Array | None = None) -> Array:
        """Latent means (float32 N x latent_dim) of uint8 NHWC images (given a conditional model's class weights)."""
        images = np.asarray(images)
        if images.shape[1:] != self.spec.shape or images.dtype != np.uint8:
            raise StudioError(f"images to encode must be uint8 N x {' x '.join(map(str, self.spec.shape))}")
        weights = checked_weights(self.spec, class_weights, len(images))
        if len(images) == 0:
            return np.zeros((0, *self.latent_shape()), np.float32)
        return self._encode_float(to_network(images), weights)

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Projection: start the unknown pixels from the seed's sample, then encode -> decode -> restore.

        A conditional model completes each image as its seed's class (the one asked, or the seed's draw).
        """
        options = self.sampling_options(options)
        images, known = self.completion_inputs(images, known, len(seeds))
        if len(seeds) == 0:
            return images.copy()
        weights = self.class_weights(self.labels(seeds, options))
        target = to_network(images)
        keep = np.ascontiguousarray(known.transpose(0, 3, 1, 2)).astype(np.float32)
        current = keep * target + (1 - keep) * self._decode_float(self.seed_latents(seeds, options), weights)
        for _ in range(int(options["inpaint_iterations"])):
            rebuilt = self._decode_float(self._encode_float(current.astype(np.float32), weights), weights)
            current = keep * target + (1 - keep) * rebuilt
        return to_uint8(current)
