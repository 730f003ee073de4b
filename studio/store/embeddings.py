"""Encoders, embedding vectors and model scores: the repository the engine's similarity features use.

Vectors are float32 bytes in a BLOB column; searching is the engine's job (numpy over a matrix it
loads once and extends by id), so the store only needs ordered, incremental reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from studio.errors import NotFoundError
from studio.store.database import Store
from studio.store.tables import Dataset, DatasetItem, Embedding, Encoder, GalleryItem, Model, ModelScore


@dataclass(frozen=True)
class EncoderRecord:
    """One encoder row."""

    id: int
    dataset_id: int
    folder: str
    weights_hash: str
    input_size: int
    channels: int
    dims: int
    steps: int
    settings: dict[str, Any]
    metrics: dict[str, Any]
    duplicate_threshold: float
    memorised_threshold: float
    created_at: datetime

    @classmethod
    def of(cls, row: Encoder) -> EncoderRecord:
        """The record of a row."""
        return cls(
            row.id,
            row.dataset_id,
            row.folder,
            row.weights_hash,
            row.input_size,
            row.channels,
            row.dims,
            row.steps,
            dict(row.settings or {}),
            dict(row.metrics or {}),
            row.duplicate_threshold,
            row.memorised_threshold,
            row.created_at,
        )


@dataclass(frozen=True)
class VectorRow:
    """A vector to store: for a gallery item (with its nearest training image) or a dataset image."""

    vector: np.ndarray
    gallery_item_id: int | None = None
    dataset_item_id: int | None = None
    nearest_item_id: int | None = None
    nearest_distance: float | None = None


@dataclass(frozen=True)
class Vectors:
    """Stored vectors in id order: `rows` are embedding ids, `owners` the item ids, `matrix` N x dims."""

    rows: np.ndarray
    owners: np.ndarray
    matrix: np.ndarray

    @classmethod
    def empty(cls, dims: int) -> Vectors:
        """No vectors yet."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, dims), np.float32))


@dataclass(frozen=True)
class DatasetRows:
    """A dataset's identity and its items in array order (ids, content hashes, labels, source names)."""

    id: int
    name: str
    item_ids: np.ndarray
    content_hashes: list[str]
    labels: list[str | None]
    sources: list[str]


@dataclass(frozen=True)
class ScoreRecord:
    """One quality score of a model."""

    model_id: int
    encoder_id: int
    weights_hash: str | None
    steps: int
    samples: int
    frechet: float
    precision: float
    recall: float
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "frechet": round(self.frechet, 6),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "samples": self.samples,
            "steps": self.steps,
            "weights_hash": self.weights_hash,
            "encoder_id": self.encoder_id,
            "created_at": self.created_at.isoformat(),
        }


