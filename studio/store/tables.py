"""SQLAlchemy 2 typed ORM models of everything Studio records.

Paths are stored relative to the data home so a home can move; SQL stays portable
(no SQLite-only syntax) so a shared gallery can later live in PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names make Alembic batch migrations on SQLite reproducible.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

FLAG_VALUES = ("none", "pick", "reject")


def utcnow() -> datetime:
    """Timezone-aware now in UTC (stored as naive UTC by SQLite)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Dataset(Base):
    """An imported or sample dataset: one uint8 array file plus its items."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    folder: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer)
    origin: Mapped[str] = mapped_column(String(32))  # "import" or "sample:<name>"
    class_counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    import_report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    items: Mapped[list[DatasetItem]] = relationship(
        back_populates="dataset", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint("channels IN (1, 3)", name="channels"),
        CheckConstraint("size BETWEEN 8 AND 512", name="size"),
    )


class DatasetItem(Base):
    """One image of a dataset: its row in the array file, origin, label and content hash."""

    __tablename__ = "dataset_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(255), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))

    dataset: Mapped[Dataset] = relationship(back_populates="items")

    __table_args__ = (
        UniqueConstraint("dataset_id", "position", name="uq_dataset_items_position"),
        Index("ix_dataset_items_label", "dataset_id", "label"),
        Index("ix_dataset_items_hash", "dataset_id", "content_hash"),
    )


class Model(Base):
    """A trained or imported generator: a folder with config.json and safetensors weights."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(32), index=True)
    folder: Mapped[str] = mapped_column(String(512))
    resolution: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True, index=True
    )
    parent_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), nullable=True)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # A class-conditional model's class names in label order (its dataset's labels); empty otherwise.
    classes: Mapped[list[str]] = mapped_column(JSON, default=list)
    weights_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    parameter_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    runs: Mapped[list[TrainingRun]] = relationship(
        back_populates="model", cascade="all, delete-orphan", passive_deletes=True
    )


class TrainingRun(Base):
    """One training session of a model: budget, seed, status and final losses."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    start_step: Mapped[int] = mapped_column(Integer, default=0)
    end_step: Mapped[int] = mapped_column(Integer, default=0)
    target_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    budget_minutes: Mapped[float | None] = mapped_column(nullable=True)
    device: Mapped[str] = mapped_column(String(32), default="cpu")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    final_losses: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    model: Mapped[Model] = relationship(back_populates="runs")

    __table_args__ = (
        CheckConstraint(
            "status IN ('running', 'paused', 'completed', 'cancelled', 'failed', 'interrupted')",
            name="status",
        ),
    )


class GalleryItem(Base):
    """A generated image file with how it was made and how the user judged it."""

    __tablename__ = "gallery_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(512), unique=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), nullable=True)
    # The model's name and family are kept even after the model is deleted.
    model_name: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(32), default="sample")
    seed: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The class a conditional model made it as (an interpolation frame: the class weighted most); else null.
    class_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    backend: Mapped[str] = mapped_column(String(16), default="torch")
    provider: Mapped[str | None] = mapped_column(String(64), nullable=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    rating: Mapped[int] = mapped_column(Integer, default=0)
    flag: Mapped[str] = mapped_column(String(8), default="none")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Deleted items keep their row (and their file, moved to trash/) until the trash is emptied.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    trash_path: Mapped[str | None] = mapped_column(String(512), nullable=True)
    # An image made by another tool (`gallery import`): {"tool", "metadata", "notes", "file"}; null for Studio's.
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # sha256 of an imported file's bytes: the same file imported twice is found, not added twice.
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)

    parents: Mapped[list[GalleryLineage]] = relationship(
        foreign_keys="GalleryLineage.child_id", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        CheckConstraint("rating BETWEEN 0 AND 5", name="rating"),
        CheckConstraint("flag IN ('none', 'pick', 'reject')", name="flag"),
        # Every listing pages by (created_at, id); filters lead the index they use.
        Index("ix_gallery_created", "created_at", "id"),
        Index("ix_gallery_model_created", "model_id", "created_at", "id"),
        Index("ix_gallery_family_created", "family", "created_at", "id"),
        Index("ix_gallery_rating_created", "rating", "created_at", "id"),
        Index("ix_gallery_flag_created", "flag", "created_at", "id"),
        Index("ix_gallery_seed", "seed"),
        Index("ix_gallery_class_created", "class_name", "created_at", "id"),
        Index("ix_gallery_model_name_created", "model_name", "created_at", "id"),
        Index("ix_gallery_backend_created", "backend", "provider", "created_at", "id"),
        Index("ix_gallery_rating_order", "rating", "created_at", "id", "deleted_at"),
        Index("ix_gallery_deleted", "deleted_at"),
        Index("ix_gallery_content_hash", "content_hash"),
    )


class GalleryLineage(Base):
    """Parent links: an interpolation frame or inpainting result points at its sources."""

    __tablename__ = "gallery_lineage"

    child_id: Mapped[int] = mapped_column(ForeignKey("gallery_items.id", ondelete="CASCADE"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(
        ForeignKey("gallery_items.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), default="source")


class Tag(Base):
    """A keyword users attach to gallery items; names compare case-insensitively (`key`)."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64), unique=True)


