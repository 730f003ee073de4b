"""The app folder `make dist` builds runs without Python: the CLI answers, the store opens, the window starts.

Skipped (with the reason printed) unless dist/studio/studio exists or STUDIO_TEST_DIST=1 asks for it:
the build takes minutes, so CI skips it for time; `make dist-test` builds when needed and runs this.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from studio import __version__

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dist" / "studio" / "studio"
ASKED = os.environ.get("STUDIO_TEST_DIST") == "1"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not APP.is_file() and not ASKED,
        reason="no built app at dist/studio/studio: run `make dist-test` (builds it in minutes; CI skips it for time)",
    ),
]


def bare_env(home: Path) -> dict[str, str]:
    """A machine without Python as far as the app can tell: no venv, no PYTHONPATH, system folders only."""
    keep = {k: os.environ[k] for k in ("LANG", "LC_ALL", "TERM") if k in os.environ}
    return keep | {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "STUDIO_HOME": str(home / "studio-home"),
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(home),
    }


def run_app(*argv: str, home: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The built app from a folder outside the project, so nothing of the checkout can be imported."""
    if not APP.is_file():
        pytest.fail(f"STUDIO_TEST_DIST=1 but {APP} is missing: run `make dist` first")
    return subprocess.run(
        [str(APP), *argv], cwd=home, env=bare_env(home), capture_output=True, text=True, timeout=timeout
    )


def test_the_built_app_reports_itself(tmp_path: Path) -> None:
    result = run_app("info", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)  # one JSON object, as from the installed command
    assert info["studio"] == __version__
    assert Path(info["home"]) == tmp_path / "studio-home" and info["read_only"] is None
    assert {"torch", "numpy", "sqlalchemy"} <= set(info["versions"])
    assert info["devices"][0]["kind"] == "cpu"
    assert "cpu" in info["providers"]["usable"]
    assert "Traceback" not in result.stderr
    assert str(ROOT) not in result.stdout + result.stderr  # nothing was taken from the checkout


def test_the_built_app_makes_a_dataset_and_refuses_in_one_line(tmp_path: Path) -> None:
    made = run_app("datasets", "add-sample", "shapes", "--size", "8", "--count", "20", "--json", home=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["dataset"] == "shapes"  # the migrations ran from inside the bundle
    refused = run_app("datasets", "show", "nope", home=tmp_path)
    assert refused.returncode == 1 and refused.stderr.startswith("studio: error: no dataset named 'nope'")


def test_the_built_app_trains_exports_and_generates_with_onnx(tmp_path: Path) -> None:
    """torch, the ONNX exporter (onnxscript reads its own source) and ONNX Runtime, all from inside the bundle."""
    steps = [
        ("datasets", "add-sample", "shapes", "--size", "16", "--count", "32"),
        ("train", "--family", "vae", "--dataset", "shapes", "--name", "tiny", "--steps", "3", "--no-score"),
        ("export", "tiny"),
        ("generate", "tiny", "--count", "2", "--seed", "0", "--backend", "onnx", "--provider", "cpu", "--json"),
    ]
    for argv in steps:
        result = run_app(*argv, "--quiet", home=tmp_path, timeout=300)
        assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
    items = json.loads(result.stdout)["items"]
    assert len(items) == 2 and all(Path(item["path"]).is_file() for item in items)


def test_the_built_app_opens_its_window(tmp_path: Path) -> None:
    """Bare, it opens the window (offscreen here): still running after a few seconds, no traceback."""
    with subprocess.Popen(
        [str(APP)], cwd=tmp_path, env=bare_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        # Up once its store exists; then a few seconds more for the first page to load and draw.
        database = tmp_path / "studio-home" / "studio.db"
        deadline = time.monotonic() + 60
        while process.poll() is None and not database.exists() and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(4)
        still_running = process.poll() is None
        process.send_signal(signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    assert still_running, err
    assert "Traceback" not in err and "could not load the Qt platform plugin" not in err, err
    assert database.is_file()  # the window opened (and migrated) its store
