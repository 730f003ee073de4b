"""gallery items imported from other tools: their origin (tool, metadata) and content hash

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-20 07:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("gallery_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("origin", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_gallery_content_hash", ["content_hash"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("gallery_items", schema=None) as batch_op:
        batch_op.drop_index("ix_gallery_content_hash")
        batch_op.drop_column("content_hash")
        batch_op.drop_column("origin")
