"""A virtualised thumbnail grid over the gallery: a fixed-size model, a background thumbnail loader with an
LRU cache, a delegate that paints stars and flags, and a view that turns Lightroom's keys into signals.

The model knows every matching id from the start (`GalleryRepository.ids`, read off the GUI thread: ~90 ms
at 100,000 rows) and resets once per query, so the view lays the grid out once and row 99,999 is one jump
away. Entries are read 200 at a time (`GalleryRepository.entries`, ~5-10 ms) when their rows are first
painted and kept in a bounded LRU of blocks. Thumbnails are read off the GUI thread into QImages (safe there,
unlike QPixmap) by a small pool that serves the most recent request first, so the rows on screen load first.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QTimerEvent,
    Signal,
)
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
    QRegion,
    QWheelEvent,
)
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from studio.engine.thumbnails import THUMBNAIL_SIZE, ensure_thumbnail
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryEntry, GalleryFilter, GalleryRepository

BLOCK_SIZE = 200  # entries per read: a screen or two of cells, one ~5-10 ms `GalleryRepository.entries` call
MAX_BLOCKS = 50  # blocks kept: at most 10,000 entries (a few MB) however many rows the gallery has
MAX_PENDING_BLOCKS = 8  # block reads waiting for a worker; older ones (scrolled past) are asked again if seen again
PREFETCH_BLOCKS = 4  # blocks read with a query's ids, so the first paint after a reload shows real cells
INLINE_FETCH_BUDGET = 0.015  # seconds: blocks read faster than this (on average) are read while painting
CELL = QSize(THUMBNAIL_SIZE + 12, THUMBNAIL_SIZE + 30)  # thumbnail, margins, and the stars row under it

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's GalleryEntry
THUMBNAIL_ROLE = Qt.ItemDataRole.UserRole + 2  # its QImage, or None while loading or when it failed
STATE_ROLE = Qt.ItemDataRole.UserRole + 3  # "ready", "loading" or "missing"
FAILURE_ROLE = Qt.ItemDataRole.UserRole + 4  # why the thumbnail could not be made (or None)

STAR_GOLD = QColor(245, 181, 20)
PICK_GREEN = QColor(46, 160, 67)
REJECT_RED = QColor(210, 55, 50)


# --- images -------------------------------------------------------------------------------------


def scale_crisp(image: QImage, box: int) -> QPixmap:
    """A pixmap of `image` fitting a `box` square: whole-pixel nearest upscaling, smooth downscaling."""
    if image.isNull():
        return QPixmap()
    width, height = image.width(), image.height()
    factor = box // max(width, height)
    if factor >= 1:
        scaled = image.scaled(width * factor, height * factor, Qt.AspectRatioMode.IgnoreAspectRatio,
                              Qt.TransformationMode.FastTransformation)
    else:
        scaled = image.scaled(box, box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return QPixmap.fromImage(scaled)


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


# --- thumbnail loading --------------------------------------------------------------------------


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


class _LoaderSignals(QObject):
    """Lives in the GUI thread; workers emit through it, so the slots run queued in the GUI thread."""

    loaded = Signal(int, QImage)
    failed = Signal(int, str)


class _ThumbnailTask(QRunnable):
    """Takes the newest pending request off the loader's stack until none is left."""

    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        """In a pool thread: only QImage and files here, never a widget or a QPixmap."""
        loader = self.loader
        while True:
            request = loader._next_request()
            if request is None:
                return
            item_id, entry = request
            try:
                path = ensure_thumbnail(loader.store, entry)
                image = QImage(str(path))
                if image.isNull():
                    raise StudioError(f"gallery item {item_id}: its thumbnail cannot be read")
                # Premultiplied ARGB is what the raster painter draws fastest.
                image = fit_thumbnail(image).convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
            except StudioError as error:
                loader._done(item_id)
                loader.signals.failed.emit(item_id, str(error))
                continue
            except Exception as error:  # noqa: BLE001 - one bad file must not kill the pool thread
                loader._done(item_id)
                loader.signals.failed.emit(item_id, f"gallery item {item_id}: {type(error).__name__}: {error}")
                continue
            loader._done(item_id)
            loader.signals.loaded.emit(item_id, image)


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
        self.signals = _LoaderSignals(self)
        self.signals.loaded.connect(self._on_loaded)
        self.signals.failed.connect(self._on_failed)
        self.pool = QThreadPool(self)
        self.pool.setObjectName("thumbnail-loader")
        self.pool.setMaxThreadCount(max(1, threads))
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, GalleryEntry] = OrderedDict()
        self._running: set[int] = set()
        self._workers = 0
        self._closed = False
        self.requested = 0  # for tests and figures: how many thumbnails were asked for

    def request(self, entry: GalleryEntry, path: Path | None = None) -> None:
        """Load `entry`'s thumbnail (from `path` when its file is elsewhere, as in the trash)."""
        if self._closed or entry.id in self.cache or entry.id in self.failures:
            return
        if path is not None:
            entry = dataclasses.replace(entry, path=self.store.home.relative(path))
        start_worker = False
        with self._lock:
            if entry.id in self._running:
                return
            if entry.id in self._pending:
                self._pending.move_to_end(entry.id)
                return
            self._pending[entry.id] = entry
            self.requested += 1
            while len(self._pending) > self.MAX_PENDING:
                self._pending.popitem(last=False)  # scrolled past long ago: asked again if shown again
            if self._workers < self.pool.maxThreadCount():
                self._workers += 1
                start_worker = True
        if start_worker:
            self.pool.start(_ThumbnailTask(self))

    def _next_request(self) -> tuple[int, GalleryEntry] | None:
        with self._lock:
            if self._closed or not self._pending:
                self._workers -= 1
                return None
            item_id, entry = self._pending.popitem(last=True)
            self._running.add(item_id)
            return item_id, entry

    def _done(self, item_id: int) -> None:
        with self._lock:
            self._running.discard(item_id)

    def _on_loaded(self, item_id: int, image: QImage) -> None:
        self.cache.put(item_id, image)
        self.loaded.emit(item_id)

    def _on_failed(self, item_id: int, reason: str) -> None:
        self.failures[item_id] = reason
        while len(self.failures) > self.MAX_FAILURES:
            self.failures.popitem(last=False)
        self.failed.emit(item_id, reason)

    def forget_failures(self) -> None:
        """Try failed thumbnails again next time they are shown (files may have come back)."""
        self.failures.clear()

    @property
    def busy(self) -> bool:
        """Whether requests are waiting or being served."""
        with self._lock:
            return bool(self._pending or self._running or self._workers)

    def cancel_pending(self) -> None:
        """Drop the requests not yet started (the view moved on)."""
        with self._lock:
            self._pending.clear()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop taking requests and wait for the pool: no thread outlives the page."""
        with self._lock:
            self._closed = True
            self._pending.clear()
        return bool(self.pool.waitForDone(timeout_ms))


# --- the model ----------------------------------------------------------------------------------


def _error_text(error: BaseException) -> str:
    """A StudioError's own words; anything else (a database error) with its type, to be reported."""
    return str(error) if isinstance(error, StudioError) else f"{type(error).__name__}: {error}"