class GalleryItemTag(Base):
    """Which items carry which tags."""

    __tablename__ = "gallery_item_tags"

    item_id: Mapped[int] = mapped_column(ForeignKey("gallery_items.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_gallery_item_tags_tag", "tag_id", "item_id"),)


class Collection(Base):
    """A named set of gallery items (an album); an item may be in several."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class GalleryItemCollection(Base):
    """Which items are in which collections."""

    __tablename__ = "gallery_item_collections"

    item_id: Mapped[int] = mapped_column(ForeignKey("gallery_items.id", ondelete="CASCADE"), primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_gallery_item_collections_collection", "collection_id", "item_id"),)


class Encoder(Base):
    """A contrastive encoder trained on one dataset: a folder with its weights, ONNX file and config.

    The newest encoder of a dataset is its current one; an older one keeps its row (scores refer to
    it) but not its embeddings, which are recomputed with the new one.
    """

    __tablename__ = "encoders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    folder: Mapped[str] = mapped_column(String(512))
    weights_hash: Mapped[str] = mapped_column(String(64), unique=True)
    input_size: Mapped[int] = mapped_column(Integer)
    channels: Mapped[int] = mapped_column(Integer)
    dims: Mapped[int] = mapped_column(Integer)
    steps: Mapped[int] = mapped_column(Integer)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Final loss, the linear probe's accuracy (labelled datasets), timings: what `embed show` prints.
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duplicate_threshold: Mapped[float] = mapped_column(Float)
    memorised_threshold: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Embedding(Base):
    """One unit vector (float32 bytes) of a dataset image or a gallery item, under one encoder.

    A gallery item's row also records its nearest training image and the distance to it, so the
    "memorised" filter is a join, not a search.
    """

    __tablename__ = "embeddings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encoder_id: Mapped[int] = mapped_column(ForeignKey("encoders.id", ondelete="CASCADE"))
    gallery_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("gallery_items.id", ondelete="CASCADE"), nullable=True
    )
    dataset_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_items.id", ondelete="CASCADE"), nullable=True
    )
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    nearest_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("dataset_items.id", ondelete="SET NULL"), nullable=True
    )
    nearest_distance: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        CheckConstraint("(gallery_item_id IS NULL) <> (dataset_item_id IS NULL)", name="owner"),
        UniqueConstraint("encoder_id", "gallery_item_id", name="uq_embeddings_gallery"),
        UniqueConstraint("encoder_id", "dataset_item_id", name="uq_embeddings_dataset"),
        Index("ix_embeddings_gallery", "gallery_item_id", "nearest_distance"),
    )


class ModelScore(Base):
    """A model's quality in its dataset's encoder space, for one set of weights."""

    __tablename__ = "model_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    encoder_id: Mapped[int] = mapped_column(ForeignKey("encoders.id", ondelete="CASCADE"))
    weights_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    steps: Mapped[int] = mapped_column(Integer, default=0)
    samples: Mapped[int] = mapped_column(Integer)
    frechet: Mapped[float] = mapped_column(Float)
    precision: Mapped[float] = mapped_column(Float)
    recall: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (Index("ix_model_scores_model", "model_id", "created_at"),)


class SavedFilter(Base):
    """A gallery filter saved under a name (the filter bar's fields as JSON, and the sort)."""

    __tablename__ = "saved_filters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sort: Mapped[str] = mapped_column(String(16), default="newest")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TrainingMetric(Base):
    """One value a training run recorded at a step: a loss, a diagnostic figure or its speed.

    One row per (run, kind, name, step): plain SQL any tool can chart; written in batches by the trainer.
    """

    __tablename__ = "training_metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # "loss", "diagnostic" or "speed"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class Milestone(Base):
    """A copy of a model's weights at one training step (`models/NAME/milestones/STEP/`), to choose from."""

    __tablename__ = "milestones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    weights_hash: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("model_id", "step", name="uq_milestones_step"),
        # Reproducing an older image looks its weights up by hash.
        Index("ix_milestones_hash", "weights_hash"),
    )


class MilestoneItem(Base):
    """The gallery items (operation `checkpoint`) that are a milestone's sample grid."""

    __tablename__ = "milestone_items"

    milestone_id: Mapped[int] = mapped_column(ForeignKey("milestones.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("gallery_items.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_milestone_items_item", "item_id"),)
