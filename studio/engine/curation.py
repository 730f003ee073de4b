"""Gallery work that touches files: thumbnails, reproducing an image from its PNG alone, curated
exports, turning a selection into a dataset, and checking (and repairing) gallery consistency.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from sqlalchemy import select

from studio.engine.datasets.storage import DatasetSummary, DatasetWriter
from studio.engine.families.pipeline import Endpoint
from studio.engine.generation import EndpointRef, OpenedModel, open_model, resolve_endpoint
from studio.engine.interchange import xmp
from studio.engine.interchange.foreign import read_studio_png
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.thumbnails import THUMBNAILS_FOLDER, ensure_thumbnail, thumbnail_is_current, thumbnail_path
from studio.engine.untrusted.png import MAX_SIDE, PILLOW_ERRORS, InterpolationEnd, PngMetadata, read_png_metadata
from studio.engine.untrusted.values import shown
from studio.errors import StudioError
from studio.limits import LABEL_SOURCES
from studio.store.database import Store
from studio.store.gallery import TRASH_FOLDER, GalleryEntry, GalleryFilter, GalleryRepository
from studio.store.milestones import MilestoneRepository
from studio.store.tables import GalleryItem, Model

EXPORT_MANIFEST = "manifest.json"


# --- reproduce ------------------------------------------------------------------------------


@dataclass
class ReproduceResult:
    """Whether an image made again from its metadata has the same pixels."""

    file: str
    model: str
    operation: str
    backend: str
    match: bool
    max_difference: int

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return dict(self.__dict__)


def read_metadata(path: Path) -> dict[str, Any]:
    """The `studio` JSON chunk of a PNG, checked (`untrusted.png`), with its pixels under `_pixels`."""
    metadata = read_png_metadata(path)
    return {**metadata.values, "_pixels": metadata.pixels}


def reproduce(store: Store, file: str | Path, backend: str | None = None) -> ReproduceResult:
    """Make the image of a Studio PNG again from its metadata alone and compare the pixels."""
    path = Path(file).expanduser()
    metadata = read_studio_png(path)  # an image another tool made is refused saying which
    expected = metadata.pixels
    assert expected is not None  # read with its pixels
    name = metadata.model
    with store.sessions() as session:
        row = session.scalar(select(Model).where(Model.name == name))
        if row is None:
            raise StudioError(f"{path.name} was made by model '{name}', which is not in this library")
        if row.family != metadata.family:
            raise StudioError(
                f"{path.name} was made by a {metadata.family} model '{name}'; "
                f"the library's '{name}' is a {row.family} model"
            )
        current_hash = row.weights_hash
    weights = None
    if metadata.weights_hash and metadata.weights_hash != current_hash:
        # Made by an older checkpoint: a milestone kept with those weights makes it again (on torch:
        # a milestone has no ONNX export).
        milestone = MilestoneRepository(store).find_hash(name, metadata.weights_hash)
        if milestone is None:
            raise StudioError(
                f"{path.name} was made by other weights of '{name}' (trained further or replaced since): "
                "it cannot be reproduced"
            )
        weights, backend = store.home.absolute(milestone.folder), "torch"
    operation = metadata.operation
    if operation not in ("sample", "interpolate", "inpaint", "checkpoint"):  # a checkpoint item is a sample
        raise StudioError(f"{path.name}: cannot reproduce a '{operation}' image")
    if operation != "interpolate" and metadata.seed is None:
        raise StudioError(f"{path.name} has malformed Studio metadata (no seed)")
    with open_model(store, name, backend or metadata.backend, weights=weights) as opened:
        images = _make_again(store, opened, metadata, path)
    made = images[0]
    if made.shape != expected.shape:
        return ReproduceResult(str(path), name, operation, opened.backend, False, 255)
    difference = int(np.abs(made.astype(int) - expected.astype(int)).max())
    # The two backends agree to 2/255 at most; the same backend reproduces exactly.
    return ReproduceResult(str(path), name, operation, opened.backend, difference <= 2, difference)


def _make_again(store: Store, opened: OpenedModel, metadata: PngMetadata, path: Path) -> np.ndarray:
    """The operation the metadata records, run again (its values were checked by the reader)."""
    pipeline = opened.pipeline
    options = metadata.params
    if metadata.operation == "interpolate":
        assert metadata.ends is not None and metadata.frames is not None and metadata.frame is not None
        ends = [_endpoint(store, opened, end, path) for end in metadata.ends]
        frame = metadata.frame
        return pipeline.interpolate(ends[0], ends[1], metadata.frames, options)[frame : frame + 1]
    assert metadata.seed is not None
    if metadata.operation == "inpaint":
        source = _input_image(store, metadata.source, path, "source")
        mask = _input_image(store, metadata.mask, path, "mask")[..., 0] >= 128
        return pipeline.inpaint(source[None], ~mask[None], [metadata.seed], options)
    return pipeline.sample([metadata.seed], options)


def _endpoint(store: Store, opened: OpenedModel, end: InterpolationEnd, path: Path) -> Endpoint:
    """An interpolation end from its metadata, resolved exactly as the interpolation resolved it."""
    if end.seed is not None:
        ref = EndpointRef(seed=end.seed, class_name=end.class_name)
    elif end.item is not None:
        ref = EndpointRef(item=end.item, class_name=end.class_name)
    else:
        ref = EndpointRef(file=Path(str(end.file)), class_name=end.class_name)
        if not ref.file or not ref.file.is_file():
            raise StudioError(f"{path.name} was interpolated from {shown(end.file, 200)}, which is gone")
    return resolve_endpoint(store, opened, ref)[0]


def _input_image(store: Store, relative: str | None, path: Path, what: str) -> np.ndarray:
    if not isinstance(relative, str):
        raise StudioError(f"{path.name} has malformed Studio metadata (no {what})")
    try:
        source = store.home.absolute(relative)
    except ValueError:
        raise StudioError(f"{path.name} has malformed Studio metadata ({what} outside the data home)") from None
    if not source.is_file():
        raise StudioError(f"{path.name} needs its inpainting {what} {relative}, which is gone")
    try:
        with Image.open(source) as image:
            if max(image.size) > MAX_SIDE:  # the path came from the PNG: it may name any image of the home
                raise StudioError(f"{path.name} names an inpainting {what} of {image.size[0]}x{image.size[1]}")
            pixels = np.asarray(image)
    except PILLOW_ERRORS:
        raise StudioError(f"{path.name} needs its inpainting {what} {relative}, which cannot be read") from None
    return pixels if pixels.ndim == 3 else pixels[..., None]


# --- curated export -------------------------------------------------------------------------


@dataclass
class ExportSelectionResult:
    """Where a curated selection went."""

    destination: str
    count: int
    zip: bool

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return dict(self.__dict__)


def _check_destination(destination: Path) -> None:
    if destination.exists():
        raise StudioError(f"{destination} already exists: choose a new name (nothing is overwritten)")
    parent = destination.parent
    if not parent.is_dir():
        raise StudioError(f"{parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise StudioError(f"{parent} is not writable")


def export_selection(
    store: Store,
    destination: str | Path,
    filters: GalleryFilter | None = None,
    sort: str = "newest",
    as_zip: bool = False,
    ids: list[int] | None = None,
    cancel: CancelToken | None = None,
    xmp_mode: str = "embed",
) -> Job:
    """Copy the selected images and a manifest.json (metadata, rating, tags) to a new folder or zip,
    with their curation as XMP inside each image (`embed`), beside it (`sidecar`) or not at all (`none`)."""
    cancel = cancel or CancelToken()
    if xmp_mode not in xmp.XMP_MODES:
        raise StudioError(f"invalid --xmp '{xmp_mode}': choose {', '.join(xmp.XMP_MODES)}")
    if xmp_mode != "none":
        xmp.library()  # a missing library is said before anything is written
    destination = Path(destination).expanduser().absolute()
    _check_destination(destination)
    repository = GalleryRepository(store)
    selected = ids if ids is not None else repository.ids(filters, sort)
    if not selected:
        raise StudioError("no gallery items match: nothing to export")
    partial = destination.with_name(f".{destination.name}.partial-{uuid.uuid4().hex[:8]}")
    entries: list[dict[str, Any]] = []
    try:
        archive = zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) if as_zip else None
        if archive is None:
            partial.mkdir()
        try:
            for index, entry in enumerate(_entries_of(repository, selected)):
                cancel.check()
                source = store.home.absolute(entry.path)
                if not source.is_file():
                    raise StudioError(
                        f"gallery item {entry.id}: its image {entry.path} is missing (run `studio gallery check`)"
                    )
                name = f"{index + 1:05d}-{entry.model}-{entry.id}{Path(entry.path).suffix or '.png'}"
                _export_file(source, name, entry, xmp_mode, partial if archive is None else archive)
                record = entry.as_dict()
                record.update(file=name, parents=repository.parents(entry.id))
                record.pop("path")
                entries.append(record)
                if (index + 1) % 50 == 0 or index + 1 == len(selected):
                    yield Progress("exporting", index + 1, len(selected), f"{index + 1}/{len(selected)} images")
            manifest = json.dumps(
                {"count": len(entries), "filters": (filters or GalleryFilter()).describe(), "items": entries},
                indent=2,
                default=str,
            )
            if archive is not None:
                archive.writestr(EXPORT_MANIFEST, manifest)
            else:
                (partial / EXPORT_MANIFEST).write_text(manifest, encoding="utf-8")
        finally:
            if archive is not None:
                archive.close()
        os.replace(partial, destination)
    except BaseException:
        if partial.is_dir():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
        raise
    yield Finished(ExportSelectionResult(str(destination), len(entries), as_zip))


def _export_file(source: Path, name: str, entry: GalleryEntry, xmp_mode: str, to: Path | zipfile.ZipFile) -> None:
    """One image (and its sidecar) into the export folder or archive, its curation written as XMP."""
    curation = xmp.XmpCuration(entry.rating, entry.flag, entry.tags, entry.collections)
    files: list[tuple[str, bytes | Path]] = [(name, source)]
    if xmp_mode == "embed":
        files = [(name, xmp.embedded(source.read_bytes(), curation))]
    elif xmp_mode == "sidecar":
        files.append((str(xmp.sidecar_path(Path(name))), xmp.sidecar(curation)))
    for file_name, content in files:
        if isinstance(to, zipfile.ZipFile):
            to.writestr(file_name, content) if isinstance(content, bytes) else to.write(content, file_name)
        elif isinstance(content, bytes):
            try:  # in the partial folder: renamed into place when complete
                (to / file_name).write_bytes(content)
            except OSError as error:  # a full disk names no file on write: name it, so the message names the disk
                raise OSError(error.errno, error.strerror, str(to / file_name)) from None
        else:
            shutil.copyfile(content, to / file_name)


# --- gallery to dataset ---------------------------------------------------------------------


def gallery_to_dataset(
    store: Store,
    name: str,
    filters: GalleryFilter | None = None,
    label_by: str = "auto",
    ids: list[int] | None = None,
    cancel: CancelToken | None = None,
) -> Job:
    """A new dataset from the selected images (all of one size and channel count), labelled by class
    (auto: the class a conditional model made it as, else its model), model or tag."""
    cancel = cancel or CancelToken()
    if label_by not in LABEL_SOURCES:
        raise StudioError(f"invalid label source '{label_by}': choose {', '.join(LABEL_SOURCES)}")
    repository = GalleryRepository(store)
    selected = ids if ids is not None else repository.ids(filters, "oldest")
    if not selected:
        raise StudioError("no gallery items match: nothing to turn into a dataset")
    first = repository.get(selected[0])
    size, channels = first.width, _read_pixels(store, first)[1]
    writer = DatasetWriter(store, name, size, channels, origin="gallery")
    try:
        for index, entry in enumerate(_entries_of(repository, selected)):
            cancel.check()
            pixels, item_channels = _read_pixels(store, entry)
            if (entry.width, entry.height) != (size, size) or item_channels != channels:
                raise StudioError(
                    f"the selection mixes {size}x{size}x{channels} images with item {entry.id} "
                    f"({entry.width}x{entry.height}x{item_channels}): filter by model"
                )
            label = {
                "auto": entry.class_name or entry.model,
                "class": entry.class_name,
                "model": entry.model,
                "tag": entry.tags[0] if entry.tags else None,
                "none": None,
            }[label_by]
            writer.add(pixels, hashlib.blake2b(pixels, digest_size=16).hexdigest(), f"gallery#{entry.id}", label)
            if (index + 1) % 100 == 0 or index + 1 == len(selected):
                yield Progress("collecting", index + 1, len(selected), f"{index + 1}/{len(selected)} images")
        summary: DatasetSummary = writer.commit(
            {
                "source": "gallery",
                "items": len(selected),
                "duplicates": writer.duplicates,
                "filters": (filters or GalleryFilter()).describe(),
            }
        )
    except BaseException:
        writer.discard()
        raise
    yield Finished(summary)


def _entries_of(repository: GalleryRepository, ids: list[int], block: int = 500) -> Iterator[GalleryEntry]:
    """The entries of `ids` in order, read a block at a time (one query per block, not per item)."""
    for start in range(0, len(ids), block):
        yield from repository.entries(ids[start : start + block])


def _read_pixels(store: Store, entry: GalleryEntry) -> tuple[bytes, int]:
    """An item's pixels (uint8, grey or RGB as stored) and its channel count, from one read of the file."""
    try:
        with Image.open(store.home.absolute(entry.path)) as image:
            channels = 1 if image.mode in ("L", "I;16", "1") else 3
            pixels = np.asarray(image.convert("L" if channels == 1 else "RGB"), np.uint8).tobytes()
    except (OSError, UnidentifiedImageError):
        raise StudioError(f"gallery item {entry.id}: its image cannot be read (run `studio gallery check`)") from None
    return pixels, channels


