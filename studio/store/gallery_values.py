"""The gallery's values and checks: entries, filters, pages, bulk results, names, ratings and cursors.

Plain data, no queries: the repository (`studio.store.gallery`) and its callers share them.
"""

from __future__ import annotations

import base64
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.errors import StudioError
from studio.limits import ITEM_ID, PAGE, RATING_VALUES
from studio.store.database import Store
from studio.store.tables import FLAG_VALUES, GalleryItem

SORTS = ("newest", "oldest", "rating")
MAX_PAGE = PAGE.high
MAX_NAME = 64  # tags and collections
MAX_NOTE = 10_000
MAX_SEARCH = 200  # characters of a text search
TRASH_FOLDER = "trash"
# A tag or collection on at least this many items, and on at least 1/WALK_FRACTION of the gallery, is
# tested row by row along the sort order rather than gathered and sorted (see _links_to_walk).
WALK_THRESHOLD = 2_000
WALK_FRACTION = 200
THUMBNAILS_FOLDER = ".thumbs"


def thumbnail_path(store: Store, item_id: int) -> Path:
    """gallery/.thumbs/<id // 1000>/<id>.png: a thousand files per folder at most."""
    return store.home.gallery / THUMBNAILS_FOLDER / str(item_id // 1000) / f"{item_id}.png"


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
    note: str = ""
    tags: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()
    deleted: bool = False
    class_name: str | None = None  # the class a conditional model made it as
    origin: dict[str, Any] | None = None  # an imported image's tool and metadata (`gallery import`)

    @classmethod
    def of(cls, row: GalleryItem, tags: Sequence[str] = (), collections: Sequence[str] = ()) -> GalleryEntry:
        """From an ORM row (and its tag and collection names, when fetched)."""
        return cls(
            row.id,
            row.path,
            row.model_name,
            row.family,
            row.operation,
            row.seed,
            row.rating,
            row.flag,
            row.width,
            row.height,
            row.backend,
            row.provider,
            dict(row.params or {}),
            row.created_at,
            row.note or "",
            tuple(tags),
            tuple(collections),
            row.deleted_at is not None,
            row.class_name,
            dict(row.origin) if isinstance(row.origin, dict) else None,
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the CLI prints."""
        return {
            "id": self.id,
            "path": self.path,
            "model": self.model,
            "family": self.family,
            "operation": self.operation,
            "seed": self.seed,
            "class": self.class_name,
            "rating": self.rating,
            "flag": self.flag,
            "width": self.width,
            "height": self.height,
            "backend": self.backend,
            "provider": self.provider,
            "params": self.params,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "note": self.note,
            "tags": list(self.tags),
            "collections": list(self.collections),
            "deleted": self.deleted,
            "origin": self.origin,
        }


@dataclass(frozen=True)
class GalleryFilter:
    """What to show: every field is optional; set fields combine with AND."""

    model: str | None = None
    family: str | None = None
    min_rating: int | None = None
    flag: str | None = None
    tag: str | None = None
    collection: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    backend: str | None = None
    provider: str | None = None
    seed: int | None = None
    operation: str | None = None
    class_name: str | None = None  # items a conditional model made as this class
    trash: bool = False  # True: only deleted items (the trash view)
    ids: tuple[int, ...] | None = None  # only these items (e.g. "more like this": an item's nearest)
    memorised: bool = False  # only items closer to a training image than its encoder's memorised rule
    search: str | None = None  # words that must each occur in the note, a tag, the model or the settings

    def __post_init__(self) -> None:
        if self.min_rating is not None:
            validate_rating(self.min_rating)
        if self.flag is not None:
            validate_flag(self.flag)
        if self.since and self.until and self.since >= self.until:
            raise StudioError("--since must be before --until")
        if self.search is not None:
            validate_search(self.search)

    def describe(self) -> dict[str, Any]:
        """The set fields, for manifests and JSON output."""
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in self.__dict__.items()
            if v not in (None, False)
        }


@dataclass(frozen=True)
class GalleryPage:
    """One page of items, and the cursor of the next page (None at the end)."""

    items: list[GalleryEntry]
    next_cursor: str | None
    sort: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"items": [item.as_dict() for item in self.items], "next_cursor": self.next_cursor, "sort": self.sort}


@dataclass
class BulkResult:
    """What a bulk operation changed."""

    action: str
    ids: list[int]
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"action": self.action, "ids": self.ids, "count": len(self.ids), **self.details}


def validate_rating(stars: Any) -> int:
    """0 to 5 stars (an int), else a StudioError."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 0 <= stars <= 5:
        raise StudioError(f"invalid rating {stars!r}: choose 0 to 5 stars")
    return stars


def validate_flag(flag: str) -> str:
    """One of none, pick, reject."""
    if flag not in FLAG_VALUES:
        raise StudioError(f"invalid flag {flag!r}: choose {', '.join(FLAG_VALUES)}")
    return flag


def validate_name(name: str, what: str = "tag") -> str:
    """A tag or collection name: 1-64 printable characters, trimmed, NFC-normalised."""
    if not isinstance(name, str):
        raise StudioError(f"invalid {what}: expected text")
    cleaned = unicodedata.normalize("NFC", name).strip()
    if not cleaned:
        raise StudioError(f"invalid {what}: it is empty")
    if len(cleaned) > MAX_NAME:
        raise StudioError(f"invalid {what}: {len(cleaned)} characters, at most {MAX_NAME}")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in cleaned):
        raise StudioError(f"invalid {what} {cleaned[:20]!r}: control characters are not allowed")
    return cleaned


def validate_search(text: str) -> str:
    """Search text: at most MAX_SEARCH printable characters."""
    if len(text) > MAX_SEARCH:
        raise StudioError(f"the search is {len(text)} characters: at most {MAX_SEARCH}")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise StudioError("the search contains control characters")
    return text


def name_key(name: str) -> str:
    return name.casefold()


def encode_cursor(values: Sequence[Any]) -> str:
    """An opaque page cursor from the last row's sort key."""
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> list[Any]:
    """The sort key a cursor carries, or a StudioError."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
        if sort == "rating":
            rating, created, item = values
            return [RATING_VALUES.check(int(rating)), datetime.fromisoformat(created), ITEM_ID.check(int(item))]
        created, item = values
        return [datetime.fromisoformat(created), ITEM_ID.check(int(item))]
    except (ValueError, TypeError, json.JSONDecodeError, UnicodeDecodeError, StudioError):
        raise StudioError(f"invalid cursor {cursor[:40]!r} for sort '{sort}': use the next_cursor of a page") from None
