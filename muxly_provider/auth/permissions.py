"""Permissions are ``(resource, action)`` pairs where ``*`` matches anything; a principal holds roles' permissions.

Resources of the API: ``connectors``, ``destinations``, ``rules``, ``routes``, ``jobs``, ``executions``,
``webhooks``, ``settings``, ``users``, ``roles``, ``permissions``, and ``credentials`` (``credentials:create``:
inline credentials in configs, admin only by default). Actions: ``read``, ``create``, ``update``,
``delete``, ``execute`` (test a connector, run a job). Permission names follow the original service:
``admin:all`` is ``(*, *)``, ``read:all`` is ``(*, read)``, ``manage:connectors`` is ``(connectors, *)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from muxly_provider.db.models import Permission, Role, RolePermission, UserRole

WILDCARD = "*"

RESOURCES: tuple[str, ...] = (
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
    "credentials",
)
"""The resources of the API (``credentials`` guards no route: ``credentials:create`` allows inline credentials
in connectors and destinations, see :mod:`muxly_provider.security.credentials`)."""

ACTIONS: tuple[str, ...] = ("read", "create", "update", "delete", "execute")
"""The actions on a resource."""

AuthMethod = Literal["session", "keycloak", "airflow"]


@dataclass(frozen=True)
class Principal:
    """Who makes a request, with the permissions of their roles.

    :param user_id: the ``users`` id (for an Airflow UI user without a Muxly user: ``airflow:<name>``)
    :param username: the user name
    :param roles: the names of the roles
    :param permissions: the ``(resource, action)`` pairs granted
    :param method: how the request was authenticated
    :param session_id: the ``auth_sessions`` id of a Muxly token
    """

    user_id: str
    username: str
    roles: tuple[str, ...]
    permissions: frozenset[tuple[str, str]]
    method: AuthMethod
    session_id: str | None = None
    email: str | None = None
    display_name: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def can(self, resource: str, action: str) -> bool:
        """Whether the principal may do ``action`` on ``resource``."""
        return allows(self.permissions, resource, action)


def permission_matches(granted: tuple[str, str], resource: str, action: str) -> bool:
    """Whether the permission ``granted`` covers ``(resource, action)`` (``*`` matches anything)."""
    granted_resource, granted_action = granted
    return granted_resource in (WILDCARD, resource) and granted_action in (WILDCARD, action)


def allows(permissions: Iterable[tuple[str, str]], resource: str, action: str) -> bool:
    """Whether any of ``permissions`` covers ``(resource, action)``."""
    return any(permission_matches(p, resource, action) for p in permissions)


def role_permissions(session: Session, role_names: Iterable[str]) -> frozenset[tuple[str, str]]:
    """The ``(resource, action)`` pairs granted by the roles named ``role_names``."""
    names = list(role_names)
    if not names:
        return frozenset()
    rows = session.execute(
        select(Permission.resource, Permission.action)
        .join(RolePermission, RolePermission.permission_id == Permission.id)
        .join(Role, Role.id == RolePermission.role_id)
        .where(Role.name.in_(names))
    ).all()
    return frozenset((str(resource), str(action)) for resource, action in rows)


def user_role_names(session: Session, user_id: str) -> list[str]:
    """The names of the roles of user ``user_id``, sorted."""
    rows = session.scalars(
        select(Role.name).join(UserRole, UserRole.role_id == Role.id).where(UserRole.user_id == user_id)
    ).all()
    return sorted(str(name) for name in rows)


def existing_role_names(session: Session, names: Iterable[str]) -> list[str]:
    """The names among ``names`` that are roles, sorted."""
    wanted = list(names)
    if not wanted:
        return []
    return sorted(str(n) for n in session.scalars(select(Role.name).where(Role.name.in_(wanted))).all())
