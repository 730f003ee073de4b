"""A dataset on disk: one streamed uint8 `.npy` array, thumbnails, a preview sheet and a manifest.

`DatasetWriter` stages everything in a locked folder, de-duplicates by content hash, then
publishes the folder and commits the rows: either all of a dataset exists, or none of it.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from studio.engine.datasets.decode import THUMBNAIL_SIZE
from studio.engine.untrusted.values import NAME_PATTERN
from studio.errors import AlreadyExistsError, NotFoundError, StudioError
from studio.files import StagingFolder
from studio.limits import IMAGE_SIZE
from studio.store.database import Store
from studio.store.staging import delete_row_and_folder
from studio.store.tables import Dataset, DatasetItem

MIN_SIZE, MAX_SIZE = IMAGE_SIZE.low, IMAGE_SIZE.high
IMAGES_FILE = "images.npy"
THUMBNAILS_FILE = "thumbnails.npy"
PREVIEW_FILE = "preview.png"
MANIFEST_FILE = "dataset.json"
PREVIEW_COUNT = 64
_HEADER_BYTES = 128  # room for any shape header: data starts at a fixed, aligned offset


def validate_name(name: str) -> str:
    """Dataset and model names: 1-64 of letters, digits, '.', '_', '-', starting alphanumeric."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise StudioError(
            f"invalid name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def validate_geometry(size: int, channels: int) -> None:
    """A dataset is square, 8..512 px, with 1 (grey) or 3 (RGB) channels."""
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise StudioError(f"invalid size {size}: choose {MIN_SIZE} to {MAX_SIZE} pixels")
    if channels not in (1, 3):
        raise StudioError(f"invalid channels {channels}: choose 1 (grey) or 3 (colour)")


