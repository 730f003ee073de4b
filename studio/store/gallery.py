"""Gallery items: the repository that generation writes to and browsing reads from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from studio.errors import StudioError
from studio.store.database import Store
from studio.store.models import FLAG_VALUES, GalleryItem, GalleryLineage


@dataclass(frozen=True)
class GalleryEntry:
    """A gallery row as plain data (safe to hand across threads)."""

    id: int
    path: str
    model: str
    family: str
    operation: str
    seed: int | None
    rating: int
    flag: str
    width: int
    height: int
    backend: str
    provider: str | None
    params: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: GalleryItem) -> GalleryEntry:
        """From an ORM row."""
        return cls(row.id, row.path, row.model_name, row.family, row.operation, row.seed, row.rating,
                   row.flag, row.width, row.height, row.backend, row.provider, dict(row.params or {}),
                   row.created_at)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the CLI prints."""
        return {
            "id": self.id, "path": self.path, "model": self.model, "family": self.family,
            "operation": self.operation, "seed": self.seed, "rating": self.rating, "flag": self.flag,
            "width": self.width, "height": self.height, "backend": self.backend, "provider": self.provider,
            "params": self.params, "created_at": self.created_at.isoformat(timespec="seconds"),
        }


class GalleryRepository:
    """Adds and lists gallery items; curation (tags, collections, trash) builds on this."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        path: str,
        model_name: str,
        family: str,
        width: int,
        height: int,
        *,
        model_id: int | None = None,
        seed: int | None = None,
        operation: str = "sample",
        params: dict[str, Any] | None = None,
        backend: str = "torch",
        provider: str | None = None,
        parents: list[int | tuple[int, str]] | None = None,
    ) -> GalleryEntry:
        """Record an image file that already exists under the home's gallery folder."""
        return self.add_many([{
            "path": path, "model_name": model_name, "family": family, "width": width, "height": height,
            "model_id": model_id, "seed": seed, "operation": operation, "params": params, "backend": backend,
            "provider": provider, "parents": parents,
        }])[0]

    def add_many(self, items: list[dict[str, Any]]) -> list[GalleryEntry]:
        """Record several existing image files in one transaction (keys as `add`'s arguments).

        `parents` lists parent item ids, or (id, role) pairs such as (12, "from") for lineage.
        """
        for item in items:
            if not self.store.home.absolute(item["path"]).is_file():
                raise StudioError(f"gallery file missing: {item['path']} (files are written before their rows)")
        with self.store.session() as session:
            rows = []
            for item in items:
                fields = {k: v for k, v in item.items() if k != "parents"}
                fields["params"] = fields.get("params") or {}
                row = GalleryItem(**fields)
                session.add(row)
                session.flush()
                for parent in item.get("parents") or []:
                    parent_id, role = parent if isinstance(parent, tuple) else (parent, "source")
                    session.add(GalleryLineage(child_id=row.id, parent_id=parent_id, role=role))
                rows.append(row)
            session.flush()
            return [GalleryEntry.of(row) for row in rows]

    def get(self, item_id: int) -> GalleryEntry:
        """One item by id, or a StudioError naming the id."""
        with self.store.sessions() as session:
            row = session.get(GalleryItem, item_id)
            if row is None:
                raise StudioError(f"no gallery item {item_id}")
            return GalleryEntry.of(row)

    def parents(self, item_id: int) -> list[tuple[int, str]]:
        """The (parent id, role) pairs of an item's lineage."""
        with self.store.sessions() as session:
            rows = session.scalars(select(GalleryLineage).where(GalleryLineage.child_id == item_id))
            return [(row.parent_id, row.role) for row in rows]

    def list(self, limit: int = 50, before_id: int | None = None) -> list[GalleryEntry]:
        """Newest first, `limit` at a time; pass the last id seen as before_id for the next page."""
        if not 1 <= limit <= 10_000:
            raise StudioError(f"invalid limit {limit}: choose 1 to 10000")
        query = select(GalleryItem).order_by(GalleryItem.created_at.desc(), GalleryItem.id.desc()).limit(limit)
        with self.store.sessions() as session:
            if before_id is not None:
                anchor = session.get(GalleryItem, before_id)
                if anchor is None:
                    raise StudioError(f"no gallery item {before_id}")
                query = query.where(
                    (GalleryItem.created_at < anchor.created_at)
                    | ((GalleryItem.created_at == anchor.created_at) & (GalleryItem.id < anchor.id))
                )
            return [GalleryEntry.of(row) for row in session.scalars(query)]

    @staticmethod
    def validate_flag(flag: str) -> str:
        """One of none, pick, reject."""
        if flag not in FLAG_VALUES:
            raise StudioError(f"invalid flag {flag!r}: choose {', '.join(FLAG_VALUES)}")
        return flag
