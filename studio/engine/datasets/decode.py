"""Decoding one untrusted image into a dataset's square uint8 array.

This module runs inside worker processes, so it imports only Pillow and numpy. Every failure
becomes a `Skip` with a one-line reason; nothing here writes a file.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import multiprocessing
import os
import signal
import stat
import sys
import threading
import time
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

try:  # libspng decodes 8-bit PNGs about 1.6x faster than Pillow; Pillow handles everything else
    import pyspng as _spng
except ImportError:  # pragma: no cover - a declared dependency, absent only in odd installs
    _spng = None

ALLOWED_FORMATS = {
    "PNG": "PNG",
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "BMP": "BMP",
    "GIF": "GIF",
    "WEBP": "WebP",
    "TIFF": "TIFF",
}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".dib", ".gif", ".webp", ".tif", ".tiff"})
THUMBNAIL_SIZE = 64
BACKGROUND = 255  # transparent pixels become white, as on a page

# Truncated files must fail, never be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class ImportLimits:
    """Caps that keep a hostile or mistaken input from exhausting memory or disk."""

    max_file_bytes: int = 256 * 1024 * 1024
    max_pixels: int = 64_000_000
    max_archive_entries: int = 200_000
    max_archive_bytes: int = 8 * 1024**3


class Skip(Exception):  # noqa: N818 - it is a verdict, not an error
    """Why one input was not imported (a one-line reason)."""


@dataclass(frozen=True)
class Decoded:
    """A decoded image: pixels at the dataset size, an optional thumbnail, and a content hash."""

    pixels: bytes
    thumbnail: bytes | None
    digest: str


def human_bytes(count: int) -> str:
    """A byte count for people: 512 B, 3.2 MiB, 8.0 GiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


def read_file(path: str, limits: ImportLimits) -> bytes:
    """Read a regular file, refusing links, special files and files over the size cap."""
    try:
        info = os.lstat(path)
    except OSError as error:
        raise Skip(f"cannot read: {error.strerror or error}") from None
    if stat.S_ISLNK(info.st_mode):
        raise Skip("symbolic link (not followed)")
    if not stat.S_ISREG(info.st_mode):
        raise Skip("not a regular file")
    if info.st_size == 0:
        raise Skip("empty file (0 bytes)")
    if info.st_size > limits.max_file_bytes:
        raise Skip(f"file too large: {human_bytes(info.st_size)} (limit {human_bytes(limits.max_file_bytes)})")
    try:
        # O_NOFOLLOW closes the window between lstat and open where a link could be swapped in.
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        descriptor = os.open(path, flags)
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except OSError as error:
        raise Skip(f"cannot read: {error.strerror or error}") from None
    if not data:
        raise Skip("empty file (0 bytes)")
    if len(data) > limits.max_file_bytes:
        raise Skip(f"file too large: over {human_bytes(limits.max_file_bytes)}")
    return data


_open_archives: dict[str, zipfile.ZipFile] = {}


def read_archive_member(archive: str, member: str, limits: ImportLimits) -> bytes:
    """Read one member of a zip into memory (never to disk), bounded by the size cap."""
    zf = _open_archives.get(archive)
    if zf is None:
        try:
            zf = zipfile.ZipFile(archive)
        except (OSError, zipfile.BadZipFile) as error:
            raise Skip(f"cannot read archive: {error}") from None
        _open_archives[archive] = zf
    try:
        info = zf.getinfo(member)
        if info.file_size == 0:
            raise Skip("empty file (0 bytes)")
        if info.file_size > limits.max_file_bytes:
            raise Skip(f"file too large: {human_bytes(info.file_size)} (limit {human_bytes(limits.max_file_bytes)})")
        with zf.open(info) as handle:
            data = handle.read(limits.max_file_bytes + 1)
    except Skip:
        raise
    except RuntimeError as error:  # zipfile's way to say "encrypted, password required"
        raise Skip(f"cannot read archive entry: {error}") from None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, NotImplementedError) as error:
        raise Skip(f"corrupt archive entry: {error}") from None
    if len(data) > limits.max_file_bytes:
        raise Skip(f"file too large: over {human_bytes(limits.max_file_bytes)}")
    return data


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16- and 32-bit grey images into 0..255 instead of letting convert() clip them."""
    array = np.asarray(image)
    if image.mode == "F":
        array = np.nan_to_num(array.astype(np.float64))
        peak = float(array.max(initial=0.0))
        scaled = array * 255.0 if peak <= 1.0 else array * (255.0 / peak if peak > 255 else 1.0)
    else:
        array = array.astype(np.int64)
        peak = int(array.max(initial=0))
        if peak <= 255:
            scaled = array
        elif peak <= 65535:
            scaled = array / 257.0
        else:
            scaled = array * (255.0 / peak)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _flatten(image: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode to L or RGB, compositing transparency over a white background."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        image = _to_8bit(image)
    elif mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
        image = Image.alpha_composite(background, rgba).convert("RGB")
    target = "L" if channels == 1 else "RGB"
    if image.mode != target:
        image = image.convert(target)  # CMYK, YCbCr, LAB, HSV, L<->RGB
    return image


def _square(image: Image.Image, size: int) -> Image.Image:
    """Center-crop to a square and resize with an antialiasing filter."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    box = (left, top, left + side, top + side)
    if side == size:
        return image.crop(box)
    resample = Image.Resampling.LANCZOS if side > size else Image.Resampling.BICUBIC
    # reducing_gap: a cheap box reduction first, then the exact filter on a small image.
    return image.resize((size, size), resample, box=box, reducing_gap=2.0)


