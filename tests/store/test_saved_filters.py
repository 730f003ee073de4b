"""Saved filters, collections as things of their own, and the gallery's text search."""

from __future__ import annotations

from datetime import datetime

import pytest
from PIL import Image
from sqlalchemy import update

from studio.errors import NotFoundError, StudioError
from studio.store.collections import CollectionRepository
from studio.store.database import Store
from studio.store.gallery import GalleryFilter, GalleryRepository
from studio.store.saved_filters import SavedFilterRepository, filter_from_json
from studio.store.tables import SavedFilter
from tests.store.postgres import store_on_both_backends  # noqa: F401 - `store`: SQLite, then PostgreSQL


def _add(store: Store, name: str, model: str = "m", params: dict[str, object] | None = None) -> int:
    path = store.home.gallery / f"{name}.png"
    Image.new("RGB", (8, 8)).save(path)
    return GalleryRepository(store).add(store.home.relative(path), model, "gan", 8, 8, seed=1, params=params).id


# --- saved filters -------------------------------------------------------------------------------


def test_a_saved_filter_comes_back_as_it_was_saved(store: Store) -> None:
    saved = SavedFilterRepository(store)
    filters = GalleryFilter(model="gan-1", min_rating=3, flag="pick", since=datetime(2026, 1, 2, 3, 4), search="cat")
    saved.save("Best cats", filters, "rating")
    back = saved.get("best CATS")  # names compare case-insensitively
    assert back.name == "Best cats" and back.sort == "rating"
    assert back.filters == filters
    assert [entry.name for entry in saved.list()] == ["Best cats"]


def test_transient_parts_of_a_filter_are_not_saved(store: Store) -> None:
    saved = SavedFilterRepository(store)
    saved.save("picks", GalleryFilter(flag="pick", ids=(1, 2), trash=True))
    back = saved.get("picks").filters
    assert back.ids is None and back.trash is False and back.flag == "pick"


def test_saving_refuses_a_taken_name_an_empty_filter_and_a_bad_sort(store: Store) -> None:
    saved = SavedFilterRepository(store)
    saved.save("picks", GalleryFilter(flag="pick"))
    with pytest.raises(StudioError, match="exists already"):
        saved.save("PICKS", GalleryFilter(flag="reject"))
    saved.save("PICKS", GalleryFilter(flag="reject"), replace=True)
    assert saved.get("picks").filters.flag == "reject" and saved.get("picks").name == "PICKS"
    with pytest.raises(StudioError, match="every item"):
        saved.save("all", GalleryFilter())
    with pytest.raises(StudioError, match="invalid sort"):
        saved.save("x", GalleryFilter(flag="pick"), "sideways")
    with pytest.raises(StudioError, match="empty"):
        saved.save("  ", GalleryFilter(flag="pick"))


def test_deleting_a_saved_filter_and_a_missing_one(store: Store) -> None:
    saved = SavedFilterRepository(store)
    saved.save("picks", GalleryFilter(flag="pick"))
    saved.delete("Picks")
    assert saved.list() == []
    with pytest.raises(NotFoundError, match="no saved filter 'picks'"):
        saved.delete("picks")
    with pytest.raises(NotFoundError):
        saved.get("picks")


def test_a_saved_filter_edited_by_hand_is_refused_with_its_name(store: Store) -> None:
    saved = SavedFilterRepository(store)
    saved.save("picks", GalleryFilter(flag="pick"))
    with store.session() as session:
        session.execute(update(SavedFilter).values(filters={"flag": "maybe", "min_rating": "high"}))
    with pytest.raises(StudioError, match="saved filter 'picks' is malformed"):
        saved.get("picks")
    assert saved.list() == [] and saved.names() == ["picks"]
    with pytest.raises(StudioError, match="malformed"):
        filter_from_json("x", ["not", "an", "object"])
    assert filter_from_json("x", {"unknown": 1, "tag": "cat"}) == GalleryFilter(tag="cat")


# --- collections ---------------------------------------------------------------------------------


def test_collections_are_created_renamed_and_deleted_while_items_stay(store: Store) -> None:
    gallery, collections = GalleryRepository(store), CollectionRepository(store)
    a, b = _add(store, "a"), _add(store, "b")
    collections.create("Empty one")
    gallery.collect([a, b], "Keepers")
    assert [(c.name, c.count) for c in collections.list()] == [("Empty one", 0), ("Keepers", 2)]
    with pytest.raises(StudioError, match="exists already"):
        collections.create("keepers")
    with pytest.raises(StudioError, match="exists already"):
        collections.rename("Keepers", "EMPTY ONE")
    renamed = collections.rename("keepers", "Best")
    assert renamed.name == "Best" and renamed.count == 2
    assert gallery.count(GalleryFilter(collection="best")) == 2
    assert collections.rename("Best", "BEST").name == "BEST"  # a change of case alone
    assert collections.delete("best") == 2
    assert [c.name for c in collections.list()] == ["Empty one"]
    assert gallery.count() == 2 and gallery.get(a).collections == ()
    with pytest.raises(NotFoundError, match="no collection 'best'"):
        collections.delete("best")
    with pytest.raises(NotFoundError):
        collections.rename("best", "other")


def test_collection_counts_leave_out_the_trash(store: Store) -> None:
    gallery, collections = GalleryRepository(store), CollectionRepository(store)
    a, b = _add(store, "a"), _add(store, "b")
    gallery.collect([a, b], "Set")
    gallery.delete([b])
    assert collections.list()[0].count == 1


# --- search --------------------------------------------------------------------------------------


def test_search_finds_words_in_notes_tags_models_and_settings(store: Store) -> None:
    gallery = GalleryRepository(store)
    noted = _add(store, "noted")
    tagged = _add(store, "tagged")
    by_model = _add(store, "model", model="Sunset-GAN")
    with_settings = _add(store, "settings", params={"sampler": "ddim", "eta": 0.5})
    gallery.set_note(noted, "A fine Sunset over water")
    gallery.tag([tagged], "Portrait")

    def found(text: str) -> set[int]:
        return set(gallery.ids(GalleryFilter(search=text)))

    assert found("sunset") == {noted, by_model}
    assert found("PORTRAIT") == {tagged}
    assert found("ddim") == {with_settings}
    assert found("sunset water") == {noted}  # every word must occur
    assert found("   ") == {noted, tagged, by_model, with_settings}  # a blank search filters nothing
    assert gallery.count(GalleryFilter(search="sunset", model="Sunset-GAN")) == 1
    assert gallery.facets(GalleryFilter(search="portrait"))["tag"] == {"Portrait": 1}


def test_search_takes_like_wildcards_literally(store: Store) -> None:
    gallery = GalleryRepository(store)
    plain = _add(store, "plain")
    percent = _add(store, "percent")
    gallery.set_note(plain, "nothing special")
    gallery.set_note(percent, "grew 100% and a_b")
    assert gallery.ids(GalleryFilter(search="%")) == [percent]
    assert gallery.ids(GalleryFilter(search="a_b")) == [percent]
    assert gallery.ids(GalleryFilter(search="_")) == [percent]


def test_a_search_too_long_or_with_control_characters_is_refused() -> None:
    with pytest.raises(StudioError, match="at most"):
        GalleryFilter(search="x" * 201)
    with pytest.raises(StudioError, match="control characters"):
        GalleryFilter(search="a\x00b")
