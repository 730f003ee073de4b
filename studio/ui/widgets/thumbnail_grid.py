"""A virtualised thumbnail grid over the gallery: a paging model, a background thumbnail loader with an LRU
cache, a delegate that paints stars and flags, and a view that turns Lightroom's keys into signals.

The model never holds more rows than the user scrolled to: it asks `GalleryRepository.query` for one page
at a time through keyset cursors (`canFetchMore`/`fetchMore`), so the 100,000th row costs what the first
did. Thumbnails are read off the GUI thread into QImages (safe there, unlike QPixmap) by a small pool that
serves the most recent request first, so the rows on screen load before those scrolled past.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtCore import (
    QAbstractListModel,
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QRectF,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
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
)
from PySide6.QtWidgets import QListView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from studio.engine.thumbnails import THUMBNAIL_SIZE, ensure_thumbnail
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryEntry, GalleryFilter, GalleryRepository

PAGE_SIZE = 200  # rows per fetch: a screen or two of cells, one cheap keyset query
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


class GalleryModel(QAbstractListModel):
    """Gallery items matching a filter, in a sort order, fetched a page at a time as the view scrolls."""

    fetchFailed = Signal(str)  # noqa: N815 - Qt naming: a query failed (the database went away...)
    thumbnailFailed = Signal(int, str)  # noqa: N815 - item id, reason

    def __init__(self, store: Store, loader: ThumbnailLoader, page_size: int = PAGE_SIZE,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.repository = GalleryRepository(store)
        self.loader = loader
        self.page_size = page_size
        self.filters = GalleryFilter()
        self.sort = "newest"
        self.pages_fetched = 0
        self._entries: list[GalleryEntry] = []
        self._rows: dict[int, int] = {}
        self._cursor: str | None = None
        self._exhausted = True
        self.fetch_held = False  # set by the view while a relayout, not the user, moves its scroll bar
        loader.loaded.connect(self._thumbnail_changed)
        loader.failed.connect(self._thumbnail_failed)

    # --- querying ---------------------------------------------------------------------------

    def set_query(self, filters: GalleryFilter, sort: str) -> None:
        """Show the first page of another filter or sort (or of the same one, reloaded)."""
        self.beginResetModel()
        self.filters, self.sort = filters, sort
        self._entries, self._rows = [], {}
        self._cursor, self._exhausted = None, False
        self.pages_fetched = 0
        self.loader.cancel_pending()
        try:
            self._append_page()
        finally:
            self.endResetModel()

    def _query_page(self) -> list[GalleryEntry]:
        try:
            page = self.repository.query(self.filters, self.sort, self.page_size, self._cursor)
        except StudioError as error:
            self._exhausted = True
            self.fetchFailed.emit(str(error))
            return []
        self.pages_fetched += 1
        self._cursor = page.next_cursor
        self._exhausted = page.next_cursor is None
        return page.items

    def _append_page(self) -> None:
        """Inside a reset: take the next page straight in."""
        items = self._query_page()
        start = len(self._entries)
        self._entries.extend(items)
        for offset, item in enumerate(items):
            self._rows[item.id] = start + offset

    def canFetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> bool:  # noqa: B008
        """More pages wait past the cursor."""
        return not parent.isValid() and not self._exhausted and not self.fetch_held

    def fetchMore(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> None:  # noqa: B008
        """Append the next page (the view calls this when scrolled to the end of what is loaded)."""
        if parent.isValid() or self._exhausted:
            return
        items = self._query_page()
        if not items:
            return
        start = len(self._entries)
        self.beginInsertRows(QModelIndex(), start, start + len(items) - 1)
        self._entries.extend(items)
        for offset, item in enumerate(items):
            self._rows[item.id] = start + offset
        self.endInsertRows()

    @property
    def exhausted(self) -> bool:
        """Every matching row is loaded."""
        return self._exhausted

    # --- reading ----------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        """Rows loaded so far."""
        return 0 if parent.isValid() else len(self._entries)

    def entry(self, row: int) -> GalleryEntry:
        """The item on a row."""
        return self._entries[row]

    def row_of(self, item_id: int) -> int | None:
        """The row an item is on, if loaded."""
        return self._rows.get(item_id)

    def ids(self) -> list[int]:
        """Every loaded item's id, in order."""
        return [entry.id for entry in self._entries]

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The entry, its thumbnail (asked for on first sight) and the texts views and screen readers use."""
        if not index.isValid() or not 0 <= index.row() < len(self._entries):
            return None
        entry = self._entries[index.row()]
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

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        """Selectable, never editable in place."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    # --- changing ---------------------------------------------------------------------------

    def update_entries(self, ids: Iterable[int], **changes: Any) -> None:
        """Apply a change made in the store (rating, flag, tags...) to the loaded rows, repainting them."""
        rows = []
        for item_id in ids:
            row = self._rows.get(item_id)
            if row is not None:
                self._entries[row] = dataclasses.replace(self._entries[row], **changes)
                rows.append(row)
        self._rows_changed(rows)

    def replace_entries(self, entries: Iterable[GalleryEntry]) -> None:
        """Put fresh copies of items (from `GalleryRepository.get`) on their rows."""
        rows = []
        for entry in entries:
            row = self._rows.get(entry.id)
            if row is not None:
                self._entries[row] = entry
                rows.append(row)
        self._rows_changed(rows)

    def _rows_changed(self, rows: list[int]) -> None:
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)))

    def remove_ids(self, ids: Iterable[int]) -> None:
        """Take items off the grid (deleted, restored): one removal per run of adjacent rows."""
        rows = sorted({row for row in (self._rows.get(i) for i in ids) if row is not None}, reverse=True)
        runs: list[tuple[int, int]] = []
        for row in rows:
            if runs and runs[-1][0] == row + 1:
                runs[-1] = (row, runs[-1][1])
            else:
                runs.append((row, row))
        for first, last in runs:  # from the bottom up: the rows above keep their numbers
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._entries[first:last + 1]
            self.endRemoveRows()
        if runs:
            self._rows = {entry.id: row for row, entry in enumerate(self._entries)}

    def _thumbnail_changed(self, item_id: int) -> None:
        row = self._rows.get(item_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [THUMBNAIL_ROLE, STATE_ROLE])

    def _thumbnail_failed(self, item_id: int, reason: str) -> None:
        row = self._rows.get(item_id)
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


