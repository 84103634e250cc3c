"""fixity audits: when each stored object was last checked, and items flagged by a failed check

Revision ID: 0010
Revises: 0009

Each original (items) and working copy (derivatives) gets when it was last checked and when it
is next due (indexed: the scheduled audit asks for what is due); items get the flag, what the
latest checks found wrong, and when a check first failed. Rows already stored are given their
first due date by the next audit run (evidence.fixity.schedule), spread over the cycle.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("fixity_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("fixity_problems", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("fixity_failed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("fixity_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("fixity_due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_items_fixity_due_at", "items", ["fixity_due_at"])
    with op.batch_alter_table("derivatives") as batch:
        batch.add_column(sa.Column("fixity_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("fixity_due_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_derivatives_fixity_due_at", "derivatives", ["fixity_due_at"])


def downgrade() -> None:
    op.drop_index("ix_derivatives_fixity_due_at", table_name="derivatives")
    with op.batch_alter_table("derivatives") as batch:
        batch.drop_column("fixity_due_at")
        batch.drop_column("fixity_checked_at")
    op.drop_index("ix_items_fixity_due_at", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("fixity_due_at")
        batch.drop_column("fixity_checked_at")
        batch.drop_column("fixity_failed_at")
        batch.drop_column("fixity_problems")
        batch.drop_column("fixity_state")
