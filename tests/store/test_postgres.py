"""A team gallery on PostgreSQL, against a real server (tests/store/postgres.py starts it): the same
migrations, the bad URLs and servers in one line, the SQLite-only parts refused, the CLI by --database and
$STUDIO_DATABASE_URL, and two processes writing at once losing nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from PIL import Image
from sqlalchemy import create_engine, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from studio.cli import main
from studio.errors import StoreError
from studio.failures import is_busy
from studio.home import DataHome
from studio.store.database import Store, _alembic_config, head_revision, open_store, retry_when_busy
from studio.store.embeddings import EmbeddingRepository, EncoderRecord, VectorRow
from studio.store.gallery import GalleryRepository
from studio.store.history import HistoryRepository
from studio.store.postgres import DATABASE_ENV, INSTALL_HINT, masked, parse_database_url, postgres_engine
from studio.store.tables import Dataset, DatasetItem, GalleryItem, GalleryItemTag, Model, Tag, TrainingRun
from tests.store.postgres import (
    PASSWORD,
    PASSWORD_USER,
    PostgresServer,
    store_on_both_backends,  # noqa: F401 - `store`: SQLite, then PostgreSQL
)

ROOT = Path(__file__).resolve().parents[2]


def _revision(url: str) -> str | None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        with engine.connect() as connection:
            if "alembic_version" not in inspect(connection).get_table_names():
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def _add(store: Store, name: str) -> int:
    path = store.home.gallery / f"{name}.png"
    Image.new("RGB", (8, 8)).save(path)
    return GalleryRepository(store).add(store.home.relative(path), "m", "gan", 8, 8, seed=1).id


# --- migrations ----------------------------------------------------------------------------------


def test_every_migration_runs_on_postgres_from_empty_and_matches_the_models(home: DataHome, pg_empty_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from studio.store.tables import Base

    assert _revision(pg_empty_url) is None
    store = open_store(home, pg_empty_url)
    try:
        assert store.on_postgres and store.engine.dialect.name == "postgresql"
        assert store.backups_made == [] and list(home.backups.iterdir()) == []  # no file backups: pg_dump's job
        with store.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head_revision()
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        indexes = {ix["name"] for ix in inspect(store.engine).get_indexes("gallery_items")}
        assert {"ix_gallery_created", "ix_gallery_class_created", "ix_gallery_content_hash"} <= indexes
    finally:
        store.close()
    open_store(home, pg_empty_url).close()  # reopening at head changes nothing
    assert _revision(pg_empty_url) == head_revision()


def test_an_older_schema_is_migrated_and_keeps_its_rows(home: DataHome, pg_empty_url: str) -> None:
    engine = create_engine(pg_empty_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")  # before models had classes (0003 adds a JSON column with a default)
        connection.execute(
            text(
                "INSERT INTO models (name, family, folder, resolution, channels, hyperparameters, steps, "
                "parameter_count, created_at, updated_at) VALUES ('old', 'gan', 'models/old', 8, 1, '{}', 3, 0, "
                "now(), now())"
            )
        )
    engine.dispose()
    store = open_store(home, pg_empty_url)
    try:
        with store.sessions() as session:
            model = session.scalars(select(Model)).one()
            assert (model.name, model.steps, model.classes) == ("old", 3, [])
    finally:
        store.close()
    assert _revision(pg_empty_url) == head_revision()


def test_a_schema_from_a_newer_studio_is_refused_in_one_line(
    home: DataHome, pg_url: str, pg_server: PostgresServer
) -> None:
    name = pg_url.split("/")[3].split("?")[0]
    engine = create_engine(pg_server.url(name).replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(StoreError, match="newer version of Studio") as refused:
        open_store(home, pg_url)
    assert "\n" not in str(refused.value)
    assert _revision(pg_url) == "9999_from_the_future"  # never migrated down, never touched


def test_a_database_holding_other_tables_is_refused(home: DataHome, pg_empty_url: str) -> None:
    engine = create_engine(pg_empty_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE invoices (id integer)"))
    engine.dispose()
    with pytest.raises(StoreError, match="already holds other tables \\(invoices\\)"):
        open_store(home, pg_empty_url)
    assert _revision(pg_empty_url) is None


def test_constraints_and_cascades_are_enforced_on_postgres(pg_store: Store) -> None:
    with pg_store.session() as session:
        dataset = Dataset(name="d", folder="datasets/d", size=8, channels=1, count=1, origin="import")
        session.add(dataset)
        session.flush()
        session.add(DatasetItem(dataset_id=dataset.id, position=0, source="x.png", content_hash="h"))
    with pg_store.session() as session:
        session.delete(session.scalar(select(Dataset)))
    with pg_store.sessions() as session:
        assert session.scalars(select(DatasetItem)).all() == []  # ON DELETE CASCADE
    with pytest.raises(IntegrityError), pg_store.session() as session:
        session.add(GalleryItem(path="gallery/a.png", model_name="m", family="gan", width=8, height=8, rating=6))
    with pytest.raises(IntegrityError), pg_store.session() as session:
        session.add(DatasetItem(dataset_id=12345, position=0, source="x", content_hash="h"))  # foreign key


# --- bad input: one line, no password, nothing written ------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url at all", "not a valid URL"),
        ("postgresql://bob:hunter2@host:notaport/db", "not a valid URL"),
        ("mysql://bob:hunter2@localhost/gallery", "unsupported database 'mysql'"),
        ("sqlite:///elsewhere.db", "unsupported database 'sqlite'"),
        ("postgresql://bob:hunter2@localhost", "names no database"),
        ("postgresql://bob:hunter2@127.0.0.1:1/gallery", "cannot reach the PostgreSQL server"),
    ],
)
def test_bad_urls_and_unreachable_servers_are_one_line_without_the_password(
    isolated_home: Path, url: str, reason: str
) -> None:
    with pytest.raises(StoreError, match=reason) as refused:
        open_store(DataHome(isolated_home), url)
    message = str(refused.value)
    assert "\n" not in message and "hunter2" not in message
    assert not isolated_home.exists()  # nothing written: not even the data home


def test_a_server_that_never_answers_times_out(isolated_home: Path) -> None:
    """A firewall that swallows packets, or a wrong port that accepts and stays silent: a clear line, soon."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="no answer from the PostgreSQL server"):
            open_store(DataHome(isolated_home), f"postgresql://bob:hunter2@127.0.0.1:{port}/x?connect_timeout=1")
        assert time.monotonic() - started < 4  # the URL's own timeout wins over the default CONNECT_TIMEOUT_S
    finally:
        silent.close()


