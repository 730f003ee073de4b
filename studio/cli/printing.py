"""Everything the CLI prints, in one place: tables, JSON, one-line errors, progress and exit codes.

Results go to stdout (one JSON object with --json); progress, notes and errors go to stderr, so
a script can read stdout alone.
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any, TextIO

from studio.engine.jobs import Progress

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130

# C0 controls (NUL, newline, ESC...), DEL and C1 controls (0x80-0x9f, which some terminals read as
# escape sequences too), plus the bidirectional overrides and isolates that reorder what a terminal
# shows. Names from files and folders may hold any of them; printed raw they could redraw the
# screen, set the window title or hide text.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def printable(text: object) -> str:
    """`text` with every control character escaped as Python writes it (\\x1b, \\n); other Unicode kept."""
    return _CONTROLS.sub(_escape, str(text))


def say(text: object = "") -> None:
    """Print one line of a command's human-readable result on stdout, control characters escaped."""
    print(printable(text))


def print_table(rows: list[list[str]], headers: list[str]) -> None:
    """Print rows under headers in left-aligned columns, two spaces apart (cells escaped first)."""
    cells = [[printable(v) for v in row] for row in [headers, *rows]]
    widths = [max(len(v) for v in column) for column in zip(*cells, strict=False)]
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())


def as_json(payload: object) -> str:
    """One JSON document, with C1 controls and DEL escaped too (json.dumps escapes only C0 itself)."""
    # default=str: dates and paths in payloads print as text rather than failing the command.
    text = json.dumps(payload, ensure_ascii=False, default=str)
    # Outside strings JSON has no such characters, so escaping them everywhere stays valid JSON.
    return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def print_json(payload: dict[str, Any]) -> None:
    """Print a command's result as the one JSON object on stdout."""
    print(as_json(payload))


def print_error(message: str, as_json_too: bool) -> None:
    """Report a failure in one line on stderr, and as {"error": ...} on stdout for --json."""
    print(f"studio: error: {printable(message)}", file=sys.stderr)
    if as_json_too:
        print(as_json({"error": message}))


def print_note(message: str) -> None:
    """A remark about a result (not the result itself) on stderr."""
    print(f"studio: {printable(message)}", file=sys.stderr)


def clock(seconds: float | None) -> str:
    """Seconds as M:SS, or H:MM:SS from an hour up."""
    total = int(seconds or 0)
    if total >= 3600:
        return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"
    return f"{total // 60}:{total % 60:02d}"


class ProgressPrinter:
    """Shows job progress on stderr: one rewritten line on a terminal, occasional lines otherwise."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self._last_stage = ""
        self._last_tenth = -1
        self._last_time = 0.0

    def __call__(self, event: object) -> None:
        """Show one event (only Progress events; others are for the caller)."""
        if self.quiet or not isinstance(event, Progress):
            return
        fraction = event.fraction
        percent = f"{fraction * 100:5.1f}%" if fraction is not None else "     "
        line = printable(f"{event.stage:<10} {percent} {event.message}")
        if self.tty:
            # Throttled: redrawing on every event would cost more than some jobs' steps.
            now = time.monotonic()
            if now - self._last_time > 0.05 or fraction == 1.0:
                self.stream.write("\r\033[K" + line)
                self.stream.flush()
                self._last_time = now
            return
        # Logs and pipes get a line per stage and per tenth, not a flood.
        tenth = int(fraction * 10) if fraction is not None else -1
        if event.stage != self._last_stage or tenth != self._last_tenth:
            self.stream.write(line + "\n")
            self.stream.flush()
        self._last_stage, self._last_tenth = event.stage, tenth

    def close(self) -> None:
        """End the rewritten line."""
        if self.tty and not self.quiet and self._last_time:
            self.stream.write("\n")
            self.stream.flush()


class TrainingPrinter(ProgressPrinter):
    """Training progress: step, losses, throughput and ETA; warnings on their own line."""

    def __call__(self, event: object) -> None:
        """Show one training event."""
        # Imported here: the training module brings torch, which only `studio train` needs.
        from studio.engine.training import CheckpointSaved, TrainingProgress, TrainingWarning

        if self.quiet:
            return
        if isinstance(event, TrainingWarning):
            warning = printable(f"warning at step {event.step}: {event.message}")
            self.stream.write(("\n" if self.tty else "") + warning + "\n")
        elif isinstance(event, CheckpointSaved) and not self.tty:
            self.stream.write(f"checkpoint saved at step {event.step}\n")
        elif isinstance(event, TrainingProgress):
            target = f"/{event.target_steps}" if event.target_steps else ""
            losses = "  ".join(f"{k} {v:.4g}" for k, v in event.losses.items())
            eta = f"  ETA {clock(event.eta_seconds)}" if event.eta_seconds is not None else ""
            line = f"step {event.step}{target}  {losses}  {event.samples_per_second:.0f} img/s{eta}"
            if self.tty:
                self.stream.write("\r\033[K" + line)
                self._last_time = time.monotonic()
            else:
                now = time.monotonic()
                if now - self._last_time >= 5 or event.step == event.target_steps:
                    self.stream.write(line + "\n")
                    self._last_time = now
        else:
            return
        self.stream.flush()
