"""The gpt family's numpy pipeline (no torch): token sampling, decoding, encoding, interpolation, inpainting.

Random-number convention (what both backends copy to give the same image for the same seed and class):
image i draws `u = numpy.random.default_rng(seeds[i]).random(L)` up front, one uniform per token
position of the raster-order code grid (L = (resolution / downscale) ** 2), known positions included;
a conditional model's class comes from the seed's separate class stream (see conditioning). Position t
takes the transformer's logits (float64) divided by the temperature; with top_k > 0 only the k largest
logits stay (ties: the lower code first); with top_p < 1 only the likeliest codes whose probabilities,
summed before each, stay below top_p (the likeliest always stays); the rest get probability 0, and the
code is the smallest k with cumsum(p)[k] > u[t] (inverse CDF), capped at the last code with p > 0.

The transformer runs one position per call against a key/value cache of the positions before it. Measured
on ONNX Runtime (one CPU thread, width 128, 4 layers, 16-64 images a call), per image: 16 tokens (16 px,
downscale 4) 1.3-1.5 ms against 6-7 ms recomputing the whole prefix each step and 10-12 ms for a fixed
window of all L positions; 64 tokens 8-11 ms against 66-80 and 149-161 ms; 256 tokens 0.17 s against 1.6 s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from studio.engine.families.gpt.declaration import DECLARATION, MAX_TOKENS
from studio.engine.families.pipeline import (
    Array,
    ArrayFunction,
    Endpoint,
    ModelSpec,
    NetworkRunner,
    Pipeline,
    StepCounter,
)
from studio.engine.numerics import iterate_batches, lerp, to_network, to_uint8
from studio.errors import StudioError


def code_grid(resolution: int, downscale: int, family: str = "gpt") -> int:
    """The side of the code grid (resolution / downscale), or a one-line refusal for a sequence too long."""
    if downscale not in (2, 4, 8) or resolution % downscale:
        raise StudioError(f"downscale must be 2, 4 or 8 and divide the image size, not {downscale}")
    side = resolution // downscale
    if side * side > MAX_TOKENS:
        largest = math.isqrt(MAX_TOKENS)
        raise StudioError(
            f"{family} models take at most {MAX_TOKENS} tokens ({largest} x {largest} codes) per image, but "
            f"{resolution} px with downscale {downscale} gives {side} x {side} = {side * side}: "
            f"choose downscale {min(8, resolution // largest)} or a smaller image"
        )
    return side


def choose_tokens(logits: Array, uniforms: Array, temperature: float, top_k: int = 0, top_p: float = 1.0) -> Array:
    """One code per row of logits (N, V), int64, by the convention in this module's docstring."""
    scaled = np.asarray(logits, np.float64) / float(temperature)
    vocabulary = scaled.shape[1]
    if 0 < top_k < vocabulary:
        order = np.argsort(-scaled, axis=1, kind="stable")
        np.put_along_axis(scaled, order[:, top_k:], -np.inf, axis=1)
    scaled -= scaled.max(axis=1, keepdims=True)
    probabilities = np.exp(scaled)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    if top_p < 1.0:
        order = np.argsort(-probabilities, axis=1, kind="stable")
        ranked = np.take_along_axis(probabilities, order, axis=1)
        before = np.cumsum(ranked, axis=1) - ranked  # the mass of the likelier codes
        keep = np.zeros(probabilities.shape, bool)
        np.put_along_axis(keep, order, before < top_p, axis=1)
        probabilities = np.where(keep, probabilities, 0.0)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(probabilities, axis=1)
    chosen = (cumulative <= np.asarray(uniforms, np.float64)[:, None]).sum(axis=1)
    # Rounding can leave the last sum a hair below a u near 1: take the last code that may be drawn.
    last = vocabulary - 1 - np.argmax(probabilities[:, ::-1] > 0, axis=1)
    return np.minimum(chosen, last).astype(np.int64)


def token_uniforms(seeds: Sequence[int], length: int) -> Array:
    """u: one uniform per token position per seed (float64, N x L), drawn up front."""
    return np.stack([np.random.default_rng(seed).random(length) for seed in seeds]).reshape(len(seeds), length)


