"""Security state shared by all api-server workers, and the ``manage:credentials`` permission.

Revision ID: a1c4e8f2b7d3
Revises: 8b4f2c6d1e90
Create Date: 2026-12-02 13:00:00

* ``login_failures``: failed logins counted per (user name, client), so that every api-server worker sees
  the same counts. The key is a SHA-256 of the pair (a password typed into the user-name field is never
  stored); rows older than the throttle window are pruned.
* ``webhook_deliveries``: the replay keys (digests of the signed bytes) of the deliveries each webhook
  trigger accepted, unique per trigger, pruned after ``[muxly] webhook_replay_window_seconds``.
* The permission ``manage:credentials`` (``credentials``, ``*``): writing inline credentials into connector
  and destination configs. Only ``admin`` holds it (through ``admin:all``); no role gets a link row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "a1c4e8f2b7d3"
down_revision: str | Sequence[str] | None = "8b4f2c6d1e90"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("CURRENT_TIMESTAMP")

PERMISSIONS: dict[str, tuple[str, str, str]] = {
    "manage:credentials": ("credentials", "*", "Write inline credentials into configs"),
}
"""Permission name -> (resource, action, description)."""


def _permission_tables() -> tuple[sa.TableClause, sa.TableClause]:
    """Lightweight tables in Muxly's schema (plain SQL constructs are not schema-translated)."""
    schema = op.get_context().version_table_schema
    permissions = sa.table(
        "permissions",
        sa.column("id", sa.Text),
        sa.column("name", sa.Text),
        sa.column("description", sa.Text),
        sa.column("resource", sa.Text),
        sa.column("action", sa.Text),
        schema=schema,
    )
    role_permissions = sa.table(
        "role_permissions", sa.column("role_id", sa.Text), sa.column("permission_id", sa.Text), schema=schema
    )
    return permissions, role_permissions


def upgrade() -> None:
    """Create ``login_failures`` and ``webhook_deliveries``; seed ``manage:credentials`` (kept if present)."""
    op.create_table(
        "login_failures",
        sa.Column("throttle_key", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("throttle_key", name=op.f("pk_login_failures")),
    )
    op.create_index("idx_login_failures_window_start", "login_failures", ["window_start"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("trigger_id", sa.Text(), nullable=False),
        sa.Column("replay_key", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("trigger_id", "replay_key", name=op.f("pk_webhook_deliveries")),
        sa.ForeignKeyConstraint(
            ["trigger_id"],
            ["webhook_triggers.id"],
            name=op.f("fk_webhook_deliveries_trigger_id_webhook_triggers"),
            ondelete="CASCADE",
        ),
    )
    op.create_index("idx_webhook_deliveries_received_at", "webhook_deliveries", ["received_at"])

    permissions, _ = _permission_tables()
    existing: set[str] = set()
    if not op.get_context().as_sql:  # offline (--sql) there is nothing to look at: print plain inserts
        existing = {str(n) for n in op.get_bind().execute(sa.select(permissions.c.name)).scalars()}
    for name, (resource, action, description) in PERMISSIONS.items():
        if name not in existing:
            op.execute(
                permissions.insert().values(
                    id=name, name=name, description=description, resource=resource, action=action
                )
            )


def downgrade() -> None:
    """Delete the seeded permission with its links; drop the two tables (their indexes go with them)."""
    permissions, role_permissions = _permission_tables()
    names = list(PERMISSIONS)
    op.execute(role_permissions.delete().where(role_permissions.c.permission_id.in_(names)))
    op.execute(permissions.delete().where(permissions.c.id.in_(names)))
    op.drop_table("webhook_deliveries")
    op.drop_table("login_failures")
