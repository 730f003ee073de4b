"""Opening the store: pragmas, migrations with a backup first, damage and newer versions."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from studio.errors import StoreError
from studio.home import DataHome
from studio.store.database import Store, backup_database, head_revision, open_store
from studio.store.tables import Dataset, DatasetItem, GalleryItem


def test_new_store_is_migrated_to_head_with_wal_and_foreign_keys(store: Store) -> None:
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    tables = set(inspect(store.engine).get_table_names())
    assert {"datasets", "dataset_items", "models", "training_runs", "gallery_items", "gallery_lineage"} <= tables
    gallery_indexes = {ix["name"] for ix in inspect(store.engine).get_indexes("gallery_items")}
    assert {
        "ix_gallery_created",
        "ix_gallery_model_created",
        "ix_gallery_rating_created",
        "ix_gallery_flag_created",
        "ix_gallery_family_created",
        "ix_gallery_seed",
    } <= gallery_indexes
    assert store.backups_made == []  # nothing to back up in a brand-new home


def test_schema_matches_the_models_exactly(store: Store) -> None:
    """A model change without a migration fails here (Alembic's autogenerate finds a diff)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from studio.store.tables import Base

    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_reopening_an_up_to_date_store_makes_no_backup(home: DataHome) -> None:
    open_store(home).close()
    again = open_store(home)
    assert again.backups_made == []
    again.close()


def test_an_outdated_database_is_backed_up_before_it_is_migrated(home: DataHome) -> None:
    # A database from before Studio used migrations: it has data but no alembic_version.
    with sqlite3.connect(home.database) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.close()
    store = open_store(home)
    try:
        assert len(store.backups_made) == 1
        backup = store.backups_made[0]
        assert backup.parent == home.backups
        with sqlite3.connect(backup) as copy:
            assert copy.execute("SELECT body FROM notes").fetchall() == [("keep me",)]
            assert copy.execute("SELECT name FROM sqlite_master WHERE name='datasets'").fetchall() == []
        copy.close()
        with store.engine.connect() as live:
            assert live.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
    finally:
        store.close()


def test_a_damaged_database_is_refused_with_a_clear_reason(home: DataHome) -> None:
    open_store(home).close()
    data = bytearray(home.database.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wreck the first page after the header
    home.database.write_bytes(bytes(data))
    before = home.database.read_bytes()
    with pytest.raises(StoreError, match="damaged"):
        open_store(home)
    assert home.database.read_bytes() == before  # nothing was "repaired" behind the user's back


def test_not_a_database_at_all_is_refused(home: DataHome) -> None:
    home.database.write_text("this is a text file, not SQLite")
    with pytest.raises(StoreError, match="damaged"):
        open_store(home)


def test_a_database_from_a_newer_studio_opens_read_only(home: DataHome) -> None:
    open_store(home).close()
    with sqlite3.connect(home.database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    connection.close()
    before = home.database.read_bytes()
    store = open_store(home)
    try:
        assert store.read_only
        assert "newer version of Studio" in (store.read_only_reason or "")
        with store.sessions() as session:  # reading works
            assert session.scalars(select(Dataset)).all() == []
        with pytest.raises(StoreError, match="read-only"), store.session() as session:
            session.add(Dataset(name="x", folder="datasets/x", size=8, channels=1, count=1, origin="import"))
        assert store.backups_made == []
    finally:
        store.close()
    assert home.database.read_bytes() == before  # never migrated down, never touched


def test_constraints_and_cascades_are_enforced(store: Store) -> None:
    with store.session() as session:
        dataset = Dataset(name="d", folder="datasets/d", size=8, channels=1, count=1, origin="import")
        session.add(dataset)
        session.flush()
        session.add(DatasetItem(dataset_id=dataset.id, position=0, source="x.png", content_hash="h"))
    with store.session() as session:
        session.delete(session.scalar(select(Dataset)))
    with store.sessions() as session:
        assert session.scalars(select(DatasetItem)).all() == []  # ON DELETE CASCADE
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(GalleryItem(path="gallery/a.png", model_name="m", family="gan", width=8, height=8, rating=6))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(GalleryItem(path="gallery/b.png", model_name="m", family="gan", width=8, height=8, flag="maybe"))
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(DatasetItem(dataset_id=12345, position=0, source="x", content_hash="h"))  # foreign key


def test_backup_api_copy_is_consistent(store: Store, tmp_path: Path) -> None:
    with store.session() as session:
        session.add(Dataset(name="d", folder="datasets/d", size=8, channels=1, count=1, origin="import"))
    copy = backup_database(store.home.database, tmp_path / "copy.db")
    with sqlite3.connect(copy) as connection:
        assert connection.execute("SELECT name FROM datasets").fetchall() == [("d",)]
        assert connection.execute("PRAGMA quick_check").fetchone() == ("ok",)
    connection.close()


def test_a_grown_gallery_gets_planner_statistics_at_open(home: DataHome) -> None:
    """Without ANALYZE, SQLite sorts every row for each page (200 ms at 100,000 items)."""
    import sqlite3
    from datetime import datetime

    from sqlalchemy import insert

    from studio.store.database import open_store
    from studio.store.tables import GalleryItem

    store = open_store(home)
    with store.session() as session:
        session.execute(
            insert(GalleryItem),
            [
                {
                    "path": f"gallery/{i}.png",
                    "model_name": "m",
                    "family": "gan",
                    "width": 8,
                    "height": 8,
                    "params": {},
                    "created_at": datetime(2026, 1, 1),
                }
                for i in range(3000)
            ],
        )
    store.close()
    open_store(home).close()
    with sqlite3.connect(home.database) as connection:
        stat = connection.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = 'gallery_items'").fetchone()
    assert stat is not None and stat[0].split()[0] == "3000"
