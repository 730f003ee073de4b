"""The CLI on a terminal and off it: bars with rate and ETA on a terminal, plain lines in pipes,
--quiet, --json unchanged, tables that fit the terminal's width."""

from __future__ import annotations

import fcntl
import json
import os
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path
from typing import TextIO

import pytest

from studio.cli import main
from studio.cli.printing import TrainingPrinter, clip, fit_columns, print_note, print_table, text_width
from studio.engine.jobs import Progress

ROOT = Path(__file__).resolve().parents[1]
CONTROL_CODES = ("\r", "\x1b")


class Terminal:
    """A pseudo-terminal `columns` wide: `stream` writes to it as to a real one, `close()` returns what it showed."""

    def __init__(self, columns: int = 80) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        self.stream: TextIO = os.fdopen(os.dup(self.slave), "w", encoding="utf-8", buffering=1)
        self._chunks: list[bytes] = []
        # Drained as it is written: a full pseudo-terminal buffer would block the writer (this test).
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every writer's end is closed
                return
            if not data:
                return
            self._chunks.append(data)

    def close(self) -> str:
        """Everything written, with the terminal's \\r\\n line ends turned back into \\n."""
        self.stream.close()
        os.close(self.slave)
        self._reader.join(10)
        os.close(self.master)
        return b"".join(self._chunks).decode().replace("\r\n", "\n")


@pytest.fixture
def terminal_env(monkeypatch: pytest.MonkeyPatch, isolated_home: Path) -> Path:
    """A terminal that can redraw lines, whose width the terminal itself says (no $COLUMNS)."""
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("COLUMNS", raising=False)
    return isolated_home


def shown_lines(screen: str) -> list[str]:
    """What each line of a terminal ends up showing: the text after its last carriage return."""
    return [line.split("\r")[-1] for line in screen.split("\n")]


