"""A team gallery on PostgreSQL: the database URL, its engine, and the checks made before migrating.

`$STUDIO_DATABASE_URL` (or the CLI's `--database URL`, which wins) names a PostgreSQL database; without
either, the store is SQLite in the data home. Files stay in the data home either way: rows hold paths
relative to it, so a team shares one folder and one database. This module imports nothing of the store
above it (database.py builds the Store from what it returns).
"""

from __future__ import annotations

import importlib.util
import os
import re

from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from studio.errors import StoreError
from studio.failures import explain_postgres

DATABASE_ENV = "STUDIO_DATABASE_URL"
DRIVERS = ("postgresql", "postgresql+psycopg2")
# An unreachable server (a firewall that drops packets) must not hang a command for minutes.
CONNECT_TIMEOUT_S = 5
# pg_advisory_xact_lock's key ("STUDIO" in ASCII): openers that find an old schema migrate one at a time.
MIGRATION_LOCK = 0x53545544494F
URL_SHAPE = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
INSTALL_HINT = "PostgreSQL support needs psycopg2: pip install 'studio[postgres]'"


def database_url(explicit: str | None = None) -> str | None:
    """The database URL given explicitly, else `$STUDIO_DATABASE_URL`, else None (SQLite in the data home)."""
    chosen = explicit if explicit is not None else os.environ.get(DATABASE_ENV)
    return chosen.strip() or None if chosen is not None else None


def parse_database_url(value: str) -> URL:
    """The URL as SQLAlchemy reads it, or a one-line StoreError (never echoing a password)."""
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise StoreError(
            f"the database URL (--database or ${DATABASE_ENV}) is not a valid URL: write it as {URL_SHAPE}"
        ) from None
    if url.drivername not in DRIVERS:
        raise StoreError(
            f"unsupported database '{url.drivername}': a team gallery runs on PostgreSQL ({URL_SHAPE}); "
            f"unset ${DATABASE_ENV} to use SQLite in the data home"
        )
    if not url.database:
        raise StoreError(f"the database URL {masked(url)} names no database: write it as {URL_SHAPE}")
    return url


def masked(url: URL | str) -> str:
    """The URL as it may be shown: the password replaced by ***."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Not parseable: hide whatever sits between "user:" and "@".
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def postgres_engine(url: URL) -> Engine:
    """An engine on psycopg2 with a short connect timeout (unless the URL sets one); refuses in one line
    when psycopg2 is missing."""
    if importlib.util.find_spec("psycopg2") is None:  # say what to install, before SQLAlchemy's ImportError
        raise StoreError(INSTALL_HINT)
    # The URL's own ?connect_timeout=N wins (a slow VPN); else CONNECT_TIMEOUT_S.
    defaults = {"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "studio"}
    return create_engine(
        url.set(drivername="postgresql+psycopg2"),
        connect_args={key: value for key, value in defaults.items() if key not in url.query},
        # A connection the server closed (a restart, an idle timeout) is replaced, not handed out.
        pool_pre_ping=True,
    )


def check_connection(engine: Engine, url: URL) -> None:
    """Connect once: an unreachable server, a wrong password or a missing database is a one-line StoreError."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        engine.dispose()
        message = explain_postgres(error, masked(url))
        if message is None:  # a reason libpq words in a way not foreseen: its first line still helps
            first = str(getattr(error, "orig", error)).strip().splitlines()[0]
            message = f"cannot use the PostgreSQL database {masked(url)}: {first}"
        raise StoreError(message) from None


def lock_migrations(connection: Connection) -> None:
    """Hold a lock until this transaction ends, so that two Studios never migrate at once."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def foreign_tables(connection: Connection) -> list[str]:
    """Tables of a database that has no Studio schema yet (none when it is empty and may be used)."""
    return sorted(inspect(connection).get_table_names())
