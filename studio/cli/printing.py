"""Everything the CLI prints, in one place: tables, JSON, one-line errors, progress and exit codes.

Results go to stdout (one JSON object with --json); progress, notes and errors go to stderr, so
a script can read stdout alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import unicodedata
from typing import TYPE_CHECKING, Any, TextIO

from studio.engine.jobs import Progress

if TYPE_CHECKING:
    from studio.cli.progress import StageBars, TrainingBar

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130

# A cut column keeps at least this many terminal columns (or its header's width); columns are two apart.
_MIN_COLUMN = 4
_GAP = 2


class _Output:
    """How this command prints: --quiet keeps only errors and the result (set per command by the Context)."""

    quiet = False


def set_quiet(quiet: bool) -> None:
    """Keep only errors and the final result (--quiet): notes and progress stay silent."""
    _Output.quiet = quiet


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is an interactive terminal that can redraw a line (not a pipe, a file or TERM=dumb)."""
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # a closed or unusual stream: treat it as a log
        return False


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


def print_table(rows: list[list[str]], headers: list[str], width: int | None = None) -> None:
    """Print rows under headers in left-aligned columns, two spaces apart (cells escaped first).

    On a terminal (or given `width`) the widest columns are cut, with an ellipsis, until a row fits.
    """
    cells = [[printable(v) for v in row] for row in [headers, *rows]]
    widths = [max(text_width(v) for v in column) for column in zip(*cells, strict=False)]
    if width is None and is_terminal(sys.stdout):
        width = terminal_columns(sys.stdout)
    if width is not None:
        # Never narrower than the header: a column still says what it is.
        floors = [max(text_width(h), _MIN_COLUMN) for h in cells[0]]
        widths = fit_columns(widths, floors, width - _GAP * (len(widths) - 1))
    ellipsis = "…" if (sys.stdout.encoding or "").lower().replace("-", "") == "utf8" else "..."
    for row in cells:
        line = "  ".join(pad(clip(v, w, ellipsis), w) for v, w in zip(row, widths, strict=False))
        print(line.rstrip())


def terminal_columns(stream: TextIO) -> int:
    """The width of the terminal `stream` shows on; $COLUMNS first, as shutil.get_terminal_size reads it."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        return os.get_terminal_size(stream.fileno()).columns or shutil.get_terminal_size().columns
    except (AttributeError, OSError, ValueError):  # no descriptor to ask: the interpreter's own terminal
        return shutil.get_terminal_size().columns


def fit_columns(widths: list[int], floors: list[int], available: int) -> list[int]:
    """Column widths that add up to at most `available`, taken from the widest first, none below its floor."""
    widths = list(widths)
    while sum(widths) > available:
        candidates = [i for i, w in enumerate(widths) if w > floors[i]]
        if not candidates:
            break  # as narrow as it goes: the terminal wraps what is left
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def text_width(text: str) -> int:
    """Columns `text` takes on a terminal: wide East Asian characters two, combining marks none."""
    return sum(_char_width(c) for c in text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def clip(text: str, width: int, ellipsis: str = "…") -> str:
    """`text` cut to `width` terminal columns, its last column an ellipsis when something was cut."""
    if text_width(text) <= width:
        return text
    kept, used = [], 0
    for char in text:
        if used + _char_width(char) > width - len(ellipsis):
            break
        kept.append(char)
        used += _char_width(char)
    return "".join(kept) + ellipsis[: max(0, width - used)]


def pad(text: str, width: int) -> str:
    """`text` followed by spaces up to `width` terminal columns."""
    return text + " " * max(0, width - text_width(text))


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
    """A remark about a result (not the result itself) on stderr; silent under --quiet."""
    if not _Output.quiet:
        print(f"studio: {printable(message)}", file=sys.stderr)


def clock(seconds: float | None) -> str:
    """Seconds as M:SS, or H:MM:SS from an hour up."""
    total = int(seconds or 0)
    if total >= 3600:
        return f"{total // 3600}:{total // 60 % 60:02d}:{total % 60:02d}"
    return f"{total // 60}:{total % 60:02d}"


class ProgressPrinter:
    """Shows job progress on stderr: bars with rate and ETA on a terminal, occasional plain lines otherwise."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = is_terminal(stream)
        self._bars: StageBars | None = None
        self._last_stage = ""
        self._last_tenth = -1

    def __call__(self, event: object) -> None:
        """Show one event (only Progress events; others are for the caller)."""
        if self.quiet or not isinstance(event, Progress):
            return
        if self.tty:
            self._stage_bars().show(printable(event.stage), event.done, event.total, printable(event.message))
            return
        fraction = event.fraction
        percent = f"{fraction * 100:5.1f}%" if fraction is not None else "     "
        line = printable(f"{event.stage:<10} {percent} {event.message}")
        # Logs and pipes get a line per stage and per tenth, not a flood (and no control codes).
        tenth = int(fraction * 10) if fraction is not None else -1
        if event.stage != self._last_stage or tenth != self._last_tenth:
            self.stream.write(line + "\n")
            self.stream.flush()
        self._last_stage, self._last_tenth = event.stage, tenth

    def _stage_bars(self) -> StageBars:
        if self._bars is None:
            # Imported here: tqdm is for terminals only; scripts and pipes need not load it.
            from studio.cli.progress import StageBars

            self._bars = StageBars(self.stream)
        return self._bars

    def close(self) -> None:
        """End the bar's line (the finished bar stays on screen)."""
        if self._bars is not None:
            self._bars.close()


