"""Import speed: Studio's dataset import against a bare single-process Pillow loop, same files, one run.

Makes a folder of 256x256 JPEG and PNG files (photo-like content), then times
  baseline: for each file, Image.open(path).convert("RGB").resize((32, 32)) in one process;
  studio:   the full import (decode, EXIF, crop, resize, hash, de-duplicate, write, commit).
Prints images/s for both and the ratio. Usage: python bench/import_speed.py [--count 3000] [--size 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Studio's modules are imported inside functions: spawned decoding workers re-import this
# script as their main module, and should pay for no more than the `studio` command does.


def photo_like(seed: int, side: int = 256) -> Image.Image:
    """Smooth gradients, a few shapes, blur and sensor-like noise: compresses like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    base = np.stack(
        [rng.uniform(40, 200) + rng.uniform(-60, 60) * x + rng.uniform(-60, 60) * y for _ in range(3)], axis=-1
    )
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.integers(0, side, 2)
        r = int(rng.integers(10, side // 3))
        draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    image = image.filter(ImageFilter.GaussianBlur(1.5))
    noisy = np.asarray(image, dtype=np.int16) + rng.normal(0, 4, (side, side, 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def make_files(folder: Path, count: int) -> list[Path]:
    """Half JPEG (quality 90), half PNG."""
    paths = []
    for index in range(count):
        image = photo_like(index)
        path = folder / (f"{index:05d}.jpg" if index % 2 == 0 else f"{index:05d}.png")
        image.save(path, quality=90) if path.suffix == ".jpg" else image.save(path, compress_level=6)
        paths.append(path)
    return paths


def baseline(paths: list[Path], size: int) -> float:
    """The bare loop: seconds for all files."""
    start = time.perf_counter()
    for path in paths:
        Image.open(path).convert("RGB").resize((size, size))
    return time.perf_counter() - start


def studio_import(folder: Path | list[Path], home_root: Path, size: int, name: str) -> tuple[float, int]:
    """The full Studio import: seconds and images imported."""
    from studio.engine.datasets.importer import import_dataset
    from studio.engine.jobs import run_job
    from studio.home import DataHome
    from studio.store.database import open_store

    store = open_store(DataHome(home_root))
    try:
        start = time.perf_counter()
        sources = [str(p) for p in folder] if isinstance(folder, list) else [str(folder)]
        result = run_job(import_dataset(store, sources, name, size=size, channels=3))
        return time.perf_counter() - start, result.imported
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="best of N for each side")
    args = parser.parse_args()
    from studio.engine.datasets.importer import default_workers

    work = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    try:
        folder = work / "images"
        folder.mkdir()
        print(f"making {args.count} 256x256 files (half JPEG, half PNG) ...", file=sys.stderr)
        paths = make_files(folder, args.count)
        megabytes = sum(p.stat().st_size for p in paths) / 1e6
        baseline(paths[:200], args.size)  # warm the page cache and Pillow's plugins
        base_times, studio_times = [], []
        for round_index in range(args.rounds):
            base_times.append(baseline(paths, args.size))
            seconds, imported = studio_import(folder, work / "home", args.size, f"bench{round_index}")
            assert imported == args.count, imported
            studio_times.append(seconds)
        base, ours = min(base_times), min(studio_times)
        per_format = {}
        for suffix in (".jpg", ".png"):
            subset = [p for p in paths if p.suffix == suffix]
            bare_s = min(baseline(subset, args.size) for _ in range(args.rounds))
            studio_s = min(
                studio_import(subset, work / "home", args.size, f"fmt{suffix[1:]}{r}")[0] for r in range(args.rounds)
            )
            per_format[suffix] = (len(subset), bare_s, studio_s)
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, Pillow {Image.__version__}"
        )
        print(
            f"files: {args.count} ({megabytes:.0f} MB), 256x256 -> {args.size}x{args.size}, "
            f"studio workers: {default_workers()}"
        )
        print(f"{'method':<42} {'images/s':>10} {'seconds':>9}")
        print(f"{'bare Image.open().convert().resize() loop':<42} {args.count / base:>10.0f} {base:>9.2f}")
        print(f"{'studio datasets import':<42} {args.count / ours:>10.0f} {ours:>9.2f}")
        for suffix, (count, bare_s, studio_s) in per_format.items():
            print(f"{'  ' + suffix[1:].upper() + ' only: bare loop':<42} {count / bare_s:>10.0f} {bare_s:>9.2f}")
            print(
                f"{'  ' + suffix[1:].upper() + ' only: studio':<42} {count / studio_s:>10.0f} {studio_s:>9.2f}"
                f"   ratio {bare_s / studio_s:.2f}x"
            )
        print(f"ratio studio / bare loop (all files): {base / ours:.2f}x (target >= 3x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
