"""What a source handed to `studio models import` is: a Studio model folder, a diffusers pipeline or UNet
folder, an ONNX file (or a folder holding ONNX files), or none of these.

Only small, known files are read (bounded JSON), never weights. Symbolic links are followed only inside a
Hugging Face cache repository, whose snapshots are links into the repository's own `blobs/` folder.
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.families import registry
from studio.engine.untrusted.model_files import MAX_CARD_BYTES
from studio.engine.untrusted.values import JsonLimits, MalformedError, open_regular, parse_json, read_limited
from studio.errors import StudioError

# The diffusers pipelines Studio can load (the diffusion importer maps them onto its own families).
DIFFUSERS_PIPELINES = ("DDPMPipeline", "DDIMPipeline", "LDMPipeline")
UNET_CLASS = "UNet2DModel"
ONNX_SUFFIX = ".onnx"
# A folder is searched this deep for ONNX files (a repository's root and its onnx/ folder), and no further
# than this many entries, so pointing the importer at a large tree costs little.
ONNX_SEARCH_DEPTH = 2
MAX_ENTRIES_SEARCHED = 2000
# diffusers writes -Infinity in some scheduler configurations (DPM-Solver); each reader bounds its values.
_JSON_LIMITS = JsonLimits(max_bytes=1 << 20, max_depth=16, max_members=100_000, max_string=1 << 16, infinity=True)


class SourceKind(enum.Enum):
    """What a source is, as far as importing goes."""

    STUDIO_FOLDER = "studio"  # config.json (with "family") + checkpoint.safetensors
    STUDIO_ONNX_FOLDER = "studio-onnx"  # a Studio folder of an imported ONNX generator (config.json + onnx/)
    DIFFUSERS_PIPELINE = "diffusers"  # model_index.json naming one of DIFFUSERS_PIPELINES
    UNET2D = "unet2d"  # config.json with _class_name UNet2DModel
    ONNX_FILE = "onnx"  # one .onnx file, or a folder holding ONNX files
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Source:
    """A classified source: its kind, a short description of what it is, and the ONNX files found in it."""

    kind: SourceKind
    path: Path
    what: str
    onnx_files: tuple[Path, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def loadable(self) -> bool:
        """Whether Studio can import it (a folder of several ONNX files needs one chosen: still loadable)."""
        return self.kind is not SourceKind.UNKNOWN


def cache_repository(path: Path) -> Path | None:
    """The Hugging Face cache repository folder (`models--org--name`) a path lies in, through `snapshots/`."""
    absolute = Path(os.path.abspath(path))
    for parent in absolute.parents:
        if parent.name == "snapshots" and parent.parent.name.startswith("models--"):
            return parent.parent
    return None


def follow(path: Path, links_within: Path | None) -> Path:
    """`path`, or where its symbolic link points when that lies inside `links_within`; else a StudioError."""
    if not path.is_symlink():
        return path
    target = path.resolve()
    if links_within is not None and target.is_relative_to(links_within.resolve()):
        return target
    raise StudioError(f"{path} is a symbolic link: not imported (give the file it points to)")


def read_json(path: Path, links_within: Path | None = None) -> dict[str, Any]:
    """A small JSON object file (config.json, model_index.json), bounded; a one-line StudioError otherwise."""
    try:
        value = parse_json(read_limited(follow(path, links_within), _JSON_LIMITS.max_bytes), _JSON_LIMITS)
    except MalformedError as why:
        raise StudioError(f"{path} is not a readable JSON file ({why})") from None
    except OSError as error:
        raise StudioError(f"{path} cannot be read ({error.strerror or error})") from None
    if not isinstance(value, dict):
        raise StudioError(f"{path} is not a JSON object")
    return value


def find_onnx_files(folder: Path) -> tuple[Path, ...]:
    """The .onnx files in `folder` and its subfolders down to ONNX_SEARCH_DEPTH, sorted (hidden ones skipped)."""
    found: list[Path] = []
    seen = 0
    pending = [(folder, 0)]
    while pending and seen < MAX_ENTRIES_SEARCHED:
        current, depth = pending.pop()
        try:
            entries = sorted(current.iterdir())
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if entry.name.startswith("."):
                continue
            if entry.name.lower().endswith(ONNX_SUFFIX) and not entry.is_dir():
                found.append(entry)
            elif depth + 1 < ONNX_SEARCH_DEPTH and entry.is_dir() and not entry.is_symlink():
                pending.append((entry, depth + 1))
    return tuple(sorted(found))


def classify(path: Path, links_within: Path | None = None) -> Source:
    """What `path` is; `links_within` is the Hugging Face cache repository whose links may be followed."""
    if path.is_file() or (path.is_symlink() and not path.is_dir()):
        if path.name.lower().endswith(ONNX_SUFFIX):
            return Source(SourceKind.ONNX_FILE, path, "an ONNX file", (path,))
        return Source(SourceKind.UNKNOWN, path, "a file that is not .onnx")
    if not path.is_dir():
        return Source(SourceKind.UNKNOWN, path, "nothing there")
    index = path / "model_index.json"
    if index.exists():
        pipeline = str(read_json(index, links_within).get("_class_name") or "")
        if pipeline in DIFFUSERS_PIPELINES:
            return Source(
                SourceKind.DIFFUSERS_PIPELINE, path, f"a diffusers {pipeline}", details={"pipeline": pipeline}
            )
        shown = pipeline[:64] or "an unnamed pipeline"
        return Source(
            SourceKind.UNKNOWN,
            path,
            f"a diffusers {shown}, which Studio does not load (only {', '.join(DIFFUSERS_PIPELINES)})",
        )
    config_path = path / "config.json"
    if config_path.exists():
        config = read_json(config_path, links_within)
        if config.get("_class_name") == UNET_CLASS:
            return Source(SourceKind.UNET2D, path, f"a diffusers {UNET_CLASS}")
        family = config.get("family")
        if isinstance(family, str):
            if family in registry.family_names() and not registry.declaration(family).trainable:
                # An imported generator copied out of a Studio home: its ONNX file is imported again.
                return Source(SourceKind.STUDIO_ONNX_FOLDER, path, f"a Studio {family} model folder", details=config)
            return Source(SourceKind.STUDIO_FOLDER, path, f"a Studio {family[:64]} model folder")
    onnx_files = find_onnx_files(path)
    if onnx_files:
        what = "an ONNX file" if len(onnx_files) == 1 else f"{len(onnx_files)} ONNX files"
        return Source(SourceKind.ONNX_FILE, path, what, onnx_files)
    if config_path.exists():
        name = str(read_json(config_path, links_within).get("_class_name") or "")[:64]
        return Source(
            SourceKind.UNKNOWN, path, f"a {name} config, which Studio does not load" if name else "a config.json"
        )
    return Source(SourceKind.UNKNOWN, path, "no model_index.json, UNet2DModel config.json or .onnx file")


# --- what every importer shares ---------------------------------------------------------------

_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")


def default_name(stem: str) -> str:
    """A valid model name from a file or repository name ("DCGAN mnist (v2)" -> "DCGAN-mnist-v2")."""
    cleaned = _NAME_CHARACTERS.sub("-", stem).strip("-._")[:64].rstrip("-._")
    return cleaned or "imported"


def read_model_card(path: Path, links_within: Path | None = None) -> bytes | None:
    """A model card (README.md) to keep with the model: None when absent, unreadable or over MAX_CARD_BYTES."""
    try:
        real = follow(path, links_within)
        with open_regular(real) as handle:
            if os.fstat(handle.fileno()).st_size > MAX_CARD_BYTES:
                return None
            return handle.read(MAX_CARD_BYTES)
    except (OSError, StudioError):
        return None


def card_license(card: bytes | None) -> str | None:
    """The `license:` of a model card's front matter (Hugging Face's YAML block), or None."""
    if not card or not card.startswith(b"---"):
        return None
    for line in card.decode("utf-8", "replace").splitlines()[1:200]:
        if line.strip() == "---":
            break
        key, _, value = line.partition(":")
        if key.strip() == "license" and value.strip():
            return value.strip().strip("'\"")[:64]
    return None
