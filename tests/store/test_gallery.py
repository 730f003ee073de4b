"""The gallery repository that generation writes to."""

from __future__ import annotations

import pytest
from PIL import Image

from studio.errors import StudioError
from studio.store.database import Store
from studio.store.gallery import GalleryRepository, validate_flag


def _file(store: Store, name: str) -> str:
    path = store.home.gallery / name
    Image.new("RGB", (8, 8)).save(path)
    return store.home.relative(path)


def test_add_and_list_newest_first_with_paging(store: Store) -> None:
    repo = GalleryRepository(store)
    added = [repo.add(_file(store, f"{i}.png"), "m", "gan", 8, 8, seed=i, params={"steps": i}) for i in range(5)]
    first = repo.list(limit=2)
    assert [e.id for e in first] == [added[4].id, added[3].id]
    second = repo.list(limit=2, before_id=first[-1].id)
    assert [e.id for e in second] == [added[2].id, added[1].id]
    assert repo.list(limit=10, before_id=added[0].id) == []
    assert first[0].params == {"steps": 4} and first[0].rating == 0 and first[0].flag == "none"
    assert first[0].as_dict()["seed"] == 4


def test_lineage_links_children_to_parents(store: Store) -> None:
    repo = GalleryRepository(store)
    a = repo.add(_file(store, "a.png"), "m", "vae", 8, 8)
    b = repo.add(_file(store, "b.png"), "m", "vae", 8, 8)
    child = repo.add(_file(store, "c.png"), "m", "vae", 8, 8, operation="interpolate", parents=[a.id, b.id])
    from sqlalchemy import select

    from studio.store.tables import GalleryLineage

    with store.sessions() as session:
        links = session.execute(select(GalleryLineage.parent_id).where(GalleryLineage.child_id == child.id)).all()
    assert sorted(p for (p,) in links) == [a.id, b.id]


def test_a_row_is_never_written_before_its_file(store: Store) -> None:
    with pytest.raises(StudioError, match="missing"):
        GalleryRepository(store).add("gallery/nowhere.png", "m", "gan", 8, 8)
    assert GalleryRepository(store).list() == []


def test_bad_paging_arguments_get_reasons(store: Store) -> None:
    repo = GalleryRepository(store)
    with pytest.raises(StudioError, match="invalid limit"):
        repo.list(limit=0)
    with pytest.raises(StudioError, match="no gallery item"):
        repo.list(before_id=999)
    with pytest.raises(StudioError, match="invalid flag"):
        validate_flag("maybe")


# --- curation ------------------------------------------------------------------------------

from datetime import datetime, timedelta  # noqa: E402

from sqlalchemy import update  # noqa: E402

from studio.store.gallery import GalleryFilter, validate_name  # noqa: E402
from studio.store.tables import GalleryItem  # noqa: E402
from tests.store.postgres import store_on_both_backends  # noqa: E402, F401 - `store`: SQLite, then PostgreSQL


def _gallery(store: Store, count: int = 12) -> list[int]:
    """`count` items over two models and families, one a minute apart, seeds 0.. count-1."""
    repo = GalleryRepository(store)
    ids = []
    start = datetime(2026, 1, 1, 12, 0)
    for i in range(count):
        model, family = ("alpha", "gan") if i % 2 == 0 else ("beta", "vae")
        entry = repo.add(
            _file(store, f"g{i}.png"),
            model,
            family,
            8,
            8,
            seed=i,
            backend="onnx" if i % 3 == 0 else "torch",
            provider="cpu",
        )
        ids.append(entry.id)
        with store.session() as session:
            session.execute(
                update(GalleryItem).where(GalleryItem.id == entry.id).values(created_at=start + timedelta(minutes=i))
            )
    return ids


