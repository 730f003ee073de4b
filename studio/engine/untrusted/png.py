"""The `studio` metadata of a gallery PNG: what made the image, checked before anything acts on it.

A PNG may come from anywhere (a download, a shared folder, a file dropped on the window). Its
chunk headers are walked first, seeking past their data, so an oversized text chunk is refused
from its length field before Pillow reads it; the image's size is checked before its pixels are
decoded; the metadata's JSON is bounded (`values.parse_json`) and every member Studio acts on is
typed and ranged with the same bounds the command line applies (seed, frames, steps, names).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from studio import limits
from studio.engine.families import registry
from studio.engine.untrusted.model_files import check_settings
from studio.engine.untrusted.values import (
    NAME_PATTERN,
    SHA256_PATTERN,
    Fields,
    JsonLimits,
    MalformedError,
    NotJsonError,
    open_regular,
    parse_json,
    shown,
    size_text,
)
from studio.errors import StudioError
from studio.limits import BACKENDS, INT64_MAX

METADATA_KEY = "studio"  # the tEXt keyword generate writes
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Studio writes under 1 KiB of metadata; 64 KiB leaves room for long file paths of interpolation ends.
MAX_METADATA_BYTES = 64 << 10
MAX_TEXT_CHUNK = 1 << 20  # any one text chunk: Pillow's own cap on a decompressed one
MAX_TEXT_TOTAL = 4 << 20  # every text chunk of the file together
MAX_CHUNKS = 100_000  # a 4096x4096 image in 8 KiB IDAT chunks needs about 6,000
MAX_SIDE = 4096  # Studio makes images of at most 64 px and imports datasets of at most 512 px
METADATA_LIMITS = JsonLimits(max_bytes=MAX_METADATA_BYTES, max_depth=4, max_members=256, max_string=4096)
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")
_PROVIDER = re.compile(r"[A-Za-z0-9_.-]{1,32}")
# Pillow reports a broken file with any of these (SyntaxError for a bad chunk, ValueError for its text limits).
PILLOW_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


@dataclass(frozen=True)
class InterpolationEnd:
    """One end of an interpolation as the PNG records it: a seed, a gallery item or an image file."""

    seed: int | None = None
    item: int | None = None
    file: str | None = None
    class_name: str | None = None  # the class asked for at this end (a conditional model's)


@dataclass(frozen=True)
class PngMetadata:
    """A Studio PNG's metadata, checked; `values` holds every member as read (for the UI and repair)."""

    operation: str
    model: str
    family: str
    backend: str
    params: dict[str, Any]
    values: dict[str, Any]
    seed: int | None = None
    weights_hash: str | None = None
    provider: str | None = None
    steps_trained: int | None = None
    frames: int | None = None
    frame: int | None = None
    ends: tuple[InterpolationEnd, InterpolationEnd] | None = None
    source: str | None = None
    mask: str | None = None
    pixels: np.ndarray | None = field(default=None, compare=False, repr=False)


def read_png_metadata(path: Path, with_pixels: bool = True) -> PngMetadata:
    """The checked `studio` metadata of a PNG (and its pixels, HxWxC uint8), or a one-line StudioError."""
    try:
        with open_regular(path) as handle:
            if handle.read(8) != PNG_SIGNATURE:
                handle.seek(0)
                raise StudioError(f"{path.name} is {_format_of(handle)}: Studio metadata lives in PNGs")
            try:
                _measure_chunks(handle)
            except MalformedError as why:
                raise StudioError(f"{path.name} is refused: {why}") from None
            handle.seek(0)
            text, pixels = _decode(handle, path, with_pixels)
    except FileNotFoundError:
        raise StudioError(f"no file at {path}") from None
    except IsADirectoryError:
        raise StudioError(f"{path} is a folder, not an image") from None
    except PILLOW_ERRORS as error:
        raise StudioError(f"{path.name} is not a readable image ({_first_line(error)})") from None
    if text is None:
        raise StudioError(f"{path.name} carries no Studio metadata (not made by Studio, or stripped by an editor)")
    try:
        return _checked(parse_json(text, METADATA_LIMITS), pixels)
    except NotJsonError:
        raise StudioError(f"{path.name} has malformed Studio metadata (not JSON)") from None
    except MalformedError as why:
        raise StudioError(f"{path.name} has malformed Studio metadata ({why})") from None


def _format_of(handle: BinaryIO) -> str:
    try:
        with Image.open(handle) as image:
            return f"a {image.format} file"
    except PILLOW_ERRORS:
        return "not a readable image"


def _first_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return shown(lines[0], 120).strip("'\"") if lines else type(error).__name__


