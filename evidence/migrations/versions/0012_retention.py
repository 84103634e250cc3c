"""case retention (outcome, review date), legal holds and four-eyes disposal

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa  # noqa: F401 - used once the tables are written
from alembic import op  # noqa: F401

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
