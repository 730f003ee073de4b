"""An interpolation's frames as one animated image: a GIF or an APNG (Pillow writes both).

The frames are gallery items; one frame's id stands for its whole interpolation (its siblings are found by
their recorded frame numbers), several ids are used in the order given. The file goes where the user chose,
never inside the data home, written to a hidden partial file beside it, fsynced, then renamed into place.
MP4 is left out on purpose: it needs an ffmpeg binary, which Studio does not bundle.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from studio.engine.jobs import CancelToken, Finished, Job, Progress
from studio.engine.untrusted.png import PILLOW_ERRORS
from studio.errors import StudioError
from studio.files import atomic_file
from studio.limits import ANIMATION_FPS, ANIMATION_SCALE
from studio.store.database import Store
from studio.store.gallery import GalleryEntry, GalleryFilter, GalleryRepository

# Suffix -> Pillow format; .png is written as an animated PNG (APNG), which browsers play.
FORMATS = {".gif": "GIF", ".png": "PNG", ".apng": "PNG"}
MIN_FPS, MAX_FPS = ANIMATION_FPS.low, ANIMATION_FPS.high
MIN_SCALE, MAX_SCALE = ANIMATION_SCALE.low, ANIMATION_SCALE.high
MAX_ANIMATION_FRAMES = 1_000
# How many of a model's interpolation frames, per frame of the interpolation, are looked at on each side
# of an item for its siblings (other writers' frames may sit between them).
SIBLING_REACH = 4
AUTO_SIDE = 256  # without a scale, small frames are enlarged by whole times up to about this many pixels


@dataclass(frozen=True)
class AnimationResult:
    """Where an animation went, and what it holds."""

    destination: str
    format: str
    frames: int
    fps: int
    width: int
    height: int
    ids: list[int]

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio gallery animate --json`)."""
        return dict(self.__dict__)


def _frame_number(entry: GalleryEntry, key: str) -> int | None:
    value = entry.params.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def interpolation_frames(store: Store, item_id: int) -> list[GalleryEntry]:
    """Every live frame of the interpolation `item_id` belongs to, first to last.

    The frames of one interpolation are stored in one transaction, in frame order, so their ids rise with
    their frame numbers; on a shared PostgreSQL gallery another writer's rows may take ids in between.
    So each earlier (later) frame is the nearest item below (above) the one before it that matches: the
    same model, ends and frame count, and that frame number.
    """
    repository = GalleryRepository(store)
    entry = repository.get(item_id)
    frame, frames = _frame_number(entry, "frame"), _frame_number(entry, "frames")
    if entry.operation != "interpolate" or frame is None or frames is None or not 0 <= frame < frames:
        raise StudioError(f"gallery item {item_id} is not an interpolation frame: give the ids of the frames")
    # The model's live interpolation frames around the item: the siblings, and whatever a concurrent
    # interpolation by the same model slipped between them (a few times as many at most).
    # Frames in the trash count too, as place-holders (left out at the end): without them the walk would
    # skip a trashed frame and reach for an earlier interpolation between the same ends.
    wanted = [GalleryFilter(model=entry.model, operation="interpolate", trash=trash) for trash in (False, True)]
    same_model = sorted(item for filters in wanted for item in repository.ids(filters))
    at = bisect.bisect_left(same_model, item_id)
    reach = SIBLING_REACH * frames
    nearby = same_model[max(0, at - reach) : at] + same_model[at + 1 : at + 1 + reach]

    def sibling(other: GalleryEntry) -> bool:
        return (
            other.operation == "interpolate"
            and other.model == entry.model
            and _frame_number(other, "frames") == frames
            and all(other.params.get(key) == entry.params.get(key) for key in ("from", "to"))
        )

    by_frame: dict[int, list[GalleryEntry]] = {}
    for other in repository.entries(nearby):
        number = _frame_number(other, "frame")
        if number is not None and sibling(other):
            by_frame.setdefault(number, []).append(other)
    chosen = [entry]
    for number in range(frame - 1, -1, -1):  # walking down from the item: the nearest below the last found
        below = [o for o in by_frame.get(number, []) if o.id < chosen[0].id]
        if below:
            chosen.insert(0, max(below, key=lambda o: o.id))
    for number in range(frame + 1, frames):  # and up
        above = [o for o in by_frame.get(number, []) if o.id > chosen[-1].id]
        if above:
            chosen.append(min(above, key=lambda o: o.id))
    return [other for other in chosen if not other.deleted or other.id == item_id]


