"""`studio train`, `generate` and `models` from the command line, including a kill and a resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.cli import main
from studio.home import DataHome
from studio.store.database import open_store

ROOT = Path(__file__).resolve().parents[2]
TINY_GAN = ["--set", "width=8", "--set", "latent_dim=8", "--set", "batch_size=8"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main([*argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_train_generate_and_models_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(capsys, "datasets", "add-sample", "digits", "--size", "8")[0] == 0
    code, trained, _ = cli(
        capsys, "train", "--family", "gan", "--dataset", "digits", "--name", "g", "--steps", "3", *TINY_GAN
    )
    assert code == 0
    assert trained["model"] == "g" and trained["steps"] == 3 and set(trained["final_losses"]) >= {"d_loss", "g_loss"}
    code, made, _ = cli(capsys, "generate", "g", "--count", "2", "--seed", "7", "--set", "truncation=0.5")
    assert code == 0 and [i["seed"] for i in made["items"]] == [7, 8]
    assert all(Path(i["path"]).is_file() for i in made["items"]) and made["options"] == {
        "truncation": 0.5,
        "class": None,
    }
    code, listing, _ = cli(capsys, "models", "list")
    assert [m["name"] for m in listing["models"]] == ["g"] and listing["models"][0]["steps"] == 3
    code, shown, _ = cli(capsys, "models", "show", "g")
    assert shown["hyperparameters"]["width"] == 8 and Path(shown["path"]).is_dir()
    code, gallery, _ = cli(capsys, "gallery", "list")
    assert {item["seed"] for item in gallery["items"]} == {7, 8}
    code, families, _ = cli(capsys, "families")
    assert [f["name"] for f in families["families"]] == [
        "gan",
        "vae",
        "pixelcnn",
        "gpt",
        "diffusion",
        "latent_diffusion",
        "onnx_generator",
    ]
    code, error, err = cli(capsys, "generate", "g", "--set", "temperature=2")
    assert code == 1 and "unknown sampling setting 'temperature' for gan" in error["error"] and "Traceback" not in err
    code, error, _ = cli(capsys, "train", "--family", "gan", "--dataset", "digits", "--name", "g", "--steps", "3")
    assert code == 1 and "already exists" in error["error"]
    code, deleted, _ = cli(capsys, "models", "delete", "g")
    assert deleted == {"deleted": "g"}


@pytest.mark.slow
def test_kill_during_training_then_resume_continues_from_the_checkpoint(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONUNBUFFERED": "1"}

    def studio(*argv: str, **options) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "studio", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            **options,
        )

    assert studio("datasets", "add-sample", "digits", "--size", "8").returncode == 0
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "train",
            "--family",
            "gan",
            "--dataset",
            "digits",
            "--name",
            "k",
            "--steps",
            "100000",
            "--checkpoint-every",
            "5",
            *TINY_GAN,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    saved = []
    deadline = time.monotonic() + 120
    for line in process.stderr:
        if line.startswith("checkpoint saved at step"):
            saved.append(int(line.split()[-1]))
            if len(saved) == 2:
                break
        assert time.monotonic() < deadline, "no checkpoint was reported"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    store = open_store(DataHome(home))
    from studio.engine.library import get_model

    checkpoint_step = get_model(store, "k").steps
    store.close()
    assert checkpoint_step >= saved[-1] and checkpoint_step % 5 == 0
    resumed = studio("train", "--name", "k", "--resume", "--steps", str(checkpoint_step + 3), "--json", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    payload = json.loads(resumed.stdout)
    assert (payload["start_step"], payload["steps"], payload["status"]) == (
        checkpoint_step,
        checkpoint_step + 3,
        "completed",
    )
    store = open_store(DataHome(home))
    try:
        from sqlalchemy import select

        from studio.store.tables import TrainingRun

        with store.sessions() as session:
            statuses = session.scalars(select(TrainingRun.status).order_by(TrainingRun.id)).all()
        assert statuses == ["interrupted", "completed"]
    finally:
        store.close()


@pytest.mark.slow
def test_ctrl_c_during_training_saves_and_says_how_to_resume(tmp_path: Path) -> None:
    env = {**os.environ, "STUDIO_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1"}
    subprocess.run(
        [sys.executable, "-m", "studio", "datasets", "add-sample", "digits", "--size", "8"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "studio",
            "train",
            "--family",
            "gan",
            "--dataset",
            "digits",
            "--name",
            "c",
            "--steps",
            "100000",
            "--checkpoint-every",
            "5",
            *TINY_GAN,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("checkpoint saved"):
            break
    os.killpg(process.pid, signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 130
    assert "checkpoint is saved: continue with `studio train --name c --resume --steps N`" in rest
    assert "Traceback" not in rest
