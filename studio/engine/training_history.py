"""Training history: a recorder that keeps a run's metrics as it trains, and the queries, smoothing and
CSV export over them.

The recorder buffers each step's losses (and the diagnostics and speed the job's events carry) and
writes them in batches, every few seconds and at each checkpoint and ending, so a killed run loses at
most the last few seconds of its curves and the trainer pays no transaction per step. Torch-free
(TensorBoard's writer is imported only when asked for), so the CLI and the Train page read history
without loading the trainer.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import math
import os
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from studio.engine.jobs import Finished
from studio.engine.training_events import CheckpointSaved, PreviewReady, TrainingProgress
from studio.errors import NotFoundError, StudioError
from studio.store.database import Store
from studio.store.embeddings import EmbeddingRepository
from studio.store.history import HistoryRepository, MetricRow, RunSummary, Series

FLUSH_SECONDS = 5.0  # at most this much of a killed run's history is lost
FLUSH_ROWS = 20_000  # or this many values, whichever comes first
# A new model has no run row until its first checkpoint: until then values wait in memory, up to this many.
MAX_UNSAVED_ROWS = 250_000
KIND_ORDER = ("loss", "diagnostic", "speed", "score")
SMOOTHING_MAX = 0.99
TENSORBOARD_MISSING = "--tensorboard needs the tensorboard package: pip install tensorboard"

_E = TypeVar("_E")


class RunHandle(Protocol):
    """What the recorder needs of the trainer's run: its model's name and its row's id once it has one."""

    name: str
    run_id: int | None


