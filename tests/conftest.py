"""Shared fixtures: every test gets its own data home; Qt runs offscreen."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from studio.home import HOME_ENV, DataHome
from studio.store.database import Store, open_store
from studio.store.postgres import DATABASE_ENV
from tests.store.postgres import pg_empty_url, pg_env, pg_server, pg_store, pg_url  # noqa: F401 - fixtures


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point $STUDIO_HOME at a fresh folder so no test can touch a real home."""
    root = tmp_path / "home"
    monkeypatch.setenv(HOME_ENV, str(root))
    monkeypatch.delenv(DATABASE_ENV, raising=False)  # nor a team's PostgreSQL gallery
    return root


@pytest.fixture
def home(isolated_home: Path) -> DataHome:
    """The test's data home, created."""
    return DataHome(isolated_home).ensure()


@pytest.fixture
def store(home: DataHome) -> Iterator[Store]:
    """An open, migrated store in the test's home."""
    opened = open_store(home)
    yield opened
    opened.close()
