"""Bringing models made elsewhere into the library: one entry point, `import_any`, for every kind of source.

A source is a path (a Studio model folder, a diffusers pipeline or UNet2DModel folder, an .onnx file or a
folder holding one) or a Hugging Face repository id (`org/name`) found in the local cache. `import_any`
works out which (`sources.classify`) and hands it to that kind's importer; the CLI and the UI call only it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.engine.importers import hf_cache
from studio.engine.importers.diffusers_folder import import_diffusers
from studio.engine.importers.onnx_generator import (
    FILE_NAME,
    import_onnx_generator,
    parse_latent_shape,
    parse_value_range,
)
from studio.engine.importers.sources import Source, SourceKind, cache_repository, classify, read_model_card
from studio.engine.library import ModelSummary, import_model
from studio.engine.runtime.package import EXPORT_FOLDER
from studio.engine.untrusted.model_files import CARD_FILE
from studio.errors import StudioError
from studio.store.database import Store

__all__ = ["ImportOptions", "import_any", "parse_latent_shape", "parse_value_range"]

UNRECOGNISED = "is not a Studio model folder, diffusers pipeline folder, UNet2DModel folder or .onnx file"
_ORIGIN_KEYS = ("kind", "source", "repo_id", "revision", "license")


@dataclass(frozen=True)
class ImportOptions:
    """What a source cannot say for itself: an ONNX generator's value range and noise shape (else inferred
    from the file), and which revision of a cached Hugging Face repository (else its main branch)."""

    value_range: tuple[float, float] | None = None
    latent_shape: tuple[int, ...] | None = None
    revision: str | None = None


def import_any(
    store: Store, source: str | Path, name: str | None = None, options: ImportOptions | None = None
) -> ModelSummary:
    """Import `source` (a path, or an `org/name` repository in the local Hugging Face cache) as model `name`.

    Nothing is half-imported: every importer checks first, stages the folder, publishes it whole and only
    then adds the row; a refusal is one line.
    """
    options = options or ImportOptions()
    text = str(source)
    path = Path(text).expanduser()
    origin: dict[str, Any] = {}
    fallback: str | None = None
    links_within = cache_repository(path)  # a path inside the cache may follow its links into blobs/
    if not path.exists() and not path.is_symlink() and hf_cache.looks_like_repo_id(text):
        snapshot = hf_cache.resolve(text, options.revision)
        path, links_within, origin, fallback = snapshot.folder, snapshot.repo_folder, snapshot.origin(), text
    elif options.revision is not None:
        raise StudioError("--revision chooses a revision of a Hugging Face repository (org/name), not of a path")
    found = classify(path, links_within)
    onnx_options = options.value_range is not None or options.latent_shape is not None
    if onnx_options and found.kind is not SourceKind.ONNX_FILE:
        raise StudioError(f"--value-range and --latent-shape describe an ONNX generator, and {text} is {found.what}")
    if found.kind is SourceKind.STUDIO_FOLDER:
        return import_model(store, found.path, name)
    if found.kind is SourceKind.STUDIO_ONNX_FOLDER:
        return _import_studio_onnx_folder(store, found, name)
    if found.kind in (SourceKind.DIFFUSERS_PIPELINE, SourceKind.UNET2D):
        return _import_diffusers(store, found, name, origin, fallback, links_within)
    if found.kind is SourceKind.ONNX_FILE:
        return _import_onnx(store, found, name, options, origin, fallback, links_within, text)
    raise StudioError(f"{text} {UNRECOGNISED} ({found.what})")


def _import_diffusers(
    store: Store,
    found: Source,
    name: str | None,
    origin: dict[str, Any],
    fallback: str | None,
    links_within: Path | None,
) -> ModelSummary:
    """The diffusers branch: a DDPM/DDIM/LDM pipeline folder or a UNet2DModel folder (`found.details` holds the
    pipeline's class); `origin` holds the cache repository and commit when it came from there."""
    del fallback  # the importer names the model after origin["repo_id"] or the folder
    return import_diffusers(store, found.path, name, origin, links_within=links_within)


def _import_onnx(
    store: Store,
    found: Source,
    name: str | None,
    options: ImportOptions,
    origin: dict[str, Any],
    fallback: str | None,
    links_within: Path | None,
    text: str,
) -> ModelSummary:
    """An .onnx file, or a folder holding exactly one (its README.md is kept as the model card)."""
    if len(found.onnx_files) > 1:
        names = ", ".join(str(file.relative_to(found.path)) for file in found.onnx_files[:5])
        more = f" and {len(found.onnx_files) - 5} more" if len(found.onnx_files) > 5 else ""
        raise StudioError(f"{text} holds {len(found.onnx_files)} ONNX files ({names}{more}): import one by its path")
    folder = found.path if found.path.is_dir() else None
    card = read_model_card(folder / CARD_FILE, links_within) if folder is not None else None
    if fallback is None and folder is not None:
        fallback = folder.name
    return import_onnx_generator(
        store,
        found.onnx_files[0],
        name,
        value_range=options.value_range,
        latent_shape=options.latent_shape,
        fallback_name=fallback.split("/")[-1] if fallback else None,
        origin=origin,
        links_within=links_within,
        model_card=card,
    )


def _import_studio_onnx_folder(store: Store, found: Source, name: str | None) -> ModelSummary:
    """An imported generator's folder from another Studio home: its ONNX file again, with what it recorded."""
    config = found.details
    architecture = config.get("architecture")
    if not isinstance(architecture, dict):
        raise StudioError(f"{found.path / 'config.json'} lacks the architecture of its ONNX generator")
    try:
        latent_shape = parse_latent_shape(",".join(str(size) for size in architecture["latent_shape"]))
        value_range = parse_value_range(",".join(str(end) for end in architecture["value_range"]))
    except (KeyError, TypeError):
        raise StudioError(f"{found.path / 'config.json'} lacks its generator's latent_shape or value_range") from None
    recorded = config.get("origin")
    origin = {
        key: value[:512]
        for key, value in (recorded.items() if isinstance(recorded, dict) else ())
        if key in _ORIGIN_KEYS and isinstance(value, str) and key != "source"
    }
    return import_onnx_generator(
        store,
        found.path / EXPORT_FOLDER / FILE_NAME,
        name,
        value_range=value_range,
        latent_shape=latent_shape,
        fallback_name=str(config.get("name") or found.path.name),
        origin=origin,
        model_card=read_model_card(found.path / CARD_FILE),
    )
