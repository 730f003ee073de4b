"""The gallery grid's model: every item matching a filter, in a sort order, with a fixed row count and entries
read in blocks into a bounded LRU.

The model knows every matching id from the start (`GalleryRepository.ids`, read off the GUI thread by a
`QueryOp`: ~90 ms at 100,000 rows) and resets once per query, so the view lays the grid out once and row
99,999 is one jump away. Entries are read 200 at a time (`GalleryRepository.entries`, ~5-10 ms) when their
rows are first painted: on the GUI thread while such reads are quick, else off it, newest block first.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt, QThreadPool, Signal

from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryEntry, GalleryFilter, GalleryRepository
from studio.ui.gallery.reads import NewestFirstReads
from studio.ui.gallery.thumbnails import ThumbnailLoader, image_path
from studio.ui.operations import QueryHandle, QueryOp

BLOCK_SIZE = 200  # entries per read: a screen or two of cells, one ~5-10 ms `GalleryRepository.entries` call
MAX_BLOCKS = 50  # blocks kept: at most 10,000 entries (a few MB) however many rows the gallery has
MAX_PENDING_BLOCKS = 8  # block reads waiting for a worker; older ones (scrolled past) are asked again if seen again
PREFETCH_BLOCKS = 4  # blocks read with a query's ids, so the first paint after a reload shows real cells
INLINE_FETCH_BUDGET = 0.015  # seconds: blocks read faster than this (on average) are read while painting

ENTRY_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's GalleryEntry
THUMBNAIL_ROLE = Qt.ItemDataRole.UserRole + 2  # its QImage, or None while loading or when it failed
STATE_ROLE = Qt.ItemDataRole.UserRole + 3  # "ready", "loading" or "missing"
FAILURE_ROLE = Qt.ItemDataRole.UserRole + 4  # why the thumbnail could not be made (or None)


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


def read_query(
    repository: GalleryRepository,
    filters: GalleryFilter,
    sort: str,
    near: tuple[int, ...],
    block_size: int,
    version: int,
    order: tuple[int, ...] | None = None,
) -> QueryResult:
    """Off the GUI thread: a query's ordered ids (~90 ms at 100,000 rows, ~1 s at 1,000,000) and the blocks of
    the `near` ids, to show first; with `order`, the matching ids in that order instead of sorted (a "more like
    this" search, nearest first). Database reads and numpy only."""
    started = time.perf_counter()
    ids = np.array(repository.ids(filters, sort), dtype=np.int64)
    if order is not None:
        # The store sorts by columns only; the explicit order is applied here, to the few ids it names.
        matching = set(ids.tolist())
        ids = np.array([i for i in dict.fromkeys(order) if i in matching], dtype=np.int64)
    index = _sorted_index(ids)
    wanted = [0]
    if near:
        # The block of each row the view returns to, and the next one: a screen can straddle two.
        rows = _rows_in(index, near)
        wanted = list(dict.fromkeys(b for row in rows.tolist() for b in (row // block_size, row // block_size + 1)))
        wanted = wanted or [0]
    blocks = []
    try:
        for block in wanted[:PREFETCH_BLOCKS]:
            block_ids = ids[block * block_size : (block + 1) * block_size].tolist()
            if block_ids:
                blocks.append((block_ids, repository.entries(block_ids)))
    except Exception:  # noqa: BLE001 - only a head start: painting reads these blocks again, and says why
        blocks = []
    return QueryResult(filters, sort, ids, index, blocks, version, time.perf_counter() - started)


@dataclass(frozen=True)
class _BlockRequest:
    """A block of rows to read, and the model state it was asked in (to drop answers that came too late)."""

    generation: int  # which query's rows
    epoch: int  # which numbering of them (a removal renumbers rows)
    version: int  # how many edits had been made
    block: int
    ids: list[int]


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

    def __init__(
        self,
        store: Store,
        loader: ThumbnailLoader,
        pool: QThreadPool | None = None,
        block_size: int = BLOCK_SIZE,
        max_blocks: int = MAX_BLOCKS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.repository = GalleryRepository(store)
        self.loader = loader
        self.block_size = block_size
        self.max_blocks = max_blocks
        # Blocks slower than this (a slow disk, a huge database, a busy machine) are read off the GUI thread.
        self.inline_budget = INLINE_FETCH_BUDGET
        self.filters = GalleryFilter()  # of the rows shown (a query on its way changes them when it arrives)
        self.sort_order = "newest"  # not `sort`: that is QAbstractItemModel.sort()
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
        self._query: tuple[GalleryFilter, str, tuple[int, ...], tuple[int, ...] | None] | None = None
        self._query_handle: QueryHandle | None = None
        self._failed = False
        self._closed = False
        self._requested: set[int] = set()  # blocks asked for in this epoch and not answered yet
        self._own_pool = pool is None
        self.query_pool = pool if pool is not None else QThreadPool(self)
        # One thread for blocks, serving the newest request next (the rows on screen now). Keyed by (epoch,
        # block): after a renumbering a block is asked afresh even while its old read is still running.
        self.block_pool = QThreadPool(self)
        self.block_pool.setObjectName("gallery-blocks")
        self.block_pool.setMaxThreadCount(1)
        self._block_reads: NewestFirstReads[tuple[int, int], _BlockRequest, tuple[list[GalleryEntry], float]] = (
            NewestFirstReads(
                self,
                self.block_pool,
                self._read_block_off_thread,
                self._block_ready,
                self._block_failed,
                limit=MAX_PENDING_BLOCKS,
                dropped=self._block_dropped,
            )
        )
        loader.loaded.connect(self._thumbnail_changed)
        loader.failed.connect(self._thumbnail_failed)

    # --- querying ---------------------------------------------------------------------------

    def set_query(
        self, filters: GalleryFilter, sort: str, near: Iterable[int] = (), order: tuple[int, ...] | None = None
    ) -> None:
        """Read the ids of another filter or sort (or the same, reloaded) off the GUI thread; `queryLoaded`
        follows. The blocks of the `near` ids (where the view will return) come with them, ready to paint.
        `order` (ids) replaces the sort: the matching items are shown in that order."""
        if self._closed:
            return
        self._query = (filters, sort, tuple(int(i) for i in near), order)
        self._asked += 1
        self._loading = True
        generation, version, near_ids = self._asked, self._version, self._query[2]
        repository, block_size = self.repository, self.block_size
        # latest_only: a query overtaken before it ran is skipped, and one overtaken while it ran is dropped.
        self._query_handle = (
            QueryOp(
                self,
                lambda: read_query(repository, filters, sort, near_ids, block_size, version, order),
                pool=self.query_pool,
            )
            .latest_only("ids")
            .success(lambda result: self._query_ready(generation, result))
            .failure(self._query_failed)
            .dropped(self._query_overtaken)
            .run_in_background()
        )

    @property
    def loading(self) -> bool:
        """A query was asked for and its rows have not arrived yet."""
        return self._loading

    def _query_overtaken(self) -> None:
        self.stale_dropped += 1  # an older filter's answer, overtaken by a newer request

    def _query_ready(self, generation: int, result: QueryResult) -> None:
        # Only the newest query's answer gets here (latest_only drops and counts the overtaken ones).
        if self._closed:
            return
        self.beginResetModel()
        self.filters, self.sort_order = result.filters, result.sort
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

    def _query_failed(self, reason: str) -> None:
        if self._closed:
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
        parts = [self._ids[first : last + 1] for first, last in spans]
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
            for entry in self.repository.entries(missing[start : start + 2000]):
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
        ids = self._ids[block * self.block_size : (block + 1) * self.block_size].tolist()
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
        ids = self._ids[block * self.block_size : (block + 1) * self.block_size].tolist()
        if not ids:
            return
        self._requested.add(block)
        request = _BlockRequest(self._generation, self._epoch, self._version, block, ids)
        self._block_reads.ask((self._epoch, block), request)

    def _block_dropped(self, key: tuple[int, int]) -> None:
        """A request scrolled past left the backlog: its block is asked again if its rows are seen again."""
        epoch, block = key
        if epoch == self._epoch:
            self._requested.discard(block)

    def _read_block_off_thread(self, _key: tuple[int, int], request: _BlockRequest) -> tuple[list[GalleryEntry], float]:
        """In a pool thread: database reads only."""
        started = time.perf_counter()
        entries = self.repository.entries(request.ids)
        return entries, time.perf_counter() - started

    def _block_ready(
        self, _key: tuple[int, int], request: _BlockRequest, answer: tuple[list[GalleryEntry], float]
    ) -> None:
        entries, seconds = answer
        self._timed(seconds)
        if request.generation != self._generation or self._closed:
            return  # another query's rows
        if request.epoch == self._epoch:
            self._requested.discard(request.block)
        if request.version == self._version:
            self._keep_block(request.ids, entries)
        # Else an edit came while it was read: its entries may predate the edit; the repaint asks again.
        self._repaint(request.ids)

    def _block_failed(self, _key: tuple[int, int], request: _BlockRequest, error: Exception) -> None:
        if request.generation == self._generation and not self._closed:
            self._fail(_error_text(error))

    def _fail(self, reason: str) -> None:
        """Stop reading blocks of this query (one message, not one per cell) until the next reload."""
        if not self._failed:
            self._failed = True
            self.fetchFailed.emit(reason)

    def _new_epoch(self) -> None:
        """Rows were renumbered: block requests made before name other rows."""
        self._epoch += 1
        self._requested.clear()
        self._block_reads.clear()

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
                self._ids = np.concatenate((self._ids[:first], self._ids[last + 1 :]))
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
        if self._query_handle is not None:
            self._query_handle.cancel()  # skipped if it has not started
        self._block_reads.close()
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
    if entry.class_name is not None:
        parts.append(f"class {entry.class_name}")
    parts.append(f"{entry.rating} star{'s' if entry.rating != 1 else ''}")
    if entry.flag != "none":
        parts.append("picked" if entry.flag == "pick" else "rejected")
    if entry.tags:
        parts.append("tags " + ", ".join(entry.tags))
    if failure:
        parts.append(f"image unavailable: {failure}")
    return ", ".join(parts)
