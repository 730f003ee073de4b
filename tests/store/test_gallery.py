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

    from studio.store.models import GalleryLineage

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
