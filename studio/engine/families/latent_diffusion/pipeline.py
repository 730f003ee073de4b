"""The latent diffusion family's numpy pipeline (no torch): diffusion over latents, then the decoder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.engine.families.diffusion.pipeline import DiffusionPipeline, inpainting_sampler
from studio.engine.families.latent_diffusion.declaration import DECLARATION
from studio.engine.families.pipeline import Array, ArrayFunction, ModelSpec, NetworkRunner
from studio.engine.numerics import iterate_batches, seed_generators, to_network, to_uint8
from studio.errors import StudioError


class LatentDiffusionPipeline(DiffusionPipeline):
    """DDPM/DDIM in latent space (x_T has the latent grid's shape), decoded once at the end, as diffusers'
    LDMPipeline does: image = decoder(latents / scaling_factor). Inpainting runs RePaint on the encoded
    image's latents with the mask shrunk to the latent grid, then puts the known pixels back. A conditional
    model guides the U-Net with the class (see DiffusionPipeline); the autoencoder knows no classes."""

    declaration = DECLARATION

    def __init__(
        self, spec: ModelSpec, denoiser: ArrayFunction, decoder: ArrayFunction, encoder: ArrayFunction
    ) -> None:
        """`decoder(latents)` -> float32 NCHW images in [-1, 1]; `encoder(images)` -> unscaled latents."""
        super().__init__(spec, denoiser)
        try:
            self.scaling_factor = float(spec.extras["scaling_factor"])
            shape = tuple(int(n) for n in spec.extras["latent_shape"])
        except (KeyError, TypeError, ValueError):
            raise StudioError("a latent diffusion model needs its latent shape and scaling factor") from None
        if len(shape) != 3 or not self.scaling_factor > 0:
            raise StudioError("a latent diffusion model's latent shape is C x H x W and its scaling factor positive")
        self._latent_shape = shape
        self.decoder = decoder
        self.encoder = encoder

    @classmethod
    def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> LatentDiffusionPipeline:
        """Over an exported denoiser, decoder and encoder."""
        return cls(spec, network("denoiser"), network("decoder"), network("encoder"))

    def latent_shape(self) -> tuple[int, ...]:
        """x_T: the latent grid, C x h x w."""
        return self._latent_shape

    def bytes_per_image(self) -> float:
        """The decoder's full-resolution activations dominate: sized by the autoencoder's width."""
        width = self.spec.hyperparameters.get("autoencoder_width", 128)
        return float(self.resolution**2) * self.memory_factor * float(width) * 4.0

    @property
    def downscale(self) -> int:
        """How many image pixels a latent cell covers, a side."""
        return self.resolution // self._latent_shape[1]

    def to_images(self, latents: Array) -> Array:
        """Denoised latents to float32 NCHW images (LDMPipeline: decode(latents / scaling_factor))."""
        return np.asarray(self.decoder(np.asarray(latents / self.scaling_factor, np.float32)), np.float32)

    def to_latents(self, images: Array) -> Array:
        """float32 NCHW images in [-1, 1] to scaled latents (the space the U-Net works in)."""
        return np.asarray(self.encoder(images), np.float32) * np.float32(self.scaling_factor)

    def latent_mask(self, keep: Array) -> Array:
        """A pixel mask (N x 1 x H x W, 1 = known) shrunk to the latent grid: a cell is known only when every
        pixel it covers is, so no generated pixel is decoded from a latent pinned to the old image."""
        n, c, h, w = keep.shape
        factor = self.downscale
        blocks = keep.reshape(n, c, h // factor, factor, w // factor, factor)
        return np.ascontiguousarray(blocks.min(axis=(3, 5))).astype(np.float32)

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """RePaint in latent space, decoded, with the known pixels put back exactly."""
        options = inpainting_sampler(self.sampling_options(options))
        images, known = self.completion_inputs(images, known, len(seeds))
        if len(seeds) == 0:
            return images.copy()
        pixels = to_network(images)
        keep = np.ascontiguousarray(known.transpose(0, 3, 1, 2)).astype(np.float32)
        keep_pixel = keep.min(axis=1, keepdims=True)
        weights = self.class_weights(self.labels(seeds, options))
        completed = []
        parts = iterate_batches(len(seeds), self.chunk_for(options))
        counter = self.steps(len(parts) * self.denoise_steps(options, inpainting=True))
        for part in parts:
            generators = seed_generators(seeds[part])
            known_latents = self.to_latents(pixels[part])
            cells = np.broadcast_to(self.latent_mask(keep_pixel[part]), known_latents.shape)
            initial = self.initial_noise(generators)
            latents = self.denoise(
                initial,
                generators,
                options,
                known=known_latents,
                keep=cells,
                counter=counter,
                class_weights=None if weights is None else weights[part],
            )
            decoded = self.to_images(latents)
            completed.append(keep[part] * pixels[part] + (1.0 - keep[part]) * decoded)
        return to_uint8(np.concatenate(completed))
