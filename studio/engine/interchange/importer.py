"""`gallery import`: images made elsewhere (A1111, ComfyUI, InvokeAI, another Studio) join the gallery.

Each file is read once (bounded), checked to decode, hashed, and copied as it is into
`gallery/imported/<date>/` (the gallery owns its files), named in a journal first so a killed import
leaves no file without a row. Its metadata goes to the row's `origin`; a Studio PNG keeps its model,
family, seed and settings. XMP ratings, pick/reject, tags and collections found in the file or in a
sidecar are taken over. Whatever cannot be read becomes a one-line note; nothing here raises for a
bad file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from studio.engine.datasets.decode import ImportLimits, Skip, read_file
from studio.engine.interchange import xmp
from studio.engine.interchange.foreign import EXTERNAL_FAMILY, ForeignImage, read_foreign, tool_title
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.thumbnails import make_thumbnail, thumbnail_path
from studio.engine.untrusted.png import PILLOW_ERRORS, PngMetadata, read_png_metadata
from studio.engine.untrusted.values import shown
from studio.errors import StudioError
from studio.files import StagingFolder, write_pending
from studio.store.database import Store
from studio.store.gallery import GalleryEntry, GalleryRepository
from studio.store.gallery_imports import items_by_hash

IMPORT_OPERATION = "import"
IMPORTED_FOLDER = "imported"
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "WEBP": ".webp"}  # MPO: a camera's JPEG
LIMITS = ImportLimits()  # 256 MiB a file, 64 megapixels: the dataset import's bounds
_HIDDEN = (".", "__MACOSX")


@dataclass
class GalleryImportResult:
    """What an import did: items added, files already there, files skipped, and notes."""

    imported: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio gallery import --json`)."""
        return dict(self.__dict__)


def _shown_path(path: Path) -> str:
    return shown(str(path), 4096)[1:-1]  # control characters escaped: a file name may be anything


def _sources(paths: Sequence[str | Path], home: Path, result: GalleryImportResult) -> list[Path]:
    """Every file named or found below a named folder (symbolic links never followed), in order."""
    home = home.resolve()
    files: list[Path] = []
    for given in paths:
        path = Path(given).expanduser().absolute()
        try:
            inside = path.resolve().is_relative_to(home)
        except OSError:
            inside = False
        if inside:
            result.skipped.append({"path": _shown_path(path), "reason": "inside the data home: not imported"})
        elif path.is_symlink():
            result.skipped.append({"path": _shown_path(path), "reason": "symbolic link (not followed)"})
        elif path.is_dir():
            files.extend(_walk(path))
        elif path.exists():
            files.append(path)
        else:
            result.skipped.append({"path": _shown_path(path), "reason": "no such file or folder"})
    return files


def _walk(folder: Path) -> Iterator[Path]:
    for root, folders, names in os.walk(folder):  # os.walk follows no links unless asked
        folders[:] = sorted(name for name in folders if not name.startswith(_HIDDEN))
        for name in sorted(names):
            if not name.startswith(_HIDDEN) and not name.lower().endswith(xmp.SIDECAR_SUFFIX):
                yield Path(root) / name


