"""A supervised run's folder under the data home: its description, its control file, its log and its lock.

`<home>/runs/<run id>/` holds `run.json` (what was started, by whom, where), `events.jsonl` (what the
run reported), `control.json` (what its controller wants: running, paused or cancelled), `output.log`
(the process's stdout and stderr) and `run.lock`, an OS file lock the run's training process holds
for as long as it lives (the kernel drops it when the process dies, however it dies).
"""

from __future__ import annotations

import enum
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import psutil

from studio.errors import NotFoundError, StudioError
from studio.files import atomic_file, hold_lock
from studio.home import DataHome

RUNS_FOLDER = "runs"
RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
CONTROL_FILE = "control.json"
LOG_FILE = "output.log"
LOCK_FILE = "run.lock"
PREVIEWS_FOLDER = "previews"
KEEP_RUNS = 50  # ended runs' folders kept for `studio runs list`; older ones are pruned when a run starts
_RUN_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")
_MAX_JSON_BYTES = 1 << 20  # run.json and control.json are a few hundred bytes: anything larger is not ours


class ControlState(enum.StrEnum):
    """What a run's controller wants it to do."""

    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"


def runs_root(home: DataHome) -> Path:
    """The folder holding every supervised run's folder."""
    return home.root / RUNS_FOLDER


def new_run_id() -> str:
    """A fresh run id: the start time (sortable) and a random tail."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def read_json(path: Path) -> dict[str, Any] | None:
    """A small JSON object from `path`; None when missing, too large or not an object."""
    try:
        if path.stat().st_size > _MAX_JSON_BYTES:
            return None
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(path: Path, value: dict[str, Any]) -> None:
    """Write a JSON object atomically (a reader sees the old file or the new one, never half)."""
    with atomic_file(path) as handle:
        handle.write(json.dumps(value, indent=1, default=str).encode("utf-8"))


@dataclass(frozen=True)
class RunFolder:
    """One supervised run's folder and the files in it."""

    path: Path

    @property
    def id(self) -> str:
        """The run's id (its folder's name)."""
        return self.path.name

    @property
    def run_file(self) -> Path:
        """run.json: what was started."""
        return self.path / RUN_FILE

    @property
    def events_file(self) -> Path:
        """events.jsonl: one JSON object per event."""
        return self.path / EVENTS_FILE

    @property
    def control_file(self) -> Path:
        """control.json: the state the controller wants."""
        return self.path / CONTROL_FILE

    @property
    def log_file(self) -> Path:
        """output.log: the process's stdout and stderr."""
        return self.path / LOG_FILE

    @property
    def previews(self) -> Path:
        """The preview images the events point at."""
        return self.path / PREVIEWS_FOLDER

    def info(self) -> dict[str, Any]:
        """run.json's contents ({} when missing or unreadable)."""
        return read_json(self.run_file) or {}

    def write_info(self, info: dict[str, Any]) -> None:
        """Replace run.json."""
        write_json(self.run_file, info)

    def control(self) -> ControlState:
        """The state the controller asks for (running when nothing readable was written)."""
        value = (read_json(self.control_file) or {}).get("state")
        try:
            return ControlState(str(value))
        except ValueError:
            return ControlState.RUNNING

    def set_control(self, state: ControlState) -> None:
        """Ask the run to run, pause or stop (the run polls this file several times a second)."""
        write_json(self.control_file, {"state": str(state), "at": time.time()})

    def take_lock(self, wait_seconds: float = 5.0) -> BinaryIO:
        """Hold run.lock for this process's life; a checker holds it for an instant, so try for a while."""
        deadline = time.monotonic() + wait_seconds
        while True:
            lock = hold_lock(self.path / LOCK_FILE)
            if lock is not None:
                return lock
            if time.monotonic() > deadline:
                raise StudioError(f"run {self.id} is already being run by another process")
            time.sleep(0.02)

    def lock_held(self) -> bool:
        """Whether a process holds run.lock now."""
        if not (self.path / LOCK_FILE).exists():
            return False
        try:
            lock = hold_lock(self.path / LOCK_FILE)
        except OSError:
            return False
        if lock is None:
            return True
        lock.close()
        return False

    def processes_alive(self) -> bool:
        """Whether a process run.json records (the one started, a rank that joined) is still alive."""
        return any(process_alive(entry) for entry in self.info().get("processes", []) if isinstance(entry, dict))

    def is_live(self) -> bool:
        """Whether the run's process is alive: it holds the lock, or it has not taken it yet but exists."""
        return self.lock_held() or self.processes_alive()


def describe_process(pid: int, role: str) -> dict[str, Any]:
    """A process as run.json records it: its id and start time (so a reused id is not mistaken for it)."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = None
    return {"pid": pid, "role": role, "create_time": created}


def process_alive(entry: dict[str, Any]) -> bool:
    """Whether the recorded process still runs (not a zombie, not another process given the same id)."""
    pid = entry.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = entry.get("create_time")
        return not isinstance(created, float) or abs(process.create_time() - created) < 0.01
    except psutil.Error:
        return False


def create_run_folder(home: DataHome) -> RunFolder:
    """A new, empty run folder."""
    root = runs_root(home)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        path = root / new_run_id()
        try:
            path.mkdir()
        except FileExistsError:
            continue
        (path / PREVIEWS_FOLDER).mkdir()
        return RunFolder(path)


def run_folders(home: DataHome) -> list[RunFolder]:
    """Every run folder, newest first."""
    root = runs_root(home)
    if not root.is_dir():
        return []
    found = [RunFolder(path) for path in root.iterdir() if _RUN_ID.match(path.name) and path.is_dir()]
    return sorted(found, key=lambda folder: folder.id, reverse=True)


def find_run(home: DataHome, run_id: str) -> RunFolder:
    """The run with this id (or the one run whose id starts with it); a one-line error otherwise."""
    if not run_id or not re.fullmatch(r"[0-9a-f-]+", run_id):
        raise NotFoundError(f"no run '{run_id}': run ids look like 20250101-120000-a1b2c3 (see `studio runs list`)")
    matches = [folder for folder in run_folders(home) if folder.id.startswith(run_id)]
    exact = [folder for folder in matches if folder.id == run_id]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise NotFoundError(f"no run '{run_id}' (see `studio runs list`)")
    raise StudioError(f"'{run_id}' names {len(matches)} runs: give more of the id (see `studio runs list`)")


def prune_runs(home: DataHome, keep: int = KEEP_RUNS) -> list[str]:
    """Remove the folders of ended runs beyond the newest `keep`; the ids removed."""
    removed = []
    for folder in run_folders(home)[keep:]:
        if folder.is_live():
            continue
        shutil.rmtree(folder.path, ignore_errors=True)
        removed.append(folder.id)
    return removed


def tail_lines(path: Path, limit: int = 1 << 16) -> list[bytes]:
    """The complete lines in the last `limit` bytes of a file (none when it is missing)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - limit))
            data = handle.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > limit:
        lines = lines[1:]  # the first may be cut
    return [line for line in lines[:-1] if line.strip()]  # the last is empty, or still being written
