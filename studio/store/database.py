"""Opening the store: pragmas, integrity check, backup, and automatic Alembic migrations.

SQLite in the data home by default; PostgreSQL when a URL names one (studio/store/postgres.py), with the
same migrations and without the SQLite-only parts (pragmas, quick_check, file backups).
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from studio.errors import StoreError
from studio.failures import explain, explain_postgres, is_busy, is_damage, read_only_file_system
from studio.files import partial_path, sweep_abandoned
from studio.home import DataHome
from studio.store import postgres
from studio.store.tables import Dataset, GalleryItem, Model

MIGRATIONS = Path(__file__).with_name("migrations")
BACKUPS_KEPT = 5
BUSY_TIMEOUT_MS = 10_000  # how long SQLite itself waits for another connection's lock
# How long a write keeps retrying after SQLite gave up waiting: a bound, so no command hangs forever
# behind a stuck process. Each retry may itself wait BUSY_TIMEOUT_MS.
BUSY_RETRY_SECONDS = 30.0

_P = ParamSpec("_P")
_T = TypeVar("_T")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest schema revision this version of Studio knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def _set_pragmas(dbapi_connection: sqlite3.Connection, _record: object, *, writable: bool) -> None:
    cursor = dbapi_connection.cursor()
    # First: switching to WAL takes a lock too, and without a timeout a second process opening the
    # store at that moment would fail at once with "database is locked".
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    if writable:  # WAL lets the UI read while the engine thread writes
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_retrying = threading.local()  # set while a retried call runs: calls inside it do not retry again


def retry_when_busy(function: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run `function` again, with growing pauses, while SQLite reports the database busy; bounded.

    `function` must be one transaction (or undo its own partial work when it fails), so that running
    it again is safe. After BUSY_RETRY_SECONDS the failure becomes a one-line StoreError.
    """

    @functools.wraps(function)
    def retried(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        if getattr(_retrying, "active", False):
            return function(*args, **kwargs)  # the outermost retried call retries the whole of it
        _retrying.active = True
        try:
            deadline = time.monotonic() + BUSY_RETRY_SECONDS
            pause = 0.05
            while True:
                try:
                    return function(*args, **kwargs)
                except OperationalError as error:
                    if not is_busy(error):
                        raise
                    if time.monotonic() + pause > deadline:
                        raise StoreError(
                            "the database is busy: another Studio process has kept it locked for too long; "
                            "try again when it has finished (this change was not made)"
                        ) from None
                # Jitter, so that processes that collided once do not collide again in step.
                time.sleep(pause * random.uniform(0.5, 1.5))
                pause = min(pause * 2, 1.0)
        finally:
            _retrying.active = False

    return retried


def _read_only_uri(path: Path, immutable: bool = False) -> str:
    """A read-only SQLite URI; `immutable` also skips locking and the WAL index (-shm), which a
    read-only file system cannot hold: only safe where nothing can write the file meanwhile."""
    return f"file:{path}?mode=ro{'&immutable=1' if immutable else ''}"


def quick_check(path: Path, immutable: bool = False) -> str | None:
    """Run `PRAGMA quick_check`; return None when sound, else the first problem found.

    Only SQLite's verdict of corruption counts as a problem: an error of the environment (a full or
    read-only disk, no permission) is raised as it is, never reported as damage.
    """
    connection = sqlite3.connect(_read_only_uri(path, immutable), uri=True)
    try:
        rows = connection.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as error:
        if is_damage(error):
            return str(error)
        raise
    finally:
        connection.close()
    problems = [row[0] for row in rows if row[0] != "ok"]
    return problems[0] if problems else None


def backup_database(source: Path, destination: Path) -> Path:
    """Copy a live database consistently with SQLite's backup API."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(destination)
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(partial)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
        partial.replace(destination)
    except BaseException as error:
        with contextlib.suppress(OSError):  # must not hide the error that brought us here
            partial.unlink(missing_ok=True)  # a full disk must not leave half a copy behind
        # SQLite names no file: say which one failed (the copy, not the home's database).
        explained = explain(error, database=destination) if isinstance(error, sqlite3.Error) else None
        if explained is not None:
            raise explained from error
        raise
    return destination


def refuse_on_postgres(what: str, database: str | None = None) -> None:
    """A one-line StoreError when the store is on PostgreSQL (`database`, else $STUDIO_DATABASE_URL):
    `what` (a file backup, a restore) works on the SQLite file only."""
    url = postgres.database_url(database)
    if url is not None:
        raise StoreError(
            f"{what} works on the SQLite database in the data home; this gallery is on PostgreSQL "
            f"({postgres.masked(url)}): back up a PostgreSQL gallery with pg_dump (and restore with pg_restore)"
        )


def backup_to(home: DataHome, destination: Path, database: str | None = None) -> Path:
    """`studio backup DEST`: a consistent copy of the live database at a new path the user chose."""
    refuse_on_postgres("studio backup", database)
    destination = destination.expanduser().absolute()
    if destination.exists():
        raise StoreError(f"{destination} already exists: choose a new name (nothing is overwritten)")
    if not destination.parent.is_dir():
        raise StoreError(f"{destination.parent} is not a folder")
    if not os.access(destination.parent, os.W_OK):
        raise StoreError(f"{destination.parent} is not writable")
    if not home.database.is_file():
        raise StoreError(f"there is no database at {home.database} yet")
    return backup_database(home.database, destination)


def restore_database(home: DataHome, source: Path, database: str | None = None) -> dict[str, str]:
    """`studio restore SRC`: put a backup back; the current database is backed up first.

    The backup must be sound and from this Studio or an older one (it is migrated after); no other
    Studio process should have the home open.
    """
    refuse_on_postgres("studio restore", database)
    source = source.expanduser().absolute()
    if not source.is_file():
        raise StoreError(f"no backup file at {source}")
    try:
        problem = quick_check(source)
        revision = _read_revision(source)
    except sqlite3.DatabaseError as error:
        if not is_damage(error):
            raise  # the environment (permissions, a full disk): explained at the boundary
        raise StoreError(f"{source.name} is not a SQLite database ({error})") from None
    if problem is not None:
        raise StoreError(f"{source.name} is damaged ({problem}): nothing was changed")
    if revision is None:
        raise StoreError(f"{source.name} is not a Studio database: nothing was changed")
    if revision not in _known_revisions():
        raise StoreError(f"{source.name} was written by a newer Studio (schema {revision}): update Studio first")
    home.ensure()
    saved = None
    if home.database.is_file() and home.database.stat().st_size > 0:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        saved = backup_database(home.database, home.backups / f"studio-before-restore-{stamp}.db")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(home.database)
    try:
        src.backup(dst)  # page by page into the live file, under SQLite's own locking
    finally:
        dst.close()
        src.close()
    open_store(home).close()  # migrate an older backup to this schema now
    return {"restored": str(source), "revision": revision, "previous_saved_as": str(saved) if saved else ""}


@dataclass
class Store:
    """An open store: the engine, a session factory and whether writes are allowed."""

    home: DataHome
    engine: Engine
    sessions: sessionmaker[Session]
    read_only_reason: str | None = None
    backups_made: list[Path] = field(default_factory=list)
    # The PostgreSQL URL (None: SQLite in the home). Kept out of repr: it may hold a password. A process
    # this one starts gets it as $STUDIO_DATABASE_URL (see `environment`).
    url: str | None = field(default=None, repr=False)

    @property
    def on_postgres(self) -> bool:
        """True for a team gallery on PostgreSQL, False for SQLite in the data home."""
        return self.url is not None

    @property
    def location(self) -> str:
        """Where the rows live, fit to show: the SQLite file, or the PostgreSQL URL with its password masked."""
        return postgres.masked(self.url) if self.url is not None else str(self.home.database)

    def environment(self) -> dict[str, str]:
        """The variables a child process (a training run, a worker) needs to open this same store."""
        return {postgres.DATABASE_ENV: self.url} if self.url is not None else {}

    @property
    def read_only(self) -> bool:
        """True when the database was opened without write access (and why is in read_only_reason)."""
        return self.read_only_reason is not None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        session = self.sessions()
        try:
            yield session
            if self.read_only and (session.new or session.dirty or session.deleted):
                raise StoreError(f"the database is read-only: {self.read_only_reason}")
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def write(self, change: Callable[[Session], _T]) -> _T:
        """Run `change` in one committed transaction, retried (bounded) while the database is busy."""

        @retry_when_busy
        def attempt() -> _T:
            with self.session() as session:
                return change(session)

        return attempt()

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()


def _make_engine(path: Path, read_only: bool, immutable: bool = False) -> Engine:
    if read_only:
        uri = _read_only_uri(path, immutable)
        engine = create_engine(f"sqlite:///{uri}&uri=true", connect_args={"check_same_thread": False})
    else:
        engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
    event.listen(engine, "connect", functools.partial(_set_pragmas, writable=not read_only))
    return engine


def _known_revisions() -> set[str]:
    script = ScriptDirectory.from_config(_alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def _read_revision(path: Path, immutable: bool = False) -> str | None:
    connection = sqlite3.connect(_read_only_uri(path, immutable), uri=True)
    try:
        has_table = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='alembic_version'"
        ).fetchone()
        if not has_table:
            return None
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None
    finally:
        connection.close()


def _prune_backups(folder: Path) -> None:
    backups = sorted(folder.glob("studio-*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in backups[BACKUPS_KEPT:]:
        old.unlink(missing_ok=True)


def _refresh_statistics(connection: Any) -> None:
    """ANALYZE when the gallery has no statistics or has grown or shrunk by a quarter since.

    Without them SQLite filters on the `deleted_at` index and sorts every row: 200 ms a page at
    100,000 items instead of 3 ms. A full ANALYZE costs about a second per million rows, so it runs
    only when the table changed enough to matter, never at every start.
    """
    rows = connection.exec_driver_sql("SELECT count(*) FROM gallery_items").scalar() or 0
    try:
        stat = connection.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = 'gallery_items' LIMIT 1").scalar()
    except Exception:  # noqa: BLE001 - no sqlite_stat1 table yet: never analysed
        stat = None
    analysed = int(str(stat).split()[0]) if stat else None
    if rows < 1000 and analysed is None:
        return  # small galleries plan well without statistics
    if analysed is None or abs(rows - analysed) > max(1000, rows // 4):
        connection.exec_driver_sql("ANALYZE")


def open_store(home: DataHome, database: str | None = None, maintenance: bool = True) -> Store:
    """Open (creating or migrating as needed) the store of a data home.

    `database` is a PostgreSQL URL (default: $STUDIO_DATABASE_URL; neither: SQLite in the home). A damaged
    SQLite database raises StoreError; one written by a newer Studio, or in a home on a read-only file
    system, opens read-only (reading works, writing says why not). Without `maintenance` (a follower
    process, e.g. a training worker of rank > 0) the statistics refresh and the sweep of abandoned
    folders are left to the process it follows.
    """
    url = postgres.database_url(database)
    if url is not None:
        return _open_postgres(home, url, maintenance)
    path = home.database
    if read_only_file_system(home.root) and path.is_file() and path.stat().st_size > 0:
        return _open_read_only_file_system(home)
    home.ensure()
    existed = path.exists() and path.stat().st_size > 0
    backups: list[Path] = []
    if existed:
        problem = quick_check(path)
        if problem is not None:
            raise StoreError(f"the database {path} is damaged ({problem}); restore a backup from {home.backups}")
        revision = _read_revision(path)
        if revision is not None and revision not in _known_revisions():
            reason = (
                f"it was written by a newer version of Studio (schema {revision}); update Studio to change anything"
            )
            engine = _make_engine(path, read_only=True)
            return Store(home, engine, sessionmaker(engine, expire_on_commit=False), reason)
        if revision != head_revision():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            backups.append(backup_database(path, home.backups / f"studio-{revision or 'empty'}-{stamp}.db"))
            _prune_backups(home.backups)

    engine = _make_engine(path, read_only=False)
    with engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        if maintenance:
            _refresh_statistics(connection)
    store = Store(home, engine, sessionmaker(engine, expire_on_commit=False), None, backups)
    if maintenance:
        sweep_abandoned_folders(store)
    return store


def _open_postgres(home: DataHome, url_text: str, maintenance: bool = True) -> Store:
    """The store of a team gallery: connect (one line when that fails), then migrate under a lock.

    A schema from a newer Studio is refused rather than opened read-only: other team members' newer
    Studios keep writing to it, and this one must not misread their rows. Nothing is backed up here:
    that is pg_dump's job, before upgrading Studio.
    """
    url = postgres.parse_database_url(url_text)
    engine = postgres.postgres_engine(url)
    postgres.check_connection(engine, url)
    try:
        with engine.begin() as connection:
            postgres.lock_migrations(connection)
            revision = MigrationContext.configure(connection).get_current_revision()
            if revision is not None and revision not in _known_revisions():
                raise StoreError(
                    f"the gallery at {postgres.masked(url)} was written by a newer version of Studio "
                    f"(schema {revision}): update Studio to use it (nothing was changed)"
                )
            if revision is None and (tables := postgres.foreign_tables(connection)):
                raise StoreError(
                    f"the database {postgres.masked(url)} already holds other tables ({', '.join(tables[:3])}"
                    f"{', ...' if len(tables) > 3 else ''}): give Studio an empty database of its own"
                )
            if revision != head_revision():
                config = _alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")  # DDL is transactional here: all of it, or nothing
    except BaseException as error:
        engine.dispose()
        if isinstance(error, DBAPIError):  # the server went away, or the user may not create tables
            message = explain_postgres(error, postgres.masked(url))
            if message is not None:
                raise StoreError(message) from None
        raise
    home.ensure()
    store = Store(home, engine, sessionmaker(engine, expire_on_commit=False), url=url_text)
    if maintenance:
        sweep_abandoned_folders(store)
    return store


def _open_read_only_file_system(home: DataHome) -> Store:
    """The store of a home mounted read-only: opened immutable, since SQLite cannot create the WAL
    index (-shm) there, and nothing can write the file through a read-only mount."""
    path = home.database
    problem = quick_check(path, immutable=True)
    if problem is not None:
        raise StoreError(f"the database {path} is damaged ({problem}); restore a backup from {home.backups}")
    revision = _read_revision(path, immutable=True)
    if revision is not None and revision not in _known_revisions():
        reason = f"it was written by a newer version of Studio (schema {revision}); update Studio to change anything"
    elif revision != head_revision():
        reason = f"the data home ({home.root}) is on a read-only file system and needs a migration this version makes"
        raise StoreError(f"{reason}: remount it read-write once to upgrade it")
    else:
        reason = f"the data home ({home.root}) is on a read-only file system: remount it read-write to change anything"
    engine = _make_engine(path, read_only=True, immutable=True)
    return Store(home, engine, sessionmaker(engine, expire_on_commit=False), reason)


def sweep_abandoned_folders(store: Store) -> list[Path]:
    """Remove the staging, dataset and model folders that dead jobs left and no row points at."""
    home = store.home
    with store.session() as session:
        referenced = set(session.scalars(select(Dataset.folder))) | set(session.scalars(select(Model.folder)))
    return sweep_abandoned(
        (home.staging, home.datasets, home.models),
        lambda f: home.relative(f) in referenced,
        lambda paths: _remove_unregistered(store, paths),
    )


def _remove_unregistered(store: Store, paths: list[str]) -> None:
    """A dead generation's images whose rows were never committed: remove them (kept if a row exists)."""
    with store.session() as session:
        registered = set(session.scalars(select(GalleryItem.path).where(GalleryItem.path.in_(paths))))
    for relative in paths:
        if relative in registered:
            continue
        try:
            path = store.home.absolute(relative)
        except ValueError:
            continue  # a journal only ever lists paths inside the home: ignore anything else
        if path.is_relative_to(store.home.gallery):
            path.unlink(missing_ok=True)
            partial_path(path).unlink(missing_ok=True)  # killed while writing it
