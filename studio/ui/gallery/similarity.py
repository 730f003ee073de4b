"""The gallery's encoder reads, off the GUI thread: more like this, the nearest training image, near-duplicate
groups, and embedding new items in the background.

Every read here may embed the items still missing a vector first (the engine's queries do), so they all run
in one private thread: two reads never embed the same items at once, and none of them waits in the engine
thread behind a generation (nor a generation behind them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QImage

from studio.engine.datasets.storage import load_images
from studio.engine.embedding.queries import (
    DuplicateGroup,
    datasets_with_encoders,
    embed_job,
    nearest_training,
    search_duplicates,
)
from studio.engine.embedding.queries import similar as similar_items
from studio.engine.jobs import CancelToken, run_job
from studio.errors import CancelledError, StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryEntry, GalleryFilter, GalleryRepository
from studio.ui.gallery.thumbnails import image_path, load_image
from studio.ui.operations import QueryHandle, QueryOp
from studio.ui.widgets import image_to_qimage

SIMILAR_COUNT = 24  # "more like this" shows this many neighbours: two or three rows of the grid
MAX_GROUPS_SHOWN = 100  # duplicate groups drawn in the dialog; "keep the best" still handles every group


@dataclass(frozen=True)
class NearestTraining:
    """An item's nearest training image (`nearest_training`'s answer) and the two images to show."""

    item_id: int
    found: dict[str, Any]
    training_image: QImage | None  # None when the dataset's images cannot be read


@dataclass(frozen=True)
class DuplicateFindings:
    """Near-duplicate groups among the filtered items, with the entries and thumbnails of those shown."""

    groups: list[DuplicateGroup]
    entries: dict[int, GalleryEntry] = field(default_factory=dict)
    thumbnails: dict[int, QImage] = field(default_factory=dict)
    left_out: int = 0  # items not compared: their model's dataset has no encoder (or they have no dataset)
    left_out_reason: str = ""  # the engine's one line about the first of them

    @property
    def rejected(self) -> list[int]:
        """What "keep the best, reject the rest" rejects: every item of a group but its kept one
        (`reject_duplicates`'s rule, applied through the page's undo stack instead)."""
        return sorted({i for group in self.groups for i in group.ids if i != group.keep})


def read_nearest(store: Store, item_id: int) -> NearestTraining:
    """Off the GUI thread: the item's nearest training image and its pixels (may embed pending items first)."""
    found = nearest_training(store, item_id)
    try:
        pixels = np.asarray(load_images(store, str(found["dataset"]))[int(found["position"])])
        image: QImage | None = image_to_qimage(pixels[..., :3] if pixels.shape[-1] == 4 else pixels)
    except (StudioError, IndexError):
        image = None  # the distance and the flag are still worth showing without the picture
    return NearestTraining(item_id, found, image)


def read_duplicates(store: Store, filters: GalleryFilter) -> DuplicateFindings:
    """Off the GUI thread: the groups, and the entries and images of the first groups (QImage only).

    Items the engine cannot compare (imported, or of a dataset without an encoder) are counted as left out.
    """
    search = search_duplicates(store, filters)
    groups = search.groups
    shown = [i for group in groups[:MAX_GROUPS_SHOWN] for i in group.ids]
    entries = {entry.id: entry for entry in GalleryRepository(store).entries(shown)}
    thumbnails: dict[int, QImage] = {}
    for item_id, entry in entries.items():
        # The file itself, not the grid's 128 px thumbnail: small images then scale by whole pixels, crisp.
        image, _reason = load_image(image_path(store, entry))
        if image is not None:
            thumbnails[item_id] = image  # else the dialog says "no image"
    return DuplicateFindings(groups, entries, thumbnails, search.left_out, search.left_out_reason)


def embed_everything(store: Store, token: CancelToken) -> int:
    """Off the GUI thread: embed the items still missing a vector, for every dataset with an encoder."""
    count = 0
    for dataset in datasets_with_encoders(store):
        try:
            count += int(run_job(embed_job(store, dataset, token)) or 0)
        except CancelledError:
            break
    return count