# --- consistency ----------------------------------------------------------------------------


@dataclass
class CheckReport:
    """What `gallery check` found and, with --repair, what it did."""

    rows_without_files: list[int] = field(default_factory=list)
    files_without_rows: list[str] = field(default_factory=list)
    stale_thumbnails: list[int] = field(default_factory=list)
    stray_files: list[str] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    checked: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)  # files --repair could not read: path, reason

    @property
    def clean(self) -> bool:
        """Nothing found."""
        return not (self.rows_without_files or self.files_without_rows or self.stale_thumbnails or self.stray_files)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {**self.__dict__, "clean": self.clean}


def check_gallery(store: Store, repair: bool = False, cancel: CancelToken | None = None) -> Job:
    """Find rows without files, files without rows, stale thumbnails and leftovers; repair what can be.

    Repairs: a row whose file is gone is deleted (its trash copy is used first if there is one); a
    Studio PNG without a row is registered again from its own metadata; other unknown files, partial
    writes and orphaned thumbnails are removed; stale thumbnails are made again.
    """
    cancel = cancel or CancelToken()
    report = CheckReport()
    home = store.home
    with store.sessions() as session:
        rows = list(
            session.execute(select(GalleryItem.id, GalleryItem.path, GalleryItem.deleted_at, GalleryItem.trash_path))
        )
    known_paths: set[str] = set()
    report.checked = len(rows)
    yield Progress("checking", 0, len(rows), "rows against files")
    for index, (item_id, path, deleted_at, trash_path) in enumerate(rows):
        if index % 500 == 0:
            cancel.check()
        known_paths.add(path)
        if trash_path:
            known_paths.add(trash_path)
        where = trash_path if deleted_at is not None else path
        file = home.absolute(where) if where else None
        if file is None or not file.is_file():
            report.rows_without_files.append(item_id)
            continue
        if deleted_at is None and not thumbnail_is_current(file, thumbnail_path(store, item_id)):
            report.stale_thumbnails.append(item_id)
    live_ids = {item_id for item_id, *_ in rows}
    for folder in (home.gallery, home.root / TRASH_FOLDER):
        if not folder.is_dir():
            continue
        for file in sorted(folder.rglob("*")):
            if not file.is_file():
                continue
            relative = home.relative(file)
            parts = Path(relative).parts
            if THUMBNAILS_FOLDER in parts:
                if file.stem.isdigit() and int(file.stem) in live_ids and not file.name.startswith("."):
                    continue
                report.stray_files.append(relative)
            elif file.name.startswith(".") and ".partial" in file.name:
                report.stray_files.append(relative)
            elif "_inputs" in parts:
                continue  # inpainting sources and masks: referenced from metadata, not rows
            elif relative not in known_paths:
                report.files_without_rows.append(relative)
    if repair:
        yield from _repair(store, report)
    yield Finished(report)


