"""Generation with the torch backend: sample a model, write PNGs into the gallery, record each one.

Every PNG carries its generation parameters as JSON in a `studio` text chunk, so an image alone
says how to make it again. Files are written atomically before their rows are committed.
"""

from __future__ import annotations

import json
import os
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import select

from studio import __version__
from studio.engine.checkpoints import load_model
from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.library import model_folder
from studio.engine.models.base import iterate_batches
from studio.engine.training import select_device
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryRepository
from studio.store.models import Model

METADATA_KEY = "studio"
MAX_COUNT = 10_000
MAX_SEED = 2**63 - 1


@dataclass
class GenerateResult:
    """The gallery items made, and how long an image took."""

    items: list[dict[str, Any]]
    seconds: float
    backend: str
    device: str
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio generate --json`)."""
        count = max(1, len(self.items))
        return {"items": self.items, "seconds": round(self.seconds, 3),
                "seconds_per_image": round(self.seconds / count, 4), "backend": self.backend,
                "device": self.device, "options": self.options}


def write_png(path: Path, image: np.ndarray, metadata: Mapping[str, Any]) -> None:
    """Save uint8 HxWxC as PNG with a JSON text chunk, through a temporary file and fsync."""
    pixels = image[..., 0] if image.shape[2] == 1 else image
    info = PngInfo()
    info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True), zip=False)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as handle:
            Image.fromarray(pixels).save(handle, format="PNG", pnginfo=info)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def gallery_folder(store: Store, model: str) -> Path:
    """gallery/<model>/<YYYY-MM-DD>/, created."""
    folder = store.home.gallery / model / datetime.now(UTC).strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def generate(
    store: Store,
    model: str,
    count: int = 1,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    backend: str = "torch",
    device: str = "auto",
    batch_size: int = 64,
    cancel: CancelToken | None = None,
) -> Job:
    """Sample `count` images with seeds seed, seed+1, ...; yields Progress, then Finished(GenerateResult)."""
    if backend != "torch":
        raise StudioError(f"unknown backend '{backend}': this version generates with the torch backend")
    if not 1 <= count <= MAX_COUNT:
        raise StudioError(f"invalid count {count}: choose 1 to {MAX_COUNT}")
    if seed is None:
        seed = secrets.randbelow(2**31)
    if not 0 <= seed <= MAX_SEED - count:
        raise StudioError(f"invalid seed {seed}: choose 0 to {MAX_SEED - count}")
    if store.read_only:
        raise StudioError(f"the database is read-only: {store.read_only_reason}")
    cancel = cancel or CancelToken()
    torch_device = select_device(device)
    loaded = load_model(model_folder(store, model), torch_device, with_optimizers=False)
    family = loaded.family
    family.train_mode(False)
    chosen = family.sampling_options(options or {})
    with store.sessions() as session:
        model_id = session.scalar(select(Model.id).where(Model.name == model))
    repository = GalleryRepository(store)
    folder = gallery_folder(store, model)
    seeds = list(range(seed, seed + count))
    items: list[dict[str, Any]] = []
    started = time.monotonic()
    yield Progress("generating", 0, count, f"{model}: {count} image(s) on {torch_device.type}")
    for part in iterate_batches(count, batch_size):
        cancel.check()
        images = family.sample(seeds[part], chosen)
        rows: list[dict[str, Any]] = []
        paths: list[Path] = []
        for image_seed, image in zip(seeds[part], images, strict=True):
            metadata = {
                "studio_version": __version__, "operation": "sample", "model": model, "family": family.name,
                "weights_hash": loaded.config.get("weights_hash"), "seed": image_seed, "params": chosen,
                "backend": backend, "provider": torch_device.type, "steps_trained": loaded.state.step,
            }
            path = folder / f"{model}-{image_seed}-{uuid.uuid4().hex[:8]}.png"
            write_png(path, image, metadata)
            paths.append(path)
            rows.append({
                "path": store.home.relative(path), "model_name": model, "family": family.name,
                "width": image.shape[1], "height": image.shape[0], "model_id": model_id, "seed": image_seed,
                "operation": "sample", "params": chosen, "backend": backend, "provider": torch_device.type,
            })
        # One transaction per batch, after its files exist.
        for path, entry in zip(paths, repository.add_many(rows), strict=True):
            items.append({"id": entry.id, "path": str(path), "seed": entry.seed})
        yield Progress("generating", len(items), count, f"{len(items)}/{count} images")
    yield Finished(GenerateResult(items, time.monotonic() - started, backend, torch_device.type, chosen))
