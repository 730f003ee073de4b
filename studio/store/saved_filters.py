"""Saved gallery filters: a filter (and its sort) kept under a name, to apply again with one click.

A saved filter is the `GalleryFilter`'s fields as JSON (dates as ISO text). The transient parts of a
filter are never saved: the trash view and an id list (a "more like this" result belongs to a moment).
Reading one back checks every value again, so a row edited by hand cannot smuggle in a bad filter.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from studio.errors import NotFoundError, StudioError
from studio.store.database import Store, retry_when_busy
from studio.store.gallery_values import SORTS, GalleryFilter, name_key, validate_name
from studio.store.tables import SavedFilter, utcnow

# The fields a saved filter keeps, and their kinds.
_TEXT = ("model", "family", "flag", "tag", "collection", "backend", "provider", "operation", "class_name", "search")
_INT = ("min_rating", "seed")
_TIME = ("since", "until")
_BOOL = ("memorised",)


@dataclass(frozen=True)
class SavedFilterEntry:
    """A saved filter by name: the filter and the sort it was saved with."""

    name: str
    filters: GalleryFilter
    sort: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "name": self.name,
            "filters": self.filters.describe(),
            "sort": self.sort,
            "created_at": self.created_at.isoformat(timespec="seconds"),
        }


def filter_to_json(filters: GalleryFilter) -> dict[str, Any]:
    """The savable fields of a filter that are set, as JSON values."""
    saved: dict[str, Any] = {}
    for name in (*_TEXT, *_INT, *_TIME, *_BOOL):
        value = getattr(filters, name)
        if value is None or value is False or value == "":
            continue
        saved[name] = value.isoformat() if isinstance(value, datetime) else value
    return saved


def filter_from_json(name: str, saved: Any) -> GalleryFilter:
    """A GalleryFilter from its saved JSON (unknown keys are ignored); a StudioError naming the filter when
    a value is malformed."""
    if not isinstance(saved, dict):
        raise StudioError(f"saved filter '{name}' is malformed: not an object")
    values: dict[str, Any] = {}
    try:
        for key in _TEXT:
            if saved.get(key) is not None:
                if not isinstance(saved[key], str):
                    raise TypeError(key)
                values[key] = saved[key]
        for key in _INT:
            if saved.get(key) is not None:
                if isinstance(saved[key], bool) or not isinstance(saved[key], int):
                    raise TypeError(key)
                values[key] = saved[key]
        for key in _TIME:
            if saved.get(key) is not None:
                values[key] = datetime.fromisoformat(str(saved[key]))
        for key in _BOOL:
            values[key] = saved.get(key) is True
        return GalleryFilter(**values)
    except (TypeError, ValueError) as error:
        raise StudioError(f"saved filter '{name}' is malformed ({error})") from None
    except StudioError as error:
        raise StudioError(f"saved filter '{name}' is malformed: {error}") from None


class SavedFilterRepository:
    """Saves, lists, reads and deletes named gallery filters."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _entry(self, row: SavedFilter) -> SavedFilterEntry:
        sort = row.sort if row.sort in SORTS else "newest"
        return SavedFilterEntry(row.name, filter_from_json(row.name, row.filters), sort, row.created_at)

    def list(self) -> builtins.list[SavedFilterEntry]:
        """Every saved filter, by name (a malformed one is left out: `get` says what is wrong with it)."""
        with self.store.sessions() as session:
            rows = list(session.scalars(select(SavedFilter).order_by(SavedFilter.key)))
        entries = []
        for row in rows:
            try:
                entries.append(self._entry(row))
            except StudioError:
                continue
        return entries

    def names(self) -> builtins.list[str]:
        """The names of every saved filter, malformed or not, by name."""
        with self.store.sessions() as session:
            return list(session.scalars(select(SavedFilter.name).order_by(SavedFilter.key)))

    def get(self, name: str) -> SavedFilterEntry:
        """One saved filter by name (any case), or a NotFoundError."""
        with self.store.sessions() as session:
            row = session.scalar(select(SavedFilter).where(SavedFilter.key == name_key(name.strip())))
            if row is None:
                raise NotFoundError(f"no saved filter '{name.strip()}'")
            return self._entry(row)

    @retry_when_busy
    def save(self, name: str, filters: GalleryFilter, sort: str = "newest", replace: bool = False) -> SavedFilterEntry:
        """Keep `filters` (and `sort`) under `name`; a StudioError when the name is taken unless `replace`."""
        name = validate_name(name, "filter name")
        if sort not in SORTS:
            raise StudioError(f"invalid sort '{sort}': choose {', '.join(SORTS)}")
        if self.store.read_only:
            raise StudioError(f"the database is read-only: {self.store.read_only_reason}")
        saved = filter_to_json(filters)
        if not saved:
            raise StudioError("nothing to save: the filter shows every item")
        try:
            with self.store.session() as session:
                row = session.scalar(select(SavedFilter).where(SavedFilter.key == name_key(name)))
                if row is not None and not replace:
                    raise StudioError(f"a saved filter named '{row.name}' exists already")
                if row is None:
                    row = SavedFilter(name=name, key=name_key(name), created_at=utcnow())
                    session.add(row)
                row.name, row.filters, row.sort = name, saved, sort
                session.flush()
                return SavedFilterEntry(name, filter_from_json(name, saved), sort, row.created_at)
        except IntegrityError:  # saved by another process between the check and the insert
            raise StudioError(f"a saved filter named '{name}' exists already") from None

    @retry_when_busy
    def delete(self, name: str) -> None:
        """Forget a saved filter (the items it showed are untouched)."""
        if self.store.read_only:
            raise StudioError(f"the database is read-only: {self.store.read_only_reason}")
        with self.store.session() as session:
            row = session.scalar(select(SavedFilter).where(SavedFilter.key == name_key(name.strip())))
            if row is None:
                raise NotFoundError(f"no saved filter '{name.strip()}'")
            session.delete(row)
