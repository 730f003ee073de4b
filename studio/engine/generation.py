"""Generation into the gallery, with either backend: sample, interpolate and inpaint.

A model opens as a family pipeline over torch modules (`backend="torch"`) or over ONNX Runtime
sessions (`backend="onnx"`); both share every procedure and random draw, so a seed gives the same
image either way. Every PNG carries its generation parameters as JSON in a `studio` text chunk, so
an image alone says how to make it again. Files are written atomically before their rows are
committed, one transaction per batch; interpolation frames and inpainting results record their
parent items (lineage). torch is imported only when the torch backend is used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import re
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo
from sqlalchemy.exc import IntegrityError

from studio import __version__
from studio.engine.datasets.decode import ImportLimits, Skip, decode_image, read_file
from studio.engine.families.conditioning import CLASS_OPTION, check_class
from studio.engine.families.pipeline import Endpoint, Pipeline
from studio.engine.families.registry import declaration, family_names
from studio.engine.interchange.a1111 import PARAMETERS_KEY, SOFTWARE, SOFTWARE_KEY, format_parameters
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.model_locks import ModelHold, hold_model
from studio.engine.numerics import iterate_batches
from studio.engine.runtime.package import EXPORT_FOLDER, ExportError, load_exported, recover_export
from studio.engine.runtime.provider_names import PROVIDER_CHOICES
from studio.engine.stepping import batch_steps, fit_memory, stepped
from studio.engine.thumbnails import make_thumbnail, thumbnail_path
from studio.engine.untrusted.png import METADATA_KEY  # the chunk written here is the one read there
from studio.errors import NotFoundError, StudioError
from studio.files import StagingFolder, atomic_file, write_pending
from studio.limits import BACKENDS, COUNT, FRAMES, ITEM_ID, SEED, IntRange
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from studio.store.tables import Model

MAX_COUNT = COUNT.high
MAX_FRAMES = FRAMES.high
MAX_SEED = SEED.high
ITEM_CLASS = "class"  # the PNG metadata member (and --json key) naming the class an item was made as
INPUTS_FOLDER = "_inputs"  # inpainting sources and masks, content-addressed, so results can be remade


@dataclass
class OpenedModel:
    """A model ready to generate: its pipeline, and which backend and provider really run it."""

    name: str
    model_id: int
    family: str
    pipeline: Pipeline
    backend: str
    provider: str
    weights_hash: str | None
    steps_trained: int
    note: str = ""  # e.g. why auto fell back to the CPU
    hold: ModelHold | None = None  # the model's use lock: no one deletes it while it generates

    def close(self) -> None:
        """Let go of the model (others may delete it from now on)."""
        if self.hold is not None:
            self.hold.close()

    def __enter__(self) -> OpenedModel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


@dataclass
class GenerateResult:
    """The gallery items made, and how long they took."""

    items: list[dict[str, Any]]
    seconds: float
    backend: str
    device: str
    options: dict[str, Any] = field(default_factory=dict)
    operation: str = "sample"
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio generate|interpolate|inpaint --json`)."""
        count = max(1, len(self.items))
        return {
            "operation": self.operation,
            "items": self.items,
            "seconds": round(self.seconds, 3),
            "seconds_per_image": round(self.seconds / count, 4),
            "backend": self.backend,
            "device": self.device,
            "provider": self.device,
            "options": self.options,
            "note": self.note,
        }


def write_png(path: Path, image: np.ndarray, metadata: Mapping[str, Any]) -> None:
    """Save uint8 HxWxC as PNG with a JSON text chunk (and A1111's `parameters`), through a temporary file."""
    pixels = image[..., 0] if image.shape[2] == 1 else image
    info = PngInfo()
    info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True), zip=False)
    if "model" in metadata:  # for other tools' browsers; `studio` stays the truth (inputs get neither)
        info.add_text(PARAMETERS_KEY, format_parameters(metadata, image.shape[1], image.shape[0]), zip=False)
        info.add_text(SOFTWARE_KEY, SOFTWARE, zip=False)
    with atomic_file(path) as handle:
        Image.fromarray(pixels).save(handle, format="PNG", pnginfo=info)