class GptPipeline(Pipeline):
    """Codes drawn one position at a time by the transformer, decoded by the VQ-VAE's decoder."""

    declaration = DECLARATION
    # 64 images per call already amortise the per-token calls; larger chunks only report progress less often.
    chunk_limit = 64

    def __init__(
        self,
        spec: ModelSpec,
        transformer: ArrayFunction,
        codebook: ArrayFunction,
        decoder: ArrayFunction,
        encoder: ArrayFunction,
    ) -> None:
        """`transformer(token, position, past[, class_weights])` -> (logits N x V, this position's cache entry);
        `codebook(codes)` -> code vectors; `decoder(vectors)` -> float32 NCHW images; `encoder(images)` -> codes."""
        super().__init__(spec)
        settings = spec.hyperparameters
        try:
            self.grid = code_grid(spec.resolution, int(settings["downscale"]))
            self.code_dim = int(settings["code_dim"])
            self.cache_entry = (int(settings["layers"]), 2, int(settings["width"]))
        except (KeyError, TypeError, ValueError):
            raise StudioError("a gpt model needs its downscale, code_dim, layers and width settings") from None
        self.transformer = transformer
        self.codebook = codebook
        self.decoder = decoder
        self.encoder = encoder

    @classmethod
    def from_networks(cls, spec: ModelSpec, network: NetworkRunner) -> GptPipeline:
        """Over the exported transformer step (both its outputs), codebook, decoder and encoder."""
        return cls(
            spec,
            network("transformer", ("logits", "present")),
            network("codebook"),
            network("decoder"),
            network("encoder"),
        )

    @property
    def length(self) -> int:
        """Tokens per image: the code grid's cells."""
        return self.grid * self.grid

    def latent_shape(self) -> tuple[int, ...]:
        """The quantised latents decoded directly: code_dim x h x w."""
        return (self.code_dim, self.grid, self.grid)

    def bytes_per_image(self) -> float:
        """The decoder's full-resolution maps, or the key/value cache going in and out of each call."""
        width = self.spec.hyperparameters.get("vq_width", 64)
        decoder = float(self.resolution**2) * self.memory_factor * float(width) * 4.0
        cache = 2.0 * 4.0 * self.length * math.prod(self.cache_entry)  # float32 keys and values, and a copy
        return max(decoder, cache)

    def sampling_options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Validated settings; top_k may not exceed the codebook's size."""
        options = super().sampling_options(values)
        codes = int(self.spec.hyperparameters.get("codebook_size", 0))
        if options["top_k"] > codes:
            raise StudioError(f"top_k: {options['top_k']} is above this model's {codes} codes")
        return options

    # --- tokens ----------------------------------------------------------------------------

    def sample_tokens(
        self,
        seeds: Sequence[int],
        settings: Mapping[str, Any],
        class_weights: Array | None,
        given: Array | None = None,
        known: Array | None = None,
        counter: StepCounter | None = None,
    ) -> Array:
        """Codes (int64 N x L) in raster order: `given` codes where `known` (N x L), the rest drawn, each
        from the transformer's logits given every code before it."""
        count, length = len(seeds), self.length
        tokens = np.zeros((count, length), np.int64) if given is None else np.array(given, np.int64)
        unknown = np.ones((count, length), bool) if known is None else ~np.asarray(known, bool)
        uniforms = token_uniforms(seeds, length)
        # Keys and values of every position so far; position-major, so the slice up to t is contiguous.
        cache = np.zeros((length, count, *self.cache_entry), np.float32)
        # Known codes after the last unknown one need no call: nothing is drawn after them.
        remaining = np.flatnonzero(unknown.any(axis=0))
        stop = int(remaining[-1]) + 1 if len(remaining) else 0
        extra = () if class_weights is None else (np.ascontiguousarray(class_weights, np.float32),)
        for position in range(stop):
            previous = tokens[:, position - 1] if position > 0 else np.zeros(count, np.int64)
            logits, entry = self.transformer(
                np.ascontiguousarray(previous), np.array([position], np.int64), cache[: position + 1], *extra
            )
            cache[position] = entry
            drawn = unknown[:, position]
            if drawn.any():
                chosen = choose_tokens(
                    logits, uniforms[:, position], settings["temperature"], settings["top_k"], settings["top_p"]
                )
                tokens[:, position] = np.where(drawn, chosen, tokens[:, position])
            if counter is not None:
                counter.advance()
        if counter is not None:
            for _ in range(stop, length):
                counter.advance()
        return tokens

    def _codes(self, tokens: Array) -> Array:
        return np.ascontiguousarray(tokens.reshape(len(tokens), self.grid, self.grid), np.int64)

    def code_latents(self, tokens: Array) -> Array:
        """The codebook vectors (float32 N x code_dim x h x w) of codes (N x L)."""
        return np.asarray(self.codebook(self._codes(tokens)), np.float32)

    def image_codes(self, pixels: Array) -> Array:
        """The codes (int64 N x L) of float32 NCHW images in [-1, 1]."""
        codes = np.rint(np.asarray(self.encoder(np.ascontiguousarray(pixels, np.float32))))
        return codes.astype(np.int64).reshape(len(pixels), self.length)

    def _decode_float(self, latents: Array) -> Array:
        return np.asarray(self.decoder(np.ascontiguousarray(latents, np.float32)), np.float32)

    # --- the operations --------------------------------------------------------------------

    def sample(self, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Codes drawn for each seed (and class), decoded."""
        settings = self.sampling_options(options)
        if len(seeds) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        weights = self.class_weights(self.labels(seeds, settings))
        parts = iterate_batches(len(seeds), self.chunk)
        counter = self.steps(len(parts) * (self.length + 1))
        images = []
        for part in parts:
            tokens = self.sample_tokens(
                seeds[part], settings, None if weights is None else weights[part], counter=counter
            )
            images.append(to_uint8(self._decode_float(self.code_latents(tokens))))
            counter.advance()
        return np.concatenate(images)

    def decode(self, latents: Array, options: Mapping[str, Any], class_weights: Array | None = None) -> Array:
        """Images (uint8 NHWC) of quantised latents (N x code_dim x h x w), decoded directly (the decoder
        takes no class: the class only steers which codes the transformer draws)."""
        del options, class_weights
        latents = np.asarray(latents, np.float32)
        if len(latents) == 0:
            return np.zeros((0, *self.spec.shape), np.uint8)
        return np.concatenate(
            [to_uint8(self._decode_float(latents[part])) for part in iterate_batches(len(latents), self.chunk)]
        )

    def encode(self, images: Array, class_weights: Array | None = None) -> Array:
        """The quantised latents (float32 N x code_dim x h x w) of uint8 NHWC images: their codes' vectors."""
        del class_weights  # the VQ-VAE takes no class
        images = np.asarray(images)
        if images.shape[1:] != self.spec.shape or images.dtype != np.uint8:
            raise StudioError(f"images to encode must be uint8 N x {' x '.join(map(str, self.spec.shape))}")
        if len(images) == 0:
            return np.zeros((0, *self.latent_shape()), np.float32)
        pixels = to_network(images)
        return np.concatenate(
            [self.code_latents(self.image_codes(pixels[part])) for part in iterate_batches(len(images), self.chunk)]
        )

    def interpolate(self, start: Endpoint, end: Endpoint, frames: int, options: Mapping[str, Any]) -> Array:
        """`frames` images on the straight line between the ends' quantised latents, decoded directly: a seed's
        end is its sample (its class: the endpoint's, or the seed's draw), an image's end its encoding."""
        self.require("interpolate")
        if frames < 2:
            raise StudioError(f"invalid frame count {frames}: an interpolation needs at least 2 frames")
        options = self.interpolation_options(options)
        first, second = self._end_latents(start, options), self._end_latents(end, options)
        return self.decode(lerp(first, second, np.linspace(0.0, 1.0, frames)), options)

    def interpolation_method(self, start: Endpoint, end: Endpoint) -> str:
        """Always a straight line, between the ends' quantised latents."""
        del start, end
        return "lerp"

    def _end_latents(self, endpoint: Endpoint, options: Mapping[str, Any]) -> Array:
        if endpoint.image is not None:
            return self.encode(np.asarray(endpoint.image)[None])[0]
        assert endpoint.seed is not None
        weights = self.endpoint_weights(endpoint)
        tokens = self.sample_tokens([endpoint.seed], options, None if weights is None else weights[None])
        return self.code_latents(tokens)[0]

    def known_tokens(self, known: Array) -> Array:
        """Which tokens (N x L) are known: those whose every pixel and channel is (NHWC mask)."""
        count = len(known)
        factor = self.resolution // self.grid
        cells = known.reshape(count, self.grid, factor, self.grid, factor, self.channels)
        return cells.all(axis=(2, 4, 5)).reshape(count, self.length)

    def inpaint(self, images: Array, known: Array, seeds: Sequence[int], options: Mapping[str, Any]) -> Array:
        """Encode the image to codes, keep the codes whose pixels are all known, draw the others in raster
        order (each given every code before it), decode, and put the known pixels back exactly."""
        settings = self.sampling_options(options)
        images, known = self.completion_inputs(images, known, len(seeds))
        if len(seeds) == 0:
            return images.copy()
        pixels = to_network(images)
        keep = np.ascontiguousarray(known.transpose(0, 3, 1, 2)).astype(np.float32)
        weights = self.class_weights(self.labels(seeds, settings))
        parts = iterate_batches(len(seeds), self.chunk)
        counter = self.steps(len(parts) * (self.length + 1))
        completed = []
        for part in parts:
            tokens = self.sample_tokens(
                seeds[part],
                settings,
                None if weights is None else weights[part],
                given=self.image_codes(pixels[part]),
                known=self.known_tokens(known[part]),
                counter=counter,
            )
            decoded = self._decode_float(self.code_latents(tokens))
            completed.append(keep[part] * pixels[part] + (1.0 - keep[part]) * decoded)
            counter.advance()
        return to_uint8(np.concatenate(completed))
