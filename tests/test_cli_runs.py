"""`studio train --detach` and `studio runs list|attach|stop`: real background runs driven from the CLI."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from studio.cli import main
from tests.supervised import no_leftover_runs  # noqa: F401 - an autouse fixture

TINY_GAN = ["--set", "width=8", "--set", "latent_dim=8", "--set", "batch_size=8"]
ENDLESS = ["--steps", "1000000", "--threads", "1", "--checkpoint-every", "1000000", "--milestone-every", "0"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main([*argv, "--json", "--quiet"])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def start(capsys: pytest.CaptureFixture[str], name: str) -> str:
    """A detached endless tiny GAN; its run id once it has reported a step."""
    code, started = cli(
        capsys, "train", "--family", "gan", "--dataset", "digits", "--name", name, *TINY_GAN, *ENDLESS, "--detach"
    )
    assert code == 0 and started["model"] == name
    deadline = time.monotonic() + 60
    while True:
        _, listing = cli(capsys, "runs", "list")
        run = next(r for r in listing["runs"] if r["id"] == started["run"])
        if run["step"]:
            return str(started["run"])
        assert run["live"] and time.monotonic() < deadline, run
        time.sleep(0.2)


def test_runs_list_attach_and_stop(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "add-sample", "digits", "--size", "8", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["runs", "list"]) == 0 and "no supervised runs" in capsys.readouterr().out
    run_id = start(capsys, "bg")
    assert main(["runs", "list"]) == 0
    table = capsys.readouterr().out
    assert run_id in table and "running" in table and "bg" in table

    code, stopped = cli(capsys, "runs", "stop", run_id)
    assert code == 0 and stopped["state"] == "cancelled" and stopped["step"] > 0 and not stopped["live"]
    code, followed = cli(capsys, "runs", "attach", run_id[:-2])  # a unique beginning is enough
    assert code == 0 and followed["status"] == "cancelled" and followed["steps"] == stopped["step"]
    assert followed["model"] == "bg" and followed["start_step"] == 0

    forced_id = start(capsys, "forced")
    code, forced = cli(capsys, "runs", "stop", forced_id, "--force")
    assert code == 0 and forced["state"] == "died" and not forced["live"]
    code, error = cli(capsys, "runs", "attach", forced_id)
    assert code == 1 and error["error"].startswith("the run's process ended unexpectedly at step ")
    assert error["error"].endswith("nothing was saved")  # no checkpoint before it was ended
    code, listing = cli(capsys, "runs", "list")
    assert [(r["model"], r["state"]) for r in listing["runs"]] == [("forced", "died"), ("bg", "cancelled")]


def test_runs_commands_refuse_unknown_runs_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, error = cli(capsys, "runs", "attach", "nope")
    assert code == 1 and error["error"].startswith("no run 'nope': run ids look like")
    code, error = cli(capsys, "runs", "stop", "2020")
    assert code == 1 and error["error"] == "no run '2020' (see `studio runs list`)"
    code, error = cli(capsys, "train", "--name", "x", "--family", "gan", "--steps", "2", "--detach", "--run-dir", "d")
    assert code == 1 and "leave out --run-dir" in error["error"]