def test_errors_of_a_server_that_went_away_are_explained_at_the_boundary() -> None:
    from studio.failures import explain

    engine = postgres_engine(parse_database_url("postgresql://bob:hunter2@127.0.0.1:1/gallery"))
    with pytest.raises(OperationalError) as failed:
        engine.connect()
    engine.dispose()
    explained = explain(failed.value)
    assert explained is not None and "cannot reach the PostgreSQL server" in str(explained)
    assert explain(ProgrammingError("SELECT", {}, Exception("syntax error"))) is None  # a bug keeps its traceback


def test_wrong_password_missing_database_and_missing_rights(
    isolated_home: Path, pg_server: PostgresServer, pg_empty_url: str
) -> None:
    home = DataHome(isolated_home)
    with pytest.raises(StoreError, match="refused the user name or password") as refused:
        open_store(home, pg_server.url("postgres", PASSWORD_USER, "wrong-password"))
    assert "wrong-password" not in str(refused.value) and "***" in str(refused.value)
    with pytest.raises(StoreError, match="does not exist: create it first"):
        open_store(home, pg_server.url("no_such_gallery"))
    assert not isolated_home.exists()
    # The right password, but a user who may not create tables there (PostgreSQL 15+: not in `public`).
    name = pg_empty_url.split("/")[3].split("?")[0]
    with pytest.raises(StoreError, match="may not do this") as refused:
        open_store(home, pg_server.url(name, PASSWORD_USER, PASSWORD))
    assert PASSWORD not in str(refused.value)
    assert _revision(pg_empty_url) is None  # the migration was one transaction: none of it is left


