"""classes of conditional models and of gallery items

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("classes", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("gallery_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("class_name", sa.String(length=255), nullable=True))
        batch_op.create_index("ix_gallery_class_created", ["class_name", "created_at", "id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("gallery_items", schema=None) as batch_op:
        batch_op.drop_index("ix_gallery_class_created")
        batch_op.drop_column("class_name")
    with op.batch_alter_table("models", schema=None) as batch_op:
        batch_op.drop_column("classes")
