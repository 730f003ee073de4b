"""Training under torchrun (two gloo processes on the CPU): every family, resumed across world sizes; a rank
killed mid-run; and the launcher's one-line refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from studio.engine.checkpoints import read_config
from studio.engine.generation import generate
from studio.engine.jobs import run_job
from studio.engine.launcher import Topology, launch
from studio.engine.library import get_model, model_folder
from studio.engine.runs import interrupted_runs
from studio.engine.supervision.run_folder import ControlState, find_run
from studio.engine.supervision.supervisor import start_run, stop_run, summarize, terminate, train_arguments
from studio.engine.training import train
from studio.engine.training_options import TrainOptions
from studio.errors import StudioError
from studio.home import DataHome
from studio.store.database import Store
from tests.engine.conftest import TINY

FAMILIES = ("gan", "vae", "pixelcnn", "gpt", "diffusion", "latent_diffusion")
ROOT = Path(__file__).resolve().parents[2]


def _job(name: str, family: str, steps: int, resume: bool = False) -> dict[str, Any]:
    fields: dict[str, Any] = {"name": name, "steps": steps, "checkpoint_every": 4, "preview_every": 3}
    fields["milestone_every"] = 0
    if resume:
        return {**fields, "resume": True}
    return {**fields, "family": family, "dataset": "digits", "settings": TINY[family]}


def test_every_family_trains_on_two_processes_and_resumes_across_world_sizes(
    digits8: Store, home: DataHome, tmp_path: Path
) -> None:
    for family in FAMILIES:  # the reverse direction's start: one process
        run_job(train(digits8, TrainOptions(**_job(f"{family}-one", family, 4))))
    digests = tmp_path / "digests"
    digests.mkdir()
    jobs = [_job(f"{f}-two", f, 4) for f in FAMILIES] + [_job(f"{f}-one", f, 8, resume=True) for f in FAMILIES]
    launch(
        Topology(nproc_per_node=2),
        ["-m", "tests.engine.ddp_worker", json.dumps(jobs), str(digests)],
        home.staging / "t",
    )

    for family in FAMILIES:
        for name in (f"{family}-two", f"{family}-one"):
            # DistributedDataParallel (and the codebook's and EMA's updates) left both ranks the same networks.
            assert (digests / f"{name}.0").read_text() == (digests / f"{name}.1").read_text(), name
        assert get_model(digits8, f"{family}-two").steps == 4
        assert get_model(digits8, f"{family}-one").steps == 8  # one process, then two
        assert read_config(model_folder(digits8, f"{family}-one"))["processes"] == 2
        resumed = run_job(train(digits8, TrainOptions(**_job(f"{family}-two", family, 8, resume=True))))
        assert (resumed.start_step, resumed.steps, resumed.status) == (4, 8, "completed")  # two, then one
        assert read_config(model_folder(digits8, f"{family}-two"))["processes"] == 1
        made = run_job(generate(digits8, f"{family}-two", count=2, seed=0))
        assert len(made.items) == 2


def _studio(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "studio", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        **kwargs,
    )


def _wait_for_steps(store: Store, name: str, steps: int, process: subprocess.Popen[str], limit: float) -> int:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            reached = get_model(store, name).steps
        except StudioError:
            reached = 0
        if reached >= steps:
            return reached
        time.sleep(0.3)
    raise AssertionError(f"{name} did not reach step {steps} in {limit} s")


def test_a_killed_rank_ends_the_run_cleanly_with_the_last_checkpoint(digits8: Store) -> None:
    launcher = _studio(
        "train", "--family", "vae", "--dataset", "digits", "--name", "k", "--steps", "100000",
        "--checkpoint-every", "5", "--set", "width=8", "--set", "latent_dim=4", "--set", "batch_size=8",
        "--nproc-per-node", "2", "--no-score",
    )  # fmt: skip
    try:
        _wait_for_steps(digits8, "k", 5, launcher, 120)
        workers = [
            p for p in psutil.Process(launcher.pid).children(recursive=True) if "studio" in " ".join(p.cmdline())
        ]
        ranks = {int(p.environ().get("RANK", "-1")): p for p in workers}
        ranks[1].send_signal(signal.SIGKILL)
        _, stderr = launcher.communicate(timeout=90)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    assert launcher.returncode == 1
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert "rank 1" in last and "SIGKILL" in last and "last checkpoint is kept" in last, last
    saved = get_model(digits8, "k").steps
    assert saved >= 5 and saved % 5 == 0  # a periodic checkpoint: nothing torn was written on the way out
    assert any(run.model == "k" for run in interrupted_runs(digits8))  # offered for resuming, not "running"
    resumed = run_job(train(digits8, TrainOptions("k", resume=True, steps=saved + 2, preview_every=0)))
    assert (resumed.start_step, resumed.steps) == (saved, saved + 2)


def test_minutes_stop_every_rank_together(digits8: Store) -> None:
    run = _studio(
        "train", "--family", "gan", "--dataset", "digits", "--name", "m", "--minutes", "0.05",
        "--set", "width=8", "--set", "latent_dim=8", "--set", "batch_size=8", "--nproc-per-node", "2", "--no-score",
    )  # fmt: skip
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert stdout.count("completed: 'm' (gan)") == 1, stdout  # rank 0 alone reports
    assert get_model(digits8, "m").steps > 0


def test_a_supervised_distributed_run_pauses_and_stops_on_every_rank(digits8: Store, home: DataHome) -> None:
    options = TrainOptions(
        "s", family="gan", dataset="digits", steps=1_000_000, settings=TINY["gan"], nproc_per_node=2,
        checkpoint_every=1_000_000, milestone_every=0, preview_every=0,
    )  # fmt: skip
    run_id = start_run(digits8, options)
    folder = find_run(home, run_id)
    try:
        deadline = time.monotonic() + 120
        while not (summarize(folder).step or 0) > 0:
            assert folder.is_live() and time.monotonic() < deadline, folder.log_file.read_text()
            time.sleep(0.3)
        folder.set_control(ControlState.PAUSED)
        time.sleep(2)  # rank 0 pauses at its next step, and rank 1 with it (or it would wait in an exchange)
        paused_at = summarize(folder).step
        time.sleep(2)
        assert summarize(folder).step == paused_at and folder.is_live()
        stopped = stop_run(digits8, run_id, timeout=60)
    finally:
        if folder.is_live():
            terminate(folder, grace=2.0)
    assert stopped.state == "cancelled" and not stopped.live
    assert get_model(digits8, "s").steps >= paused_at  # cancelled while paused: saved where it stood
    assert read_config(model_folder(digits8, "s"))["processes"] == 2


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "batch_size=9", "--nproc-per-node", "2"], "batch_size 9 does not split over 2 processes"),
        (["--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"], "--node-rank 2 is not a machine"),
        (["--nnodes", "2"], "needs --rdzv-endpoint HOST:PORT"),
        (["--nnodes", "2", "--rdzv-endpoint", "nohost"], "invalid --rdzv-endpoint 'nohost'"),
    ],
)
def test_a_layout_torchrun_cannot_start_is_refused_in_one_line(
    digits8: Store, arguments: list[str], message: str
) -> None:
    from studio.cli import main

    base = ["train", "--family", "gan", "--dataset", "digits", "--name", "x", "--steps", "4"]
    assert main([*base, *arguments]) == 1
    assert not (digits8.home.models / "x").exists()


def test_a_rendezvous_that_never_completes_times_out_in_one_line(digits8: Store) -> None:
    run = _studio(
        "train", "--family", "gan", "--dataset", "digits", "--name", "r", "--steps", "4", "--nnodes", "2",
        "--node-rank", "1", "--rdzv-endpoint", "127.0.0.1:29583", "--rdzv-timeout", "2",
    )  # fmt: skip
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1
    assert stderr.strip().splitlines() == [
        "studio: error: the rendezvous at 127.0.0.1:29583 did not complete within 2 s (2 machines expected): "
        "start `studio train` with the same --nnodes and --rdzv-endpoint on every machine"
    ]
    assert not (digits8.home.models / "r").exists()


def test_the_engine_refuses_a_distributed_run_outside_torchrun(digits8: Store) -> None:
    with pytest.raises(StudioError, match="--nproc-per-node"):
        run_job(train(digits8, TrainOptions("d", family="gan", dataset="digits", steps=2, nproc_per_node=2)))


def test_a_supervised_run_is_started_with_the_whole_topology() -> None:
    options = TrainOptions(
        "x", family="gan", dataset="digits", steps=2, nproc_per_node=4, nnodes=2, node_rank=1,
        rdzv_endpoint="node0:29500", rdzv_timeout=12.5,
    )  # fmt: skip
    arguments = train_arguments(options)
    start = arguments.index("--nproc-per-node")
    assert arguments[start : start + 10] == [
        "--nproc-per-node", "4", "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "node0:29500",
        "--rdzv-timeout", "12.5",
    ]  # fmt: skip
