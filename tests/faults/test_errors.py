"""A full disk, a read-only home, a home that is a file, hostile text, and ONNX Runtime's own writes.

Each fault a user's environment can cause ends in one line (`studio: error: ...`) that says what
happened and what to do, exit code 1, no traceback, and the home exactly as it was before: the same
files and the same rows (`gallery check` clean). Damage is reported only for real corruption.
The full and read-only disks are tmpfs mounts (root on Linux); where a test cannot mount one it is
skipped with the reason, and the file-size-limit test covers the same boundary without root.
"""

from __future__ import annotations

import ast
import errno
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy.exc
from PIL.PngImagePlugin import PngInfo

from studio.cli import main
from studio.cli.printing import ProgressPrinter, printable
from studio.engine.jobs import Progress
from studio.errors import StudioError
from studio.failures import explain
from tests.images import make_folder, noise, save

ROOT = Path(__file__).resolve().parents[2]
TINY_VAE = ["--set", "width=8", "--set", "latent_dim=4", "--set", "batch_size=8"]
HOSTILE = "evil\x1b[2J\x1b]0;owned\x07\nline two\x00\x9b31m\u202e"
RAW_CONTROLS = ("\x1b", "\x00", "\x07", "\x9b", "\u202e")


def run(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, str, str]:
    """One CLI command in this process on `home`; returns (exit code, stdout, stderr)."""
    code = main(["--home", str(home), *argv, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, err: str, *words: str) -> str:
    """Exit 1, exactly one `studio: error:` line on stderr, no traceback; returns the line."""
    assert code == 1, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("studio: error: "), err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def snapshot(home: Path) -> tuple[list[str], list[str]]:
    """Every file of the home (but SQLite's own sidecars) and every row of the database."""
    files = sorted(
        str(p.relative_to(home))
        for p in home.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))
    )
    # immutable: no -shm or -wal left behind to give the next command room it would not have had.
    # Taken only while no command runs, after the last one closed (and so checkpointed) the store.
    connection = sqlite3.connect(f"file:{home / 'studio.db'}?mode=ro&immutable=1", uri=True)
    try:
        assert connection.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        rows = list(connection.iterdump())
    finally:
        connection.close()
    return files, rows


