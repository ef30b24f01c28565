"""Dead-letter replays: when a letter was re-driven, where to, the last replay error, and the replay claim.

Revision ID: b2d5f9a3c8e4
Revises: a1c4e8f2b7d3
Create Date: 2026-12-02 13:05:00

Adds to ``dead_letters``:

* ``replayed_at``, ``replayed_to``: set when a replay delivered the letter (to its own or another destination);
* ``replay_error``: why the last replay failed (the letter stays un-replayed), ``replay_attempts``: how many
  replays ran;
* ``replay_claim``, ``replay_claimed_at``: a replay in progress. A replay first claims the letter with a
  compare-and-set (only an un-replayed, unclaimed or stale-claimed letter can be claimed), so two replays never
  deliver the same letter twice;
* the index ``idx_dead_letters_replayed_at`` (lists filter on replayed or not).

Existing letters start un-replayed. The downgrade drops the columns and the index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "b2d5f9a3c8e4"
down_revision: str | Sequence[str] | None = "a1c4e8f2b7d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "replayed_at",
    "replayed_to",
    "replay_error",
    "replay_attempts",
    "replay_claim",
    "replay_claimed_at",
)


def _schema() -> str | None:
    """Muxly's schema on PostgreSQL (``ALTER TABLE`` is not schema-translated as ``CREATE TABLE`` is)."""
    schema = op.get_context().version_table_schema
    return str(schema) if schema else None


def upgrade() -> None:
    """Add the replay columns and their index to ``dead_letters`` (plain ``ADD COLUMN``, also on SQLite)."""
    schema = _schema()
    for column in (
        sa.Column("replayed_at", sa.DateTime(), nullable=True),
        sa.Column("replayed_to", sa.Text(), nullable=True),
        sa.Column("replay_error", sa.Text(), nullable=True),
        sa.Column("replay_attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("replay_claim", sa.Text(), nullable=True),
        sa.Column("replay_claimed_at", sa.DateTime(), nullable=True),
    ):
        op.add_column("dead_letters", column, schema=schema)
    op.create_index("idx_dead_letters_replayed_at", "dead_letters", ["replayed_at"], schema=schema)


def downgrade() -> None:
    """Drop the index and the replay columns (replay history is lost; the letters stay).

    ``DROP COLUMN`` needs SQLite 3.35 or newer (Python 3.11 wheels ship newer ones); no table is rebuilt, so
    this also prints in offline (``--sql``) mode.
    """
    schema = _schema()
    op.drop_index("idx_dead_letters_replayed_at", table_name="dead_letters", schema=schema)
    for column in reversed(_COLUMNS):
        op.drop_column("dead_letters", column, schema=schema)