def _measure_chunks(handle: BinaryIO) -> None:
    """Walk the chunk headers, seeking past the data, and refuse oversized text before anyone reads it."""
    total = 0
    for _ in range(MAX_CHUNKS):
        head = handle.read(8)
        if len(head) < 8:
            return  # cut short: Pillow says what is wrong with it
        length, kind = struct.unpack(">I4s", head)
        if kind in _TEXT_CHUNKS:
            if length > MAX_TEXT_CHUNK:
                raise MalformedError(
                    f"a text chunk of {size_text(length)}, larger than the {size_text(MAX_TEXT_CHUNK)} accepted"
                )
            total += length
            if total > MAX_TEXT_TOTAL:
                raise MalformedError(f"text chunks of more than {size_text(MAX_TEXT_TOTAL)} in all")
            keyword = handle.read(min(length, 80))
            if keyword.split(b"\0", 1)[0] == METADATA_KEY.encode() and length > MAX_METADATA_BYTES:
                raise MalformedError(
                    f"Studio metadata of {size_text(length)}, larger than the {size_text(MAX_METADATA_BYTES)} accepted"
                )
            handle.seek(length - len(keyword) + 4, 1)  # the rest of the data, and the CRC
        else:
            handle.seek(length + 4, 1)
        if kind == b"IEND":
            return
    raise MalformedError(f"more than {MAX_CHUNKS} chunks")


def _decode(handle: BinaryIO, path: Path, with_pixels: bool) -> tuple[str | None, np.ndarray | None]:
    """The metadata text and, if asked, the pixels; the size is checked before they are decoded."""
    with Image.open(handle, formats=["PNG"]) as image:
        width, height = image.size
        if width > MAX_SIDE or height > MAX_SIDE:
            raise StudioError(
                f"{path.name} is a {width}x{height} image, larger than the {MAX_SIDE}x{MAX_SIDE} Studio reads"
            )
        pixels = np.asarray(image) if with_pixels else None  # decodes, which also reads any text after the pixels
        text = getattr(image, "text", {}).get(METADATA_KEY)
    if pixels is not None and pixels.ndim == 2:
        pixels = pixels[..., None]
    return (text if isinstance(text, str) else None), pixels


# --- the members --------------------------------------------------------------------------


def _checked(document: Any, pixels: np.ndarray | None) -> PngMetadata:
    fields = Fields(document)
    missing = fields.missing("operation", "model", "family", "params", "backend")
    if missing:
        raise MalformedError(f"missing {', '.join(missing)}")
    operation = fields.text("operation", 32, _WORD, "an operation name")
    family = fields.text("family", 64)
    if family not in registry.family_names():
        raise MalformedError(f"unknown family {shown(family)}")
    params = fields.scalars("params")
    check_settings(family, params, "params")
    seed = fields.optional_integer("seed", 0, limits.SEED.high)
    frames, frame, ends = _interpolation(fields, operation == "interpolate")
    source = fields.optional_text("source", 512)
    mask = fields.optional_text("mask", 512)
    if operation == "inpaint" and (source is None or mask is None or seed is None):
        raise MalformedError("an inpainted image without its seed, source and mask")
    fields.optional_text("class", 255)  # the class a conditional model made it as
    fields.optional_integer("source_item", 1, INT64_MAX)
    fields.optional_number("masked_fraction", 0.0, 1.0)
    return PngMetadata(
        operation=operation,
        model=fields.text("model", 64, NAME_PATTERN, "a valid model name"),
        family=family,
        backend=fields.choice("backend", BACKENDS),
        params=params,
        values=fields.data,
        seed=seed,
        weights_hash=fields.optional_text("weights_hash", 64, SHA256_PATTERN, "a sha256 digest"),
        provider=fields.optional_text("provider", 32, _PROVIDER, "a provider name"),
        steps_trained=fields.optional_integer("steps_trained", 0, limits.STEPS.high),
        frames=frames,
        frame=frame,
        ends=ends,
        source=source,
        mask=mask,
        pixels=pixels,
    )


def _interpolation(
    fields: Fields, required: bool
) -> tuple[int | None, int | None, tuple[InterpolationEnd, InterpolationEnd] | None]:
    frames = fields.optional_integer("frames", 2, limits.FRAMES.high)
    frame = fields.optional_integer("frame", 0, limits.FRAMES.high - 1)
    if frames is not None and frame is not None and frame >= frames:
        raise MalformedError(f"frame {frame} of {frames}")
    fields.optional_number("t", 0.0, 1.0)
    fields.optional_text("method", 16)
    start, end = (_end(fields, side) for side in ("from", "to"))
    if not required:
        return frames, frame, None
    if frames is None or frame is None or start is None or end is None:
        raise MalformedError("an interpolated frame without its frames, frame, from and to")
    return frames, frame, (start, end)


def _end(fields: Fields, side: str) -> InterpolationEnd | None:
    described = fields.optional_section(side)
    if described is None:
        return None
    class_name = described.optional_text("class", 255)
    if described.present("seed"):
        return InterpolationEnd(seed=described.integer("seed", 0, limits.SEED.high), class_name=class_name)
    if described.present("item"):
        return InterpolationEnd(item=described.integer("item", 1, INT64_MAX), class_name=class_name)
    if described.present("file"):
        name = described.text("file", 4096)
        if "\0" in name:
            raise MalformedError(f"{described.name('file')} holds a NUL character")
        return InterpolationEnd(file=name, class_name=class_name)
    raise MalformedError(f"{side} names no seed, item or file")