def assert_gallery_clean(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, out, err = run(capsys, home, "gallery", "check", "--json")
    assert code == 0 and json.loads(out)["clean"] is True, out + err


# --- a prepared home, copied onto small disks -----------------------------------------------


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with the digits sample (8 px), a tiny VAE 'v' and three rated images; built once."""
    home = tmp_path_factory.mktemp("prepared") / "home"
    for argv in (
        ["datasets", "add-sample", "digits", "--size", "8"],
        ["train", "--family", "vae", "--dataset", "digits", "--name", "v", "--steps", "2", *TINY_VAE],
        ["generate", "v", "--count", "3", "--seed", "0"],
        ["gallery", "rate", "1", "2"],
    ):
        assert main(["--home", str(home), *argv, "--quiet", "--json"]) == 0
    make_folder(home.parent / "source", 40, size=16)
    return home


def _mount(where: Path, options: str) -> None:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux (the file-size-limit test covers the rest)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB file system of its own (a tmpfs), unmounted after the test."""
    where = tmp_path / "disk"
    where.mkdir()
    _mount(where, "size=4m")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def home_on_small_disk(small_disk: Path, prepared: Path) -> Path:
    """A copy of the prepared home on the small disk."""
    return Path(shutil.copytree(prepared, small_disk / "home"))


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` up to `leave` free bytes with one file; returns it (delete it to free the space)."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    with open(filler, "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, stat.f_bavail * stat.f_frsize - leave)
    return filler


FULL_DISK_CASES = [
    ("rate-at-open", ["gallery", "rate", "1", "4"], 0),
    ("rate-at-write", ["gallery", "rate", "1", "4"], 36 * 1024),
    ("generate", ["generate", "v", "--count", "64", "--seed", "10"], 96 * 1024),
    ("import-files", ["datasets", "import", "{source}", "--name", "imp", "--size", "8", "--workers", "1"], 48 * 1024),
    ("import-rows", ["datasets", "import", "{source}", "--name", "imp", "--size", "8", "--workers", "1"], 96 * 1024),
    ("export", ["export", "v"], 48 * 1024),
]


@pytest.mark.parametrize(("argv", "leave"), [c[1:] for c in FULL_DISK_CASES], ids=[c[0] for c in FULL_DISK_CASES])
def test_a_full_disk_is_one_line_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
    small_disk: Path,
    prepared: Path,
    home_on_small_disk: Path,
    argv: list[str],
    leave: int,
) -> None:
    home = home_on_small_disk
    argv = [a.format(source=prepared.parent / "source") for a in argv]
    before = snapshot(home)
    filler = fill(small_disk, leave)
    code, _, err = run(capsys, home, *argv)
    line = assert_one_line(code, err, "full", "free space", str(home))
    assert "damaged" not in line and "restore" not in line
    filler.unlink()
    assert_gallery_clean(capsys, home)
    assert snapshot(home) == before
    code, out, _ = run(capsys, home, "gallery", "show", "1", "--json")
    assert code == 0 and json.loads(out)["rating"] == 2


def test_a_full_destination_names_that_disk_not_the_home(
    capsys: pytest.CaptureFixture[str], small_disk: Path, prepared: Path, tmp_path: Path
) -> None:
    home = Path(shutil.copytree(prepared, tmp_path / "home"))
    fill(small_disk, 0)
    for argv in (["gallery", "export", str(small_disk / "out")], ["backup", str(small_disk / "copy.db")]):
        code, _, err = run(capsys, home, *argv)
        line = assert_one_line(code, err, "full", str(small_disk))
        assert str(home) not in line
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # nothing half-written left there


def test_a_file_size_limit_is_one_line_too(tmp_path: Path) -> None:
    """RLIMIT_FSIZE (`ulimit -f`) makes writes fail with EFBIG; no root or mount needed."""
    resource = pytest.importorskip("resource", reason="RLIMIT_FSIZE is POSIX only")
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "studio", "datasets", "add-sample", "digits", "--size", "32", "--quiet"],
        cwd=ROOT,
        env={**os.environ, "STUDIO_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, resource.RLIM_INFINITY)),
        check=False,
    )
    assert_one_line(done.returncode, done.stderr, "too large", "limit")
    listed = subprocess.run(
        [sys.executable, "-m", "studio", "datasets", "list", "--json"],
        cwd=ROOT,
        env={**os.environ, "STUDIO_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(listed.stdout) == {"datasets": []}
    assert list((home / "tmp").iterdir()) == [] and list((home / "datasets").iterdir()) == []


# --- a read-only home -----------------------------------------------------------------------


def test_a_read_only_home_still_lists_and_shows_but_refuses_writes_in_one_line(
    capsys: pytest.CaptureFixture[str], small_disk: Path, home_on_small_disk: Path
) -> None:
    home = home_on_small_disk
    before = snapshot(home)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        for argv in (["gallery", "list"], ["datasets", "list"], ["models", "list"], ["gallery", "show", "1"]):
            code, out, err = run(capsys, home, *argv, "--json")
            assert code == 0 and "Traceback" not in err, err
            payload = json.loads(out)
            if argv[-1] == "1":
                assert payload["rating"] == 2
        code, out, _ = run(capsys, home, "gallery", "list", "--json")
        assert [item["id"] for item in json.loads(out)["items"]] == [3, 2, 1]
        for argv in (
            ["gallery", "rate", "1", "4"],
            ["generate", "v", "--count", "1"],
            ["datasets", "add-sample", "shapes", "--count", "10", "--size", "8"],
        ):
            code, _, err = run(capsys, home, *argv)
            line = assert_one_line(code, err, "read-only")
            assert "damaged" not in line
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert snapshot(home) == before


# --- a home that is not a folder ------------------------------------------------------------


def test_studio_home_pointing_at_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "not-a-folder"
    afile.write_text("hello")
    done = subprocess.run(
        [sys.executable, "-m", "studio", "gallery", "list"],
        cwd=ROOT,
        env={**os.environ, "STUDIO_HOME": str(afile)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_one_line(done.returncode, done.stderr, str(afile), "not a folder")
    assert afile.read_text() == "hello"


def test_a_home_below_a_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    afile = tmp_path / "plain"
    afile.write_text("x")
    code, _, err = run(capsys, afile / "home", "datasets", "list")
    assert_one_line(code, err, str(afile), "not a folder")


def test_a_damaged_database_is_still_called_damaged(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "studio.db").write_bytes(b"this is not a database at all" * 200)
    code, _, err = run(capsys, home, "gallery", "list")
    assert_one_line(code, err, "damaged", "restore a backup")


# --- the translation itself -----------------------------------------------------------------


def _sqlite_error(kind: type[sqlite3.Error], message: str, code: int) -> sqlite3.Error:
    error = kind(message)
    error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device", "/data/x.png"), ("full", "/data", "free space")),
        (OSError(getattr(errno, "EDQUOT", 122), "Disk quota exceeded", "/data/x.png"), ("quota", "/data")),
        (OSError(errno.EROFS, "Read-only file system", "/data/x.png"), ("read-only", "/data")),
        (PermissionError(errno.EACCES, "Permission denied", "/data/x.png"), ("permission", "/data/x.png")),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/data/f/x"), ("not a folder", "/data/f/x")),
        (OSError(errno.ENAMETOOLONG, "File name too long", "/data/" + "n" * 300), ("too long",)),
        (OSError(errno.EFBIG, "File too large", "/data/x.npy"), ("too large", "limit")),
        (OSError(errno.EIO, "Input/output error", "/data/x"), ("input/output", "/data/x")),
        (MemoryError(), ("out of memory",)),
        (_sqlite_error(sqlite3.OperationalError, "database or disk is full", 13), ("full", "free space")),
        (_sqlite_error(sqlite3.OperationalError, "attempt to write a readonly database", 8), ("read-only",)),
        (_sqlite_error(sqlite3.OperationalError, "unable to open database file", 14), ("cannot be opened",)),
        (_sqlite_error(sqlite3.OperationalError, "database is locked", 5), ("busy", "retry")),
        (_sqlite_error(sqlite3.DatabaseError, "database disk image is malformed", 11), ("damaged",)),
        (_sqlite_error(sqlite3.DatabaseError, "file is not a database", 26), ("damaged",)),
        (sqlite3.OperationalError("database or disk is full"), ("full",)),  # no code: read the message
    ],
)
def test_explain_turns_environment_errors_into_one_line(error: BaseException, words: tuple[str, ...]) -> None:
    explained = explain(error, Path("/data"))
    assert isinstance(explained, StudioError)
    text = str(explained)
    assert "\n" not in text and text == printable(text)
    for word in words:
        assert word in text, text
    if "damaged" not in words:
        assert "damaged" not in text


def test_explain_unwraps_sqlalchemy_and_leaves_bugs_alone() -> None:
    orig = _sqlite_error(sqlite3.OperationalError, "database or disk is full", 13)
    wrapped = sqlalchemy.exc.OperationalError("UPDATE x", {}, orig)
    assert "full" in str(explain(wrapped, Path("/data")))
    chained = RuntimeError("while saving")
    chained.__cause__ = OSError(errno.ENOSPC, "No space left on device", "/data/x")
    assert "full" in str(explain(chained))
    integrity = sqlalchemy.exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert explain(integrity) is None
    assert explain(RuntimeError("boom")) is None and explain(KeyError("x")) is None
    assert explain(sqlite3.OperationalError("no such table: x")) is None  # a bug, not the environment
    studio_error = StudioError("as is")
    assert explain(studio_error) is studio_error


@pytest.mark.parametrize("code", [errno.EBADF, errno.EINVAL, errno.ECONNREFUSED, errno.ESPIPE])
def test_an_os_error_the_environment_does_not_cause_is_a_bug(code: int) -> None:
    assert explain(OSError(code, os.strerror(code), "/data/x"), Path("/data")) is None


def test_an_error_naming_no_file_does_not_blame_the_data_home() -> None:
    text = str(explain(OSError(errno.ENOSPC, "No space left on device"), Path("/data")))
    assert "full" in text and "the folder being written" in text and "holding the data home" not in text, text


def test_a_bug_prints_one_clear_line_then_the_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated_home: Path
) -> None:
    import studio.cli.gallery

    def broken(ctx: object) -> dict[str, object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(studio.cli.gallery, "cmd_tags", broken)
    code, _, err = run(capsys, isolated_home, "gallery", "tags")
    assert code == 1
    first = err.splitlines()[0]
    assert first.startswith("studio: error: unexpected error (RuntimeError: boom)") and "bug" in first
    assert "Traceback" in err


@pytest.mark.parametrize(
    ("raised", "words"),
    [
        (MemoryError(), ("out of memory",)),
        (OSError(errno.ENOSPC, "No space left on device", "/mnt/usb/out.png"), ("full", "/mnt/usb/out.png")),
        (PermissionError(errno.EACCES, "Permission denied", "/etc/x"), ("permission denied", "/etc/x")),
    ],
)
def test_an_environment_error_anywhere_in_a_command_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    isolated_home: Path,
    raised: BaseException,
    words: tuple[str, ...],
) -> None:
    import studio.cli.gallery

    def failing(ctx: object) -> dict[str, object]:
        raise raised

    monkeypatch.setattr(studio.cli.gallery, "cmd_tags", failing)
    code, out, err = run(capsys, isolated_home, "gallery", "tags")
    assert_one_line(code, err, *words)
    code, out, err = run(capsys, isolated_home, "gallery", "tags", "--json")
    assert code == 1 and all(word in json.loads(out)["error"] for word in words)


# --- hostile text never reaches the terminal raw --------------------------------------------


def test_printable_escapes_controls_and_keeps_unicode() -> None:
    assert printable("héllo 日本語 🙂 שלום") == "héllo 日本語 🙂 שלום"
    escaped = printable(HOSTILE)
    assert not any(c in escaped for c in (*RAW_CONTROLS, "\n"))
    assert "\\x1b[2J" in escaped and "\\n" in escaped and "\\x00" in escaped and "\\x9b" in escaped


def test_progress_lines_are_escaped() -> None:
    stream = io.StringIO()
    printer = ProgressPrinter(stream)
    printer(Progress("decoding", 1, 2, f"file {HOSTILE}"))
    assert not any(c in stream.getvalue() for c in RAW_CONTROLS) and stream.getvalue().count("\n") == 1


def test_hostile_names_are_escaped_in_errors_tables_and_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    source = tmp_path / "source"
    for index in range(3):
        save(noise(16, 16, index), source / f"ok{index}.png")
    (source / f"bad{HOSTILE.replace(chr(0), '')}.png").write_bytes(b"not a png")
    code, out, err = run(capsys, home, "datasets", "import", str(source), "--name", "d", "--size", "8")
    assert code == 0, err
    assert "skipped" in out and "\\x1b[2J" in out
    assert not any(c in out + err for c in RAW_CONTROLS)
    code, out, err = run(capsys, home, "datasets", "import", str(source), "--name", "e", "--size", "8", "--json")
    assert code == 0 and not any(c in out for c in RAW_CONTROLS)
    assert any("\x1b[2J" in skip["path"] for skip in json.loads(out)["skipped"])  # the JSON keeps the real name

    # A PNG whose metadata names a model with escape sequences; and a missing file with one in its name.
    info = PngInfo()
    metadata = {"operation": "sample", "model": HOSTILE, "family": "vae", "params": {}, "backend": "torch", "seed": 1}
    info.add_text("studio", json.dumps(metadata))
    png = tmp_path / "made.png"
    noise(8, 8, 0).save(png, pnginfo=info)
    for argv in (["gallery", "reproduce", str(png)], ["gallery", "reproduce", str(tmp_path / f"{HOSTILE}.png")]):
        for extra in ([], ["--json"]):
            code, out, err = run(capsys, home, *argv, *extra)
            assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
            assert not any(c in out + err for c in RAW_CONTROLS), (out, err)


def test_every_cli_line_goes_through_the_printing_module() -> None:
    """A bare print() in a command module would bypass the escaping of control characters."""
    offenders = []
    for path in sorted((ROOT / "studio" / "cli").glob("*.py")):
        if path.name == "printing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


# --- onnxruntime: only where a network runs, and never writing to the user's folders ---------

_PROBE = """
import json, sys
from studio.cli import main
for argv in (["gallery", "list", "--json"], ["datasets", "list", "--json"], ["generate", "--help"]):
    try:
        main(argv)
    except SystemExit:
        pass
import studio.engine.generation, studio.engine.curation, studio.engine.library, studio.engine.runtime
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "onnxruntime")), file=sys.stderr)
"""

_SESSION = """
import onnx, numpy as np
from onnx import TensorProto, helper
from studio.engine.runtime.providers import open_session
x, y = (helper.make_tensor_value_info(name, TensorProto.FLOAT, [1]) for name in "xy")
graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
model = helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 17)])
session, _ = open_session(model.SerializeToString(), "cpu")
assert session.run(None, {"x": np.ones(1, np.float32)})[0][0] == 1
"""


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    for name in ("HOME", "XDG_CACHE_HOME", "TMPDIR", "STUDIO_HOME"):
        env[name] = str(tmp_path / name.lower())
        (tmp_path / name.lower()).mkdir()
    return env


def test_commands_without_a_network_never_import_onnxruntime(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []
    for name in ("home", "xdg_cache_home", "tmpdir"):
        assert list((tmp_path / name).rglob("*")) == [], name


def test_a_session_writes_nothing_in_the_users_cache_or_temp_folders(tmp_path: Path) -> None:
    env = _clean_env(tmp_path)
    subprocess.run([sys.executable, "-c", _SESSION], cwd=ROOT, env=env, capture_output=True, timeout=120, check=True)
    for name in ("home", "xdg_cache_home", "tmpdir"):
        assert list((tmp_path / name).rglob("*")) == [], name