def fsync_path(path: Path) -> None:
    """Flush a file or folder to stable storage (folders only where the OS allows it)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class ArrayFileWriter:
    """Streams equally shaped uint8 rows into a `.npy` file whose length is known only at the end."""

    def __init__(self, path: Path, row_shape: tuple[int, ...]) -> None:
        self.path = path
        self.row_shape = row_shape
        self.row_bytes = int(np.prod(row_shape))
        self.rows = 0
        self._handle: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._handle.write(b"\0" * _HEADER_BYTES)

    def append(self, row: bytes) -> None:
        """Add one row (exactly row_shape bytes)."""
        if len(row) != self.row_bytes:
            raise ValueError(f"row of {len(row)} bytes, expected {self.row_bytes}")
        self._handle.write(row)
        self.rows += 1

    def close(self) -> None:
        """Write the header for the final shape, flush and fsync."""
        shape = (self.rows, *self.row_shape)
        header = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (shape,)  # noqa: UP031
        # NPY 1.0: magic, version, uint16 header length, header padded with spaces, ending in \n.
        header_bytes = header.encode("latin1").ljust(_HEADER_BYTES - 10 - 1) + b"\n"
        if len(header_bytes) + 10 != _HEADER_BYTES:
            raise ValueError(f"shape {shape} does not fit the array header")
        self._handle.seek(0)
        self._handle.write(b"\x93NUMPY\x01\x00" + len(header_bytes).to_bytes(2, "little") + header_bytes)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def discard(self) -> None:
        """Close without finishing (the staging folder is removed by the caller)."""
        if not self._handle.closed:
            self._handle.close()


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file in the same folder, fsync, then rename."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, ensure_ascii=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


@dataclass
class DatasetSummary:
    """What the CLI and UI show of a dataset."""

    name: str
    size: int
    channels: int
    count: int
    origin: str
    folder: str
    class_counts: dict[str, int] = field(default_factory=dict)
    created_at: str = ""
    report: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Dataset) -> DatasetSummary:
        """From a database row."""
        return cls(
            row.name,
            row.size,
            row.channels,
            row.count,
            row.origin,
            row.folder,
            dict(row.class_counts or {}),
            row.created_at.isoformat(timespec="seconds"),
            dict(row.import_report or {}),
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name,
            "size": self.size,
            "channels": self.channels,
            "count": self.count,
            "origin": self.origin,
            "folder": self.folder,
            "classes": self.class_counts,
            "created_at": self.created_at,
        }


class DatasetWriter:
    """Collects unique images into a staged dataset folder and commits it in one step."""

    def __init__(self, store: Store, name: str, size: int, channels: int, origin: str) -> None:
        validate_name(name)
        validate_geometry(size, channels)
        ensure_name_free(store, name)
        self.store, self.name, self.size, self.channels, self.origin = store, name, size, channels, origin
        self.staging = StagingFolder(store.home.staging, f"dataset-{name}")
        self.images = ArrayFileWriter(self.staging.path / IMAGES_FILE, (size, size, channels))
        self.thumbnails = (
            ArrayFileWriter(self.staging.path / THUMBNAILS_FILE, (THUMBNAIL_SIZE, THUMBNAIL_SIZE, channels))
            if size > THUMBNAIL_SIZE
            else None
        )
        self.duplicates = 0
        self._seen: set[str] = set()
        self._items: list[dict[str, Any]] = []
        self._preview: list[np.ndarray] = []

    @property
    def count(self) -> int:
        """Unique images added so far."""
        return len(self._items)

    @property
    def sources(self) -> list[str]:
        """The source name of each image added so far, in array order."""
        return [item["source"] for item in self._items]

    def add(self, pixels: bytes, digest: str, source: str, label: str | None, thumbnail: bytes | None = None) -> bool:
        """Append one image unless its content was seen already; True when added."""
        if digest in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(digest)
        self.images.append(pixels)
        if self.thumbnails is not None:
            if thumbnail is None:
                thumbnail = _thumbnail(pixels, self.size, self.channels)
            self.thumbnails.append(thumbnail)
        self._items.append({"position": len(self._items), "source": source, "label": label, "content_hash": digest})
        if len(self._preview) < PREVIEW_COUNT:
            self._preview.append(np.frombuffer(pixels, np.uint8).reshape(self.size, self.size, self.channels))
        return True

    def commit(self, report: dict[str, Any] | None = None) -> DatasetSummary:
        """Finish the files, publish the folder, then insert the rows; all or nothing."""
        if not self._items:
            raise StudioError("nothing to import: no usable image was found")
        try:
            self.images.close()
            if self.thumbnails is not None:
                self.thumbnails.close()
            _write_preview(self._preview, self.staging.path / PREVIEW_FILE)
            class_counts = dict(sorted(Counter(i["label"] for i in self._items if i["label"]).items()))
            write_json_atomic(
                self.staging.path / MANIFEST_FILE,
                {
                    "format": 1,
                    "name": self.name,
                    "size": self.size,
                    "channels": self.channels,
                    "count": self.count,
                    "origin": self.origin,
                    "images": IMAGES_FILE,
                    "thumbnails": THUMBNAILS_FILE if self.thumbnails is not None else IMAGES_FILE,
                    "classes": class_counts,
                },
            )
            fsync_path(self.staging.path)
            destination = _free_folder(self.store.home.datasets, self.name)
            self.staging.publish(destination)
            fsync_path(destination.parent)

            def insert_rows(session: Session) -> Dataset:
                ensure_name_free(self.store, self.name, session)
                row = Dataset(
                    name=self.name,
                    folder=self.store.home.relative(destination),
                    size=self.size,
                    channels=self.channels,
                    count=self.count,
                    origin=self.origin,
                    class_counts=class_counts,
                    import_report=report or {},
                )
                session.add(row)
                session.flush()
                session.execute(insert(DatasetItem), [{"dataset_id": row.id, **item} for item in self._items])
                return row

            try:
                row = self.store.write(insert_rows)  # retried while another process holds the database
            except IntegrityError:
                # Another process committed the same name between our check and our insert.
                raise AlreadyExistsError(
                    f"a dataset named '{self.name}' was created meanwhile: choose another name"
                ) from None
            self.staging.commit()
            return DatasetSummary.of(row)
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Throw away everything written so far."""
        self.images.discard()
        if self.thumbnails is not None:
            self.thumbnails.discard()
        self.staging.discard()