def gallery_folder(store: Store, model: str) -> Path:
    """gallery/<model>/<YYYY-MM-DD>/, created."""
    folder = store.home.gallery / model / datetime.now(UTC).strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- opening a model ------------------------------------------------------------------------


def open_model(
    store: Store,
    name: str,
    backend: str = "torch",
    provider: str = "auto",
    device: str = "auto",
    weights: Path | None = None,
) -> OpenedModel:
    """A model's pipeline on torch (on `device`; `weights`: a milestone folder instead) or ONNX (on `provider`)."""
    if backend not in BACKENDS:
        raise StudioError(f"unknown backend '{backend}': choose torch or onnx")
    if provider not in PROVIDER_CHOICES:
        raise StudioError(f"unknown provider '{provider}': choose {', '.join(PROVIDER_CHOICES)}")
    hold = hold_model(store, name)
    try:
        return _open_held(store, name, hold, backend, provider, device, weights)
    except BaseException:
        hold.close()
        raise


def _open_held(
    store: Store, name: str, hold: ModelHold, backend: str, provider: str, device: str, weights: Path | None = None
) -> OpenedModel:
    """open_model's work once the model is held (so its row and folder stay put)."""
    with store.sessions() as session:
        row = session.get(Model, hold.model_id)
        if row is None:
            raise NotFoundError(f"no model named '{name}' (see `studio models list`)")
        model_id, folder = row.id, store.home.absolute(row.folder)
        facts = {
            "family": row.family,
            "resolution": row.resolution,
            "channels": row.channels,
            "weights_hash": row.weights_hash,
        }
    note = ""
    if backend == "torch" and facts["family"] in family_names() and not declaration(facts["family"]).trainable:
        # An imported generator has no torch side: torch is every face's default backend, so rather than
        # refuse it, run the file on ONNX Runtime and say so (the images record the backend that ran).
        if device != "auto":
            raise StudioError(f"'{name}' is an imported ONNX generator: it runs with --backend onnx, not on --device")
        backend, note = "onnx", f"'{name}' is an imported ONNX generator: it runs on ONNX Runtime (--backend onnx)"
    if backend == "torch":
        if provider != "auto":
            raise StudioError("--provider chooses an ONNX Runtime provider: use it with --backend onnx")
        from studio.engine.checkpoints import load_model  # torch: loaded only for this backend
        from studio.engine.devices import select_device

        torch_device = select_device(device)
        loaded = load_model(weights or folder, torch_device, with_optimizers=False)
        loaded.family.train_mode(False)
        return OpenedModel(
            name,
            model_id,
            loaded.family.name,
            loaded.family.pipeline(),
            "torch",
            torch_device.type,
            loaded.config.get("weights_hash"),
            loaded.state.step,
            hold=hold,
        )
    if device != "auto":
        raise StudioError("--device chooses a torch device: with --backend onnx use --provider")
    recover_export(folder)
    if not (folder / EXPORT_FOLDER).is_dir():
        raise ExportError(f"model '{name}' has not been exported to ONNX: run `studio export {name}` first")
    exported = load_exported(folder / EXPORT_FOLDER, provider, expect=facts)
    return OpenedModel(
        name,
        model_id,
        exported.manifest["family"],
        exported.pipeline,
        "onnx",
        exported.provider,
        exported.manifest.get("weights_hash"),
        int(exported.manifest.get("steps_trained", 0)),
        "; ".join(part for part in (note, exported.choice.note) if part),
        hold,
    )


