"""Staging folders: what a dead job leaves is swept, what a live job holds is not."""

from __future__ import annotations

import json

from sqlalchemy import select

from studio.files import MARKER, StagingFolder, is_abandoned
from studio.store.database import Store, open_store, sweep_abandoned_folders
from studio.store.tables import Dataset
from tests.store.postgres import store_on_both_backends  # noqa: F401 - `store`: SQLite, then PostgreSQL


def _dead_folder(parent, name):  # a folder whose owner died: marker present, nobody holds it
    folder = parent / name
    folder.mkdir()
    (folder / MARKER).write_bytes(b"")
    (folder / "images.npy").write_bytes(b"partial")
    return folder


def test_live_staging_is_kept_and_dead_staging_is_swept(store: Store) -> None:
    live = StagingFolder(store.home.staging, "import")
    dead = _dead_folder(store.home.staging, "import-dead")
    assert not is_abandoned(live.path)
    assert is_abandoned(dead)
    removed = sweep_abandoned_folders(store)
    assert removed == [dead]
    assert live.path.is_dir()
    live.discard()
    assert not live.path.exists()


def test_published_but_uncommitted_folder_is_swept_on_open(store: Store) -> None:
    orphan = _dead_folder(store.home.datasets, "half")
    home = store.home
    store.close()
    reopened = open_store(home, store.url)
    assert not orphan.exists()
    reopened.close()


def test_committed_folder_whose_owner_died_before_unmarking_is_kept(store: Store) -> None:
    folder = _dead_folder(store.home.datasets, "done")
    with store.session() as session:
        session.add(Dataset(name="done", folder="datasets/done", size=8, channels=1, count=1, origin="import"))
    sweep_abandoned_folders(store)
    assert folder.is_dir() and not (folder / MARKER).exists()
    with store.sessions() as session:
        assert session.scalar(select(Dataset.name)) == "done"


def test_unmarked_folders_are_never_touched(store: Store) -> None:
    user_folder = store.home.datasets / "restored-by-hand"
    user_folder.mkdir()
    sweep_abandoned_folders(store)
    assert user_folder.is_dir()


def test_a_dead_batch_journal_removes_only_its_unregistered_gallery_files(store: Store) -> None:
    from studio.files import PENDING_FILE
    from studio.store.gallery import GalleryRepository

    gallery = store.home.gallery / "m"
    gallery.mkdir(parents=True)
    kept, orphan = gallery / "kept.png", gallery / "orphan.png"
    half_written = gallery / ".orphan.png.partial"  # the process was killed while writing it
    outside = store.home.root / "not-gallery.txt"
    for path in (kept, orphan, half_written, outside):
        path.write_bytes(b"png")
    GalleryRepository(store).add(store.home.relative(kept), "m", "gan", 8, 8, seed=1)
    dead = _dead_folder(store.home.staging, "gallery-batch-dead")
    listed = ["gallery/m/kept.png", "gallery/m/orphan.png", "not-gallery.txt", "../../escape.png", 7]
    (dead / PENDING_FILE).write_text(json.dumps(listed), encoding="utf-8")
    assert sweep_abandoned_folders(store) == [dead]
    assert kept.exists() and not orphan.exists()  # the row's file stays; the one no row points at goes
    assert not half_written.exists()
    assert outside.exists()  # a journal only ever removes gallery files
