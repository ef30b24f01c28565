"""Seed the roles ``admin``, ``operator`` and ``viewer`` and the permissions they hold.

Revision ID: 8b4f2c6d1e90
Revises: 5d1e7a9c3b20
Create Date: 2026-11-27 04:30:00

Permissions are ``(resource, action)`` with ``*`` wildcards, named like the original service's
(``admin:all``, ``read:all``, ``manage:<resource>``, ``read:<resource>``). Rows already present (same name)
are kept as they are. The downgrade removes exactly the seeded rows and their links.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# Revision identifiers, used by Alembic.
revision: str = "8b4f2c6d1e90"
down_revision: str | Sequence[str] | None = "5d1e7a9c3b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RESOURCES = (
    "connectors",
    "destinations",
    "rules",
    "routes",
    "jobs",
    "executions",
    "webhooks",
    "settings",
    "users",
    "roles",
    "permissions",
)
_PIPELINE = ("connectors", "destinations", "rules", "routes", "jobs", "webhooks")

PERMISSIONS: dict[str, tuple[str, str, str]] = {
    "admin:all": ("*", "*", "Everything"),
    "read:all": ("*", "read", "Read every resource"),
    **{f"manage:{r}": (r, "*", f"Every action on {r}") for r in _RESOURCES},
    **{f"read:{r}": (r, "read", f"Read {r}") for r in _RESOURCES},
}
"""Permission name -> (resource, action, description)."""

ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("Everything, including users, roles and permissions", ("admin:all",)),
    "operator": (
        "Manage connectors, destinations, rules, routes, jobs and webhooks; run jobs; read executions and settings",
        (*(f"manage:{r}" for r in _PIPELINE), "read:executions", "read:settings"),
    ),
    "viewer": (
        "Read the pipeline configuration and the executions",
        tuple(f"read:{r}" for r in (*_PIPELINE, "executions", "settings")),
    ),
}
"""Role name -> (description, permission names)."""


def _tables() -> tuple[sa.TableClause, sa.TableClause, sa.TableClause, sa.TableClause]:
    """Lightweight tables in Muxly's schema (plain SQL constructs are not schema-translated)."""
    schema = op.get_context().version_table_schema
    roles = sa.table(
        "roles",
        sa.column("id", sa.Text),
        sa.column("name", sa.Text),
        sa.column("description", sa.Text),
        schema=schema,
    )
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
    user_roles = sa.table(
        "user_roles", sa.column("user_id", sa.Text), sa.column("role_id", sa.Text), schema=schema
    )
    return roles, permissions, role_permissions, user_roles


def upgrade() -> None:
    """Insert the seeded roles, permissions and their links (keeping rows of the same name)."""
    _roles, _permissions, _role_permissions, _ = _tables()
    offline = op.get_context().as_sql
    conn = None if offline else op.get_bind()
    existing_permissions: dict[str, str] = {}
    existing_roles: dict[str, str] = {}
    if conn is not None:  # offline (--sql) there is nothing to look at: print plain inserts
        existing_permissions = {
            str(k): str(v) for k, v in conn.execute(sa.select(_permissions.c.name, _permissions.c.id)).all()
        }
        existing_roles = {
            str(k): str(v) for k, v in conn.execute(sa.select(_roles.c.name, _roles.c.id)).all()
        }
    permission_ids = dict(existing_permissions)
    for name, (resource, action, description) in PERMISSIONS.items():
        if name not in permission_ids:
            op.execute(
                _permissions.insert().values(
                    id=name, name=name, description=description, resource=resource, action=action
                )
            )
            permission_ids[name] = name
    for name, (description, granted) in ROLES.items():
        if name in existing_roles:
            continue
        op.execute(_roles.insert().values(id=name, name=name, description=description))
        for permission in granted:
            op.execute(
                _role_permissions.insert().values(role_id=name, permission_id=permission_ids[permission])
            )


def downgrade() -> None:
    """Delete the seeded roles and permissions with their links (children first: no cascade needed)."""
    _roles, _permissions, _role_permissions, _user_roles = _tables()
    role_ids = list(ROLES)
    permission_ids = list(PERMISSIONS)
    op.execute(
        _role_permissions.delete().where(
            sa.or_(
                _role_permissions.c.role_id.in_(role_ids),
                _role_permissions.c.permission_id.in_(permission_ids),
            )
        )
    )
    op.execute(_user_roles.delete().where(_user_roles.c.role_id.in_(role_ids)))
    op.execute(_roles.delete().where(_roles.c.id.in_(role_ids)))
    op.execute(_permissions.delete().where(_permissions.c.id.in_(permission_ids)))