def decode_image(data: bytes, size: int, channels: int, limits: ImportLimits) -> Decoded:
    """Fully decode image bytes into `size`x`size`x`channels` uint8, or raise Skip."""
    if not data:
        raise Skip("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Image, not ImageFile: the decoded, flattened and resized images below replace it.
            image: Image.Image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise Skip(f"decompression bomb refused: {error}") from None
    except UnidentifiedImageError:
        raise Skip("not an image (content is not a known image format)") from None
    except Exception as error:  # noqa: BLE001 - any parser failure on user bytes means a bad file
        raise Skip(f"corrupt image: {_one_line(error)}") from None
    with image:
        kind = ALLOWED_FORMATS.get(image.format or "")
        if kind is None:
            raise Skip(f"unsupported format {image.format} (allowed: PNG, JPEG, BMP, GIF, WebP, TIFF)")
        width, height = image.size
        if width < 1 or height < 1:
            raise Skip("corrupt image: no pixels")
        if width * height > limits.max_pixels:
            raise Skip(f"image too large: {width}x{height} pixels (limit {limits.max_pixels / 1e6:g} megapixels)")
        try:
            if kind == "PNG" and _fast_png_ok(image, data):
                image = _decode_png_fast(data)
            else:
                if kind == "JPEG":
                    # DCT scaling decodes at 1/2..1/8 size: the biggest single speed-up for photos.
                    image.draft("L" if channels == 1 else "RGB", (size * 2, size * 2))
                image.load()
                image = ImageOps.exif_transpose(image) or image
            image = _square(_flatten(image, channels), size)
        except Skip:
            raise
        except Exception as error:  # noqa: BLE001 - truncated data, bad chunks, odd modes
            raise Skip(f"truncated or corrupt image: {_one_line(error)}") from None
    pixels = np.asarray(image, dtype=np.uint8).reshape(size, size, channels)
    buffer = pixels.tobytes()
    thumbnail = None
    if size > THUMBNAIL_SIZE:
        small = image.resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS, reducing_gap=2.0)
        thumbnail = np.asarray(small, dtype=np.uint8).tobytes()
    return Decoded(buffer, thumbnail, hashlib.blake2b(buffer, digest_size=16).hexdigest())


def _fast_png_ok(image: Image.Image, data: bytes) -> bool:
    """Plain 8/16-bit grey or colour PNGs without tRNS or an EXIF orientation go through libspng."""
    return (
        _spng is not None
        and image.mode in ("L", "LA", "RGB", "RGBA")
        and "transparency" not in image.info
        and b"eXIf" not in data  # orientation is Pillow's job; the chunk is rare in PNGs
    )


def _decode_png_fast(data: bytes) -> Image.Image:
    """Decode with libspng; 16-bit samples are rounded to 8 bits."""
    assert _spng is not None
    array = _spng.load(data)
    if array.dtype == np.uint16:
        array = ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


@dataclass(frozen=True)
class DecodeTask:
    """Where one candidate's bytes are: a file path, or an archive and a member name."""

    path: str
    member: str | None
    size: int
    channels: int
    limits: ImportLimits


def run_task(task: DecodeTask) -> Decoded | str:
    """Worker entry point: the decoded image, or the reason it was skipped."""
    try:
        if task.member is None:
            data = read_file(task.path, task.limits)
        else:
            data = read_archive_member(task.path, task.member, task.limits)
        return decode_image(data, task.size, task.channels, task.limits)
    except Skip as skip:
        return str(skip)
    except MemoryError:
        return "out of memory while decoding"


_PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_POLL_SECONDS = 0.25


def worker_init(creator: int | None = None, creator_is_parent: bool = True) -> None:
    """Set up a decoding worker: Ctrl-C is the parent's to handle, and the worker dies with its import.

    Ctrl-C goes to the parent, which cancels the import and stops the workers cleanly. If the import
    process is killed instead, nothing stops them, and they would linger (waiting for work forever)
    holding what they inherited, so each worker also ends itself as soon as its import is gone.
    `creator` is the importing process; under a fork server it is not the worker's parent.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_creator(creator, creator_is_parent)


def _exit_with_creator(creator: int | None, creator_is_parent: bool) -> None:
    if sys.platform.startswith("linux"):
        # The kernel's own notice: SIGKILL this worker when the process that forked it exits (the
        # import, or the fork server, which exits when the import does).
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    parent = os.getppid()
    if creator is not None and creator_is_parent and parent != creator:
        os._exit(1)  # orphaned before prctl() took effect: the import is already gone
    origin = multiprocessing.parent_process()

    def gone() -> bool:
        if os.name != "posix":  # Windows: the parent's handle says whether it still runs
            return origin is not None and not origin.is_alive()
        # A dead parent's children are handed to another process: the parent pid changes.
        return os.getppid() != parent or (creator is not None and not creator_is_parent and not _alive(creator))

    def watch() -> None:
        while not gone():
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)  # nothing will ever read what this worker makes

    threading.Thread(target=watch, name="studio-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    """Whether a process exists (POSIX; a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def decode_chunk(tasks: Sequence[DecodeTask]) -> list[Decoded | str]:
    """Worker entry point for a batch: one process round trip per batch, not per image."""
    return [run_task(task) for task in tasks]