class TensorBoardWriter:
    """TensorBoard event files under FOLDER/MODEL (resumed runs append, so the step axis continues)."""

    def __init__(self, folder: Path, model: str) -> None:
        if not tensorboard_available():
            raise StudioError(TENSORBOARD_MISSING)
        from torch.utils.tensorboard import SummaryWriter  # only here: it brings torch and tensorboard

        self.folder = folder / model
        self.writer = SummaryWriter(log_dir=str(self.folder))

    def write(self, rows: Sequence[MetricRow]) -> None:
        """Add scalars as 'kind/name' tags at their steps, and push them to disk."""
        for kind, name, step, value in rows:
            self.writer.add_scalar(f"{kind}/{name}", value, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and stop the writer's thread."""
        self.writer.close()


def tensorboard_available() -> bool:
    """Whether the tensorboard package (which torch.utils.tensorboard needs) is installed."""
    return importlib.util.find_spec("tensorboard") is not None


def tensorboard_folder(store: Store, folder: str | Path) -> Path:
    """The folder `--tensorboard DIR` names, absolute: refused inside the data home or when it is a file."""
    path = Path(os.path.abspath(Path(folder).expanduser()))
    home = store.home.root.resolve()
    if path.resolve() == home or home in path.resolve().parents:
        raise StudioError(f"{path} is inside the data home: give --tensorboard a folder outside {store.home.root}")
    if path.exists() and not path.is_dir():
        raise StudioError(f"{path} exists and is not a folder: give --tensorboard a folder")
    if not tensorboard_available():
        raise StudioError(TENSORBOARD_MISSING)
    return path


def check_tensorboard(store: Store, folder: str | Path | None) -> None:
    """Refuse a `--tensorboard` folder no run could write to (None: no TensorBoard files asked for)."""
    if folder is not None:
        tensorboard_folder(store, folder)


class MetricRecorder:
    """Buffers a run's values and writes them to the store (and TensorBoard) in batches."""

    def __init__(self, store: Store, run: RunHandle) -> None:
        self.store = store
        self.repository = HistoryRepository(store)
        self.run = run
        self.pending: list[MetricRow] = []
        self.boarded = 0  # how many of `pending` TensorBoard has had
        self.marked = 0  # len(pending) at the last flush
        self.flushed_at = time.monotonic()
        self.dropped = 0
        self.board: TensorBoardWriter | None = None

    def losses(self, step: int, losses: Mapping[str, float]) -> None:
        """One training step's losses (called every step: keep it cheap)."""
        pending = self.pending
        if len(pending) >= MAX_UNSAVED_ROWS:
            self.dropped += 1  # only while no run row exists yet (see MAX_UNSAVED_ROWS)
            return
        for key, value in losses.items():
            pending.append(("loss", key, step, value))
        if len(pending) - self.marked >= FLUSH_ROWS or time.monotonic() - self.flushed_at >= FLUSH_SECONDS:
            self.flush()

    def observe(self, event: object) -> None:
        """Take the speed and diagnostics an event carries; write the batch at checkpoints and the end."""
        if isinstance(event, TrainingProgress):
            if event.samples_per_second > 0 and math.isfinite(event.samples_per_second):
                self.pending.append(("speed", "samples_per_second", event.step, event.samples_per_second))
        elif isinstance(event, PreviewReady):
            for key, value in event.figures.items():
                if math.isfinite(value):
                    self.pending.append(("diagnostic", key, event.step, float(value)))
        elif isinstance(event, CheckpointSaved | Finished):
            self.flush()

    def flush(self) -> None:
        """Write what is pending: to TensorBoard always, to the store once the run has its row."""
        self.flushed_at = time.monotonic()
        if self.board is not None and self.boarded < len(self.pending):
            self.board.write(self.pending[self.boarded :])
            self.boarded = len(self.pending)
        run_id = self.run.run_id
        if run_id is not None and self.pending:
            self.repository.add(run_id, self.pending)
            self.pending = []
            self.boarded = 0
        self.marked = len(self.pending)

    def watch(self, job: Generator[_E, None, None], tensorboard: str | Path | None = None) -> Generator[_E, None, None]:
        """Pass the job's events on, recording from them; whatever way the job ends, write what is left."""
        if tensorboard is not None:
            self.board = TensorBoardWriter(tensorboard_folder(self.store, tensorboard), self.run.name)
        failed = True
        try:
            for event in job:
                self.observe(event)  # before passing it on: a Finished run's history is in the store
                yield event
            failed = False
        finally:
            job.close()  # a job closed early ends (and records its run's status) before the last write
            if failed:
                # The error on its way out matters more than the last few values.
                with contextlib.suppress(Exception):
                    self.flush()
            else:
                self.flush()
            if self.board is not None:
                self.board.close()
                self.board = None


@dataclass(frozen=True)
class RunCurves:
    """One run and every curve it recorded (its quality score, when there is one, as `score/...` points)."""

    run: RunSummary
    series: list[Series]

    def get(self, tag: str) -> Series | None:
        """The series named 'kind/name', or None."""
        return next((s for s in self.series if s.tag == tag), None)

    @property
    def tags(self) -> list[str]:
        """Its series' tags."""
        return [s.tag for s in self.series]


def model_runs(store: Store, model: str) -> list[RunSummary]:
    """Every training run of a model, oldest first, each with the quality score of the weights it ended
    with (a score whose step lies within the run) when one was computed."""
    repository = HistoryRepository(store)
    model_id = repository.model_id(model)
    if model_id is None:
        raise NotFoundError(f"no model named '{model}' (see `studio models list`)")
    scores = EmbeddingRepository(store).scores(model_id)  # newest first
    runs = []
    for run in repository.runs(model_id):
        score = next((s for s in scores if run.start_step < s.steps <= run.end_step), None)
        runs.append(replace(run, score=score.as_dict()) if score is not None else run)
    return runs


def run_curves(store: Store, model: str, run_ids: Sequence[int] | None = None) -> list[RunCurves]:
    """The curves of a model's runs (all of them, or those named), in run order."""
    runs = model_runs(store, model)
    if run_ids is not None:
        known = {run.id for run in runs}
        for run_id in run_ids:
            if run_id not in known:
                listed = ", ".join(str(i) for i in sorted(known)) or "none"
                raise NotFoundError(f"model '{model}' has no run {run_id} (its runs: {listed})")
        runs = [run for run in runs if run.id in set(run_ids)]
    repository = HistoryRepository(store)
    found = []
    for run in runs:
        series = repository.series(run.id)
        if run.score is not None:
            step = np.array([run.score["steps"]], np.int64)
            for name in ("frechet", "precision", "recall"):
                series.append(Series("score", name, step, np.array([float(run.score[name])])))
        series.sort(key=lambda s: (KIND_ORDER.index(s.kind) if s.kind in KIND_ORDER else len(KIND_ORDER), s.name))
        found.append(RunCurves(run, series))
    return found


def latest_run(store: Store, model: str) -> RunSummary | None:
    """A model's newest run, or None when it was never trained here (an imported model)."""
    runs = model_runs(store, model)
    return runs[-1] if runs else None


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased so early points are not pulled to 0.

    smoothed_n = last_n / (1 - weight^n), last_n = weight * last_(n-1) + (1 - weight) * x_n, over the finite
    values (a non-finite one is kept as it is); a constant series is returned unchanged, as TensorBoard does.
    """
    if not (0.0 <= weight <= SMOOTHING_MAX):
        raise StudioError(f"smoothing must be between 0 and {SMOOTHING_MAX}, not {weight}")
    result = np.array(values, dtype=np.float64)
    finite = np.isfinite(result)
    if weight == 0 or result.size == 0 or np.all(result == result[0]):
        return result
    x = result[finite]
    count = np.arange(1, x.size + 1, dtype=np.float64)
    result[finite] = _moving_average(x, weight) / (1.0 - weight**count)
    return result


def _moving_average(x: np.ndarray, weight: float) -> np.ndarray:
    """last_n = w * last_(n-1) + (1 - w) * x_n from last_0 = 0, vectorised block by block.

    Within a block, last_j = w^j * (carry + (1 - w) * sum_(i<=j) w^-i x_i); blocks stay short enough that
    w^-i cannot overflow.
    """
    out = np.empty_like(x)
    block = max(1, int(200 / -math.log(weight)))
    powers = weight ** np.arange(1, block + 1, dtype=np.float64)
    carry = 0.0
    for start in range(0, x.size, block):
        chunk = x[start : start + block]
        scale = powers[: chunk.size]
        out[start : start + chunk.size] = scale * (carry + (1.0 - weight) * np.cumsum(chunk / scale))
        carry = float(out[start + chunk.size - 1])
    return out


def _ordered_tags(curves: Sequence[RunCurves]) -> list[str]:
    tags: list[str] = []
    for run in curves:
        tags.extend(tag for tag in run.tags if tag not in tags)
    order = {kind: index for index, kind in enumerate(KIND_ORDER)}
    return sorted(tags, key=lambda tag: (order.get(tag.split("/", 1)[0], len(order)), tag))


def csv_table(curves: Sequence[RunCurves]) -> tuple[list[str], list[list[str]]]:
    """A wide table: one row per run and step, one column per metric ('kind/name'), empty where none."""
    tags = _ordered_tags(curves)
    header = ["run", "step", *tags]
    rows: list[list[str]] = []
    for run in curves:
        if not run.series:
            continue
        steps = np.unique(np.concatenate([s.steps for s in run.series]))
        table = np.full((steps.size, len(tags)), np.nan)
        for s in run.series:
            table[np.searchsorted(steps, s.steps), tags.index(s.tag)] = s.values
        for step, values in zip(steps.tolist(), table.tolist(), strict=True):
            rows.append([str(run.run.id), str(step), *("" if math.isnan(v) else repr(v) for v in values)])
    return header, rows


def export_csv(
    store: Store, model: str, destination: str | Path, run_ids: Sequence[int] | None = None
) -> dict[str, Any]:
    """Write a model's per-step metrics (all runs, or those named) to a CSV file, atomically."""
    path = Path(os.path.abspath(Path(destination).expanduser()))
    home = store.home.root.resolve()
    if path.resolve() == home or home in path.resolve().parents:
        raise StudioError(f"{path} is inside the data home: write the CSV outside {store.home.root}")
    if path.is_dir():
        raise StudioError(f"{path} is a folder: name a .csv file")
    if not path.parent.is_dir():
        raise StudioError(f"{path.parent} does not exist: create it first")
    curves = run_curves(store, model, run_ids)
    header, rows = csv_table(curves)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    return {"file": str(path), "model": model, "runs": [c.run.id for c in curves], "rows": len(rows), "columns": header}


def curves_payload(curves: Sequence[RunCurves]) -> list[dict[str, Any]]:
    """The JSON form of runs with their per-step values."""
    return [
        {
            **c.run.as_dict(),
            "metrics": {s.tag: {"steps": s.steps.tolist(), "values": s.values.tolist()} for s in c.series},
        }
        for c in curves
    ]
