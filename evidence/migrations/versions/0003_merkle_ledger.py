"""custody events become the Merkle ledger: canonical bodies, tree nodes, head, checkpoints

Revision ID: 0003
Revises: 0002
"""

from datetime import UTC, datetime

from typing import Any

import sqlalchemy as sa
from alembic import op

from audit import Entry, format_time, merkle

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    events = op.create_table(
        "custody_events_ledger",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=True),
        sa.Column("case_ref", sa.String(length=64), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    # Events recorded before the ledger existed become its first entries, in their order.
    connection = op.get_bind()
    old = connection.execute(
        sa.text("SELECT action, actor, subject, details, at FROM custody_events ORDER BY seq")
    ).mappings().all()
    nodes: dict[tuple[int, int], bytes] = {}
    rows = []
    for seq, row in enumerate(old):
        subject, details = _json(row["subject"]), _json(row["details"])
        at = row["at"] if not isinstance(row["at"], str) else datetime.fromisoformat(row["at"])
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        body = Entry(seq=seq, time=format_time(at), actor=row["actor"], action=row["action"],
                     subject=subject, details=details).encode()
        leaf = merkle.leaf_hash(body)
        for level, index, digest in merkle.nodes_to_store_on_append(seq, leaf, lambda l, i: nodes[(l, i)]):
            nodes[(level, index)] = digest
        rows.append({"seq": seq, "at": at, "action": row["action"], "actor": row["actor"], "subject": subject,
                     "details": details, "item_id": subject.get("item"), "case_ref": subject.get("case"),
                     "body": body, "leaf_hash": leaf})
    if rows:
        op.bulk_insert(events, rows)
        op.bulk_insert(sa.table("ledger_nodes", sa.column("level"), sa.column("idx"), sa.column("hash")),
                       [{"level": l, "idx": i, "hash": h} for (l, i), h in nodes.items()])
    size = len(rows)
    frontier = [[l, i, nodes[(l, i)].hex()] for l, i in merkle.root_nodes(size)]
    op.bulk_insert(head, [{"id": 1, "size": size, "frontier": frontier}])
    op.drop_table("custody_events")
    op.rename_table("custody_events_ledger", "custody_events")
    with op.batch_alter_table("custody_events") as batch:
        batch.create_index("ix_custody_events_action", ["action"])
        batch.create_index("ix_custody_events_item_id", ["item_id"])
        batch.create_index("ix_custody_events_case_ref", ["case_ref"])


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value


def downgrade() -> None:
    raise NotImplementedError("the custody ledger cannot be turned back into plain events")
