"""``/users``: Muxly's users and their roles (passwords are write-only and never returned)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import EmailStr, Field
from sqlalchemy import asc, desc, func, select
from sqlalchemy.orm import Session

from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.api.v1.common import Id, Limit, Offset, Order, Page, StrictRequest, Timestamps, not_found
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal, user_role_names
from muxly_provider.auth.sessions import revoke_user_sessions
from muxly_provider.auth.users import UserError, check_unique, create_user, set_password, set_roles
from muxly_provider.db.models import User

router = APIRouter(prefix="/users", tags=["users"])

Username = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s:]+$")]
AuthProvider = Literal["local", "keycloak", "airflow"]


class UserCreateRequest(StrictRequest):
    """A new user: local users need a password; external ones an ``external_id``."""

    id: Id | None = None
    username: Username
    email: EmailStr
    display_name: str | None = Field(default=None, max_length=500)
    password: str | None = Field(default=None, max_length=1000)
    roles: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=100)
    auth_provider: AuthProvider = "local"
    external_id: str | None = Field(default=None, max_length=500)
    is_active: bool = True


class UserUpdateRequest(StrictRequest):
    """Changes to a user; a new password or deactivation ends the user's sessions."""

    username: Username | None = None
    email: EmailStr | None = None
    display_name: str | None = Field(default=None, max_length=500)
    password: str | None = Field(default=None, max_length=1000)
    roles: list[Annotated[str, Field(max_length=200)]] | None = Field(default=None, max_length=100)
    external_id: str | None = Field(default=None, max_length=500)
    is_active: bool | None = None


class UserResponse(Timestamps):
    """A user (never the password or its hash)."""

    id: str
    username: str
    email: str
    display_name: str | None
    auth_provider: str
    external_id: str | None
    is_active: bool
    roles: list[str]


def user_dict(session: Session, user: User) -> dict[str, Any]:
    """A user as the API shows it."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "display_name": user.display_name,
        "auth_provider": user.auth_provider,
        "external_id": user.external_id,
        "is_active": user.is_active,
        "roles": user_role_names(session, user.id),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def user_error(exc: UserError) -> MuxlyHTTPError:
    """The HTTP answer of a :class:`UserError`."""
    status = {"conflict": 409, "not_found": 404}.get(exc.code, 422)
    code = "validation_error" if status == 422 else exc.code
    return MuxlyHTTPError(status, code, exc.message, {"field": exc.field, "reason": exc.message})


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise not_found("user", user_id)
    return user


@router.get("", response_model=Page[UserResponse], summary="List users")
def list_users(
    session: DbSession,
    _: Annotated[Principal, require("users", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["username", "email", "id", "created_at"], Query()] = "username",
    order: Order = "asc",
    auth_provider: AuthProvider | None = None,
    is_active: bool | None = None,
) -> dict[str, Any]:
    query = select(User)
    if auth_provider is not None:
        query = query.where(User.auth_provider == auth_provider)
    if is_active is not None:
        query = query.where(User.is_active == is_active)
    total = int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())
    direction = desc if order == "desc" else asc
    users = session.scalars(
        query.order_by(direction(getattr(User, sort)), User.id).limit(limit).offset(offset)
    )
    return {"items": [user_dict(session, u) for u in users], "total": total, "limit": limit, "offset": offset}


@router.post("", response_model=UserResponse, status_code=201, summary="Create a user")
def create(
    body: UserCreateRequest, session: DbSession, _: Annotated[Principal, require("users", "create")]
) -> dict[str, Any]:
    try:
        user = create_user(
            session,
            username=body.username,
            email=str(body.email),
            password=body.password,
            display_name=body.display_name,
            roles=body.roles,
            user_id=body.id,
            auth_provider=body.auth_provider,
            external_id=body.external_id,
            is_active=body.is_active,
        )
    except UserError as exc:
        raise user_error(exc) from None
    session.refresh(user)
    return user_dict(session, user)


@router.get("/{user_id}", response_model=UserResponse, summary="Get a user")
def get(
    user_id: str, session: DbSession, _: Annotated[Principal, require("users", "read")]
) -> dict[str, Any]:
    return user_dict(session, _user(session, user_id))


@router.patch("/{user_id}", response_model=UserResponse, summary="Change a user")
def update(
    user_id: str,
    body: UserUpdateRequest,
    session: DbSession,
    _: Annotated[Principal, require("users", "update")],
) -> dict[str, Any]:
    user = _user(session, user_id)
    changes = body.model_dump(exclude_unset=True)
    try:
        check_unique(session, changes.get("username"), changes.get("email"), user.id)
        for field in ("username", "email", "display_name", "external_id"):
            if field in changes:
                value = changes[field]
                if value is None and field in ("username", "email"):
                    raise UserError("invalid", field, f"expected a {field}")
                setattr(user, field, None if value is None else str(value))
        if changes.get("password") is not None:
            set_password(session, user, changes["password"])
        if changes.get("roles") is not None:
            set_roles(session, user.id, changes["roles"])
        if changes.get("is_active") is not None:
            user.is_active = bool(changes["is_active"])
            if not user.is_active:
                revoke_user_sessions(session, user.id)
    except UserError as exc:
        raise user_error(exc) from None
    user.updated_at = func.current_timestamp()
    session.flush()
    session.refresh(user)
    return user_dict(session, user)


@router.delete("/{user_id}", status_code=204, summary="Delete a user (and their sessions)")
def delete(
    user_id: str, session: DbSession, principal: Annotated[Principal, require("users", "delete")]
) -> Response:
    user = _user(session, user_id)
    if user.id == principal.user_id:
        raise MuxlyHTTPError(409, "conflict", "you cannot delete yourself", {"field": "id"})
    revoke_user_sessions(session, user.id)
    session.delete(user)
    return Response(status_code=204)
