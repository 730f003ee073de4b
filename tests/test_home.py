"""The data home: where it is, what it holds, and that paths never leave it."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.home import HOME_ENV, DataHome


def test_environment_variable_chooses_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "elsewhere"))
    assert DataHome.resolve().root == (tmp_path / "elsewhere").resolve()


def test_explicit_path_wins_over_the_environment(tmp_path: Path) -> None:
    assert DataHome.resolve(tmp_path / "explicit").root == (tmp_path / "explicit").resolve()


def test_platform_folder_when_nothing_is_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(HOME_ENV)
    monkeypatch.setattr("platformdirs.user_data_dir", lambda *a, **k: str(tmp_path / "platform" / "studio"))
    assert DataHome.resolve().root == (tmp_path / "platform" / "studio").resolve()


def test_ensure_creates_the_layout(tmp_path: Path) -> None:
    home = DataHome(tmp_path / "h").ensure()
    for name in ("datasets", "models", "gallery", "tmp", "backups"):
        assert (home.root / name).is_dir()
    assert home.database == home.root / "studio.db"


def test_paths_are_stored_relative_and_cannot_escape(tmp_path: Path) -> None:
    home = DataHome(tmp_path.resolve() / "h").ensure()
    inside = home.gallery / "a.png"
    assert home.relative(inside) == "gallery/a.png"
    assert home.absolute("gallery/a.png") == inside
    with pytest.raises(ValueError, match="escapes"):
        home.absolute("../outside.png")
    with pytest.raises(ValueError, match="escapes"):
        home.absolute("/etc/passwd")


def test_two_homes_share_nothing(tmp_path: Path) -> None:
    from studio.engine.datasets.samples import add_sample
    from studio.engine.datasets.storage import list_datasets
    from studio.engine.jobs import run_job
    from studio.store.database import open_store

    first, second = (open_store(DataHome(tmp_path / name)) for name in ("one", "two"))
    try:
        run_job(add_sample(first, "digits", size=8))
        assert [d.name for d in list_datasets(first)] == ["digits"]
        assert list_datasets(second) == []
        assert not any((tmp_path / "two" / "datasets").iterdir())
    finally:
        first.close()
        second.close()