def _repair(store: Store, report: CheckReport) -> Job:
    home = store.home
    repository = GalleryRepository(store)
    removed = adopted = remade = cleaned = 0
    yield Progress("repairing", 0, 0, "repairing")  # total 0: unknown until the repairs are counted
    if report.rows_without_files:
        with store.session() as session:
            for item_id in report.rows_without_files:
                row = session.get(GalleryItem, item_id)
                if row is not None:
                    session.delete(row)
                    removed += 1
        for item_id in report.rows_without_files:
            thumbnail_path(store, item_id).unlink(missing_ok=True)
    for relative in report.files_without_rows:
        if Path(relative).parts[0] == TRASH_FOLDER:
            continue  # a trash file whose row is gone: the trash was being emptied
        try:
            metadata = read_png_metadata(home.absolute(relative))
        except StudioError as error:
            # Not a Studio image, or one whose metadata cannot be trusted: left where it is, and reported.
            report.skipped.append({"path": relative, "reason": str(error)})
            continue
        pixels = metadata.pixels
        assert pixels is not None  # read with its pixels
        with store.sessions() as session:
            model_id = session.scalar(select(Model.id).where(Model.name == metadata.model))
        entry = repository.add(
            relative,
            metadata.model,
            metadata.family,
            pixels.shape[1],
            pixels.shape[0],
            model_id=model_id,
            seed=metadata.seed,
            operation=metadata.operation,
            params=dict(metadata.params),
            backend=metadata.backend,
            provider=metadata.provider,
        )
        adopted += 1
        try:
            ensure_thumbnail(store, entry)
        except StudioError as error:
            report.skipped.append({"path": relative, "reason": f"registered, but no thumbnail: {error}"})
    for relative in report.stray_files:
        try:
            home.absolute(relative).unlink(missing_ok=True)
            cleaned += 1
        except OSError as error:
            report.skipped.append({"path": relative, "reason": f"cannot be removed ({error.strerror})"})
    for item_id in report.stale_thumbnails:
        try:
            ensure_thumbnail(store, repository.get(item_id))
            remade += 1
        except StudioError as error:
            report.skipped.append({"path": f"#{item_id}", "reason": str(error)})
    report.repaired = {
        "rows_removed": removed,
        "files_registered": adopted,
        "thumbnails_made": remade,
        "stray_files_removed": cleaned,
    }
    yield Progress("repairing", 1, 1, "done")