class SimilarityReads(QObject):
    """Runs the gallery's encoder reads one at a time in a private thread; answers arrive in the GUI thread.

    Embedding new items is coalesced: asked while a round runs, one more round follows it, however often
    it was asked.
    """

    embedded = Signal(int)  # items given a vector by a background round (only sent when some were)

    def __init__(self, store: Store, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        # One thread: reads that embed pending items must not race each other over the same items.
        self.pool = QThreadPool(self)
        self.pool.setObjectName("gallery-similarity")
        self.pool.setMaxThreadCount(1)
        self._token = CancelToken()
        self._embedding = False
        self._embed_again = False
        self._closed = False
        self._nearest: QueryHandle | None = None
        self.rounds = 0  # for tests: background embedding rounds run

    def _read(self, work: Callable[[], Any]) -> QueryOp[Any]:
        return QueryOp(self, work, pool=self.pool)

    def similar(self, item_id: int, done: Callable[[list[int]], None], failed: Callable[[str], None]) -> None:
        """The ids of the items most like `item_id`, nearest first."""
        if self._closed:
            return
        store = self.store
        (
            self._read(lambda: [int(hit["id"]) for hit in similar_items(store, item_id, SIMILAR_COUNT)])
            .latest_only("similar")
            .success(done)
            .failure(failed)
            .priority(2)
            .run_in_background()
        )

    def nearest(self, item_id: int, done: Callable[[NearestTraining], None], failed: Callable[[str], None]) -> None:
        """The item's nearest training image; only the newest request is answered (the selection moves on)."""
        if self._closed:
            return
        store = self.store
        self._nearest = (
            self._read(lambda: read_nearest(store, item_id))
            .latest_only("nearest")
            .success(done)
            .failure(failed)
            .priority(1)
            .run_in_background()
        )

    def forget_nearest(self) -> None:
        """Drop the nearest-image answer on its way (the pane shows another item, or none)."""
        if self._nearest is not None:
            self._nearest.cancel()

    def duplicates(
        self, filters: GalleryFilter, done: Callable[[DuplicateFindings], None], failed: Callable[[str], None]
    ) -> None:
        """Near-duplicate groups among the items `filters` select."""
        if self._closed:
            return
        store = self.store
        (
            self._read(lambda: read_duplicates(store, filters))
            .latest_only("duplicates")
            .success(done)
            .failure(failed)
            .priority(2)
            .run_in_background()
        )

    def embed_in_background(self) -> None:
        """Give new items their vectors (after a generation); coalesced: one round runs, one more may wait."""
        if self._closed:
            return
        if self._embedding:
            self._embed_again = True
            return
        self._embedding = True
        self._embed_again = False
        self.rounds += 1
        store, token = self.store, self._token
        # Lowest priority: a click on "more like this" goes first (it embeds what it needs itself).
        (
            self._read(lambda: embed_everything(store, token))
            .success(self._embedded)
            .failure(self._embed_failed)
            .ended(self._embed_ended)
            .run_in_background()
        )

    @property
    def embedding(self) -> bool:
        """A background round is running or queued."""
        return self._embedding

    def _embedded(self, count: int) -> None:
        if count:
            self.embedded.emit(count)

    @staticmethod
    def _embed_failed(reason: str) -> None:
        # Nothing is lost: the next round, or the next query, embeds these items again. Not worth a dialog.
        print(f"studio: background embedding stopped: {reason}", file=sys.stderr)

    def _embed_ended(self) -> None:
        self._embedding = False
        if self._embed_again and not self._closed:
            self.embed_in_background()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop a background round at its next batch, drop the answers on their way, and wait for the thread."""
        self._closed = True
        self._token.cancel()
        self.forget_nearest()
        self.pool.clear()  # reads not started yet never start: their answers would be dropped anyway
        return bool(self.pool.waitForDone(timeout_ms))
