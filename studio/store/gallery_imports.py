"""Gallery queries of imported items (`gallery import`): which files the gallery already holds.

Kept apart from `gallery.py` (the general repository), which is near its size limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from studio.store.database import Store
from studio.store.tables import GalleryItem

_BLOCK = 500  # hashes per IN (...) query: well under SQLite's bound-parameter limit


def items_by_hash(store: Store, hashes: Iterable[str]) -> dict[str, int]:
    """content hash -> the id of the item holding that file (trashed items count: they come back)."""
    wanted = sorted(set(hashes))
    found: dict[str, int] = {}
    with store.sessions() as session:
        for start in range(0, len(wanted), _BLOCK):
            rows = session.execute(
                select(GalleryItem.content_hash, GalleryItem.id).where(
                    GalleryItem.content_hash.in_(wanted[start : start + _BLOCK])
                )
            )
            for digest, item_id in rows:
                found.setdefault(str(digest), int(item_id))
    return found


def origin_of(store: Store, item_id: int) -> dict[str, Any] | None:
    """An item's `origin` (the tool and metadata of an imported image), or None for Studio's own."""
    with store.sessions() as session:
        value = session.scalar(select(GalleryItem.origin).where(GalleryItem.id == item_id))
    return dict(value) if isinstance(value, dict) else None
