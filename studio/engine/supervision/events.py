"""A training job's events as lines of JSON (events.jsonl), and back into the same event objects.

Each line is one object with an "event" key. Preview images go to safetensors files beside the log
(only the newest few are kept; an older preview comes back without its images). The last line of a run
that ended on its own is "finished" (the TrainResult) or "error" (the one-line reason). Nothing here
is unpickled: JSON and safetensors only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from safetensors.numpy import load_file, save_file

from studio.engine.jobs import Finished, Progress
from studio.engine.supervision.run_folder import RunFolder
from studio.engine.training_events import CheckpointSaved, PreviewReady, TrainingProgress, TrainingWarning
from studio.errors import StudioError
from studio.files import partial_path

KEEP_PREVIEWS = 3  # preview files on disk: a re-attached window shows the newest
FINAL_EVENTS = ("finished", "error")


@dataclass(frozen=True)
class RunFailed:
    """The run's own last word when it failed: its one-line reason (attach raises it as a StudioError)."""

    message: str


def encode(event: object, folder: RunFolder) -> dict[str, Any] | None:
    """The JSON object for one event (None for an event no reader needs); previews are written as files."""
    if isinstance(event, TrainingProgress):
        return {
            "event": "progress",
            "step": event.step,
            "target_steps": event.target_steps,
            "losses": event.losses,
            "samples_per_second": event.samples_per_second,
            "eta_seconds": event.eta_seconds,
            "elapsed_seconds": event.elapsed_seconds,
        }
    if isinstance(event, PreviewReady):
        images = None
        if event.images is not None:
            images = f"step-{event.step:09d}.safetensors"
            path = folder.previews / images
            partial = partial_path(path)
            save_file({"images": np.ascontiguousarray(event.images)}, str(partial))
            os.replace(partial, path)  # a reader never opens half a file
            _prune_previews(folder)
        return {"event": "preview", "step": event.step, "images": images, "figures": event.figures}
    if isinstance(event, CheckpointSaved):
        return {"event": "checkpoint", "step": event.step, "weights_hash": event.weights_hash}
    if isinstance(event, TrainingWarning):
        return {"event": "warning", "step": event.step, "message": event.message}
    milestones = sys.modules.get("studio.engine.milestones")  # loaded wherever a milestone can exist
    if milestones is not None and isinstance(event, milestones.MilestoneSaved):
        return {
            "event": "milestone",
            "step": event.step,
            "weights_hash": event.weights_hash,
            "items": list(event.items),
            "pruned": list(event.pruned),
        }
    if isinstance(event, Progress):
        return {
            "event": "stage",
            "stage": event.stage,
            "done": event.done,
            "total": event.total,
            "message": event.message,
        }
    if isinstance(event, Finished):
        result = event.result
        as_dict = getattr(result, "as_dict", None)
        payload = as_dict() if as_dict is not None else {}
        payload["seconds"] = getattr(result, "seconds", payload.get("seconds", 0.0))  # unrounded
        return {"event": "finished", "result": payload}
    if isinstance(event, RunFailed):
        return {"event": "error", "message": event.message}
    return None


def _prune_previews(folder: RunFolder) -> None:
    files = sorted(folder.previews.glob("step-*.safetensors"))
    for old in files[:-KEEP_PREVIEWS]:
        old.unlink(missing_ok=True)


def decode(line: dict[str, Any], folder: RunFolder) -> object | None:
    """The event object a JSON line stands for (None for a line this version does not know)."""
    kind = line.get("event")
    try:
        if kind == "progress":
            return TrainingProgress(
                int(line["step"]),
                None if line.get("target_steps") is None else int(line["target_steps"]),
                {str(k): float(v) for k, v in dict(line["losses"]).items()},
                float(line["samples_per_second"]),
                None if line.get("eta_seconds") is None else float(line["eta_seconds"]),
                float(line["elapsed_seconds"]),
            )
        if kind == "preview":
            figures = {str(k): float(v) for k, v in dict(line.get("figures") or {}).items()}
            return PreviewReady(int(line["step"]), _load_images(folder, line.get("images")), figures)
        if kind == "checkpoint":
            return CheckpointSaved(int(line["step"]), str(line["weights_hash"]))
        if kind == "warning":
            return TrainingWarning(int(line["step"]), str(line["message"]))
        if kind == "milestone":
            # Imported here: the milestones module brings torch, which following a run does not need.
            from studio.engine.milestones import MilestoneSaved

            return MilestoneSaved(
                int(line["step"]),
                str(line["weights_hash"]),
                tuple(int(i) for i in line.get("items", [])),
                tuple(int(i) for i in line.get("pruned", [])),
            )
        if kind == "stage":
            return Progress(str(line["stage"]), int(line["done"]), int(line["total"]), str(line.get("message", "")))
        if kind == "finished":
            return Finished(_result(dict(line["result"])))
        if kind == "error":
            return RunFailed(str(line.get("message") or "the run failed"))
    except (KeyError, TypeError, ValueError):
        return None  # a line this version cannot read: skipped rather than stopping the reader
    return None


def _load_images(folder: RunFolder, name: object) -> np.ndarray | None:
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
        return None
    try:
        images = load_file(str(folder.previews / name)).get("images")
    except (OSError, ValueError, RuntimeError):  # pruned meanwhile, or not a safetensors file
        return None
    if images is None or images.dtype != np.uint8 or images.ndim != 4:
        return None
    return images


def _result(payload: dict[str, Any]) -> Any:
    """The TrainResult a finished line describes."""
    # Imported here: the trainer's module brings torch, which only the end of a run needs.
    from studio.engine.runs import RunStatus
    from studio.engine.training import TrainResult

    return TrainResult(
        model=str(payload["model"]),
        family=str(payload["family"]),
        dataset=str(payload.get("dataset") or ""),
        steps=int(payload["steps"]),
        start_step=int(payload["start_step"]),
        final_losses={str(k): float(v) for k, v in dict(payload.get("final_losses") or {}).items()},
        status=RunStatus(payload["status"]),
        device=str(payload.get("device") or ""),
        seconds=float(payload.get("seconds") or 0.0),
        warnings=[str(w) for w in payload.get("warnings") or []],
    )


class EventWriter:
    """Appends each event to events.jsonl as one line, flushed at once (only the main rank writes)."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self._file: BinaryIO = open(folder.events_file, "ab")  # noqa: SIM115 - open for the run's life

    def write(self, event: object) -> None:
        """Write one event (events no reader needs are skipped)."""
        line = encode(event, self.folder)
        if line is None:
            return
        line["at"] = round(time.time(), 3)
        self._file.write(json.dumps(line, default=str).encode("utf-8") + b"\n")
        self._file.flush()
        if line["event"] in FINAL_EVENTS:
            os.fsync(self._file.fileno())  # the outcome survives a power cut right after

    def close(self) -> None:
        """Close the log."""
        self._file.close()


class EventReader:
    """Follows events.jsonl: each call returns the events completed since the last one."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder
        self._offset = 0
        self._partial = b""

    def read(self) -> Iterator[object]:
        """The events written since the last read (a line still being written waits for the next)."""
        try:
            with open(self.folder.events_file, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        except OSError as error:
            raise StudioError(f"cannot read the run's events in {self.folder.path}: {error.strerror}") from None
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            event = decode(line, self.folder) if isinstance(line, dict) else None
            if event is not None:
                yield event
