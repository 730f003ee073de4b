"""File-system helpers below the store: OS file locks and staging folders.

Work is written to a locked staging folder, then renamed into place. A staging folder holds a
`.studio-staging` lock file for as long as its owner is alive (an OS file lock, released by the
kernel when the process dies). Folders whose lock can be taken belong to a job that crashed or was
killed, so they are swept when the store opens.

A lock says "this process is alive and working here", so a forked child never keeps its parent's:
every lock taken here is closed in the child right after a fork (see `_drop_inherited_locks`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sys
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

MARKER = ".studio-staging"

if sys.platform == "win32":  # pragma: no cover - Windows only (sys.platform: the form type checkers read)
    import msvcrt

    def _try_lock(handle: BinaryIO, shared: bool = False) -> bool:
        if shared:
            # msvcrt has no shared locks: readers do not lock on Windows, so there only exclusive
            # holders (training, export, delete) exclude each other.
            return True
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

else:
    import fcntl

    def _try_lock(handle: BinaryIO, shared: bool = False) -> bool:
        try:
            fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except OSError:
            return False


# Every lock handle this process holds, so that a forked child can let go of its copies.
_held: weakref.WeakSet[BinaryIO] = weakref.WeakSet()


def _held_lock(handle: BinaryIO) -> BinaryIO:
    _held.add(handle)
    return handle


def _drop_inherited_locks() -> None:
    """In a freshly forked child: close the inherited descriptors of the parent's locks.

    flock() locks belong to the open file, which a fork shares: a child that kept the descriptor
    would keep the parent's staging folder or model "alive" after the parent died, so nothing
    would ever sweep it. Closing a copy (never LOCK_UN, which would unlock the parent) is safe.
    """
    for handle in list(_held):
        with contextlib.suppress(OSError):
            handle.close()
    _held.clear()


if hasattr(os, "register_at_fork"):  # POSIX; spawned processes (Windows) inherit no descriptors
    os.register_at_fork(after_in_child=_drop_inherited_locks)


class StagingFolder:
    """A private folder under the home's staging area, locked while this object lives."""

    def __init__(self, staging_root: Path, prefix: str) -> None:
        staging_root.mkdir(parents=True, exist_ok=True)
        self.path = staging_root / f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.path.mkdir()
        self._lock = self._take_lock(self.path)

    @classmethod
    def adopt(cls, folder: Path) -> StagingFolder:
        """Mark an existing folder as in-flux (before deleting it): a crash then gets it swept."""
        staged = cls.__new__(cls)
        staged.path = folder
        staged._lock = cls._take_lock(folder)
        return staged

    @staticmethod
    def _take_lock(folder: Path) -> BinaryIO:
        handle = open(folder / MARKER, "wb")  # noqa: SIM115 - held for the folder's life
        if not _try_lock(handle):
            handle.close()
            raise RuntimeError(f"{folder} is in use by another Studio process")
        return _held_lock(handle)

    def abandon_change(self) -> None:
        """Undo adopt(): the folder stays as it was, permanent."""
        self.commit()

    def publish(self, destination: Path) -> Path:
        """Rename the folder to its final place (same file system, so atomic); keep the lock."""
        if destination.exists():
            raise FileExistsError(destination)
        os.replace(self.path, destination)
        self.path = destination
        return destination

    def commit(self) -> None:
        """The database row now points at the folder: drop the marker, it is permanent."""
        (self.path / MARKER).unlink(missing_ok=True)
        self._release()

    def discard(self) -> None:
        """Remove the folder and everything in it.

        It is first renamed aside (still marked and locked), so its name is free at once and nothing
        that opens a path in it by its old name (a job taking a model's use lock) can create a file in
        it while it is removed. Should the removal stop short, the renamed folder keeps its marker
        (removed last) and the next sweep finishes the job.
        """
        doomed = self.path
        with contextlib.suppress(OSError):  # renaming aside is best effort: removed in place otherwise
            doomed = self.path.rename(self.path.with_name(f".{self.path.name}.removing-{uuid.uuid4().hex[:8]}"))
        self._release()
        complete = True
        try:
            children = list(doomed.iterdir())
        except OSError:
            children = []  # gone already
        for child in children:
            if child.name == MARKER:
                continue
            try:
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
            except OSError:
                complete = False
        if complete:
            with contextlib.suppress(OSError):
                (doomed / MARKER).unlink(missing_ok=True)
                doomed.rmdir()

    def _release(self) -> None:
        if not self._lock.closed:
            self._lock.close()


