"""The gallery: items generation writes, and the curation users do on them (ratings, flags, tags,
collections, notes, trash), with filtered, keyset-paginated queries and facet counts.

Every page query is `filters + ORDER BY sort key + LIMIT` on an index that leads with the filter or
the sort, and pages continue from a cursor (the last row's sort key), never an OFFSET, so page 1,000
costs what page 1 costs. Deleted items keep their row, their file moves to `trash/`, and undelete
moves it back, until the trash is emptied.
"""

from __future__ import annotations

import builtins
import os
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVarTuple

from sqlalchemy import Insert, Select, and_, delete, exists, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from studio.errors import NotFoundError, StudioError
from studio.store.database import Store, retry_when_busy
from studio.store.gallery_search import search_condition
from studio.store.gallery_values import (
    MAX_NOTE,
    MAX_PAGE,
    SORTS,
    TRASH_FOLDER,
    WALK_FRACTION,
    WALK_THRESHOLD,
    BulkResult,
    GalleryEntry,
    GalleryFilter,
    GalleryPage,
    decode_cursor,
    encode_cursor,
    name_key,
    thumbnail_path,
    validate_flag,
    validate_name,
    validate_rating,
)
from studio.store.tables import (
    Collection,
    Embedding,
    Encoder,
    GalleryItem,
    GalleryItemCollection,
    GalleryItemTag,
    GalleryLineage,
    Tag,
    utcnow,
)

_Columns = TypeVarTuple("_Columns")  # the selected columns of a query that `_filtered` narrows

# Callers import the values from here too: the repository and its values are one interface.
__all__ = [
    "MAX_NOTE",
    "MAX_PAGE",
    "SORTS",
    "TRASH_FOLDER",
    "BulkResult",
    "GalleryEntry",
    "GalleryFilter",
    "GalleryPage",
    "GalleryRepository",
    "thumbnail_path",
    "validate_flag",
    "validate_name",
    "validate_rating",
]


