"""Milestone checkpoints as the store records them: which steps of a model were kept, and how they were judged.

A milestone's row points at its folder (`models/NAME/milestones/STEP/`, relative to the data home) and
at the gallery items of its sample grid; its mean rating is theirs, its quality score the newest model
score recorded for its weights hash. Torch-free: the CLI's listing, the Models page and `gallery
reproduce` read it without loading a network.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from studio.errors import NotFoundError
from studio.store.database import Store, retry_when_busy
from studio.store.tables import GalleryItem, Milestone, MilestoneItem, Model, ModelScore


@dataclass
class MilestoneRecord:
    """One milestone of a model: its step, weights, folder, sample grid and how it was judged."""

    model: str
    step: int
    weights_hash: str
    folder: str  # relative to the data home
    size_bytes: int
    created_at: datetime
    items: list[int] = field(default_factory=list)  # its sample grid's gallery items, by seed
    mean_rating: float | None = None  # over the grid's rated items (1-5 stars); None when none is rated
    rated: int = 0
    frechet: float | None = None  # the newest quality score of these weights (lower is better), if any
    current: bool = False  # these are the model's weights now

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (`studio models milestones --json`)."""
        return {
            "model": self.model,
            "step": self.step,
            "weights_hash": self.weights_hash,
            "folder": self.folder,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "items": list(self.items),
            "mean_rating": None if self.mean_rating is None else round(self.mean_rating, 3),
            "rated": self.rated,
            "frechet": self.frechet,
            "current": self.current,
        }


class MilestoneRepository:
    """Reads and writes milestone rows (the files are the engine's business)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _model(session: Session, name: str) -> Model:
        row = session.scalar(select(Model).where(Model.name == name))
        if row is None:
            raise NotFoundError(f"no model named '{name}' (see `studio models list`)")
        return row

    def list(self, model: str) -> list[MilestoneRecord]:
        """Every milestone of a model, oldest step first, with its grid, mean rating and score."""
        with self.store.sessions() as session:
            row = self._model(session, model)
            milestones = list(session.scalars(select(Milestone).where(Milestone.model_id == row.id)))
            return _records(session, row, sorted(milestones, key=lambda m: m.step))

    def get(self, model: str, step: int) -> MilestoneRecord:
        """The milestone of a model at a step, or NotFoundError naming the command that lists them."""
        with self.store.sessions() as session:
            row = self._model(session, model)
            found = session.scalar(select(Milestone).where(Milestone.model_id == row.id, Milestone.step == step))
            if found is None:
                raise NotFoundError(
                    f"model '{model}' has no milestone at step {step} (see `studio models milestones {model}`)"
                )
            return _records(session, row, [found])[0]

    def find_hash(self, model: str, weights_hash: str) -> MilestoneRecord | None:
        """The milestone of a model whose weights hash to `weights_hash`, if one is kept."""
        with self.store.sessions() as session:
            row = session.scalar(select(Model).where(Model.name == model))
            if row is None:
                return None
            found = session.scalar(
                select(Milestone)
                .where(Milestone.model_id == row.id, Milestone.weights_hash == weights_hash)
                .order_by(Milestone.step)
            )
            return None if found is None else _records(session, row, [found])[0]

    def of_item(self, item_id: int) -> MilestoneRecord | None:
        """The milestone whose sample grid holds a gallery item, if any."""
        with self.store.sessions() as session:
            found = session.scalar(
                select(Milestone)
                .join(MilestoneItem, MilestoneItem.milestone_id == Milestone.id)
                .where(MilestoneItem.item_id == item_id)
            )
            if found is None:
                return None
            model = session.get(Model, found.model_id)
            assert model is not None  # the foreign key cascades
            return _records(session, model, [found])[0]

    @retry_when_busy
    def add(self, model: str, step: int, weights_hash: str, folder: str, size_bytes: int, items: Iterable[int]) -> None:
        """Record a milestone whose folder exists (replacing a row at the same step) and link its grid."""
        with self.store.session() as session:
            row = self._model(session, model)
            session.execute(delete(Milestone).where(Milestone.model_id == row.id, Milestone.step == step))
            milestone = Milestone(
                model_id=row.id, step=step, weights_hash=weights_hash, folder=folder, size_bytes=size_bytes
            )
            session.add(milestone)
            session.flush()
            session.add_all(MilestoneItem(milestone_id=milestone.id, item_id=item) for item in items)

    @retry_when_busy
    def remove(self, model: str, steps: Iterable[int]) -> None:
        """Forget milestones by step (their grid items stay in the gallery)."""
        wanted = list(steps)
        if not wanted:
            return
        with self.store.session() as session:
            row = self._model(session, model)
            session.execute(delete(Milestone).where(Milestone.model_id == row.id, Milestone.step.in_(wanted)))


def _records(session: Session, model: Model, milestones: list[Milestone]) -> list[MilestoneRecord]:
    """Rows as records, with their grid items, ratings and scores read in three queries."""
    ids = [m.id for m in milestones]
    items: dict[int, list[int]] = {i: [] for i in ids}
    ratings: dict[int, tuple[float, int]] = {}
    if ids:
        for milestone_id, item_id in session.execute(
            select(MilestoneItem.milestone_id, MilestoneItem.item_id)
            .join(GalleryItem, GalleryItem.id == MilestoneItem.item_id)
            .where(MilestoneItem.milestone_id.in_(ids), GalleryItem.deleted_at.is_(None))
            .order_by(MilestoneItem.milestone_id, GalleryItem.seed, GalleryItem.id)
        ):
            items[milestone_id].append(item_id)
        # Unrated items (0 stars) say nothing about a checkpoint; deleted ones are out of the gallery.
        for milestone_id, mean, count in session.execute(
            select(MilestoneItem.milestone_id, func.avg(GalleryItem.rating), func.count())
            .join(GalleryItem, GalleryItem.id == MilestoneItem.item_id)
            .where(MilestoneItem.milestone_id.in_(ids), GalleryItem.rating > 0, GalleryItem.deleted_at.is_(None))
            .group_by(MilestoneItem.milestone_id)
        ):
            ratings[milestone_id] = (float(mean), int(count))
    hashes = {m.weights_hash for m in milestones}
    scores: dict[str, float] = {}
    if hashes:
        for digest, frechet in session.execute(
            select(ModelScore.weights_hash, ModelScore.frechet)
            .where(ModelScore.model_id == model.id, ModelScore.weights_hash.in_(hashes))
            .order_by(ModelScore.created_at, ModelScore.id)
        ):
            if digest is not None:
                scores[digest] = float(frechet)  # the newest wins
    return [
        MilestoneRecord(
            model.name,
            m.step,
            m.weights_hash,
            m.folder,
            m.size_bytes,
            m.created_at,
            items[m.id],
            ratings[m.id][0] if m.id in ratings else None,
            ratings[m.id][1] if m.id in ratings else 0,
            scores.get(m.weights_hash),
            m.weights_hash == model.weights_hash,
        )
        for m in milestones
    ]
