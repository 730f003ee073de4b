"""Sample datasets that need no download: UCI handwritten digits (shipped) and procedural shapes."""

from __future__ import annotations

import gzip
import hashlib
import math
from collections.abc import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw

from studio.engine.datasets.storage import DatasetSummary, DatasetWriter
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.errors import StudioError
from studio.limits import SAMPLE_COUNT, SEED
from studio.resources import resource
from studio.store.database import Store

SHAPE_KINDS = ("circle", "square", "triangle", "star", "ring")


def digits_images() -> Iterator[tuple[Image.Image, str]]:
    """The 1,797 8x8 UCI digits as white-on-black grey images with their labels."""
    path = resource("samples", "digits.csv.gz")
    with gzip.open(path, "rt", encoding="ascii") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    pixels = np.clip(table[:, :64] * 255 // 16, 0, 255).astype(np.uint8).reshape(-1, 8, 8)
    for image, label in zip(pixels, table[:, 64], strict=True):
        yield Image.fromarray(image, mode="L"), str(int(label))


def _shape(
    draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, angle: float, fill: tuple[int, ...]
) -> None:
    def polygon(points: int, radii: tuple[float, ...]) -> list[tuple[float, float]]:
        steps = points * len(radii)
        return [
            (
                cx + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / steps),
                cy + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / steps),
            )
            for i in range(steps)
        ]

    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif kind == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=fill, width=max(1, int(r * 0.35)))
    elif kind == "square":
        draw.polygon(polygon(4, (r * 1.15,)), fill=fill)
    elif kind == "triangle":
        draw.polygon(polygon(3, (r * 1.2,)), fill=fill)
    else:
        draw.polygon(polygon(5, (r * 1.25, r * 0.5)), fill=fill)


def shapes_images(count: int, seed: int, size: int) -> Iterator[tuple[Image.Image, str]]:
    """Seeded coloured shapes on tinted backgrounds, drawn at 4x and downsampled (antialiased)."""
    rng = np.random.default_rng(seed)
    scale = 4
    canvas = size * scale
    for _ in range(count):
        kind = SHAPE_KINDS[int(rng.integers(len(SHAPE_KINDS)))]
        background = tuple(int(v) for v in rng.integers(0, 70, 3))
        hue_rgb = rng.random(3)
        hue_rgb = hue_rgb / max(hue_rgb.max(), 1e-6)
        fill = tuple(int(90 + 165 * v) for v in hue_rgb)
        radius = canvas * rng.uniform(0.18, 0.36)
        cx = rng.uniform(radius, canvas - radius)
        cy = rng.uniform(radius, canvas - radius)
        image = Image.new("RGB", (canvas, canvas), background)
        _shape(ImageDraw.Draw(image), kind, cx, cy, radius, rng.uniform(0, 2 * math.pi), fill)
        yield image.resize((size, size), Image.Resampling.LANCZOS), kind


SAMPLES: dict[str, tuple[str, int]] = {
    # name: (what it is, default channels)
    "digits": ("1,797 handwritten digits 0-9 (UCI, 8x8 upscaled), 10 classes", 1),
    "shapes": ("procedural coloured shapes (circle, square, triangle, star, ring), seeded", 3),
}


def add_sample(
    store: Store,
    sample: str,
    name: str | None = None,
    size: int = 32,
    channels: int | None = None,
    count: int = 2000,
    seed: int = 0,
    cancel: CancelToken | None = None,
) -> Job:
    """Create a sample dataset; yields Progress, then Finished(DatasetSummary)."""
    if sample not in SAMPLES:
        raise StudioError(f"unknown sample '{sample}': choose one of {', '.join(SAMPLES)}")
    SAMPLE_COUNT.check(count)
    SEED.check(seed)
    cancel = cancel or CancelToken()
    channels = channels or SAMPLES[sample][1]
    writer = DatasetWriter(store, name or sample, size, channels, origin=f"sample:{sample}")
    source: Callable[[], Iterator[tuple[Image.Image, str]]]
    if sample == "digits":
        total = 1797

        def source() -> Iterator[tuple[Image.Image, str]]:
            return digits_images()
    else:
        total = count

        def source() -> Iterator[tuple[Image.Image, str]]:
            return shapes_images(count, seed, size)

    try:
        mode = "L" if channels == 1 else "RGB"
        for index, (image, label) in enumerate(source()):
            cancel.check()
            if image.size != (size, size):
                resample = Image.Resampling.BICUBIC if image.size[0] < size else Image.Resampling.LANCZOS
                image = image.resize((size, size), resample)
            pixels = np.asarray(image.convert(mode), dtype=np.uint8).tobytes()
            digest = hashlib.blake2b(pixels, digest_size=16).hexdigest()
            writer.add(pixels, digest, f"{sample}#{index}", label)
            if (index + 1) % 100 == 0 or index + 1 == total:
                yield Progress("generating", index + 1, total, f"{sample}: {index + 1}/{total}")
        summary: DatasetSummary = writer.commit({"sample": sample, "seed": seed, "duplicates": writer.duplicates})
    except BaseException:
        writer.discard()
        raise
    yield Finished(summary)