def _check_seed(seed: int | None, count: int) -> int:
    """A valid count of images and the first of their seeds (random when not given)."""
    COUNT.check(count)
    if seed is None:
        return secrets.randbelow(2**31)
    # Image i uses seed + i: the last seed must fit too.
    return IntRange(SEED.low, SEED.high - count, SEED.what).check(seed)


def _check_writable(store: Store) -> None:
    if store.read_only:
        raise StudioError(f"the database is read-only: {store.read_only_reason}")


def item_classes(pipeline: Pipeline, seeds: Sequence[int], options: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each image's extra metadata for its class: {"class": name} of a conditional model, {} otherwise."""
    labels = pipeline.labels(seeds, options)
    if labels is None:
        return [{} for _ in seeds]
    return [{ITEM_CLASS: pipeline.classes[int(label)]} for label in labels]


class _GalleryWriter:
    """Writes one batch of images as PNGs with metadata, then their rows (and lineage) in one transaction."""

    def __init__(self, store: Store, opened: OpenedModel, operation: str, options: Mapping[str, Any]) -> None:
        self.store = store
        self.opened = opened
        self.operation = operation
        self.options = dict(options)
        self.folder = gallery_folder(store, opened.name)
        self.repository = GalleryRepository(store)

    def _model_gone(self) -> bool:
        with self.store.sessions() as session:
            return session.get(Model, self.opened.model_id) is None

    def metadata(self, seed: int | None, extra: Mapping[str, Any]) -> dict[str, Any]:
        """What the PNG carries: enough to make the image again."""
        opened = self.opened
        return {
            "studio_version": __version__,
            "operation": self.operation,
            "model": opened.name,
            "family": opened.family,
            "weights_hash": opened.weights_hash,
            "seed": seed,
            "params": self.options,
            "backend": opened.backend,
            "provider": opened.provider,
            "steps_trained": opened.steps_trained,
            **extra,
        }

    def save(
        self,
        images: np.ndarray,
        seeds: Sequence[int | None],
        extras: Sequence[Mapping[str, Any]],
        parents: Sequence[int | tuple[int, str]] = (),
    ) -> list[dict[str, Any]]:
        """Files first, rows after; returns what the CLI prints per item.

        The batch's file names go to a journal in a locked staging folder first: should the process be
        killed before the rows are committed, the next start removes the files no row points at.
        """
        opened = self.opened
        rows: list[dict[str, Any]] = []
        planned = [
            self.folder / f"{opened.name}-{seed if seed is not None else self.operation}-{uuid.uuid4().hex[:8]}.png"
            for seed in seeds
        ]
        paths: list[Path] = []
        journal = StagingFolder(self.store.home.staging, "gallery-batch")
        try:
            write_pending(journal, [self.store.home.relative(path) for path in planned])
            for path, image, seed, extra in zip(planned, images, seeds, extras, strict=True):
                paths.append(path)
                write_png(path, image, self.metadata(seed, extra))
                # The class the item was made as has a column (the gallery filters by it); the options keep
                # the class asked for (None: any), which is what reproducing it asks again.
                made_as = extra.get(ITEM_CLASS)
                rows.append(
                    {
                        "path": self.store.home.relative(path),
                        "model_name": opened.name,
                        "family": opened.family,
                        "width": image.shape[1],
                        "height": image.shape[0],
                        "model_id": opened.model_id,
                        "seed": seed,
                        "class_name": made_as if isinstance(made_as, str) else None,
                        "operation": self.operation,
                        "params": {**self.options, **{k: v for k, v in extra.items() if k != ITEM_CLASS}},
                        "backend": opened.backend,
                        "provider": opened.provider,
                        "parents": list(parents),
                    }
                )
            entries = self.repository.add_many(rows)
        except BaseException as error:
            # No row points at them (a full disk mid-batch, a failed commit): leave no orphans behind.
            for path in paths:
                path.unlink(missing_ok=True)
            journal.discard()
            if isinstance(error, IntegrityError) and self._model_gone():
                # Only where file locks do not work (some network file systems) can this happen.
                raise StudioError(
                    f"model '{opened.name}' was deleted while generating: the images of this batch were not kept"
                ) from None
            raise
        journal.discard()  # the rows point at the files now
        for path, entry in zip(paths, entries, strict=True):
            # Made once, here; a thumbnail is a cache, so a disk that filled up just now costs only
            # the thumbnail (remade when the item is first shown), not the committed images.
            with contextlib.suppress(OSError):
                make_thumbnail(path, thumbnail_path(self.store, entry.id))
        return [
            {"id": entry.id, "path": str(path), "seed": entry.seed, "class": entry.class_name}
            for path, entry in zip(paths, entries, strict=True)
        ]


# --- sample ---------------------------------------------------------------------------------


def generate(
    store: Store,
    model: str,
    count: int = 1,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    backend: str = "torch",
    device: str = "auto",
    provider: str = "auto",
    batch_size: int = 64,
    cancel: CancelToken | None = None,
) -> Job:
    """Sample `count` images with seeds seed, seed+1, ...; yields Progress, then Finished(GenerateResult)."""
    seed = _check_seed(seed, count)
    _check_writable(store)
    cancel = cancel or CancelToken()
    with open_model(store, model, backend, provider, device) as opened:  # holds the model while it runs
        chosen = opened.pipeline.sampling_options(options or {})
        writer = _GalleryWriter(store, opened, "sample", chosen)
        seeds = list(range(seed, seed + count))
        items: list[dict[str, Any]] = []
        started = time.monotonic()
        yield Progress("generating", 0, count, f"{model}: {count} image(s) on {opened.backend}/{opened.provider}")
        fit_memory(opened.pipeline, opened.backend, opened.provider)
        batches = iterate_batches(count, max(1, min(batch_size, opened.pipeline.chunk)))  # what memory holds
        for index, part in enumerate(batches):
            cancel.check()
            report = batch_steps("generating", len(items), len(seeds[part]), count, index + 1, len(batches))
            work = functools.partial(opened.pipeline.sample, seeds[part], chosen)
            images = yield from stepped(opened.pipeline, cancel, work, report)
            items += writer.save(images, seeds[part], item_classes(opened.pipeline, seeds[part], chosen))
            yield Progress("generating", len(items), count, f"{len(items)}/{count} images")
        yield Finished(
            GenerateResult(
                items, time.monotonic() - started, opened.backend, opened.provider, chosen, "sample", opened.note
            )
        )


# --- interpolate ----------------------------------------------------------------------------

_ITEM = re.compile(r"^(?:#|item:)([0-9]+)$")
_SEED = re.compile(r"^(?:seed:)?([0-9]+)$")


def item_reference(text: str | Path) -> int | None:
    """The gallery item id that `#45` or `item:45` names (within the id bounds), or None for anything else."""
    match = _ITEM.match(str(text).strip())
    return ITEM_ID.parse(match.group(1)) if match else None


@dataclass(frozen=True)
class EndpointRef:
    """What the user named as one end: a seed, a gallery item, or an image file."""

    seed: int | None = None
    item: int | None = None
    file: Path | None = None
    class_name: str | None = None  # a conditional model's class at this end (None: the seed's or item's own)

    @classmethod
    def parse(cls, text: str, class_name: str | None = None) -> EndpointRef:
        """`123` or `seed:123` is a seed, `#45` or `item:45` a gallery item, anything else an image file."""
        text = text.strip()
        if (item := item_reference(text)) is not None:
            return cls(item=item, class_name=class_name)
        if match := _SEED.match(text):
            return cls(seed=SEED.parse(match.group(1)), class_name=class_name)
        path = Path(text).expanduser()
        if not path.is_file():
            raise StudioError(f"'{text}' is neither a seed, a gallery item (#ID) nor an image file")
        return cls(file=path, class_name=class_name)

    def describe(self) -> dict[str, Any]:
        """How the PNG metadata records it."""
        chosen = {ITEM_CLASS: self.class_name} if self.class_name is not None else {}
        if self.seed is not None:
            return {"seed": self.seed, **chosen}
        if self.item is not None:
            return {"item": self.item, **chosen}
        return {"file": str(self.file), **chosen}


def _image_at_model_size(data: bytes, pipeline: Pipeline, what: str) -> np.ndarray:
    """Image bytes decoded, centre-cropped and resized to the model's size and channels (uint8 HWC)."""
    size, channels = pipeline.resolution, pipeline.channels
    try:
        decoded = decode_image(data, size, channels, ImportLimits())
    except Skip as reason:
        raise StudioError(f"{what}: {reason}") from None
    return np.frombuffer(decoded.pixels, np.uint8).reshape(size, size, channels).copy()


def _read_user_file(path: Path, what: str) -> bytes:
    try:
        return read_file(str(path), ImportLimits())
    except Skip as reason:
        raise StudioError(f"{what} {path}: {reason}") from None


def resolve_endpoint(store: Store, opened: OpenedModel, ref: EndpointRef) -> tuple[Endpoint, int | None]:
    """The pipeline endpoint for a reference, and the gallery item it came from (for lineage)."""
    pipeline = opened.pipeline
    asked = check_class(pipeline.classes, ref.class_name, f"model '{opened.name}'")
    if ref.seed is not None:
        return Endpoint(seed=ref.seed, class_name=asked), None
    if ref.file is not None:
        pipeline.require("encode")
        data = _read_user_file(ref.file, "image")
        return Endpoint(image=_image_at_model_size(data, pipeline, str(ref.file)), class_name=asked), None
    assert ref.item is not None
    entry = GalleryRepository(store).get(ref.item)
    # An item of this model keeps the class it was made as, unless another is asked for.
    own = entry.class_name if entry.model == opened.name and entry.class_name in pipeline.classes else None
    class_name = asked if asked is not None else own
    if entry.model == opened.name and entry.operation == "sample" and entry.seed is not None:
        return Endpoint(seed=entry.seed, class_name=class_name), entry.id
    if "encode" not in pipeline.capabilities:
        raise StudioError(
            f"item {entry.id} was not sampled by '{opened.name}' from a seed, and {opened.family} models "
            "cannot encode images: choose seeds or items sampled from this model"
        )
    path = store.home.absolute(entry.path)
    data = _read_user_file(path, f"gallery item {entry.id}")
    image = _image_at_model_size(data, pipeline, f"gallery item {entry.id}")
    return Endpoint(image=image, class_name=class_name), entry.id


def interpolate(
    store: Store,
    model: str,
    start: EndpointRef,
    end: EndpointRef,
    frames: int = 8,
    options: Mapping[str, Any] | None = None,
    backend: str = "torch",
    device: str = "auto",
    provider: str = "auto",
    cancel: CancelToken | None = None,
) -> Job:
    """`frames` images from start to end (both included) into the gallery, each pointing at its endpoints."""
    FRAMES.check(frames)
    _check_writable(store)
    cancel = cancel or CancelToken()
    with open_model(store, model, backend, provider, device) as opened:  # holds the model while it runs
        opened.pipeline.require("interpolate")
        chosen = opened.pipeline.interpolation_options(options or {})
        first, first_item = resolve_endpoint(store, opened, start)
        second, second_item = resolve_endpoint(store, opened, end)
        started = time.monotonic()
        yield Progress("interpolating", 0, frames, f"{model}: {frames} frames on {opened.backend}/{opened.provider}")
        cancel.check()
        fit_memory(opened.pipeline, opened.backend, opened.provider)
        work = functools.partial(opened.pipeline.interpolate, first, second, frames, chosen)
        report = batch_steps("interpolating", 0, frames, frames, 1, 1)
        images = yield from stepped(opened.pipeline, cancel, work, report)
        cancel.check()
        method = opened.pipeline.interpolation_method(first, second)
        weights = np.linspace(0.0, 1.0, frames)
        # A frame of a conditional model is filed under the class it is nearer to (the start's at half way).
        frame_classes = [
            {ITEM_CLASS: name} if name is not None else {}
            for name in opened.pipeline.frame_classes(first, second, frames)
        ]
        extras = [
            {
                "from": start.describe(),
                "to": end.describe(),
                "frame": index,
                "frames": frames,
                "t": round(float(weight), 6),
                "method": method,
                **frame_classes[index],
            }
            for index, weight in enumerate(weights)
        ]
        parents: list[int | tuple[int, str]] = []
        if first_item is not None:
            parents.append((first_item, "from"))
        if second_item is not None and second_item != first_item:
            parents.append((second_item, "to"))
        items = _GalleryWriter(store, opened, "interpolate", chosen).save(images, [None] * frames, extras, parents)
        yield Progress("interpolating", frames, frames, f"{frames} frames")
        yield Finished(
            GenerateResult(
                items, time.monotonic() - started, opened.backend, opened.provider, chosen, "interpolate", opened.note
            )
        )


# --- inpaint --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InpaintInputs:
    """The image to complete at the model's size, and which pixels to regenerate."""

    image: np.ndarray  # uint8 H x W x C
    regenerate: np.ndarray  # bool H x W, True where new pixels are wanted
    source_item: int | None = None


def load_inpaint_inputs(
    store: Store, pipeline: Pipeline, image: str | Path, mask: str | Path | np.ndarray
) -> InpaintInputs:
    """Read the image (a file or `#ID` gallery item) and the mask (white = regenerate) at the model's size.

    The mask must have the image's own size; both are centre-cropped and resized the same way.
    """
    source_item = None
    item = item_reference(image)
    if item is not None:
        entry = GalleryRepository(store).get(item)
        source_item = entry.id
        path = store.home.absolute(entry.path)
        what = f"gallery item {entry.id}"
    else:
        path = Path(image).expanduser()
        what = f"image {path}"
        if not path.is_file():
            raise StudioError(f"no image file at {path}")
    data = _read_user_file(path, what)
    pixels = _image_at_model_size(data, pipeline, what)
    with Image.open(io.BytesIO(data)) as opened:
        original_size = opened.size
    if isinstance(mask, np.ndarray):
        regenerate = np.asarray(mask, bool)
        if regenerate.shape != original_size[::-1] and regenerate.shape != pixels.shape[:2]:
            raise StudioError(
                f"the mask is {regenerate.shape[1]}x{regenerate.shape[0]} but the image is "
                f"{original_size[0]}x{original_size[1]}: they must be the same size"
            )
        if regenerate.shape != pixels.shape[:2]:
            regenerate = _mask_at_size(Image.fromarray(regenerate.astype(np.uint8) * 255), pipeline.resolution)
    else:
        regenerate = _read_mask(Path(mask).expanduser(), original_size, pipeline.resolution)
    if not regenerate.any():
        raise StudioError("the mask is empty: paint the area to regenerate in white")
    if regenerate.all():
        raise StudioError("the mask covers the whole image, so nothing is kept: use generate instead")
    return InpaintInputs(pixels, regenerate, source_item)


def _read_mask(path: Path, size: tuple[int, int], resolution: int) -> np.ndarray:
    if not path.is_file():
        raise StudioError(f"no mask file at {path}")
    data = _read_user_file(path, "mask")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.size != size:
                raise StudioError(
                    f"the mask is {opened.size[0]}x{opened.size[1]} but the image is "
                    f"{size[0]}x{size[1]}: they must be the same size"
                )
            grey = opened.convert("L")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise StudioError(f"mask {path}: not a readable image ({str(error).splitlines()[0]})") from None
    return _mask_at_size(grey, resolution)


def _mask_at_size(grey: Image.Image, resolution: int) -> np.ndarray:
    """Centre-crop like the image, resize, and threshold at half: True = regenerate."""
    width, height = grey.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    # Box filtering then a threshold: a pixel is regenerated when at least half of its area is painted.
    small = grey.resize((resolution, resolution), Image.Resampling.BOX, box=(left, top, left + side, top + side))
    return np.asarray(small) >= 128


def _store_input(store: Store, pixels: np.ndarray, kind: str) -> str:
    """Save an inpainting input (source or mask) once, by content; returns its path in the data home."""
    folder = store.home.gallery / INPUTS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()[:16]
    path = folder / f"{kind}-{digest}.png"
    if not path.exists():
        write_png(path, pixels if pixels.ndim == 3 else pixels[..., None], {"input": kind})
    return store.home.relative(path)


def inpaint(
    store: Store,
    model: str,
    image: str | Path,
    mask: str | Path | np.ndarray,
    count: int = 4,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    backend: str = "torch",
    device: str = "auto",
    provider: str = "auto",
    cancel: CancelToken | None = None,
) -> Job:
    """Regenerate the masked part of an image `count` times (seeds seed, seed+1, ...) into the gallery."""
    seed = _check_seed(seed, count)
    item_reference(image)  # an out-of-range #ID is refused before the model is loaded
    _check_writable(store)
    cancel = cancel or CancelToken()
    with open_model(store, model, backend, provider, device) as opened:  # holds the model while it runs
        opened.pipeline.require("inpaint")
        options = dict(options or {})
        inputs = load_inpaint_inputs(store, opened.pipeline, image, mask)
        if options.get(CLASS_OPTION) is None and inputs.source_item is not None:
            # Completing an item of this model keeps its class unless another is asked for.
            entry = GalleryRepository(store).get(inputs.source_item)
            if entry.model == opened.name and entry.class_name in opened.pipeline.classes:
                options[CLASS_OPTION] = entry.class_name
        chosen = opened.pipeline.sampling_options(options)
        source_path = _store_input(store, inputs.image, "source")
        mask_path = _store_input(store, inputs.regenerate.astype(np.uint8) * 255, "mask")
        seeds = list(range(seed, seed + count))
        extra = {
            "source": source_path,
            "mask": mask_path,
            "source_item": inputs.source_item,
            "masked_fraction": round(float(inputs.regenerate.mean()), 4),
        }
        parents: list[int | tuple[int, str]] = [(inputs.source_item, "source")] if inputs.source_item else []
        writer = _GalleryWriter(store, opened, "inpaint", chosen)
        items: list[dict[str, Any]] = []
        started = time.monotonic()
        yield Progress("inpainting", 0, count, f"{model}: {count} completion(s) on {opened.backend}/{opened.provider}")
        fit_memory(opened.pipeline, opened.backend, opened.provider)
        batches = iterate_batches(count, max(1, opened.pipeline.chunk))  # what memory holds
        for index, part in enumerate(batches):
            cancel.check()
            batch = len(seeds[part])
            images = np.repeat(inputs.image[None], batch, axis=0)
            known = np.repeat(~inputs.regenerate[None], batch, axis=0)
            report = batch_steps("inpainting", len(items), batch, count, index + 1, len(batches))
            work = functools.partial(opened.pipeline.inpaint, images, known, seeds[part], chosen)
            results = yield from stepped(opened.pipeline, cancel, work, report)
            classes = item_classes(opened.pipeline, seeds[part], chosen)
            items += writer.save(results, seeds[part], [{**extra, **made} for made in classes], parents)
            yield Progress("inpainting", len(items), count, f"{len(items)}/{count} images")
        yield Finished(
            GenerateResult(
                items, time.monotonic() - started, opened.backend, opened.provider, chosen, "inpaint", opened.note
            )
        )