def test_missing_psycopg2_names_the_extra_to_install(
    isolated_home: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg2", None)  # what `import psycopg2` sees where it is not installed
    with pytest.raises(StoreError) as refused:
        open_store(DataHome(isolated_home), pg_url)
    assert str(refused.value) == INSTALL_HINT


def _with_password(url: str, password: str) -> str:
    """The administrator's URL with a password in it (over the trusted socket any password logs in)."""
    return url.replace("postgres:@", f"postgres:{password}@", 1)


def test_the_password_is_masked_wherever_the_store_is_shown(pg_url: str, home: DataHome) -> None:
    url = _with_password(pg_url, "topsecret")
    store = open_store(home, url)
    try:
        assert "topsecret" not in store.location and "***" in store.location
        assert "topsecret" not in repr(store)
        assert store.environment() == {DATABASE_ENV: url}  # a child process gets the real URL
    finally:
        store.close()
    assert "topsecret" not in masked("postgresql://u:topsecret@h:notaport/db")


# --- model rows and the vectors behind similar, duplicates and nearest -----------------------------


def _encoder(repository: EmbeddingRepository, dataset_id: int, name: str) -> EncoderRecord:
    return repository.add_encoder(
        {
            "dataset_id": dataset_id,
            "folder": f"encoders/{name}",
            "weights_hash": name,
            "input_size": 16,
            "channels": 1,
            "dims": 4,
            "steps": 1,
            "settings": {"width": 16},
            "metrics": {},
            "duplicate_threshold": 0.1,
            "memorised_threshold": 0.2,
        }
    )


def test_model_rows_and_embedding_vectors_round_trip_on_both_backends(store: Store) -> None:
    with store.session() as session:
        dataset = Dataset(name="d", folder="datasets/d", size=16, channels=1, count=2, origin="import")
        session.add(dataset)
        session.flush()
        images = [DatasetItem(dataset_id=dataset.id, position=i, source=f"{i}", content_hash=str(i)) for i in (0, 1)]
        session.add_all(images)
        model = Model(name="g", family="gan", folder="models/g", resolution=16, channels=1, dataset_id=dataset.id)
        session.add(model)
        session.flush()
        dataset_id, image_ids, model_id = dataset.id, [i.id for i in images], model.id
    items = [_add(store, f"i{n}") for n in range(3)]
    with store.session() as session:  # made by the model: they count for its dataset's encoder
        session.execute(update(GalleryItem).where(GalleryItem.id.in_(items)).values(model_id=model_id))
    repository = EmbeddingRepository(store)
    encoder = _encoder(repository, dataset_id, "first")
    vectors = np.arange(20, dtype=np.float32).reshape(5, 4) / 7
    rows = [VectorRow(vectors[i], dataset_item_id=image_ids[i]) for i in (0, 1)]
    rows += [
        VectorRow(vectors[2 + i], gallery_item_id=items[i], nearest_item_id=image_ids[1], nearest_distance=0.25)
        for i in (0, 1)
    ]
    assert repository.put(encoder.id, rows) == 4
    assert repository.put(encoder.id, rows) == 0  # already there: skipped, not duplicated
    gallery = repository.vectors(encoder, "gallery")
    assert gallery.owners.tolist() == items[:2] and np.array_equal(gallery.matrix, vectors[2:4])
    assert np.array_equal(repository.vectors(encoder, "dataset").matrix, vectors[:2])
    assert repository.missing_gallery_items(encoder, 10) == [(items[2], "gallery/i2.png")]
    assert repository.missing_count(encoder) == 1 and repository.vector_count(encoder, "gallery") == 2
    assert repository.nearest_of(encoder, items[0]) == (image_ids[1], 0.25)
    assert repository.dataset_of_model("g") == (dataset_id, "d")
    newer = _encoder(repository, dataset_id, "second")  # the old encoder's vectors go
    assert repository.current_encoder(dataset_id) == newer and repository.vector_count(encoder, "gallery") == 0


def test_training_history_round_trips_on_both_backends(store: Store) -> None:
    with store.session() as session:
        model = Model(name="g", family="gan", folder="models/g", resolution=8, channels=1)
        session.add(model)
        session.flush()
        run = TrainingRun(model_id=model.id, status="completed", end_step=3, final_losses={"loss": 0.5})
        session.add(run)
        session.flush()
        model_id, run_id = model.id, run.id
    history = HistoryRepository(store)
    history.add(run_id, [("train", "loss", step, 1.0 / (step + 1)) for step in range(3)] + [("eval", "fid", 2, 9.5)])
    assert history.model_id("g") == model_id
    assert [(r.id, r.points, r.final_losses) for r in history.runs(model_id)] == [(run_id, 4, {"loss": 0.5})]
    series = history.series(run_id)
    assert [(s.tag, s.steps.tolist()) for s in series] == [("eval/fid", [2]), ("train/loss", [0, 1, 2])]
    assert series[1].values.tolist() == [1.0, 0.5, 1 / 3]


# --- an interpolation's frames among another writer's rows -----------------------------------------


def _frame(store: Store, name: str, frame: int, ends: tuple[str, str] = ("seed:3", "seed:9")) -> int:
    path = store.home.gallery / f"{name}.png"
    Image.new("RGB", (8, 8)).save(path)
    params = {"from": ends[0], "to": ends[1], "frame": frame, "frames": 4, "t": frame / 3}
    entry = GalleryRepository(store).add(
        store.home.relative(path), "m", "gan", 8, 8, operation="interpolate", params=params
    )
    return entry.id


def test_an_interpolations_frames_are_found_among_another_writers_rows(store: Store) -> None:
    from studio.engine.animation import interpolation_frames

    earlier = [_frame(store, f"earlier{i}", i) for i in range(4)]  # the same ends, made before
    mine: list[int] = []
    for index in range(4):  # another process's rows take ids between the frames of this one
        mine.append(_frame(store, f"mine{index}", index))
        _frame(store, f"other{index}", index, ends=("seed:1", "seed:2"))
        _add(store, f"sample{index}")
    assert [e.id for e in interpolation_frames(store, mine[2])] == mine
    assert [e.id for e in interpolation_frames(store, earlier[0])] == earlier
    GalleryRepository(store).delete([mine[1]])  # a frame in the trash is left out, not replaced by an earlier one
    assert [e.id for e in interpolation_frames(store, mine[3])] == [mine[0], mine[2], mine[3]]


# --- transient errors are retried ----------------------------------------------------------------


@pytest.mark.parametrize("code", ["serialization_failure", "deadlock_detected"])
def test_serialization_failures_and_deadlocks_are_retried(pg_store: Store, code: str) -> None:
    attempts = []

    @retry_when_busy
    def change() -> int:
        with pg_store.session() as session:
            attempts.append(1)
            session.add(Tag(name=f"t{len(attempts)}", key=f"t{len(attempts)}"))
            session.flush()
            if len(attempts) == 1:  # the server rolls this transaction back, as it would for a real conflict
                session.execute(text(f"DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '{code}'; END $$"))
            return len(attempts)

    assert change() == 2
    with pg_store.sessions() as session:
        assert session.scalars(select(Tag.name)).all() == ["t2"]  # the failed attempt left nothing


def test_a_constraint_violation_is_not_mistaken_for_a_busy_database(pg_store: Store) -> None:
    with pytest.raises(IntegrityError) as failed, pg_store.session() as session:
        session.execute(text("INSERT INTO tags (name, key) VALUES ('a', 'a'), ('b', 'a')"))
    assert not is_busy(failed.value)


# --- SQLite-only parts ---------------------------------------------------------------------------


def test_backup_and_restore_are_refused_on_postgres(
    capsys: pytest.CaptureFixture[str], pg_env: str, tmp_path: Path
) -> None:
    for argv in (["backup", str(tmp_path / "copy.db")], ["restore", str(tmp_path / "copy.db")]):
        assert main(argv) == 1
        err = capsys.readouterr().err.strip()
        assert "back up a PostgreSQL gallery with pg_dump" in err and "\n" not in err
    assert not (tmp_path / "copy.db").exists()


# --- the CLI -------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def test_cli_commands_work_the_same_on_postgres(
    capsys: pytest.CaptureFixture[str], home: DataHome, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(home, pg_url)
    first, second = _add(store, "a"), _add(store, "b")
    with store.session() as session:
        session.add(Model(name="shared-model", family="gan", folder="models/shared-model", resolution=8, channels=1))
    store.close()
    # An empty SQLite in the home, so that a command reading it by mistake would see nothing.
    open_store(home).close()

    database = ["--database", pg_url]
    assert [i["id"] for i in _cli(capsys, *database, "gallery", "list")["items"]] == [second, first]  # type: ignore[index]
    assert _cli(capsys, "gallery", "rate", str(first), "4", *database)["count"] == 1
    assert _cli(capsys, "gallery", "tag", str(first), str(second), "Team Pick", *database)["count"] == 2
    monkeypatch.setenv(DATABASE_ENV, pg_url)  # the environment works the same, --database not given
    listed = _cli(capsys, "gallery", "list", "--tag", "team pick")["items"]
    assert [(i["id"], i["rating"], i["tags"]) for i in listed] == [  # type: ignore[index, union-attr]
        (second, 0, ["Team Pick"]),
        (first, 4, ["Team Pick"]),
    ]
    assert [m["name"] for m in _cli(capsys, "models", "list")["models"]] == ["shared-model"]  # type: ignore[index]
    monkeypatch.setenv(DATABASE_ENV, "postgresql://nobody:x@127.0.0.1:1/nothing")
    assert _cli(capsys, "gallery", "list", *database)["items"]  # --database wins over the environment
    monkeypatch.delenv(DATABASE_ENV)
    assert _cli(capsys, "gallery", "list")["items"] == []  # without either: SQLite in the home, untouched


def test_cli_info_names_the_database_with_the_password_masked(
    capsys: pytest.CaptureFixture[str], pg_url: str, home: DataHome
) -> None:
    code = main(["info", "--database", _with_password(pg_url, "topsecret")])
    out, err = capsys.readouterr()
    assert code == 0, err
    name = pg_url.split("/")[3].split("?")[0]
    assert f"postgresql://postgres:***@/{name}" in out and "topsecret" not in out + err


def test_cli_bad_url_is_one_line(capsys: pytest.CaptureFixture[str], isolated_home: Path) -> None:
    assert main(["gallery", "list", "--database", "postgresql://bob:hunter2@127.0.0.1:1/x"]) == 1
    err = capsys.readouterr().err.strip()
    assert "cannot reach the PostgreSQL server" in err
    assert "\n" not in err and "hunter2" not in err


# --- two processes at once -----------------------------------------------------------------------


def test_two_processes_writing_at_once_lose_nothing(home: DataHome, pg_url: str, tmp_path: Path) -> None:
    store = open_store(home, pg_url)
    shared = [_add(store, f"shared{i}") for i in range(3)]
    ready = tmp_path / "ready"
    ready.mkdir()
    items = 15
    code = (
        "import sys; from tests.store.postgres import write_concurrently as w; "
        "w(*sys.argv[1:3], int(sys.argv[3]), {}, {}, sys.argv[4])"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code.format(items, shared), str(home.root), pg_url, str(worker), str(ready)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in (0, 1)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    try:
        repository = GalleryRepository(store)
        with store.sessions() as session:
            assert session.scalar(select(func.count(GalleryItem.id))) == 2 * items + len(shared)
            links = session.execute(select(GalleryItemTag.item_id, Tag.name).join(Tag)).all()
        by_item: dict[int, set[str]] = {}
        for item_id, name in links:
            by_item.setdefault(item_id, set()).add(name)
        for worker in (0, 1):
            mine = [e for e in repository.query(sort="oldest", limit=200).items if e.params.get("worker") == worker]
            assert len(mine) == items
            for index, entry in enumerate(sorted(mine, key=lambda e: e.seed or 0)):
                assert entry.rating == 1 + index % 5
                assert {f"worker-{worker}", f"both-{index}"} <= by_item[entry.id]
                assert "together" in entry.collections
        for shared_id in shared:
            assert {"shared-0", "shared-1"} <= by_item[shared_id]
        assert {t["name"] for t in repository.tags()} >= {f"both-{i}" for i in range(items)}
    finally:
        store.close()
