"""Keyed reads served newest first off the GUI thread, so the rows on screen now load before those scrolled past.

Each new request starts at most one `QueryOp` in the given pool. When an op's turn comes it takes the newest
request still waiting, not the one it was started for: a request asked again moves to the front for free,
and a bounded backlog forgets the oldest requests (their cells ask again if they come back on screen).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from PySide6.QtCore import QObject, QThreadPool

from studio.ui.operations import QueryOp

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
R = TypeVar("R")


@dataclass(frozen=True)
class _Served(Generic[K, V, R]):
    """One request's answer as it crosses to the GUI thread: its result, or the error its read raised."""

    key: K
    value: V
    result: R | None
    error: Exception | None


class NewestFirstReads(Generic[K, V, R]):
    """Requests by key (`value` says what to read), read by `read(key, value)` in `pool`, newest first.

    `answered(key, value, result)` or `failed(key, value, error)` runs in the GUI thread for each read;
    `dropped(key)` for each request forgotten because the backlog passed `limit`.
    """

    def __init__(
        self,
        parent: QObject,
        pool: QThreadPool,
        read: Callable[[K, V], R],
        answered: Callable[[K, V, R], None],
        failed: Callable[[K, V, Exception], None],
        limit: int,
        dropped: Callable[[K], None] | None = None,
    ) -> None:
        self.parent = parent
        self.pool = pool
        self.limit = limit
        self._read = read
        self._answered = answered
        self._failed = failed
        self._dropped = dropped
        self._lock = threading.Lock()  # the backlog is shared with the pool threads
        self._waiting: OrderedDict[K, V] = OrderedDict()  # oldest first
        self._running: set[K] = set()
        self._queued = 0  # ops started in the pool that have not taken a request yet
        self._closed = False

    def ask(self, key: K, value: V) -> bool:
        """Queue a read of `key`, or move it to the front if it waits already; True when it is a new request."""
        dropped: list[K] = []
        with self._lock:
            if self._closed or key in self._running:
                return False
            new = key not in self._waiting
            self._waiting[key] = value
            self._waiting.move_to_end(key)
            while len(self._waiting) > self.limit:
                dropped.append(self._waiting.popitem(last=False)[0])
            # One op per waiting request at most: ops are interchangeable, so a backlog that was cleared or
            # trimmed reuses the ops already queued rather than piling up more.
            start = self._queued < len(self._waiting)
            if start:
                self._queued += 1
        if start:
            QueryOp(self.parent, self._serve_one, pool=self.pool).success(self._served).run_in_background()
        if self._dropped is not None:
            for key_dropped in dropped:
                self._dropped(key_dropped)
        return new

    def clear(self) -> None:
        """Forget the requests not started yet (the view moved on); reads already running still answer."""
        with self._lock:
            self._waiting.clear()

    def close(self) -> None:
        """Take no more requests and forget those waiting (the owner then waits for its pool)."""
        with self._lock:
            self._closed = True
            self._waiting.clear()

    def _serve_one(self) -> _Served[K, V, R] | None:
        """In a pool thread: read the newest waiting request (None when nothing is left)."""
        with self._lock:
            self._queued -= 1
            if self._closed or not self._waiting:
                return None
            key, value = self._waiting.popitem(last=True)
            self._running.add(key)
        try:
            return _Served(key, value, self._read(key, value), None)
        except Exception as error:  # noqa: BLE001 - one bad read must not lose the others: reported per key
            return _Served(key, value, None, error)
        finally:
            with self._lock:
                self._running.discard(key)

    def _served(self, served: _Served[K, V, R] | None) -> None:
        """In the GUI thread: hand the answer to its owner."""
        if served is None:
            return
        if served.error is not None:
            self._failed(served.key, served.value, served.error)
        else:
            self._answered(served.key, served.value, served.result)  # type: ignore[arg-type]