def _sorted_index(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows by ascending id, the ids ascending): id to row is then a binary search, not a million-key dict."""
    order = np.argsort(ids, kind="stable")
    return order, ids[order]


def _rows_in(index: tuple[np.ndarray, np.ndarray], ids: Iterable[int]) -> np.ndarray:
    """The rows of those ids that are in the index, in the order given."""
    order, ascending = index
    wanted = np.asarray(ids if isinstance(ids, list | tuple | np.ndarray) else list(ids), dtype=np.int64)
    if not wanted.size or not ascending.size:
        return np.empty(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(ascending, wanted), ascending.size - 1)
    return order[at[ascending[at] == wanted]]


@dataclass(frozen=True)
class QueryResult:
    """A query read off the GUI thread: every matching id in order, its lookup index, and the first blocks."""

    filters: GalleryFilter
    sort: str
    ids: np.ndarray
    index: tuple[np.ndarray, np.ndarray]
    blocks: list[tuple[list[int], list[GalleryEntry]]]
    version: int  # the model's edit count when asked: blocks read before a later edit are not used
    seconds: float


class _QuerySignals(QObject):
    """Lives in the GUI thread: query tasks emit through it, so results arrive queued in the GUI thread."""

    ready = Signal(int, object)  # generation, QueryResult
    failed = Signal(int, str)  # generation, reason

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.latest = 0  # the newest generation asked for; read by tasks to skip queries already superseded


class _QueryTask(QRunnable):
    """Reads a query's ordered ids (~90 ms at 100,000 rows, ~1 s at 1,000,000) and the blocks to show first."""

    def __init__(self, repository: GalleryRepository, filters: GalleryFilter, sort: str, near: tuple[int, ...],
                 block_size: int, generation: int, version: int, signals: _QuerySignals) -> None:
        super().__init__()
        self.repository, self.filters, self.sort, self.near = repository, filters, sort, near
        self.block_size, self.generation, self.version, self.signals = block_size, generation, version, signals

    def run(self) -> None:
        """In a pool thread: database reads and numpy only."""
        if self.generation != self.signals.latest:
            return  # a newer query was asked for while this one waited: its result would be dropped anyway
        started = time.perf_counter()
        try:
            ids = np.array(self.repository.ids(self.filters, self.sort), dtype=np.int64)
            index = _sorted_index(ids)
        except Exception as error:  # noqa: BLE001 - reported in the GUI thread; a pool thread must not die
            self.signals.failed.emit(self.generation, _error_text(error))
            return
        size = self.block_size
        wanted = [0]
        if self.near:
            # The block of each row the view returns to, and the next one: a screen can straddle two.
            rows = _rows_in(index, self.near)
            wanted = list(dict.fromkeys(b for row in rows.tolist() for b in (row // size, row // size + 1))) or [0]
        blocks = []
        try:
            for block in wanted[:PREFETCH_BLOCKS]:
                block_ids = ids[block * size:(block + 1) * size].tolist()
                if block_ids:
                    blocks.append((block_ids, self.repository.entries(block_ids)))
        except Exception:  # noqa: BLE001 - only a head start: painting reads these blocks again, and says why
            blocks = []
        self.signals.ready.emit(self.generation, QueryResult(self.filters, self.sort, ids, index, blocks, self.version,
                                                             time.perf_counter() - started))


@dataclass(frozen=True)
class _BlockRequest:
    """A block of rows to read, and the model state it was asked in (to drop answers that came too late)."""

    generation: int  # which query's rows
    epoch: int  # which numbering of them (a removal renumbers rows)
    version: int  # how many edits had been made
    block: int
    ids: list[int]


class _BlockSignals(QObject):
    """Lives in the GUI thread; block workers emit through it."""

    ready = Signal(object, object, float)  # _BlockRequest, list[GalleryEntry], seconds
    failed = Signal(object, str)


class _BlockTask(QRunnable):
    """Reads the newest pending block request until none is left (the rows on screen now come first)."""

    def __init__(self, model: GalleryModel) -> None:
        super().__init__()
        self.model = model

    def run(self) -> None:
        """In a pool thread: database reads only."""
        model = self.model
        while True:
            request = model._next_block_request()
            if request is None:
                return
            started = time.perf_counter()
            try:
                entries = model.repository.entries(request.ids)
            except Exception as error:  # noqa: BLE001 - reported in the GUI thread
                model._block_signals.failed.emit(request, _error_text(error))
                continue
            model._block_signals.ready.emit(request, entries, time.perf_counter() - started)


class GalleryModel(QAbstractListModel):
    """Every gallery item matching a filter, in a sort order: a fixed row count, entries read in blocks.

    `set_query` reads the whole ordered id list off the GUI thread and resets the model once (one layout,
    never an insert per page). A row's entry is read with its block of `block_size` neighbours on first sight
    and kept in a bounded LRU of blocks; a row not read yet shows a placeholder until its block arrives.
    """

    fetchFailed = Signal(str)  # noqa: N815 - Qt naming: an entry block could not be read (the database went away...)
    queryFailed = Signal(str)  # noqa: N815 - the id list of a query could not be read; the old rows stay
    queryLoaded = Signal()  # noqa: N815 - a query's rows replaced the old ones (after the reset)
    thumbnailFailed = Signal(int, str)  # noqa: N815 - item id, reason

    def __init__(self, store: Store, loader: ThumbnailLoader, pool: QThreadPool | None = None,
                 block_size: int = BLOCK_SIZE, max_blocks: int = MAX_BLOCKS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.repository = GalleryRepository(store)
        self.loader = loader
        self.block_size = block_size
        self.max_blocks = max_blocks
        # Blocks slower than this (a slow disk, a huge database, a busy machine) are read off the GUI thread.
        self.inline_budget = INLINE_FETCH_BUDGET
        self.filters = GalleryFilter()  # of the rows shown (a query on its way changes them when it arrives)
        self.sort = "newest"
        self.block_seconds: deque[float] = deque(maxlen=256)  # for figures: how long each block read took
        self.blocks_fetched = 0
        self.stale_dropped = 0  # for tests: query results that arrived after a newer query was asked for
        self._recent: deque[float] = deque(maxlen=8)
        self._ids = np.empty(0, dtype=np.int64)
        self._index: tuple[np.ndarray, np.ndarray] | None = _sorted_index(self._ids)
        # The LRU: blocks by serial, least recently used first; every cached id points at its block.
        self._blocks: OrderedDict[int, dict[int, GalleryEntry | None]] = OrderedDict()
        self._home: dict[int, int] = {}
        self._serial = 0
        self._generation = 0  # of the query shown
        self._asked = 0  # of the query asked for last
        self._loading = False
        self._epoch = 0
        self._version = 0
        self._query: tuple[GalleryFilter, str, tuple[int, ...]] | None = None
        self._failed = False
        self._closed = False
        self._requested: set[int] = set()  # blocks asked for in this epoch and not answered yet
        self._lock = threading.Lock()
        self._pending: OrderedDict[int, _BlockRequest] = OrderedDict()
        self._workers = 0
        self._own_pool = pool is None
        self.query_pool = pool if pool is not None else QThreadPool(self)
        self.block_pool = QThreadPool(self)
        self.block_pool.setObjectName("gallery-blocks")
        self.block_pool.setMaxThreadCount(1)
        self._query_signals = _QuerySignals(self)
        self._query_signals.ready.connect(self._query_ready)
        self._query_signals.failed.connect(self._query_failed)
        self._block_signals = _BlockSignals(self)
        self._block_signals.ready.connect(self._block_ready)
        self._block_signals.failed.connect(self._block_failed)
        loader.loaded.connect(self._thumbnail_changed)
        loader.failed.connect(self._thumbnail_failed)

    # --- querying ---------------------------------------------------------------------------

    def set_query(self, filters: GalleryFilter, sort: str, near: Iterable[int] = ()) -> None:
        """Read the ids of another filter or sort (or the same, reloaded) off the GUI thread; `queryLoaded`
        follows. The blocks of the `near` ids (where the view will return) come with them, ready to paint."""
        if self._closed:
            return
        self._query = (filters, sort, tuple(int(i) for i in near))
        self._asked += 1
        self._loading = True
        self._query_signals.latest = self._asked
        self.query_pool.start(_QueryTask(self.repository, filters, sort, self._query[2], self.block_size,
                                         self._asked, self._version, self._query_signals))

    @property
    def loading(self) -> bool:
        """A query was asked for and its rows have not arrived yet."""
        return self._loading

    def _query_ready(self, generation: int, result: QueryResult) -> None:
        if generation != self._asked or self._closed:
            self.stale_dropped += 1  # an older filter's answer, overtaken by a newer request
            return
        self.beginResetModel()
        self.filters, self.sort = result.filters, result.sort
        self._ids, self._index = result.ids, result.index
        self._generation = generation
        self._loading = False
        self._new_epoch()
        self._failed = False
        self._blocks.clear()
        self._home.clear()
        if result.version == self._version:
            for ids, entries in result.blocks:
                self._keep_block(ids, entries)
        self.loader.cancel_pending()
        self.endResetModel()
        self.queryLoaded.emit()

    def _query_failed(self, generation: int, reason: str) -> None:
        if generation != self._asked or self._closed:
            return
        self._loading = False  # the old rows stay, and so do their blocks
        self.queryFailed.emit(reason)

    # --- reading ----------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Every matching item: the rows exist from the start; their entries are read when shown."""
        return 0 if parent.isValid() else len(self._ids)

    def id_of(self, row: int) -> int:
        """The id on a row (known for every row, read or not)."""
        return int(self._ids[row])

    def ids(self) -> list[int]:
        """Every item's id, in order."""
        return self._ids.tolist()

    def ids_of_rows(self, rows: Iterable[int]) -> list[int]:
        """The ids on these rows, in the order given."""
        return self._ids[np.asarray(rows if isinstance(rows, list) else list(rows), dtype=np.int64)].tolist()

    def ids_in_spans(self, spans: Iterable[tuple[int, int]]) -> list[int]:
        """The ids on these (first, last) row spans, in order: a million selected rows in milliseconds."""
        parts = [self._ids[first:last + 1] for first, last in spans]
        return np.concatenate(parts).tolist() if parts else []

    def row_of(self, item_id: int) -> int | None:
        """The row an item is on, if it is in the grid."""
        rows = self.rows_of([item_id])
        return rows[0] if rows else None

    def rows_of(self, ids: Iterable[int]) -> list[int]:
        """The rows of those items that are in the grid, in the order given (vectorised: 100,000 ids are quick)."""
        if self._index is None:
            self._index = _sorted_index(self._ids)  # rebuilt after a removal renumbered the rows
        return _rows_in(self._index, ids).tolist()

    def entry(self, row: int) -> GalleryEntry | None:
        """The item on a row, read now with its block if need be; None if it left the store since the ids were read."""
        item_id = int(self._ids[row])
        entry, known = self._cached(item_id)
        if known:
            return entry
        first = row // self.block_size * self.block_size
        if not self._read_block(row // self.block_size):
            return None
        if first < len(self._ids):  # cells of that block may show placeholders: repaint them
            self.dataChanged.emit(self.index(first), self.index(min(len(self._ids), first + self.block_size) - 1))
        return self._cached(item_id)[0]

    def is_cached(self, row: int) -> bool:
        """Whether the row's entry is read (no fetch, no LRU touch: for tests and figures)."""
        return int(self._ids[row]) in self._home

    def entries_of(self, ids: Iterable[int]) -> dict[int, GalleryEntry]:
        """Entries by id, from the cache or read in chunks (not cached: a bulk edit must not flush the LRU)."""
        found: dict[int, GalleryEntry] = {}
        missing = []
        for item_id in ids:
            entry, known = self._cached(item_id)
            if entry is not None:
                found[item_id] = entry
            elif not known:
                missing.append(item_id)
        for start in range(0, len(missing), 2000):
            for entry in self.repository.entries(missing[start:start + 2000]):
                found[entry.id] = entry
        return found

    def cached_entries(self, ids: Iterable[int]) -> dict[int, GalleryEntry]:
        """The entries of those ids that are read already (nothing is fetched)."""
        found = {}
        for item_id in ids:
            block = self._home.get(item_id)
            entry = self._blocks[block].get(item_id) if block is not None else None
            if entry is not None:
                found[item_id] = entry
        return found

    @property
    def cached_blocks(self) -> int:
        """Entry blocks held (at most `max_blocks`)."""
        return len(self._blocks)

    @property
    def cached_count(self) -> int:
        """Entries held (at most `max_blocks * block_size`, however many rows there are)."""
        return len(self._home)

    @property
    def ids_nbytes(self) -> int:
        """What the id list and its lookup index take: 24 bytes a row."""
        index = self._index or (self._ids, self._ids)
        return int(self._ids.nbytes + index[0].nbytes + index[1].nbytes)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The entry, its thumbnail (asked for on first sight) and the texts views and screen readers use; a
        placeholder (entry None, state "loading") while the row's block is on its way."""
        if not index.isValid() or not 0 <= index.row() < len(self._ids):
            return None
        row = index.row()
        item_id = int(self._ids[row])
        entry, known = self._cached(item_id)
        if not known:
            entry, known = self._want(row, item_id)
        if entry is None:
            return self._placeholder_data(item_id, role, known, self._failed)
        if role == ENTRY_ROLE:
            return entry
        if role == THUMBNAIL_ROLE:
            image = self.loader.cache.get(entry.id)
            if image is None and entry.id not in self.loader.failures:
                self.loader.request(entry, image_path(self.store, entry) if entry.deleted else None)
            return image
        if role == STATE_ROLE:
            if entry.id in self.loader.cache:
                return "ready"
            return "missing" if entry.id in self.loader.failures else "loading"
        if role == FAILURE_ROLE:
            return self.loader.failures.get(entry.id)
        if role == Qt.ItemDataRole.DisplayRole:
            return f"#{entry.id}"
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return describe(entry, self.loader.failures.get(entry.id))
        return None

    @staticmethod
    def _placeholder_data(item_id: int, role: int, gone: bool, failed: bool) -> Any:
        """What a row without an entry shows: "loading" while its block is read, "missing" once its item left
        the store (`gone`) or the store could not be read (`failed`)."""
        why = None
        if gone:
            why = f"gallery item {item_id} is no longer in the store: refresh the gallery"
        elif failed:
            why = f"gallery item {item_id} cannot be read from the store"
        if role == STATE_ROLE:
            return "missing" if why else "loading"
        if role == Qt.ItemDataRole.DisplayRole:
            return f"#{item_id}"
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleTextRole):
            return f"Item {item_id}, {why or 'loading'}"
        if role == FAILURE_ROLE:
            return why
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        """Selectable, never editable in place."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    # --- the block cache --------------------------------------------------------------------

    def _cached(self, item_id: int) -> tuple[GalleryEntry | None, bool]:
        """(entry, True) when read, marking its block as just used; (None, False) when not read yet."""
        block = self._home.get(item_id)
        if block is None:
            return None, False
        self._blocks.move_to_end(block)
        return self._blocks[block].get(item_id), True

    def _keep_block(self, ids: list[int], entries: Iterable[GalleryEntry]) -> None:
        """Cache a block read from the store (ids it lacks are gone from the store), evicting the least used."""
        by_id = {entry.id: entry for entry in entries}
        self._serial += 1
        block: dict[int, GalleryEntry | None] = {}
        for item_id in ids:
            previous = self._home.get(item_id)
            if previous is not None:
                held = self._blocks[previous]
                held.pop(item_id, None)
                if not held:
                    del self._blocks[previous]
            self._home[item_id] = self._serial
            block[item_id] = by_id.get(item_id)
        self._blocks[self._serial] = block
        while len(self._blocks) > self.max_blocks:
            _, dropped = self._blocks.popitem(last=False)
            for item_id in dropped:
                del self._home[item_id]

    def _read_block(self, block: int) -> bool:
        """Read a block on the GUI thread now; False (and `fetchFailed`) when the store cannot be read."""
        ids = self._ids[block * self.block_size:(block + 1) * self.block_size].tolist()
        started = time.perf_counter()
        try:
            entries = self.repository.entries(ids)
        except Exception as error:  # noqa: BLE001 - a database error must not escape into a paint event
            self._fail(_error_text(error))
            return False
        self._timed(time.perf_counter() - started)
        self._keep_block(ids, entries)
        return True

    def _want(self, row: int, item_id: int) -> tuple[GalleryEntry | None, bool]:
        """A row not read yet is painted: read its block now when reads are quick, else ask a worker for it."""
        if self._failed or self._closed:
            return None, False
        block = row // self.block_size
        if self._inline():
            return self._cached(item_id) if self._read_block(block) else (None, False)
        self._ask_block(block)
        return None, False

    def _inline(self) -> bool:
        """Whether recent block reads were quick enough to do while painting (~5-10 ms at 100,000 rows)."""
        return not self._recent or sum(self._recent) / len(self._recent) < self.inline_budget

    def _timed(self, seconds: float) -> None:
        self.blocks_fetched += 1
        self.block_seconds.append(seconds)
        self._recent.append(seconds)

    def _ask_block(self, block: int) -> None:
        if block in self._requested:
            return
        ids = self._ids[block * self.block_size:(block + 1) * self.block_size].tolist()
        if not ids:
            return
        self._requested.add(block)
        start_worker = False
        with self._lock:
            self._pending[block] = _BlockRequest(self._generation, self._epoch, self._version, block, ids)
            self._pending.move_to_end(block)
            while len(self._pending) > MAX_PENDING_BLOCKS:
                dropped, _ = self._pending.popitem(last=False)  # scrolled past: asked again if shown again
                self._requested.discard(dropped)
            if self._workers == 0:
                self._workers = 1
                start_worker = True
        if start_worker:
            self.block_pool.start(_BlockTask(self))

    def _next_block_request(self) -> _BlockRequest | None:
        with self._lock:
            if self._closed or not self._pending:
                self._workers = 0
                return None
            return self._pending.popitem(last=True)[1]

    def _block_ready(self, request: _BlockRequest, entries: list[GalleryEntry], seconds: float) -> None:
        self._timed(seconds)
        if request.generation != self._generation or self._closed:
            return  # another query's rows
        if request.epoch == self._epoch:
            self._requested.discard(request.block)
        if request.version == self._version:
            self._keep_block(request.ids, entries)
        # Else an edit came while it was read: its entries may predate the edit; the repaint asks again.
        self._repaint(request.ids)

    def _block_failed(self, request: _BlockRequest, reason: str) -> None:
        if request.generation == self._generation and not self._closed:
            self._fail(reason)

    def _fail(self, reason: str) -> None:
        """Stop reading blocks of this query (one message, not one per cell) until the next reload."""
        if not self._failed:
            self._failed = True
            self.fetchFailed.emit(reason)

    def _new_epoch(self) -> None:
        """Rows were renumbered: block requests made before name other rows."""
        self._epoch += 1
        self._requested.clear()
        with self._lock:
            self._pending.clear()

    def _repaint(self, ids: Iterable[int], roles: list[int] | None = None) -> None:
        rows = self.rows_of(ids)
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)), roles or [])

    # --- changing ---------------------------------------------------------------------------

    def update_entries(self, ids: Iterable[int], **changes: Any) -> None:
        """Apply a change made in the store (rating, flag, tags...) to the cached entries, repainting them
        (the others are read fresh from the store when shown)."""
        self._version += 1
        changed = []
        for item_id in ids:
            block = self._home.get(item_id)
            entry = self._blocks[block].get(item_id) if block is not None else None
            if block is not None and entry is not None:
                self._blocks[block][item_id] = dataclasses.replace(entry, **changes)
                changed.append(item_id)
        self._repaint(changed)

    def replace_entries(self, entries: Iterable[GalleryEntry]) -> None:
        """Put fresh copies of items (from `GalleryRepository.get`) in the cache, repainting them."""
        self._version += 1
        changed = []
        for entry in entries:
            block = self._home.get(entry.id)
            if block is not None:
                self._blocks[block][entry.id] = entry
                changed.append(entry.id)
        self._repaint(changed)

    def remove_ids(self, ids: Iterable[int]) -> None:
        """Take items off the grid (deleted, restored): one removal per run of adjacent rows."""
        ids = list(ids)
        rows = np.unique(np.asarray(self.rows_of(ids), dtype=np.int64))
        if rows.size:
            self._new_epoch()
            breaks = np.flatnonzero(np.diff(rows) != 1)
            firsts = np.concatenate(([rows[0]], rows[breaks + 1])).tolist()
            lasts = np.concatenate((rows[breaks], [rows[-1]])).tolist()
            for first, last in zip(reversed(firsts), reversed(lasts), strict=True):  # bottom up: rows above stay
                self.beginRemoveRows(QModelIndex(), first, last)
                self._ids = np.concatenate((self._ids[:first], self._ids[last + 1:]))
                self._index = None
                self.endRemoveRows()
        for item_id in ids:
            block = self._home.pop(item_id, None)
            if block is not None:
                self._blocks[block].pop(item_id, None)
        if self.loading and self._query is not None:
            self.set_query(*self._query)  # the answer on its way may have been read before the removal

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Stop reading blocks and queries, and wait for the workers: no thread outlives the page."""
        self._closed = True
        self._query_signals.latest = -1
        with self._lock:
            self._pending.clear()
        done = bool(self.block_pool.waitForDone(timeout_ms))
        if self._own_pool:
            done = bool(self.query_pool.waitForDone(timeout_ms)) and done
        return done

    def _thumbnail_changed(self, item_id: int) -> None:
        row = self.row_of(item_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [THUMBNAIL_ROLE, STATE_ROLE])

    def _thumbnail_failed(self, item_id: int, reason: str) -> None:
        row = self.row_of(item_id)
        if row is not None:
            self._thumbnail_changed(item_id)
            self.thumbnailFailed.emit(item_id, reason)


def describe(entry: GalleryEntry, failure: str | None = None) -> str:
    """One line about an item, for tooltips and screen readers."""
    parts = [f"Item {entry.id}", f"{entry.family} model {entry.model}"]
    if entry.seed is not None:
        parts.append(f"seed {entry.seed}")
    parts.append(f"{entry.rating} star{'s' if entry.rating != 1 else ''}")
    if entry.flag != "none":
        parts.append("picked" if entry.flag == "pick" else "rejected")
    if entry.tags:
        parts.append("tags " + ", ".join(entry.tags))
    if failure:
        parts.append(f"image unavailable: {failure}")
    return ", ".join(parts)


def selection_of_rows(model: QAbstractListModel, rows: Iterable[int]) -> QItemSelection:
    """A selection of rows as ranges of adjacent rows (thousands of single-row ranges are slow)."""
    selection = QItemSelection()
    ordered = sorted(set(rows))
    start = previous = None
    for row in [*ordered, None]:
        if row is not None and previous is not None and row == previous + 1:
            previous = row
            continue
        if start is not None and previous is not None:
            selection.select(model.index(start, 0), model.index(previous, 0))
        start = previous = row
    return selection


def selected_spans(view: QListView) -> list[tuple[int, int]]:
    """The selection as sorted, disjoint (first, last) row spans: Ctrl+A on a million rows is one span."""
    model = view.selectionModel()
    if model is None:
        return []
    spans: list[tuple[int, int]] = []
    for first, last in sorted((r.top(), r.bottom()) for r in model.selection() if r.isValid()):
        if spans and first <= spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], max(spans[-1][1], last))
        else:
            spans.append((first, last))
    return spans


def selected_rows(view: QListView) -> list[int]:
    """The selected rows, in order, read from the selection's ranges (cheap with everything selected)."""
    rows: list[int] = []
    for first, last in selected_spans(view):
        rows.extend(range(first, last + 1))
    return rows


def selection_count(view: QListView) -> int:
    """How many rows are selected, without listing them."""
    return sum(last - first + 1 for first, last in selected_spans(view))


def first_selected_row(view: QListView) -> int | None:
    """The topmost selected row, or None."""
    spans = selected_spans(view)
    return spans[0][0] if spans else None


# --- painting -----------------------------------------------------------------------------------


def star_polygon(center: QPointF, outer: float) -> QPolygonF:
    """A five-pointed star around `center`."""
    inner = outer * 0.45
    points = []
    for corner in range(10):
        radius = outer if corner % 2 == 0 else inner
        angle = math.pi / 2 + corner * math.pi / 5
        points.append(QPointF(center.x() + radius * math.cos(angle), center.y() - radius * math.sin(angle)))
    return QPolygonF(points)


def paint_stars(painter: QPainter, origin: QPointF, stars: int, size: float, empty: QColor) -> float:
    """Five stars from `origin` (their left middle), `stars` of them filled; returns the width painted."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    gap = size * 0.2
    for star in range(5):
        center = QPointF(origin.x() + size / 2 + star * (size + gap), origin.y())
        polygon = star_polygon(center, size / 2)
        if star < stars:
            painter.setPen(QPen(STAR_GOLD.darker(130), 1))
            painter.setBrush(STAR_GOLD)
        else:
            painter.setPen(QPen(empty, 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPolygon(polygon)
    painter.restore()
    return 5 * size + 4 * gap


def paint_flag(painter: QPainter, rect: QRectF, flag: str) -> None:
    """A round badge: a white tick on green for a pick, a white cross on red for a reject."""
    if flag not in ("pick", "reject"):
        return
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(QPen(QColor(255, 255, 255), 1.5))
    painter.setBrush(PICK_GREEN if flag == "pick" else REJECT_RED)
    painter.drawEllipse(rect)
    pen = QPen(QColor(255, 255, 255), max(1.5, rect.width() / 8))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    x, y, w, h = rect.x(), rect.y(), rect.width(), rect.height()
    if flag == "pick":
        painter.drawPolyline(QPolygonF([QPointF(x + w * 0.28, y + h * 0.52), QPointF(x + w * 0.44, y + h * 0.68),
                                        QPointF(x + w * 0.72, y + h * 0.34)]))
    else:
        painter.drawLine(QPointF(x + w * 0.32, y + h * 0.32), QPointF(x + w * 0.68, y + h * 0.68))
        painter.drawLine(QPointF(x + w * 0.68, y + h * 0.32), QPointF(x + w * 0.32, y + h * 0.68))
    painter.restore()


def _badge(flag: str, size: int) -> QPixmap:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    paint_flag(painter, QRectF(1, 1, size - 2, size - 2), flag)
    painter.end()
    return pixmap


def _star_strip(stars: int, size: float, empty: QColor) -> QPixmap:
    width = int(5 * size + 4 * size * 0.2) + 2
    pixmap = QPixmap(width, int(size) + 2)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    paint_stars(painter, QPointF(1, (size + 2) / 2), stars, size, empty)
    painter.end()
    return pixmap


def _placeholder(missing: bool, palette: QPalette) -> QPixmap:
    pixmap = QPixmap(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    pixmap.fill(palette.color(QPalette.ColorRole.Mid if missing else QPalette.ColorRole.AlternateBase))
    painter = QPainter(pixmap)
    painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1, Qt.PenStyle.DashLine))
    painter.drawRect(0, 0, THUMBNAIL_SIZE - 1, THUMBNAIL_SIZE - 1)
    if missing:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(REJECT_RED.lighter(120), 2))
        middle = THUMBNAIL_SIZE / 2
        painter.drawLine(QPointF(middle - 12, middle - 22), QPointF(middle + 12, middle + 2))
        painter.drawLine(QPointF(middle + 12, middle - 22), QPointF(middle - 12, middle + 2))
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(QRect(0, int(middle) + 6, THUMBNAIL_SIZE, 20), int(Qt.AlignmentFlag.AlignCenter),
                         "image missing")
    painter.end()
    return pixmap


def fit_thumbnail(image: QImage) -> QImage:
    """Scale an image into the grid's square: whole pixels up (crisp), smooth down. Safe off the GUI thread."""
    width, height = image.width(), image.height()
    factor = THUMBNAIL_SIZE // max(width, height)
    if factor == 1:
        return image
    if factor > 1:
        return image.scaled(width * factor, height * factor, Qt.AspectRatioMode.IgnoreAspectRatio,
                            Qt.TransformationMode.FastTransformation)
    return image.scaled(THUMBNAIL_SIZE, THUMBNAIL_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                        Qt.TransformationMode.SmoothTransformation)


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a cell: the thumbnail (a placeholder while loading or when missing), flag badge, stars, id.

    Stars, badges and placeholders are drawn once into pixmaps and reused, so a cell costs a handful of
    painter calls: a screenful repaints in a few milliseconds while scrolling.
    """

    STAR = 11

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._palette_key: int | None = None
        self._stars: list[QPixmap] = []
        self._badges: dict[str, QPixmap] = {}
        self._placeholders: dict[bool, QPixmap] = {}
        self._font: QFont | None = None

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        """Every cell is the same size (the view lays out with uniform sizes)."""
        return QSize(CELL)

    def _decorations(self, palette: QPalette, font: QFont) -> None:
        """(Re)draw the reusable pieces when the palette changes (a theme switch)."""
        if self._palette_key == palette.cacheKey():
            return
        self._palette_key = palette.cacheKey()
        empty = palette.color(QPalette.ColorRole.PlaceholderText)
        self._stars = [_star_strip(stars, self.STAR, empty) for stars in range(6)]
        self._badges = {flag: _badge(flag, 20) for flag in ("pick", "reject")}
        self._placeholders = {missing: _placeholder(missing, palette) for missing in (False, True)}
        self._font = QFont(font)
        self._font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        """Draw one cell; rejected items are dimmed; a row whose entry is still being read is a placeholder."""
        entry: GalleryEntry | None = index.data(ENTRY_ROLE)
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        cell: QRect = option.rect  # type: ignore[attr-defined]
        state = option.state  # type: ignore[attr-defined]
        self._decorations(palette, painter.font())
        painter.save()
        selected = bool(state & QStyle.StateFlag.State_Selected)
        if selected:
            highlight = palette.color(QPalette.ColorRole.Highlight)
            fill = QColor(highlight)
            fill.setAlpha(70)
            painter.fillRect(cell.adjusted(1, 1, -1, -1), fill)
            painter.setPen(QPen(highlight, 2))
            painter.drawRect(cell.adjusted(2, 2, -2, -2))
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(cell.adjusted(1, 1, -1, -1), palette.color(QPalette.ColorRole.AlternateBase))
        left = cell.x() + (cell.width() - THUMBNAIL_SIZE) // 2
        top = cell.y() + 6
        if entry is None:
            # Its block is on its way (or the item left the store): the placeholder and the id, never a hole.
            painter.drawPixmap(left, top, self._placeholders[index.data(STATE_ROLE) == "missing"])
            if self._font is not None:
                painter.setFont(self._font)
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(QRect(left, top + THUMBNAIL_SIZE + 4, THUMBNAIL_SIZE, self.STAR + 6),
                             int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                             str(index.data(Qt.ItemDataRole.DisplayRole) or ""))
            painter.restore()
            return
        dim = entry.flag == "reject"
        if dim:
            painter.setOpacity(0.35)
        image: QImage | None = index.data(THUMBNAIL_ROLE)
        if image is not None and not image.isNull():
            # Already fitted to the square off the GUI thread: drawn 1:1, crisp and cheap.
            painter.drawImage(left + (THUMBNAIL_SIZE - image.width()) // 2,
                              top + (THUMBNAIL_SIZE - image.height()) // 2, image)
        else:
            painter.drawPixmap(left, top, self._placeholders[index.data(STATE_ROLE) == "missing"])
        stars = self._stars[max(0, min(5, entry.rating))]
        stars_top = top + THUMBNAIL_SIZE + 6
        painter.drawPixmap(left, stars_top, stars)
        if dim:
            painter.setOpacity(1.0)
        if self._font is not None:
            painter.setFont(self._font)
        painter.setPen(palette.color(QPalette.ColorRole.Text if selected else QPalette.ColorRole.PlaceholderText))
        painter.drawText(QRect(left, stars_top - 2, THUMBNAIL_SIZE, stars.height() + 4),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), f"#{entry.id}")
        badge = self._badges.get(entry.flag)
        if badge is not None:
            painter.drawPixmap(left + 4, top + 4, badge)
        painter.restore()


# --- the view -----------------------------------------------------------------------------------


class GalleryView(QListView):
    """An icon-mode grid tuned for a large fixed-size model (one layout, cheap selections of every row);
    Lightroom's curation keys become signals."""

    ratingRequested = Signal(int)  # noqa: N815 - 0-5 pressed
    flagRequested = Signal(str)  # noqa: N815 - P, X, U: "pick", "reject", "none"
    deleteRequested = Signal()  # noqa: N815 - Delete or Backspace
    undoRequested = Signal()  # noqa: N815 - Ctrl+Z
    compareRequested = Signal()  # noqa: N815 - C

    _FLAG_KEYS: ClassVar[dict[Qt.Key, str]] = {Qt.Key.Key_P: "pick", Qt.Key.Key_X: "reject", Qt.Key.Key_U: "none"}
    _pending_scroll: tuple[int, QAbstractItemView.ScrollHint] | None = None  # set before Qt may call reset()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)  # a grid, not a desktop: no dragging cells about
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)  # one size hint for every row: layout without asking each
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setGridSize(CELL)
        self.setSpacing(0)
        self.setSelectionMode(QListView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(CELL.height() // 3)
        self.setMouseTracking(True)
        self.setDragEnabled(False)
        self.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        # Dragging or clicking the scroll bar is the user moving on: a pending scroll must not pull them back.
        self.verticalScrollBar().actionTriggered.connect(lambda _action: self.cancel_pending_scroll())

    def layout_complete(self) -> bool:
        """Whether every row has been placed (batched layouts place them over several passes)."""
        model = self.model()
        rows = model.rowCount() if model is not None else 0
        return rows == 0 or self.rectForIndex(model.index(rows - 1, 0)).isValid()

    def rows_on_screen(self) -> tuple[int, int] | None:
        """(first, last) rows that can be on screen, from the top left cell and the grid; None when unknown."""
        model = self.model()
        grid = self.gridSize()
        if model is None or not model.rowCount() or grid.isEmpty():
            return None
        top = self.indexAt(QPoint(grid.width() // 2, 1))
        if not top.isValid():
            top = self.indexAt(QPoint(grid.width() // 2, grid.height() // 2))
        if not top.isValid():
            return None
        columns = max(1, self.viewport().width() // grid.width())
        lines = self.viewport().height() // grid.height() + 2  # partly shown lines at the top and bottom
        return top.row(), min(model.rowCount() - 1, top.row() + columns * lines - 1)

    def visualRegionForSelection(self, selection: QItemSelection) -> QRegion:
        """The selected cells on screen. Qt's own looks at every selected row: Ctrl+A on 100,000 rows took
        0.35 s (3.4 s on a million); only the rows on screen can need a repaint."""
        rows = self.rows_on_screen()
        model = self.model()
        if rows is None or model is None:
            return QRegion(self.viewport().rect())  # not laid out yet: repainting everything is cheap and right
        viewport = self.viewport().rect()
        region = QRegion()
        for selection_range in selection:
            for row in range(max(rows[0], selection_range.top()), min(rows[1], selection_range.bottom()) + 1):
                rect = self.visualRect(model.index(row, 0))
                if rect.isValid() and rect.intersects(viewport):
                    region += rect
        return region

    # --- returning to a row after a reset ---------------------------------------------------

    def scroll_when_laid_out(self, row: int,
                             hint: QAbstractItemView.ScrollHint = QAbstractItemView.ScrollHint.EnsureVisible) -> None:
        """Scroll to `row` once the batched layout has placed it (at once if it has). Until then the viewport
        keeps its last picture: a refresh must not flash the top rows of a half-done layout first."""
        self.cancel_pending_scroll()
        self._pending_scroll = (row, hint)
        self.executeDelayedItemsLayout()  # the first batch now: the row may be in it
        if not self._apply_pending_scroll():
            self.viewport().setUpdatesEnabled(False)

    def cancel_pending_scroll(self) -> None:
        """Forget a scroll waiting for the layout (the user moved on, or the rows changed)."""
        self._pending_scroll = None
        if not self.viewport().updatesEnabled():
            self.viewport().setUpdatesEnabled(True)

    @property
    def scroll_pending(self) -> bool:
        """A scroll waits for the layout to reach its row."""
        return self._pending_scroll is not None

    def _apply_pending_scroll(self) -> bool:
        """Scroll if the pending row has its place now; True when nothing is left pending."""
        if self._pending_scroll is None:
            return True
        row, hint = self._pending_scroll
        model = self.model()
        if model is None or not 0 <= row < model.rowCount():
            self.cancel_pending_scroll()
            return True
        index = model.index(row, 0)
        # A screenful below it must be placed too: the scroll range ends at the last placed row, and a row
        # at its very end cannot be scrolled to the top (the view would stop a few lines short).
        grid = self.gridSize()
        columns = max(1, self.viewport().width() // max(1, grid.width()))
        lines = self.viewport().height() // max(1, grid.height()) + 2
        below = model.index(min(model.rowCount() - 1, row + columns * lines), 0)
        if not (self.rectForIndex(index).isValid() and self.rectForIndex(below).isValid()):
            if self.layout_complete():  # every row placed but this one: give up rather than stay frozen
                self.cancel_pending_scroll()
                return True
            return False
        self._pending_scroll = None
        self.updateGeometries()  # the scroll range must reach the row first
        self.scrollTo(index, hint)
        self.viewport().setUpdatesEnabled(True)
        self.viewport().update()
        return True

    def timerEvent(self, event: QTimerEvent) -> None:
        """After each batch of the layout: scroll to a pending row once it is placed."""
        super().timerEvent(event)
        if self._pending_scroll is not None:
            self._apply_pending_scroll()

    def reset(self) -> None:
        """The model was reset: a pending scroll named a row of the old rows."""
        self.cancel_pending_scroll()
        super().reset()

    def wheelEvent(self, event: QWheelEvent) -> None:
        """The user scrolls: a pending scroll must not pull them back."""
        self.cancel_pending_scroll()
        super().wheelEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """The user clicks: a pending scroll must not move the grid under the pointer."""
        self.cancel_pending_scroll()
        super().mousePressEvent(event)

    def selectAll(self) -> None:
        """Every row as one range. Qt's own selectAll asks the model about each row first (100,000 Python calls,
        0.1 s; a second at a million); selecting the range itself is instant."""
        model = self.model()
        selection_model = self.selectionModel()
        single = self.selectionMode() in (QListView.SelectionMode.NoSelection, QListView.SelectionMode.SingleSelection)
        if model is None or selection_model is None or not model.rowCount() or single:
            return
        selection_model.select(QItemSelection(model.index(0, 0), model.index(model.rowCount() - 1, 0)),
                               QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def keyboardSearch(self, search: str) -> None:
        """Off: letters and digits are curation keys here, not type-to-find."""
        del search

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """0-5 rate, P/X/U flag, Delete trashes, Ctrl+Z undoes, C compares, Ctrl+A selects every row."""
        key = event.key()
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undoRequested.emit()
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.selectAll()
        elif modifiers != Qt.KeyboardModifier.NoModifier:
            self.cancel_pending_scroll()  # Ctrl+End and the like: the user navigates
            super().keyPressEvent(event)
        elif Qt.Key.Key_0 <= key <= Qt.Key.Key_5:
            self.ratingRequested.emit(int(key) - int(Qt.Key.Key_0))
        elif key in self._FLAG_KEYS:
            self.flagRequested.emit(self._FLAG_KEYS[Qt.Key(key)])
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.deleteRequested.emit()
        elif key == Qt.Key.Key_C:
            self.compareRequested.emit()
        else:
            self.cancel_pending_scroll()  # arrows, Page Down, End: the user navigates
            super().keyPressEvent(event)
            return
        event.accept()

    def select_rows(self, rows: Iterable[int], current: int | None = None) -> None:
        """Select these rows (replacing the selection) and make `current` the current one."""
        model = self.model()
        selection_model = self.selectionModel()
        if model is None or selection_model is None:
            return
        rows = list(rows)
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        selection_model.select(selection_of_rows(model, rows), flags)
        if current is None and rows:
            current = rows[0]
        if current is not None:
            selection_model.setCurrentIndex(model.index(current, 0), QItemSelectionModel.SelectionFlag.NoUpdate)


class StarRating(QWidget):
    """Five clickable stars: click a star to rate, click the current one again to clear; 0-5 keys too."""

    ratingChanged = Signal(int)  # noqa: N815 - by the user only

    STAR = 18

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value = 0
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setFixedSize(int(5 * self.STAR + 4 * self.STAR * 0.2) + 4, self.STAR + 6)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def value(self) -> int:
        """The stars shown."""
        return self._value

    def setValue(self, stars: int) -> None:
        """Show `stars` (no signal)."""
        self._value = max(0, min(5, int(stars)))
        self.setAccessibleDescription(f"{self._value} of 5 stars")
        self.update()

    def _choose(self, stars: int) -> None:
        self.setValue(stars)
        self.ratingChanged.emit(self._value)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Rate by the star under the pointer."""
        if not self.isEnabled() or event.button() != Qt.MouseButton.LeftButton:
            return
        star = min(5, max(1, int((event.position().x() - 2) // (self.STAR * 1.2)) + 1))
        self._choose(0 if star == self._value else star)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """0-5 set the rating; left and right step it."""
        key = event.key()
        if Qt.Key.Key_0 <= key <= Qt.Key.Key_5:
            self._choose(int(key) - int(Qt.Key.Key_0))
        elif key == Qt.Key.Key_Right:
            self._choose(min(5, self._value + 1))
        elif key == Qt.Key.Key_Left:
            self._choose(max(0, self._value - 1))
        else:
            super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        """The stars, dimmed when disabled."""
        del event
        painter = QPainter(self)
        if not self.isEnabled():
            painter.setOpacity(0.4)
        empty = self.palette().color(QPalette.ColorRole.PlaceholderText)
        paint_stars(painter, QPointF(2, self.height() / 2), self._value, self.STAR, empty)
        if self.hasFocus():
            painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 1, Qt.PenStyle.DotLine))
            painter.setBrush(QBrush(Qt.BrushStyle.NoBrush))
            painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
        painter.end()
