"""Gallery thumbnails: made once at the grid's size, cached on disk, made again when out of date."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from studio.errors import StudioError
from studio.files import partial_path
from studio.store.database import Store
from studio.store.gallery_values import THUMBNAILS_FOLDER, GalleryEntry, thumbnail_path

__all__ = [
    "THUMBNAILS_FOLDER",
    "THUMBNAIL_SIZE",
    "ensure_thumbnail",
    "make_thumbnail",
    "thumbnail_is_current",
    "thumbnail_path",
]

THUMBNAIL_SIZE = 128  # the gallery grid's cell: small images scale up by whole pixels, crisp


def make_thumbnail(source: Path, destination: Path) -> None:
    """A THUMBNAIL_SIZE square: whole-pixel nearest upscaling for small images, Lanczos above."""
    with Image.open(source) as image:
        image.load()
        width, height = image.size
        scale = THUMBNAIL_SIZE / max(width, height)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
        small = image.resize(size, resample)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(destination)
    try:
        small.save(partial, format="PNG")
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)  # a full disk must not leave half a thumbnail behind
        raise


def thumbnail_is_current(source: Path, thumbnail: Path) -> bool:
    """Made after its image, and at the grid's size."""
    try:
        if thumbnail.stat().st_mtime_ns < source.stat().st_mtime_ns:
            return False
        with Image.open(thumbnail) as image:
            return max(image.size) == THUMBNAIL_SIZE
    except (OSError, UnidentifiedImageError):
        return False


def ensure_thumbnail(store: Store, entry: GalleryEntry) -> Path:
    """The item's thumbnail, made now if missing or out of date (then cached on disk)."""
    source = store.home.absolute(entry.path)
    thumbnail = thumbnail_path(store, entry.id)
    if not thumbnail_is_current(source, thumbnail):
        if not source.is_file():
            raise StudioError(
                f"gallery item {entry.id}: its image {entry.path} is missing (run `studio gallery check`)"
            )
        try:
            make_thumbnail(source, thumbnail)
        except (OSError, UnidentifiedImageError) as error:
            raise StudioError(f"gallery item {entry.id}: its image cannot be read ({error})") from None
    return thumbnail
