"""accounts: identity-provider subjects on users, officers assigned to cases

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("idp_issuer", sa.String(length=500), nullable=True))
    op.add_column("users", sa.Column("idp_subject", sa.String(length=255), nullable=True))
    op.create_index("ix_users_idp", "users", ["idp_issuer", "idp_subject"], unique=True)
    op.create_table(
        "case_assignments",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("assigned_by", sa.String(length=200), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("case_id", "user_id"),
    )
    op.create_index("ix_case_assignments_user_id", "case_assignments", ["user_id"])
    # Officers who created cases through the API before assignments existed keep them.
    op.execute(
        """
        INSERT INTO case_assignments (case_id, user_id, assigned_by, assigned_at)
        SELECT cases.id, users.id, 'migration:0005', cases.created_at
        FROM cases JOIN users ON cases.created_by = 'user:' || users.email
        WHERE users.role = 'officer'
        """
    )


def downgrade() -> None:
    op.drop_index("ix_case_assignments_user_id", table_name="case_assignments")
    op.drop_table("case_assignments")
    op.drop_index("ix_users_idp", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("idp_subject")
        batch.drop_column("idp_issuer")