def _thumbnail(pixels: bytes, size: int, channels: int) -> bytes:
    array = np.frombuffer(pixels, np.uint8).reshape(size, size, channels)
    image = Image.fromarray(array[..., 0] if channels == 1 else array)
    small = image.resize((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.asarray(small, dtype=np.uint8).tobytes()


def _write_preview(images: list[np.ndarray], path: Path) -> None:
    """An 8-column contact sheet of the first images, for dataset lists."""
    cell = min(images[0].shape[0], THUMBNAIL_SIZE)
    columns = min(8, len(images))
    rows = (len(images) + columns - 1) // columns
    mode = "L" if images[0].shape[2] == 1 else "RGB"
    sheet = Image.new(mode, (columns * cell, rows * cell), 0)
    for index, array in enumerate(images):
        tile = Image.fromarray(array[..., 0] if mode == "L" else array)
        if tile.size[0] != cell:
            tile = tile.resize((cell, cell), Image.Resampling.LANCZOS)
        sheet.paste(tile, ((index % columns) * cell, (index // columns) * cell))
    partial = path.with_name(path.name + ".partial")
    sheet.save(partial, format="PNG")
    fsync_path(partial)
    os.replace(partial, path)


def _free_folder(parent: Path, name: str) -> Path:
    """`parent/name`, or a suffixed variant when an unrelated folder already sits there."""
    candidate = parent / name
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = parent / f"{name}-{suffix}"
    return candidate


def ensure_name_free(store: Store, name: str, session: Any = None) -> None:
    """Raise AlreadyExistsError when a dataset of that name exists."""

    def check(active: Any) -> None:
        if active.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
            raise AlreadyExistsError(f"a dataset named '{name}' already exists: choose another name or delete it first")

    if session is not None:
        check(session)
    else:
        with store.sessions() as fresh:
            check(fresh)


def list_datasets(store: Store) -> list[DatasetSummary]:
    """Every dataset, newest first."""
    with store.sessions() as session:
        rows = session.scalars(select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id.desc()))
        return [DatasetSummary.of(row) for row in rows]


def get_dataset(store: Store, name: str) -> DatasetSummary:
    """One dataset by name, or NotFoundError."""
    with store.sessions() as session:
        row = session.scalar(select(Dataset).where(Dataset.name == name))
        if row is None:
            raise NotFoundError(f"no dataset named '{name}' (see `studio datasets list`)")
        return DatasetSummary.of(row)


def load_images(store: Store, name: str, thumbnails: bool = False) -> np.ndarray:
    """The dataset's N x S x S x C uint8 array, memory-mapped read-only (never unpickled)."""
    summary = get_dataset(store, name)
    folder = store.home.absolute(summary.folder)
    file = folder / (THUMBNAILS_FILE if thumbnails and (folder / THUMBNAILS_FILE).exists() else IMAGES_FILE)
    try:
        array = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise StudioError(f"dataset '{name}' is damaged: cannot read {file.name} ({error})") from None
    if array.dtype != np.uint8 or array.ndim != 4:
        raise StudioError(f"dataset '{name}' is damaged: unexpected array {array.dtype} {array.shape}")
    return array


def load_labels(store: Store, name: str) -> list[str | None]:
    """Each image's class label (or None), in array order."""
    with store.sessions() as session:
        dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == name))
        if dataset_id is None:
            raise NotFoundError(f"no dataset named '{name}'")
        rows = session.execute(
            select(DatasetItem.label).where(DatasetItem.dataset_id == dataset_id).order_by(DatasetItem.position)
        )
        return [label for (label,) in rows]


def delete_dataset(store: Store, name: str) -> DatasetSummary:
    """Delete a dataset's rows and folder; a crash midway never leaves a half dataset."""
    summary = get_dataset(store, name)
    delete_row_and_folder(store, store.home.absolute(summary.folder), Dataset, name)
    return summary
