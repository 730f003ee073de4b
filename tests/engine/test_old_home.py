"""A data home made by Studio 0.1.0 (before families became packages) still opens and works unchanged.

tests/data/home-0.1.0.zip was made with the 0.1.0 CLI: the digits sample at 8 px, a tiny model of each
family trained 3 steps and exported to ONNX, two images of each (seed 5), an ONNX-made VAE image, a GAN
interpolation, a rating and a tag.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from studio.cli import main

ARCHIVE = Path(__file__).parents[1] / "data" / "home-0.1.0.zip"
FAMILIES = ("gan", "vae", "pixelcnn", "diffusion")


@pytest.fixture
def old_home(isolated_home: Path) -> Path:
    """The archive unpacked into the test's data home (member by member, inside it only)."""
    isolated_home.mkdir(parents=True)
    with zipfile.ZipFile(ARCHIVE) as archive:
        for member in archive.infolist():
            target = (isolated_home / member.filename).resolve()
            assert target.is_relative_to(isolated_home.resolve())
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.read(member))
    return isolated_home


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main([*argv, "--json", "--quiet"])
    return code, json.loads(capsys.readouterr().out)


def test_a_home_made_by_studio_0_1_0_opens_and_reproduces(old_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, datasets = cli(capsys, "datasets", "list")
    assert code == 0 and [d["name"] for d in datasets["datasets"]] == ["digits"]
    code, models = cli(capsys, "models", "list")
    assert code == 0 and sorted(m["name"] for m in models["models"]) == sorted(f"old-{family}" for family in FAMILIES)
    for family in FAMILIES:
        code, shown = cli(capsys, "models", "show", f"old-{family}")
        assert code == 0 and shown["family"] == family and shown["export"]["current"] is True
    code, listed = cli(capsys, "gallery", "list", "--sort", "oldest")
    items = listed["items"]
    assert code == 0 and len(items) == 12
    assert items[0]["rating"] == 4 and "keeper" in cli(capsys, "gallery", "show", str(items[1]["id"]))[1]["tags"]
    # Every image, sampled, interpolated, made on torch or on ONNX, comes out the same from its PNG alone.
    for item in items:
        code, result = cli(capsys, "gallery", "reproduce", str(old_home / item["path"]))
        assert code == 0 and result["match"] is True, (item, result)
    # The old models train on and export again.
    assert cli(capsys, "train", "--name", "old-vae", "--resume", "--steps", "5")[0] == 0
    assert cli(capsys, "export", "old-vae")[0] == 0
    assert cli(capsys, "generate", "old-vae", "--backend", "onnx", "--count", "2")[0] == 0
