"""The run's side of supervision: `studio train --run-dir DIR` writes its events and obeys control.json.

Only the main process (rank 0, or the only process) writes events and watches the control file; the
other ranks of a distributed run follow rank 0's cancel token through the trainer itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from studio.engine.jobs import CancelToken
from studio.engine.launch import is_main_process
from studio.engine.supervision.events import EventWriter, RunFailed
from studio.engine.supervision.run_folder import ControlState, RunFolder, describe_process
from studio.errors import StudioError

CONTROL_POLL_SECONDS = 0.05  # a stat() 20 times a second: pause and cancel take effect within a step or two


class ControlWatcher:
    """A small thread that polls control.json and drives a CancelToken (pause, resume, cancel)."""

    def __init__(self, folder: RunFolder, token: CancelToken, interval: float = CONTROL_POLL_SECONDS) -> None:
        self.folder, self.token, self.interval = folder, token, interval
        self._stop = threading.Event()
        self._seen: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._watch, name="studio-run-control", daemon=True)

    def start(self) -> None:
        """Apply the file as it is now, then keep watching it."""
        self.poll()
        self._thread.start()

    def poll(self) -> None:
        """Apply control.json when it changed since the last look."""
        try:
            stat = self.folder.control_file.stat()
            seen = (stat.st_mtime_ns, stat.st_ino)
        except OSError:
            return  # nothing asked yet
        if seen == self._seen:
            return
        self._seen = seen
        state = self.folder.control()
        if state is ControlState.CANCELLED:
            self.token.cancel()
        elif state is ControlState.PAUSED:
            self.token.pause()
        else:
            self.token.resume()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()

    def stop(self) -> None:
        """Stop watching (and wait for the thread)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def supervised_job(run_dir: Path, job: Callable[[CancelToken], Iterable[object]]) -> Iterator[object]:
    """Run `job(token)` as a supervised run: every event is also written to the run's events file.

    The main process holds the run's lock while it runs, obeys control.json through the token, and
    writes a final "error" line when the job fails, so whoever follows the run learns why it ended.
    """
    folder = RunFolder(Path(run_dir).absolute())
    if not folder.path.is_dir():
        raise StudioError(f"--run-dir {run_dir}: no such folder")
    token = CancelToken()
    if not is_main_process():
        yield from job(token)
        return
    lock = folder.take_lock()
    _record_process(folder)
    watcher = ControlWatcher(folder, token)
    writer = EventWriter(folder)
    try:
        watcher.start()
        for event in job(token):
            writer.write(event)
            yield event
    except StudioError as error:
        writer.write(RunFailed(str(error)))
        raise
    except KeyboardInterrupt:
        writer.write(RunFailed("the run was interrupted; its last checkpoint is kept: resume it"))
        raise
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else ""
        writer.write(RunFailed(f"unexpected error in the run ({type(error).__name__}: {first}); see its output.log"))
        raise
    finally:
        watcher.stop()
        writer.close()
        lock.close()


def _record_process(folder: RunFolder) -> None:
    """Add this process to run.json when it is not the one started (a torchrun worker of rank 0)."""
    info = folder.info()
    processes = [entry for entry in info.get("processes", []) if isinstance(entry, dict)]
    if any(entry.get("pid") == os.getpid() for entry in processes):
        return
    info["processes"] = [*processes, describe_process(os.getpid(), "trainer")]
    folder.write_info(info)
