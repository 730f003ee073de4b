"""Who is using a model right now, as OS file locks in its folder, so that a model in use cannot be deleted.

Every job that reads a model (generating, exporting, training) holds a shared lock on `.use.lock` in
the model's folder for as long as it runs; deleting takes it exclusively, so a delete is refused while
any job runs, and a job refuses to start while a delete runs. Training and export also hold their own
exclusive locks (`.training.lock`, `.export.lock`), which tell a refused delete what is going on.
The kernel drops every lock of a process that dies, so a killed job never blocks anything.

A new model has no folder until its first checkpoint: a trainer reserves the name with
`.NAME.lock` in the models folder first, so a second `train` of the same new name is refused at once.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import select

from studio.engine.runs import LOCK_FILE as TRAINING_LOCK
from studio.errors import NotFoundError, StudioError
from studio.files import hold_lock, hold_shared_lock
from studio.store.database import BUSY_RETRY_SECONDS, BUSY_TIMEOUT_MS, Store
from studio.store.tables import Model

USE_LOCK = ".use.lock"
EXPORT_LOCK = ".export.lock"
# A delete holds the use lock for its transaction, retried while the database is busy (up to
# BUSY_RETRY_SECONDS, the last try itself waiting up to BUSY_TIMEOUT_MS), then a folder removal: a
# job waits that long and a margin before it says the delete is still going on.
DELETE_WAIT_SECONDS = BUSY_RETRY_SECONDS + BUSY_TIMEOUT_MS / 1000 + 10.0


class ModelHold:
    """A job's claim on a model: the shared use lock, and any exclusive locks of its own."""

    def __init__(self, name: str, model_id: int | None, folder: Path, locks: list[BinaryIO]) -> None:
        self.name, self.model_id, self.folder = name, model_id, folder
        self._locks = locks

    def add_exclusive(self, lock_name: str, refusal: str) -> None:
        """Also hold `lock_name` in the folder exclusively, or release everything and refuse with `refusal`."""
        lock = hold_lock(self.folder / lock_name)
        if lock is None:
            self.close()
            raise StudioError(refusal)
        self._locks.append(lock)

    def close(self) -> None:
        """Let go of every lock (idempotent)."""
        for lock in self._locks:
            lock.close()
        self._locks.clear()

    def __enter__(self) -> ModelHold:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _row(store: Store, name: str) -> tuple[int, Path] | None:
    with store.sessions() as session:
        row = session.execute(select(Model.id, Model.folder).where(Model.name == name)).first()
    return None if row is None else (row[0], store.home.absolute(row[1]))


def _shared_use_lock(folder: Path, name: str, read_only_store: bool) -> BinaryIO | None:
    """The shared use lock, waiting out a delete in progress; None where the home is read-only.

    Only the first try may create the lock file (a model no job has used yet). While a delete holds
    it, the file exists; once the delete has renamed the folder aside the file is gone, and a job must
    never create a fresh one there (it would take a lock at once and keep the folder from going).
    """
    deadline = time.monotonic() + DELETE_WAIT_SECONDS
    create = True
    while True:
        try:
            lock = hold_shared_lock(folder / USE_LOCK, create=create)
        except FileNotFoundError:
            raise NotFoundError(f"model '{name}' was deleted") from None
        except OSError as error:
            if not folder.is_dir():
                raise NotFoundError(f"model '{name}' was deleted") from None
            if error.errno == errno.EROFS or (read_only_store and error.errno in (errno.EACCES, errno.EPERM)):
                # A read-only home (no lock file can be made): nothing can delete the model there.
                return None
            raise  # anything else is not the environment's doing: the error boundary explains it
        if lock is not None:
            if os.fstat(lock.fileno()).st_nlink == 0:  # unlinked by a delete after we opened it
                lock.close()
                raise NotFoundError(f"model '{name}' was deleted")
            return lock
        create = False
        if time.monotonic() > deadline:
            raise StudioError(f"model '{name}' is being deleted by another process")
        time.sleep(0.05)


def hold_model(store: Store, name: str) -> ModelHold:
    """Claim an existing model for a job (shared with other jobs); NotFoundError if it is gone or going."""
    found = _row(store, name)
    if found is None:
        raise NotFoundError(f"no model named '{name}' (see `studio models list`)")
    model_id, folder = found
    lock = _shared_use_lock(folder, name, store.read_only)
    # Looked up again under the lock: a delete that finished meanwhile removed the row first.
    if _row(store, name) != found:
        if lock is not None:
            lock.close()
        raise NotFoundError(f"model '{name}' was deleted")
    return ModelHold(name, model_id, folder, [lock] if lock is not None else [])


def hold_new_folder(name: str, folder: Path) -> ModelHold:
    """Claim a model folder just published, before its row exists (so nothing can delete it yet)."""
    lock = hold_shared_lock(folder / USE_LOCK)
    if lock is None:  # only a delete takes it exclusively, and no row names this folder yet
        raise StudioError(f"model '{name}' is being deleted by another process")
    return ModelHold(name, None, folder, [lock])


def reserve_name(store: Store, name: str) -> BinaryIO:
    """Reserve a new model's name for this trainer; refuses at once when another process holds it."""
    lock = hold_lock(store.home.models / f".{name}.lock")
    if lock is None:
        raise StudioError(
            f"model '{name}' is being trained by another process: wait for it to finish or pick another name"
        )
    return lock


def _busy_reason(folder: Path, name: str) -> str:
    for lock_name, doing in ((TRAINING_LOCK, "trained"), (EXPORT_LOCK, "exported")):
        probe = hold_lock(folder / lock_name)
        if probe is None:
            return f"model '{name}' is being {doing} by another process: wait for it to finish, then delete it"
        probe.close()
    return (
        f"model '{name}' is in use by another process or job (generating images): wait for it to finish, then delete it"
    )


@contextmanager
def claim_for_delete(folder: Path, name: str) -> Iterator[None]:
    """Hold every lock of a model's folder exclusively while it is deleted; refuses while any job uses it."""
    if not folder.is_dir():
        yield  # nothing on disk to protect: only the row goes
        return
    locks: list[BinaryIO] = []
    try:
        # The use lock first: every job takes its shared half before its own lock, so a job starting
        # now waits for this delete instead of being refused for the wrong reason.
        for lock_name in (USE_LOCK, TRAINING_LOCK, EXPORT_LOCK):
            lock = hold_lock(folder / lock_name)
            if lock is None:
                break
            locks.append(lock)
        else:
            yield
            return
    finally:
        for lock in locks:
            lock.close()
    raise StudioError(_busy_reason(folder, name))  # asked after letting go: our own locks would answer
