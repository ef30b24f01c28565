"""Dead-letter store: the table ``dead_letters`` for batches a destination could not take.

Revision ID: 5d1e7a9c3b20
Revises: 02220c5e1887
Create Date: 2026-11-27 03:45:00

One row per failed batch of one destination in one DAG run: the records (a JSON list), how many, and the
error. The id is derived from the DAG id, the run id, the destination id and the batch number, so a retried
run overwrites its own rows instead of adding new ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "5d1e7a9c3b20"
down_revision: str | Sequence[str] | None = "02220c5e1887"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    """Create ``dead_letters`` and its indexes."""
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("dag_id", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("destination_id", sa.Text(), nullable=False),
        sa.Column("batch_index", sa.Integer(), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("records", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index("idx_dead_letters_run", "dead_letters", ["dag_id", "run_id"])
    op.create_index("idx_dead_letters_destination_id", "dead_letters", ["destination_id"])


def downgrade() -> None:
    """Drop ``dead_letters`` (its indexes go with it)."""
    op.drop_table("dead_letters")