def hold_lock(path: Path) -> BinaryIO | None:
    """Take an exclusive OS lock on `path` (created if needed); None when another process holds it."""
    handle = open(path, "ab")  # noqa: SIM115 - the caller keeps it open to keep the lock
    if _try_lock(handle):
        return _held_lock(handle)
    handle.close()
    return None


def hold_shared_lock(path: Path, create: bool = True) -> BinaryIO | None:
    """Take a shared OS lock on `path` (created if needed and `create`); None while someone holds it exclusively.

    Any number of processes may share it; an exclusive `hold_lock` waits for none of them and fails
    while one holds it. In a read-only folder an existing file is locked through a read-only handle.
    Raises OSError when the file can be neither created nor opened: FileNotFoundError when it does not
    exist and `create` is False, or its folder is gone; PermissionError or EROFS when it does not exist
    and the folder is read-only.
    """
    handle: BinaryIO
    try:
        handle = open(path, "ab" if create else "rb+")  # noqa: SIM115 - the caller keeps it open to keep the lock
    except OSError as error:
        if not isinstance(error, PermissionError) and error.errno != errno.EROFS:
            raise
        try:
            handle = open(path, "rb")  # noqa: SIM115 - flock() needs no write access
        except FileNotFoundError:
            if create:
                raise error from None  # it could not be made: the folder is read-only
            raise
    if _try_lock(handle, shared=True):
        return _held_lock(handle)
    handle.close()
    return None


def is_abandoned(folder: Path) -> bool:
    """True for a staging folder whose owner is gone (its marker exists and is unlocked)."""
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        with open(marker, "rb+") as handle:
            return _try_lock(handle)
    except OSError:
        return False


PENDING_FILE = "pending.json"  # in a staging folder: files its job writes elsewhere before their rows
_MAX_PENDING_BYTES = 1 << 20  # a journal lists one batch of paths: far below this


def partial_path(path: Path) -> Path:
    """Where a file is written before it is renamed to `path` (hidden, beside it, on the same disk)."""
    return path.with_name(f".{path.name}.partial")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A handle to write `path` through: a partial file beside it, fsynced and renamed when the block ends.

    An exception in the block (or in the fsync) removes the partial file and leaves `path` as it was.
    """
    partial = partial_path(path)
    try:
        with open(partial, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_pending(staging: StagingFolder, paths: Sequence[str]) -> None:
    """Record, before writing them, the files a job will write outside its staging folder.

    Were the job to die before committing their rows, the next sweep hands the list to `on_pending`,
    which removes the files no row points at.
    """
    journal = staging.path / PENDING_FILE
    with open(journal, "w", encoding="utf-8") as handle:
        json.dump(list(paths), handle)
        handle.flush()
        os.fsync(handle.fileno())


def _pending(folder: Path) -> list[str]:
    journal = folder / PENDING_FILE
    try:
        if journal.stat().st_size > _MAX_PENDING_BYTES:
            return []
        listed = json.loads(journal.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # no journal, or one cut short by the crash: it listed nothing written yet
    return [entry for entry in listed if isinstance(entry, str)] if isinstance(listed, list) else []


def sweep_abandoned(
    parents: Iterable[Path],
    is_referenced: Callable[[Path], bool],
    on_pending: Callable[[list[str]], None] | None = None,
) -> list[Path]:
    """Remove staging folders, and published-but-uncommitted folders, left by dead jobs.

    A folder whose row was committed just before its owner died (`is_referenced`) is complete: it
    only loses its marker. A dead job's journal of files written elsewhere goes to `on_pending` first.
    """
    removed: list[Path] = []
    for parent in parents:
        if not parent.is_dir():
            continue
        for folder in parent.iterdir():
            if not folder.is_dir() or folder.is_symlink() or not is_abandoned(folder):
                continue
            if is_referenced(folder):
                (folder / MARKER).unlink(missing_ok=True)
            else:
                pending = _pending(folder)
                if pending and on_pending is not None:
                    on_pending(pending)
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed
