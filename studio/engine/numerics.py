"""Random-number conventions and array conversions that both backends share (numpy only).

Every random number of a generated image comes from `numpy.random.default_rng(seed)`, one generator
per image, so the same seed gives the same image in any batch, with torch or with ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LEVELS = 256  # values a sub-pixel can take
_HALF_RANGE = np.float32(127.5)
_ONE = np.float32(1.0)


def gaussian_noise(seeds: Sequence[int], shape: tuple[int, ...]) -> np.ndarray:
    """One standard-normal array of `shape` per seed, float32, from default_rng(seed)."""
    if len(seeds) == 0:
        return np.zeros((0, *shape), np.float32)
    return np.stack([np.random.default_rng(seed).standard_normal(shape, dtype=np.float32) for seed in seeds])


def seed_generators(seeds: Sequence[int]) -> list[np.random.Generator]:
    """One numpy generator per image, for procedures that draw several arrays per image."""
    return [np.random.default_rng(seed) for seed in seeds]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float NCHW in [-1, 1] to uint8 NHWC, rounding half to even (the same float32 steps as torch's path)."""
    scaled = (np.clip(np.asarray(images, np.float32), -_ONE, _ONE) + _ONE) * _HALF_RANGE
    return np.rint(scaled).astype(np.uint8).transpose(0, 2, 3, 1)


def from_levels(levels: np.ndarray) -> np.ndarray:
    """Integer values 0..255 (any shape) to the networks' input scale [-1, 1], float32."""
    return np.asarray(levels).astype(np.float32) / _HALF_RANGE - _ONE


def to_network(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC images to float32 NCHW in [-1, 1]."""
    return np.ascontiguousarray(from_levels(images).transpose(0, 3, 1, 2))


def inverse_cdf(logits: np.ndarray, temperature: float, uniforms: np.ndarray) -> np.ndarray:
    """Per row of logits (N, 256): the smallest k with cumsum(softmax(logits / T))[k] > u, capped at 255."""
    scaled = np.asarray(logits, np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    probabilities = np.exp(scaled)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(probabilities, axis=1)
    # cumsum is non-decreasing, so the count of entries <= u is the first index above u.
    chosen = (cumulative <= np.asarray(uniforms)[:, None]).sum(axis=1)
    return np.minimum(chosen, LEVELS - 1)


def slerp(start: np.ndarray, end: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spherical interpolation between two Gaussian latents, one result per weight in [0, 1].

    Gaussian samples live near a sphere; a straight line between two of them passes through
    low-norm latents the model rarely saw (washed-out frames), the great circle does not.
    """
    a = np.asarray(start, np.float64).ravel()
    b = np.asarray(end, np.float64).ravel()
    weights = np.asarray(weights, np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    cosine = float(np.clip(a @ b / norms, -1.0, 1.0)) if norms > 0 else 1.0
    angle = np.arccos(cosine)
    if np.sin(angle) < 1e-6:  # (anti)parallel: the great circle is not unique, the line is fine
        return lerp(start, end, weights)
    first = np.sin((1.0 - weights) * angle) / np.sin(angle)
    second = np.sin(weights * angle) / np.sin(angle)
    frames = first[:, None] * a[None, :] + second[:, None] * b[None, :]
    return frames.reshape(len(weights), *np.shape(start)).astype(np.float32)


def lerp(start: np.ndarray, end: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Straight-line interpolation (for VAE means, which are not Gaussian samples)."""
    a = np.asarray(start, np.float64)
    b = np.asarray(end, np.float64)
    w = np.asarray(weights, np.float64).reshape(-1, *([1] * a.ndim))
    return ((1.0 - w) * a + w * b).astype(np.float32)


def iterate_batches(count: int, batch: int) -> list[slice]:
    """Slices covering range(count) in chunks of `batch`."""
    return [slice(start, min(count, start + batch)) for start in range(0, count, batch)]