def _insert_new(session: Session, table: type[Any], keys: builtins.list[str]) -> Insert:
    """An INSERT that skips rows whose `keys` already exist, atomically (no select-then-insert race).

    Two processes creating the same tag at once both succeed: the second insert does nothing and
    both then read the one row. SQLite and PostgreSQL spell it `ON CONFLICT (...) DO NOTHING`.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
    raise StudioError(f"the {dialect} database is not supported")  # pragma: no cover - SQLite or PostgreSQL only


class GalleryRepository:
    """Adds, queries and curates gallery items."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- adding ------------------------------------------------------------------------

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
        return self.add_many(
            [
                {
                    "path": path,
                    "model_name": model_name,
                    "family": family,
                    "width": width,
                    "height": height,
                    "model_id": model_id,
                    "seed": seed,
                    "operation": operation,
                    "params": params,
                    "backend": backend,
                    "provider": provider,
                    "parents": parents,
                }
            ]
        )[0]

    @retry_when_busy
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

    # --- reading -----------------------------------------------------------------------

    def get(self, item_id: int, include_deleted: bool = True) -> GalleryEntry:
        """One item by id with its tags and collections, or a NotFoundError naming the id."""
        with self.store.sessions() as session:
            row = session.get(GalleryItem, item_id)
            if row is None or (row.deleted_at is not None and not include_deleted):
                raise NotFoundError(f"no gallery item {item_id}")
            tags, collections = self._names(session, [item_id])
            return GalleryEntry.of(row, tags.get(item_id, ()), collections.get(item_id, ()))

    def parents(self, item_id: int) -> list[tuple[int, str]]:
        """The (parent id, role) pairs of an item's lineage."""
        with self.store.sessions() as session:
            rows = session.scalars(select(GalleryLineage).where(GalleryLineage.child_id == item_id))
            return [(row.parent_id, row.role) for row in rows]

    def children(self, item_id: int) -> list[tuple[int, str]]:
        """The (child id, role) pairs of items made from this one."""
        with self.store.sessions() as session:
            rows = session.scalars(select(GalleryLineage).where(GalleryLineage.parent_id == item_id))
            return [(row.child_id, row.role) for row in rows]

    # Signatures below say `builtins.list`: from here on, `list` in the class body names this method.
    def list(self, limit: int = 50, before_id: int | None = None) -> list[GalleryEntry]:
        """Newest first (kept for callers that page by id); `query` is the general form."""
        cursor = None
        if before_id is not None:
            anchor = self.get(before_id)
            cursor = encode_cursor([anchor.created_at, anchor.id])
        return self.query(GalleryFilter(), "newest", limit, cursor).items

    def query(
        self, filters: GalleryFilter | None = None, sort: str = "newest", limit: int = 50, after: str | None = None
    ) -> GalleryPage:
        """One page of items matching `filters`, in `sort` order, after the cursor of the previous page."""
        filters = filters or GalleryFilter()
        if sort not in SORTS:
            raise StudioError(f"invalid sort '{sort}': choose {', '.join(SORTS)}")
        if not 1 <= limit <= MAX_PAGE:
            raise StudioError(f"invalid limit {limit}: choose 1 to {MAX_PAGE}")
        order = self._order(sort)
        key = decode_cursor(after, sort) if after else None
        with self.store.sessions() as session:
            query = self._filtered(select(GalleryItem), filters, self._links_to_walk(session, filters))
            query = query.order_by(*order).limit(limit + 1)
            if key is not None:
                columns = [c.element if hasattr(c, "element") else c for c in order]
                # Descending sorts continue below the cursor, ascending ones above it.
                query = query.where(
                    tuple_(*columns) < tuple_(*key) if sort != "oldest" else tuple_(*columns) > tuple_(*key)
                )
            rows = list(session.scalars(query))
            more = len(rows) > limit
            rows = rows[:limit]
            tags, collections = self._names(session, [row.id for row in rows])
            items = [GalleryEntry.of(row, tags.get(row.id, ()), collections.get(row.id, ())) for row in rows]
        next_cursor = None
        if more and rows:
            last = rows[-1]
            key_values = [last.rating, last.created_at, last.id] if sort == "rating" else [last.created_at, last.id]
            next_cursor = encode_cursor(key_values)
        return GalleryPage(items, next_cursor, sort)

    def count(self, filters: GalleryFilter | None = None) -> int:
        """How many items match."""
        query = self._filtered(select(func.count(GalleryItem.id)), filters or GalleryFilter())
        with self.store.sessions() as session:
            return int(session.scalar(query) or 0)

    def facets(self, filters: GalleryFilter | None = None) -> dict[str, dict[str, int]]:
        """Counts per model, family, rating, flag, backend, provider, tag and collection of the matching items."""
        filters = filters or GalleryFilter()
        result: dict[str, dict[str, int]] = {}
        with self.store.sessions() as session:
            for name, column in (
                ("model", GalleryItem.model_name),
                ("family", GalleryItem.family),
                ("rating", GalleryItem.rating),
                ("flag", GalleryItem.flag),
                ("backend", GalleryItem.backend),
                ("provider", GalleryItem.provider),
                ("operation", GalleryItem.operation),
                ("class", GalleryItem.class_name),
            ):
                query = self._filtered(select(column, func.count()), filters).group_by(column)
                rows = session.execute(query)
                # Items of unconditional models have no class: not a value to count.
                result[name] = {str(v): int(n) for v, n in rows if not (name == "class" and v is None)}
            tagged = self._filtered(
                select(Tag.name, func.count())
                .join(GalleryItemTag, GalleryItemTag.tag_id == Tag.id)
                .join(GalleryItem, GalleryItem.id == GalleryItemTag.item_id),
                filters,
            ).group_by(Tag.id)
            result["tag"] = {name: int(count) for name, count in session.execute(tagged)}
            collected = self._filtered(
                select(Collection.name, func.count())
                .join(GalleryItemCollection, GalleryItemCollection.collection_id == Collection.id)
                .join(GalleryItem, GalleryItem.id == GalleryItemCollection.item_id),
                filters,
            ).group_by(Collection.id)
            result["collection"] = {name: int(count) for name, count in session.execute(collected)}
        return result

    def ids(self, filters: GalleryFilter | None = None, sort: str = "newest") -> builtins.list[int]:
        """Every matching id in order (for exports and bulk operations on a filtered selection)."""
        query = self._filtered(select(GalleryItem.id), filters or GalleryFilter()).order_by(*self._order(sort))
        with self.store.sessions() as session:
            return list(session.scalars(query))

    def entries(self, ids: Sequence[int]) -> builtins.list[GalleryEntry]:
        """The items with these ids, in the order given (ids that no longer exist are left out).

        With `ids()` this lets a view know a whole selection's order up front and fetch rows for
        whatever range is on screen, without inserting rows as it scrolls.
        """
        wanted = [int(i) for i in ids]
        if not wanted:
            return []
        with self.store.sessions() as session:
            rows = {row.id: row for row in session.scalars(select(GalleryItem).where(GalleryItem.id.in_(wanted)))}
            tags, collections = self._names(session, list(rows))
            return [GalleryEntry.of(rows[i], tags.get(i, ()), collections.get(i, ())) for i in wanted if i in rows]

    def tags(self) -> builtins.list[dict[str, Any]]:
        """Every tag with its number of (live) items."""
        query = (
            select(Tag.name, func.count(GalleryItem.id))
            .outerjoin(GalleryItemTag, GalleryItemTag.tag_id == Tag.id)
            .outerjoin(GalleryItem, and_(GalleryItem.id == GalleryItemTag.item_id, GalleryItem.deleted_at.is_(None)))
            .group_by(Tag.id)
            .order_by(Tag.key)
        )
        with self.store.sessions() as session:
            return [{"name": name, "count": int(count)} for name, count in session.execute(query)]

    def collections(self) -> builtins.list[dict[str, Any]]:
        """Every collection with its number of (live) items."""
        query = (
            select(Collection.name, func.count(GalleryItem.id))
            .outerjoin(GalleryItemCollection, GalleryItemCollection.collection_id == Collection.id)
            .outerjoin(
                GalleryItem, and_(GalleryItem.id == GalleryItemCollection.item_id, GalleryItem.deleted_at.is_(None))
            )
            .group_by(Collection.id)
            .order_by(Collection.key)
        )
        with self.store.sessions() as session:
            return [{"name": name, "count": int(count)} for name, count in session.execute(query)]

    @staticmethod
    def _order(sort: str) -> builtins.list[Any]:
        if sort == "oldest":
            return [GalleryItem.created_at.asc(), GalleryItem.id.asc()]
        if sort == "rating":
            return [GalleryItem.rating.desc(), GalleryItem.created_at.desc(), GalleryItem.id.desc()]
        return [GalleryItem.created_at.desc(), GalleryItem.id.desc()]

    @staticmethod
    def _links_to_walk(session: Session, filters: GalleryFilter) -> dict[str, int]:
        """Tag or collection filters common enough to test row by row along the sort order.

        For a page in sort order SQLite either gathers the linked items and sorts them (cost grows
        with how many there are: 50 ms for 13,000 at a million rows) or walks the sort index testing
        each row's link (cost grows with how rare they are). Counting the links picks the cheaper.
        """
        walk: dict[str, int] = {}
        others = (
            filters.model,
            filters.family,
            filters.min_rating or None,
            filters.flag,
            filters.since,
            filters.until,
            filters.backend,
            filters.provider,
            filters.seed,
            filters.operation,
            filters.class_name,
            filters.search,
        )
        if any(value is not None for value in others) or (filters.tag is not None and filters.collection is not None):
            # With another filter the walk must also skip the rows that filter drops: gathering is safer.
            return walk
        for kind, name, table, link, column in (
            ("tag", filters.tag, Tag, GalleryItemTag, GalleryItemTag.tag_id),
            ("collection", filters.collection, Collection, GalleryItemCollection, GalleryItemCollection.collection_id),
        ):
            if name is None:
                continue
            found = session.scalar(select(table.id).where(table.key == name_key(name)))
            if found is None:
                continue
            linked = session.scalar(select(func.count()).select_from(link).where(column == found)) or 0
            total = session.scalar(select(func.max(GalleryItem.id))) or 0
            if linked >= WALK_THRESHOLD and linked * WALK_FRACTION >= total:
                walk[kind] = found
        return walk

    @staticmethod
    def _filtered(
        query: Select[*_Columns], filters: GalleryFilter, walk: dict[str, int] | None = None
    ) -> Select[*_Columns]:
        conditions: list[Any] = [
            GalleryItem.deleted_at.is_not(None) if filters.trash else GalleryItem.deleted_at.is_(None)
        ]
        if filters.model is not None:
            conditions.append(GalleryItem.model_name == filters.model)
        if filters.family is not None:
            conditions.append(GalleryItem.family == filters.family)
        if filters.min_rating:
            conditions.append(GalleryItem.rating >= filters.min_rating)
        if filters.flag is not None:
            conditions.append(GalleryItem.flag == filters.flag)
        if filters.since is not None:
            conditions.append(GalleryItem.created_at >= filters.since)
        if filters.until is not None:
            conditions.append(GalleryItem.created_at < filters.until)
        if filters.backend is not None:
            conditions.append(GalleryItem.backend == filters.backend)
        if filters.provider is not None:
            conditions.append(GalleryItem.provider == filters.provider)
        if filters.seed is not None:
            conditions.append(GalleryItem.seed == filters.seed)
        if filters.operation is not None:
            conditions.append(GalleryItem.operation == filters.operation)
        if filters.class_name is not None:
            conditions.append(GalleryItem.class_name == filters.class_name)
        if filters.ids is not None:
            conditions.append(GalleryItem.id.in_(list(filters.ids)))
        if filters.search and (searched := search_condition(filters.search)) is not None:
            conditions.append(searched)
        if filters.memorised:
            conditions.append(
                exists()
                .where(Embedding.gallery_item_id == GalleryItem.id, Embedding.encoder_id == Encoder.id)
                .where(Embedding.nearest_distance <= Encoder.memorised_threshold)
            )
        walk = walk or {}
        if "tag" in walk:
            conditions.append(
                exists().where(GalleryItemTag.item_id == GalleryItem.id, GalleryItemTag.tag_id == walk["tag"])
            )
        elif filters.tag is not None:
            tagged = (
                select(GalleryItemTag.item_id)
                .join(Tag, Tag.id == GalleryItemTag.tag_id)
                .where(Tag.key == name_key(filters.tag))
            )
            conditions.append(GalleryItem.id.in_(tagged))
        if "collection" in walk:
            conditions.append(
                exists().where(
                    GalleryItemCollection.item_id == GalleryItem.id,
                    GalleryItemCollection.collection_id == walk["collection"],
                )
            )
        elif filters.collection is not None:
            collected = (
                select(GalleryItemCollection.item_id)
                .join(Collection, Collection.id == GalleryItemCollection.collection_id)
                .where(Collection.key == name_key(filters.collection))
            )
            conditions.append(GalleryItem.id.in_(collected))
        return query.where(*conditions)

    @staticmethod
    def _names(
        session: Session, ids: builtins.list[int]
    ) -> tuple[dict[int, builtins.list[str]], dict[int, builtins.list[str]]]:
        """Tag and collection names of a page of items, in two queries."""
        tags: dict[int, list[str]] = {}
        collections: dict[int, list[str]] = {}
        if not ids:
            return tags, collections
        for item_id, name in session.execute(
            select(GalleryItemTag.item_id, Tag.name)
            .join(Tag, Tag.id == GalleryItemTag.tag_id)
            .where(GalleryItemTag.item_id.in_(ids))
            .order_by(Tag.key)
        ):
            tags.setdefault(item_id, []).append(name)
        for item_id, name in session.execute(
            select(GalleryItemCollection.item_id, Collection.name)
            .join(Collection, Collection.id == GalleryItemCollection.collection_id)
            .where(GalleryItemCollection.item_id.in_(ids))
            .order_by(Collection.key)
        ):
            collections.setdefault(item_id, []).append(name)
        return tags, collections

    # --- curation ----------------------------------------------------------------------

    def _writable(self) -> None:
        if self.store.read_only:
            raise StudioError(f"the database is read-only: {self.store.read_only_reason}")

    def _existing(self, session: Session, ids: Iterable[int], deleted: bool | None = False) -> builtins.list[int]:
        """The ids, all of which must exist (and be live, deleted, or either); else NotFoundError."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        if not wanted:
            raise StudioError("no gallery items given")
        found = dict(
            session.execute(select(GalleryItem.id, GalleryItem.deleted_at).where(GalleryItem.id.in_(wanted))).all()
        )
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFoundError(
                f"no gallery item {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        if deleted is False:
            gone = [i for i in wanted if found[i] is not None]
            if gone:
                raise StudioError(f"gallery item {gone[0]} is in the trash: undelete it first")
        if deleted is True:
            live = [i for i in wanted if found[i] is None]
            if live:
                raise StudioError(f"gallery item {live[0]} is not in the trash")
        return wanted

    @retry_when_busy
    def rate(self, ids: Iterable[int], stars: int) -> BulkResult:
        """Set the star rating (0-5) of items."""
        validate_rating(stars)
        self._writable()
        with self.store.session() as session:
            wanted = self._existing(session, ids)
            session.execute(update(GalleryItem).where(GalleryItem.id.in_(wanted)).values(rating=stars))
        return BulkResult("rate", wanted, {"rating": stars})

    @retry_when_busy
    def set_flag(self, ids: Iterable[int], flag: str) -> BulkResult:
        """Mark items as picks, rejects, or neither."""
        validate_flag(flag)
        self._writable()
        with self.store.session() as session:
            wanted = self._existing(session, ids)
            session.execute(update(GalleryItem).where(GalleryItem.id.in_(wanted)).values(flag=flag))
        return BulkResult("flag", wanted, {"flag": flag})

    @retry_when_busy
    def set_note(self, item_id: int, note: str) -> BulkResult:
        """Replace an item's free-text note."""
        if len(note) > MAX_NOTE:
            raise StudioError(f"the note is {len(note)} characters: at most {MAX_NOTE}")
        if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in note):
            raise StudioError("the note contains control characters")
        self._writable()
        with self.store.session() as session:
            wanted = self._existing(session, [item_id])
            session.execute(update(GalleryItem).where(GalleryItem.id.in_(wanted)).values(note=note))
        return BulkResult("note", wanted, {"note": note})

    @retry_when_busy
    def tag(self, ids: Iterable[int], name: str) -> BulkResult:
        """Attach a tag (created on first use) to items."""
        name = validate_name(name, "tag")
        self._writable()
        with self.store.session() as session:
            wanted = self._existing(session, ids)
            # Insert-or-nothing first: it also takes the write lock, so the tag cannot vanish (an
            # untag elsewhere) between here and the links.
            session.execute(_insert_new(session, Tag, ["key"]), [{"name": name, "key": name_key(name)}])
            tag = session.scalars(select(Tag).where(Tag.key == name_key(name))).one()
            links = [{"item_id": i, "tag_id": tag.id} for i in wanted]
            session.execute(_insert_new(session, GalleryItemTag, ["item_id", "tag_id"]), links)
            return BulkResult("tag", wanted, {"tag": tag.name})

    @retry_when_busy
    def untag(self, ids: Iterable[int], name: str) -> BulkResult:
        """Remove a tag from items (the tag itself goes when no item carries it)."""
        name = validate_name(name, "tag")
        self._writable()
        with self.store.session() as session:
            wanted = self._existing(session, ids, deleted=None)
            tag = session.scalar(select(Tag).where(Tag.key == name_key(name)))
            if tag is None:
                raise NotFoundError(f"no tag '{name}'")
            session.execute(
                delete(GalleryItemTag).where(GalleryItemTag.tag_id == tag.id, GalleryItemTag.item_id.in_(wanted))
            )
            if session.scalar(select(func.count()).where(GalleryItemTag.tag_id == tag.id)) == 0:
                session.delete(tag)
            return BulkResult("untag", wanted, {"tag": tag.name})

    @retry_when_busy
    def collect(self, ids: Iterable[int], name: str, move: bool = False) -> BulkResult:
        """Add items to a collection (created on first use); `move` takes them out of every other one."""
        name = validate_name(name, "collection")
        self._writable()
        with self.store.session() as session:
            wanted = self._existing(session, ids)
            key = name_key(name)
            session.execute(
                _insert_new(session, Collection, ["key"]), [{"name": name, "key": key, "created_at": utcnow()}]
            )
            collection = session.scalars(select(Collection).where(Collection.key == key)).one()
            if move:
                session.execute(
                    delete(GalleryItemCollection).where(
                        GalleryItemCollection.item_id.in_(wanted), GalleryItemCollection.collection_id != collection.id
                    )
                )
            now = utcnow()
            links = [{"item_id": i, "collection_id": collection.id, "added_at": now} for i in wanted]
            session.execute(_insert_new(session, GalleryItemCollection, ["item_id", "collection_id"]), links)
            return BulkResult("move" if move else "collect", wanted, {"collection": collection.name})

    @retry_when_busy
    def uncollect(self, ids: Iterable[int], name: str) -> BulkResult:
        """Take items out of a collection (the collection stays, even empty)."""
        name = validate_name(name, "collection")
        self._writable()
        with self.store.session() as session:
            wanted = self._existing(session, ids, deleted=None)
            collection = session.scalar(select(Collection).where(Collection.key == name_key(name)))
            if collection is None:
                raise NotFoundError(f"no collection '{name}'")
            session.execute(
                delete(GalleryItemCollection).where(
                    GalleryItemCollection.collection_id == collection.id, GalleryItemCollection.item_id.in_(wanted)
                )
            )
            return BulkResult("uncollect", wanted, {"collection": collection.name})

    # --- trash -------------------------------------------------------------------------

    @property
    def trash(self) -> Path:
        """trash/ in the data home: files of deleted items until the trash is emptied."""
        return self.store.home.root / TRASH_FOLDER

    @retry_when_busy
    def delete(self, ids: Iterable[int]) -> BulkResult:
        """Move items to the trash: files to trash/, rows marked; `undelete` reverses it."""
        self._writable()
        self.trash.mkdir(exist_ok=True)
        moved: list[tuple[Path, Path]] = []
        with self.store.sessions() as session:
            wanted = self._existing(session, ids)
            rows = {row.id: row.path for row in session.scalars(select(GalleryItem).where(GalleryItem.id.in_(wanted)))}
        try:
            updates = []
            for item_id in wanted:
                source = self.store.home.absolute(rows[item_id])
                target = self.trash / f"{item_id}-{source.name}"
                if source.exists():
                    os.replace(source, target)
                    moved.append((target, source))
                updates.append({"id": item_id, "trash": self.store.home.relative(target)})
            now = utcnow()
            with self.store.session() as session:
                for entry in updates:
                    session.execute(
                        update(GalleryItem)
                        .where(GalleryItem.id == entry["id"])
                        .values(deleted_at=now, trash_path=entry["trash"])
                    )
        except BaseException:
            for target, source in moved:  # put every file back: nothing half-deleted
                os.replace(target, source)
            raise
        return BulkResult("delete", wanted, {"trash": str(self.trash)})

    @retry_when_busy
    def undelete(self, ids: Iterable[int]) -> BulkResult:
        """Bring items back from the trash (files moved back, rows live again)."""
        self._writable()
        moved: list[tuple[Path, Path]] = []
        with self.store.sessions() as session:
            wanted = self._existing(session, ids, deleted=True)
            rows = {
                row.id: (row.path, row.trash_path)
                for row in session.scalars(select(GalleryItem).where(GalleryItem.id.in_(wanted)))
            }
        try:
            for item_id in wanted:
                path, trash_path = rows[item_id]
                destination = self.store.home.absolute(path)
                if trash_path:
                    source = self.store.home.absolute(trash_path)
                    if source.exists():
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(source, destination)
                        moved.append((destination, source))
            with self.store.session() as session:
                session.execute(
                    update(GalleryItem).where(GalleryItem.id.in_(wanted)).values(deleted_at=None, trash_path=None)
                )
        except BaseException:
            for destination, source in moved:
                os.replace(destination, source)
            raise
        return BulkResult("undelete", wanted)

    @retry_when_busy
    def empty_trash(self) -> BulkResult:
        """Delete the rows and files of every item in the trash, for good."""
        self._writable()
        with self.store.session() as session:
            rows = list(
                session.execute(
                    select(GalleryItem.id, GalleryItem.trash_path).where(GalleryItem.deleted_at.is_not(None))
                )
            )
            ids = [item_id for item_id, _ in rows]
            if ids:
                session.execute(delete(GalleryItem).where(GalleryItem.id.in_(ids)))
        # Files go after the rows are gone: a crash in between leaves stray files `check` removes.
        for item_id, trash_path in rows:
            if trash_path:
                self.store.home.absolute(trash_path).unlink(missing_ok=True)
            thumbnail_path(self.store, item_id).unlink(missing_ok=True)
        return BulkResult("empty-trash", ids)
