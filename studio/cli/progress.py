"""Progress bars on a terminal (tqdm): a bar per job stage, and training's bar, each with rate and ETA.

Only for streams that are terminals: pipes, logs and tests get the plain lines of printing.py.
Every text handed in here is already escaped (printing.printable); this module only draws.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TextIO

# tqdm ships no type information: its objects are Any here, and only this module touches them.
from tqdm import tqdm

# No background thread: tqdm's monitor would outlive a command run inside another program (the
# tests, the app's own CLI calls). A thread lock rather than tqdm's default multiprocessing one:
# nothing here is shared between processes, and a multiprocessing lock starts a helper.
tqdm.monitor_interval = 0
tqdm.set_lock(threading.RLock())

# Between redraws of the training bar: events come a few times a second, a redraw costs a write.
_REDRAW_SECONDS = 0.1
_TIME_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| "


def _bar(stream: TextIO, description: str, total: float | None, initial: float, unit: str, **extra: Any) -> Any:
    """A tqdm bar on `stream` that fits the terminal's width as it changes and stays once finished."""
    return tqdm(
        file=stream,
        desc=description,
        total=total,
        initial=initial,
        unit=unit,
        dynamic_ncols=True,
        leave=True,
        smoothing=0.1,
        **extra,
    )


class StageBars:
    """One job's progress on a terminal: a bar per stage with its count, rate and ETA."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bar: Any = None
        self._stage = ""
        # When the current stage began: the previous event (or this printer's start, the job's).
        self._since = time.time()

    def show(self, stage: str, done: int, total: int, message: str) -> None:
        """Move the current stage's bar to `done` of `total` (0: unknown), with `message` after it."""
        bar = self._bar
        # A stage that comes back with the same total (export alternates "exporting" and
        # "checking" per network) keeps its bar; a new total or a count going back starts a new one.
        if bar is None or (total or None) != bar.total or done < bar.n:
            self.close()
            bar = self._bar = _bar(self.stream, stage, total or None, 0, "")
            # The stage began before its first event (a job may report every hundred images):
            # counting from then gives a rate and an ETA from the first event on.
            bar.start_t = bar.last_print_t = self._since
        elif stage != self._stage:
            bar.set_description_str(stage, refresh=False)
        self._stage = stage
        bar.set_postfix_str(message, refresh=False)
        bar.update(done - bar.n)
        if total and done >= total:
            bar.refresh()  # the last state is drawn even when it came within tqdm's redraw interval
        self._since = time.time()

    def note(self, line: str) -> None:
        """Print a line above the bar, which is then drawn again below it."""
        if self._bar is None:
            self.stream.write(line + "\n")
        else:
            self._bar.clear()
            self.stream.write(line + "\n")
            self._bar.refresh()
        self.stream.flush()

    def close(self) -> None:
        """Leave the current bar on screen as it is and end its line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class TrainingBar:
    """Training on a terminal: steps of the target with rate and ETA, or the time budget when none."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bar: Any = None
        self._by_time = False
        self._last_draw = 0.0
        self._first: tuple[int, float] | None = None

    def show(self, step: int, target: int | None, elapsed: float, eta: float | None, details: str) -> None:
        """Draw the run at `step`; `details` (losses, throughput) follow the bar."""
        if self._bar is None:
            self._first = (step, elapsed)
            self._by_time = target is None
            if self._by_time:
                # A --minutes run has no step target: the bar fills with time, the engine's ETA ends it.
                self._bar = _bar(self.stream, "train", None, 0, "s", bar_format=_TIME_FORMAT)
            else:
                self._bar = _bar(self.stream, "train", target, step, " steps", mininterval=_REDRAW_SECONDS)
        bar = self._bar
        if self._by_time:
            now = time.monotonic()
            finished = eta is not None and eta <= 0
            if now - self._last_draw < _REDRAW_SECONDS and not finished:
                return
            self._last_draw = now
            first_step, first_elapsed = self._first or (step, elapsed)
            rate = f"{(step - first_step) / (elapsed - first_elapsed):.2f}" if elapsed > first_elapsed else "?"
            remaining = f"<{_clock(eta)}" if eta is not None else ""
            bar.total = max(elapsed + (eta or 0.0), elapsed, 1e-9)
            bar.n = elapsed
            text = f"step {step} [{_clock(elapsed)}{remaining}, {rate} steps/s, {details}]"
            # The text is part of the format (tqdm's {postfix} would add its own ", "): braces escaped.
            bar.bar_format = _TIME_FORMAT + text.replace("{", "{{").replace("}", "}}")
            bar.refresh()
        else:
            bar.set_postfix_str(details, refresh=False)
            bar.update(step - bar.n)
            if target is not None and step >= target:
                bar.refresh()

    def note(self, line: str) -> None:
        """Print a line (a warning) above the bar, which is then drawn again below it."""
        if self._bar is not None:
            self._bar.clear()
        self.stream.write(line + "\n")
        if self._bar is not None:
            self._bar.refresh()
        self.stream.flush()

    def close(self) -> None:
        """Leave the bar on screen as it is and end its line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _clock(seconds: float | None) -> str:
    """Seconds as MM:SS, or H:MM:SS from an hour up (tqdm's own format, so both bars read alike)."""
    return str(tqdm.format_interval(max(0.0, seconds or 0.0)))
