"""A real PostgreSQL server for the tests: started once per test session with pgserver, a fresh database
per test (copied from a migrated template, so each costs milliseconds), skipped with the reason where no
server can start.

Fixtures: `pg_server` (the running server), `pg_url` (a fresh, migrated database's URL), `pg_empty_url`
(a fresh, empty one), `pg_store` (a store on `pg_url`), and `store`, which test modules import to run
their tests on both backends: `from tests.store.postgres import store_on_both_backends  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from studio.home import DataHome
from studio.store.database import Store, open_store
from studio.store.postgres import DATABASE_ENV

BACKENDS = ("sqlite", "postgresql")
TEMPLATE = "studio_template"
# A second user with a password (the server's own user logs in without one, over its socket).
PASSWORD_USER, PASSWORD = "alice", "s3cret-pass"


@dataclass
class PostgresServer:
    """The server of this test session: its URLs and an administrator's connection."""

    server: Any
    socket_folder: str
    admin: Engine
    names: Iterator[int]

    def url(self, database: str, user: str = "postgres", password: str = "") -> str:
        """A URL to `database` on this server's socket."""
        return f"postgresql://{user}:{password}@/{database}?host={self.socket_folder}"

    def create(self, template: str | None = None) -> str:
        """A new database (a copy of `template` when given); its URL."""
        name = f"studio_test_{next(self.names)}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
        return self.url(name)

    def sql(self, statement: str) -> None:
        """Run one statement as the administrator, outside a transaction."""
        with self.admin.connect() as connection:
            connection.execute(text(statement))


def _require_password_for(pgdata: Path, user: str) -> None:
    """Make `user` log in with a password (scram), while the administrator keeps trust over the socket."""
    hba = pgdata / "pg_hba.conf"
    hba.write_text(f"local all {user} scram-sha-256\nhost all {user} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, in a short temporary folder (socket paths are limited)."""
    folder = Path(tempfile.mkdtemp(prefix="studio-pg-"))
    try:
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set" on a bare CI machine
            warnings.simplefilter("ignore")
            import pgserver  # type: ignore[import-untyped]

            server = pgserver.get_server(folder, cleanup_mode="stop")
            uri = server.get_uri("postgres")  # postgresql://postgres:@/postgres?host=SOCKET_FOLDER
    except ImportError:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip("no PostgreSQL server: the pgserver package is not installed (pip install pgserver)")
    except Exception as error:  # noqa: BLE001 - whatever stops a server from starting here is the skip reason
        shutil.rmtree(folder, ignore_errors=True)
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        pytest.skip(f"no PostgreSQL server could start here: {first}")
    admin = create_engine(uri.replace("postgresql://", "postgresql+psycopg2://", 1), isolation_level="AUTOCOMMIT")
    running = PostgresServer(server, uri.partition("?host=")[2], admin, itertools.count())
    try:
        _require_password_for(folder, PASSWORD_USER)
        running.sql(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
        # A throwaway server: durability is not what is tested, and fsync on ~100 small databases is
        # most of the time (and of the shutdown's checkpoint) on a slow disk.
        for setting in ("fsync = off", "synchronous_commit = off", "full_page_writes = off"):
            running.sql(f"ALTER SYSTEM SET {setting}")
        running.sql("SELECT pg_reload_conf()")
        running.sql(f'CREATE DATABASE "{TEMPLATE}"')
        # Migrated once; every test's database is a copy of it (CREATE DATABASE ... TEMPLATE is a file copy).
        open_store(DataHome(folder / "template-home"), running.url(TEMPLATE)).close()
        yield running
    finally:
        admin.dispose()
        with contextlib.suppress(Exception):
            server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """A fresh database at the newest schema, for this test alone."""
    return pg_server.create(TEMPLATE)


@pytest.fixture
def pg_empty_url(pg_server: PostgresServer) -> str:
    """A fresh, empty database (no schema at all), for this test alone."""
    return pg_server.create()


@pytest.fixture
def pg_store(home: DataHome, pg_url: str) -> Iterator[Store]:
    """An open store on a fresh PostgreSQL database, its files in the test's data home."""
    opened = open_store(home, pg_url)
    yield opened
    opened.close()


@pytest.fixture(name="store", params=BACKENDS)
def store_on_both_backends(request: pytest.FixtureRequest, home: DataHome) -> Iterator[Store]:
    """The test's store on SQLite in the data home, then on PostgreSQL (files in the home either way)."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    opened = open_store(home, url)
    yield opened
    opened.close()


@pytest.fixture
def pg_env(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """$STUDIO_DATABASE_URL set to a fresh database for this test (what a team member's shell would hold)."""
    monkeypatch.setenv(DATABASE_ENV, pg_url)
    return pg_url


def write_concurrently(home_root: str, url: str, worker: int, items: int, shared: list[int], ready: str) -> None:
    """One of two processes writing into one gallery at once: adds `items` images (file, then row through
    the gallery repository), rates, tags and collects each, creates a tag the other process creates too,
    and tags the `shared` items. Starts writing when both processes are ready (`ready`: a folder)."""
    from PIL import Image

    from studio.store.gallery import GalleryRepository

    store = open_store(DataHome(Path(home_root)), url)
    repository = GalleryRepository(store)
    flags = Path(ready)
    (flags / str(worker)).touch()
    deadline = time.monotonic() + 60
    while len(list(flags.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    for index in range(items):
        path = store.home.gallery / f"worker{worker}-{index}.png"
        Image.new("RGB", (8, 8), (worker * 100, index, 0)).save(path)
        entry = repository.add(store.home.relative(path), "m", "gan", 8, 8, seed=index, params={"worker": worker})
        repository.rate([entry.id], 1 + index % 5)
        repository.tag([entry.id], f"worker-{worker}")
        repository.tag([entry.id], f"both-{index}")  # the other process creates this tag at the same moment
        repository.collect([entry.id], "together")
        repository.tag([shared[index % len(shared)]], f"shared-{worker}")
    store.close()