def test_a_terminal_shows_a_bar_with_rate_and_eta(terminal_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal(100)
    monkeypatch.setattr(sys, "stderr", terminal.stream)
    code = main(["datasets", "add-sample", "shapes", "--size", "8", "--count", "300"])
    screen = terminal.close()
    assert code == 0, screen
    assert "\r" in screen  # one line redrawn in place
    final = [line for line in shown_lines(screen) if line.startswith("generating")]
    assert len(final) == 1, screen  # the finished bar stays, once
    bar = final[0]
    assert "100%|" in bar and "300/300" in bar and "/s" in bar  # percentage, count, rate
    assert "[00:0" in bar and "<00:00" in bar  # elapsed < remaining: tqdm's ETA
    assert "█" in bar and len(bar) <= 100


def test_a_pipe_gets_plain_lines(isolated_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["datasets", "add-sample", "shapes", "--size", "8", "--count", "300"])
    out, err = capsys.readouterr()
    assert code == 0 and "added sample 'shapes'" in out
    lines = err.splitlines()
    assert lines and all(line.startswith("generating") for line in lines)
    assert lines[-1].startswith("generating 100.0%")
    assert not any(code in err for code in CONTROL_CODES)  # no bar, no redraw in a log


def test_quiet_prints_the_result_and_errors_only(terminal_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    err, out = Terminal(), Terminal()
    monkeypatch.setattr(sys, "stderr", err.stream)
    monkeypatch.setattr(sys, "stdout", out.stream)
    assert main(["datasets", "add-sample", "shapes", "--size", "8", "--count", "50", "--quiet"]) == 0
    assert main(["-q", "datasets", "show", "nope"]) == 1
    print_note("a later note")  # quiet belongs to the command that asked for it
    screen, result = err.close(), out.close()
    # No bar and no note from the quiet commands: the error alone.
    assert screen == "studio: error: no dataset named 'nope' (see `studio datasets list`)\nstudio: a later note\n"
    assert result.startswith("added sample 'shapes'") and result.count("\n") == 1


def test_json_is_the_same_on_a_terminal(
    terminal_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["datasets", "add-sample", "shapes", "--size", "8", "--count", "20", "--json"]) == 0
    piped_add = json.loads(capsys.readouterr().out)
    assert main(["datasets", "list", "--json"]) == 0
    piped_list = capsys.readouterr().out
    err, out = Terminal(30), Terminal(30)  # narrow: a table would be cut, JSON must not be
    monkeypatch.setattr(sys, "stderr", err.stream)
    monkeypatch.setattr(sys, "stdout", out.stream)
    code_list = main(["datasets", "list", "--json"])
    code_add = main(["datasets", "add-sample", "shapes", "--name", "again", "--size", "8", "--count", "20", "--json"])
    screen, result = err.close(), out.close()
    assert code_add == 0 and code_list == 0, screen
    list_line, add_line = result.splitlines()
    assert list_line + "\n" == piped_list  # byte for byte
    on_terminal = json.loads(add_line)
    assert on_terminal.keys() == piped_add.keys() and on_terminal["dataset"] == "again"
    assert "\r" not in result and "\x1b" not in result and "…" not in result  # nothing for terminals in the JSON
    assert "generating" in screen and "%|" in screen  # the bar still went to stderr


def test_a_table_fits_a_narrow_terminal(terminal_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long_path = "/home/someone/pictures/" + "very-long-folder-name/" * 6 + "image.png"
    rows = [["1", "4", long_path], ["22", "5", "日本語の名前" * 8]]
    out = Terminal(50)
    monkeypatch.setattr(sys, "stdout", out.stream)
    print_table(rows, ["ID", "RATING", "PATH"])
    lines = out.close().splitlines()
    assert len(lines) == 3 and all(text_width(line) <= 50 for line in lines)
    assert lines[0].split() == ["ID", "RATING", "PATH"]
    assert lines[1].startswith("1   4       /home/someone/") and lines[1].endswith("…")
    assert lines[2].startswith("22  5       日本語") and text_width(lines[2]) in (49, 50)  # wide characters count 2


def test_a_table_in_a_pipe_keeps_every_character(capsys: pytest.CaptureFixture[str]) -> None:
    long_path = "/data/" + "x" * 300 + ".png"
    print_table([["1", long_path]], ["ID", "PATH"])
    out = capsys.readouterr().out
    assert long_path in out and "…" not in out  # scripts reading the table get whole cells


def test_the_table_of_a_command_fits(terminal_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["--quiet", "datasets", "add-sample", "shapes", "--size", "8", "--count", "10"]) == 0
    out = Terminal(50)
    monkeypatch.setattr(sys, "stdout", out.stream)
    assert main(["datasets", "list"]) == 0
    lines = out.close().splitlines()
    assert lines[0].split() == ["NAME", "IMAGES", "SHAPE", "CLASSES", "ORIGIN", "CREATED"]  # headers whole
    assert lines[1].startswith("shapes  10      8x8x3")
    assert all(len(line) <= 50 for line in lines) and lines[1].endswith("…")


def test_fit_columns_cuts_the_widest_first() -> None:
    assert fit_columns([4, 30, 10], [4, 8, 8], 30) == [4, 16, 10]
    assert fit_columns([4, 30, 30], [4, 8, 8], 30) == [4, 13, 13]
    assert fit_columns([4, 30, 10], [4, 8, 8], 100) == [4, 30, 10]  # room enough: untouched
    assert fit_columns([10, 10], [8, 8], 5) == [8, 8]  # never below the floors
    assert clip("abcdefgh", 5) == "abcd…" and clip("abc", 5) == "abc" and clip("日本語", 4) == "日…"


def test_training_shows_a_bar_by_steps_and_by_time(terminal_env: Path) -> None:
    from studio.engine.training import CheckpointSaved, TrainingProgress, TrainingWarning

    terminal = Terminal(120)
    printer = TrainingPrinter(terminal.stream)
    for step in range(10, 60, 10):
        printer(TrainingProgress(step, 50, {"loss": 1 / step}, 512.0, 0.1 * (50 - step), 0.1 * step))
    printer(CheckpointSaved(50, "abc"))
    printer(TrainingWarning(50, "the generator may have collapsed"))
    printer(Progress("embedding", 3, 3, "measuring"))
    printer.close()
    timed = TrainingPrinter(terminal.stream)
    for second in range(1, 4):  # a --minutes run: no step target, the engine's ETA
        timed(TrainingProgress(100 * second, None, {"loss": 0.5}, 256.0, 3.0 - second, float(second)))
    timed.close()
    lines = shown_lines(terminal.close())
    by_steps = next(line for line in lines if line.startswith("train") and "50/50" in line)
    assert "100%|" in by_steps and "steps/s" in by_steps and "loss 0.02" in by_steps and "512 img/s" in by_steps
    assert "warning at step 50: the generator may have collapsed" in lines  # its own line, above the bar
    assert any(line.startswith("embedding") and "3/3" in line for line in lines)
    by_time = next(line for line in lines if line.startswith("train") and "step 300" in line)
    assert "100%|" in by_time and "[00:03<00:00, 100.00 steps/s" in by_time


def test_a_real_terminal_gets_a_bar_from_the_command(tmp_path: Path) -> None:
    """End to end: the installed command, its stderr a pseudo-terminal, nothing patched."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 90, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"STUDIO_HOME": str(tmp_path), "TERM": "xterm"}
    command = [sys.executable, "-m", "studio", "datasets", "add-sample", "shapes", "--size", "8", "--count", "40"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave, text=True) as process:
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        out, _ = process.communicate(timeout=120)
    os.close(master)
    screen = b"".join(chunks).decode().replace("\r\n", "\n")
    assert process.returncode == 0, screen
    assert "added sample 'shapes'" in out and "\r" not in out  # stdout is a pipe: plain
    bar = next(line for line in shown_lines(screen) if line.startswith("generating"))
    assert "100%|" in bar and "40/40" in bar and "?/s" not in bar and "\r" in screen, screen
