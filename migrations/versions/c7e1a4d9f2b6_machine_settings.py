"""Machine settings: the fingerprint of the settings every machine of a deployment must share.

Revision ID: c7e1a4d9f2b6
Revises: b2d5f9a3c8e4
Create Date: 2026-12-02 16:10:00

Adds ``machine_settings``, one row per (``hostname``, ``role``): the settings that must agree between the
api-server, the scheduler, the DAG processor and the workers (Muxly's database without its password,
``db_schema``, ``staging_path``, ``staging_conn_id``, ``files_root``, ``dag_file_shards``, a short hash of
``[core] fernet_key``) as JSON in ``settings``, their SHA-256 in ``fingerprint``, and when they were written.
``airflow muxly doctor`` writes its machine's row and lists the machines whose fingerprint differs (see
:mod:`muxly_provider.doctor`). No secret is stored. The downgrade drops the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "c7e1a4d9f2b6"
down_revision: str | Sequence[str] | None = "b2d5f9a3c8e4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``machine_settings`` (schema-translated like the other tables)."""
    op.create_table(
        "machine_settings",
        sa.Column("hostname", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.PrimaryKeyConstraint("hostname", "role", name="pk_machine_settings"),
    )


def downgrade() -> None:
    """Drop ``machine_settings`` (the fingerprints are written again by the next ``airflow muxly doctor``)."""
    op.drop_table("machine_settings")
