"""The gallery's text search: words matched in the note, the tags, the model's name, the class and the
settings (the params JSON as text).

Portable SQL only, so a shared gallery on PostgreSQL searches as SQLite does: `lower(column) LIKE
'%word%'` with the LIKE wildcards escaped, and the JSON column CAST to text. Every word must occur
somewhere (AND over words, OR over the fields). A search is a scan of the filtered rows, not an index
lookup: fine for the tens of thousands of items a person curates, and other filters narrow it first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, and_, cast, exists, func, or_
from sqlalchemy.orm import aliased

from studio.store.tables import GalleryItem, GalleryItemTag, Tag

ESCAPE = "\\"


def search_words(text: str) -> list[str]:
    """The words of a search, lower-cased (the store lower()s its side too), without duplicates."""
    return list(dict.fromkeys(word.lower() for word in text.split()))


def _pattern(word: str) -> str:
    """`%word%` with LIKE's own wildcards (and the escape character) taken literally."""
    escaped = word.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")
    return f"%{escaped}%"


def search_condition(text: str) -> Any:
    """A WHERE clause: every word of `text` occurs in the note, a tag, the model, the class or the settings.

    None when the text has no words (a blank search filters nothing)."""
    conditions = []
    for word in search_words(text):
        pattern = _pattern(word)

        def like(column: Any, pattern: str = pattern) -> Any:
            return func.lower(column).like(pattern, escape=ESCAPE)

        # Aliases: the facet queries join tags themselves, and the subquery must not correlate with theirs.
        link, tag = aliased(GalleryItemTag), aliased(Tag)
        tagged = exists().where(link.item_id == GalleryItem.id, link.tag_id == tag.id, like(tag.name))
        conditions.append(
            or_(
                like(GalleryItem.note),
                like(GalleryItem.model_name),
                like(GalleryItem.class_name),
                like(cast(GalleryItem.params, String)),
                tagged,
            )
        )
    return and_(*conditions) if conditions else None
