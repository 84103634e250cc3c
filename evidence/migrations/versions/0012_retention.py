"""case retention (outcome, review date), legal holds and four-eyes disposal

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_retention",
        sa.Column("case_id", sa.String(length=32), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("release_on", sa.Date(), nullable=True),
        sa.Column("appeal_open", sa.Boolean(), nullable=False),
        sa.Column("appeal_closed_on", sa.Date(), nullable=True),
        sa.Column("review_on", sa.Date(), nullable=True),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("held_by", sa.String(length=200), nullable=True),
        sa.Column("hold_reason", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_retention_review_on", "case_retention", ["review_on"])
    op.create_table(
        "disposals",
        sa.Column("item_id", sa.String(length=32), sa.ForeignKey("items.id"), primary_key=True),
        sa.Column("proposer_id", sa.String(length=32), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("proposed_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approver_id", sa.String(length=32), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("original_removed_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("disposals")
    op.drop_index("ix_case_retention_review_on", table_name="case_retention")
    op.drop_table("case_retention")
