"""A fixture for tests that start supervised runs: no run process outlives its test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from studio.engine.supervision.run_folder import run_folders
from studio.engine.supervision.supervisor import terminate
from studio.home import DataHome


@pytest.fixture(autouse=True)
def no_leftover_runs(home: DataHome) -> Iterator[None]:
    """End every run process a test leaves behind (a failed assertion must not leave a trainer going)."""
    yield
    for folder in run_folders(home):
        if folder.is_live():
            terminate(folder, grace=2.0)
