"""Supervised runs: a real `studio train` child process followed through its run folder, paused, resumed,
cancelled and killed; the events file, the control file and the run folder's bookkeeping on their own."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from studio.cli.parser import build_parser
from studio.engine.jobs import CancelToken, Finished, Progress
from studio.engine.runs import interrupted_runs
from studio.engine.supervision import ControlState, RunAttached, attach, list_runs, live_runs, start_run, stop_run
from studio.engine.supervision.child import ControlWatcher
from studio.engine.supervision.events import EventReader, EventWriter, RunFailed
from studio.engine.supervision.run_folder import create_run_folder, find_run, prune_runs, run_folders
from studio.engine.supervision.supervisor import train_arguments
from studio.engine.training_events import CheckpointSaved, PreviewReady, TrainingProgress, TrainingWarning
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.store.database import Store
from tests.supervised import no_leftover_runs  # noqa: F401 - an autouse fixture

TINY_GAN: dict[str, Any] = {"width": 8, "latent_dim": 8, "batch_size": 8}


def gan(name: str, **changes: Any) -> TrainOptions:
    """A tiny GAN on the digits that trains until stopped, with small previews."""
    options = TrainOptions(
        name,
        family="gan",
        dataset="digits",
        steps=1_000_000,
        settings=TINY_GAN,
        preview_every=20,
        preview_count=4,
        checkpoint_every=1_000_000,
        milestone_every=0,
        threads=1,
    )
    return options.with_changes(**changes)


class Follower(threading.Thread):
    """Drives an attach job in a thread, keeping every event and how it ended."""

    def __init__(self, job: Iterator[object]) -> None:
        super().__init__(name="test-follower")
        self.job = job
        self.events: list[object] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for event in self.job:
                self.events.append(event)
        except BaseException as error:  # noqa: BLE001 - kept for the test to look at
            self.error = error

    def steps(self) -> list[int]:
        return [e.step for e in list(self.events) if isinstance(e, TrainingProgress)]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.is_alive() or condition(), f"the job ended early: {self.error!r}"
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)


def test_a_child_run_reports_its_events_and_obeys_pause_resume_and_cancel(digits8: Store) -> None:
    run_id = start_run(digits8, gan("supervised"))
    token = CancelToken()
    follower = Follower(attach(digits8, run_id, token))
    follower.start()
    try:
        follower.wait_for(lambda: any(isinstance(e, PreviewReady) and e.images is not None for e in follower.events))
        first = follower.events[0]
        assert isinstance(first, RunAttached) and first.model == "supervised" and first.family == "gan"
        preview = next(e for e in follower.events if isinstance(e, PreviewReady) and e.images is not None)
        assert preview.images is not None and preview.images.shape == (4, 8, 8, 1) and preview.images.dtype == np.uint8
        assert "diversity" in preview.figures
        follower.wait_for(lambda: len(follower.steps()) >= 2)
        assert follower.steps() == sorted(follower.steps())  # progress rises

        token.pause()
        folder = find_run(digits8.home, run_id)
        follower.wait_for(lambda: folder.control() is ControlState.PAUSED)
        time.sleep(0.6)  # what was under way arrives
        paused_at = len(follower.events)
        time.sleep(0.8)
        assert len(follower.events) == paused_at, "a paused run goes on reporting"
        assert [run.state for run in list_runs(digits8)] == ["paused"]

        token.resume()
        follower.wait_for(lambda: len(follower.events) > paused_at)
        token.cancel()
        follower.join(60)
    finally:
        token.cancel()
        follower.join(60)
    assert follower.error is None
    last = follower.events[-1]
    assert isinstance(last, Finished) and last.result.status == "cancelled" and last.result.model == "supervised"
    assert last.result.steps >= max(follower.steps())
    assert live_runs(digits8) == [] and list_runs(digits8)[0].state == "cancelled"
    # A window opened later replays the whole run, the same events in the same order.
    replayed = list(attach(digits8, run_id))
    assert [type(e) for e in replayed[1:]] == [type(e) for e in follower.events[1:]]
    assert isinstance(replayed[-1], Finished) and replayed[-1].result.steps == last.result.steps


def test_a_killed_run_ends_the_job_in_one_line_and_is_offered_for_resume(digits8: Store) -> None:
    run_id = start_run(digits8, gan("killed", checkpoint_every=25, preview_every=0))
    follower = Follower(attach(digits8, run_id, CancelToken()))
    follower.start()
    follower.wait_for(lambda: any(isinstance(e, CheckpointSaved) for e in follower.events))
    pid = find_run(digits8.home, run_id).info()["pid"]
    os.kill(pid, signal.SIGKILL)
    follower.join(30)
    assert isinstance(follower.error, StudioError)
    message = str(follower.error)
    match = re.fullmatch(
        r"the run's process ended unexpectedly at step ([\d,]+); the last checkpoint \(step ([\d,]+)\) is kept: "
        r"resume it",
        message,
    )
    assert match is not None, message
    reached, kept = (int(group.replace(",", "")) for group in match.groups())
    assert kept % 25 == 0 and 25 <= kept <= reached
    assert [run.model for run in interrupted_runs(digits8)] == ["killed"]
    assert [(run.state, run.live) for run in list_runs(digits8)] == [("died", False)]


def test_a_run_refused_by_the_trainer_ends_the_job_with_the_trainers_reason(digits8: Store) -> None:
    run_id = start_run(digits8, gan("nobody", dataset=None, family=None, resume=True, steps=10, settings={}))
    with pytest.raises(StudioError, match=r"^no model named 'nobody' to resume \(see `studio models list`\)$"):
        list(attach(digits8, run_id))
    assert list_runs(digits8)[0].state == "failed"


def test_train_arguments_parse_back_to_the_same_options(store: Store) -> None:
    options = TrainOptions(
        "m",
        family="gan",
        dataset="d",
        steps=120,
        minutes=1.5,
        seed=7,
        settings={"width": 8, "learning_rate": 0.00015, "hflip": False},
        device="cpu",
        checkpoint_every=40,
        preview_every=30,
        preview_count=4,
        threads=2,
        milestone_every=0,
        keep_milestones=3,
    )
    args = build_parser().parse_args([*train_arguments(options), "--run-dir", "x"])
    assert (args.name, args.family, args.dataset, args.steps, args.minutes, args.seed) == ("m", "gan", "d", 120, 1.5, 7)
    assert (args.checkpoint_every, args.diagnostics_every, args.preview_count, args.threads) == (40, 30, 4, 2)
    assert (args.milestone_every, args.keep_milestones, args.device) == (0, 3, "cpu")
    assert args.no_score and not args.resume
    from studio.engine.families.registry import parse_overrides

    assert parse_overrides("gan", args.set) == {"width": 8, "learning_rate": 0.00015, "hflip": False}
    spread = train_arguments(options.with_changes(nproc_per_node=2, nnodes=2, node_rank=1, rdzv_endpoint="h:29500"))
    assert spread[spread.index("--nproc-per-node") :][:8] == [
        "--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "h:29500",
    ]  # fmt: skip
    assert "--nproc-per-node" not in train_arguments(options)


def test_events_go_through_the_file_as_the_same_objects(store: Store) -> None:
    folder = create_run_folder(store.home)
    writer = EventWriter(folder)
    images = np.arange(2 * 8 * 8 * 3, dtype=np.uint8).reshape(2, 8, 8, 3)
    sent: list[object] = [
        Progress("preparing", 1, 2, "half"),
        TrainingProgress(5, 100, {"loss": 0.5}, 120.0, 3.5, 1.25),
        PreviewReady(5, images, {"diversity": 0.3}),
        TrainingWarning(6, "possible mode collapse"),
        CheckpointSaved(7, "abc"),
    ]
    for event in sent:
        writer.write(event)
    reader = EventReader(folder)
    got = list(reader.read())
    assert [type(e) for e in got] == [type(e) for e in sent]
    assert got[1] == sent[1] and got[3] == sent[3] and got[4] == sent[4] and got[0] == sent[0]
    assert isinstance(got[2], PreviewReady) and np.array_equal(got[2].images, images)
    assert not list(folder.previews.glob("*.pickle")) and len(list(folder.previews.iterdir())) == 1

    with open(folder.events_file, "ab") as handle:  # a line still being written is not read yet
        handle.write(b'{"event": "warning", "step": 9, "mess')
    assert list(reader.read()) == []
    with open(folder.events_file, "ab") as handle:
        handle.write(b'age": "late"}\nnot json\n{"event": "from a newer version"}\n')
    assert list(reader.read()) == [TrainingWarning(9, "late")]
    for step in range(10, 16):  # only the newest previews stay on disk; older events come back without images
        writer.write(PreviewReady(step, images, {}))
    writer.write(RunFailed("out of memory"))
    writer.close()
    replayed = list(EventReader(folder).read())
    previews = [e for e in replayed if isinstance(e, PreviewReady)]
    assert [p.images is not None for p in previews] == [False] * 4 + [True] * 3
    assert replayed[-1] == RunFailed("out of memory")
    assert json.loads(folder.events_file.read_text().splitlines()[-1])["event"] == "error"


def test_the_control_watcher_drives_the_token(store: Store) -> None:
    folder = create_run_folder(store.home)
    token = CancelToken()
    watcher = ControlWatcher(folder, token, interval=0.01)
    watcher.start()
    try:
        for state, check in (
            (ControlState.PAUSED, lambda: token.paused),
            (ControlState.RUNNING, lambda: not token.paused),
            (ControlState.CANCELLED, lambda: token.cancelled),
        ):
            folder.set_control(state)
            deadline = time.monotonic() + 5
            while not check():
                assert time.monotonic() < deadline, state
                time.sleep(0.01)
    finally:
        watcher.stop()


def test_run_ids_are_found_by_a_unique_beginning_and_old_runs_are_pruned(store: Store) -> None:
    folders = [create_run_folder(store.home) for _ in range(4)]
    newest = max(folders, key=lambda f: f.id)
    assert find_run(store.home, newest.id) == newest
    with pytest.raises(StudioError, match="no run 'zz'"):
        find_run(store.home, "zz")
    with pytest.raises(StudioError, match=r"^no run '\.\./x'"):
        find_run(store.home, "../x")
    if len({f.id[:8] for f in folders}) == 1:  # the same day: the date names them all
        with pytest.raises(StudioError, match="names 4 runs"):
            find_run(store.home, newest.id[:8])
    live = min(folders, key=lambda f: f.id)
    lock = live.take_lock()  # the oldest is still going: never pruned
    try:
        assert sorted(prune_runs(store.home, keep=1)) == sorted(f.id for f in folders if f not in (newest, live))
        assert sorted(f.id for f in run_folders(store.home)) == sorted([newest.id, live.id])
        assert [s.state for s in list_runs(store)] == ["died", "running"]
    finally:
        lock.close()
    assert stop_run(store, live.id).state == "died"  # nothing left to stop
