"""Training history as the store keeps it: each run's metrics per step (`training_metrics`), and the runs.

Rows are written in batches by the trainer (one transaction per batch, never per step) and read back
whole, per run, as numpy arrays, for the Train page's curves, `studio models history` and CSV files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from studio.store.database import Store
from studio.store.tables import Model, TrainingMetric, TrainingRun

# One value of a run at a step: (kind, name, step, value), kind "loss", "diagnostic" or "speed". A plain
# tuple: the trainer makes a few per step, and a NamedTuple costs five times as much to build.
MetricRow = tuple[str, str, int, float]
# The DB-API parameter markers of the drivers Studio runs on (SQLite, and psycopg for PostgreSQL).
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@dataclass(frozen=True)
class Series:
    """One metric of one run over its steps (ascending)."""

    kind: str
    name: str
    steps: np.ndarray  # int64
    values: np.ndarray  # float64

    @property
    def tag(self) -> str:
        """'kind/name', as TensorBoard and the CSV columns name it."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class RunSummary:
    """One training run of a model: how it went and how many metric values it recorded."""

    id: int
    model: str
    status: str
    start_step: int
    end_step: int
    target_steps: int | None
    seed: int
    device: str
    final_losses: dict[str, float]
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    points: int
    score: dict[str, Any] | None = field(default=None)  # the quality score of the weights it ended with

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio models history --json`)."""
        return {
            "id": self.id,
            "model": self.model,
            "status": self.status,
            "start_step": self.start_step,
            "end_step": self.end_step,
            "target_steps": self.target_steps,
            "seed": self.seed,
            "device": self.device,
            "final_losses": self.final_losses,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds") if self.finished_at else None,
            "error": self.error,
            "points": self.points,
            "score": self.score,
        }


class HistoryRepository:
    """Writes and reads of training metrics."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, run_id: int, rows: Sequence[MetricRow]) -> None:
        """Record a batch of a run's values in one transaction."""
        if not rows:
            return

        def change(session: Session) -> None:
            connection = session.connection()
            marker = _MARKERS.get(connection.dialect.paramstyle)
            if marker is None:  # another driver: SQLAlchemy's own bulk insert
                keys = ("kind", "name", "step", "value")
                session.execute(
                    insert(TrainingMetric), [{"run_id": run_id, **dict(zip(keys, r, strict=True))} for r in rows]
                )
                return
            # The driver's executemany of one prepared statement: half the time of SQLAlchemy's insert,
            # which matters when a fast model records several values a step.
            connection.exec_driver_sql(
                f"INSERT INTO training_metrics (run_id, kind, name, step, value) VALUES ({', '.join([marker] * 5)})",
                [(run_id, *row) for row in rows],
            )

        self.store.write(change)

    def model_id(self, model: str) -> int | None:
        """The id of the model with this name, or None."""
        with self.store.sessions() as session:
            return session.scalar(select(Model.id).where(Model.name == model))

    def runs(self, model_id: int) -> list[RunSummary]:
        """Every run of a model, oldest first."""
        points = select(TrainingMetric.run_id, func.count().label("points")).group_by(TrainingMetric.run_id).subquery()
        with self.store.sessions() as session:
            found = session.execute(
                select(TrainingRun, Model.name, points.c.points)
                .join(Model, Model.id == TrainingRun.model_id)
                .outerjoin(points, points.c.run_id == TrainingRun.id)
                .where(TrainingRun.model_id == model_id)
                .order_by(TrainingRun.id)
            ).all()
            return [_summary(run, name, count or 0) for run, name, count in found]

    def series(self, run_id: int) -> list[Series]:
        """Every metric a run recorded, each as ascending (steps, values) arrays, by kind then name."""
        with self.store.sessions() as session:
            rows = session.execute(
                select(TrainingMetric.kind, TrainingMetric.name, TrainingMetric.step, TrainingMetric.value)
                .where(TrainingMetric.run_id == run_id)
                .order_by(TrainingMetric.kind, TrainingMetric.name, TrainingMetric.step)
            ).all()
        found: list[Series] = []
        start = 0
        for index in range(1, len(rows) + 1):
            if index == len(rows) or rows[index][:2] != rows[start][:2]:
                chunk = rows[start:index]
                found.append(
                    Series(
                        rows[start][0],
                        rows[start][1],
                        np.fromiter((r[2] for r in chunk), np.int64, len(chunk)),
                        np.fromiter((r[3] for r in chunk), np.float64, len(chunk)),
                    )
                )
                start = index
        return found


def _summary(run: TrainingRun, model: str, points: int) -> RunSummary:
    return RunSummary(
        run.id,
        model,
        run.status,
        run.start_step,
        run.end_step,
        run.target_steps,
        run.seed,
        run.device,
        dict(run.final_losses or {}),
        run.started_at,
        run.finished_at,
        run.error,
        int(points),
    )
