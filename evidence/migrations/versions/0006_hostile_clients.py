"""hostile clients: token revocation, processing budgets, consumed partial uploads,
coalesced link access windows

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("tokens_valid_after", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("cpu_seconds", sa.Double(), nullable=False, server_default="0"))
    with op.batch_alter_table("uploads") as batch:
        batch.add_column(sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "link_access",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("link_id", sa.String(length=32), nullable=False),
        sa.Column("viewer", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("bytes_sent", sa.BigInteger(), nullable=False),
        sa.Column("ranges", sa.JSON(), nullable=False),
        sa.Column("ranges_exact", sa.Boolean(), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("reported_requests", sa.Integer(), nullable=False),
        sa.Column("summarised_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("link_id", "viewer", "key", "window_start"),
    )
    with op.batch_alter_table("link_access") as batch:
        batch.create_index("ix_link_access_link_id", ["link_id"])
        batch.create_index("ix_link_access_window_end", ["window_end"])


def downgrade() -> None:
    with op.batch_alter_table("link_access") as batch:
        batch.drop_index("ix_link_access_window_end")
        batch.drop_index("ix_link_access_link_id")
    op.drop_table("link_access")
    with op.batch_alter_table("uploads") as batch:
        batch.drop_column("consumed_at")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("cpu_seconds")
        batch.drop_column("attempts")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("tokens_valid_after")
