"""A dataset or model row and its folder, deleted together so that a crash never loses one half alone."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from studio.files import StagingFolder
from studio.store.database import Store, retry_when_busy
from studio.store.tables import Dataset, Model


@retry_when_busy  # safe to run again: a failed attempt puts the folder back as it was
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