class TrainingPrinter(ProgressPrinter):
    """Training progress: step, losses, throughput and ETA; warnings on their own line; stages as above."""

    def __init__(self, stream: TextIO, quiet: bool = False) -> None:
        super().__init__(stream, quiet)
        self._training: TrainingBar | None = None
        self._last_time = 0.0

    def __call__(self, event: object) -> None:
        """Show one training event."""
        # Imported here: the training module brings torch, which only `studio train` needs.
        from studio.engine.training import CheckpointSaved, TrainingProgress, TrainingWarning

        if self.quiet:
            return
        if isinstance(event, Progress):
            # A stage around the steps (the encoder's preparing, embedding...): its own bar or line.
            if self._training is not None:
                self._training.close()
                self._training = None
            super().__call__(event)
        elif isinstance(event, TrainingWarning):
            warning = printable(f"warning at step {event.step}: {event.message}")
            if self.tty:
                self._training_bar().note(warning)
            else:
                self.stream.write(warning + "\n")
        elif isinstance(event, CheckpointSaved) and not self.tty:
            self.stream.write(f"checkpoint saved at step {event.step}\n")
        elif isinstance(event, TrainingProgress):
            self._show(event)
        else:
            return
        self.stream.flush()

    def _show(self, event: Any) -> None:
        """One TrainingProgress: a bar on a terminal, a line every 5 seconds (and the last step) otherwise."""
        losses = "  ".join(f"{k} {v:.4g}" for k, v in event.losses.items())
        if self.tty:
            super().close()  # a stage bar before the steps ends here
            details = printable(f"{losses}  {event.samples_per_second:.0f} img/s")
            self._training_bar().show(event.step, event.target_steps, event.elapsed_seconds, event.eta_seconds, details)
            return
        target = f"/{event.target_steps}" if event.target_steps else ""
        eta = f"  ETA {clock(event.eta_seconds)}" if event.eta_seconds is not None else ""
        line = f"step {event.step}{target}  {losses}  {event.samples_per_second:.0f} img/s{eta}"
        now = time.monotonic()
        if now - self._last_time >= 5 or event.step == event.target_steps:
            self.stream.write(line + "\n")
            self._last_time = now

    def _training_bar(self) -> TrainingBar:
        if self._training is None:
            from studio.cli.progress import TrainingBar

            self._training = TrainingBar(self.stream)
        return self._training

    def close(self) -> None:
        """End the bars' lines."""
        if self._training is not None:
            self._training.close()
            self._training = None
        super().close()
