"""Helpers that write small test images of every kind to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def noise(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    """A random image: unique per seed, so it never de-duplicates by accident."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    array = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return Image.fromarray(array[..., 0] if channels == 1 else array, mode=mode)


def solid(width: int, height: int, colour: tuple[int, ...], mode: str = "RGB") -> Image.Image:
    """A single-colour image."""
    return Image.new(mode, (width, height), colour)


def save(image: Image.Image, path: Path, **options: object) -> Path:
    """Save, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def make_folder(root: Path, count: int, size: int = 48, start_seed: int = 0) -> list[Path]:
    """A folder of `count` distinct PNG and JPEG files split over two class folders."""
    paths = []
    for index in range(count):
        label = "a" if index % 2 == 0 else "b"
        suffix = ".png" if index % 3 else ".jpg"
        paths.append(save(noise(size, size, start_seed + index), root / label / f"img{index:05d}{suffix}"))
    return paths
