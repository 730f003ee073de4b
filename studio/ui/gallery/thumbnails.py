"""Thumbnails of gallery items: where an item's image is, a byte-bounded LRU of decoded thumbnails, and a loader
that makes and decodes them off the GUI thread, newest request first.

Thumbnails are read into QImages (safe off the GUI thread, unlike QPixmap) through `NewestFirstReads`, so after
a fast scroll the cells on screen load first and the ones scrolled past are simply asked for again if they
come back.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal
from PySide6.QtGui import QImage

from studio.engine.thumbnails import ensure_thumbnail
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryEntry, GalleryRepository
from studio.ui.gallery.painting import fit_thumbnail
from studio.ui.gallery.reads import NewestFirstReads


def load_image(path: Path) -> tuple[QImage | None, str | None]:
    """The image at `path`, or None and a readable reason (missing, unreadable)."""
    if not path.is_file():
        return None, f"its file is missing ({path.name}): run `studio gallery check`"
    image = QImage(str(path))
    if image.isNull():
        return None, f"its file cannot be read ({path.name} is damaged or not an image)"
    return image, None


def image_path(store: Store, entry: GalleryEntry) -> Path:
    """Where an item's file is now: its gallery path, or trash/<id>-<name> once deleted."""
    if entry.deleted:
        return GalleryRepository(store).trash / f"{entry.id}-{Path(entry.path).name}"
    return store.home.absolute(entry.path)


class ThumbnailCache:
    """Decoded thumbnails by item id, least recently used first out, bounded by bytes."""

    def __init__(self, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._images: OrderedDict[int, QImage] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._images)

    def __contains__(self, key: int) -> bool:
        return key in self._images

    @property
    def bytes(self) -> int:
        """What the cached pixels take."""
        return self._bytes

    def get(self, key: int) -> QImage | None:
        """The image, marked as just used; None when not cached."""
        image = self._images.get(key)
        if image is not None:
            self._images.move_to_end(key)
        return image

    def put(self, key: int, image: QImage) -> None:
        """Keep an image, dropping the least recently used ones beyond the budget."""
        old = self._images.pop(key, None)
        if old is not None:
            self._bytes -= old.sizeInBytes()
        self._images[key] = image
        self._bytes += image.sizeInBytes()
        while self._bytes > self.max_bytes and len(self._images) > 1:
            _, dropped = self._images.popitem(last=False)
            self._bytes -= dropped.sizeInBytes()

    def clear(self) -> None:
        """Forget every image."""
        self._images.clear()
        self._bytes = 0


def read_thumbnail(store: Store, entry: GalleryEntry) -> QImage:
    """Make (if need be) and decode an item's thumbnail, fitted to the grid's square. Safe off the GUI thread:
    only QImage and files here, never a widget or a QPixmap."""
    try:
        path = ensure_thumbnail(store, entry)
        image = QImage(str(path))
        if image.isNull():
            raise StudioError(f"gallery item {entry.id}: its thumbnail cannot be read")
        # Premultiplied ARGB is what the raster painter draws fastest.
        return fit_thumbnail(image).convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    except StudioError:
        raise
    except Exception as error:
        raise StudioError(f"gallery item {entry.id}: {type(error).__name__}: {error}") from error


class ThumbnailLoader(QObject):
    """Makes and decodes thumbnails in a private thread pool; results arrive in the GUI thread.

    Requests are served newest first and the backlog is bounded, so after a fast scroll the cells on
    screen load first and the ones scrolled past are simply asked for again if they come back.
    """

    loaded = Signal(int)  # item id: its image is in `cache`
    failed = Signal(int, str)  # item id, a readable reason

    MAX_PENDING = 400
    MAX_FAILURES = 20_000

    def __init__(self, store: Store, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.cache = ThumbnailCache()
        self.failures: OrderedDict[int, str] = OrderedDict()
        # A private pool: thumbnails must never queue behind the page's id lists and facet counts.
        self.pool = QThreadPool(self)
        self.pool.setObjectName("thumbnail-loader")
        self.pool.setMaxThreadCount(max(1, threads))
        self._reads: NewestFirstReads[int, GalleryEntry, QImage] = NewestFirstReads(
            self,
            self.pool,
            lambda _item_id, entry: read_thumbnail(self.store, entry),
            self._on_loaded,
            self._on_failed,
            limit=self.MAX_PENDING,
        )
        self._closed = False
        self.requested = 0  # for tests and figures: how many thumbnails were asked for

    def request(self, entry: GalleryEntry, path: Path | None = None) -> None:
        """Load `entry`'s thumbnail (from `path` when its file is elsewhere, as in the trash)."""
        if self._closed or entry.id in self.cache or entry.id in self.failures:
            return
        if path is not None:
            entry = dataclasses.replace(entry, path=self.store.home.relative(path))
        if self._reads.ask(entry.id, entry):
            self.requested += 1

    def _on_loaded(self, item_id: int, _entry: GalleryEntry, image: QImage) -> None:
        self.cache.put(item_id, image)
        self.loaded.emit(item_id)

    def _on_failed(self, item_id: int, _entry: GalleryEntry, error: Exception) -> None:
        reason = str(error)
        self.failures[item_id] = reason
        while len(self.failures) > self.MAX_FAILURES:
            self.failures.popitem(last=False)
        self.failed.emit(item_id, reason)

    def forget_failures(self) -> None:
        """Try failed thumbnails again next time they are shown (files may have come back)."""
        self.failures.clear()

    def cancel_pending(self) -> None:
        """Drop the requests not yet started (the view moved on)."""
        self._reads.clear()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop taking requests and wait for the pool: no thread outlives the page."""
        self._closed = True
        self._reads.close()
        return bool(self.pool.waitForDone(timeout_ms))
