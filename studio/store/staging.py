"""Staging folders: work is written to a locked folder, then renamed into place.

A staging folder holds a `.studio-staging` lock file for as long as its owner is alive
(an OS file lock, released by the kernel when the process dies). Folders whose lock can be
taken belong to a job that crashed or was killed, so they are swept when the store opens.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import select

from studio.store.models import Dataset, Model

if TYPE_CHECKING:
    from studio.store.database import Store

MARKER = ".studio-staging"

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: BinaryIO) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

else:
    import fcntl

    def _try_lock(handle: BinaryIO) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False


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
        return handle

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
        """Remove the folder and everything in it."""
        self._release()
        shutil.rmtree(self.path, ignore_errors=True)

    def _release(self) -> None:
        if not self._lock.closed:
            self._lock.close()


def delete_row_and_folder(store: Store, folder: Path, row_type: type[Dataset | Model], name: str) -> None:
    """Delete the named dataset or model row (cascading) and its folder; a crash loses neither half alone.

    The folder is marked and locked first: dying before the commit leaves it in place (its row
    still exists), dying after leaves an unreferenced marked folder that the next open sweeps.
    """
    staged = StagingFolder.adopt(folder) if folder.is_dir() else None
    try:
        with store.session() as session:
            row = session.scalar(select(row_type).where(row_type.name == name))
            if row is not None:
                session.delete(row)
    except BaseException:
        if staged is not None:
            staged.abandon_change()
        raise
    if staged is not None:
        staged.discard()


def hold_lock(path: Path) -> BinaryIO | None:
    """Take an exclusive OS lock on `path` (created if needed); None when another process holds it."""
    handle = open(path, "ab")  # noqa: SIM115 - the caller keeps it open to keep the lock
    if _try_lock(handle):
        return handle
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


def sweep_abandoned(store: Store) -> list[Path]:
    """Remove staging folders, and published-but-uncommitted folders, left by dead jobs."""
    home = store.home
    with store.session() as session:
        referenced = set(session.scalars(select(Dataset.folder))) | set(session.scalars(select(Model.folder)))
    removed: list[Path] = []
    for parent in (home.staging, home.datasets, home.models):
        if not parent.is_dir():
            continue
        for folder in parent.iterdir():
            if not folder.is_dir() or folder.is_symlink() or not is_abandoned(folder):
                continue
            if home.relative(folder) in referenced:
                # The row was committed just before the owner died: the folder is complete.
                (folder / MARKER).unlink(missing_ok=True)
            else:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed
