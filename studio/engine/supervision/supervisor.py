"""Starting, listing and stopping supervised runs: `studio train` child processes the app (or CLI) watches.

A run is started as `python -m studio train ... --run-dir DIR` in a session of its own, so closing the
window (or the terminal) that started it does not stop it; its output goes to the run folder's output.log.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psutil
from sqlalchemy import select

from studio.engine.supervision.events import FINAL_EVENTS
from studio.engine.supervision.run_folder import (
    ControlState,
    RunFolder,
    create_run_folder,
    describe_process,
    find_run,
    prune_runs,
    run_folders,
    tail_lines,
)
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.database import Store
from studio.store.tables import Model

# Popen objects of the runs this process started, so their exit is noticed (and no zombie lingers).
_started: dict[str, subprocess.Popen[bytes]] = {}


def train_arguments(options: TrainOptions) -> list[str]:
    """The `studio train` arguments that run `options` (without the program, --home and --run-dir)."""
    args = ["train", "--name", options.name]
    for flag, value in (
        ("--family", options.family),
        ("--dataset", options.dataset),
        ("--steps", options.steps),
        ("--minutes", options.minutes),
        ("--init-from", options.init_from),
        ("--threads", options.threads),
        ("--tensorboard", options.tensorboard),
    ):
        if value is not None:
            args += [flag, repr(value) if isinstance(value, float) else str(value)]
    args += ["--seed", str(options.seed), "--device", options.device]
    args += ["--checkpoint-every", str(options.checkpoint_every), "--diagnostics-every", str(options.preview_every)]
    args += ["--milestone-every", str(options.milestone_every), "--keep-milestones", str(options.keep_milestones)]
    args += ["--preview-count", str(options.preview_count)]
    if options.resume:
        args.append("--resume")
    for key, value in _settings(options.settings).items():
        args += ["--set", f"{key}={value}"]
    if options.distributed:  # torchrun's own option names; the launcher in `studio train` starts the ranks
        args += ["--nproc-per-node", str(options.nproc_per_node), "--nnodes", str(options.nnodes)]
        args += ["--node-rank", str(options.node_rank)]
        if options.rdzv_endpoint:
            args += ["--rdzv-endpoint", options.rdzv_endpoint]
        if options.rdzv_timeout is not None:
            args += ["--rdzv-timeout", repr(options.rdzv_timeout)]
    args.append("--no-score")  # the page shows the score on its own when asked; a run only trains
    return args


def _settings(settings: Mapping[str, Any]) -> dict[str, str]:
    """Hyperparameters as the text `--set` parses back to the same values."""
    text = {}
    for key, value in settings.items():
        if isinstance(value, bool):
            text[key] = "true" if value else "false"
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise StudioError(f"{key}: {value} is not a finite number")
            text[key] = repr(value)
        else:
            text[key] = str(value)
    return text


def start_run(store: Store, options: TrainOptions) -> str:
    """Start `options` as a supervised `studio train` process and return its run id at once."""
    options.check()  # a budget or interval no run could keep is refused here, in one line
    home = store.home
    prune_runs(home)
    folder = create_run_folder(home)
    command = [sys.executable, "-m", "studio", *train_arguments(options), "--home", str(home.root)]
    command += ["--run-dir", str(folder.path)]
    info: dict[str, Any] = {
        "id": folder.id,
        "model": options.name,
        "family": options.family or _family_of(store, options.init_from or options.name),
        "target_steps": options.steps,
        "start_step": _steps_of(store, options.name) if options.resume else 0,
        "options": {**asdict(options), "settings": dict(options.settings)},
        "command": command,
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pid": None,
        "processes": [],
    }
    folder.write_info(info)
    folder.set_control(ControlState.RUNNING)
    environment = {**os.environ, **store.environment(), "PYTHONUNBUFFERED": "1"}  # its database too
    with open(folder.log_file, "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own session and process group: the window's end is not its end
            close_fds=True,
            env=environment,
        )
    _started[folder.id] = process
    info["pid"] = process.pid
    info["processes"] = [describe_process(process.pid, "started"), *folder.info().get("processes", [])]
    folder.write_info(info)
    return folder.id


def _family_of(store: Store, model: str) -> str | None:
    with store.sessions() as session:
        return session.scalar(select(Model.family).where(Model.name == model))


def _steps_of(store: Store, model: str) -> int:
    with store.sessions() as session:
        return int(session.scalar(select(Model.steps).where(Model.name == model)) or 0)


def reap() -> None:
    """Notice the end of the runs this process started (so none lingers as a zombie)."""
    for run_id, process in list(_started.items()):
        if process.poll() is not None:
            del _started[run_id]


def is_live(folder: RunFolder) -> bool:
    """Whether the run's process is alive."""
    reap()
    return folder.is_live()


@dataclass(frozen=True)
class RunSummary:
    """A supervised run as `studio runs list` shows it."""

    id: str
    model: str
    family: str | None
    state: str  # running, paused, stopping, completed, cancelled, failed, died
    step: int | None
    target_steps: int | None
    started_at: str
    pid: int | None
    host: str
    message: str = ""

    @property
    def live(self) -> bool:
        """Whether its process is still going."""
        return self.state in ("running", "paused", "stopping")

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio runs list --json`)."""
        return {**asdict(self), "live": self.live}


def summarize(folder: RunFolder) -> RunSummary:
    """Where a run stands: from its process, its control file and the last lines of its events."""
    info = folder.info()
    step: int | None = None
    final: dict[str, Any] | None = None
    for raw in reversed(tail_lines(folder.events_file)):
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        if final is None and step is None and line.get("event") in FINAL_EVENTS:
            final = line
        if step is None and isinstance(line.get("step"), int):
            step = line["step"]
        if step is not None:
            break
    live = is_live(folder)
    message = ""
    if final is not None and final.get("event") == "finished":
        result = final.get("result") or {}
        state = str(result.get("status") or "completed")
        step = result.get("steps", step)
    elif final is not None:
        state, message = "failed", str(final.get("message") or "")
    elif live:
        control = folder.control()
        state = {ControlState.PAUSED: "paused", ControlState.CANCELLED: "stopping"}.get(control, "running")
    else:
        state = "died"
    pid = info.get("pid")
    return RunSummary(
        folder.id,
        str(info.get("model") or "?"),
        info.get("family"),
        state,
        step,
        info.get("target_steps"),
        str(info.get("started_at") or ""),
        pid if isinstance(pid, int) else None,
        str(info.get("host") or ""),
        message,
    )


def run_options(store: Store, run_id: str) -> TrainOptions | None:
    """What a run was started with (None when its run.json does not say, or says something else)."""
    fields = find(store, run_id).info().get("options")
    if not isinstance(fields, dict):
        return None
    try:
        return TrainOptions(**fields)
    except TypeError:  # written by another version of Studio
        return None


def list_runs(store: Store) -> list[RunSummary]:
    """Every supervised run still on disk (live and recent), newest first."""
    return [summarize(folder) for folder in run_folders(store.home)]


def live_runs(store: Store) -> list[RunSummary]:
    """The supervised runs whose process is still going, newest first."""
    return [summary for summary in list_runs(store) if summary.live]


def stop_run(store: Store, run_id: str, force: bool = False, timeout: float = 60.0) -> RunSummary:
    """Stop a run: ask it to cancel (it saves a checkpoint and exits) and wait up to `timeout` seconds;
    with `force`, or when it does not end in time, terminate its processes. Its summary once ended."""
    folder = find_run(store.home, run_id)
    if not is_live(folder):
        return summarize(folder)
    if not force:
        folder.set_control(ControlState.CANCELLED)
        if _wait_ended(folder, timeout):
            return summarize(folder)
    terminate(folder)
    return summarize(folder)


def ask_to_stop(store: Store, run_id: str) -> None:
    """Ask a run to cancel (it saves a checkpoint and exits) without waiting for it."""
    folder = find_run(store.home, run_id)
    if is_live(folder):
        folder.set_control(ControlState.CANCELLED)


def _wait_ended(folder: RunFolder, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_live(folder):
            return True
        time.sleep(0.1)
    return not is_live(folder)


def terminate(folder: RunFolder, grace: float = 5.0) -> None:
    """End a run's processes: SIGTERM to its process group and every descendant, SIGKILL after `grace`."""
    processes: list[psutil.Process] = []
    for entry in folder.info().get("processes", []):
        pid = entry.get("pid") if isinstance(entry, dict) else None
        if not isinstance(pid, int) or pid <= 0:
            continue
        try:
            process = psutil.Process(pid)
            if entry.get("create_time") is not None and abs(process.create_time() - entry["create_time"]) > 0.01:
                continue  # the id was given to another process since
            processes += [process, *process.children(recursive=True)]  # torchrun's workers, wherever they are
        except psutil.Error:
            continue
    for process in processes:
        try:
            if process.pid == _group_leader(folder) and hasattr(os, "killpg"):
                os.killpg(process.pid, signal.SIGTERM)  # its group: whatever it started without telling us
            process.terminate()
        except (psutil.Error, OSError):
            continue
    _gone, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=grace)
    _wait_ended(folder, grace)


def _group_leader(folder: RunFolder) -> int | None:
    pid = folder.info().get("pid")
    return pid if isinstance(pid, int) else None


def find(store: Store, run_id: str) -> RunFolder:
    """The run folder for an id (or a unique beginning of one)."""
    return find_run(store.home, run_id)
