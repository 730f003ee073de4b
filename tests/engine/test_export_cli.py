"""`studio export`, `generate --backend onnx`, `interpolate`, `inpaint` and `info` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main

TINY_VAE = ["--set", "width=8", "--set", "latent_dim=4", "--set", "batch_size=8"]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    code = main([*argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_export_then_generate_interpolate_and_inpaint_through_onnx(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli(capsys, "datasets", "add-sample", "digits", "--size", "8")[0] == 0
    assert (
        cli(capsys, "train", "--family", "vae", "--dataset", "digits", "--name", "v", "--steps", "3", *TINY_VAE)[0] == 0
    )
    code, error, _ = cli(capsys, "generate", "v", "--backend", "onnx")
    assert code == 1 and error["error"] == "model 'v' has not been exported to ONNX: run `studio export v` first"
    code, exported, err = cli(capsys, "export", "v")
    assert code == 0 and set(exported["networks"]) == {"encoder", "decoder"} and "Traceback" not in err
    assert all(entry["max_abs_difference"] <= 1e-4 for entry in exported["networks"].values())
    code, shown, _ = cli(capsys, "models", "show", "v")
    assert shown["export"]["current"] is True and shown["export"]["fp16"] is False
    assert cli(capsys, "train", "--name", "v", "--resume", "--steps", "4")[0] == 0
    assert cli(capsys, "models", "show", "v")[1]["export"]["current"] is False  # trained further since
    code, error, _ = cli(capsys, "generate", "v", "--backend", "onnx")
    assert code == 1 and "out of date" in error["error"]
    assert cli(capsys, "export", "v")[0] == 0
    code, made, _ = cli(
        capsys,
        "generate",
        "v",
        "--backend",
        "onnx",
        "--provider",
        "cpu",
        "--count",
        "2",
        "--seed",
        "5",
        "--set",
        "temperature=0.5",
    )
    assert code == 0 and made["backend"] == "onnx" and made["provider"] == "cpu"
    assert made["options"]["temperature"] == 0.5 and [i["seed"] for i in made["items"]] == [5, 6]
    first, second = (item["id"] for item in made["items"])
    code, frames, _ = cli(
        capsys, "interpolate", "v", "--from", f"#{first}", "--to", "9", "--frames", "3", "--backend", "onnx"
    )
    assert code == 0 and len(frames["items"]) == 3 and frames["operation"] == "interpolate"
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    code, filled, _ = cli(
        capsys,
        "inpaint",
        "v",
        "--image",
        f"#{second}",
        "--mask",
        str(tmp_path / "mask.png"),
        "--count",
        "2",
        "--backend",
        "onnx",
    )
    assert code == 0 and len(filled["items"]) == 2 and filled["operation"] == "inpaint"
    code, gallery, _ = cli(capsys, "gallery", "list")
    assert {item["operation"] for item in gallery["items"]} == {"sample", "interpolate", "inpaint"}
    assert {item["backend"] for item in gallery["items"]} == {"onnx"}
    code, error, err = cli(capsys, "interpolate", "v", "--from", "1", "--to", "2", "--frames", "0")
    assert code == 2 and "argument --frames: invalid frame count 0" in error["error"] and "Traceback" not in err
    code, error, _ = cli(capsys, "inpaint", "v", "--image", f"#{second}", "--mask", str(tmp_path / "nope.png"))
    assert code == 1 and error["error"].startswith("no mask file at")
    code, error, _ = cli(capsys, "generate", "v", "--backend", "onnx", "--set", "steps=3")
    assert code == 1 and "unknown sampling setting 'steps' for vae" in error["error"]
    code, error, _ = cli(capsys, "generate", "v", "--backend", "torch", "--provider", "cpu")
    assert code == 1 and "--provider chooses an ONNX Runtime provider" in error["error"]
    code, error, _ = cli(capsys, "generate", "v", "--provider", "warp")
    assert code == 2 and "invalid choice: 'warp'" in error["error"]


def test_info_lists_devices_and_usable_providers(capsys: pytest.CaptureFixture[str]) -> None:
    code, info, err = cli(capsys, "info")
    assert code == 0 and "cpu" in info["providers"]["available"] and "cpu" in info["providers"]["usable"]
    assert set(info["providers"]["usable"]) <= set(info["providers"]["available"])
    assert info["devices"][0]["kind"] == "cpu" and "EP Error" not in err
