"""The data home: one folder that holds everything Studio stores.

`$STUDIO_HOME` wins when set, else the platform's user data folder (platformdirs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from studio.errors import StudioError

APP_NAME = "studio"
HOME_ENV = "STUDIO_HOME"


@dataclass(frozen=True)
class DataHome:
    """Paths inside one data home; two homes share nothing."""

    root: Path

    @classmethod
    def resolve(cls, explicit: str | os.PathLike[str] | None = None) -> DataHome:
        """The home named explicitly, else `$STUDIO_HOME`, else the platform default."""
        chosen = explicit or os.environ.get(HOME_ENV) or platformdirs.user_data_dir(APP_NAME, appauthor=False)
        return cls(Path(chosen).expanduser().resolve())

    @property
    def database(self) -> Path:
        """The SQLite file."""
        return self.root / "studio.db"

    @property
    def datasets(self) -> Path:
        """One folder per imported dataset."""
        return self.root / "datasets"

    @property
    def models(self) -> Path:
        """One folder per model (config.json + safetensors)."""
        return self.root / "models"

    @property
    def gallery(self) -> Path:
        """Generated images."""
        return self.root / "gallery"

    @property
    def encoders(self) -> Path:
        """One folder per dataset, holding its contrastive encoders (one subfolder per weights hash)."""
        return self.root / "encoders"

    @property
    def staging(self) -> Path:
        """Work in progress; renamed into place when complete, swept when its owner died."""
        return self.root / "tmp"

    @property
    def backups(self) -> Path:
        """Database copies taken before each migration."""
        return self.root / "backups"

    def ensure(self) -> DataHome:
        """Create the home and its folders if missing; a home that is a file is refused in one line."""
        if self.root.exists() and not self.root.is_dir():
            raise StudioError(
                f"the data home {self.root} is a file, not a folder: point --home or ${HOME_ENV} at a folder"
            )
        for folder in (self.root, self.datasets, self.models, self.gallery, self.encoders, self.staging, self.backups):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def relative(self, path: Path) -> str:
        """A path inside the home as a portable string relative to the root (for the database)."""
        return path.resolve().relative_to(self.root).as_posix()

    def absolute(self, relative: str) -> Path:
        """The inverse of `relative`; refuses anything that would leave the home."""
        path = (self.root / relative).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"path escapes the data home: {relative}")
        return path
