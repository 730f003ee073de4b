"""contrastive encoders, embeddings and model scores

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "encoders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=512), nullable=False),
        sa.Column("weights_hash", sa.String(length=64), nullable=False),
        sa.Column("input_size", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("duplicate_threshold", sa.Float(), nullable=False),
        sa.Column("memorised_threshold", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_encoders_dataset_id_datasets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encoders")),
        sa.UniqueConstraint("weights_hash", name=op.f("uq_encoders_weights_hash")),
    )
    op.create_index(op.f("ix_encoders_dataset_id"), "encoders", ["dataset_id"], unique=False)
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encoder_id", sa.Integer(), nullable=False),
        sa.Column("gallery_item_id", sa.Integer(), nullable=True),
        sa.Column("dataset_item_id", sa.Integer(), nullable=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("nearest_item_id", sa.Integer(), nullable=True),
        sa.Column("nearest_distance", sa.Float(), nullable=True),
        sa.CheckConstraint("(gallery_item_id IS NULL) <> (dataset_item_id IS NULL)", name=op.f("ck_embeddings_owner")),
        sa.ForeignKeyConstraint(
            ["encoder_id"], ["encoders.id"], name=op.f("fk_embeddings_encoder_id_encoders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["gallery_item_id"],
            ["gallery_items.id"],
            name=op.f("fk_embeddings_gallery_item_id_gallery_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_item_id"],
            ["dataset_items.id"],
            name=op.f("fk_embeddings_dataset_item_id_dataset_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["nearest_item_id"],
            ["dataset_items.id"],
            name=op.f("fk_embeddings_nearest_item_id_dataset_items"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embeddings")),
        sa.UniqueConstraint("encoder_id", "gallery_item_id", name="uq_embeddings_gallery"),
        sa.UniqueConstraint("encoder_id", "dataset_item_id", name="uq_embeddings_dataset"),
    )
    op.create_index("ix_embeddings_gallery", "embeddings", ["gallery_item_id", "nearest_distance"], unique=False)
    op.create_table(
        "model_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("encoder_id", sa.Integer(), nullable=False),
        sa.Column("weights_hash", sa.String(length=64), nullable=True),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("frechet", sa.Float(), nullable=False),
        sa.Column("precision", sa.Float(), nullable=False),
        sa.Column("recall", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_scores_model_id_models"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["encoder_id"], ["encoders.id"], name=op.f("fk_model_scores_encoder_id_encoders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_scores")),
    )
    op.create_index("ix_model_scores_model", "model_scores", ["model_id", "created_at"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_model_scores_model", table_name="model_scores")
    op.drop_table("model_scores")
    op.drop_index("ix_embeddings_gallery", table_name="embeddings")
    op.drop_table("embeddings")
    op.drop_index(op.f("ix_encoders_dataset_id"), table_name="encoders")
    op.drop_table("encoders")
