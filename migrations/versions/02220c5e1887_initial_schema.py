"""Initial schema: the 17 tables (the seed's 15 plus the join tables route_rules and rule_destinations).

Revision ID: 02220c5e1887
Revises:
Create Date: 2026-11-27 03:00:49

Written out table by table (not ``metadata.create_all``) so that it stays what it is when the models change;
later changes are new revisions. Constraint names are those of the naming convention of
:data:`muxly_provider.db.models.metadata`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "02220c5e1887"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("CURRENT_TIMESTAMP")


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.Text(), nullable=False)


def _text(name: str, *, nullable: bool = False, default: str | None = None) -> sa.Column[str]:
    server_default = sa.text(default) if default is not None else None
    return sa.Column(name, sa.Text(), nullable=nullable, server_default=server_default)


def _int(name: str, default: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text(default))


def _flag(name: str = "enabled") -> sa.Column[bool]:
    return sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.text("true"))


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(), nullable=False, server_default=_NOW)


def _stamps() -> tuple[sa.Column[datetime], sa.Column[datetime]]:
    return _timestamp("created_at"), _timestamp("updated_at")


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.id"], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete="CASCADE"
    )


def _uq(table: str, column: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(column, name=op.f(f"uq_{table}_{column}"))


def upgrade() -> None:
    """Create the 17 tables and their indexes."""
    op.create_table(
        "connectors",
        _id(),
        _text("name"),
        _text("connector_type"),
        _flag(),
        _text("auth_settings"),
        _text("connection_settings"),
        *_stamps(),
        _pk("connectors", "id"),
    )
    op.create_table(
        "settings",
        _id("key"),
        _text("value"),
        *_stamps(),
        _pk("settings", "key"),
    )
    op.create_table(
        "destinations",
        _id(),
        _text("name"),
        _text("destination_type"),
        _text("config"),
        _flag(),
        *_stamps(),
        _pk("destinations", "id"),
    )
    op.create_table(
        "routing_rules",
        _id(),
        _text("name"),
        _int("priority", "100"),
        _flag(),
        _text("condition", nullable=True),
        *_stamps(),
        _pk("routing_rules", "id"),
    )
    op.create_table(
        "rule_transformations",
        _id(),
        _text("rule_id"),
        _text("transformation_type"),
        _text("config"),
        _int("sequence_order", "0"),
        *_stamps(),
        _pk("rule_transformations", "id"),
        _fk("rule_transformations", "rule_id", "routing_rules"),
    )
    op.create_table(
        "routes",
        _id(),
        _text("name"),
        _text("connector_id"),
        _flag(),
        _text("error_handling", default='\'{"mode": "continue"}\''),
        *_stamps(),
        _pk("routes", "id"),
        _fk("routes", "connector_id", "connectors"),
    )
    op.create_table(
        "route_rules",
        _id("route_id"),
        _id("rule_id"),
        _int("sequence_order", "0"),
        _timestamp("created_at"),
        _pk("route_rules", "route_id", "rule_id"),
        _fk("route_rules", "route_id", "routes"),
        _fk("route_rules", "rule_id", "routing_rules"),
    )
    op.create_table(
        "rule_destinations",
        _id("rule_id"),
        _id("destination_id"),
        _timestamp("created_at"),
        _pk("rule_destinations", "rule_id", "destination_id"),
        _fk("rule_destinations", "rule_id", "routing_rules"),
        _fk("rule_destinations", "destination_id", "destinations"),
    )
    op.create_table(
        "scheduler_jobs",
        _id(),
        _text("name"),
        _text("job_type"),
        _text("schedule", nullable=True),
        _text("connector_id"),
        _text("action_type"),
        _text("action_params"),
        _flag(),
        _int("max_retries", "3"),
        _text("backoff_strategy", default="'exponential'"),
        _int("timeout_seconds", "300"),
        *_stamps(),
        _pk("scheduler_jobs", "id"),
        _fk("scheduler_jobs", "connector_id", "connectors"),
    )
    op.create_table(
        "job_executions",
        _id(),
        _text("job_id"),
        sa.Column("start_time", sa.DateTime(), nullable=False),
        sa.Column("end_time", sa.DateTime(), nullable=True),
        _text("status"),
        _text("result", nullable=True),
        _int("attempt", "1"),
        _text("triggered_by", default="'schedule'"),
        *_stamps(),
        _pk("job_executions", "id"),
        _fk("job_executions", "job_id", "scheduler_jobs"),
    )
    op.create_index("idx_job_executions_status", "job_executions", ["status"])
    op.create_table(
        "webhook_triggers",
        _id(),
        _text("job_id"),
        _text("endpoint_path"),
        _text("secret_key", nullable=True),
        _flag(),
        *_stamps(),
        _pk("webhook_triggers", "id"),
        _fk("webhook_triggers", "job_id", "scheduler_jobs"),
    )
    op.create_table(
        "users",
        _id(),
        _text("username"),
        _text("email"),
        _text("display_name", nullable=True),
        _text("password_hash", nullable=True),
        _text("external_id", nullable=True),
        _text("auth_provider", default="'local'"),
        _flag("is_active"),
        *_stamps(),
        _pk("users", "id"),
        _uq("users", "username"),
        _uq("users", "email"),
    )
    op.create_index("idx_users_username", "users", ["username"])
    op.create_index("idx_users_email", "users", ["email"])
    op.create_index("idx_users_external_id", "users", ["external_id"])
    op.create_table(
        "roles",
        _id(),
        _text("name"),
        _text("description", nullable=True),
        *_stamps(),
        _pk("roles", "id"),
        _uq("roles", "name"),
    )
    op.create_table(
        "user_roles",
        _id("user_id"),
        _id("role_id"),
        _timestamp("created_at"),
        _pk("user_roles", "user_id", "role_id"),
        _fk("user_roles", "user_id", "users"),
        _fk("user_roles", "role_id", "roles"),
    )
    op.create_table(
        "permissions",
        _id(),
        _text("name"),
        _text("description", nullable=True),
        _text("resource"),
        _text("action"),
        *_stamps(),
        _pk("permissions", "id"),
        _uq("permissions", "name"),
    )
    op.create_table(
        "role_permissions",
        _id("role_id"),
        _id("permission_id"),
        _timestamp("created_at"),
        _pk("role_permissions", "role_id", "permission_id"),
        _fk("role_permissions", "role_id", "roles"),
        _fk("role_permissions", "permission_id", "permissions"),
    )
    op.create_table(
        "auth_sessions",
        _id(),
        _text("user_id"),
        _text("token_hash"),
        _text("refresh_token_hash", nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_accessed_at"),
        _pk("auth_sessions", "id"),
        _fk("auth_sessions", "user_id", "users"),
    )
    op.create_index("idx_auth_sessions_user_id", "auth_sessions", ["user_id"])
    op.create_index("idx_auth_sessions_expires_at", "auth_sessions", ["expires_at"])


def downgrade() -> None:
    """Drop the 17 tables, children before parents (their indexes go with them)."""
    for table in (
        "auth_sessions",
        "role_permissions",
        "permissions",
        "user_roles",
        "roles",
        "users",
        "webhook_triggers",
        "job_executions",
        "scheduler_jobs",
        "rule_destinations",
        "route_rules",
        "routes",
        "rule_transformations",
        "routing_rules",
        "destinations",
        "settings",
        "connectors",
    ):
        op.drop_table(table)
