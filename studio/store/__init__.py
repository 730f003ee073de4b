"""The SQLite store: ORM models, the database opener with migrations, and repositories."""

from studio.store.database import Store, open_store

__all__ = ["Store", "open_store"]
