"""Helpers for the race and kill tests: Studio processes on one home, their output, strays and a model.

Every process a test starts carries a marker in its environment (inherited by anything it forks or
spawns), so the test can find strays by scanning /proc instead of trusting process trees.
"""

from __future__ import annotations

import atexit
import functools
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER_ENV = "STUDIO_FAULT_MARKER"
TINY_VAE = ["--set", "width=8", "--set", "latent_dim=4", "--set", "batch_size=8"]
MODEL = "m"  # the model of `model_home`


def studio_env(home: Path, marker: str) -> dict[str, str]:
    """The environment of a Studio process on `home`, tagged with `marker`."""
    return {**os.environ, "STUDIO_HOME": str(home), "PYTHONUNBUFFERED": "1", MARKER_ENV: marker}


@dataclass
class Running:
    """A Studio command running in the background, its stderr read line by line on a thread."""

    process: subprocess.Popen[str]
    marker: str
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for(self, wanted: Callable[[str], bool], timeout: float = 60) -> str:
        """The first stderr line `wanted` accepts; fails if the process ends or time runs out first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting; stderr so far:\n{''.join(self.seen)}"
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            assert line is not None, f"the process ended first (rc {self.process.poll()}):\n{''.join(self.seen)}"
            self.seen.append(line)
            if wanted(line):
                return line

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Wait for the end; the exit code and all of stderr."""
        code = self.process.wait(timeout=timeout)
        while (line := self.lines.get(timeout=timeout)) is not None:
            self.seen.append(line)
        return code, "".join(self.seen)

    def kill(self) -> None:
        """SIGKILL the command's own process only (its children must go by themselves)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def start(home: Path, *argv: str, marker: str | None = None) -> Running:
    """Start `python -m studio ARGV` on `home` in the background."""
    marker = marker or uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-m", "studio", *argv],
        cwd=ROOT,
        env=studio_env(home, marker),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    running = Running(process, marker)

    def pump() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            running.lines.put(line)
        running.lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return running


def run(home: Path, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m studio ARGV` on `home` to the end."""
    return subprocess.run(
        [sys.executable, "-m", "studio", *argv],
        cwd=ROOT,
        env=studio_env(home, uuid.uuid4().hex),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_line(stderr: str) -> str:
    """The one line a refused command printed (and the proof that it printed nothing else alarming)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("studio: error:")]
    assert len(lines) == 1, stderr
    return lines[0]


def marked_processes(marker: str) -> list[int]:
    """Live processes (not zombies) whose environment carries `marker`: strays, once their command is dead."""
    found = []
    needle = f"{MARKER_ENV}={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours
        if state != "Z":
            found.append(int(entry.name))
    return found


def open_files(pid: int) -> list[str]:
    """The paths a process has open (its /proc fd links)."""
    found = []
    try:
        links = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return []  # the process ended meanwhile
    for link in links:
        try:
            found.append(os.readlink(link))
        except OSError:
            continue  # closed meanwhile
    return found


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.05)


@contextmanager
def reaped(*commands: Running) -> Iterator[None]:
    """Kill whatever a test left running, whatever the outcome."""
    try:
        yield
    finally:
        for command in commands:
            if command.process.poll() is None:
                command.process.kill()
                command.process.wait(timeout=30)
            for pid in marked_processes(command.marker):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


@functools.cache
def _model_template() -> Path:
    """A home with the digits sample (8 px) and a tiny trained VAE named MODEL, built once per session."""
    from studio.engine.datasets.samples import add_sample
    from studio.engine.jobs import run_job
    from studio.engine.training import train
    from studio.engine.training_options import TrainOptions
    from studio.home import DataHome
    from studio.store.database import open_store

    root = Path(tempfile.mkdtemp(prefix="studio-faults-"))
    atexit.register(shutil.rmtree, root, True)
    home = DataHome(root / "template").ensure()
    store = open_store(home)
    try:
        run_job(add_sample(store, "digits", size=8))
        settings = {"width": 8, "latent_dim": 4, "batch_size": 8}
        run_job(train(store, TrainOptions(MODEL, family="vae", dataset="digits", steps=5, settings=settings)))
    finally:
        store.close()
    return home.root


def model_home(tmp_path: Path) -> Path:
    """A fresh copy of the template home at `tmp_path`/home (the test's $STUDIO_HOME)."""
    destination = tmp_path / "home"
    shutil.copytree(_model_template(), destination)
    return destination


def gallery_count(home: Path) -> int:
    """Gallery rows, read without Studio (a plain read-only connection)."""
    import sqlite3

    connection = sqlite3.connect(f"file:{home / 'studio.db'}?mode=ro", uri=True)
    try:
        return int(connection.execute("SELECT count(*) FROM gallery_items").fetchone()[0])
    finally:
        connection.close()


def describe(value: Any) -> str:
    """One line of an exception, for collecting errors across processes."""
    return f"{type(value).__name__}: {str(value).splitlines()[0] if str(value) else ''}"


# --- workers for multiprocessing (spawn): module-level so a fresh interpreter can import them ---


def curate(home: str, names: list[str], items: list[int], barrier: Any, results: Any) -> None:
    """Tag and collect `items` under each of `names`, all processes starting at once; report errors."""
    from studio.home import DataHome
    from studio.store.database import open_store
    from studio.store.gallery import GalleryRepository

    errors: list[str] = []
    store = open_store(DataHome(Path(home)))
    try:
        repository = GalleryRepository(store)
        barrier.wait(timeout=60)
        for name in names:
            for change in (repository.tag, repository.collect):
                try:
                    change(items, name)
                except Exception as error:  # noqa: BLE001 - every failure is what the test reports
                    errors.append(describe(error))
    finally:
        store.close()
        results.put(errors)


def hold_write_lock(database: str, seconds: float, ready: Any, released: Any = None) -> None:
    """Hold SQLite's write lock on `database` for `seconds` (as a long transaction elsewhere would);
    `released`, a shared double, gets the monotonic time (system-wide on Linux) the lock was let go."""
    import sqlite3

    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    ready.set()
    time.sleep(seconds)
    connection.execute("ROLLBACK")
    if released is not None:
        released.value = time.monotonic()
    connection.close()
