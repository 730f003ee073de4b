"""The command line: JSON on stdout, one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from studio import __version__
from studio.cli import main
from tests.images import make_folder, noise, save

ROOT = Path(__file__).resolve().parents[1]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def studio(*argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "studio", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_import_of_mixed_folder_prints_the_documented_json(tmp_path: Path, isolated_home: Path) -> None:
    src = tmp_path / "src"
    make_folder(src, 6)
    save(noise(20, 20, 0), src / "a" / "extra.png")
    Image.open(src / "a" / "img00002.png").save(src / "b" / "copy-of-2.png")  # same pixels, other folder
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    (src / "empty.png").write_bytes(b"")
    result = studio("datasets", "import", str(src), "--name", "mixed", "--size", "16", "--json", home=isolated_home)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert payload["dataset"] == "mixed"
    assert payload["imported"] == 7 and payload["duplicates"] == 1
    assert {(Path(s["path"]).name, s["reason"].split(":")[0]) for s in payload["skipped"]} == {
        ("broken.jpg", "corrupt image"),
        ("empty.png", "empty file (0 bytes)"),
    }
    assert "decoding" in result.stderr  # progress goes to stderr
    assert "Traceback" not in result.stderr


def test_user_errors_are_one_line_without_traceback(tmp_path: Path, isolated_home: Path) -> None:
    result = studio("datasets", "import", str(tmp_path / "nope"), "--name", "x", home=isolated_home)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("studio: error:")]
    assert len(errors) == 1 and "nothing to import" in errors[0]
    assert "Traceback" not in result.stderr
    usage = studio("datasets", "import", "--name", "x", home=isolated_home)
    assert usage.returncode == 2
    assert usage.stderr.strip().count("\n") == 0 and "required: PATH" in usage.stderr


def test_samples_list_show_delete_round_trip(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "datasets", "add-sample", "shapes", "--name", "s", "--count", "30", "--size", "16", "--json"
    )
    assert code == 0 and json.loads(out)["imported"] == 30
    code, out, _ = run(capsys, "datasets", "list", "--json")
    assert [d["name"] for d in json.loads(out)["datasets"]] == ["s"]
    code, out, _ = run(capsys, "datasets", "show", "s", "--json")
    shown = json.loads(out)
    assert shown["count"] == 30 and shown["size"] == 16 and Path(shown["path"]).is_dir()
    code, out, _ = run(capsys, "datasets", "list")
    assert "s" in out and "16x16x3" in out
    code, out, _ = run(capsys, "datasets", "delete", "s", "--json")
    assert code == 0 and json.loads(out) == {"deleted": "s", "count": 30}
    assert not Path(shown["path"]).exists()
    code, out, err = run(capsys, "datasets", "show", "s", "--json")
    assert code == 1 and json.loads(out) == {"error": "no dataset named 's' (see `studio datasets list`)"}
    assert err.startswith("studio: error: no dataset named 's'")


def test_json_flag_works_before_or_after_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(run(capsys, "--json", "datasets", "list")[1]) == {"datasets": []}
    assert json.loads(run(capsys, "datasets", "--json", "list")[1]) == {"datasets": []}


def test_gallery_list_starts_empty(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "gallery", "list", "--limit", "5", "--json")
    assert code == 0 and json.loads(out) == {"items": [], "next_cursor": None, "sort": "newest"}
    code, out, _ = run(capsys, "gallery", "list")
    assert "empty" in out
    code, out, err = run(capsys, "gallery", "list", "--limit", "0")
    assert code == 2 and "invalid limit 0" in err  # out of bounds: a usage error, like any malformed option


def test_info_reports_home_and_versions(capsys: pytest.CaptureFixture[str], isolated_home: Path) -> None:
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["studio"] == __version__ and payload["home"] == str(isolated_home.resolve())
    assert "torch" in payload["versions"] and payload["read_only"] is None


def test_home_flag_overrides_the_environment(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "--home", str(tmp_path / "other"), "info", "--json")
    assert code == 0 and json.loads(out)["home"] == str((tmp_path / "other").resolve())


def test_version_and_module_entry_point(isolated_home: Path) -> None:
    result = studio("--version", home=isolated_home)
    assert result.returncode == 0 and result.stdout.strip() == f"studio {__version__}"


def test_bare_command_opens_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import studio.__main__ as entry

    opened = []
    monkeypatch.setattr("studio.app.main", lambda: opened.append(True) or 0)
    monkeypatch.setattr(sys, "argv", ["studio"])
    assert entry.main() == 0 and opened == [True]
    monkeypatch.setattr(sys, "argv", ["studio", "datasets", "list"])
    assert entry.main() == 0 and opened == [True]


def test_the_command_tree_builds_without_torch_or_the_database() -> None:
    """Start-up stays fast: torch and SQLAlchemy load only inside the commands that need them."""
    script = (
        "import json, sys\nfrom studio.cli.parser import build_parser\nbuild_parser()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'sqlalchemy', 'PySide6'})))\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert json.loads(output.stdout) == []


def test_family_choices_come_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    from studio.engine.families.registry import FAMILY_NAMES, trainable_family_names

    code, _, err = run(capsys, "train", "--name", "m", "--family", "nope")
    # Training offers the trainable families only; an imported ONNX generator is never trained.
    assert code == 2 and f"choose from {', '.join(repr(n) for n in trainable_family_names())}" in err
    code, _, err = run(capsys, "gallery", "list", "--family", "nope")
    assert code == 2 and f"choose from {', '.join(repr(n) for n in FAMILY_NAMES)}" in err