def check_destination(store: Store, destination: str | Path, overwrite: bool = False) -> tuple[Path, str]:
    """The destination as an absolute path and its Pillow format, or a StudioError saying why not."""
    path = Path(os.path.abspath(Path(destination).expanduser()))
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise StudioError(f"{path.name}: choose a .gif or .png (animated PNG) file name")
    home = store.home.root.resolve()
    resolved = path.resolve()
    if resolved == home or home in resolved.parents:
        raise StudioError(f"{path} is inside the data home: save the animation outside {store.home.root}")
    if not path.parent.is_dir():
        raise StudioError(f"{path.parent} is not a folder")
    if path.is_dir():
        raise StudioError(f"{path} is a folder: give a file name")
    if path.exists() and not overwrite:
        raise StudioError(f"{path} already exists: choose a new name (nothing is overwritten)")
    if not os.access(path.parent, os.W_OK):
        raise StudioError(f"{path.parent} is not writable")
    return path, FORMATS[suffix]


def animate(
    store: Store,
    ids: Sequence[int],
    destination: str | Path,
    fps: int = 8,
    bounce: bool = False,
    scale: int | None = None,
    overwrite: bool = False,
    cancel: CancelToken | None = None,
) -> Job:
    """Write the frames (one id: its whole interpolation; several: in that order) as an animated GIF or PNG.

    `bounce` plays them forwards then backwards; `scale` enlarges each frame (nearest pixel, crisp; None: small
    frames to about AUTO_SIDE pixels)."""
    cancel = cancel or CancelToken()
    if not MIN_FPS <= fps <= MAX_FPS:
        raise StudioError(f"invalid frame rate {fps}: choose {MIN_FPS} to {MAX_FPS} frames per second")
    if scale is not None and not MIN_SCALE <= scale <= MAX_SCALE:
        raise StudioError(f"invalid scale {scale}: choose {MIN_SCALE} to {MAX_SCALE}")
    path, image_format = check_destination(store, destination, overwrite)
    wanted = [int(i) for i in ids]
    if not wanted:
        raise StudioError("no gallery items given")
    if len(wanted) > MAX_ANIMATION_FRAMES:
        raise StudioError(f"{len(wanted)} frames: at most {MAX_ANIMATION_FRAMES}")
    entries = interpolation_frames(store, wanted[0]) if len(wanted) == 1 else _entries(store, wanted)
    if len(entries) < 2:
        raise StudioError("an animation needs two frames or more: give more ids, or one frame of an interpolation")
    if scale is None:
        side = max(max(entry.width, entry.height) for entry in entries)
        scale = max(MIN_SCALE, min(MAX_SCALE, AUTO_SIDE // max(1, side)))
    images = []
    for index, entry in enumerate(entries):
        cancel.check()
        images.append(_frame(store, entry, scale))
        yield Progress("animating", index + 1, len(entries), f"frame {index + 1}/{len(entries)}")
    sizes = {image.size for image in images}
    if len(sizes) > 1:
        raise StudioError(f"the frames differ in size ({', '.join(f'{w}x{h}' for w, h in sorted(sizes))})")
    played = images + images[-2:0:-1] if bounce else images
    cancel.check()
    _write(path, image_format, played, round(1000 / fps))
    width, height = images[0].size
    yield Finished(AnimationResult(str(path), image_format, len(played), fps, width, height, [e.id for e in entries]))


def _entries(store: Store, ids: list[int]) -> list[GalleryEntry]:
    found = {entry.id: entry for entry in GalleryRepository(store).entries(ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise StudioError(f"no gallery item {missing[0]}")
    trashed = [i for i in ids if found[i].deleted]
    if trashed:
        raise StudioError(f"gallery item {trashed[0]} is in the trash: undelete it first")
    return [found[i] for i in ids]


def _frame(store: Store, entry: GalleryEntry, scale: int) -> Image.Image:
    source = store.home.absolute(entry.path)
    try:
        with Image.open(source) as opened:
            image = opened.convert("L" if opened.mode in ("L", "LA", "I", "I;16", "1") else "RGB")
    except FileNotFoundError:
        raise StudioError(f"gallery item {entry.id}: its image {entry.path} is missing") from None
    except PILLOW_ERRORS:
        raise StudioError(f"gallery item {entry.id}: its image {entry.path} cannot be read") from None
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    return image


def _write(path: Path, image_format: str, frames: list[Image.Image], duration_ms: int) -> None:
    """All frames into one file, atomically (a partial file beside it, fsync, rename)."""
    options: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "duration": duration_ms, "loop": 0}
    if image_format == "GIF":
        options["disposal"] = 2  # each frame replaces the last (no smearing of an earlier frame)
    with atomic_file(path) as handle:
        frames[0].save(handle, format=image_format, **options)