def _check_image(data: bytes) -> str:
    """The image's format if it is a PNG, JPEG or WebP that decodes in full; else Skip with the reason."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = str(image.format)
                if kind not in FORMATS:
                    raise Skip(f"a {kind} image: Studio imports PNG, JPEG and WebP into the gallery")
                width, height = image.size
                if width * height > LIMITS.max_pixels:
                    raise Skip(f"image too large: {width}x{height} (limit {LIMITS.max_pixels / 1e6:g} megapixels)")
                image.load()
    except Image.DecompressionBombError as error:
        raise Skip(f"decompression bomb refused: {error}") from None
    except UnidentifiedImageError:
        raise Skip("not an image (content is not a known image format)") from None
    except PILLOW_ERRORS as error:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "Decompressed data too large" in text:  # Pillow's own bound on a compressed text chunk
            raise Skip("decompression bomb refused: a compressed text chunk inflates past 1 MiB") from None
        raise Skip(f"corrupt image: {shown(text, 100).strip(chr(39) + chr(34))}") from None
    return kind


def _studio_metadata(source: Path, found: ForeignImage) -> PngMetadata | None:
    if found.tool != "studio":
        return None
    try:
        return read_png_metadata(source, with_pixels=False)
    except StudioError as error:
        found.notes.append(f"Studio metadata not taken: {error}")
        return None


def _curation(source: Path, data: bytes, found: ForeignImage) -> xmp.XmpCuration | None:
    """The XMP in the file, overridden by a sidecar next to it (what Lightroom and digiKam write last)."""
    embedded = sidecar = None
    try:
        if found.xmp_packet is not None:
            embedded = xmp.read_packet(found.xmp_packet)
        elif found.format != "PNG":
            embedded = xmp.read_packet(data)
    except StudioError as error:  # MalformedError, or the library missing
        found.notes.append(f"embedded XMP not taken: {error}")
    try:
        sidecar = xmp.read_sidecar(source)
    except StudioError as error:
        found.notes.append(f"XMP sidecar not taken: {error}")
    if embedded is None or sidecar is None:
        return sidecar or embedded
    return xmp.XmpCuration(
        sidecar.rating or embedded.rating,
        sidecar.flag if sidecar.flag != "none" else embedded.flag,
        (*embedded.tags, *sidecar.tags),
        (*embedded.collections, *sidecar.collections),
        (*embedded.notes, *sidecar.notes),
    )


def _row(relative: str, digest: str, source: Path, found: ForeignImage, studio: PngMetadata | None) -> dict[str, Any]:
    origin = found.origin(source.name)
    fields: dict[str, Any] = {
        "path": relative,
        "content_hash": digest,
        "operation": IMPORT_OPERATION,
        "model_id": None,
        "width": found.width,
        "height": found.height,
        "seed": found.seed,
        "params": {},
        "backend": EXTERNAL_FAMILY,
        "provider": None,
        "origin": origin,
    }
    if studio is not None:  # another data home's image: its model, family, seed and settings
        made_as = studio.values.get("class")
        fields.update(
            model_name=studio.model,
            family=studio.family,
            seed=studio.seed,
            params=dict(studio.params),
            backend=studio.backend,
            provider=studio.provider,
            class_name=made_as if isinstance(made_as, str) else None,
        )
        origin["settings"] = {key: str(value) for key, value in studio.params.items()}
        origin["metadata"] = {"studio": studio.values}
    else:
        fields.update(model_name=found.model_name or found.tool, family=EXTERNAL_FAMILY)
    return fields


def _apply_curation(repository: GalleryRepository, entry: GalleryEntry, curation: xmp.XmpCuration) -> list[str]:
    """Take over stars, flag, tags and collections; a name the gallery refuses becomes a note."""
    notes = list(curation.notes)
    if curation.rating:
        repository.rate([entry.id], curation.rating)
    if curation.flag != "none":
        repository.set_flag([entry.id], curation.flag)
    for name in curation.tags:
        try:
            repository.tag([entry.id], name)
        except StudioError as error:
            notes.append(f"XMP tag not taken: {error}")
    for name in curation.collections:
        try:
            repository.collect([entry.id], name)
        except StudioError as error:
            notes.append(f"XMP collection not taken: {error}")
    return notes


def import_gallery_images(store: Store, paths: Sequence[str | Path], cancel: CancelToken | None = None) -> Job:
    """Import image files and folders into the gallery; yields Progress, then Finished(GalleryImportResult)."""
    cancel = cancel or CancelToken()
    if store.read_only:
        raise StudioError(f"the database is read-only: {store.read_only_reason}")
    result = GalleryImportResult()
    sources = _sources(paths, store.home.root, result)
    repository = GalleryRepository(store)
    folder = store.home.gallery / IMPORTED_FOLDER / datetime.now(UTC).strftime("%Y-%m-%d")
    seen: dict[str, int] = {}
    yield Progress("importing", 0, len(sources), f"{len(sources)} file(s)")
    for index, source in enumerate(sources):
        cancel.check()
        shown_path = _shown_path(source)
        try:
            data = read_file(str(source), LIMITS)
            kind = _check_image(data)
        except Skip as why:
            result.skipped.append({"path": shown_path, "reason": str(why)})
            continue
        digest = hashlib.sha256(data).hexdigest()
        known = seen.get(digest) or items_by_hash(store, [digest]).get(digest)
        if known is not None:
            result.duplicates.append({"path": shown_path, "item": known})
            continue
        found = read_foreign(data)
        studio = _studio_metadata(source, found)
        curation = _curation(source, data, found)
        entry = _store_file(store, repository, folder, data, digest, FORMATS[kind], source, found, studio)
        seen[digest] = entry.id
        notes = found.notes + (_apply_curation(repository, entry, curation) if curation else [])
        with contextlib.suppress(OSError, *PILLOW_ERRORS):  # a thumbnail is a cache: made when first shown
            make_thumbnail(store.home.absolute(entry.path), thumbnail_path(store, entry.id))
        result.imported.append(
            {"id": entry.id, "path": shown_path, "tool": found.tool, "model": entry.model, "file": entry.path}
        )
        result.notes += [{"path": shown_path, "note": note} for note in notes]
        yield Progress("importing", index + 1, len(sources), f"{index + 1}/{len(sources)}: {tool_title(found.tool)}")
    yield Finished(result)


def _store_file(
    store: Store,
    repository: GalleryRepository,
    folder: Path,
    data: bytes,
    digest: str,
    suffix: str,
    source: Path,
    found: ForeignImage,
    studio: PngMetadata | None,
) -> GalleryEntry:
    """The file written into the gallery (journalled first), then its row."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest[:16]}{suffix}"
    relative = store.home.relative(path)
    journal = StagingFolder(store.home.staging, "gallery-batch")
    try:
        write_pending(journal, [relative])
        xmp.write_atomically(path, data)
        try:
            entry = repository.add_many([_row(relative, digest, source, found, studio)])[0]
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    finally:
        journal.discard()
    return entry
