"""Login sessions of local users: opaque tokens stored as hashes in ``auth_sessions``.

* :func:`login` checks the password and opens a session: an access token valid for
  ``access_token_expire_seconds`` (``auth_sessions.expires_at``) and a refresh token valid until the session
  ends, ``refresh_token_expire_seconds`` after the login (an absolute lifetime: refreshing does not extend it).
* :func:`refresh` rotates both tokens. Presenting a refresh token that was already rotated away means it was
  copied: the whole session is revoked. A token that was never issued (a forged ``mxr_<session id>.<junk>``)
  changes nothing: its hash is compared with the issued ones before the session is touched.
* :func:`logout` deletes the session; its tokens stop working at once.
* :func:`authenticate_access_token` checks an access token and touches ``last_accessed_at`` (at most once a
  minute, to keep reads cheap).

Timestamps are naive UTC, written by Muxly (not by the database's clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from muxly_provider.auth import settings
from muxly_provider.auth.passwords import hash_password, needs_rehash, verify_password
from muxly_provider.auth.tokens import (
    hash_token,
    hashes_match,
    new_session_id,
    new_token,
    parse_token,
    refresh_match,
    rotated_hashes,
)
from muxly_provider.db.models import AuthSession, User

TOUCH_INTERVAL = timedelta(seconds=60)
"""``last_accessed_at`` is written at most this often per session."""


def utcnow() -> datetime:
    """Now, as naive UTC (the form of Muxly's ``DateTime`` columns)."""
    return datetime.now(UTC).replace(tzinfo=None)


class AuthError(Exception):
    """Authentication failed; the message is safe to show (it never says which part was wrong)."""

    def __init__(self, message: str = "invalid or expired credentials") -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class IssuedTokens:
    """The tokens of a login or a refresh."""

    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user_id: str


def _issue(session: Session, auth_session: AuthSession) -> IssuedTokens:
    access = new_token("access", auth_session.id)
    refresh_token = new_token("refresh", auth_session.id)
    lifetime = settings.access_token_seconds()
    now = utcnow()
    auth_session.token_hash = hash_token(access)
    auth_session.refresh_token_hash = rotated_hashes(refresh_token, auth_session.refresh_token_hash)
    auth_session.expires_at = now + timedelta(seconds=lifetime)
    auth_session.last_accessed_at = now
    session.flush()
    return IssuedTokens(access, refresh_token, lifetime, auth_session.id, auth_session.user_id)


def check_credentials(session: Session, username: str, password: str) -> User:
    """The active local user ``username`` whose password is ``password``.

    :raises AuthError: for an unknown, inactive or external user or a wrong password (always the same message)
    """
    user = session.scalars(select(User).where(User.username == username)).first()
    stored = user.password_hash if user is not None else None
    if not verify_password(password, stored) or user is None or not user.is_active:
        raise AuthError("invalid username or password")
    if stored and needs_rehash(stored):
        user.password_hash = hash_password(password)
    return user


def login(session: Session, username: str, password: str) -> IssuedTokens:
    """Check ``username``/``password`` and open a session.

    :raises AuthError: when the credentials are not valid
    """
    user = check_credentials(session, username, password)
    now = utcnow()
    auth_session = AuthSession(
        id=new_session_id(),
        user_id=user.id,
        token_hash="",
        refresh_token_hash=None,
        expires_at=now,
        created_at=now,
        last_accessed_at=now,
    )
    session.add(auth_session)
    return _issue(session, auth_session)


def _session_end(auth_session: AuthSession) -> datetime:
    return auth_session.created_at + timedelta(seconds=settings.refresh_token_seconds())


def refresh(session: Session, refresh_token: str) -> IssuedTokens:
    """Rotate the tokens of the session of ``refresh_token``.

    :raises AuthError: when the token is unknown, expired, already used (the session is then revoked) or its
        user is no longer active
    """
    parsed = parse_token(refresh_token)
    if parsed is None or parsed.kind != "refresh":
        raise AuthError()
    auth_session = session.get(AuthSession, parsed.session_id)
    if auth_session is None:
        raise AuthError()
    match = refresh_match(refresh_token, auth_session.refresh_token_hash)
    if match is None:
        raise AuthError()  # never issued (forged or garbled): leave the session alone
    if match == "rotated":
        # An earlier refresh token of this session, already used: someone replays a copy. Revoke the session
        # so that the copy and the original both stop working.
        session.delete(auth_session)
        raise AuthError()
    user = session.get(User, auth_session.user_id)
    if _session_end(auth_session) <= utcnow() or user is None or not user.is_active:
        session.delete(auth_session)
        raise AuthError()
    return _issue(session, auth_session)


def authenticate_access_token(session: Session, token: str) -> tuple[User, AuthSession]:
    """The user and session of a valid, unexpired access token.

    :raises AuthError: when the token is unknown, expired, logged out or its user is inactive
    """
    parsed = parse_token(token)
    if parsed is None or parsed.kind != "access":
        raise AuthError()
    auth_session = session.get(AuthSession, parsed.session_id)
    if auth_session is None or not hashes_match(token, auth_session.token_hash):
        raise AuthError()
    now = utcnow()
    if auth_session.expires_at <= now:
        raise AuthError("the access token has expired; refresh it or log in again")
    user = session.get(User, auth_session.user_id)
    if user is None or not user.is_active:
        raise AuthError()
    if now - auth_session.last_accessed_at >= TOUCH_INTERVAL:
        auth_session.last_accessed_at = now
    return user, auth_session


def logout(session: Session, session_id: str) -> None:
    """End the session ``session_id`` (both its tokens stop working)."""
    session.execute(delete(AuthSession).where(AuthSession.id == session_id))


def revoke_user_sessions(session: Session, user_id: str) -> int:
    """End every session of ``user_id`` (after a password change or deactivation); return how many."""
    result = session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


def purge_expired(session: Session) -> int:
    """Delete sessions whose refresh lifetime is over; return how many."""
    cutoff = utcnow() - timedelta(seconds=settings.refresh_token_seconds())
    result = session.execute(delete(AuthSession).where(AuthSession.created_at <= cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