class EmbeddingRepository:
    """Reads and writes of encoders, vectors and scores."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def dataset_id(self, name: str) -> int:
        """A dataset's id; NotFoundError for an unknown name."""
        with self.store.session() as session:
            dataset_id = session.scalar(select(Dataset.id).where(Dataset.name == name))
        if dataset_id is None:
            raise NotFoundError(f"no dataset named '{name}' (see `studio datasets list`)")
        return int(dataset_id)

    def dataset(self, name: str) -> DatasetRows:
        """A dataset's id and its items in array order; NotFoundError for an unknown name."""
        dataset_id = self.dataset_id(name)
        with self.store.session() as session:
            rows = session.execute(
                select(DatasetItem.id, DatasetItem.content_hash, DatasetItem.label, DatasetItem.source)
                .where(DatasetItem.dataset_id == dataset_id)
                .order_by(DatasetItem.position)
            ).all()
        return DatasetRows(
            int(dataset_id),
            name,
            np.fromiter((row[0] for row in rows), np.int64, len(rows)),
            [str(row[1]) for row in rows],
            [row[2] for row in rows],
            [str(row[3]) for row in rows],
        )

    def dataset_of_model(self, model: str) -> tuple[int, str] | None:
        """The (id, name) of the dataset a model was trained on, or None (imported models have none)."""
        with self.store.session() as session:
            found = session.execute(
                select(Dataset.id, Dataset.name).join(Model, Model.dataset_id == Dataset.id).where(Model.name == model)
            ).first()
        return None if found is None else (int(found[0]), str(found[1]))

    def add_encoder(self, values: dict[str, Any]) -> EncoderRecord:
        """Register a trained encoder (its files already in place) as its dataset's current one; the
        previous encoders' vectors go, since they are recomputed with the new one."""

        def change(session: Session) -> EncoderRecord:
            session.execute(
                delete(Embedding).where(
                    Embedding.encoder_id.in_(select(Encoder.id).where(Encoder.dataset_id == values["dataset_id"]))
                )
            )
            row = Encoder(**values)
            session.add(row)
            session.flush()
            return EncoderRecord.of(row)

        return self.store.write(change)

    def current_encoder(self, dataset_id: int) -> EncoderRecord | None:
        """The dataset's newest encoder, or None."""
        with self.store.session() as session:
            row = session.scalars(
                select(Encoder).where(Encoder.dataset_id == dataset_id).order_by(Encoder.id.desc()).limit(1)
            ).first()
            return EncoderRecord.of(row) if row else None

    def encoders(self, dataset_id: int) -> list[EncoderRecord]:
        """Every encoder of a dataset, newest first."""
        with self.store.session() as session:
            rows = session.scalars(select(Encoder).where(Encoder.dataset_id == dataset_id).order_by(Encoder.id.desc()))
            return [EncoderRecord.of(row) for row in rows]

    def put(self, encoder_id: int, rows: Sequence[VectorRow]) -> int:
        """Store vectors (rows whose owner already has one under this encoder, or is gone, are skipped)."""

        def change(session: Session) -> int:
            if not session.get(Encoder, encoder_id):
                return 0  # replaced by a newer encoder meanwhile: these vectors are stale
            gallery = [row.gallery_item_id for row in rows if row.gallery_item_id is not None]
            dataset = [row.dataset_item_id for row in rows if row.dataset_item_id is not None]
            have_gallery = set(
                session.scalars(
                    select(Embedding.gallery_item_id).where(
                        Embedding.encoder_id == encoder_id, Embedding.gallery_item_id.in_(gallery)
                    )
                )
            )
            have_dataset = set(
                session.scalars(
                    select(Embedding.dataset_item_id).where(
                        Embedding.encoder_id == encoder_id, Embedding.dataset_item_id.in_(dataset)
                    )
                )
            )
            alive = set(session.scalars(select(GalleryItem.id).where(GalleryItem.id.in_(gallery))))
            added = 0
            for row in rows:
                if row.gallery_item_id is not None and (
                    row.gallery_item_id in have_gallery or row.gallery_item_id not in alive
                ):
                    continue
                if row.dataset_item_id is not None and row.dataset_item_id in have_dataset:
                    continue
                session.add(
                    Embedding(
                        encoder_id=encoder_id,
                        gallery_item_id=row.gallery_item_id,
                        dataset_item_id=row.dataset_item_id,
                        vector=np.ascontiguousarray(row.vector, np.float32).tobytes(),
                        nearest_item_id=row.nearest_item_id,
                        nearest_distance=row.nearest_distance,
                    )
                )
                added += 1
            return added

        return self.store.write(change)

    def vectors(self, encoder: EncoderRecord, kind: str, after: int = 0) -> Vectors:
        """The encoder's vectors of `kind` ("dataset" or "gallery") with embedding ids above `after`."""
        owner = Embedding.dataset_item_id if kind == "dataset" else Embedding.gallery_item_id
        with self.store.session() as session:
            found = session.execute(
                select(Embedding.id, owner, Embedding.vector)
                .where(Embedding.encoder_id == encoder.id, owner.is_not(None), Embedding.id > after)
                .order_by(Embedding.id)
            ).all()
        if not found:
            return Vectors.empty(encoder.dims)
        matrix = np.frombuffer(b"".join(row[2] for row in found), np.float32).reshape(len(found), encoder.dims)
        return Vectors(
            np.fromiter((row[0] for row in found), np.int64, len(found)),
            np.fromiter((row[1] for row in found), np.int64, len(found)),
            matrix,
        )

    def missing_gallery_items(self, encoder: EncoderRecord, limit: int, after: int = 0) -> list[tuple[int, str]]:
        """(id, path) of items (ids above `after`) of models on the encoder's dataset that have no vector
        yet, oldest first."""
        with self.store.session() as session:
            found = session.execute(
                select(GalleryItem.id, GalleryItem.path)
                .join(Model, Model.id == GalleryItem.model_id)
                .where(
                    GalleryItem.id > after,
                    Model.dataset_id == encoder.dataset_id,
                    ~exists().where(Embedding.encoder_id == encoder.id, Embedding.gallery_item_id == GalleryItem.id),
                )
                .order_by(GalleryItem.id)
                .limit(limit)
            ).all()
        return [(int(row[0]), str(row[1])) for row in found]

    def vector_count(self, encoder: EncoderRecord, kind: str) -> int:
        """How many vectors of `kind` ("dataset" or "gallery") the encoder has."""
        owner = Embedding.dataset_item_id if kind == "dataset" else Embedding.gallery_item_id
        with self.store.session() as session:
            return int(
                session.scalar(select(func.count()).where(Embedding.encoder_id == encoder.id, owner.is_not(None))) or 0
            )

    def missing_count(self, encoder: EncoderRecord) -> int:
        """How many gallery items of the encoder's dataset still lack a vector."""
        with self.store.session() as session:
            return int(
                session.scalar(
                    select(func.count(GalleryItem.id))
                    .join(Model, Model.id == GalleryItem.model_id)
                    .where(
                        Model.dataset_id == encoder.dataset_id,
                        ~exists().where(
                            Embedding.encoder_id == encoder.id, Embedding.gallery_item_id == GalleryItem.id
                        ),
                    )
                )
                or 0
            )

    def nearest_of(self, encoder: EncoderRecord, gallery_item_id: int) -> tuple[int | None, float | None] | None:
        """A gallery item's nearest training image id and distance, or None when it has no vector."""
        with self.store.session() as session:
            found = session.execute(
                select(Embedding.nearest_item_id, Embedding.nearest_distance).where(
                    Embedding.encoder_id == encoder.id, Embedding.gallery_item_id == gallery_item_id
                )
            ).first()
        return None if found is None else (found[0], found[1])

    def dataset_items(self, ids: Iterable[int]) -> dict[int, tuple[int, str, str | None]]:
        """Dataset item id to (position, source file, label)."""
        wanted = list(ids)
        with self.store.session() as session:
            found = session.execute(
                select(DatasetItem.id, DatasetItem.position, DatasetItem.source, DatasetItem.label).where(
                    DatasetItem.id.in_(wanted)
                )
            ).all()
        return {int(row[0]): (int(row[1]), str(row[2]), row[3]) for row in found}

    def add_score(self, values: dict[str, Any]) -> ScoreRecord:
        """Record a model's quality score."""

        def change(session: Session) -> ScoreRecord:
            row = ModelScore(**values)
            session.add(row)
            session.flush()
            return _score(row)

        return self.store.write(change)

    def latest_score_of(self, model: str) -> ScoreRecord | None:
        """The newest score of the model with this name, or None."""
        with self.store.session() as session:
            row = session.scalars(
                select(ModelScore)
                .join(Model, Model.id == ModelScore.model_id)
                .where(Model.name == model)
                .order_by(ModelScore.id.desc())
                .limit(1)
            ).first()
            return _score(row) if row else None

    def scores(self, model_id: int) -> list[ScoreRecord]:
        """A model's scores, newest first."""
        with self.store.session() as session:
            rows = session.scalars(
                select(ModelScore).where(ModelScore.model_id == model_id).order_by(ModelScore.id.desc())
            )
            return [_score(row) for row in rows]


def _score(row: ModelScore) -> ScoreRecord:
    return ScoreRecord(
        row.model_id,
        row.encoder_id,
        row.weights_hash,
        row.steps,
        row.samples,
        row.frechet,
        row.precision,
        row.recall,
        row.created_at,
    )
