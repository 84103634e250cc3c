"""item leases: which worker runs an item's step, until when

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("lease_holder", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("lease_step", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_items_lease_expires_at", "items", ["lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_items_lease_expires_at", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_step")
        batch.drop_column("lease_holder")
