"""A process killed in the middle of an import leaves the data home exactly as it was."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.engine.datasets.samples import add_sample
from studio.engine.datasets.storage import list_datasets, load_images
from studio.engine.jobs import run_job
from studio.home import HOME_ENV, DataHome
from studio.store.database import open_store, quick_check
from tests.images import make_folder

ROOT = Path(__file__).resolve().parents[2]


def _digest(home: DataHome, name: str) -> str:
    store = open_store(home)
    try:
        return hashlib.sha256(load_images(store, name).tobytes()).hexdigest()
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_during_import_keeps_the_previous_state(tmp_path: Path, workers: int) -> None:
    home = DataHome(tmp_path / "home")
    store = open_store(home)
    run_job(add_sample(store, "digits", name="keep", size=8))
    store.close()
    before = _digest(home, "keep")
    make_folder(tmp_path / "src", 600, size=96)

    env = {**os.environ, HOME_ENV: str(home.root), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "datasets",
            "import",
            str(tmp_path / "src"),
            "--name",
            "big",
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # kill the decoding workers too, as a crash of the app would
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    for line in process.stderr:
        if line.startswith("decoding") and "%" in line and not line.split()[1].startswith("0.0"):
            break
        assert time.monotonic() < deadline, "the import never reported decoding progress"
    staged = list(home.staging.iterdir())
    assert staged, "the import should be mid-way, with a staging folder"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    assert quick_check(home.database) is None
    reopened = open_store(home)  # sweeps what the dead import left
    try:
        assert [d.name for d in list_datasets(reopened)] == ["keep"]
        assert list(home.staging.iterdir()) == []
        assert sorted(p.name for p in home.datasets.iterdir()) == ["keep"]
    finally:
        reopened.close()
    assert _digest(home, "keep") == before


@pytest.mark.slow
def test_ctrl_c_cancels_cleanly_without_tracebacks(tmp_path: Path) -> None:
    home = DataHome(tmp_path / "home")
    make_folder(tmp_path / "src", 600, size=96)
    env = {**os.environ, HOME_ENV: str(home.root), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "datasets",
            "import",
            str(tmp_path / "src"),
            "--name",
            "big",
            "--workers",
            "2",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith("decoding") and not line.split()[1].startswith("0.0"):
            break
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    rest = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 130, "".join(seen) + rest
    assert rest.strip().endswith("studio: error: cancelled: nothing was changed")
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest
    store = open_store(home)
    try:
        assert list_datasets(store) == []
        assert list(home.staging.iterdir()) == [] and list(home.datasets.iterdir()) == []
    finally:
        store.close()