def test_filters_sorts_and_cursors_cover_every_item_once(store: Store) -> None:
    ids = _gallery(store)
    repo = GalleryRepository(store)
    repo.rate(ids[:4], 3)
    repo.rate([ids[5]], 5)
    for sort, expected in (
        ("newest", ids[::-1]),
        ("oldest", ids),
        ("rating", [ids[5], *ids[:4][::-1], *ids[4:5], *ids[6:][::-1]]),
    ):
        seen, cursor = [], None
        while True:
            page = repo.query(GalleryFilter(), sort, limit=5, after=cursor)
            seen += [item.id for item in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        if sort == "rating":
            assert seen[:5] == [ids[5], ids[3], ids[2], ids[1], ids[0]] and sorted(seen) == sorted(ids)
            assert seen[5:] == [i for i in ids[::-1] if i not in (ids[5], *ids[:4])]
        else:
            assert seen == expected
    assert [i.id for i in repo.query(GalleryFilter(model="alpha")).items] == ids[::2][::-1]
    assert {i.family for i in repo.query(GalleryFilter(family="vae")).items} == {"vae"}
    assert [i.id for i in repo.query(GalleryFilter(min_rating=4)).items] == [ids[5]]
    assert [i.id for i in repo.query(GalleryFilter(seed=7)).items] == [ids[7]]
    assert {i.id for i in repo.query(GalleryFilter(backend="onnx")).items} == {ids[i] for i in (0, 3, 6, 9)}
    window = GalleryFilter(since=datetime(2026, 1, 1, 12, 2), until=datetime(2026, 1, 1, 12, 5))
    assert [i.id for i in repo.query(window, "oldest").items] == ids[2:5]
    assert repo.count(GalleryFilter(model="beta", min_rating=3)) == 3  # ids 1, 3 (3 stars) and 5 (5 stars)
    with pytest.raises(StudioError, match="invalid cursor"):
        repo.query(GalleryFilter(), "newest", after="garbage")
    with pytest.raises(StudioError, match="invalid sort"):
        repo.query(GalleryFilter(), "random")


def test_ratings_flags_tags_collections_and_notes(store: Store) -> None:
    ids = _gallery(store, 6)
    repo = GalleryRepository(store)
    repo.set_flag(ids[:2], "pick")
    repo.set_flag([ids[2]], "reject")
    repo.tag(ids[:3], "Cats")
    repo.tag(ids[1:2], "cats ")  # the same tag: case and spaces do not make a new one
    repo.tag([ids[4]], "dogs")
    repo.collect(ids[:2], "Best")
    repo.collect([ids[1]], "Print", move=True)
    repo.set_note(ids[0], "keep this one\nsecond line")
    assert [t["name"] for t in repo.tags()] == ["Cats", "dogs"] and repo.tags()[0]["count"] == 3
    assert [i.id for i in repo.query(GalleryFilter(tag="CATS"), "oldest").items] == ids[:3]
    assert [i.id for i in repo.query(GalleryFilter(collection="best")).items] == [ids[0]]
    assert repo.get(ids[1]).collections == ("Print",) and repo.get(ids[0]).note.startswith("keep")
    assert [i.id for i in repo.query(GalleryFilter(flag="pick"), "oldest").items] == ids[:2]
    facets = repo.facets()
    assert facets["flag"] == {"pick": 2, "reject": 1, "none": 3} and facets["tag"] == {"Cats": 3, "dogs": 1}
    assert facets["collection"] == {"Best": 1, "Print": 1} and facets["model"] == {"alpha": 3, "beta": 3}
    repo.untag([ids[4]], "dogs")
    assert [t["name"] for t in repo.tags()] == ["Cats"]  # an unused tag goes
    repo.uncollect([ids[0]], "best")
    assert repo.count(GalleryFilter(collection="Best")) == 0


@pytest.mark.parametrize("bad", [6, -1, 2.5, True, "3"])
def test_bad_ratings_are_refused_and_change_nothing(store: Store, bad: object) -> None:
    ids = _gallery(store, 2)
    repo = GalleryRepository(store)
    with pytest.raises(StudioError, match="invalid rating"):
        repo.rate(ids, bad)  # type: ignore[arg-type]
    assert {repo.get(i).rating for i in ids} == {0}


def test_bad_names_ids_and_notes_are_refused(store: Store) -> None:
    ids = _gallery(store, 2)
    repo = GalleryRepository(store)
    for bad, reason in (
        ("a\x07b", "control characters"),
        ("x" * 10_000, "at most 64"),
        ("  ", "empty"),
        ("line\nbreak", "control characters"),
        ("zero\u200bwidth", "control characters"),
    ):
        with pytest.raises(StudioError, match=reason):
            validate_name(bad)
        with pytest.raises(StudioError, match=reason):
            repo.tag(ids, bad)
    assert repo.tags() == []
    with pytest.raises(StudioError, match="no gallery item 999"):
        repo.rate([ids[0], 999], 4)
    assert repo.get(ids[0]).rating == 0  # all or nothing
    with pytest.raises(StudioError, match="at most 10000"):
        repo.set_note(ids[0], "x" * 10_001)
    with pytest.raises(StudioError, match="no tag 'nope'"):
        repo.untag(ids, "nope")


def test_delete_moves_files_to_the_trash_and_undelete_brings_them_back(store: Store) -> None:
    ids = _gallery(store, 4)
    repo = GalleryRepository(store)
    path = store.home.absolute(repo.get(ids[1]).path)
    content = path.read_bytes()
    repo.tag([ids[1]], "keep")
    repo.delete(ids[1:3])
    assert not path.exists() and repo.count() == 2
    assert [i.id for i in repo.query(GalleryFilter(trash=True), "oldest").items] == ids[1:3]
    with pytest.raises(StudioError, match="is in the trash"):
        repo.rate([ids[1]], 3)
    repo.undelete([ids[1]])
    assert path.read_bytes() == content and repo.get(ids[1]).tags == ("keep",) and repo.count() == 3
    with pytest.raises(StudioError, match="is not in the trash"):
        repo.undelete([ids[1]])
    emptied = repo.empty_trash()
    assert emptied.ids == [ids[2]] and not list((store.home.root / "trash").iterdir())
    with pytest.raises(StudioError, match=f"no gallery item {ids[2]}"):
        repo.get(ids[2])


def test_entries_come_back_in_the_order_asked(store: Store) -> None:
    ids = _gallery(store, 5)
    repo = GalleryRepository(store)
    repo.tag([ids[3]], "x")
    order = [ids[3], ids[0], 999, ids[4]]
    entries = repo.entries(order)
    assert [e.id for e in entries] == [ids[3], ids[0], ids[4]] and entries[0].tags == ("x",)
    assert repo.ids(GalleryFilter(), "oldest") == ids


def test_common_tags_are_walked_along_the_sort_order_with_the_same_results(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both query plans for a tag filter (gather and sort, or walk the sort index) give the same pages."""
    from studio.store import gallery

    ids = _gallery(store, 30)
    repo = GalleryRepository(store)
    repo.tag(ids[::2], "even")
    repo.collect(ids[::3], "third")
    pages = {}
    for threshold in (10**9, 1):
        monkeypatch.setattr(gallery, "WALK_THRESHOLD", threshold)
        monkeypatch.setattr(gallery, "WALK_FRACTION", 10**6)
        with store.sessions() as session:
            walked = GalleryRepository._links_to_walk(session, GalleryFilter(tag="even"))
        assert bool(walked) == (threshold == 1)
        result = []
        for filters, sort in (
            (GalleryFilter(tag="EVEN"), "newest"),
            (GalleryFilter(collection="third"), "oldest"),
            (GalleryFilter(tag="even"), "rating"),
        ):
            cursor, seen = None, []
            while True:
                page = repo.query(filters, sort, 4, cursor)
                seen += [item.id for item in page.items]
                if not (cursor := page.next_cursor):
                    break
            result.append(seen)
        pages[threshold] = result
    assert pages[1] == pages[10**9] and pages[1][0] == ids[::2][::-1] and pages[1][1] == ids[::3]
