"""Collections as things of their own: list with counts, create empty, rename, delete (the items stay).

Adding items to a collection and taking them out is `GalleryRepository.collect` / `uncollect`; filtering
by one is `GalleryFilter(collection=...)`. Names compare case-insensitively (`key`), as tags do.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.exc import IntegrityError

from studio.errors import NotFoundError, StudioError
from studio.store.database import Store, retry_when_busy
from studio.store.gallery_values import name_key, validate_name
from studio.store.tables import Collection, GalleryItem, GalleryItemCollection, utcnow


@dataclass(frozen=True)
class CollectionSummary:
    """A collection and how many live items it holds."""

    name: str
    count: int
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "count": self.count, "created_at": self.created_at.isoformat(timespec="seconds")}


class CollectionRepository:
    """Lists, creates, renames and deletes gallery collections."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _writable(self) -> None:
        if self.store.read_only:
            raise StudioError(f"the database is read-only: {self.store.read_only_reason}")

    def list(self) -> builtins.list[CollectionSummary]:
        """Every collection with its number of live items, by name."""
        query = (
            select(Collection.name, Collection.created_at, func.count(GalleryItem.id))
            .outerjoin(GalleryItemCollection, GalleryItemCollection.collection_id == Collection.id)
            .outerjoin(
                GalleryItem, and_(GalleryItem.id == GalleryItemCollection.item_id, GalleryItem.deleted_at.is_(None))
            )
            .group_by(Collection.id, Collection.name, Collection.created_at)
            .order_by(Collection.key)
        )
        with self.store.sessions() as session:
            return [CollectionSummary(name, int(count), created) for name, created, count in session.execute(query)]

    @retry_when_busy
    def create(self, name: str) -> CollectionSummary:
        """A new, empty collection; a StudioError when one of that name (in any case) exists."""
        name = validate_name(name, "collection")
        self._writable()
        try:
            with self.store.session() as session:
                if session.scalar(select(Collection.name).where(Collection.key == name_key(name))) is not None:
                    raise StudioError(f"a collection named '{name}' exists already")
                row = Collection(name=name, key=name_key(name), created_at=utcnow())
                session.add(row)
                session.flush()
                return CollectionSummary(row.name, 0, row.created_at)
        except IntegrityError:  # made by another process between the check and the insert
            raise StudioError(f"a collection named '{name}' exists already") from None

    @retry_when_busy
    def rename(self, old: str, new: str) -> CollectionSummary:
        """Give a collection another name (a change of case alone is allowed); its items stay in it."""
        old = validate_name(old, "collection")
        new = validate_name(new, "collection")
        self._writable()
        try:
            with self.store.session() as session:
                row = session.scalar(select(Collection).where(Collection.key == name_key(old)))
                if row is None:
                    raise NotFoundError(f"no collection '{old}'")
                clash = session.scalar(select(Collection.id).where(Collection.key == name_key(new)))
                if clash is not None and clash != row.id:
                    raise StudioError(f"a collection named '{new}' exists already")
                row.name, row.key = new, name_key(new)
                count = session.scalar(
                    select(func.count(GalleryItem.id))
                    .join(GalleryItemCollection, GalleryItemCollection.item_id == GalleryItem.id)
                    .where(GalleryItemCollection.collection_id == row.id, GalleryItem.deleted_at.is_(None))
                )
                return CollectionSummary(new, int(count or 0), row.created_at)
        except IntegrityError:
            raise StudioError(f"a collection named '{new}' exists already") from None

    @retry_when_busy
    def delete(self, name: str) -> int:
        """Delete a collection; its items stay in the gallery. Returns how many items it held."""
        name = validate_name(name, "collection")
        self._writable()
        with self.store.session() as session:
            row = session.scalar(select(Collection).where(Collection.key == name_key(name)))
            if row is None:
                raise NotFoundError(f"no collection '{name}'")
            held = session.scalar(
                select(func.count())
                .select_from(GalleryItemCollection)
                .where(GalleryItemCollection.collection_id == row.id)
            )
            # The links go explicitly: SQLite enforces ON DELETE CASCADE only with its foreign keys pragma on.
            session.execute(delete(GalleryItemCollection).where(GalleryItemCollection.collection_id == row.id))
            session.delete(row)
            return int(held or 0)