def selected_rows(view: QListView) -> list[int]:
    """The selected rows, in order, read from the selection's ranges (cheap with everything selected)."""
    model = view.selectionModel()
    if model is None:
        return []
    rows: list[int] = []
    for selection_range in model.selection():
        rows.extend(range(selection_range.top(), selection_range.bottom() + 1))
    return sorted(set(rows))


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
        """Draw one cell; rejected items are dimmed."""
        entry: GalleryEntry | None = index.data(ENTRY_ROLE)
        if entry is None:
            return
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
    """An icon-mode list tuned for a large lazy model; Lightroom's curation keys become signals."""

    ratingRequested = Signal(int)  # noqa: N815 - 0-5 pressed
    flagRequested = Signal(str)  # noqa: N815 - P, X, U: "pick", "reject", "none"
    deleteRequested = Signal()  # noqa: N815 - Delete or Backspace
    undoRequested = Signal()  # noqa: N815 - Ctrl+Z
    compareRequested = Signal()  # noqa: N815 - C

    _FLAG_KEYS: ClassVar[dict[Qt.Key, str]] = {Qt.Key.Key_P: "pick", Qt.Key.Key_X: "reject", Qt.Key.Key_U: "none"}

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

    def verticalScrollbarValueChanged(self, value: int) -> None:
        """Qt fetches the next page whenever the bar reaches its end. While a batched relayout runs, the bar's
        range shrinks to the rows placed so far and clamps the value to its end: that is not the user reaching
        the end, so the model holds its pages until the last loaded row has its place again."""
        model = self.model()
        if isinstance(model, GalleryModel) and not self.layout_complete():
            model.fetch_held = True
            try:
                super().verticalScrollbarValueChanged(value)
            finally:
                model.fetch_held = False
        else:
            super().verticalScrollbarValueChanged(value)

    def layout_complete(self) -> bool:
        """Whether every loaded row has been placed (batched layouts place them over several passes)."""
        model = self.model()
        rows = model.rowCount() if model is not None else 0
        return rows == 0 or self.rectForIndex(model.index(rows - 1, 0)).isValid()

    def keyboardSearch(self, search: str) -> None:
        """Off: letters and digits are curation keys here, not type-to-find."""
        del search

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """0-5 rate, P/X/U flag, Delete trashes, Ctrl+Z undoes, C compares, Ctrl+A selects every loaded row."""
        key = event.key()
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        if event.matches(QKeySequence.StandardKey.Undo):
            self.undoRequested.emit()
        elif event.matches(QKeySequence.StandardKey.SelectAll):
            self.selectAll()
        elif modifiers != Qt.KeyboardModifier.NoModifier:
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
