"""Images to the encoder's input, the same way for training, the dataset and the gallery (torch-free).

Resizing with Pillow (a box/bilinear filter with antialiasing) and a fixed channel rule means an image
gets the same embedding whether it came from the dataset's array file or from a gallery PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from studio.errors import StudioError

GREY = np.array([0.299, 0.587, 0.114], np.float32)


def fit_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 NHWC with `channels` channels: colour to grey by luma, grey to colour by repetition."""
    if images.shape[-1] == channels:
        return images
    if channels == 1:
        return np.rint(images[..., :3].astype(np.float32) @ GREY)[..., None].clip(0, 255).astype(np.uint8)
    return np.repeat(images[..., :1], 3, axis=-1)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 NHWC resized to size x size (unchanged when already that size)."""
    if images.shape[1:3] == (size, size):
        return images
    resized = []
    for image in images:
        picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        resized.append(np.asarray(picture.resize((size, size), Image.Resampling.BILINEAR)).reshape(size, size, -1))
    return np.stack(resized) if resized else np.zeros((0, size, size, images.shape[-1]), np.uint8)


def to_input(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """uint8 NHWC (any size, 1 or 3 channels) to the encoder's float32 NCHW input in [-1, 1]."""
    fitted = resize(fit_channels(np.asarray(images, np.uint8), channels), size)
    return np.ascontiguousarray(fitted.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(127.5) - np.float32(1.0)


def read_image(path: Path) -> np.ndarray:
    """A gallery PNG as uint8 HWC (grey as one channel); a clear error when it cannot be read."""
    try:
        with Image.open(path) as picture:
            picture.load()
            mode = "L" if picture.mode in ("L", "LA", "I", "I;16", "1") else "RGB"
            pixels = np.asarray(picture.convert(mode))
    except (OSError, ValueError) as error:
        raise StudioError(f"cannot read the image {path.name}: {error}") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels
