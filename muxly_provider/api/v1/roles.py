"""``/roles`` and ``/permissions``: roles, the permissions they grant, and the permissions themselves."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field
from sqlalchemy import asc, delete, desc, func, select
from sqlalchemy.orm import Session

from muxly_provider.api.v1.common import (
    Id,
    Limit,
    Offset,
    Order,
    Page,
    StrictRequest,
    Timestamps,
    conflict,
    invalid,
    not_found,
)
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.db.models import Permission, Role, RolePermission

roles_router = APIRouter(prefix="/roles", tags=["roles"])
permissions_router = APIRouter(prefix="/permissions", tags=["permissions"])

Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:*-]+$")]
Resource = Literal[
    "*",
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
]
Action = Literal["*", "read", "create", "update", "delete", "execute"]


class RoleCreateRequest(StrictRequest):
    """A new role with the names of its permissions."""

    id: Id | None = None
    name: Name
    description: str | None = Field(default=None, max_length=1000)
    permissions: list[Name] = Field(default_factory=list, max_length=200)


class RoleUpdateRequest(StrictRequest):
    """Changes to a role; ``permissions`` replaces the granted set when given."""

    name: Name | None = None
    description: str | None = Field(default=None, max_length=1000)
    permissions: list[Name] | None = Field(default=None, max_length=200)


class RoleResponse(Timestamps):
    """A role and the names of its permissions."""

    id: str
    name: str
    description: str | None
    permissions: list[str]


class PermissionCreateRequest(StrictRequest):
    """A new permission: ``action`` on ``resource``, ``*`` a wildcard."""

    id: Id | None = None
    name: Name
    description: str | None = Field(default=None, max_length=1000)
    resource: Resource
    action: Action


class PermissionUpdateRequest(StrictRequest):
    """Changes to a permission."""

    description: str | None = Field(default=None, max_length=1000)
    resource: Resource | None = None
    action: Action | None = None


class PermissionResponse(Timestamps):
    """A permission."""

    id: str
    name: str
    description: str | None
    resource: str
    action: str


def _role_dict(session: Session, role: Role) -> dict[str, Any]:
    names = session.scalars(
        select(Permission.name)
        .join(RolePermission, RolePermission.permission_id == Permission.id)
        .where(RolePermission.role_id == role.id)
        .order_by(Permission.name)
    ).all()
    return {
        "id": role.id,
        "name": role.name,
        "description": role.description,
        "permissions": list(names),
        "created_at": role.created_at,
        "updated_at": role.updated_at,
    }


def _grant(session: Session, role_id: str, names: list[str]) -> None:
    session.execute(delete(RolePermission).where(RolePermission.role_id == role_id))
    query = select(Permission.name, Permission.id).where(Permission.name.in_(names))
    found = {str(name): str(pid) for name, pid in session.execute(query)}
    for index, name in enumerate(dict.fromkeys(names)):
        if name not in found:
            raise invalid(f"permissions[{index}]", f"the name of a permission (got {name!r})")
        session.add(RolePermission(role_id=role_id, permission_id=found[name]))
    session.flush()


def _page(
    session: Session, model: Any, sort: str, order: str, limit: int, offset: int
) -> tuple[list[Any], int]:
    total = int(session.execute(select(func.count()).select_from(model)).scalar_one())
    direction = desc if order == "desc" else asc
    query = select(model).order_by(direction(getattr(model, sort)), model.id).limit(limit).offset(offset)
    return list(session.scalars(query)), total


@roles_router.get("", response_model=Page[RoleResponse], summary="List roles")
def list_roles(
    session: DbSession,
    _: Annotated[Principal, require("roles", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["name", "id", "created_at"], Query()] = "name",
    order: Order = "asc",
) -> dict[str, Any]:
    roles, total = _page(session, Role, sort, order, limit, offset)
    return {
        "items": [_role_dict(session, r) for r in roles],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@roles_router.post("", response_model=RoleResponse, status_code=201, summary="Create a role")
def create_role(
    body: RoleCreateRequest, session: DbSession, _: Annotated[Principal, require("roles", "create")]
) -> dict[str, Any]:
    if session.scalars(select(Role.id).where(Role.name == body.name)).first() is not None:
        raise conflict(f"role {body.name!r} already exists", "name")
    role_id = body.id or uuid.uuid4().hex
    if session.get(Role, role_id) is not None:
        raise conflict(f"role id {role_id!r} already exists", "id")
    role = Role(id=role_id, name=body.name, description=body.description)
    session.add(role)
    session.flush()
    _grant(session, role.id, body.permissions)
    session.refresh(role)
    return _role_dict(session, role)


def _role(session: Session, role_id: str) -> Role:
    role = session.get(Role, role_id) or session.scalars(select(Role).where(Role.name == role_id)).first()
    if role is None:
        raise not_found("role", role_id)
    return role


@roles_router.get("/{role_id}", response_model=RoleResponse, summary="Get a role (by id or name)")
def get_role(
    role_id: str, session: DbSession, _: Annotated[Principal, require("roles", "read")]
) -> dict[str, Any]:
    return _role_dict(session, _role(session, role_id))


@roles_router.patch("/{role_id}", response_model=RoleResponse, summary="Change a role")
def update_role(
    role_id: str,
    body: RoleUpdateRequest,
    session: DbSession,
    _: Annotated[Principal, require("roles", "update")],
) -> dict[str, Any]:
    role = _role(session, role_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name") is not None and changes["name"] != role.name:
        if session.scalars(select(Role.id).where(Role.name == changes["name"])).first() is not None:
            raise conflict(f"role {changes['name']!r} already exists", "name")
        role.name = changes["name"]
    if "description" in changes:
        role.description = changes["description"]
    if changes.get("permissions") is not None:
        _grant(session, role.id, changes["permissions"])
    role.updated_at = func.current_timestamp()
    session.flush()
    session.refresh(role)
    return _role_dict(session, role)


@roles_router.delete("/{role_id}", status_code=204, summary="Delete a role")
def delete_role(
    role_id: str, session: DbSession, _: Annotated[Principal, require("roles", "delete")]
) -> Response:
    role = _role(session, role_id)
    session.execute(delete(RolePermission).where(RolePermission.role_id == role.id))
    session.delete(role)
    return Response(status_code=204)


def _permission(session: Session, permission_id: str) -> Permission:
    found = (
        session.get(Permission, permission_id)
        or session.scalars(select(Permission).where(Permission.name == permission_id)).first()
    )
    if found is None:
        raise not_found("permission", permission_id)
    return found


def _permission_dict(p: Permission) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "resource": p.resource,
        "action": p.action,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


@permissions_router.get("", response_model=Page[PermissionResponse], summary="List permissions")
def list_permissions(
    session: DbSession,
    _: Annotated[Principal, require("permissions", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["name", "id", "resource", "action", "created_at"], Query()] = "name",
    order: Order = "asc",
) -> dict[str, Any]:
    items, total = _page(session, Permission, sort, order, limit, offset)
    return {"items": [_permission_dict(p) for p in items], "total": total, "limit": limit, "offset": offset}


@permissions_router.post(
    "", response_model=PermissionResponse, status_code=201, summary="Create a permission"
)
def create_permission(
    body: PermissionCreateRequest,
    session: DbSession,
    _: Annotated[Principal, require("permissions", "create")],
) -> dict[str, Any]:
    if session.scalars(select(Permission.id).where(Permission.name == body.name)).first() is not None:
        raise conflict(f"permission {body.name!r} already exists", "name")
    permission_id = body.id or body.name
    if session.get(Permission, permission_id) is not None:
        raise conflict(f"permission id {permission_id!r} already exists", "id")
    permission = Permission(
        id=permission_id,
        name=body.name,
        description=body.description,
        resource=body.resource,
        action=body.action,
    )
    session.add(permission)
    session.flush()
    session.refresh(permission)
    return _permission_dict(permission)


@permissions_router.get("/{permission_id}", response_model=PermissionResponse, summary="Get a permission")
def get_permission(
    permission_id: str, session: DbSession, _: Annotated[Principal, require("permissions", "read")]
) -> dict[str, Any]:
    return _permission_dict(_permission(session, permission_id))


@permissions_router.patch(
    "/{permission_id}", response_model=PermissionResponse, summary="Change a permission"
)
def update_permission(
    permission_id: str,
    body: PermissionUpdateRequest,
    session: DbSession,
    _: Annotated[Principal, require("permissions", "update")],
) -> dict[str, Any]:
    permission = _permission(session, permission_id)
    changes = body.model_dump(exclude_unset=True)
    if "description" in changes:
        permission.description = changes["description"]
    for field in ("resource", "action"):
        if changes.get(field) is not None:
            setattr(permission, field, changes[field])
    permission.updated_at = func.current_timestamp()
    session.flush()
    session.refresh(permission)
    return _permission_dict(permission)


@permissions_router.delete("/{permission_id}", status_code=204, summary="Delete a permission")
def delete_permission(
    permission_id: str, session: DbSession, _: Annotated[Principal, require("permissions", "delete")]
) -> Response:
    permission = _permission(session, permission_id)
    session.execute(delete(RolePermission).where(RolePermission.permission_id == permission.id))
    session.delete(permission)
    return Response(status_code=204)
