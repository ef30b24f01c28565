"""Local users: create, change password, assign roles. Shared by the API and ``airflow muxly users``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from muxly_provider.auth.passwords import check_password_strength, hash_password
from muxly_provider.auth.sessions import revoke_user_sessions
from muxly_provider.db.models import Role, User, UserRole
from muxly_provider.exceptions import MuxlyError


class UserError(MuxlyError):
    """A user cannot be created or changed.

    :param code: ``conflict`` (username or email taken), ``not_found``, or ``invalid``
    :param field: the field at fault
    :param message: what is wrong (never the password)
    """

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message


def _check_password(password: str) -> None:
    problem = check_password_strength(password)
    if problem is not None:
        raise UserError("invalid", "password", f"expected {problem}")


def role_ids(session: Session, names: Iterable[str]) -> list[str]:
    """The ids of the roles named ``names``.

    :raises UserError: naming the first unknown role
    """
    wanted = list(dict.fromkeys(names))
    found = {
        str(n): str(i) for n, i in session.execute(select(Role.name, Role.id).where(Role.name.in_(wanted)))
    }
    for name in wanted:
        if name not in found:
            raise UserError("invalid", "roles", f"unknown role {name!r}")
    return [found[name] for name in wanted]


def set_roles(session: Session, user_id: str, names: Iterable[str]) -> None:
    """Make ``names`` the roles of ``user_id`` (replacing the previous ones)."""
    ids = role_ids(session, names)
    session.execute(delete(UserRole).where(UserRole.user_id == user_id))
    for role_id in ids:
        session.add(UserRole(user_id=user_id, role_id=role_id))
    session.flush()


def check_unique(
    session: Session, username: str | None, email: str | None, user_id: str | None = None
) -> None:
    """Raise a ``conflict`` :class:`UserError` when another user has ``username`` or ``email``."""
    clauses = []
    if username is not None:
        clauses.append(User.username == username)
    if email is not None:
        clauses.append(User.email == email)
    if not clauses:
        return
    for other in session.scalars(select(User).where(or_(*clauses))).all():
        if other.id == user_id:
            continue
        field = "username" if other.username == username else "email"
        raise UserError("conflict", field, f"another user has this {field}")


def create_user(
    session: Session,
    *,
    username: str,
    email: str,
    password: str | None,
    display_name: str | None = None,
    roles: Iterable[str] = (),
    user_id: str | None = None,
    auth_provider: str = "local",
    external_id: str | None = None,
    is_active: bool = True,
) -> User:
    """Create a user; a local user needs a password strong enough.

    :raises UserError: for a taken username or email, a weak password or an unknown role
    """
    if auth_provider == "local":
        if password is None:
            raise UserError("invalid", "password", "expected a password for a local user")
        _check_password(password)
    elif password is not None:
        raise UserError("invalid", "password", "expected no password for an external user")
    check_unique(session, username, email)
    ids = role_ids(session, roles)
    user = User(
        id=user_id or uuid.uuid4().hex,
        username=username,
        email=email,
        display_name=display_name,
        password_hash=hash_password(password) if password is not None else None,
        external_id=external_id,
        auth_provider=auth_provider,
        is_active=is_active,
    )
    if session.get(User, user.id) is not None:
        raise UserError("conflict", "id", "another user has this id")
    session.add(user)
    session.flush()
    for role_id in ids:
        session.add(UserRole(user_id=user.id, role_id=role_id))
    session.flush()
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """Change the password of a local user and end their sessions.

    :raises UserError: for a weak password or an external user
    """
    if user.auth_provider != "local":
        raise UserError("invalid", "password", "expected a local user: external users have no password")
    _check_password(password)
    user.password_hash = hash_password(password)
    revoke_user_sessions(session, user.id)


def find_user(session: Session, id_or_username: str) -> User | None:
    """The user whose id or username is ``id_or_username``."""
    user = session.get(User, id_or_username)
    if user is None:
        user = session.scalars(select(User).where(User.username == id_or_username)).first()
    return user
