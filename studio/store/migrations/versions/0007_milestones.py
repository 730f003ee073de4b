"""milestone checkpoints of a model and their sample grids

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-20 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "milestones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("weights_hash", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=512), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_milestones_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestones")),
        sa.UniqueConstraint("model_id", "step", name="uq_milestones_step"),
    )
    op.create_index("ix_milestones_hash", "milestones", ["weights_hash"], unique=False)
    op.create_table(
        "milestone_items",
        sa.Column("milestone_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name=op.f("fk_milestone_items_milestone_id_milestones"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["gallery_items.id"],
            name=op.f("fk_milestone_items_item_id_gallery_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("milestone_id", "item_id", name=op.f("pk_milestone_items")),
    )
    op.create_index("ix_milestone_items_item", "milestone_items", ["item_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_milestone_items_item", table_name="milestone_items")
    op.drop_table("milestone_items")
    op.drop_index("ix_milestones_hash", table_name="milestones")
    op.drop_table("milestones")
